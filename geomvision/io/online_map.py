"""The online mapper's saved map: a COLMAP model plus the arrays needed to match against it.

A map folder holds ``model/`` (a binary COLMAP model of the keyframes and points: any COLMAP
reader opens it) and ``map.npz`` (``OnlineMapper.to_arrays``: the keyframes' descriptors, scales
and colours, one descriptor per point, the VLAD vocabulary, every frame's pose relative to its
keyframe, and the options). ``map.npz`` is removed first and written last, so a
folder with a ``map.npz`` holds the model that goes with it; each file is written atomically.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_bytes
from .._validation import check_writer_arguments
from ..sfm.online import OnlineMapper, OnlineOptions
from .colmap import read_model, write_model

__all__ = ["read_online_map", "write_online_map"]


def write_online_map(mapper: OnlineMapper, path: str | os.PathLike) -> None:
    """Write ``mapper``'s map into folder ``path`` (created if missing)."""
    check_writer_arguments(mapper, "write_online_map", "(mapper, path)")
    if not isinstance(mapper, OnlineMapper):
        raise ValueError(f"mapper must be an OnlineMapper, got {type(mapper).__name__}")
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path: {str(folder)!r} exists and is not a folder")
    rec, arrays = mapper.to_arrays()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "map.npz").unlink(missing_ok=True)  # a save cut short leaves no map.npz, never a mismatched one
    write_model(rec, folder / "model")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / "map.npz", buf.getvalue())


def read_online_map(path: str | os.PathLike, options: OnlineOptions | None = None) -> OnlineMapper:
    """An :class:`OnlineMapper` continuing from the map in folder ``path`` (``options`` replace
    the saved ones). ``FileNotFoundError`` / ``ValueError`` name what is missing or wrong."""
    folder = Path(os.fspath(path))
    npz = folder / "map.npz"
    if not npz.is_file():
        raise FileNotFoundError(f"{str(folder)!r} holds no online map (no map.npz): write one with OnlineMapper.save "
                                "or `geomvision track ... -o DIR`")
    rec = read_model(folder / "model")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ValueError(f"{str(npz)!r} is not a readable map file ({e})") from None
    return OnlineMapper.from_arrays(rec, arrays, options)
