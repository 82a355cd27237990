"""Robust similarity ``b_from_a`` (``Sim3``) from 3D-3D point correspondences.

The building block of loop closure: the same points reconstructed in two frames (two parts of a
model that drifted apart, or two models) give the transform ``x_b = scale * R @ x_a + t``
between them; monocular drift needs the scale, stereo / RGB-D (``with_scale=False``) does not.

- Minimal sample: 3 points, not (nearly) collinear in either frame (the rotation about their
  line would be free). Solver: closed-form Umeyama / Horn (``solvers.similarity``), one model.
- Error: the squared distance ``|X_b - S(X_a)|^2`` in the units of X_b, so ``max_error`` is a
  distance in frame b. One direction only, by design: for a similarity the reverse error
  ``|X_a - S^-1(X_b)|`` is the same residual divided by the scale (``S^-1`` is ``1/s R^T``
  applied to it), so scoring both directions (as ORB-SLAM does for its *reprojection* errors,
  whose pixel units differ per camera) would only reweight every point by the same
  ``1 + 1/s^2`` and change the threshold's meaning. Pass the better-scaled or less noisy frame
  as b (or swap and invert the result) when the two frames' units differ.
- LO refit and refinement: the weighted Umeyama solution on the inliers, which is the exact
  weighted least-squares optimum of the scored error (no iterations needed).
- Whole-set degeneracy: when the inliers lie within ``max_error`` of one line, the rotation
  about that line is undetermined: ``success`` is False and the message says so.

Models travel as 13 numbers: ``[scale, R (row-major), t]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, as_points, check_positive, check_same_length
from ..geometry.sim3 import Sim3
from ..solvers.similarity import sim3_from_points_nb
from . import _core as core
from ._degeneracy import any_collinear_triple_3d, gather_rows
from .engine import Estimator, RansacResult, ransac
from .options import RansacOptions, resolve_options


@njit(cache=True)
def _to_vec(s, R, t, out):
    out[0] = s
    for k in range(3):
        for j in range(3):
            out[1 + 3 * k + j] = R[k, j]
        out[10 + k] = t[k]


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    X_a, X_b = data[0], data[1]
    s = model[0]
    for i in range(start, stop):
        x, y, z = X_a[i, 0], X_a[i, 1], X_a[i, 2]
        dx = X_b[i, 0] - (s * (model[1] * x + model[2] * y + model[3] * z) + model[10])
        dy = X_b[i, 1] - (s * (model[4] * x + model[5] * y + model[6] * z) + model[11])
        dz = X_b[i, 2] - (s * (model[7] * x + model[8] * y + model[9] * z) + model[12])
        out[i] = dx * dx + dy * dy + dz * dz


@njit(cache=True)
def _degenerate(data, sample):
    return any_collinear_triple_3d(data[0], sample) or any_collinear_triple_3d(data[1], sample)


@njit(cache=True)
def _fit(data, idx, weights, out):
    s, R, t, ok = sim3_from_points_nb(gather_rows(data[0], idx), gather_rows(data[1], idx), weights, data[2][0])
    if ok:
        _to_vec(s, R, t, out)
    return ok


@njit(cache=True)
def _fit_minimal(data, sample, models):
    return 1 if _fit(data, sample, np.ones(sample.shape[0]), models[0]) else 0


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    return 1 if _fit(data, idx, weights, models[0]) else 0


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    out = np.empty(13)
    if _fit(data, idx, weights, out):
        return out
    return model.copy()


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, groups, params_i, params_f, seed)


class Sim3Estimator(Estimator):
    """Similarity ``b_from_a`` from corresponding points X_a, X_b (N,3); error = squared
    distance ``|X_b - (s R X_a + t)|^2`` in frame b. ``with_scale=False`` fixes s = 1."""

    name = "sim3"
    sample_size = 3
    model_dim = 13
    max_models = 1
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_run = staticmethod(_run)

    def __init__(self, X_a: np.ndarray, X_b: np.ndarray, *, with_scale: bool = True) -> None:
        a = as_points(X_a, "X_a", 3)
        b = as_points(X_b, "X_b", 3)
        n = check_same_length(X_a=a, X_b=b)
        if n < self.sample_size:
            raise ValueError(f"X_a, X_b: need at least {self.sample_size} point correspondences, got {n}")
        if not isinstance(with_scale, bool):
            raise ValueError(f"with_scale must be True or False, got {with_scale!r}")
        self.with_scale = with_scale
        super().__init__((a, b, np.array([with_scale])), n)

    def decode(self, vec: np.ndarray) -> Sim3:
        return Sim3(vec[0], vec[1:10].reshape(3, 3), vec[10:], check=False)

    def encode(self, model) -> np.ndarray:
        if not isinstance(model, Sim3):
            raise ValueError(f"model must be a Sim3 b_from_a, got {type(model).__name__}")
        return np.concatenate([[model.scale], model.R.ravel(), model.t])


def estimate_sim3(
    X_a: np.ndarray,
    X_b: np.ndarray,
    options: RansacOptions | None = None,
    *,
    max_error: float,
    rng: RngLike = None,
    with_scale: bool = True,
    quality: np.ndarray | None = None,
    **option_overrides,
) -> RansacResult:
    """Robust similarity ``b_from_a`` (``x_b = scale * R @ x_a + t``) from corresponding points
    X_a, X_b (N,3), N >= 3.

    ``max_error``: inlier threshold on the distance ``|X_b - S(X_a)|`` in the units of X_b.
    ``with_scale=False`` fits a rigid transform (scale exactly 1: stereo, RGB-D). Other keywords
    are :class:`RansacOptions` fields. Returns ``(b_from_a (Sim3), inliers, stats)``; when no
    non-collinear sample exists or the inliers lie within ``max_error`` of one line (rotation
    about it undetermined) the model is None and ``success`` False.
    """
    opts = resolve_options(options, option_overrides)
    thr = check_positive(max_error, "max_error")
    est = Sim3Estimator(X_a, X_b, with_scale=with_scale)
    res = ransac(est, thr * thr, opts, rng=rng, quality=quality)
    if res.model is None:
        return res
    off_line = _off_line_spread(est.data[0][res.inliers]) * res.model.scale
    if not off_line > thr:
        return res.failed(
            f"line-degenerate: the inliers lie within {off_line:.3g} (rms, frame b) of one line, "
            f"not more than max_error={thr:g}; the rotation about that line is undetermined"
        )
    return res


def _off_line_spread(X: np.ndarray) -> float:
    """RMS distance of the points X (N,3) from their best-fitting line."""
    if len(X) < 3:
        return 0.0
    sig = np.linalg.svd(X - X.mean(0), compute_uv=False)
    return float(np.sqrt((sig[1] ** 2 + sig[2] ** 2) / len(X)))
