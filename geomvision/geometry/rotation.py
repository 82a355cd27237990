"""Rotations: the so(3) hat map, exp/log, quaternions and random rotations.

Conventions (see ``docs`` / style guide):
- rotations are stored as 3x3 matrices; optimisers work on rotation vectors and update
  ``R <- R @ so3_exp(dw)``;
- quaternions only appear at I/O and are always named by their order, ``quat_wxyz`` (COLMAP,
  Eigen) or ``quat_xyzw`` (scipy, ROS, g2o); returned quaternions have ``w >= 0``;
- every function accepts a single item ((3,), (3,3), (4,)) or a batch ((N,3), (N,3,3), (N,4))
  and returns the matching shape.
"""

from __future__ import annotations

import numpy as np

from .._validation import RngLike, as_rng

_SMALL_ANGLE = 1e-4  # below this, Taylor series are exact to double precision
_NEAR_PI_COS = -0.99  # cos(theta) below this: recover the axis from the symmetric part


def _batch(a, name: str, tail: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    arr = np.asarray(a, dtype=np.float64)
    single = arr.ndim == len(tail)
    if single:
        arr = arr[None]
    if arr.ndim != len(tail) + 1 or arr.shape[1:] != tail:
        shape = "x".join(map(str, tail))
        raise ValueError(f"{name} must have shape ({shape}) or (N, {', '.join(map(str, tail))}), got {np.shape(a)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr, single


def hat(w: np.ndarray) -> np.ndarray:
    """Skew-symmetric matrix [w]_x with ``hat(a) @ b == cross(a, b)``. (3,)->(3,3) or (N,3)->(N,3,3)."""
    w, single = _batch(w, "w", (3,))
    out = np.zeros((len(w), 3, 3))
    out[:, 0, 1], out[:, 0, 2] = -w[:, 2], w[:, 1]
    out[:, 1, 0], out[:, 1, 2] = w[:, 2], -w[:, 0]
    out[:, 2, 0], out[:, 2, 1] = -w[:, 1], w[:, 0]
    return out[0] if single else out


def vee(W: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hat` on the skew part of ``W``: (3,3)->(3,) or (N,3,3)->(N,3)."""
    W, single = _batch(W, "W", (3, 3))
    out = 0.5 * np.stack([W[:, 2, 1] - W[:, 1, 2], W[:, 0, 2] - W[:, 2, 0], W[:, 1, 0] - W[:, 0, 1]], axis=1)
    return out[0] if single else out


def so3_exp(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis * angle in radians), Rodrigues' formula.

    (3,) -> (3,3) or (N,3) -> (N,3,3); exact to double precision for small angles.
    """
    w, single = _batch(rotvec, "rotvec", (3,))
    theta2 = np.einsum("ij,ij->i", w, w)
    theta = np.sqrt(theta2)
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0 + theta2**2 / 120.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0 + theta2**2 / 720.0, (1.0 - np.cos(safe)) / safe**2)
    W = hat(w)
    R = np.eye(3)[None] + a[:, None, None] * W + b[:, None, None] * (W @ W)
    return R[0] if single else R


def so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector of a rotation matrix, with angle in [0, pi].

    (3,3) -> (3,) or (N,3,3) -> (N,3). Accurate near angle 0 (series) and near pi
    (axis taken from the symmetric part of R rather than from the vanishing skew part).
    """
    R, single = _batch(R, "R", (3, 3))
    v = vee(R)  # sin(theta) * axis
    s = np.linalg.norm(v, axis=1)
    c = np.clip(0.5 * (np.trace(R, axis1=1, axis2=2) - 1.0), -1.0, 1.0)
    theta = np.arctan2(s, c)
    out = np.empty((len(R), 3))
    # generic and small angles: w = theta / sin(theta) * v
    regular = c >= _NEAR_PI_COS
    th = theta[regular]
    small = th < _SMALL_ANGLE
    safe = np.where(small, 1.0, th)
    scale = np.where(small, 1.0 + th**2 / 6.0 + 7.0 * th**4 / 360.0, safe / np.sin(safe))
    out[regular] = v[regular] * scale[:, None]
    # near pi: (R + R^T)/2 - cos(theta) I = (1 - cos(theta)) a a^T
    near = ~regular
    if near.any():
        Rn, cn, vn, thn = R[near], c[near], v[near], theta[near]
        S = 0.5 * (Rn + np.transpose(Rn, (0, 2, 1))) - cn[:, None, None] * np.eye(3)[None]
        diag = np.diagonal(S, axis1=1, axis2=2)
        k = np.argmax(diag, axis=1)
        col = S[np.arange(len(k)), :, k]
        axis = col / np.linalg.norm(col, axis=1, keepdims=True)
        sign = np.where(np.einsum("ij,ij->i", axis, vn) < 0, -1.0, 1.0)
        out[near] = axis * (sign * thn)[:, None]
    return out[0] if single else out


def rotation_angle_deg(R: np.ndarray) -> np.ndarray | float:
    """Angle of a rotation in degrees, in [0, 180]: (3,3) -> float, (N,3,3) -> (N,)."""
    ang = np.degrees(np.linalg.norm(so3_log(R), axis=-1))
    return float(ang) if np.ndim(ang) == 0 else ang


def rotation_error_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray | float:
    """Angle in degrees of ``R_a^T R_b`` (the rotation taking one to the other)."""
    Ra = np.asarray(R_a, dtype=np.float64)
    Rb = np.asarray(R_b, dtype=np.float64)
    return rotation_angle_deg(np.swapaxes(Ra, -1, -2) @ Rb)


def is_rotation(R: np.ndarray, atol: float = 1e-6) -> bool:
    """True when every matrix in ``R`` (3,3) or (N,3,3) is orthonormal with det +1 within ``atol``."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape[-2:] != (3, 3) or not np.isfinite(R).all():
        return False
    RtR = np.swapaxes(R, -1, -2) @ R
    if np.abs(RtR - np.eye(3)).max() > atol:
        return False
    return bool(np.abs(np.linalg.det(R) - 1.0).max() <= atol)


def project_to_rotation(M: np.ndarray) -> np.ndarray:
    """Closest rotation matrix (Frobenius norm) to ``M`` via SVD: (3,3) or (N,3,3)."""
    M = np.asarray(M, dtype=np.float64)
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones(M.shape[:-2] + (3,))
    D[..., 2] = d
    return (U * D[..., None, :]) @ Vt


def rotmat_from_quat_wxyz(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix from a (not necessarily unit) quaternion (w, x, y, z): (4,)->(3,3), (N,4)->(N,3,3)."""
    q, single = _batch(quat_wxyz, "quat_wxyz", (4,))
    n = np.linalg.norm(q, axis=1)
    if np.any(n < 1e-12):
        raise ValueError("quat_wxyz has a zero-norm quaternion")
    w, x, y, z = (q / n[:, None]).T
    R = np.empty((len(q), 3, 3))
    R[:, 0, 0] = 1 - 2 * (y * y + z * z)
    R[:, 0, 1] = 2 * (x * y - w * z)
    R[:, 0, 2] = 2 * (x * z + w * y)
    R[:, 1, 0] = 2 * (x * y + w * z)
    R[:, 1, 1] = 1 - 2 * (x * x + z * z)
    R[:, 1, 2] = 2 * (y * z - w * x)
    R[:, 2, 0] = 2 * (x * z - w * y)
    R[:, 2, 1] = 2 * (y * z + w * x)
    R[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return R[0] if single else R


def quat_wxyz_from_rotmat(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation matrix (Shepperd's method)."""
    R, single = _batch(R, "R", (3, 3))
    tr = np.trace(R, axis1=1, axis2=2)
    diag = np.diagonal(R, axis1=1, axis2=2)
    # pick the numerically largest of 4w^2, 4x^2, 4y^2, 4z^2
    cand = np.stack([tr, diag[:, 0], diag[:, 1], diag[:, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(R), 4))
    m = k == 0
    if m.any():
        s = 2.0 * np.sqrt(1.0 + tr[m])
        q[m] = np.stack(
            [0.25 * s, (R[m, 2, 1] - R[m, 1, 2]) / s, (R[m, 0, 2] - R[m, 2, 0]) / s, (R[m, 1, 0] - R[m, 0, 1]) / s],
            axis=1,
        )
    for i in range(3):
        m = k == i + 1
        if not m.any():
            continue
        j, l = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(np.maximum(1.0 + R[m, i, i] - R[m, j, j] - R[m, l, l], 0.0))
        qi = np.empty((int(m.sum()), 4))
        qi[:, 0] = (R[m, l, j] - R[m, j, l]) / s
        qi[:, 1 + i] = 0.25 * s
        qi[:, 1 + j] = (R[m, j, i] + R[m, i, j]) / s
        qi[:, 1 + l] = (R[m, l, i] + R[m, i, l]) / s
        q[m] = qi
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1.0
    return q[0] if single else q


def quat_xyzw_from_wxyz(quat_wxyz: np.ndarray) -> np.ndarray:
    """Reorder (w, x, y, z) -> (x, y, z, w); (4,) or (N,4)."""
    return np.roll(np.asarray(quat_wxyz, dtype=np.float64), -1, axis=-1)


def quat_wxyz_from_xyzw(quat_xyzw: np.ndarray) -> np.ndarray:
    """Reorder (x, y, z, w) -> (w, x, y, z); (4,) or (N,4)."""
    return np.roll(np.asarray(quat_xyzw, dtype=np.float64), 1, axis=-1)


def rotmat_from_quat_xyzw(quat_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix from a quaternion in (x, y, z, w) order (scipy, ROS, g2o)."""
    return rotmat_from_quat_wxyz(quat_wxyz_from_xyzw(quat_xyzw))


def quat_xyzw_from_rotmat(R: np.ndarray) -> np.ndarray:
    """Unit quaternion in (x, y, z, w) order with w >= 0."""
    return quat_xyzw_from_wxyz(quat_wxyz_from_rotmat(R))


def random_rotation(rng: RngLike = None, n: int | None = None) -> np.ndarray:
    """Rotations uniform on SO(3) (Haar measure): (3,3) when ``n`` is None, else (n,3,3)."""
    gen = as_rng(rng)
    q = gen.standard_normal((1 if n is None else n, 4))
    R = rotmat_from_quat_wxyz(q)
    return R[0] if n is None else R
