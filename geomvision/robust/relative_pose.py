"""Robust calibrated relative pose ``cam2_from_cam1`` and essential matrix from pixel matches.

Pixels are unprojected to rays on the z = 1 plane with each camera's ``cam_from_img`` (so lens
distortion is handled), and every error is the Sampson error of ``x2^T E x1 = 0`` measured in
pixels: the gradient of the epipolar constraint with respect to the pixel coordinates divides by
the focal lengths, ``e^2 = (x2^T E x1)^2 / ((Ex1)_0^2/fx2^2 + (Ex1)_1^2/fy2^2 + (E^T x2)_0^2/fx1^2 +
(E^T x2)_1^2/fy1^2)``, which equals the Sampson error of F = K2^-T E K1^-1 on the pixels of pinhole
cameras (and is the linearised pixel error with distortion). So ``max_error`` is in pixels, as in
OpenCV and PoseLib.

Minimal solver: Nister's 5 points with the cheirality-consistent decomposition; LO refit:
8-point on the inliers followed by cheirality; refinement: weighted LM on the pose.
Models are [R | t] row-major (12 numbers), t of unit norm.

With ``in_front`` (the default of :func:`estimate_relative_pose`) a match within the threshold
whose rays meet behind either camera, at a parallax above ``BEHIND_MIN_PARALLAX_PX``, is scored
as an outlier: the epipolar error is blind to which side of the cameras a point lies on, and on
repeated structure matches shifted along the baseline fit a second pose with the opposite
baseline, with the larger epipolar consensus but many of its inliers behind.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, as_points, check_positive, check_same_length
from ..geometry.camera import Camera
from ..geometry.epipolar import essential_from_pose
from ..solvers.essential import (
    best_cheirality_nb,
    essential_8pt_nb,
    five_point_workspace,
    relative_pose_5pt_borrowed,
    relative_pose_from_essential_nb,
)
from ..solvers._numeric import det3, matmul3, svd
from ..solvers._views import borrowed
from ..solvers.refine import refine_relative_pose_nb
from . import _core as core
from ._degeneracy import LM_FTOL, LM_GTOL, LM_XTOL, any_parallel_rays, gather_rows, gather_rows_into
from .engine import PoseEstimator, RansacResult, RansacStats, ransac, shared_keypoint_groups
from .options import RansacOptions, resolve_options


@njit(cache=True)
def pose_to_vec(R, t, out):
    for r in range(3):
        for c in range(3):
            out[3 * r + c] = R[r, c]
        out[9 + r] = t[r]


@njit(cache=True)
def sampson_px_sq_errors(model, cols, inv_f2, sq_gate, start, stop, out):
    """Pixel Sampson errors of points start..stop-1 under the pose ``model`` ([R|t] row-major)
    on z = 1 rays given as columns ``cols`` (6, N): (x1, y1, z1, x2, y2, z2);
    ``inv_f2 = (1/fx1^2, 1/fy1^2, 1/fx2^2, 1/fy2^2)``. With ``sq_gate >= 0`` a point whose error
    is at most ``sq_gate`` but whose rays meet behind either camera at a parallax above
    ``BEHIND_MIN_PARALLAX_PX`` pixels gets inf; nearly parallel rays (far points) keep their
    error, as the noise decides their side. Columns and a branch-free body let the loop run on
    SIMD lanes (half the time of rows with a second pass for the side); so does a loop from 0 over
    views of start..stop (from ``start`` over the whole columns, LLVM's vector loop is not taken
    and the kernel runs 4-8 times slower: figures in benchmarks/RESULTS.md)."""
    m0, m1, m2, m3, m4, m5, m6, m7, m8 = (model[0], model[1], model[2], model[3], model[4], model[5],
                                          model[6], model[7], model[8])
    t0, t1, t2 = model[9], model[10], model[11]
    # E = [t]_x R
    e00 = t1 * m6 - t2 * m3
    e01 = t1 * m7 - t2 * m4
    e02 = t1 * m8 - t2 * m5
    e10 = t2 * m0 - t0 * m6
    e11 = t2 * m1 - t0 * m7
    e12 = t2 * m2 - t0 * m8
    e20 = t0 * m3 - t1 * m0
    e21 = t0 * m4 - t1 * m1
    e22 = t0 * m5 - t1 * m2
    g1x, g1y, g2x, g2y = inv_f2[0], inv_f2[1], inv_f2[2], inv_f2[3]
    g = max(max(g1x, g1y), max(g2x, g2y)) * BEHIND_MIN_PARALLAX_PX**2
    cv = borrowed(cols)  # views at no reference-count cost (the caller holds the arrays)
    xs, ys, zs = cv[0, start:stop], cv[1, start:stop], cv[2, start:stop]
    us, vs, ws = cv[3, start:stop], cv[4, start:stop], cv[5, start:stop]
    res = borrowed(out)[start:stop]
    gated = sq_gate >= 0.0
    for i in range(stop - start):
        x, y, z = xs[i], ys[i], zs[i]
        u, v, w = us[i], vs[i], ws[i]
        a0 = e00 * x + e01 * y + e02 * z
        a1 = e10 * x + e11 * y + e12 * z
        a2 = e20 * x + e21 * y + e22 * z
        b0 = e00 * u + e10 * v + e20 * w
        b1 = e01 * u + e11 * v + e21 * w
        c = u * a0 + v * a1 + w * a2
        den = a0 * a0 * g2x + a1 * a1 * g2y + b0 * b0 * g1x + b1 * b1 * g1y
        e = c * c / den if den > 0.0 else np.inf
        if gated:
            # ray 1 in camera 2: d = R a; the depths (l1, l2) of l1 d + t = l2 b solve a 2x2
            # system whose determinant |d|^2 |b|^2 - (d.b)^2 (sin^2 of the parallax) is >= 0
            d0 = m0 * x + m1 * y + m2 * z
            d1 = m3 * x + m4 * y + m5 * z
            d2 = m6 * x + m7 * y + m8 * z
            aa = d0 * d0 + d1 * d1 + d2 * d2
            bb = u * u + v * v + w * w
            ab = d0 * u + d1 * v + d2 * w
            p = -(d0 * t0 + d1 * t1 + d2 * t2)
            q = u * t0 + v * t1 + w * t2
            behind = (bb * p + ab * q <= 0.0) | (ab * p + aa * q <= 0.0)  # l1 or l2 (times det) <= 0
            if behind & (aa * bb - ab * ab > g * aa * bb) & (e <= sq_gate):
                e = np.inf
        res[i] = e


BEHIND_MIN_PARALLAX_PX = 2.0  # rays closer to parallel than this (in pixels) keep their error


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    sampson_px_sq_errors(model, data[4], data[2], data[3][0], start, stop, out)


@njit(cache=True)
def _degenerate(data, sample):
    return any_parallel_rays(data[0], sample) or any_parallel_rays(data[1], sample)


@njit(cache=True)
def _fit_minimal(data, sample, models):
    # a pose that puts one of its own five points behind a camera cannot be the true one (the
    # sample would not be all inliers): on random samples this drops ~80 % of the candidates,
    # which then need not be scored; an all-inlier sample keeps its true pose (Nister 2004)
    ws_f, ws_i, sample_rays = data[5]
    r1 = gather_rows_into(data[0], sample, sample_rays[0])
    r2 = gather_rows_into(data[1], sample, sample_rays[1])
    Rs, ts, n = relative_pose_5pt_borrowed(r1, r2, (ws_f, ws_i), False, True)
    for j in range(n):
        pose_to_vec(Rs[j], ts[j], models[j])
    return n


@njit(cache=True)
def _fit_8pt(data, idx, weights, out):
    r1 = gather_rows(data[0], idx)
    r2 = gather_rows(data[1], idx)
    E, ok = essential_8pt_nb(r1, r2, weights)
    if not ok:
        return False
    R, t, n_front = relative_pose_from_essential_nb(E, r1, r2)
    if n_front <= 0:
        return False
    pose_to_vec(R, t, out)
    return True


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    return 1 if _fit_8pt(data, idx, weights, models[0]) else 0


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    R = model[:9].reshape(3, 3).copy()
    t = model[9:].copy()
    r1, r2 = gather_rows(data[0], idx), gather_rows(data[1], idx)
    R, t, _it, _c0, c1 = refine_relative_pose_nb(R, t, r1, r2, weights, False, max_iters, LM_FTOL, LM_XTOL, LM_GTOL)
    out = np.empty(12)
    if not np.isfinite(c1):
        return model.copy()
    if data[3][0] >= 0.0:
        # the Sampson error is blind to the sign of t: in the flat valleys of near-planar scenes
        # the refinement can end at (R, -t) or the twisted pair; keep the decomposition of the
        # refined E with the most points in front of both cameras
        R, t, _ = best_cheirality_nb(R, t, r1, r2)
    pose_to_vec(R, t, out)
    return out


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, groups, params_i, params_f, seed)


def _rays(uv: np.ndarray, camera: Camera, name: str) -> np.ndarray:
    if not isinstance(camera, Camera):
        raise ValueError(f"{name} must be a geomvision.Camera, got {type(camera).__name__}")
    return camera.cam_from_img(uv)  # finite pixels: a ray is finite or has x = y = NaN


class RelativePoseEstimator(PoseEstimator):
    """Calibrated relative pose ``cam2_from_cam1`` from pixel matches x1, x2 (N,2) of two cameras.

    With ``in_front_within`` (pixels, normally the inlier threshold) a point whose Sampson
    error is within it but whose rays meet behind a camera gets the error inf (see the module
    docstring); None scores the epipolar error alone."""

    name = "relative pose"
    sample_size = 5
    # an all-inlier 5-point sample comes once in w^-5 draws: 13,000 at 15 % inliers, so the
    # library-wide 10,000 ended the search on hard pairs before the true consensus was likely
    # drawn (PoseLib's cap is also 100,000)
    default_max_iterations = 100_000
    # a Geman-McClure-shaped score at half the threshold: at a threshold of 2-3 sigma, MSAC lets
    # a pose that fits its inliers worse win by gathering more points just under the threshold
    # (a Strecha pair: 1,508 inliers at 0.65 degrees beat 1,444 at 0.05 degrees)
    default_score_scale = 0.5
    # relax local optima with the Cauchy loss on the points within 5 thresholds (a Strecha pair:
    # 4 of 20 runs ended 0.5-0.65 degrees off in a local optimum sharing most inliers with the
    # right one, whose score is lower)
    default_relax_radius = 5.0
    pose_name = "cam2_from_cam1"
    max_models = 10
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_run = staticmethod(_run)

    def __init__(self, x1: np.ndarray, x2: np.ndarray, camera1: Camera, camera2: Camera,
                 in_front_within: float | None = None) -> None:
        a = as_points(x1, "x1", 2)
        b = as_points(x2, "x2", 2)
        check_same_length(x1=a, x2=b)
        r1 = _rays(a, camera1, "camera1")
        r2 = _rays(b, camera2, "camera2")
        # a match with a pixel beyond its lens model's invertible region (a NaN ray) gets two zero
        # rays: its Sampson error is inf and a sample holding it degenerate (one zero ray alone
        # would give it a zero error)
        gone = np.isnan(r1[:, 0]) | np.isnan(r2[:, 0])
        if gone.any():
            r1[gone] = 0.0
            r2[gone] = 0.0
        inv_f2 = 1.0 / np.array(
            [camera1.focal_length_x, camera1.focal_length_y, camera2.focal_length_x, camera2.focal_length_y]
        ) ** 2
        gate = -1.0 if in_front_within is None else check_positive(in_front_within, "in_front_within") ** 2
        cols = np.empty((6, len(a)))  # (6, N) for the error loop
        cols[:3] = r1.T
        cols[3:] = r2.T
        # the minimal solver's scratch and the sample's rays, made once: a draw allocates nothing
        scratch = (*five_point_workspace(), np.empty((2, self.sample_size, 3)))
        super().__init__((r1, r2, inv_f2, np.array([gate]), cols, scratch), len(a), shared_keypoint_groups(a, b))


def estimate_relative_pose(
    x1: np.ndarray,
    x2: np.ndarray,
    camera1: Camera,
    camera2: Camera,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    in_front: bool = True,
    **option_overrides,
) -> RansacResult:
    """Robust relative pose from pixel matches x1 (image 1), x2 (image 2), (N,2), N >= 5.

    ``max_error``: inlier threshold on the Sampson error in pixels. ``in_front``: an inlier must
    also triangulate in front of both cameras (unless its rays are nearly parallel); False
    scores the epipolar error alone. ``quality`` (N,), higher is better, orders PROSAC's
    samples (``sampler="prosac"``). Other keywords are :class:`RansacOptions` fields. Returns
    ``(cam2_from_cam1 (Rigid3, |t| = 1), inliers, stats)``. When a pure rotation explains
    (nearly) every inlier the translation is undetermined: ``success`` is False and the message
    says so.
    """
    opts = resolve_options(options, option_overrides)
    t = check_positive(max_error, "max_error")
    est = RelativePoseEstimator(x1, x2, camera1, camera2, in_front_within=t if in_front else None)
    res = ransac(est, t * t, opts, rng=rng, quality=quality)
    if res.model is None:
        return res
    moving = _parallax_inliers(est, res.inliers, t)
    if moving < MIN_PARALLAX_INLIERS:
        return res.failed(
            f"no parallax: a pure rotation explains all but {moving} inliers (fewer than "
            f"{MIN_PARALLAX_INLIERS}), so the translation is undetermined"
        )
    return res


MIN_PARALLAX_INLIERS = 10  # inliers a pure rotation must fail to explain for t to be determined


def count_parallax_points(rays1: np.ndarray, rays2: np.ndarray, focal2: tuple[float, float], max_error: float) -> int:
    """How many matches a pure rotation leaves more than ``2 * max_error`` pixels from their
    match in image 2: the rotation is fitted to all of them in closed form (Kabsch on the
    bearings). ``rays1``, ``rays2`` (N,3) are matched rays (z = 1 plane) of the two cameras,
    ``focal2 = (fx2, fy2)`` converts camera-2 plane units to pixels. Fewer than
    ``MIN_PARALLAX_INLIERS`` means the matches do not determine a translation."""
    r1 = np.ascontiguousarray(rays1, dtype=np.float64)
    r2 = np.ascontiguousarray(rays2, dtype=np.float64)
    return int(_count_parallax(r1, r2, np.ones(len(r1), dtype=np.bool_), float(focal2[0]), float(focal2[1]),
                               float(max_error)))


@njit(cache=True)
def _count_parallax(rays1, rays2, mask, fx2, fy2, max_error):
    """:func:`count_parallax_points` on the rows of ``mask``; a row with a non-finite or zero ray
    counts as moved."""
    M = np.zeros((3, 3))
    for i in range(rays1.shape[0]):
        if mask[i]:
            n1 = np.sqrt(rays1[i, 0] ** 2 + rays1[i, 1] ** 2 + rays1[i, 2] ** 2)
            n2 = np.sqrt(rays2[i, 0] ** 2 + rays2[i, 1] ** 2 + rays2[i, 2] ** 2)
            if n1 > 0.0 and n2 > 0.0 and np.isfinite(n1 + n2):
                for r in range(3):
                    for c in range(3):
                        M[r, c] += (rays2[i, r] / n2) * (rays1[i, c] / n1)
    U, _, Vt = svd(M)
    if det3(U) * det3(Vt) < 0.0:
        for r in range(3):
            U[r, 2] = -U[r, 2]
    R = matmul3(U, Vt)  # argmin sum |b2 - R b1|^2
    gate = (2.0 * max_error) ** 2
    moved = 0
    for i in range(rays1.shape[0]):
        if not mask[i]:
            continue
        p0 = R[0, 0] * rays1[i, 0] + R[0, 1] * rays1[i, 1] + R[0, 2] * rays1[i, 2]
        p1 = R[1, 0] * rays1[i, 0] + R[1, 1] * rays1[i, 1] + R[1, 2] * rays1[i, 2]
        p2 = R[2, 0] * rays1[i, 0] + R[2, 1] * rays1[i, 1] + R[2, 2] * rays1[i, 2]
        du = (p0 / p2 - rays2[i, 0] / rays2[i, 2]) * fx2 if p2 != 0.0 and rays2[i, 2] != 0.0 else np.nan
        dv = (p1 / p2 - rays2[i, 1] / rays2[i, 2]) * fy2 if p2 != 0.0 and rays2[i, 2] != 0.0 else np.nan
        if not du * du + dv * dv <= gate:  # NaN (behind the camera) counts as moved
            moved += 1
    return moved


def _parallax_inliers(est: RelativePoseEstimator, inliers: np.ndarray, max_error: float) -> int:
    r1, r2, inv_f2 = est.data[:3]
    return int(_count_parallax(r1, r2, inliers, 1.0 / np.sqrt(inv_f2[2]), 1.0 / np.sqrt(inv_f2[3]), float(max_error)))


def estimate_essential(
    x1: np.ndarray,
    x2: np.ndarray,
    camera1: Camera,
    camera2: Camera,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    in_front: bool = True,
    **option_overrides,
) -> RansacResult:
    """Robust essential matrix ``E = [t]_x R`` (``x2n^T E x1n = 0`` on the z = 1 rays of the two
    cameras) from pixel matches, with the same estimation as :func:`estimate_relative_pose`:
    E is the one of the best cheirality-consistent pose (|t| = 1, singular values (1, 1, 0))."""
    res = estimate_relative_pose(
        x1, x2, camera1, camera2, max_error=max_error, rng=rng, options=options, quality=quality, in_front=in_front,
        **option_overrides,
    )
    if res.model is None:
        return res
    return RansacResult(essential_from_pose(res.model), res.inliers, res.stats)


__all__ = ["RansacStats", "RelativePoseEstimator", "count_parallax_points", "estimate_essential",
           "estimate_relative_pose"]
