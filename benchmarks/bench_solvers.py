"""Minimal and linear solvers: geomvision vs PoseLib vs OpenCV, per-call time and accuracy.

    .venv/bin/python benchmarks/bench_solvers.py [--quick] [--seed 0]

Every implementation gets the same random exact problems (and, for the non-minimal solvers,
the same noisy ones). Accuracy of a call = rotation error in degrees of the best returned
candidate against the ground truth (homography / F: max-abs difference after scaling both to
unit norm, up to sign); a call "fails" when no candidate is within 1e-4 degrees (1e-6 for
H / F). Timing uses process CPU time (steadier than wall time on a loaded machine), the best
of 5 repetitions: "numba" calls the numba core from an @njit loop (how the RANSAC engine calls
it), "python" calls the public wrapper, peers are called from Python (their call overhead is
part of the figure).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import poselib
from numba import njit

from geomvision.geometry import Camera, Rigid3, essential_from_pose, random_rotation, rotation_error_deg, so3_exp
from geomvision.solvers import (
    epnp,
    essential_8pt,
    fundamental_7pt,
    homography_4pt,
    p3p,
    relative_pose_5pt,
    relative_pose_from_essential,
)
from geomvision.solvers.absolute import epnp_nb, p3p_nb
from geomvision.solvers.essential import essential_5pt_nb, essential_8pt_nb, relative_pose_5pt_nb
from geomvision.solvers.fundamental import fundamental_7pt_nb
from geomvision.solvers.homography import homography_4pt_nb
from geomvision.solvers.refine import refine_absolute_pose_nb, refine_relative_pose_nb

FOCAL = 500.0
IDENTITY = np.eye(3)


# --- problem generators ----------------------------------------------------------------------------
def relative_problems(rng, count, n, baseline=1.0, noise_px=0.0):
    """cam2_from_cam1 (unit t) and z = 1 rays of points in front of both cameras."""
    Ts, A, B = [], [], []
    while len(Ts) < count:
        X1 = rng.uniform([-1.5, -1.5, 3.0], [1.5, 1.5, 7.0], size=(n, 3))
        C2 = rng.normal(size=3)
        C2 *= baseline / np.linalg.norm(C2)
        R = so3_exp(rng.normal(scale=0.3, size=3))
        X2 = X1 @ R.T - R @ C2
        if (X2[:, 2] < 0.5).any():
            continue
        x1 = X1[:, :2] / X1[:, 2:] + rng.normal(scale=noise_px / FOCAL, size=(n, 2))
        x2 = X2[:, :2] / X2[:, 2:] + rng.normal(scale=noise_px / FOCAL, size=(n, 2))
        t = -R @ C2
        Ts.append(Rigid3(R, t / np.linalg.norm(t)))
        A.append(np.c_[x1, np.ones(n)])
        B.append(np.c_[x2, np.ones(n)])
    return Ts, np.array(A), np.array(B)


def absolute_problems(rng, count, n, noise_px=0.0):
    Ts, rays, Xs = [], [], []
    for _ in range(count):
        T = Rigid3(random_rotation(rng), rng.normal(size=3))
        Xc = rng.uniform([-1.5, -1.5, 2.0], [1.5, 1.5, 6.0], size=(n, 3))
        x = Xc[:, :2] / Xc[:, 2:] + rng.normal(scale=noise_px / FOCAL, size=(n, 2))
        Ts.append(T)
        rays.append(np.c_[x, np.ones(n)])
        Xs.append(T.inverse().apply(Xc))
    return Ts, np.array(rays), np.array(Xs)


def homography_problems(rng, count):
    Hs, A, B = [], [], []
    K = np.array([[FOCAL, 0, 320.0], [0, FOCAL, 240.0], [0, 0, 1]])
    while len(Hs) < count:
        G = Rigid3.random(rng, t_scale=0.5)
        P = np.column_stack([rng.uniform(-1.5, 1.5, size=(4, 2)), np.zeros(4)])
        X1 = G.apply(P) + [0.0, 0.0, 5.0]
        R = so3_exp(rng.normal(scale=0.2, size=3))
        t = -R @ rng.normal(size=3)
        X2 = X1 @ R.T + t
        if (X1[:, 2] < 0.5).any() or (X2[:, 2] < 0.5).any():
            continue
        nrm = G.R[:, 2]
        H = K @ (R + np.outer(t, nrm) / (nrm @ X1[0])) @ np.linalg.inv(K)
        x1 = X1 @ K.T
        x2 = X2 @ K.T
        Hs.append(H)
        A.append(x1[:, :2] / x1[:, 2:])
        B.append(x2[:, :2] / x2[:, 2:])
    return Hs, np.array(A), np.array(B)


# --- metrics ------------------------------------------------------------------------------------------
def matrix_error(A, B):
    a = A / np.linalg.norm(A)
    b = B / np.linalg.norm(B)
    return float(min(np.abs(a - b).max(), np.abs(a + b).max()))


def best_rotation_error(Rs, R_true):
    return min((rotation_error_deg(R, R_true) for R in Rs), default=np.inf)


def summarise(errors, fail_at):
    e = np.asarray(errors, dtype=float)
    ok = e[np.isfinite(e)]
    return {
        "median": float(np.median(ok)) if ok.size else np.inf,
        "p95": float(np.percentile(ok, 95)) if ok.size else np.inf,
        "fail": float(np.mean(~(e < fail_at))),
    }


def cpu_time(fn, reps=5):
    best = np.inf
    for _ in range(reps):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


# --- numba loops (how RANSAC calls the cores) ----------------------------------------------------------
@njit(cache=True)
def _loop_5pt(A, B):
    s = 0
    for k in range(A.shape[0]):
        _, n = essential_5pt_nb(A[k], B[k])
        s += n
    return s


@njit(cache=True)
def _loop_relpose5pt(A, B):
    s = 0
    for k in range(A.shape[0]):
        _, _, n = relative_pose_5pt_nb(A[k], B[k])
        s += n
    return s


@njit(cache=True)
def _loop_p3p(rays, X):
    s = 0
    for k in range(rays.shape[0]):
        _, _, n = p3p_nb(rays[k], X[k])
        s += n
    return s


@njit(cache=True)
def _loop_h4(x1, x2):
    s = 0
    for k in range(x1.shape[0]):
        _, ok = homography_4pt_nb(x1[k], x2[k])
        s += ok
    return s


@njit(cache=True)
def _loop_7pt(x1, x2):
    s = 0
    for k in range(x1.shape[0]):
        _, n = fundamental_7pt_nb(x1[k], x2[k])
        s += n
    return s


@njit(cache=True)
def _loop_8pt(A, B, w):
    s = 0
    for k in range(A.shape[0]):
        _, ok = essential_8pt_nb(A[k], B[k], w)
        s += ok
    return s


@njit(cache=True)
def _loop_epnp(rays, X):
    s = 0
    for k in range(rays.shape[0]):
        _, _, ok = epnp_nb(rays[k], X[k])
        s += ok
    return s


# --- benchmarks ---------------------------------------------------------------------------------------
def row(rows, solver, impl, seconds, count, stats, unit="deg"):
    rows.append((solver, impl, 1e6 * seconds / count, stats, unit))


def bench_5pt(rng, count, rows, baseline, label):
    Ts, A, B = relative_problems(rng, count, 5, baseline=baseline)
    U1 = A / np.linalg.norm(A, axis=2, keepdims=True)
    U2 = B / np.linalg.norm(B, axis=2, keepdims=True)
    _loop_relpose5pt(A[:2], B[:2])
    _loop_5pt(A[:2], B[:2])
    ours = [best_rotation_error([P.R for P in relative_pose_5pt(A[k], B[k])], Ts[k].R) for k in range(count)]
    stats = summarise(ours, 1e-4)
    row(rows, f"essential_5pt {label}", "geomvision E (numba)", cpu_time(lambda: _loop_5pt(A, B)), count, stats)
    row(
        rows,
        f"essential_5pt {label}",
        "geomvision pose (numba)",
        cpu_time(lambda: _loop_relpose5pt(A, B)),
        count,
        stats,
    )
    row(
        rows,
        f"essential_5pt {label}",
        "geomvision pose (python)",
        cpu_time(lambda: [relative_pose_5pt(A[k], B[k]) for k in range(count)], 3),
        count,
        stats,
    )
    peer = [best_rotation_error([P.R for P in poselib.relpose_5pt(U1[k], U2[k])], Ts[k].R) for k in range(count)]
    row(
        rows,
        f"essential_5pt {label}",
        "poselib relpose_5pt",
        cpu_time(lambda: [poselib.relpose_5pt(U1[k], U2[k]) for k in range(count)], 3),
        count,
        summarise(peer, 1e-4),
    )
    row(
        rows,
        f"essential_5pt {label}",
        "poselib essential_matrix_5pt",
        cpu_time(lambda: [poselib.essential_matrix_5pt(U1[k], U2[k]) for k in range(count)], 3),
        count,
        None,
    )


def bench_p3p(rng, count, rows):
    Ts, rays, X = absolute_problems(rng, count, 3)
    _loop_p3p(rays[:2], X[:2])
    ours = [best_rotation_error([P.R for P in p3p(rays[k], X[k])], Ts[k].R) for k in range(count)]
    row(rows, "p3p", "geomvision (numba)", cpu_time(lambda: _loop_p3p(rays, X)), count, summarise(ours, 1e-4))
    row(
        rows,
        "p3p",
        "geomvision (python)",
        cpu_time(lambda: [p3p(rays[k], X[k]) for k in range(count)], 3),
        count,
        summarise(ours, 1e-4),
    )
    U = rays / np.linalg.norm(rays, axis=2, keepdims=True)
    peer = [best_rotation_error([P.R for P in poselib.p3p(U[k], X[k])], Ts[k].R) for k in range(count)]
    row(
        rows,
        "p3p",
        "poselib p3p",
        cpu_time(lambda: [poselib.p3p(U[k], X[k]) for k in range(count)], 3),
        count,
        summarise(peer, 1e-4),
    )
    K = np.eye(3)
    x = np.ascontiguousarray(rays[:, :, :2])
    for name, flag in (("cv2 solveP3P P3P", cv2.SOLVEPNP_P3P), ("cv2 solveP3P AP3P", cv2.SOLVEPNP_AP3P)):

        def run(flag=flag):
            return [cv2.solveP3P(X[k], x[k], K, None, flags=flag) for k in range(count)]

        res = run()
        errs = [best_rotation_error([cv2.Rodrigues(r)[0] for r in rv], Ts[k].R) for k, (_, rv, _) in enumerate(res)]
        row(rows, "p3p", name, cpu_time(run, 3), count, summarise(errs, 1e-4))


def bench_h4(rng, count, rows):
    Hs, x1, x2 = homography_problems(rng, count)
    _loop_h4(x1[:2], x2[:2])
    ours = []
    for k in range(count):
        out = homography_4pt(x1[k], x2[k])
        ours.append(matrix_error(out[0], Hs[k]) if out else np.inf)
    row(
        rows,
        "homography_4pt",
        "geomvision (numba)",
        cpu_time(lambda: _loop_h4(x1, x2)),
        count,
        summarise(ours, 1e-6),
        "H",
    )
    row(
        rows,
        "homography_4pt",
        "geomvision (python)",
        cpu_time(lambda: [homography_4pt(x1[k], x2[k]) for k in range(count)], 3),
        count,
        summarise(ours, 1e-6),
        "H",
    )
    f1 = x1.astype(np.float32)
    f2 = x2.astype(np.float32)
    peer = [matrix_error(cv2.getPerspectiveTransform(f1[k], f2[k]), Hs[k]) for k in range(count)]
    row(
        rows,
        "homography_4pt",
        "cv2 getPerspectiveTransform (float32 input)",
        cpu_time(lambda: [cv2.getPerspectiveTransform(f1[k], f2[k]) for k in range(count)], 3),
        count,
        summarise(peer, 1e-6),
        "H",
    )


def bench_7pt(rng, count, rows):
    Ts, A, B = relative_problems(rng, count, 7)
    x1 = np.ascontiguousarray(A[:, :, :2] * FOCAL + [320.0, 240.0])
    x2 = np.ascontiguousarray(B[:, :, :2] * FOCAL + [320.0, 240.0])
    K = np.array([[FOCAL, 0, 320.0], [0, FOCAL, 240.0], [0, 0, 1]])
    Ki = np.linalg.inv(K)
    Fs = [Ki.T @ essential_from_pose(T) @ Ki for T in Ts]
    _loop_7pt(x1[:2], x2[:2])
    ours = [min((matrix_error(F, Fs[k]) for F in fundamental_7pt(x1[k], x2[k])), default=np.inf) for k in range(count)]
    row(
        rows,
        "fundamental_7pt",
        "geomvision (numba)",
        cpu_time(lambda: _loop_7pt(x1, x2)),
        count,
        summarise(ours, 1e-6),
        "F",
    )
    row(
        rows,
        "fundamental_7pt",
        "geomvision (python)",
        cpu_time(lambda: [fundamental_7pt(x1[k], x2[k]) for k in range(count)], 3),
        count,
        summarise(ours, 1e-6),
        "F",
    )

    def peer_run():
        return [cv2.findFundamentalMat(x1[k], x2[k], cv2.FM_7POINT)[0] for k in range(count)]

    res = peer_run()
    peer = [
        min((matrix_error(F, Fs[k]) for F in (np.zeros((0, 3)) if M is None else M.reshape(-1, 3, 3))), default=np.inf)
        for k, M in enumerate(res)
    ]
    row(
        rows,
        "fundamental_7pt",
        "cv2 findFundamentalMat FM_7POINT",
        cpu_time(peer_run, 3),
        count,
        summarise(peer, 1e-6),
        "F",
    )


def bench_8pt_noisy(rng, count, rows, n=100, noise_px=0.5):
    Ts, A, B = relative_problems(rng, count, n, noise_px=noise_px)
    ours, peer = [], []
    for k in range(count):
        E = essential_8pt(A[k], B[k])
        P, _ = relative_pose_from_essential(E, A[k], B[k]) if E is not None else (None, 0)
        ours.append(rotation_error_deg(P.R, Ts[k].R) if P is not None else np.inf)
        U1 = A[k] / np.linalg.norm(A[k], axis=1, keepdims=True)
        U2 = B[k] / np.linalg.norm(B[k], axis=1, keepdims=True)
        peer.append(best_rotation_error([P.R for P in poselib.relpose_8pt(U1, U2)], Ts[k].R))
    label = f"essential_8pt N={n}, {noise_px} px"
    W = np.ones(n)
    _loop_8pt(A[:2], B[:2], W)
    row(
        rows,
        label,
        "geomvision essential_8pt (numba)",
        cpu_time(lambda: _loop_8pt(A, B, W)),
        count,
        summarise(ours, 1.0),
    )
    row(
        rows,
        label,
        "poselib relpose_8pt",
        cpu_time(lambda: [poselib.relpose_8pt(A[k], B[k]) for k in range(count)], 3),
        count,
        summarise(peer, 1.0),
    )


def bench_epnp(rng, count, rows, n=50, noise_px=0.5):
    for noise in (0.0, noise_px):
        Ts, rays, X = absolute_problems(rng, count, n, noise_px=noise)
        _loop_epnp(rays[:2], X[:2])
        ours = []
        for k in range(count):
            P = epnp(rays[k], X[k])
            ours.append(rotation_error_deg(P.R, Ts[k].R) if P is not None else np.inf)
        label = f"epnp N={n}, {noise} px"
        fail = 1e-4 if noise == 0 else 1.0
        row(
            rows,
            label,
            "geomvision (numba)",
            cpu_time(lambda rays=rays, X=X: _loop_epnp(rays, X)),
            count,
            summarise(ours, fail),
        )
        x = np.ascontiguousarray(rays[:, :, :2])

        def run(X=X, x=x):
            return [cv2.solvePnP(X[k], x[k], IDENTITY, None, flags=cv2.SOLVEPNP_EPNP) for k in range(count)]

        res = run()
        peer = [rotation_error_deg(cv2.Rodrigues(r)[0], Ts[k].R) if ok else np.inf for k, (ok, r, _) in enumerate(res)]
        row(rows, label, "cv2 solvePnP EPNP", cpu_time(run, 3), count, summarise(peer, fail))


def bench_refine(rng, count, rows, n=500, noise_px=0.5):
    """LM refinement from a perturbed start (0.02 rad, 5 % of the translation) on noisy data."""
    cam = Camera("PINHOLE", 640, 480, [FOCAL, FOCAL, 320.0, 240.0])
    cam_dict = {"model": "PINHOLE", "width": 640, "height": 480, "params": list(cam.params)}
    opts = (100, 1e-12, 1e-12, 1e-14)
    Ts, A, B = relative_problems(rng, count, n, noise_px=noise_px)
    starts = [Rigid3(T.R @ so3_exp(rng.normal(scale=0.02, size=3)), T.t + rng.normal(scale=0.05, size=3)) for T in Ts]
    w = np.ones(n)
    x1 = A[:, :, :2] * FOCAL + [320.0, 240.0]
    x2 = B[:, :, :2] * FOCAL + [320.0, 240.0]

    def ours():
        return [refine_relative_pose_nb(S.R, S.t, A[k], B[k], w, False, *opts) for k, S in enumerate(starts)]

    res = ours()
    errs = [rotation_error_deg(r[0], Ts[k].R) for k, r in enumerate(res)]
    label = f"refine_relative_pose N={n}, {noise_px} px"
    row(rows, label, "geomvision (numba core)", cpu_time(ours, 3), count, summarise(errs, 1.0))
    poses = []
    for S in starts:
        p = poselib.CameraPose()
        p.R, p.t = S.R, S.t
        poses.append(p)

    def peer():
        return [poselib.refine_relative_pose(x1[k], x2[k], poses[k], cam_dict, cam_dict, {}) for k in range(count)]

    errs = [rotation_error_deg(o[0].R, Ts[k].R) for k, o in enumerate(peer())]
    row(rows, label, "poselib refine_relative_pose", cpu_time(peer, 3), count, summarise(errs, 1.0))

    Ts, rays, X = absolute_problems(rng, count, n, noise_px=noise_px)
    uv = rays[:, :, :2] * FOCAL + [320.0, 240.0]
    starts = [Rigid3(T.R @ so3_exp(rng.normal(scale=0.02, size=3)), T.t + rng.normal(scale=0.05, size=3)) for T in Ts]

    def ours_abs():
        return [
            refine_absolute_pose_nb(S.R, S.t, uv[k], X[k], cam.model_id, cam.params, w, *opts)
            for k, S in enumerate(starts)
        ]

    errs = [rotation_error_deg(r[0], Ts[k].R) for k, r in enumerate(ours_abs())]
    label = f"refine_absolute_pose N={n}, {noise_px} px"
    row(rows, label, "geomvision (numba core)", cpu_time(ours_abs, 3), count, summarise(errs, 1.0))
    poses = []
    for S in starts:
        p = poselib.CameraPose()
        p.R, p.t = S.R, S.t
        poses.append(p)

    def peer_abs():
        return [poselib.refine_absolute_pose(uv[k], X[k], poses[k], cam_dict, {}) for k in range(count)]

    errs = [rotation_error_deg(o[0].R, Ts[k].R) for k, o in enumerate(peer_abs())]
    row(rows, label, "poselib refine_absolute_pose", cpu_time(peer_abs, 3), count, summarise(errs, 1.0))


def print_table(rows):
    print("| solver | implementation | us/call | ratio | median err | 95% err | fail |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ref = {}
    for solver, impl, us, stats, unit in rows:
        if impl.startswith("geomvision") and solver not in ref:
            ref[solver] = us
        ratio = us / ref[solver] if solver in ref else float("nan")
        if stats is None:
            err = "| - | - | -"
        else:
            u = "" if unit in ("H", "F") else " deg"
            err = f"| {stats['median']:.2e}{u} | {stats['p95']:.2e}{u} | {100 * stats['fail']:.2f} %"
        print(f"| {solver} | {impl} | {us:.2f} | {ratio:.2f} {err} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer problems (a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    count = 300 if args.quick else 3000
    rng = np.random.default_rng(args.seed)
    rows = []
    bench_5pt(rng, count, rows, 1.0, "(baseline 1 / depth 3-7)")
    bench_5pt(rng, count, rows, 0.1, "(baseline 0.1, near-degenerate)")
    bench_p3p(rng, count, rows)
    bench_h4(rng, count, rows)
    bench_7pt(rng, count, rows)
    bench_8pt_noisy(rng, max(count // 10, 50), rows)
    bench_epnp(rng, max(count // 10, 50), rows)
    bench_refine(rng, max(count // 30, 20), rows)
    print(f"{count} random problems per minimal solver (seed {args.seed}); ratio = time / first geomvision row")
    print_table(rows)


if __name__ == "__main__":
    main()
