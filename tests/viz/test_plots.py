"""Statistics plots on a real model: what is drawn equals the reconstruction's numbers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from geomvision.scene import Reconstruction
from geomvision.viz.plots import (
    figure_png,
    plot_observations_per_image,
    plot_reprojection_errors,
    plot_top_side_views,
    plot_track_lengths,
    save_figure,
)
from geomvision.viz.scene import build_scene


def _bar_heights(fig):
    return np.array([p.get_height() for p in fig.axes[0].patches])


def test_reprojection_histogram_counts_every_observation(fountain_model):
    rec, _ = fountain_model
    _, _, err = rec.reprojection_errors()
    fig = plot_reprojection_errors(rec, bins=40)
    assert _bar_heights(fig).sum() == len(err)
    lines = {ln.get_label(): ln.get_xdata()[0] for ln in fig.axes[0].get_lines()}
    assert any(k.startswith("mean") and v == pytest.approx(err.mean()) for k, v in lines.items())
    assert any(k.startswith("median") and v == pytest.approx(np.median(err)) for k, v in lines.items())
    capped = plot_reprojection_errors(rec, bins=10, max_error=0.1)
    heights = _bar_heights(capped)
    assert heights.sum() == len(err) and heights[-1] >= np.count_nonzero(err > 0.1)  # clipped into the last bin
    assert f"{np.count_nonzero(err > 0.1)} above 0.10 px" in capped.axes[0].get_title()


def test_track_length_and_observation_bars_match_the_model(fountain_model):
    rec, _ = fountain_model
    lengths = np.array([p.track_length for p in rec.points3D.values()])
    fig = plot_track_lengths(rec)
    xs = np.array([p.get_x() + p.get_width() / 2 for p in fig.axes[0].patches])
    np.testing.assert_allclose(xs, np.flatnonzero(np.bincount(lengths)))
    np.testing.assert_array_equal(_bar_heights(fig), np.bincount(lengths)[np.bincount(lengths) > 0])
    assert set(lengths) == {2, 3}  # three images: pairs and triples
    fig = plot_observations_per_image(rec)
    names = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert names == sorted(im.name for im in rec.images.values())
    np.testing.assert_array_equal(_bar_heights(fig), [rec.images[rec.image_id_by_name(n)].num_points3D for n in names])


def test_top_and_side_views_use_the_scene_frame(fountain_model):
    rec, _ = fountain_model
    layers = build_scene(rec)
    fr = layers.frame
    fig = plot_top_side_views(rec)
    top, side = fig.axes
    pts = layers.points[layers.inlier_points] - fr.centre
    np.testing.assert_allclose(top.collections[0].get_offsets(), np.c_[pts @ fr.right, pts @ fr.forward], atol=1e-9)
    np.testing.assert_allclose(side.collections[0].get_offsets(), np.c_[pts @ fr.forward, pts @ fr.up], atol=1e-9)
    C = layers.camera_centres - fr.centre
    np.testing.assert_allclose(np.array(top.get_lines()[0].get_data()), [C @ fr.right, C @ fr.forward], atol=1e-9)
    # the cameras stand in front of the fountain: behind the points along `forward`
    assert np.max(C @ fr.forward) < np.percentile(pts @ fr.forward, 5)


def test_png_encoding_and_atomic_save(fountain_model, tmp_path):
    rec, _ = fountain_model
    fig = plot_track_lengths(rec)
    png = figure_png(fig, dpi=50)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (320, 180)  # 6.4 x 3.6 inches at 50 dpi
    save_figure(fig, tmp_path / "t.png", dpi=50)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]


def test_empty_reconstruction_plots_say_so():
    rec = Reconstruction()
    for fn, text in ((plot_reprojection_errors, "no observations"), (plot_track_lengths, "no 3-D points"),
                     (plot_observations_per_image, "no registered images")):
        fig = fn(rec)
        assert text in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match="rec must be a geomvision Reconstruction"):
        plot_track_lengths("model")
