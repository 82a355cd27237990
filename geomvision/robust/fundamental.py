"""Robust fundamental matrix ``x2^T F x1 = 0`` from pixel matches, with DEGENSAC.

Error: the Sampson error in pixels. Minimal solver: 7 points (1 or 3 models); LO refit: weighted
normalised 8-point; refinement: weighted Levenberg-Marquardt on the Sampson error (rank 2 kept). Models are F (3,3) with unit Frobenius norm.

DEGENSAC (Chum, Werner & Matas, CVPR 2005): when a plane dominates the scene, a 7-point sample
with 5 or more points on the plane gives an F that fits the plane and any one of a family of
epipoles, so it scores well yet is wrong. Each new best minimal F is tested: a homography
compatible with F is built from each of five point triples of the sample
(``H = [e2]_x F - e2 (M^-1 b)^T``); if one of them maps 5 or more of the 7 sample points, the
sample is H-degenerate: H is refitted (DLT) on all the points it explains and F is re-estimated by
plane-and-parallax, ``F = [e2]_x H`` with the epipole e2 from two correspondences off the plane,
drawn among the points H does not explain.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, check_positive
from ..solvers.fundamental import fundamental_7pt_nb, fundamental_8pt_nb
from ..solvers.homography import homography_dlt_nb
from ..solvers.refine import refine_fundamental_nb
from . import _core as core
from ._degeneracy import LM_FTOL, LM_GTOL, LM_XTOL, any_coincident_2d, gather_rows
from .engine import MatrixEstimator, RansacResult, ransac
from .homography import HomographyEstimator
from .options import RansacOptions, resolve_options

# triples of the 7-point sample that DEGENSAC tests: if 5 of the 7 lie on a plane, one of these
# triples lies entirely on it
_TRIPLES = np.array([[0, 1, 2], [3, 4, 5], [0, 1, 6], [3, 4, 6], [2, 5, 6]], dtype=np.int64)
_PARALLAX_DRAWS = 100


@njit(cache=True)
def sampson_sq_errors_flat(F, x1, x2, start, stop, out):
    """Pixel Sampson errors of points start..stop-1 for a flat (9,) F."""
    for i in range(start, stop):
        u1, v1, u2, v2 = x1[i, 0], x1[i, 1], x2[i, 0], x2[i, 1]
        a0 = F[0] * u1 + F[1] * v1 + F[2]
        a1 = F[3] * u1 + F[4] * v1 + F[5]
        a2 = F[6] * u1 + F[7] * v1 + F[8]
        b0 = F[0] * u2 + F[3] * v2 + F[6]
        b1 = F[1] * u2 + F[4] * v2 + F[7]
        c = u2 * a0 + v2 * a1 + a2
        den = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
        out[i] = c * c / den if den > 0.0 else np.inf


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    sampson_sq_errors_flat(model, data[0], data[1], start, stop, out)


@njit(cache=True)
def _degenerate(data, sample):
    return any_coincident_2d(data[0], sample) or any_coincident_2d(data[1], sample)


@njit(cache=True)
def _fit_minimal(data, sample, models):
    Fs, n = fundamental_7pt_nb(gather_rows(data[0], sample), gather_rows(data[1], sample))
    for k in range(n):
        models[k, :] = Fs[k].ravel()
    return n


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    F, ok = fundamental_8pt_nb(gather_rows(data[0], idx), gather_rows(data[1], idx), weights)
    if not ok:
        return 0
    models[0, :] = F.ravel()
    return 1


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    F, _it, _c0, c1 = refine_fundamental_nb(model.reshape(3, 3).copy(), gather_rows(data[0], idx),
                                          gather_rows(data[1], idx), weights, max_iters, LM_FTOL, LM_XTOL, LM_GTOL)
    if not np.isfinite(c1):
        return model.copy()
    return F.ravel().copy()


@njit(cache=True)
def _cross(a, b):
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


@njit(cache=True)
def _transfer_sq(H, x1, x2, i):
    w = H[2, 0] * x1[i, 0] + H[2, 1] * x1[i, 1] + H[2, 2]
    if w == 0.0:
        return np.inf
    du = (H[0, 0] * x1[i, 0] + H[0, 1] * x1[i, 1] + H[0, 2]) / w - x2[i, 0]
    dv = (H[1, 0] * x1[i, 0] + H[1, 1] * x1[i, 1] + H[1, 2]) / w - x2[i, 1]
    return du * du + dv * dv


@njit(cache=True)
def homography_from_f_and_triple(F, e2, x1, x2, idx):
    """The homography of the plane through three correspondences compatible with F
    (Hartley & Zisserman, result 13.6): ``H = A - e2 (M^-1 b)^T`` with ``A = [e2]_x F``."""
    A = np.empty((3, 3))
    for c in range(3):
        A[0, c] = e2[1] * F[2, c] - e2[2] * F[1, c]
        A[1, c] = e2[2] * F[0, c] - e2[0] * F[2, c]
        A[2, c] = e2[0] * F[1, c] - e2[1] * F[0, c]
    M = np.empty((3, 3))
    b = np.empty(3)
    for r in range(3):
        i = idx[r]
        p = np.array([x1[i, 0], x1[i, 1], 1.0])
        q = np.array([x2[i, 0], x2[i, 1], 1.0])
        M[r] = p
        qe = _cross(q, e2)
        qa = _cross(q, A @ p)
        den = qe[0] ** 2 + qe[1] ** 2 + qe[2] ** 2
        if den <= 0.0:
            return A, False
        b[r] = (qa[0] * qe[0] + qa[1] * qe[1] + qa[2] * qe[2]) / den
    if abs(np.linalg.det(M)) < 1e-12:
        return A, False
    v = np.linalg.solve(M, b)
    H = A - np.outer(e2, v)
    return H, True


@njit(cache=True)
def _repair(data, sample, model, errs, sq_threshold, models):
    """DEGENSAC: plane-and-parallax re-estimation of an H-degenerate 7-point F."""
    x1, x2 = data[0], data[1]
    n = x1.shape[0]
    F = model.reshape(3, 3).copy()
    U, _S, _Vt = np.linalg.svd(F)
    e2 = U[:, 2].copy()  # F^T e2 = 0
    best_h = -1
    best_count = 0
    H = np.zeros((3, 3))
    for k in range(_TRIPLES.shape[0]):
        tri = np.empty(3, dtype=np.int64)
        for r in range(3):
            tri[r] = sample[_TRIPLES[k, r]]
        Hk, ok = homography_from_f_and_triple(F, e2, x1, x2, tri)
        if not ok:
            continue
        count = 0
        for j in range(sample.shape[0]):
            if _transfer_sq(Hk, x1, x2, sample[j]) < 9.0 * sq_threshold:
                count += 1
        if count > best_count:
            best_count = count
            best_h = k
            H[:, :] = Hk
    if best_h < 0 or best_count < 5:
        return 0
    # three noisy points pin H down poorly away from them: refit it (DLT, twice) on every point
    # it explains, so that the plane's points are told from the parallax ones across the image
    for _ in range(2):
        sel = np.empty(n, dtype=np.int64)
        m = 0
        for i in range(n):
            if _transfer_sq(H, x1, x2, i) < 9.0 * sq_threshold:
                sel[m] = i
                m += 1
        if m < 8:
            break
        Hr, ok = homography_dlt_nb(gather_rows(x1, sel[:m]), gather_rows(x2, sel[:m]), np.ones(m))
        if not ok:
            break
        H[:, :] = Hr
    # points off the plane: candidates for the epipole
    off = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if _transfer_sq(H, x1, x2, i) > 9.0 * sq_threshold:
            off[m] = i
            m += 1
    if m < 2:
        return 0
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(1 + sample[0] * 7919 + sample[1])
    pair = np.empty(2, dtype=np.int64)
    best_score = np.inf
    cand = np.empty(9)
    e = np.empty(n)
    found = False
    for _ in range(_PARALLAX_DRAWS):
        core.sample_uniform(state, m, pair, 0)
        a, c = off[pair[0]], off[pair[1]]
        la = _cross(H @ np.array([x1[a, 0], x1[a, 1], 1.0]), np.array([x2[a, 0], x2[a, 1], 1.0]))
        lc = _cross(H @ np.array([x1[c, 0], x1[c, 1], 1.0]), np.array([x2[c, 0], x2[c, 1], 1.0]))
        ep = _cross(la, lc)
        nrm = np.sqrt(ep[0] ** 2 + ep[1] ** 2 + ep[2] ** 2)
        if not nrm > 0.0:
            continue
        ep /= nrm
        Fc = np.empty((3, 3))
        for col in range(3):
            Fc[0, col] = ep[1] * H[2, col] - ep[2] * H[1, col]
            Fc[1, col] = ep[2] * H[0, col] - ep[0] * H[2, col]
            Fc[2, col] = ep[0] * H[1, col] - ep[1] * H[0, col]
        fn = np.sqrt(np.sum(Fc * Fc))
        if not fn > 0.0:
            continue
        fflat = (Fc / fn).ravel()
        sampson_sq_errors_flat(fflat, x1, x2, 0, n, e)
        sc, _ = core.msac_score(e, sq_threshold)
        if sc < best_score:
            best_score = sc
            cand[:] = fflat
            found = True
    if not found:
        return 0
    models[0, :] = cand
    return 1


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, _repair,
                            data, order, groups, params_i, params_f, seed)


class FundamentalEstimator(MatrixEstimator):
    """Fundamental matrix ``x2^T F x1 = 0`` from pixel correspondences x1, x2 (N,2)."""

    name = "fundamental matrix"
    sample_size = 7
    matrix_name = "fundamental matrix"
    max_models = 3
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_repair = staticmethod(_repair)
    k_run = staticmethod(_run)


def estimate_fundamental(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    **option_overrides,
) -> RansacResult:
    """Robust fundamental matrix from pixel matches x1, x2 (N,2), N >= 7, with DEGENSAC.

    ``max_error``: inlier threshold on the Sampson error in pixels. Other keywords are
    :class:`RansacOptions` fields. Returns ``(F (3,3) unit Frobenius norm, inliers, stats)``.
    When (nearly) all inliers lie on one plane F is undetermined: ``success`` is False and the
    message says so.
    """
    opts = resolve_options(options, option_overrides)
    t = check_positive(max_error, "max_error")
    est = FundamentalEstimator(x1, x2)
    res = ransac(est, t * t, opts, rng=rng, quality=quality)
    if res.model is None:
        return res
    off_plane = _off_plane_inliers(est.data[0], est.data[1], res.inliers, t)
    if off_plane < MIN_OFF_PLANE:
        return res.failed(
            f"plane-degenerate: only {off_plane} inliers lie off the dominant plane "
            f"(fewer than {MIN_OFF_PLANE}); F is not determined, estimate a homography instead"
        )
    return res


MIN_OFF_PLANE = 10  # F needs correspondences off a dominant plane to fix the epipole


def _off_plane_inliers(x1: np.ndarray, x2: np.ndarray, inliers: np.ndarray, max_error: float) -> int:
    """How many of the F inliers a homography fitted to them does not explain (transfer error
    above twice the threshold: a 2-D error against Sampson's 1-D one)."""
    idx = np.flatnonzero(inliers)
    if len(idx) < 8:
        return len(idx)
    a, b = x1[idx], x2[idx]
    res = ransac(HomographyEstimator(a, b), (2.0 * max_error) ** 2, RansacOptions(min_iterations=50), rng=0)
    if res.model is None:
        return len(idx)
    return int(np.count_nonzero(~res.inliers))
