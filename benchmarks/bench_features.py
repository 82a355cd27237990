"""Feature extraction + exhaustive matching: geomvision vs pycolmap (COLMAP 4 SIFT, CPU) on a Strecha scene.

    .venv/bin/python benchmarks/bench_features.py [--scene fountain-P11] [--quick] [--threads 2]

Prints, for the same images in one run:
1. matcher alternatives on one real pair (8k x 8k RootSIFT): ms per pair and recall against the
   exact result (ours, cv2.BFMatcher, cv2.FlannBasedMatcher);
2. per-image extraction and per-pair matching time, ours vs pycolmap (extract_features and
   match_exhaustive without geometric verification, into a temporary database), with ratios;
3. how many matches each finds and the fraction within 2 px (Sampson) of the ground-truth
   epipolar geometry.
Wall times on a shared machine are noisy: CPU seconds of this process are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from geomvision.features import (
    FeatureOptions,
    MatchOptions,
    exhaustive_pairs,
    extract_all,
    match_all,
    match_descriptors,
    unit_descriptors,
)
from geomvision.geometry.epipolar import fundamental_from_pose, sampson_sq_errors
from geomvision.io.datasets import data_root, load_strecha_scene


class Timer:
    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def knn_mutual_ratio(knn12, knn21, ratio: float, max_distance: float) -> set[tuple[int, int]]:
    def one_way(knn):
        out = {}
        for m in knn:
            if len(m) == 2 and m[0].distance < ratio * m[1].distance and m[0].distance <= max_distance:
                out[m[0].queryIdx] = m[0].trainIdx
        return out

    fwd, bwd = one_way(knn12), one_way(knn21)
    return {(i, j) for i, j in fwd.items() if bwd.get(j) == i}


def bench_matchers(d1: np.ndarray, d2: np.ndarray, repeats: int) -> list[tuple[str, float, float, int]]:
    """(name, ms per pair, recall vs exact, #matches) for the matcher alternatives."""
    opts = MatchOptions()
    rows = []

    def best_of(fn):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, 1000 * min(times)

    exact, ms = best_of(lambda: match_descriptors(d1, d2, opts, num_threads=2))
    ref = {tuple(r) for r in exact.tolist()}
    rows.append(("geomvision exact, 2 threads (sgemm + numba)", ms, 1.0, len(ref)))
    _, ms1 = best_of(lambda: match_descriptors(d1, d2, opts, num_threads=1))
    rows.append(("geomvision exact, 1 thread", ms1, 1.0, len(ref)))
    A, B = unit_descriptors(d1), unit_descriptors(d2)
    bf = cv2.BFMatcher(cv2.NORM_L2)
    got, ms = best_of(lambda: knn_mutual_ratio(bf.knnMatch(A, B, k=2), bf.knnMatch(B, A, k=2), 0.8, 0.7))
    rows.append(("cv2.BFMatcher knnMatch x2", ms, len(got & ref) / max(1, len(ref)), len(got)))
    for trees, checks in ((4, 32), (4, 128)):
        fl = cv2.FlannBasedMatcher({"algorithm": 1, "trees": trees}, {"checks": checks})
        got, ms = best_of(lambda fl=fl: knn_mutual_ratio(fl.knnMatch(A, B, k=2), fl.knnMatch(B, A, k=2), 0.8, 0.7))
        rows.append((f"cv2.FLANN kd-trees={trees} checks={checks}", ms, len(got & ref) / max(1, len(ref)), len(got)))
    return rows


def epipolar_inlier_fraction(scene, matches: dict, keypoints: dict) -> tuple[int, float]:
    total, good = 0, 0
    for (a, b), m in matches.items():
        if len(m) == 0:
            continue
        c2_from_c1 = scene.cams_from_world[b] @ scene.cams_from_world[a].inverse()
        F = fundamental_from_pose(c2_from_c1, scene.cameras[a], scene.cameras[b])
        err = sampson_sq_errors(F, keypoints[a][m[:, 0]], keypoints[b][m[:, 1]])
        total += len(m)
        good += int(np.count_nonzero(err < 4.0))
    return total, good / max(1, total)


def run_pycolmap(scene, names: list[str], threads: int):
    import pycolmap

    with tempfile.TemporaryDirectory() as tmp:
        db_path = os.path.join(tmp, "db.db")
        eo = pycolmap.FeatureExtractionOptions()
        eo.num_threads = threads
        eo.sift.max_num_features = 8192
        with Timer() as t_ext:
            pycolmap.extract_features(
                db_path,
                str(scene.image_dir),
                image_names=names,
                camera_mode=pycolmap.CameraMode.SINGLE,
                extraction_options=eo,
                device=pycolmap.Device.cpu,
            )
        mo = pycolmap.FeatureMatchingOptions()
        mo.num_threads = threads
        mo.skip_geometric_verification = True
        with Timer() as t_match:
            pycolmap.match_exhaustive(db_path, matching_options=mo, device=pycolmap.Device.cpu)
        db = pycolmap.Database.open(db_path)
        ids = {im.name: im.image_id for im in db.read_all_images()}
        # COLMAP puts the centre of the top-left pixel at (0.5, 0.5)
        kps = {n: db.read_keypoints(ids[n])[:, :2].astype(np.float64) - 0.5 for n in names}
        matches = {}
        for i, j in exhaustive_pairs(len(names)):
            a, b = names[i], names[j]
            m = db.read_matches(ids[a], ids[b]).astype(np.int64)
            matches[(a, b)] = m
        n_feat = int(np.mean([len(k) for k in kps.values()]))
        db.close()
    return t_ext, t_match, matches, kps, n_feat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="fountain-P11")
    ap.add_argument("--quick", action="store_true", help="4 images (6 pairs), one repeat of the matcher table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-pycolmap", action="store_true")
    args = ap.parse_args(argv)

    root = data_root()
    if root is None:
        print("shared datasets not found (set GEOMVISION_DATA)", file=sys.stderr)
        return 2
    scene = load_strecha_scene(Path(root) / "strecha" / args.scene)
    names = scene.image_names[:4] if args.quick else scene.image_names
    paths = [scene.image_dir / n for n in names]
    pairs_idx = exhaustive_pairs(len(names))
    pairs = [(names[i], names[j]) for i, j in pairs_idx]
    print(
        f"# {args.scene}: {len(names)} images, {len(pairs)} pairs, {args.threads} threads, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, OpenCV {cv2.__version__}"
    )

    fopts = FeatureOptions()
    extract_all(paths[:1], fopts, progress=False)  # warm-up: numba / OpenCV initialisation
    with Timer() as t_ext:
        ex = extract_all(paths, fopts, num_threads=args.threads, progress=False)
    feats = ex.features
    match_all(pairs[:1], feats, progress=False)  # warm-up (numba cache load)
    with Timer() as t_match:
        ours = match_all(pairs, feats, num_threads=args.threads, progress=False)
    n_feat = int(np.mean([len(f) for f in feats.values()]))

    print(
        "\n## Matcher alternatives on one pair "
        f"({names[0]} x {names[1]}: {len(feats[names[0]])} x {len(feats[names[1]])} RootSIFT)"
    )
    print(f"{'matcher':44s} {'ms/pair':>9s} {'recall':>7s} {'matches':>8s}")
    for name, ms, recall, n in bench_matchers(
        feats[names[0]].descriptors, feats[names[1]].descriptors, 1 if args.quick else 3
    ):
        print(f"{name:44s} {ms:9.0f} {recall:7.3f} {n:8d}")

    rows = [("geomvision", t_ext, t_match, ours, {n: f.keypoints for n, f in feats.items()}, n_feat)]
    if not args.no_pycolmap:
        try:
            rows.append(("pycolmap", *run_pycolmap(scene, names, args.threads)))
        except ImportError:
            print("pycolmap not installed: peer skipped", file=sys.stderr)

    print("\n## Extraction + exhaustive matching (wall s; CPU s of this process in brackets)")
    print(
        f"{'method':12s} {'feat/img':>8s} {'extract s/img':>16s} {'match ms/pair':>16s} {'total s':>14s} "
        f"{'matches':>8s} {'<2px epipolar':>13s}"
    )
    base = None
    for name, te, tm, matches, kps, nf in rows:
        total_wall, total_cpu = te.wall + tm.wall, te.cpu + tm.cpu
        n_m, frac = epipolar_inlier_fraction(scene, matches, kps)
        print(
            f"{name:12s} {nf:8d} {te.wall / len(names):7.2f} ({te.cpu / len(names):5.2f}) "
            f"{1000 * tm.wall / len(pairs):7.0f} ({1000 * tm.cpu / len(pairs):5.0f}) "
            f"{total_wall:6.1f} ({total_cpu:5.1f}) {n_m:8d} {frac:13.3f}"
        )
        if base is None:
            base = (te.wall, tm.wall, total_wall)
        else:
            print(
                f"{'ratio ours/pycolmap':20s} extract {base[0] / te.wall:.2f}  match {base[1] / tm.wall:.2f}  "
                f"total {base[2] / total_wall:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
