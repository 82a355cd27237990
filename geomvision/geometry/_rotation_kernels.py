"""numba kernels of SO(3) used inside other kernels (bundle adjustment, solver refinement, pose graphs):
hat, exp, log, the left / right Jacobians and the projection onto SO(3).

The numpy versions for Python callers are in ``rotation.py``; this is the same Rodrigues
formula, written once for code that runs inside numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def hat_nb(v):
    """[v]_x (3, 3) with [v]_x u = v x u (``rotation.hat`` for one vector, inside numba)."""
    M = np.zeros((3, 3))
    M[0, 1] = -v[2]
    M[0, 2] = v[1]
    M[1, 0] = v[2]
    M[1, 2] = -v[0]
    M[2, 0] = -v[1]
    M[2, 1] = v[0]
    return M


@njit(cache=True, inline="always")
def so3_exp_into(wx, wy, wz, out):
    """out (3,3) = exp([w]_x) for the rotation vector w = (wx, wy, wz) (radians);
    series coefficients below 1e-4 rad, exact to double precision there."""
    th2 = wx * wx + wy * wy + wz * wz
    if th2 < 1e-8:
        a = 1.0 - th2 / 6.0 + th2 * th2 / 120.0
        b = 0.5 - th2 / 24.0 + th2 * th2 / 720.0
    else:
        th = np.sqrt(th2)
        a = np.sin(th) / th
        b = (1.0 - np.cos(th)) / th2
    out[0, 0] = 1.0 - b * (wy * wy + wz * wz)
    out[1, 1] = 1.0 - b * (wx * wx + wz * wz)
    out[2, 2] = 1.0 - b * (wx * wx + wy * wy)
    out[0, 1] = -a * wz + b * wx * wy
    out[1, 0] = a * wz + b * wx * wy
    out[0, 2] = a * wy + b * wx * wz
    out[2, 0] = -a * wy + b * wx * wz
    out[1, 2] = -a * wx + b * wy * wz
    out[2, 1] = a * wx + b * wy * wz


@njit(cache=True)
def so3_exp(wx, wy, wz):
    """A new (3,3) rotation matrix exp([w]_x)."""
    R = np.empty((3, 3))
    so3_exp_into(wx, wy, wz, R)
    return R


@njit(cache=True, inline="always")
def so3_log_into(R, out):
    """Rotation vector (3,) of R (3,3), angle in [0, pi]."""
    c = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    c = min(1.0, max(-1.0, c))
    vx = 0.5 * (R[2, 1] - R[1, 2])
    vy = 0.5 * (R[0, 2] - R[2, 0])
    vz = 0.5 * (R[1, 0] - R[0, 1])
    s = np.sqrt(vx * vx + vy * vy + vz * vz)
    th = np.arctan2(s, c)
    if c > -0.99:
        if th < 1e-4:
            f = 1.0 + th * th / 6.0 + 7.0 * th ** 4 / 360.0
        else:
            f = th / np.sin(th)
        out[0], out[1], out[2] = f * vx, f * vy, f * vz
        return
    # near pi: the axis from the symmetric part (R + R^T)/2 - cos I = (1 - cos) a a^T
    best = 0
    for k in range(1, 3):
        if R[k, k] > R[best, best]:
            best = k
    ax = np.empty(3)
    for r in range(3):
        ax[r] = 0.5 * (R[r, best] + R[best, r])
    ax[best] -= c
    n = np.sqrt(ax[0] * ax[0] + ax[1] * ax[1] + ax[2] * ax[2])
    sign = 1.0 if ax[0] * vx + ax[1] * vy + ax[2] * vz >= 0.0 else -1.0
    for r in range(3):
        out[r] = sign * th * ax[r] / n


@njit(cache=True, inline="always")
def so3_right_jacobian_inverse(w, out):
    """Jr^-1(w) (3,3) of SO(3): d log(R Exp(d)) / dd at d = 0 for log R = w."""
    th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    if th2 < 1e-8:
        b = 1.0 / 12.0 + th2 / 720.0
    else:
        th = np.sqrt(th2)
        b = 1.0 / th2 - (1.0 + np.cos(th)) / (2.0 * th * np.sin(th))
    # I + 1/2 [w]x + b [w]x^2,  [w]x^2 = w w^T - th2 I
    for r in range(3):
        for c in range(3):
            out[r, c] = b * w[r] * w[c]
        out[r, r] += 1.0 - b * th2
    out[0, 1] -= 0.5 * w[2]
    out[1, 0] += 0.5 * w[2]
    out[0, 2] += 0.5 * w[1]
    out[2, 0] -= 0.5 * w[1]
    out[1, 2] -= 0.5 * w[0]
    out[2, 1] += 0.5 * w[0]


@njit(cache=True, inline="always")
def so3_left_jacobian(wx, wy, wz, out):
    """V(w) = I + (1 - cos th)/th^2 [w]x + (th - sin th)/th^3 [w]x^2 (3,3)."""
    th2 = wx * wx + wy * wy + wz * wz
    if th2 < 1e-8:
        b = 0.5 - th2 / 24.0
        c = 1.0 / 6.0 - th2 / 120.0
    else:
        th = np.sqrt(th2)
        b = (1.0 - np.cos(th)) / th2
        c = (th - np.sin(th)) / (th2 * th)
    w = (wx, wy, wz)
    for r in range(3):
        for k in range(3):
            out[r, k] = c * w[r] * w[k]
        out[r, r] += 1.0 - c * th2
    out[0, 1] -= b * wz
    out[1, 0] += b * wz
    out[0, 2] += b * wy
    out[2, 0] -= b * wy
    out[1, 2] -= b * wx
    out[2, 1] += b * wx


@njit(cache=True)
def orthonormality_error(R):
    """max |R R^T - I| of a (3,3) matrix."""
    err = 0.0
    for i in range(3):
        for j in range(3):
            d = R[i, 0] * R[j, 0] + R[i, 1] * R[j, 1] + R[i, 2] * R[j, 2] - (1.0 if i == j else 0.0)
            err = max(err, abs(d))
    return err


@njit(cache=True)
def nearest_rotation(M):
    """The rotation nearest to M (3,3) in the Frobenius norm (U V^T, det +1): ``rotation.project_to_rotation``
    inside numba."""
    U, _, Vt = np.linalg.svd(M)
    if np.linalg.det(U @ Vt) < 0.0:
        U[:, 2] = -U[:, 2]
    return U @ Vt
