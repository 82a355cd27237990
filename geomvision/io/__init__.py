"""File formats: COLMAP models, PLY, BAL, g2o; dataset helpers.

The names below are imported from their modules on first use, so that one format's reader
(``geomvision posegraph`` reads only g2o) does not pay for importing the others.
"""

from __future__ import annotations

import importlib

_LAZY: dict[str, str] = {
    "GroundTruthScene": ".datasets",
    "data_root": ".datasets",
    "load_strecha_scene": ".datasets",
    "read_bal": ".bal",
    "write_bal": ".bal",
    "read_model": ".colmap",
    "write_model": ".colmap",
    "read_g2o": ".g2o",
    "write_g2o": ".g2o",
    "read_ply": ".ply",
    "write_ply": ".ply",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geomvision.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
