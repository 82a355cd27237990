"""geomvision: classical multi-view geometry and Structure-from-Motion in Python.

The names below are the public API; heavier parts (SfM, viewer) are imported lazily so that
``import geomvision`` stays fast.
"""

from __future__ import annotations

from ._lazy import lazy_attributes

__version__ = "0.1.0"

from .geometry import (  # noqa: E402
    Camera,
    Rigid3,
    camera_center,
    epipolar_lines1,
    epipolar_lines2,
    epipoles,
    essential_from_pose,
    fundamental_from_essential,
    fundamental_from_pose,
    project_points,
    rays_from_pixels,
    sampson_sq_errors,
    unproject_points,
)

# name -> module that defines it; imported on first access
_LAZY: dict[str, str] = {
    "bundle_adjust": "geomvision.optim",
    "solve_bundle": "geomvision.optim",
    "BAOptions": "geomvision.optim",
    "BAConfig": "geomvision.optim",
    "BAProblem": "geomvision.optim",
    "refine_pose": "geomvision.optim",
    "optimize_pose_graph": "geomvision.optim",
    "PoseGraphOptions": "geomvision.optim",
    "PoseGraph": "geomvision.scene.pose_graph",
    "read_g2o": "geomvision.io.g2o",
    "write_g2o": "geomvision.io.g2o",
    "Sim3": "geomvision.geometry.sim3",
    "Rigid2": "geomvision.geometry.rigid2",
    "read_bal": "geomvision.io.bal",
    "write_bal": "geomvision.io.bal",
    "triangulate_two_view": "geomvision.geometry.triangulation",
    "triangulate_multiview": "geomvision.geometry.triangulation",
    "Reconstruction": "geomvision.scene.reconstruction",
    "read_model": "geomvision.io.colmap",
    "write_model": "geomvision.io.colmap",
    "estimate_homography": "geomvision.robust",
    "estimate_fundamental": "geomvision.robust",
    "estimate_essential": "geomvision.robust",
    "estimate_relative_pose": "geomvision.robust",
    "estimate_absolute_pose": "geomvision.robust",
    "estimate_line": "geomvision.robust",
    "estimate_sim3": "geomvision.robust",
    "RansacOptions": "geomvision.robust",
    "RansacResult": "geomvision.robust",
    "RansacStats": "geomvision.robust",
    "ransac": "geomvision.robust",
    "run_sfm": "geomvision.sfm",
    "SfmOptions": "geomvision.sfm",
    "write_ply": "geomvision.io.ply",
    "read_ply": "geomvision.io.ply",
    "extract_features": "geomvision.features",
    "match_descriptors": "geomvision.features",
    "stitch": "geomvision.stitching",
}
# the subpackages, reachable as attributes (gv.io.read_model) and imported on first use
_LAZY.update({name: f"geomvision.{name}:" for name in (
    "geometry", "solvers", "robust", "optim", "scene", "synthetic", "features", "sfm", "io", "viz", "cli")})


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
