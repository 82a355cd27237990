"""File formats: COLMAP models, PLY, BAL, g2o, TUM trajectories, exports for nerfstudio,
instant-ngp, VisualSFM (NVM) and Bundler, undistortion into PINHOLE cameras; dataset helpers.

Every writer takes ``(object, path)``; called the other way round it raises
``ArgumentOrderError`` (a TypeError and a ValueError) naming the order.

The names below are imported from their modules on first use, so that one format's reader
(``geomvision posegraph`` reads only g2o) does not pay for importing the others.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "GroundTruthScene": ".datasets",
    "data_root": ".datasets",
    "load_strecha_scene": ".datasets",
    "UndistortOptions": ".undistort",
    "undistort_image": ".undistort",
    "undistort_model": ".undistort",
    "undistorted_camera": ".undistort",
    "read_bal": ".bal",
    "write_bal": ".bal",
    "read_model": ".colmap",
    "write_model": ".colmap",
    "read_hloc_features": ".hloc",
    "read_hloc_matches": ".hloc",
    "write_hloc_features": ".hloc",
    "write_hloc_matches": ".hloc",
    "read_g2o": ".g2o",
    "write_g2o": ".g2o",
    "write_bundler": ".bundler",
    "write_instant_ngp": ".transforms_json",
    "write_nerfstudio": ".transforms_json",
    "write_nvm": ".nvm",
    "read_online_map": ".online_map",
    "write_online_map": ".online_map",
    "read_ply": ".ply",
    "write_ply": ".ply",
    "read_tum": ".trajectory",
    "write_tum": ".trajectory",
}
__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
