"""2-D line fitting: the textbook RANSAC example (and the engine's test model).

A line is ``(a, b, c)`` with ``a^2 + b^2 = 1`` and ``a x + b y + c = 0``, so ``a x + b y + c`` is
the signed distance of (x, y) to the line.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, as_points, check_positive
from . import _core as core
from .engine import Estimator, RansacResult, ransac
from .options import RansacOptions, resolve_options


@njit(cache=True)
def _fit_minimal(data, sample, models):
    pts = data[0]
    i, j = sample[0], sample[1]
    dx = pts[j, 0] - pts[i, 0]
    dy = pts[j, 1] - pts[i, 1]
    d = np.hypot(dx, dy)
    if d == 0.0:
        return 0
    a, b = -dy / d, dx / d
    models[0, 0] = a
    models[0, 1] = b
    models[0, 2] = -(a * pts[i, 0] + b * pts[i, 1])
    return 1


@njit(cache=True)
def _degenerate(data, sample):
    pts = data[0]
    i, j = sample[0], sample[1]
    dx = pts[j, 0] - pts[i, 0]
    dy = pts[j, 1] - pts[i, 1]
    scale = 1.0 + abs(pts[i, 0]) + abs(pts[i, 1])
    return dx * dx + dy * dy <= (1e-12 * scale) ** 2


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    pts = data[0]
    a, b, c = model[0], model[1], model[2]
    for k in range(start, stop):
        r = a * pts[k, 0] + b * pts[k, 1] + c
        out[k] = r * r


@njit(cache=True)
def _weighted_tls(pts, idx, weights, out):
    """Weighted total least squares line through pts[idx]; False when undetermined."""
    sw = 0.0
    mx = 0.0
    my = 0.0
    for k in range(idx.shape[0]):
        w = weights[k]
        sw += w
        mx += w * pts[idx[k], 0]
        my += w * pts[idx[k], 1]
    if sw <= 0.0:
        return False
    mx /= sw
    my /= sw
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    for k in range(idx.shape[0]):
        w = weights[k]
        dx = pts[idx[k], 0] - mx
        dy = pts[idx[k], 1] - my
        sxx += w * dx * dx
        sxy += w * dx * dy
        syy += w * dy * dy
    if sxx + syy <= 0.0:
        return False
    # normal = eigenvector of the smallest eigenvalue of [[sxx, sxy], [sxy, syy]]
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)  # direction of the largest spread
    a, b = -np.sin(theta), np.cos(theta)
    out[0] = a
    out[1] = b
    out[2] = -(a * mx + b * my)
    return True


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    return 1 if _weighted_tls(data[0], idx, weights, models[0]) else 0


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    out = np.empty(3)
    if _weighted_tls(data[0], idx, weights, out):
        return out
    return model.copy()


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, groups, params_i, params_f, seed)


class LineEstimator(Estimator):
    """2-D line ``(a, b, c)`` through points (N,2); error = squared orthogonal distance."""

    name = "line"
    sample_size = 2
    model_dim = 3
    max_models = 1
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_run = staticmethod(_run)

    def __init__(self, points: np.ndarray) -> None:
        pts = as_points(points, "points", 2)
        super().__init__((pts,), len(pts))


def estimate_line(
    points: np.ndarray,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    **option_overrides,
) -> RansacResult:
    """Robust 2-D line through ``points`` (N,2): ``model`` is ``(a, b, c)`` with a^2 + b^2 = 1;
    ``max_error`` is the inlier distance (same units as the points)."""
    opts = resolve_options(options, option_overrides)
    t = check_positive(max_error, "max_error")
    return ransac(LineEstimator(points), t * t, opts, rng=rng, quality=quality)
