"""Compile the numba kernels before a first run, on every core, with progress.

Why: geomvision's kernels are compiled by numba on first use and cached on disk (``cache=True``;
``__pycache__`` next to the sources, or ``NUMBA_CACHE_DIR``). Measured on the 2-core development
machine, the first ``geomvision demo`` after an install compiled 394 functions for 318 s of its
380 s, one after another in the main process with nothing on screen (a ``verification: 1/66``
line that reads "141 s/pair"). 260 s of that are the four RANSAC loops (fundamental matrix with
DEGENSAC 107 s, absolute pose 66 s, relative pose 54 s, homography 33 s: each estimator's loop is
one big function with its solvers, LO and refinement, and numba's type inference, lowering and
LLVM each take about a third); the rest is bundle adjustment, triangulation, patch alignment,
matching and the renderer. Compilation is single-threaded, so the remedy here is to compile
independent groups of kernels in parallel worker processes before the run needs them, show
progress while doing so, and leave the run itself with cache loads only.

:func:`ensure_compiled` (called by ``geomvision sfm`` and ``demo`` before their work, and by
``geomvision warmup``) does nothing when a stamp says the cache is complete for these sources;
otherwise it prints ``compiling kernels (first run only)`` with progress on stderr, runs the
:data:`TASKS` on ``min(cores, tasks)`` spawned processes, then runs a tiny end-to-end
reconstruction (4 rendered views, with and without K) that compiles whatever the tasks missed,
and writes the stamp. The stamp records what numba itself checks (numba, Python, CPU, and the
size and modification time of every source file that defines kernels) and the cache's index
files, so an edit, a fresh clone or a deleted cache brings the warm-up back. Ctrl-C stops the
workers and raises ``KeyboardInterrupt``. ``GEOMVISION_WARMUP=0`` turns the automatic warm-up off
(the kernels then compile on first use, as before).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ._interrupt import check as check_interrupt
from ._numba_cache import PACKAGE, cache_dir_for, cache_root, kernel_sources

STAMP_NAME = "numba-warm.json"

__all__ = ["TASKS", "ensure_compiled", "forget", "is_warm", "warm_up"]


# --- the tasks: each compiles a group of kernels by calling the library as the pipeline does --------------


def _two_view_data(n_points: int = 300):
    import numpy as np

    from .synthetic import orbit_scene

    scene = orbit_scene(n_images=2, n_points=n_points, radius=4.0, arc_deg=25.0, noise_px=0.3, outlier_ratio=0.2,
                        rng=0)
    x1, x2, _, _ = scene.pair(0, 1)
    matches = np.column_stack([np.arange(len(x1)), np.arange(len(x1))]).astype(np.int64)
    return scene, x1, x2, matches


def _task_fundamental() -> None:
    """Fundamental matrix (DEGENSAC) and homography RANSAC, focal length from F: the uncalibrated
    verification of every pair."""
    from .sfm.options import VerificationOptions
    from .sfm.verification import verify_pair

    scene, x1, x2, matches = _two_view_data()
    verify_pair(x1, x2, matches, scene.camera, scene.camera, calibrated=False, options=VerificationOptions(), rng=0)


def _task_relative_pose() -> None:
    """Relative pose (5-point) RANSAC: the calibrated verification and the initial pair."""
    from .sfm.options import VerificationOptions
    from .sfm.verification import verify_pair

    scene, x1, x2, matches = _two_view_data()
    verify_pair(x1, x2, matches, scene.camera, scene.camera, calibrated=True, options=VerificationOptions(), rng=0)


def _task_absolute_pose() -> None:
    """Absolute pose (P3P / EPnP) RANSAC with its refinement: image registration."""
    from .geometry.camera import Camera
    from .robust import estimate_absolute_pose

    scene, _, _, _ = _two_view_data()
    sel = scene.obs_image_idx == 1
    uv, X = scene.obs_uv[sel], scene.X_world[scene.obs_point_idx[sel]]
    estimate_absolute_pose(uv, X, scene.camera, max_error=1.0, rng=0)
    cam = scene.camera
    radial = Camera("SIMPLE_RADIAL", width=cam.width, height=cam.height,
                    params=[cam.focal_length_x, *cam.principal_point, 0.0])
    estimate_absolute_pose(uv, X, radial, max_error=1.0, rng=0)


def _task_bundle() -> None:
    """Bundle adjustment (serial and parallel kernels, dense / sparse / PCG) and triangulation."""
    from .optim.solver import warm_up

    warm_up(parallel=True)


def _task_render() -> None:
    """The renderer of the synthetic demo scene."""
    from .synthetic.rendered_datasets import render_orbit_views

    render_orbit_views(n_images=1, width=64, height=48, rng=0)


# (label, "module:function" called without arguments in a worker process, relative cost: its compile
# seconds measured in one process on the loaded 2-core machine, for the progress bar)
TASKS: list[tuple[str, str, float]] = [
    ("fundamental matrix and homography RANSAC", f"{__name__}:_task_fundamental", 140.0),
    ("absolute pose RANSAC", f"{__name__}:_task_absolute_pose", 66.0),
    ("relative pose RANSAC", f"{__name__}:_task_relative_pose", 54.0),
    ("bundle adjustment", f"{__name__}:_task_bundle", 25.0),
    ("renderer", f"{__name__}:_task_render", 10.0),
]
PIPELINE = ("a 4-view reconstruction", f"{__name__}:_tiny_pipeline", 30.0)  # runs last: whatever the tasks missed


def _tiny_pipeline() -> None:
    """A 4-view reconstruction of the demo scene with and without K: whatever the tasks missed."""
    import warnings

    from .sfm import CameraOptions, SfmOptions, run_sfm
    from .synthetic.rendered_datasets import render_orbit_dataset

    with tempfile.TemporaryDirectory(prefix="geomvision-warmup-") as tmp:
        root = Path(tmp) / "scene"
        render_orbit_dataset(root, n_images=4, width=320, height=240, arc_deg=40.0, rng=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for camera in (CameraOptions(), CameraOptions(K=str(root / "K.txt"))):
                run_sfm(root / "images", SfmOptions(camera=camera), progress=False)


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates the workers
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _run_task(target: str) -> tuple[str, float, str]:
    import importlib

    t0 = time.perf_counter()
    try:
        module, func = target.split(":")
        getattr(importlib.import_module(module), func)()
        err = ""
    except Exception as exc:  # a task that fails only means its kernels compile on first use
        err = f"{type(exc).__name__}: {exc}"
    return target, time.perf_counter() - t0, err


# --- the stamp -----------------------------------------------------------------------------------------


def _fingerprint() -> dict:
    import numba

    try:
        from llvmlite import binding as ll

        cpu = ll.get_host_cpu_name()
    except Exception:  # pragma: no cover
        cpu = platform.machine()
    files = {}
    for p in kernel_sources():
        st = p.stat()
        files[str(p.relative_to(PACKAGE))] = [st.st_mtime_ns, st.st_size]
    return {"numba": numba.__version__, "python": platform.python_version(), "cpu": cpu, "sources": files}


def _index_files() -> list[str]:
    """The cache index files of every kernel source (absolute paths)."""
    out = []
    for src in kernel_sources():
        d = cache_dir_for(src)
        out += [str(f) for f in sorted(d.glob(f"{src.stem}.*.nbi"))]
    return out


def _stamp_path() -> Path:
    return cache_root() / STAMP_NAME


def is_warm() -> bool:
    """True when the stamp says the kernels are compiled for these sources."""
    try:
        stamp = json.loads(_stamp_path().read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("fingerprint") != _fingerprint():
        return False
    return all(os.path.exists(f) for f in stamp.get("index_files", []))


def _write_stamp(failures: dict[str, str]) -> None:
    path = _stamp_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"fingerprint": _fingerprint(), "index_files": _index_files(),
            "failures": failures, "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def forget() -> None:
    """Remove the stamp (the next run warms up again)."""
    with contextlib.suppress(OSError):
        _stamp_path().unlink()


@contextlib.contextmanager
def _lock(say: Callable[[str], None]) -> Iterator[None]:
    """One warm-up at a time per cache (another process waits for it, then finds the cache warm)."""
    path = cache_root() / "numba-warm.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say("waiting for another geomvision process that is compiling the kernels ...")
            while True:
                check_interrupt()
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- running it ---------------------------------------------------------------------------------------


class _Bar:
    """'compiling kernels (first run only): 37% elapsed 1:03 ETA 1:47 (2 of 6 steps done)'."""

    def __init__(self, total: float, steps: int, enabled: bool, stream) -> None:
        from ._progress import Progress

        self.steps, self.done = steps, 0
        self.p = Progress(1000, "compiling kernels (first run only)", enabled=enabled, stream=stream,
                          log_interval_s=15.0)
        self.p.line = self._line
        self.total = total

    def _line(self, now: float | None = None) -> str:
        from ._progress import format_duration

        elapsed = (time.perf_counter() if now is None else now) - self.p._t0
        frac = self.p.count / 1000
        eta = f" ETA {format_duration(elapsed * (1 - frac) / frac)}" if 0.02 < frac < 1 else ""
        return (f"{self.p.desc}: {100 * frac:.0f}% elapsed {format_duration(elapsed)}{eta} "
                f"({self.done} of {self.steps} steps done)")

    def to(self, cost: float) -> None:
        k = min(1000, round(1000 * cost / self.total))
        if k > self.p.count:
            self.p.update(k - self.p.count)

    def close(self) -> None:
        self.p.close()


def warm_up(*, processes: int | None = None, progress: bool = True, stream=None, tasks=None, pipeline=None) -> dict:
    """Compile the kernels: ``tasks`` (default :data:`TASKS`) on ``processes`` worker processes
    (default: the number of cores), then ``pipeline`` (default :data:`PIPELINE`, the tiny
    reconstruction); writes the stamp. Returns {label: seconds} with 'total' and 'failures'
    (label -> error; those kernels then compile on first use)."""
    import multiprocessing as mp

    from ._numba_cache import drop_stale_cache

    stream = sys.stderr if stream is None else stream
    tasks = TASKS if tasks is None else tasks
    pipeline = PIPELINE if pipeline is None else pipeline
    drop_stale_cache()  # kernels cached from older sources would be kept by numba: start clean, record the sources
    phase1 = sum(c for _, _, c in tasks)
    total = phase1 + pipeline[2]
    n_proc = max(1, min(processes or os.cpu_count() or 1, len(tasks)))
    timings: dict = {}
    failures: dict[str, str] = {}
    bar = _Bar(total, len(tasks) + 1, progress, stream)
    t0 = time.perf_counter()
    pool = mp.get_context("spawn").Pool(n_proc, initializer=_worker_init)
    try:
        pending = {label: (pool.apply_async(_run_task, (target,)), cost) for label, target, cost in tasks}
        credited = 0.0
        while pending:
            time.sleep(0.1)
            check_interrupt()
            for label in [k for k, (r, _) in pending.items() if r.ready()]:
                res, cost = pending.pop(label)
                _, timings[label], err = res.get()
                if err:
                    failures[label] = err
                credited += cost
                bar.done += 1
            # between task ends the bar follows the time: n_proc processes do n_proc cost-seconds a second
            bar.to(max(credited, min(0.97 * phase1, (time.perf_counter() - t0) * n_proc)))
        res = pool.apply_async(_run_task, (pipeline[1],))
        t1 = time.perf_counter()
        while not res.ready():
            time.sleep(0.1)
            check_interrupt()
            bar.to(phase1 + min(0.97 * pipeline[2], time.perf_counter() - t1))
        _, timings[pipeline[0]], err = res.get()
        if err:
            failures[pipeline[0]] = err
        bar.done += 1
        bar.to(total)
    except BaseException:
        pool.terminate()  # the workers ignore Ctrl-C; numba writes cache files atomically
        pool.join()
        raise
    finally:
        bar.close()
    pool.close()
    pool.join()
    timings["total"] = time.perf_counter() - t0
    timings["failures"] = failures
    _write_stamp(failures)
    return timings


def ensure_compiled(*, progress: bool = True, stream=None) -> float:
    """Warm the kernel cache up if the stamp says it is not (see the module doc); returns the
    seconds spent (0.0 when warm). With ``progress=False`` a line before and after replaces the
    progress bar. ``GEOMVISION_WARMUP=0`` turns this off."""
    if os.environ.get("GEOMVISION_WARMUP", "1").strip().lower() in ("0", "false", "no", "off"):
        return 0.0
    if is_warm():
        return 0.0
    stream = sys.stderr if stream is None else stream

    def say(text: str) -> None:
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    t0 = time.perf_counter()
    with _lock(say):
        if is_warm():  # another process did it while we waited
            return time.perf_counter() - t0
        if not progress:
            say(f"compiling kernels (first run only; a few minutes on {os.cpu_count()} cores) ...")
        timings = warm_up(progress=progress, stream=stream)
        if timings["failures"]:
            say("warning: some kernels will compile on first use instead: "
                + "; ".join(f"{k}: {v}" for k, v in timings["failures"].items()))
        if not progress:
            say(f"compiled kernels in {timings['total']:.0f} s")
    return time.perf_counter() - t0
