"""Write the results of ``run_sfm`` into an output folder in one atomic step (for ``geomvision
sfm``, ``geomvision demo`` and ``apps/reconstruct.py``; the ``sfm`` library itself writes nothing
but its cache).

Layout (the documented paths)::

    out/sparse/0/  cameras.bin images.bin points3D.bin (+ rigs/frames)  largest model
    out/sparse/1/  ...                                                     further models
    out/points.ply         coloured points of the largest model
    out/report.json        what happened, per image and per stage
    out/plots/*.png        reprojection errors, track lengths, top/side views
    out/cache/             features and matches, kept across runs (``--resume``)

When no model could be built only ``report.json`` is written (it says why per image).

**One commit, one atomic step.** A run's results are written completely into a folder of their
own, ``out/runs/<run id>/``. ``out/current`` is a symbolic link to the committed run and the
documented paths are fixed links through it (``out/sparse -> current/sparse``, ``out/report.json
-> current/report.json``, ...). Committing is a single ``os.replace`` of ``out/current`` by a new
link (atomic on POSIX); the previous run's folder is removed afterwards. So ``out/`` shows either
the complete previous run or the complete new one whenever the process is killed, never a
mixture, and an interrupted run never loses the previous model. Every path resolves ``current``
when it is opened: a reader that opens several files while a run may be committing resolves it
once (:func:`committed_run`) and reads everything from there, as ``geomvision view`` and
``report`` do (a reader straddling a commit then fails on a removed file instead of mixing runs).

An ``out/`` of an older geomvision (results as plain files and folders) is adopted first: each
result moves into ``out/runs/<id>/`` and is replaced by its link at once, so that readers keep
seeing the same results throughout (a kill midway is completed by the next run). A file system
without symbolic links gets the results moved into place one name at a time, with a warning that
the commit is not atomic there.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text, pid_is_alive
from ..io import write_model, write_ply
from ..sfm.pipeline import SfmResult

RESULT_NAMES = ("sparse", "points.ply", "report.json", "plots")
CURRENT = "current"  # out/current -> runs/<run id>: the one pointer a commit switches
RUNS = "runs"


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
    """Whether ``out_dir`` holds results or a cache of an earlier run."""
    out = Path(out_dir)
    return (any(_lexists(out / n) for n in RESULT_NAMES) or (out / CURRENT).is_symlink()
            or (out / "cache").exists())


def committed_run(out_dir: str | os.PathLike) -> Path | None:
    """The folder of the committed run (``out/current`` resolved once), or None when ``out_dir``
    has no committed run in this layout (nothing yet, or an older geomvision's plain files)."""
    link = Path(out_dir) / CURRENT
    if not link.is_symlink():
        return None
    run = Path(os.path.realpath(link))
    return run if run.is_dir() else None


def clean_staging(out_dir: str | os.PathLike) -> None:
    """Remove what interrupted or earlier runs left: staging folders, replaced results, link
    temporaries and run folders other than the committed one (except those of another process
    that is still writing them)."""
    out = Path(out_dir)
    # .staging-<pid>, .old-<name>-<pid>, .write-test-<pid>, .symlink-test-<pid>, .<name>.<pid>.link
    for p in [*out.glob(".staging-*"), *out.glob(".old-*"), *out.glob(".*-test-*"), *out.glob(".*.link")]:
        pid = re.findall(r"[.-](\d+)(?:\.link)?$", p.name)
        if not pid or _writer_gone(int(pid[0])):
            _remove(p)
    current = committed_run(out)
    runs = out / RUNS
    if not runs.is_dir():
        return
    for p in runs.iterdir():
        if current is not None and p.resolve() == current:
            continue
        pid = _run_pid(p.name)
        if pid is not None and not _writer_gone(pid):
            continue  # another process is writing this run right now
        _remove(p)


def _writer_gone(pid: int) -> bool:
    """Whether what process ``pid`` wrote may be removed: this process's leftovers, or a dead one's."""
    return pid == os.getpid() or not pid_is_alive(pid)


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _remove(path: Path) -> None:
    """Remove a file, link or folder (a link itself, never what it points to); missing is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _new_run_id(tag: str = "") -> str:
    """``<UTC time>-<pid>-<random>``: sortable by time, the pid says who writes it."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid()}-{tag or secrets.token_hex(4)}"


def _run_pid(name: str) -> int | None:
    parts = name.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _link(path: Path, target: str) -> None:
    """Make ``path`` a symbolic link to ``target`` in one atomic step (a new link replaces it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    _remove(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _switch(out: Path, run: Path) -> None:
    """THE commit: point ``out/current`` at ``run`` (one atomic rename of a new link)."""
    _link(out / CURRENT, f"{RUNS}/{run.name}")


def _symlinks_work(out: Path) -> bool:
    probe = out / f".symlink-test-{os.getpid()}"
    try:
        probe.unlink(missing_ok=True)
        os.symlink(".", probe)
    except OSError:  # no symlinks on this file system (or no permission to make them)
        return False
    probe.unlink(missing_ok=True)
    return True


def _adopt_plain_results(out: Path) -> None:
    """Move results an older geomvision wrote as plain files / folders into a run folder, each
    replaced by its link in one step, so that every path keeps showing the same old results."""
    plain = [n for n in RESULT_NAMES if _lexists(out / n) and not (out / n).is_symlink()]
    if not plain:
        return
    run = committed_run(out)
    if run is None:  # no run to move them into yet: an empty one becomes current (nothing reads through it)
        run = out / RUNS / _new_run_id("adopted")
        run.mkdir(parents=True, exist_ok=True)
        _switch(out, run)
    for name in plain:
        _remove(run / name)  # readers see out/<name>, not this (a kill may have left it half made)
        _hard_link_copy(out / name, run / name)
        link = out / f".{name}.{os.getpid()}.link"
        link.unlink(missing_ok=True)
        os.symlink(f"{CURRENT}/{name}", link)
        if not (out / name).is_dir():
            os.replace(link, out / name)  # a file is replaced by the link atomically
        elif _exchange(link, out / name):  # out/<name> is the link now, and `link` the old folder
            _remove(link)
        else:  # no atomic exchange here: the folder is missing from out/ between these two renames
            aside = out / f".old-{name}-{os.getpid()}"
            os.rename(out / name, aside)
            os.replace(link, out / name)
            _remove(aside)


def _hard_link_copy(src: Path, dst: Path) -> None:
    """``dst`` as a copy of file or folder ``src`` made of hard links (real copies where the file
    system has none): instant, and ``src`` stays intact until it is replaced."""
    def link_or_copy(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)
    else:
        link_or_copy(str(src), str(dst))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or the file system cannot, so that the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _ensure_links(out: Path) -> None:
    """The fixed links ``out/<name> -> current/<name>`` (dangling while a run lacks that result)."""
    for name in RESULT_NAMES:
        path = out / name
        if not (path.is_symlink() and os.readlink(path) == f"{CURRENT}/{name}"):
            _link(path, f"{CURRENT}/{name}")


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


def _write_run(result: SfmResult, folder: Path, *, text: bool, plots: bool) -> dict:
    """Every result of one run into ``folder``; returns the paths written, relative to it."""
    files: dict[str, object] = {"models": []}
    for k, rec in enumerate(result.reconstructions):
        write_model(rec, folder / "sparse" / str(k), binary=True)
        if text:
            write_model(rec, folder / "sparse" / str(k) / "text", binary=False)
        files["models"].append(f"sparse/{k}")
    if result.reconstructions:
        write_ply(result.reconstructions[0], folder / "points.ply")
        files["points"] = "points.ply"
    if plots:
        files["plots"] = _write_plots(result, folder / "plots")
    report = {**result.report, "outputs": files}
    atomic_write_text(folder / "report.json", report_json(report))
    return files


def write_outputs(result: SfmResult, out_dir: str | os.PathLike, *, text: bool = False, plots: bool = True) -> dict:
    """Write models, PLY, plots and report into ``out_dir`` and commit them in one atomic step
    (see the module docstring); returns the paths written, relative to ``out_dir``."""
    out = check_output_dir(out_dir)
    if not _symlinks_work(out):
        warnings.warn(f"{out}: the file system has no symbolic links, so the results are moved into place one "
                      "at a time (a kill meanwhile can leave a mixture of two runs)", RuntimeWarning, stacklevel=2)
        return _write_by_renames(result, out, text=text, plots=plots)
    _adopt_plain_results(out)
    run = out / RUNS / _new_run_id()
    run.mkdir(parents=True)
    try:
        files = _write_run(result, run, text=text, plots=plots)
        _ensure_links(out)  # in a fresh folder they dangle until the switch: nothing shows before it
        _switch(out, run)
    except BaseException:
        if committed_run(out) != run.resolve():
            shutil.rmtree(run, ignore_errors=True)
        raise
    clean_staging(out)  # the previous run's folder
    return files


def _write_by_renames(result: SfmResult, out: Path, *, text: bool, plots: bool) -> dict:
    """The commit where symbolic links are missing: stage, then one rename per result."""
    stage = out / f".staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        files = _write_run(result, stage, text=text, plots=plots)
        for name in ("sparse", "plots", "points.ply", "report.json"):
            src, dst = stage / name, out / name
            if dst.exists():  # replaced as a whole (or dropped when this run has no such result)
                os.replace(dst, out / f".old-{name}-{os.getpid()}")
            if src.exists():
                os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        clean_staging(out)
    return files
