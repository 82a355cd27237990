"""Absolute pose on real Strecha images: geomvision vs OpenCV solvePnPRansac vs PoseLib.

    .venv/bin/python benchmarks/bench_absolute_pose.py [--quick] [--threshold 2.0] [--seed 0]

For every image k with neighbours k-1 and k+1 in each scene of ../shared/datasets/strecha: SIFT
(8,000 features, cached with the relative-pose benchmark) matches between k-1 and k+1 (ratio 0.8)
are triangulated with the ground-truth cameras (kept when both reprojection errors are below
1 px), and image k's features are matched to image k-1's (ratio 0.8): a match whose k-1 feature
has a 3-D point gives a 2D-3D correspondence (wrong matches are the outliers). On the same
correspondences, in one run: geomvision ``estimate_absolute_pose``, OpenCV ``solvePnPRansac``
(RANSAC, P3P minimal solver then its default refinement) and PoseLib ``estimate_absolute_pose``,
all at the same reprojection threshold.
Accuracy: rotation error (degrees) and camera-centre error (centimetres) against the ground truth;
reported as the AUC of the rotation error at 0.1 / 0.5 / 1 degree, the median of both errors and
the median wall time per image.
"""

from __future__ import annotations


import cv2
import numpy as np
from bench_relative_pose import (
    add_poselib,
    pose_auc,
    print_table,
    ratio_matches,
    robust_bench_parser,
    sift_features,
    strecha_scenes,
    time_methods,
)

import geomvision as gv
from geomvision.geometry.rotation import rotation_error_deg

AUC_DEG = (0.1, 0.5, 1.0)


def _key_rows(uv_all: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Row of each pixel of ``uv`` in ``uv_all`` (matches carry pixels, not indices)."""
    lookup = {tuple(p): i for i, p in enumerate(map(tuple, uv_all))}
    return np.array([lookup[tuple(p)] for p in map(tuple, uv)], dtype=np.int64)


def correspondences(scene, k: int):
    """(uv in image k (M,2), X_world (M,3)) from triangulated k-1/k+1 matches."""
    names = scene.image_names
    a, b, c = (scene.image_dir / names[i] for i in (k - 1, k + 1, k))
    xa, xb, _ = ratio_matches(a, b)
    Ta, Tb = scene.cams_from_world[names[k - 1]], scene.cams_from_world[names[k + 1]]
    Ka, Kb = scene.cameras[names[k - 1]].K, scene.cameras[names[k + 1]].K
    Pa, Pb = Ka @ Ta.matrix3x4, Kb @ Tb.matrix3x4
    Xh = cv2.triangulatePoints(Pa, Pb, xa.T, xb.T).T
    X = Xh[:, :3] / Xh[:, 3:]
    ok = np.ones(len(X), dtype=bool)
    for P, x in ((Pa, xa), (Pb, xb)):
        p = np.hstack([X, np.ones((len(X), 1))]) @ P.T
        ok &= p[:, 2] > 0
        ok &= np.linalg.norm(p[:, :2] / p[:, 2:] - x, axis=1) < 1.0
    uv_a, _ = sift_features(a)
    rows_a = _key_rows(uv_a, xa[ok])
    point_of_a = dict(zip(rows_a.tolist(), X[ok]))
    xc, xa2, _ = ratio_matches(c, a)
    rows_a2 = _key_rows(uv_a, xa2)
    keep = np.array([r in point_of_a for r in rows_a2.tolist()], dtype=bool)
    X_world = np.array([point_of_a[r] for r in rows_a2[keep].tolist()]).reshape(-1, 3)
    return xc[keep], X_world


def run_ours(uv, X, camera, thr, seed):
    res = gv.estimate_absolute_pose(uv, X, camera, max_error=thr, rng=seed)
    return None if res.model is None else (res.model.R, res.model.t)


def run_opencv(uv, X, camera, thr, seed):
    cv2.setRNGSeed(seed)
    ok, rvec, tvec, _ = cv2.solvePnPRansac(X, uv, camera.K, None, iterationsCount=10000, reprojectionError=thr,
                                           confidence=0.9999, flags=cv2.SOLVEPNP_P3P)
    if not ok:
        return None
    return cv2.Rodrigues(rvec)[0], tvec.ravel()


def run_poselib(uv, X, camera, thr, seed):
    import poselib

    K = camera.K
    cam = {"model": "PINHOLE", "width": camera.width, "height": camera.height,
           "params": [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]}
    pose, _ = poselib.estimate_absolute_pose(uv, X, cam, {"max_reproj_error": thr, "min_iterations": 100,
                                                          "seed": seed}, {})
    return pose.R, pose.t


def main() -> None:
    args = robust_bench_parser(__doc__.splitlines()[0], 2.0, "reprojection").parse_args()
    methods = add_poselib({"geomvision": run_ours, "OpenCV solvePnPRansac": run_opencv}, run_poselib)

    rows = []
    warmed = False
    for scene in strecha_scenes(args.quick):
        names = scene.image_names
        rot = {m: [] for m in methods}
        cen = {m: [] for m in methods}
        times = {m: [] for m in methods}
        sizes = []
        for k in range(1, len(names) - 1):
            uv, X = correspondences(scene, k)
            sizes.append(len(uv))
            camera = scene.cameras[names[k]]
            truth = scene.cams_from_world[names[k]]
            if not warmed:
                run_ours(uv, X, camera, args.threshold, args.seed)
                warmed = True
            for m, (out, dt) in time_methods(methods, (uv, X, camera, args.threshold, args.seed),
                                             args.time_repeats).items():
                times[m].append(dt)
                if out is None:
                    rot[m].append(180.0)
                    cen[m].append(np.inf)
                    continue
                R, t = out
                rot[m].append(rotation_error_deg(np.asarray(R), truth.R))
                C = -np.asarray(R).T @ np.asarray(t, dtype=np.float64).ravel()
                cen[m].append(100.0 * np.linalg.norm(C - gv.camera_center(truth)))
        print(f"{scene.name}: {len(sizes)} images, median {int(np.median(sizes))} 2D-3D matches")
        for m in methods:
            auc = pose_auc(np.array(rot[m]), AUC_DEG)
            rows.append([scene.name, m, *(f"{a:.1f}" for a in auc), f"{np.median(rot[m]):.3f}",
                         f"{np.median(cen[m]):.2f}", f"{1000 * np.median(times[m]):.1f}"])
    print(f"\nthreshold {args.threshold} px (reprojection error) for every method\n")
    print_table(["scene", "method", "AUC@0.1deg", "AUC@0.5deg", "AUC@1deg", "median rot deg", "median centre cm",
                 "ms/image"], rows)


if __name__ == "__main__":
    main()
