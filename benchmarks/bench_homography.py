"""Homography on real images with exact ground truth: geomvision vs OpenCV (RANSAC, USAC_MAGSAC) vs PoseLib.

    .venv/bin/python benchmarks/bench_homography.py [--quick] [--threshold 2.0] [--seed 0]

Every image of the Strecha scenes in ../shared/datasets/strecha is paired with a copy of itself
warped by a random homography (each image corner moved by up to 25 % of the image size in a
random direction, seeded), so the true H is known exactly while the content is real. OpenCV SIFT
(4,000 features) on both, 2-NN ratio test 0.8, then on the same matches, in one run:
geomvision ``estimate_homography``, OpenCV ``findHomography`` (RANSAC and USAC_MAGSAC) and
PoseLib ``estimate_homography``, all with the same transfer-error threshold (pixels).
Accuracy: the mean corner error (MCE), the mean distance between where the estimated and the true
homography send the four image corners; reported as AUC of the MCE curve at 1 / 3 / 5 px (percent),
the median MCE, and the median wall time per pair.
"""

from __future__ import annotations


import cv2
import numpy as np
from bench_relative_pose import add_poselib, pose_auc, print_table, robust_bench_parser, strecha_scenes, time_methods

import geomvision as gv

NUM_FEATURES = 4000
RATIO = 0.8
AUC_PX = (1.0, 3.0, 5.0)


def random_homography(w: int, h: int, rng: np.random.Generator, max_shift: float = 0.25) -> np.ndarray:
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    moved = corners + rng.uniform(-max_shift, max_shift, size=(4, 2)).astype(np.float32) * [w, h]
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32)).astype(np.float64)


def sift(gray: np.ndarray):
    kps, desc = cv2.SIFT_create(nfeatures=NUM_FEATURES).detectAndCompute(gray, None)
    return np.array([k.pt for k in kps], dtype=np.float64).reshape(-1, 2), desc


def ratio_match(d1, d2):
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    return np.array([m.queryIdx for m in good], dtype=np.int64), np.array([m.trainIdx for m in good], dtype=np.int64)


def mean_corner_error(H: np.ndarray | None, H_gt: np.ndarray, w: int, h: int) -> float:
    if H is None or not np.isfinite(H).all():
        return np.inf
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], dtype=np.float64)
    a, b = c @ H.T, c @ H_gt.T
    if np.any(np.abs(a[:, 2]) < 1e-12):
        return np.inf
    return float(np.mean(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1)))


def run_ours(x1, x2, thr, seed):
    return gv.estimate_homography(x1, x2, max_error=thr, rng=seed).model


def run_opencv(method):
    def run(x1, x2, thr, seed):
        cv2.setRNGSeed(seed)
        H, _ = cv2.findHomography(x1, x2, method, ransacReprojThreshold=thr, maxIters=10000, confidence=0.9999)
        return H

    return run


def run_poselib(x1, x2, thr, seed):
    import poselib

    H, _ = poselib.estimate_homography(x1, x2, {"max_reproj_error": thr, "min_iterations": 100, "seed": seed}, {})
    return H


def main() -> None:
    args = robust_bench_parser(__doc__.splitlines()[0], 2.0, "transfer-error").parse_args()
    methods = add_poselib({
        "geomvision": run_ours,
        "OpenCV RANSAC": run_opencv(cv2.RANSAC),
        "OpenCV USAC_MAGSAC": run_opencv(cv2.USAC_MAGSAC),
    }, run_poselib)

    rng = np.random.default_rng(args.seed)
    rows = []
    warmed = False
    for scene in strecha_scenes(args.quick):
        errors = {m: [] for m in methods}
        times = {m: [] for m in methods}
        n_matches = []
        for name in scene.image_names:
            gray = cv2.imread(str(scene.image_dir / name), cv2.IMREAD_GRAYSCALE)
            h, w = gray.shape
            H_gt = random_homography(w, h, rng)
            warped = cv2.warpPerspective(gray, H_gt, (w, h), flags=cv2.INTER_LINEAR)
            uv1, d1 = sift(gray)
            uv2, d2 = sift(warped)
            q, t = ratio_match(d1, d2)
            x1, x2 = uv1[q], uv2[t]
            n_matches.append(len(x1))
            if not warmed:
                run_ours(x1, x2, args.threshold, args.seed)
                warmed = True
            for m, (H, dt) in time_methods(methods, (x1, x2, args.threshold, args.seed), args.time_repeats).items():
                times[m].append(dt)
                errors[m].append(mean_corner_error(H, H_gt, w, h))
        print(f"{scene.name}: {len(n_matches)} pairs, median {int(np.median(n_matches))} matches per pair")
        for m in methods:
            e = np.array(errors[m])
            auc = pose_auc(np.where(np.isfinite(e), e, 1e9), AUC_PX)
            rows.append([scene.name, m, *(f"{a:.1f}" for a in auc), f"{np.median(e):.3f}",
                         f"{1000 * np.median(times[m]):.1f}"])
    print(f"\nthreshold {args.threshold} px (transfer error) for every method; MCE = mean corner error\n")
    print_table(["scene", "method", "AUC@1px", "AUC@3px", "AUC@5px", "median MCE px", "ms/pair"], rows)


if __name__ == "__main__":
    main()
