"""Online mapping: ``OnlineMapper`` frame by frame next to batch ``run_sfm`` and pycolmap on one rendered walk.

The walk (``geomvision.synthetic.render_walk``: a hand-held camera on a circle around the demo
scene, exact PINHOLE intrinsics and exact poses) is rendered once and written as PNG. Then, one
fresh subprocess per method (OPENBLAS_NUM_THREADS=1, as bench_sfm), all under an exclusive lock
on /tmp/bench.lock so that no other benchmark holding it runs at the same time:

- online: ``OnlineMapper(camera)`` fed the frames (decoded into memory before timing) one by one
  with ``add_frame``; a first mapper on the first frames is run once and discarded (numba
  kernels compiled or loaded from the on-disk cache), its time reported apart. Per-frame latency
  is ``FrameResult.time_s`` (features included), split by status; right after each call the
  frame's SIFT alone (the mapper's feature options) is timed, outside the call, to split the
  latency into features and the rest; poses from ``trajectory()`` after the last frame, and again
  after one ``adjust_global()`` (a robot's end of session; its time reported apart);
- batch: ``run_sfm`` on the PNG folder, the known K held fixed, sequential matching (window 10),
  feature cache empty (numba kernels compiled once in the parent before timing, as bench_sfm);
- pycolmap (if importable): feature extraction, sequential matching (overlap 10, no quadratic
  overlap: run_sfm's window pairs; run_sfm adds its retrieval pairs, ``loop_detection``, on
  top, pycolmap's loop detection needs a vocabulary tree and stays off), incremental mapping with
  the known PINHOLE intrinsics held fixed; CPU.

Every trajectory is scored the same way: camera centres (C = -R^T t) of the posed frames aligned
to the truth by a 7-dof similarity (``scene.align.umeyama``); RMSE and max centre error (mm: the
scene is in metres), RMSE relative to the length of the true trajectory, and the median rotation
error after the alignment.

    .venv/bin/python benchmarks/bench_online.py [--frames 150] [--arc-deg 150] [--repeats 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _workers import peak_rss_mb
from _workers import run_pycolmap_known_K
from _workers import spawn as _spawn

LOCK = "/tmp/bench.lock"
WARMUP_FRAMES = 10
KINDS = ("online", "batch", "pycolmap")


# --- scoring -------------------------------------------------------------------------------------
def score(poses: dict, truth: dict, length: float) -> dict:
    """ATE of ``poses`` {name: (R, t)} against ``truth`` {name: (R, t)} after a similarity alignment."""
    from geomvision.geometry.rotation import rotation_error_deg
    from geomvision.scene.align import umeyama

    names = sorted(n for n in poses if n in truth)
    out = {"posed": len(names), "num_frames": len(truth)}
    if len(names) < 3:
        return {**out, "ate_rmse_mm": float("nan"), "ate_max_mm": float("nan"), "ate_rel": float("nan"),
                "rot_median_deg": float("nan")}
    R_est = np.array([poses[n][0] for n in names], float)
    t_est = np.array([poses[n][1] for n in names], float)
    R_gt = np.array([truth[n][0] for n in names], float)
    t_gt = np.array([truth[n][1] for n in names], float)
    C_est = -np.einsum("kji,kj->ki", R_est, t_est)  # -R^T t
    C_gt = -np.einsum("kji,kj->ki", R_gt, t_gt)
    s, T = umeyama(C_est, C_gt)  # C_gt ~ s * (T.R @ C_est + T.t)
    err = np.linalg.norm(s * (C_est @ T.R.T + T.t) - C_gt, axis=1)
    rot = np.atleast_1d(rotation_error_deg(R_est @ T.R.T, R_gt))  # aligned cam_from_world: R_est T.R^T
    rmse = float(np.sqrt(np.mean(err**2)))
    return {**out, "ate_rmse_mm": 1000 * rmse, "ate_max_mm": 1000 * float(err.max()), "ate_rel": rmse / length,
            "rot_median_deg": float(np.median(rot))}


# --- workers (one fresh process each) ------------------------------------------------------------
def _load(data_dir: Path):
    from geomvision import Camera

    meta = json.loads((data_dir / "meta.json").read_text())
    camera = Camera("PINHOLE", meta["width"], meta["height"], meta["params"])
    return meta, camera


def worker_online(data_dir: Path, threads: int) -> dict:
    from geomvision.features import extract_features
    from geomvision.imageio import read_image
    from geomvision.sfm import OnlineMapper

    meta, camera = _load(data_dir)
    names = meta["names"]
    frames = [read_image(data_dir / "images" / n) for n in names]  # in memory before any timing

    t0 = time.perf_counter()
    warm = OnlineMapper(camera)
    warm_status = [warm.add_frame(img).status for img in frames[:WARMUP_FRAMES]]
    first_run_s = time.perf_counter() - t0
    del warm

    m = OnlineMapper(camera)
    status, times, inliers, reasons, sift = [], [], [], {}, []
    t0 = time.perf_counter()
    for k, img in enumerate(frames):
        r = m.add_frame(img)
        # SIFT alone on the same frame with the mapper's options, right after (same load): the
        # floor of the frame's latency; outside add_frame, so not in time_s
        t1 = time.perf_counter()
        extract_features(img, m.opt.features)
        sift.append(time.perf_counter() - t1)
        status.append(r.status)
        times.append(r.time_s)
        inliers.append(int(r.num_inliers))
        if r.status in ("lost", "rejected", "relocalised") or (r.status == "initialising" and r.reason):
            reasons[k] = r.reason
    loop_s = time.perf_counter() - t0 - sum(sift)
    t1 = time.perf_counter()
    _, traj = m.trajectory()
    traj_s = time.perf_counter() - t1
    poses = {names[k]: (T.R.tolist(), T.t.tolist()) for k, T in enumerate(traj) if T is not None}
    s = m.state
    kf_frames = [int(m.keyframe_frame[i]) for i in np.flatnonzero(s.registered)]
    kf_poses = {names[m.keyframe_frame[i]]: (s.pose(i).R.tolist(), s.pose(i).t.tolist())
                for i in np.flatnonzero(s.registered)}
    # a robot's end of session: one global bundle adjustment, then the trajectory again
    t1 = time.perf_counter()
    m.adjust_global()
    adjust_s = time.perf_counter() - t1
    _, traj = m.trajectory()
    adjusted = {names[k]: (T.R.tolist(), T.t.tolist()) for k, T in enumerate(traj) if T is not None}
    return {"wall_s": loop_s, "first_run_s": first_run_s, "first_run_frames": len(warm_status),
            "first_run_status": warm_status, "trajectory_s": traj_s, "status": status, "time_s": times,
            "num_inliers": inliers, "sift_ms": [1000 * x for x in sift], "reasons": reasons,
            "keyframe_frames": kf_frames,
            "num_keyframes": int(m.num_keyframes), "num_points": int(s.point_valid.sum()),
            "num_loops": len(getattr(m, "loops", [])),
            "poses": poses, "keyframe_poses": kf_poses, "adjusted_poses": adjusted, "adjust_global_s": adjust_s}


def worker_batch(data_dir: Path, threads: int) -> dict:
    from geomvision.sfm import CameraOptions, SfmOptions, run_sfm

    meta, _ = _load(data_dir)
    K = ",".join(repr(float(v)) for v in meta["params"])  # "fx,fy,cx,cy"
    opt = SfmOptions(camera=CameraOptions(K=K), matcher="sequential", num_threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_sfm(data_dir / "images", opt, cache_dir=tmp, progress=False)
        wall = time.perf_counter() - t0
    rec = res.reconstructions[0]  # largest first
    poses = {rec.images[i].name: (rec.images[i].cam_from_world.R.tolist(), rec.images[i].cam_from_world.t.tolist())
             for i in rec.registered_image_ids}
    t = res.report["timings_s"]
    stages = {"features": t["features"], "matching": t["matching"],
              "verification+mapping": t["verification"] + t["tracks"] + t["keypoint_refinement"] + t["mapping"]}
    rep = res.report
    return {"wall_s": wall, "stages": stages, "poses": poses, "num_models": len(res.reconstructions),
            "num_points": len(rec.points3D), "matcher": rep.get("matcher", "?"),
            "num_pairs": rep.get("num_pairs_matched", -1), "num_retrieval_pairs": len(rep.get("retrieval_pairs", []))}


def worker_pycolmap(data_dir: Path, threads: int) -> dict:
    meta, _ = _load(data_dir)
    n_img, overlap = len(meta["names"]), 10
    out = run_pycolmap_known_K(str(data_dir / "images"), tuple(meta["params"]), threads, "sequential", overlap)
    return {**out, "matcher": "sequential", "num_pairs": sum(min(overlap, n_img - 1 - i) for i in range(n_img))}


def run_worker(args) -> int:
    fn = {"online": worker_online, "batch": worker_batch, "pycolmap": worker_pycolmap}[args.worker]
    out = fn(Path(args.data_dir), args.threads)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))
    return 0


def spawn(kind: str, data_dir: Path, threads: int) -> dict:
    return _spawn(__file__, ["--worker", kind, "--data-dir", str(data_dir), "--threads", str(threads)], kind)


# --- parent ----------------------------------------------------------------------------------------
def render(data_dir: Path, n: int, width: int, height: int, arc_deg: float) -> tuple[dict, float]:
    """Render the walk into ``data_dir/images`` (PNG) + ``meta.json``; returns the truth and its length."""
    import cv2

    from geomvision.synthetic import render_walk

    views = render_walk(n, width=width, height=height, arc_deg=arc_deg)
    (data_dir / "images").mkdir(parents=True)
    for name, img in zip(views.names, views.images):
        if not cv2.imwrite(str(data_dir / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {name}")
    cam = views.camera
    meta = {"width": cam.width, "height": cam.height, "params": [float(v) for v in cam.params],
            "names": list(views.names)}
    (data_dir / "meta.json").write_text(json.dumps(meta))
    truth = {nm: (T.R.tolist(), T.t.tolist()) for nm, T in zip(views.names, views.cams_from_world)}
    C = np.array([-T.R.T @ T.t for T in views.cams_from_world])
    return truth, float(np.linalg.norm(np.diff(C, axis=0), axis=1).sum())


def warm_up_jit() -> float:
    """Compile (or load) geomvision's numba kernels for run_sfm on a small rendered scene, outside the timing."""
    from geomvision.sfm import run_sfm
    from geomvision.synthetic.rendered_datasets import render_orbit_dataset

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        render_orbit_dataset(Path(tmp) / "s", n_images=4, width=320, height=240, arc_deg=40.0, rng=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the warm-up scene has no K: run_sfm warns about its prior
            run_sfm(Path(tmp) / "s" / "images", cache_dir=Path(tmp) / "c", progress=False)
    return time.perf_counter() - t0


class BenchLock:
    """Exclusive flock on /tmp/bench.lock around the timed runs."""

    def __enter__(self):
        self.f = open(LOCK, "a+")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {LOCK} (another benchmark is running) ...", flush=True)
            t0 = time.perf_counter()
            fcntl.flock(self.f, fcntl.LOCK_EX)
            print(f"  got it after {time.perf_counter() - t0:.0f} s", flush=True)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def code_version() -> str:
    """The geomvision commit measured, '+dirty' when geomvision/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "geomvision"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _lat(times: list, status: list, which: tuple[str, ...]) -> dict:
    t = np.array([x for x, s in zip(times, status) if s in which])
    if len(t) == 0:
        return {"n": 0, "median_ms": float("nan"), "p95_ms": float("nan"), "max_ms": float("nan")}
    return {"n": int(len(t)), "median_ms": 1000 * float(np.median(t)), "p95_ms": 1000 * float(np.percentile(t, 95)),
            "max_ms": 1000 * float(t.max())}


def summarise_online(r: dict) -> dict:
    status, times = list(r["status"]), list(r["time_s"])
    init = status.index("keyframe") if "keyframe" in status else None  # the frame that initialised the map
    st = [("initialisation" if k == init else s) for k, s in enumerate(status)]
    counts = {s: st.count(s) for s in ("initialising", "initialisation", "tracking", "keyframe", "lost",
                                       "relocalised", "rejected")}
    return {"counts": counts, "tracking": _lat(times, st, ("tracking",)), "keyframe": _lat(times, st, ("keyframe",)),
            "all": _lat(times, st, tuple(set(st))), "relocalised": _lat(times, st, ("relocalised",)),
            "lost": _lat(times, st, ("lost",)), "initialising": _lat(times, st, ("initialising",)),
            "initialisation_ms": 1000 * times[init] if init is not None else float("nan"),
            "slowest": sorted(((1000 * t, k, st[k]) for k, t in enumerate(times)), reverse=True)[:5]}


def _beyond_sift(r: dict) -> dict:
    """Median per-frame latency minus the same frame's SIFT-alone time, by status."""
    d = 1000 * np.array(r["time_s"]) - np.array(r["sift_ms"])
    st = np.array(r["status"])
    return {k: float(np.median(d[st == k])) for k in ("tracking", "keyframe") if (st == k).any()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--arc-deg", type=float, default=150.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--repeats", type=int, default=1, help="runs per method (the order rotates); times are medians")
    ap.add_argument("--threads", type=int, default=2, help="threads of run_sfm and pycolmap")
    ap.add_argument("--skip", nargs="*", default=[], choices=KINDS, help="methods not to run")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return run_worker(args)

    kinds = [k for k in KINDS if k not in args.skip]
    if "pycolmap" in kinds:
        try:
            import pycolmap

            print(f"pycolmap {pycolmap.__version__}")
        except ImportError:
            print("pycolmap is not importable: its row is skipped")
            kinds.remove("pycolmap")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "walk"
        t0 = time.perf_counter()
        truth, length = render(data_dir, args.frames, args.width, args.height, args.arc_deg)
        print(f"rendered {args.frames} frames of {args.width}x{args.height}, {args.arc_deg:g} degree arc, "
              f"true trajectory {length:.2f} m, in {time.perf_counter() - t0:.1f} s (not timed)", flush=True)
        runs: dict[str, list] = {k: [] for k in kinds}
        with BenchLock():
            load = os.getloadavg()
            version = code_version()
            print(f"geomvision {version}", flush=True)
            if "batch" in kinds:
                print(f"JIT warm-up of run_sfm (not timed): {warm_up_jit():.1f} s", flush=True)
            for rep in range(args.repeats):
                order = kinds[rep % len(kinds):] + kinds[: rep % len(kinds)]
                for kind in order:
                    r = spawn(kind, data_dir, args.threads)
                    r["score"] = score(r.pop("poses"), truth, length)
                    if "keyframe_poses" in r:
                        r["keyframe_score"] = score(r.pop("keyframe_poses"), truth, length)
                        r["adjusted_score"] = score(r.pop("adjusted_poses"), truth, length)
                    runs[kind].append(r)
                    sc = r["score"]
                    extra = ("  ".join(f"{k} {v:5.1f}" for k, v in r["stages"].items()) if "stages" in r
                             else f"first run ({r['first_run_frames']} frames) {r['first_run_s']:.1f} s")
                    print(f"  {kind:9s} {r['wall_s']:6.1f} s  {extra}  peak {r['peak_rss_mb']:5.0f} MB  "
                          f"posed {sc['posed']}/{sc['num_frames']}  ATE {sc['ate_rmse_mm']:.2f} mm", flush=True)
            load = (load, os.getloadavg())
            if code_version() != version:
                print(f"WARNING: geomvision changed during the run ({version} -> {code_version()})")

    # --- figures
    fig: dict = {"geomvision": version, "frames": args.frames, "arc_deg": args.arc_deg, "width": args.width,
                 "height": args.height, "true_length_m": length, "threads": args.threads, "load_average": load,
                 "methods": {}}
    for kind, rs in runs.items():
        r0 = rs[0]
        d = {"wall_s": float(np.median([r["wall_s"] for r in rs])), "wall_s_all": [r["wall_s"] for r in rs],
             "peak_rss_mb": max(r["peak_rss_mb"] for r in rs), **r0["score"]}
        if kind == "online":
            d.update(summarise_online(r0))
            d.update({"first_run_s": r0["first_run_s"], "first_run_frames": r0["first_run_frames"],
                      "num_keyframes": r0["num_keyframes"], "num_points": r0["num_points"],
                      "num_loops": r0["num_loops"],
                      "keyframe_score": r0["keyframe_score"], "trajectory_s": r0["trajectory_s"],
                      "adjusted_score": r0["adjusted_score"], "adjust_global_s": r0["adjust_global_s"],
                      "sift_median_ms": float(np.median(r0["sift_ms"])),
                      "sift_p95_ms": float(np.percentile(r0["sift_ms"], 95)),
                      "beyond_sift_ms": _beyond_sift(r0),
                      "reasons": r0["reasons"], "status": r0["status"], "time_s": r0["time_s"],
                      "num_inliers": r0["num_inliers"], "keyframe_frames": r0["keyframe_frames"],
                      "same_result_every_run": all(r["status"] == r0["status"] for r in rs)})
            if len(rs) > 1:  # latency of every run (the figures above are the first run's)
                per = [summarise_online(r) for r in rs]
                d["per_run"] = {k: [p[k]["median_ms"] for p in per] for k in ("tracking", "keyframe")}
                d["per_run"]["wall_s"] = [r["wall_s"] for r in rs]
        else:
            d.update({"stages": {k: float(np.median([r["stages"][k] for r in rs])) for k in r0["stages"]},
                      "num_models": r0["num_models"], "num_points": r0["num_points"], "matcher": r0["matcher"],
                      "num_pairs": r0["num_pairs"]})
            if "num_retrieval_pairs" in r0:
                d["num_retrieval_pairs"] = r0["num_retrieval_pairs"]
        fig["methods"][kind] = d

    M = fig["methods"]
    print()
    print(f"{'method':9s} {'posed':>8s} {'ATE mm':>8s} {'max mm':>8s} {'ATE/len':>9s} {'rot deg':>8s} "
          f"{'total s':>8s} {'s/frame':>8s} {'peak MB':>8s}")
    for kind, d in M.items():
        print(f"{kind:9s} {d['posed']:>4d}/{d['num_frames']:<3d} {d['ate_rmse_mm']:8.2f} {d['ate_max_mm']:8.2f} "
              f"{d['ate_rel']:9.2e} {d['rot_median_deg']:8.4f} {d['wall_s']:8.1f} {d['wall_s'] / args.frames:8.3f} "
              f"{d['peak_rss_mb']:8.0f}")
    if "online" in M:
        o = M["online"]
        print()
        print(f"online: {o['num_keyframes']} keyframes, {o['num_points']} points, {o['num_loops']} loops closed; "
              f"statuses {o['counts']}")
        print(f"  first run on {o['first_run_frames']} frames (numba compile / cache load, discarded): "
              f"{o['first_run_s']:.1f} s")
        for k, goal in (("tracking", 100), ("keyframe", 300), ("relocalised", None), ("lost", None),
                        ("initialising", None)):
            lat = o[k]
            if lat["n"]:
                print(f"  {k:12s} n={lat['n']:3d}  median {lat['median_ms']:6.1f} ms  95 % {lat['p95_ms']:6.1f} ms  "
                      f"max {lat['max_ms']:6.1f} ms" + (f"  (goal median <= {goal} ms: "
                                                         f"{'met' if lat['median_ms'] <= goal else 'NOT met'})"
                                                         if goal else ""))
        print(f"  SIFT alone ({args.width}x{args.height} frames, the mapper's feature options), per frame: median "
              f"{o['sift_median_ms']:.1f} ms, 95 % {o['sift_p95_ms']:.1f} ms; latency beyond SIFT (median of the "
              "per-frame difference): " + ", ".join(f"{k} {v:.1f} ms" for k, v in o["beyond_sift_ms"].items()))
        print(f"  initialisation keyframe {o['initialisation_ms']:.0f} ms; slowest frames (ms, index, status): "
              + ", ".join(f"{t:.0f} #{k} {s}" for t, k, s in o["slowest"]))
        if "per_run" in o:
            print("  every run: tracking median " + " / ".join(f"{v:.1f}" for v in o["per_run"]["tracking"])
                  + " ms, keyframe median " + " / ".join(f"{v:.1f}" for v in o["per_run"]["keyframe"])
                  + f" ms; same statuses in every run: {o['same_result_every_run']}")
        ks = o["keyframe_score"]
        print(f"  keyframes alone: ATE {ks['ate_rmse_mm']:.2f} mm over {ks['posed']}; trajectory() "
              f"{1000 * o['trajectory_s']:.1f} ms")
        ad = o["adjusted_score"]
        print(f"  after adjust_global() ({o['adjust_global_s']:.2f} s): ATE {ad['ate_rmse_mm']:.2f} mm over {ad['posed']}")
        odd = [(int(k), why) for k, why in o["reasons"].items() if o["status"][int(k)] != "initialising"]
        for k, why in odd[:10]:
            print(f"  frame {k} {o['status'][k]}: {why}")
        if len(odd) > 10:
            print(f"  ... {len(odd) - 10} more lost / relocalised frames (see --json)")
        ratios = {}
        for ref in ("batch", "pycolmap"):
            if ref in M:
                ratios[f"ate_online_over_{ref}"] = o["ate_rmse_mm"] / M[ref]["ate_rmse_mm"]
                ratios[f"time_online_over_{ref}"] = o["wall_s"] / M[ref]["wall_s"]
        if "batch" in M and "pycolmap" in M:
            ratios["ate_batch_over_pycolmap"] = M["batch"]["ate_rmse_mm"] / M["pycolmap"]["ate_rmse_mm"]
            ratios["time_batch_over_pycolmap"] = M["batch"]["wall_s"] / M["pycolmap"]["wall_s"]
        fig["ratios"] = ratios
        if ratios:
            print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
        if "ate_online_over_batch" in ratios:
            v = ratios["ate_online_over_batch"]
            print(f"  goal online ATE <= 1.5x batch: {'met' if v <= 1.5 else 'NOT met'} ({v:.2f}x)")
    for kind in ("batch", "pycolmap"):
        if kind in M:
            print(f"{kind}: {M[kind]['num_models']} model(s), {M[kind]['num_points']} points, {M[kind]['matcher']} "
                  f"matching of {M[kind]['num_pairs']} pairs; stages "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in M[kind]["stages"].items()))
    print(f"load average at start / end of the timed section: {load[0][0]:.2f} / {load[1][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
