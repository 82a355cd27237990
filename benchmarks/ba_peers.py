"""Peers for ``bench_ba.py``: Ceres (through pycolmap's bundle adjuster and pyceres) and
``scipy.optimize.least_squares``, each set up on the very problem geomvision solves.

Ceres: pycolmap builds the Ceres problem (one RADIAL camera per image with cx = cy = 0 held,
R (quaternion manifold), t, f, k1, k2 and every point free, squared loss, no gauge fixing), then
``pyceres.solve`` runs it with LEVENBERG_MARQUARDT, SPARSE_SCHUR, 2 threads and the benchmark's
tolerances. The RADIAL model with cx = cy = 0 is the BAL model exactly (see io/bal.py), so
the optimum is the same.

scipy: the BAL parameterisation (angle-axis, t, f, k1, k2 per camera; points), residuals in
numpy, finite-difference Jacobian on the sparsity pattern, ``method="trf"``, ``x_scale="jac"``.
"""

from __future__ import annotations

import time

import numpy as np


# ------------------------------------------------------------------------------------------- Ceres
def build_pycolmap(problem):
    """pycolmap.Reconstruction of a BAProblem with RADIAL cameras (one per image)."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    span = float(np.abs(problem.obs_uv).max()) if problem.num_observations else 1.0
    size = int(2 * span + 2)
    order = np.argsort(problem.obs_img, kind="stable")
    starts = np.searchsorted(problem.obs_img[order], np.arange(problem.num_images + 1))
    kp_idx = np.empty(problem.num_observations, np.int64)
    for i in range(problem.num_images):
        c = int(problem.img_cam[i])
        if not rec.exists_camera(c + 1):
            params = problem.cam_params[c, : problem.cam_nparams[c]]
            rec.add_camera_with_trivial_rig(
                pycolmap.Camera(model="RADIAL", width=size, height=size, params=params, camera_id=c + 1))
        obs = order[starts[i]:starts[i + 1]]
        kp_idx[obs] = np.arange(len(obs))
        img = pycolmap.Image(name=f"{i}", keypoints=problem.obs_uv[obs], camera_id=c + 1, image_id=i + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(problem.R[i]), problem.t[i])
        rec.add_image_with_trivial_frame(img, pose)
    porder = np.argsort(problem.obs_pt, kind="stable")
    pstarts = np.searchsorted(problem.obs_pt[porder], np.arange(problem.num_points + 1))
    for j in range(problem.num_points):
        obs = porder[pstarts[j]:pstarts[j + 1]]
        track = pycolmap.Track([pycolmap.TrackElement(int(problem.obs_img[o]) + 1, int(kp_idx[o])) for o in obs])
        rec.add_point3D_with_id(j + 1, pycolmap.Point3D(xyz=problem.X[j], track=track))
    return rec


def read_back_pycolmap(rec, problem):
    """Copy poses, intrinsics and points of the pycolmap reconstruction into a copy of ``problem``."""
    out = problem.copy()
    for i in range(problem.num_images):
        T = rec.images[i + 1].cam_from_world()
        M = T.matrix()
        out.R[i], out.t[i] = M[:, :3], M[:, 3]
    for c in range(problem.num_cameras):
        out.cam_params[c, : problem.cam_nparams[c]] = rec.cameras[c + 1].params
    for j in range(problem.num_points):
        out.X[j] = rec.points3D[j + 1].xyz
    return out


def solve_ceres(problem, *, threads=2, max_iterations=50, function_tolerance=1e-6, parameter_tolerance=1e-8,
                gradient_tolerance=1e-10):
    """Returns (solved BAProblem copy, dict with solve_s, iterations, successful_iterations)."""
    import pyceres
    import pycolmap

    rec = build_pycolmap(problem)
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_focal_length = True
    opts.refine_principal_point = False
    opts.refine_extra_params = True
    opts.print_summary = False
    config = pycolmap.BundleAdjustmentConfig()
    for i in range(problem.num_images):
        config.add_image(i + 1)
    adjuster = pycolmap.create_default_ceres_bundle_adjuster(opts, config, rec)
    so = pyceres.SolverOptions()
    so.minimizer_type = pyceres.MinimizerType.TRUST_REGION
    so.trust_region_strategy_type = pyceres.TrustRegionStrategyType.LEVENBERG_MARQUARDT
    so.linear_solver_type = pyceres.LinearSolverType.SPARSE_SCHUR
    so.num_threads = threads
    so.max_num_iterations = max_iterations
    so.function_tolerance = function_tolerance
    so.parameter_tolerance = parameter_tolerance
    so.gradient_tolerance = gradient_tolerance
    so.minimizer_progress_to_stdout = False
    so.logging_type = pyceres.LoggingType.SILENT
    summary = pyceres.SolverSummary()
    t0 = time.perf_counter()
    pyceres.solve(so, adjuster.problem, summary)
    solve_s = time.perf_counter() - t0
    out = read_back_pycolmap(rec, problem)
    return out, {
        "solve_s": solve_s,
        "ceres_total_s": summary.total_time_in_seconds,
        "iterations": summary.num_successful_steps + summary.num_unsuccessful_steps,
        "successful_iterations": summary.num_successful_steps,
        "num_effective_parameters": summary.num_effective_parameters,
        "termination": str(summary.termination_type).split(".")[-1],
    }


# ------------------------------------------------------------------------------------------- scipy
def _rotate(rotvec, X):
    theta = np.linalg.norm(rotvec, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(theta > 0, rotvec / theta, 0.0)
    cos, sin = np.cos(theta), np.sin(theta)
    kx = np.cross(k, X)
    kd = np.sum(k * X, axis=1, keepdims=True)
    return X * cos + kx * sin + k * kd * (1 - cos)


def solve_scipy(problem, *, max_iterations=50, function_tolerance=1e-6, parameter_tolerance=1e-8,
                gradient_tolerance=1e-10):
    """scipy.optimize.least_squares (trf, sparse Jacobian pattern, x_scale='jac') on the BAL form."""
    import scipy.sparse
    from scipy.optimize import least_squares

    from geomvision.io.bal import bal_to_problem, problem_to_bal

    cameras, points, cam_idx, pt_idx, xy = problem_to_bal(problem)
    nc, npt, m = len(cameras), len(points), len(cam_idx)

    def residuals(x):
        cams = x[: 9 * nc].reshape(nc, 9)
        pts = x[9 * nc:].reshape(npt, 3)
        c = cams[cam_idx]
        P = _rotate(c[:, :3], pts[pt_idx]) + c[:, 3:6]
        p = -P[:, :2] / P[:, 2:3]
        r2 = np.sum(p * p, axis=1)
        return ((c[:, 6] * (1 + c[:, 7] * r2 + c[:, 8] * r2 * r2))[:, None] * p - xy).ravel()

    rows = np.repeat(np.arange(2 * m), 12)
    cols = np.concatenate([
        (9 * cam_idx[:, None] + np.arange(9)[None, :]),
        (9 * nc + 3 * pt_idx[:, None] + np.arange(3)[None, :]),
    ], axis=1)
    cols = np.repeat(cols, 2, axis=0).ravel()
    pattern = scipy.sparse.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(2 * m, 9 * nc + 3 * npt))
    x0 = np.concatenate([cameras.ravel(), points.ravel()])
    t0 = time.perf_counter()
    res = least_squares(residuals, x0, jac_sparsity=pattern, method="trf", x_scale="jac", ftol=function_tolerance,
                        xtol=parameter_tolerance, gtol=gradient_tolerance, max_nfev=max_iterations + 1)
    solve_s = time.perf_counter() - t0
    cams = res.x[: 9 * nc].reshape(nc, 9)
    pts = res.x[9 * nc:].reshape(npt, 3)
    out = bal_to_problem(cams, pts, cam_idx, pt_idx, xy)
    return out, {"solve_s": solve_s, "iterations": int(res.nfev) - 1, "successful_iterations": int(res.njev) - 1,
                 "termination": str(res.status)}
