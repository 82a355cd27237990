"""Write the results of ``run_sfm`` into an output folder, never leaving half-written files
(for ``geomvision sfm``, ``geomvision demo`` and ``apps/reconstruct.py``; the ``sfm`` library
itself writes nothing but its cache).

Layout::

    out/sparse/0/  cameras.bin images.bin points3D.bin (+ rigs/frames)  largest model
    out/sparse/1/  ...                                                     further models
    out/points.ply         coloured points of the largest model
    out/report.json        what happened, per image and per stage (written last)
    out/plots/*.png        reprojection errors, track lengths, top/side views

When no model could be built only ``report.json`` is written (it says why per image).
Everything is first written into ``out/.staging-<pid>/`` and then moved into place with
renames (a previous run's ``sparse/`` and ``plots/`` are replaced as whole folders), so an
interrupted run leaves the earlier results intact, never a mixture.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from ..io import write_model, write_ply
from ..sfm.pipeline import SfmResult

RESULT_NAMES = ("sparse", "points.ply", "report.json", "plots")


def check_output_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and make sure it is writable (one clear error otherwise)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out


def holds_results(out_dir: str | os.PathLike) -> bool:
    out = Path(out_dir)
    return any((out / n).exists() for n in RESULT_NAMES) or (out / "cache").exists()


def clean_staging(out_dir: str | os.PathLike) -> None:
    """Remove leftovers of interrupted runs (staging and replaced folders)."""
    for p in Path(out_dir).glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in Path(out_dir).glob(".old-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def report_json(report: dict) -> str:
    return json.dumps(report, indent=1, default=_json_default, allow_nan=True) + "\n"


def _write_plots(result: SfmResult, folder: Path) -> list[str]:
    from ..viz.plots import plot_reprojection_errors, plot_top_side_views, plot_track_lengths, save_figure

    folder.mkdir(parents=True, exist_ok=True)
    if not result.reconstructions:
        return []
    rec = result.reconstructions[0]
    written = []
    for name, make in (("reprojection_errors.png", plot_reprojection_errors),
                       ("track_lengths.png", plot_track_lengths),
                       ("top_side_views.png", plot_top_side_views)):
        save_figure(make(rec), folder / name)
        written.append(f"plots/{name}")
    return written


def write_outputs(result: SfmResult, out_dir: str | os.PathLike, *, text: bool = False, plots: bool = True) -> dict:
    """Write models, PLY, plots and report into ``out_dir`` (see module docstring); returns the
    paths written, relative to ``out_dir``."""
    out = check_output_dir(out_dir)
    stage = out / f".staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    files: dict[str, object] = {"models": []}
    try:
        for k, rec in enumerate(result.reconstructions):
            write_model(rec, stage / "sparse" / str(k), binary=True)
            if text:
                write_model(rec, stage / "sparse" / str(k) / "text", binary=False)
            files["models"].append(f"sparse/{k}")
        if result.reconstructions:
            write_ply(result.reconstructions[0], stage / "points.ply")
            files["points"] = "points.ply"
        if plots:
            files["plots"] = _write_plots(result, stage / "plots")
        report = {**result.report, "outputs": files}
        atomic_write_text(stage / "report.json", report_json(report))
        # move into place: whole folders by rename, files by os.replace
        for name in ("sparse", "plots", "points.ply", "report.json"):
            src, dst = stage / name, out / name
            if not src.exists():
                if dst.exists():  # e.g. an earlier run's points.ply when no model was built now
                    old = out / f".old-{name}-{os.getpid()}"
                    os.replace(dst, old)
                continue
            if src.is_dir() and dst.exists():
                old = out / f".old-{name}-{os.getpid()}"
                os.replace(dst, old)
            os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        clean_staging(out)
    return files
