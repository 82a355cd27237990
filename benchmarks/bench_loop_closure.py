"""Loop closure: drift with and without it on a rendered loop, and the shared loop sequences.

    .venv/bin/python benchmarks/bench_loop_closure.py [--frames 160] [--width 320] [--skip-real]
        [--only-real] [--pycolmap]

1. A rendered walk once round the demo scene (``render_walk(N, arc_deg=360)``: the last frames
   revisit the first; exact poses), tracked by ``OnlineMapper`` with loop closure off and on,
   then one global bundle adjustment (``adjust_global``) in both runs. Figures: the drift at the
   loop's end (camera-centre error of the last 10 frames after aligning the first 20 on the
   truth with a similarity), the trajectory error of all frames after a similarity alignment
   (rms), loops closed, time per frame.
2. The same rendered frames through the batch pipeline (``run_sfm``, the known K, sequential
   matching with a window of 10) with loop detection (retrieval pairs beyond the window) off and
   on: the same drift and trajectory figures.
3. The batch pipeline on the shared loop sequences: ``desk-loop`` (sequential matching with
   retrieval pairs; plain SIFT, then affine-simulated SIFT ``--affine-max-tilt 4``, with the
   README's approximate focal length 520 px) and ``dino-ring`` (sequential matching with
   retrieval, its K): images registered, models, and for dino-ring the mean camera-centre error
   of the largest model after a similarity alignment (its ground truth).

With ``--pycolmap``, pycolmap runs on the rendered loop (part 2) and the shared sequences too
(same fixed intrinsics, exhaustive and sequential matching) in the same run. Its sequential matcher's loop detection needs a
vocabulary-tree file, which cannot be downloaded on this machine, so it runs without it.
``--only-real`` runs part 3 (and pycolmap) alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _align_errors(C: np.ndarray, G: np.ndarray, fit: slice | None = None) -> np.ndarray:
    from geomvision.scene.align import umeyama

    fit = fit or slice(None)
    s, T = umeyama(C[fit], G[fit])
    return np.linalg.norm(s * (C @ T.R.T + T.t) - G, axis=1)


def _centres(poses: dict, names: list[str]) -> np.ndarray:
    """Camera centres (N,3) of ``names`` from poses given as {name: (R, t) lists} (cam_from_world)."""
    return np.array([-np.array(poses[n][0]).T @ np.array(poses[n][1]) for n in names])


def _drift_figures(C: np.ndarray, G: np.ndarray) -> dict:
    """End drift (mean centre error of the last 10 frames, the first 20 aligned on the truth) and
    ATE (all frames aligned), in mm, of centres C against the true G (N,3)."""
    end = _align_errors(C, G, slice(0, 20))[-10:]
    ate = _align_errors(C, G)
    return {"end_drift_mm": round(1000 * float(end.mean()), 2),
            "ate_rms_mm": round(1000 * float(np.sqrt(np.mean(ate**2))), 2)}


def online(views) -> list[dict]:
    from geomvision.sfm import OnlineMapper, OnlineOptions
    from geomvision.sfm.options import LoopClosureOptions

    frames = len(views.images)
    G = np.array([-T.R.T @ T.t for T in views.cams_from_world])
    length = float(np.sum(np.linalg.norm(np.diff(G, axis=0), axis=1)))
    rows = []
    for on in (False, True):
        m = OnlineMapper(views.camera, OnlineOptions(loop_closure=LoopClosureOptions(enabled=on)))
        t0 = time.perf_counter()
        res = [m.add_frame(img) for img in views.images]
        m.adjust_global()
        dt = time.perf_counter() - t0
        _, poses = m.trajectory()
        C = np.array([-p.R.T @ p.t for p in poses])
        rows.append({"loop_closure": on, "frames": frames, "posed": int(sum(p is not None for p in poses)),
                     "keyframes": m.num_keyframes, "loops": len(m.loops),
                     "loops_pose_graph": int(sum(lp.pose_graph for lp in m.loops)), **_drift_figures(C, G),
                     "length_m": round(length, 2), "ms_per_frame": round(1000 * dt / frames, 1),
                     "lost": sum(r.status == "lost" for r in res)})
    return rows


def batch_loop(views, pycolmap: bool = False) -> list[dict]:
    """``run_sfm`` on the rendered frames, sequential matching, loop detection off and on; with
    ``pycolmap``, pycolmap on the same frames too (sequential, overlap 10, and exhaustive)."""
    import warnings

    import cv2

    from geomvision.sfm import SfmOptions, run_sfm
    from geomvision.sfm.options import CameraOptions

    G = np.array([-T.R.T @ T.t for T in views.cams_from_world])
    fx, fy, cx, cy = views.camera.params[:4]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for name, img in zip(views.names, views.images):
            cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for on in (False, True):
            opts = SfmOptions(matcher="sequential", loop_detection=on, camera=CameraOptions(K=f"{fx},{fy},{cx},{cy}"))
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = run_sfm(folder, opts, cache_dir=Path(tmp) / f"cache{int(on)}", progress=False)
            dt = time.perf_counter() - t0
            rec = res.reconstructions[0] if res.reconstructions else None
            index = {n: k for k, n in enumerate(views.names)}
            ims = [im for im in rec.images.values() if im.cam_from_world is not None] if rec else []
            row = {"loop_detection": on, "frames": len(views.names), "registered": len(ims),
                   "models": len(res.reconstructions), "time_s": round(dt, 1)}
            if len(ims) == len(views.names):
                ims.sort(key=lambda im: index[im.name])
                C = np.array([im.cam_from_world.inverse().t for im in ims])
                row.update(_drift_figures(C, G))
            rows.append(row)
        if pycolmap:
            rows += _pycolmap_on_walk(folder, views, G, (fx, fy, cx, cy))
    return rows


def _pycolmap_on_walk(folder: Path, views, G: np.ndarray, pinhole: tuple) -> list[dict]:
    """pycolmap's rows of :func:`batch_loop` (its largest model; drift figures when it holds every frame)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _workers import run_pycolmap_known_K

    index = {n: k for k, n in enumerate(views.names)}
    rows = []
    for match in ("sequential", "exhaustive"):
        out = run_pycolmap_known_K(str(folder), pinhole, 2, match=match)
        row = {"pipeline": f"pycolmap {match}", "frames": len(views.names), "registered": len(out["poses"]),
               "models": out["num_models"], "time_s": round(out["wall_s"], 1)}
        if len(out["poses"]) == len(views.names):
            names = sorted(out["poses"], key=index.get)
            C = _centres(out["poses"], names)
            row.update(_drift_figures(C, G))
        rows.append(row)
    return rows


