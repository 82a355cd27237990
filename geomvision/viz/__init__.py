"""Seeing results: the open3d viewer, headless screenshots, matplotlib plots and an HTML report.

    from geomvision.viz import show, save_screenshot, write_report
    show(rec)                                          # open3d window (needs a display)
    save_screenshot(rec, "view.png", viewpoint="top")  # offscreen, headless
    write_report("out/", "out/report")                 # out/report/report.html

open3d (the ``viz`` extra) is imported only by the viewer and the screenshots; everything else
(scene layers, viewpoints, plots, report without screenshots) works without it. Names are
imported lazily on first access.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "LoadedModel": "geomvision.viz.loading",
    "load_model": "geomvision.viz.loading",
    "SceneLayers": "geomvision.viz.scene",
    "build_scene": "geomvision.viz.scene",
    "view_camera": "geomvision.viz.viewpoints",
    "show": "geomvision.viz.viewer",
    "Screenshot": "geomvision.viz.offscreen",
    "render_screenshot": "geomvision.viz.offscreen",
    "save_screenshot": "geomvision.viz.offscreen",
    "figure_png": "geomvision.viz.plots",
    "save_figure": "geomvision.viz.plots",
    "plot_reprojection_errors": "geomvision.viz.plots",
    "plot_track_lengths": "geomvision.viz.plots",
    "plot_observations_per_image": "geomvision.viz.plots",
    "plot_top_side_views": "geomvision.viz.plots",
    "plot_matches": "geomvision.viz.pairs",
    "plot_epipolar_lines": "geomvision.viz.pairs",
    "epipolar_segments": "geomvision.viz.pairs",
    "best_pair": "geomvision.viz.pairs",
    "pair_correspondences": "geomvision.viz.pairs",
    "pair_fundamental": "geomvision.viz.pairs",
    "undistort_image": "geomvision.viz.pairs",
    "write_report": "geomvision.viz.report",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
