"""Open what a user points ``geomvision view`` / ``report`` at.

:func:`load_model` accepts

- a COLMAP model folder (``cameras``, ``images``, ``points3D`` as ``.bin`` or ``.txt``; binary
  preferred, as :func:`geomvision.io.read_model` does);
- an ``sfm`` output folder: ``sparse/0`` is read (the mapper writes its largest model there; when
  ``sparse/0`` is missing the lowest-numbered model is used, and a model written directly into
  ``sparse/`` is accepted too), with ``report.json`` beside it when present; without any model
  the folder's ``points.ply`` is shown;
- a ``.ply`` point cloud (points and colours only: no cameras);
- one of the model files itself (``.../sparse/0/images.bin``): its folder is read.

Missing paths raise ``FileNotFoundError``; anything else that cannot be read raises
``ValueError`` naming the path and what was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scene.reconstruction import Reconstruction

__all__ = ["LoadedModel", "load_model"]

_MODEL_FILE_STEMS = ("cameras", "images", "points3D", "rigs", "frames")


@dataclass
class LoadedModel:
    """A model opened from disk.

    ``kind`` is ``"colmap"`` (a model folder), ``"sfm"`` (an sfm output folder) or ``"ply"``.
    ``reconstruction`` is None for a PLY; ``xyz`` (N,3) and ``colors`` (N,3) uint8 (None when the
    PLY has none) hold the points either way. ``model_dir`` is the COLMAP folder that was read,
    ``report`` the parsed ``report.json`` of an sfm folder (None without one), ``other_models``
    the sibling models of an sfm folder that were not read.
    """

    source: Path
    kind: str
    reconstruction: Reconstruction | None
    xyz: np.ndarray
    colors: np.ndarray | None
    model_dir: Path | None = None
    report: dict | None = None
    other_models: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A short human name: the folder or file the user gave."""
        return self.source.resolve().name or str(self.source)


def _has_model_files(folder: Path) -> bool:
    return any(all((folder / f"{s}.{ext}").is_file() for s in ("cameras", "images", "points3D")) for ext in ("bin", "txt"))


def _read_colmap(folder: Path) -> Reconstruction:
    from ..io.colmap import read_model

    return read_model(folder)


def _from_reconstruction(source: Path, kind: str, rec: Reconstruction, model_dir: Path, **extra) -> LoadedModel:
    _, xyz, colors = rec.point_arrays()
    return LoadedModel(source, kind, rec, xyz, colors, model_dir, **extra)


def _read_ply_model(path: Path, source: Path, kind: str, report: dict | None = None) -> LoadedModel:
    from ..io.ply import read_ply

    xyz, colors = read_ply(path)
    return LoadedModel(source, kind, None, np.asarray(xyz, dtype=np.float64), colors, None, report)


def _read_report(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: malformed report.json ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: report.json must hold a JSON object, got {type(data).__name__}")
    return data


def _sfm_models(sparse: Path) -> list[Path]:
    """Numbered model folders under ``sparse/`` in numeric order (``0`` first)."""
    numbered = [p for p in sparse.iterdir() if p.is_dir() and p.name.isdigit() and _has_model_files(p)]
    return sorted(numbered, key=lambda p: int(p.name))


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Open a COLMAP model folder, an sfm output folder or a PLY file (see the module docstring)."""
    source = Path(os.fspath(path))
    if not source.exists():
        raise FileNotFoundError(
            f"{source}: no such file or folder; pass a COLMAP model folder, an sfm output folder or a .ply file"
        )
    if source.is_file():
        if source.suffix.lower() == ".ply":
            return _read_ply_model(source, source, "ply")
        if source.stem in _MODEL_FILE_STEMS and source.suffix in (".bin", ".txt"):
            return _from_reconstruction(source, "colmap", _read_colmap(source.parent), source.parent)
        raise ValueError(
            f"{source}: unsupported file type {source.suffix or '(none)'!r}; "
            "pass a COLMAP model folder, an sfm output folder or a .ply file"
        )
    if _has_model_files(source):
        return _from_reconstruction(source, "colmap", _read_colmap(source), source)
    # an sfm folder's paths lead through its committed run (out/current -> runs/<id>): resolve that
    # once, so that a run committed meanwhile cannot mix two runs' files (cli/sfm_outputs.py)
    current = source / "current"
    run = Path(os.path.realpath(current)) if current.is_symlink() and current.is_dir() else source
    sparse = run / "sparse"
    report_path = run / "report.json"
    if sparse.is_dir() or report_path.is_file() or (run / "points.ply").is_file():
        report = _read_report(report_path)
        models = _sfm_models(sparse) if sparse.is_dir() else []
        if models:
            rec = _read_colmap(models[0])
            return _from_reconstruction(source, "sfm", rec, models[0], report=report, other_models=models[1:])
        if sparse.is_dir() and _has_model_files(sparse):
            return _from_reconstruction(source, "sfm", _read_colmap(sparse), sparse, report=report)
        if (run / "points.ply").is_file():
            return _read_ply_model(run / "points.ply", source, "sfm", report)
        raise ValueError(
            f"{source}: an sfm output folder without a model: expected sparse/0/{{cameras,images,points3D}}.bin "
            "or points.ply (did the reconstruction fail? see its report.json)"
        )
    found = sorted(p.name for p in source.iterdir())[:10]
    raise ValueError(
        f"{source}: neither a COLMAP model (cameras, images, points3D as .bin or .txt) nor an sfm output folder "
        f"(sparse/0, points.ply, report.json); it holds {', '.join(found) if found else 'nothing'}"
    )