def batch(data: Path) -> list[dict]:
    import warnings

    from geomvision.sfm import SfmOptions, run_sfm
    from geomvision.sfm.options import CameraOptions
    from geomvision.features import FeatureOptions

    rows = []
    runs = [
        ("desk-loop", "SIFT", data / "desk-loop" / "images",
         SfmOptions(matcher="sequential", camera=CameraOptions(K="520,520,319.5,239.5"))),
        ("desk-loop", "ASIFT tilt 4", data / "desk-loop" / "images",
         SfmOptions(matcher="sequential", camera=CameraOptions(K="520,520,319.5,239.5"),
                    features=FeatureOptions(affine_max_tilt=4, max_num_features=40000))),
        ("dino-ring", "SIFT", data / "dino-ring" / "images",
         SfmOptions(matcher="sequential", camera=CameraOptions(K=str(data / "dino-ring" / "K.txt")))),
    ]
    for name, feats, folder, opts in runs:
        t0 = time.perf_counter()
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as cache:
            warnings.simplefilter("ignore")
            try:
                res = run_sfm(folder, opts, cache_dir=cache, progress=False)
                models = res.reconstructions
            except ValueError as exc:
                models, err = [], str(exc)
        dt = time.perf_counter() - t0
        row = {"sequence": name, "features": feats, "images": len(list(folder.iterdir())),
               "registered": sum(r.num_registered_images for r in models), "models": len(models),
               "largest": max((r.num_registered_images for r in models), default=0), "time_s": round(dt, 1)}
        gt_file = folder.parent / "gt_cameras.json"
        if models and gt_file.is_file():
            gt = json.loads(gt_file.read_text())["cameras"]
            rec = models[0]
            ims = [im for im in rec.images.values() if im.cam_from_world is not None]
            C = np.array([im.cam_from_world.inverse().t for im in ims])
            G = np.array([gt[im.name]["C"] for im in ims])
            row["largest_mean_centre_error_mm"] = round(1000 * float(_align_errors(C, G).mean()), 2)
        if models:  # without ground truth: how close the first and last frames end, per path length
            ims = sorted((im for im in models[0].images.values() if im.cam_from_world is not None),
                         key=lambda im: im.name)
            C = np.array([im.cam_from_world.inverse().t for im in ims])
            names = sorted(p.name for p in folder.iterdir())
            if len(C) > 2 and ims[0].name == names[0] and ims[-1].name == names[-1]:
                length = float(np.sum(np.linalg.norm(np.diff(C, axis=0), axis=1)))
                row["first_last_gap_per_path_length"] = round(float(np.linalg.norm(C[0] - C[-1])) / length, 4)
        rows.append(row)
    return rows


