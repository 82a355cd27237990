"""Closed-form similarity ``b_from_a`` from 3-D point correspondences (Umeyama 1991).

``sim3_from_points`` minimises ``sum_i w_i |X_b[i] - (s R X_a[i] + t)|^2`` over the rotation R,
the translation t and (``with_scale``) the scale s > 0: the weighted centroids fix t, the SVD of
the weighted cross-covariance fixes R (with the sign correction that keeps det R = +1 when the
best orthogonal map would be a reflection), and s = trace(D Sigma) / var(X_a). This is the exact
least-squares optimum of the error RANSAC scores (``robust/sim3.py``), so the same function is
the minimal solver (3 points), the LO refit and the weighted refinement; ``scene.align.umeyama``
uses it too. With ``with_scale=False`` s = 1 and R, t are the rigid optimum (Kabsch).

The numba core ``sim3_from_points_nb(X_a, X_b, w, with_scale) -> (s, R, t, ok)`` trusts its
inputs; ``ok`` is False when the weights sum to zero or the weighted X_a coincide (then the map
is undetermined). Three or more non-collinear points determine it uniquely.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_points, check_same_length
from ..geometry.sim3 import Sim3
from ._inputs import weights_of

# weighted spread of X_a below this fraction of its squared extent: the points coincide
COINCIDENT_REL_TOL = 1e-24


@njit(cache=True)
def sim3_from_points_nb(X_a, X_b, w, with_scale):
    """Weighted least-squares ``X_b ~ s R X_a + t`` (see the module docstring)."""
    n = X_a.shape[0]
    R = np.eye(3)
    t = np.zeros(3)
    sw = 0.0
    mu_a = np.zeros(3)
    mu_b = np.zeros(3)
    ext = 0.0
    for i in range(n):
        sw += w[i]
        for j in range(3):
            mu_a[j] += w[i] * X_a[i, j]
            mu_b[j] += w[i] * X_b[i, j]
            ext = max(ext, abs(X_a[i, j]))
    if not sw > 0.0:
        return 1.0, R, t, False
    mu_a /= sw
    mu_b /= sw
    var_a = 0.0
    C = np.zeros((3, 3))  # sum w (b - mu_b)(a - mu_a)^T
    for i in range(n):
        for j in range(3):
            da = X_a[i, j] - mu_a[j]
            var_a += w[i] * da * da
            for k in range(3):
                C[k, j] += w[i] * (X_b[i, k] - mu_b[k]) * da
    if not var_a > COINCIDENT_REL_TOL * sw * (1.0 + ext * ext):
        return 1.0, R, t, False
    U, sig, Vt = np.linalg.svd(C)
    d = 1.0
    if np.linalg.det(U) * np.linalg.det(Vt) < 0.0:
        d = -1.0
    for k in range(3):
        for j in range(3):
            R[k, j] = U[k, 0] * Vt[0, j] + U[k, 1] * Vt[1, j] + d * U[k, 2] * Vt[2, j]
    s = 1.0
    if with_scale:
        s = (sig[0] + sig[1] + d * sig[2]) / var_a
        if not s > 0.0:  # only when X_b coincide (all sig ~ 0): no positive scale fits better
            return 1.0, R, t, False
    for k in range(3):
        t[k] = mu_b[k] - s * (R[k, 0] * mu_a[0] + R[k, 1] * mu_a[1] + R[k, 2] * mu_a[2])
    return s, R, t, True


def sim3_from_points(
    X_a: np.ndarray, X_b: np.ndarray, weights: np.ndarray | None = None, *, with_scale: bool = True
) -> Sim3 | None:
    """Least-squares similarity ``b_from_a`` (``x_b = scale * R @ x_a + t``) from corresponding
    points X_a, X_b (N,3), N >= 3, optionally weighted (N,) non-negative.

    ``with_scale=False`` fixes the scale to 1 (the rigid optimum). Returns None when the map is
    undetermined (weights all zero, X_a coinciding, or X_b coinciding with a free scale).
    Collinear points give *a* minimiser (the rotation about their line is arbitrary); reject
    them before calling where that matters.
    """
    a = as_points(X_a, "X_a", 3)
    b = as_points(X_b, "X_b", 3)
    n = check_same_length(X_a=a, X_b=b)
    if n < 3:
        raise ValueError(f"X_a: need at least 3 point correspondences, got {n}")
    if not isinstance(with_scale, bool):
        raise ValueError(f"with_scale must be True or False, got {with_scale!r}")
    w = weights_of(weights, n)
    s, R, t, ok = sim3_from_points_nb(a, b, w, with_scale)
    return Sim3(s, R, t, check=False) if ok else None
