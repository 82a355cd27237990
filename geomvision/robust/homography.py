"""Robust homography ``x2 ~ H x1`` between two images (pixels in, threshold in pixels).

Error: the one-sided transfer error ``|x2 - H(x1)|^2`` in image 2 (the measure OpenCV's
``findHomography`` and PoseLib score with). Minimal solver: 4 points; LO refit: normalised DLT;
refinement: weighted Levenberg-Marquardt on the transfer error. Models are H (3,3) with unit Frobenius norm,
signed so that the third coordinate of ``H @ (x1, 1)`` is positive on the inliers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, check_positive
from ..solvers.homography import homography_4pt_nb, homography_dlt_nb
from ..solvers.refine import refine_homography_nb
from . import _core as core
from ._degeneracy import LM_FTOL, LM_GTOL, LM_XTOL, any_collinear_triple_2d, gather_rows
from .engine import MatrixEstimator, RansacResult, ransac
from .options import RansacOptions, resolve_options


@njit(cache=True)
def _degenerate(data, sample):
    return any_collinear_triple_2d(data[0], sample) or any_collinear_triple_2d(data[1], sample)


@njit(cache=True)
def _fit_minimal(data, sample, models):
    H, ok = homography_4pt_nb(gather_rows(data[0], sample), gather_rows(data[1], sample))
    if not ok:
        return 0
    models[0, :] = H.ravel()
    return 1


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    H, ok = homography_dlt_nb(gather_rows(data[0], idx), gather_rows(data[1], idx), weights)
    if not ok:
        return 0
    models[0, :] = H.ravel()
    return 1


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    H, _it, _c0, c1 = refine_homography_nb(model.reshape(3, 3).copy(), gather_rows(data[0], idx),
                                         gather_rows(data[1], idx), weights, max_iters, LM_FTOL, LM_XTOL, LM_GTOL)
    if not np.isfinite(c1):
        return model.copy()
    return H.ravel().copy()


@njit(cache=True)
def transfer_sq_errors(H, x1, x2, start, stop, out):
    """|x2 - H(x1)|^2 of points start..stop-1 (H flat, 9); inf where H maps x1 to infinity or
    behind the camera (w <= 0)."""
    for i in range(start, stop):
        u, v = x1[i, 0], x1[i, 1]
        w = H[6] * u + H[7] * v + H[8]
        if w <= 1e-15 * (abs(H[6] * u) + abs(H[7] * v) + abs(H[8])):
            out[i] = np.inf
            continue
        du = (H[0] * u + H[1] * v + H[2]) / w - x2[i, 0]
        dv = (H[3] * u + H[4] * v + H[5]) / w - x2[i, 1]
        out[i] = du * du + dv * dv


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    transfer_sq_errors(model, data[0], data[1], start, stop, out)


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, groups, params_i, params_f, seed)


class HomographyEstimator(MatrixEstimator):
    """Homography ``x2 ~ H x1`` from pixel correspondences x1, x2 (N,2)."""

    name = "homography"
    sample_size = 4
    matrix_name = "homography"
    max_models = 1
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_run = staticmethod(_run)


def estimate_homography(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    **option_overrides,
) -> RansacResult:
    """Robust homography ``x2 ~ H x1`` from pixel matches x1, x2 (N,2), N >= 4.

    ``max_error``: inlier threshold on the transfer error ``|x2 - H x1|`` in pixels. ``quality``
    (N,), higher is better, orders PROSAC's samples (``sampler="prosac"``). Other keywords are
    :class:`RansacOptions` fields. Returns ``(H (3,3) unit Frobenius norm, inliers (N,), stats)``.
    """
    opts = resolve_options(options, option_overrides)
    t = check_positive(max_error, "max_error")
    return ransac(HomographyEstimator(x1, x2), t * t, opts, rng=rng, quality=quality)