def batch_pycolmap(data: Path) -> list[dict]:
    """pycolmap 4 on the same sequences with the same fixed intrinsics (8,192 SIFT), exhaustive
    and sequential matching (overlap 10, no vocabulary-tree loop detection: see above)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _workers import run_pycolmap_known_K

    rows = []
    for name, K in (("desk-loop", (520.0, 520.0, 319.5, 239.5)), ("dino-ring", None)):
        folder = data / name / "images"
        if K is None:
            M = np.loadtxt(data / name / "K.txt")
            K = (M[0, 0], M[1, 1], M[0, 2], M[1, 2])
        for match in ("exhaustive", "sequential"):
            out = run_pycolmap_known_K(str(folder), K, 2, match=match)
            row = {"sequence": name, "pipeline": f"pycolmap {match}", "images": len(list(folder.iterdir())),
                   "registered_largest": len(out["poses"]), "models": out["num_models"],
                   "time_s": round(out["wall_s"], 1)}
            gt_file = folder.parent / "gt_cameras.json"
            if out["poses"] and gt_file.is_file():
                gt = json.loads(gt_file.read_text())["cameras"]
                names = sorted(out["poses"])
                C = _centres(out["poses"], names)
                G = np.array([gt[n]["C"] for n in names])
                row["largest_mean_centre_error_mm"] = round(1000 * float(_align_errors(C, G).mean()), 2)
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--only-real", action="store_true", help="only the shared loop sequences (desk-loop, dino-ring)")
    p.add_argument("--pycolmap", action="store_true", help="also pycolmap on the shared loop sequences")
    p.add_argument("--skip-batch", action="store_true", help="skip run_sfm on the rendered loop")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from geomvision.io.datasets import data_root

    data = data_root()
    if data is None and not args.skip_real:
        p.error("the shared datasets were not found: set GEOMVISION_DATA or pass --skip-real")
    from geomvision.synthetic import render_walk

    out = {}

    def real_sequences() -> None:
        out["batch"] = batch(data)
        for r in out["batch"]:
            print("batch", json.dumps(r))
        if args.pycolmap:
            out["pycolmap"] = batch_pycolmap(data)
            for r in out["pycolmap"]:
                print("pycolmap", json.dumps(r))

    if args.only_real:
        real_sequences()
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0
    views = render_walk(args.frames, width=args.width, height=args.width * 3 // 4, arc_deg=360.0)
    out["online"] = online(views)
    for r in out["online"]:
        print("online", json.dumps(r))
    off, on = out["online"]
    print(f"end drift {off['end_drift_mm']} mm -> {on['end_drift_mm']} mm with loop closure "
          f"({off['end_drift_mm'] / max(on['end_drift_mm'], 1e-9):.1f}x); ATE {off['ate_rms_mm']} -> {on['ate_rms_mm']} mm")
    if not args.skip_batch:
        out["batch_loop"] = batch_loop(views, args.pycolmap)
        for r in out["batch_loop"]:
            print("batch on the rendered loop", json.dumps(r))
        off, on = out["batch_loop"][:2]
        if "end_drift_mm" in off and "end_drift_mm" in on:
            print(f"batch: end drift {off['end_drift_mm']} mm -> {on['end_drift_mm']} mm with loop detection "
                  f"({off['end_drift_mm'] / max(on['end_drift_mm'], 1e-9):.1f}x)")
    if not args.skip_real:
        real_sequences()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
