"""Helpers shared by the benchmarks that time each method in a fresh worker process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (VmHWM: ``ru_maxrss`` carries the parent's peak
    across exec, so every worker would report the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spawn(script: str, args: list[str], label: str) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter (single-threaded BLAS) and return the
    JSON object it prints on its ``RESULT `` line; RuntimeError with its stderr when it fails."""
    cmd = [sys.executable, script, *args]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def run_pycolmap_known_K(images: str, pinhole: tuple[float, float, float, float], threads: int,
                         match: str = "exhaustive", overlap: int = 10) -> dict:
    """pycolmap's extraction (8,192 SIFT), matching (``exhaustive`` or ``sequential`` with
    ``overlap``) and incremental mapping with a fixed PINHOLE camera ``(fx, fy, cx, cy)`` in
    geomvision's pixel convention. Returns the stage times, the largest model's poses by image
    name ((R, t) lists), the number of models and that model's points."""
    fx, fy, cx, cy = (float(v) for v in pinhole)
    params = f"{fx!r},{fy!r},{cx + 0.5!r},{cy + 0.5!r}"  # COLMAP: the top-left pixel's centre is (0.5, 0.5)
    return _pycolmap_pipeline(images, threads, "PINHOLE", params, False, match, overlap)


def run_pycolmap_exif(images: str, threads: int, match: str = "exhaustive", overlap: int = 10) -> dict:
    """As :func:`run_pycolmap_known_K`, but one SIMPLE_RADIAL camera started from the images'
    EXIF focal length (a prior) and refined by COLMAP's bundle adjustments (its defaults)."""
    return _pycolmap_pipeline(images, threads, "SIMPLE_RADIAL", "", True, match, overlap)


def _pycolmap_pipeline(images: str, threads: int, model: str, params: str, refine: bool, match: str,
                       overlap: int) -> dict:
    import tempfile
    import time

    import numpy as np
    import pycolmap

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "db.db")
        t0 = time.perf_counter()
        eo = pycolmap.FeatureExtractionOptions()
        eo.num_threads = threads
        eo.sift.max_num_features = 8192
        ro = pycolmap.ImageReaderOptions()
        ro.camera_model = model
        if params:
            ro.camera_params = params
        pycolmap.extract_features(db, images, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=ro,
                                  extraction_options=eo, device=pycolmap.Device.cpu)
        t1 = time.perf_counter()
        mo = pycolmap.FeatureMatchingOptions()
        mo.num_threads = threads
        if match == "sequential":
            so = pycolmap.SequentialPairingOptions()
            so.overlap = overlap
            so.quadratic_overlap = False
            pycolmap.match_sequential(db, matching_options=mo, pairing_options=so, device=pycolmap.Device.cpu)
        else:
            pycolmap.match_exhaustive(db, matching_options=mo, device=pycolmap.Device.cpu)
        t2 = time.perf_counter()
        po = pycolmap.IncrementalPipelineOptions()
        po.num_threads = threads
        if not refine:
            po.ba_refine_focal_length = False
            po.ba_refine_principal_point = False
            po.ba_refine_extra_params = False
        out = os.path.join(tmp, "sparse")
        os.makedirs(out)
        maps = pycolmap.incremental_mapping(db, images, out, options=po)
        t3 = time.perf_counter()
    stages = {"features": t1 - t0, "matching": t2 - t1, "verification+mapping": t3 - t2}
    poses: dict = {}
    n_points = 0
    if maps:
        rec = max(maps.values(), key=lambda r: r.num_reg_images())
        n_points = rec.num_points3D()
        for img in rec.images.values():
            if img.has_pose:
                T = img.cam_from_world()
                poses[img.name] = (T.rotation.matrix().tolist(), np.asarray(T.translation).tolist())
    return {"wall_s": t3 - t0, "stages": stages, "poses": poses, "num_models": len(maps), "num_points": n_points}


def run_ours_timed(images: Path, options) -> tuple:
    """``run_sfm(images, options)`` with an empty feature cache: (result, wall seconds, poses of
    the largest model as {name: (R, t) lists})."""
    import tempfile
    import time

    from geomvision.sfm import run_sfm

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_sfm(images, options, cache_dir=tmp, progress=False)
        wall = time.perf_counter() - t0
    rec = res.reconstructions[0]
    poses = {rec.images[i].name: (rec.images[i].cam_from_world.R.tolist(), rec.images[i].cam_from_world.t.tolist())
             for i in rec.registered_image_ids}
    return res, wall, poses
