"""The only place that imports open3d (an optional dependency: the ``viz`` extra).

:func:`import_open3d` explains how to install it when it is missing; :func:`to_open3d` converts
:class:`~geomvision.viz.scene.SceneLayers` into open3d geometries.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

from .scene import LineSetData, SceneLayers

INSTALL_HINT = (
    "the 3-D viewer and screenshots need open3d: pip install 'geomvision[viz]' "
    "(on Debian/Ubuntu also: apt-get install libusb-1.0-0 libvulkan1 mesa-vulkan-drivers, as scripts/setup.sh does)"
)


def import_open3d():
    """Import and return open3d, quietened to errors; raise ImportError with the install hint."""
    try:
        import open3d as o3d
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    except OSError as exc:  # a system library is missing (libusb, libGL ...)
        raise ImportError(f"open3d is installed but cannot load: {exc}; {INSTALL_HINT}") from None
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Send what native code prints on stdout/stderr (Filament's banner) to a buffer.

    Yields a list that holds the captured text after the block, so a failure can show it.
    """
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = os.dup(1), os.dup(2)
    except OSError:  # no real file descriptors (an embedding host): nothing to capture
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as buf:
        os.dup2(buf.fileno(), 1)
        os.dup2(buf.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            buf.seek(0)
            captured.append(buf.read().decode("utf-8", "replace"))


def point_cloud(o3d, layers: SceneLayers):
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(layers.points, dtype=np.float64)))
    pc.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(layers.colors, dtype=np.float64))
    return pc


def line_set(o3d, data: LineSetData):
    ls = o3d.geometry.LineSet(
        o3d.utility.Vector3dVector(np.ascontiguousarray(data.points, dtype=np.float64)),
        o3d.utility.Vector2iVector(np.ascontiguousarray(data.lines, dtype=np.int32)),
    )
    ls.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(data.colors, dtype=np.float64))
    return ls


def to_open3d(o3d, layers: SceneLayers, names=("points", "cameras", "path", "axes")) -> dict:
    """``{layer name: open3d geometry}`` for the named, non-empty layers."""
    out = {}
    for name in names:
        if name == "points":
            if len(layers.points):
                out[name] = point_cloud(o3d, layers)
        else:
            data = layers.layer(name)
            if len(data):
                out[name] = line_set(o3d, data)
    return out
