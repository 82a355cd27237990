"""Fundamental-matrix solvers: minimal 7-point and normalised 8-point; ``x2^T F x1 = 0``.

numba cores (callable from other ``@njit`` code):

- ``fundamental_7pt_nb(x1 (>=7,2), x2 (>=7,2)) -> (Fs (3,3,3), n)`` — first 7 rows, Hartley
  normalised; the 2-dim null space (Householder QR) and the real roots (1 or 3) of the cubic
  det(mu F1 + lam F2) = 0. Fs[:n] are rank 2 with unit Frobenius norm.
- ``fundamental_8pt_nb(x1 (N,2), x2 (N,2), w (N,)) -> (F (3,3), ok)`` — weighted normalised
  8-point with rank-2 enforcement (closest rank-2 matrix in the normalised frame).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._inputs import point_pair, weights_of
from ._numeric import (
    binary_cubic_roots,
    det3,
    epipolar_nullvector,
    frobenius_normalise,
    matmul3,
    normalise_points,
    null_space_qr,
    svd,
)


@njit(cache=True)
def _epipolar_row(a, u1, v1, u2, v2):
    a[0] = u2 * u1
    a[1] = u2 * v1
    a[2] = u2
    a[3] = v2 * u1
    a[4] = v2 * v1
    a[5] = v2
    a[6] = u1
    a[7] = v1
    a[8] = 1.0


@njit(cache=True)
def fundamental_7pt_nb(x1, x2):
    Fs = np.zeros((3, 3, 3))
    w = np.ones(7)
    y1, T1 = normalise_points(x1[:7], w)
    y2, T2 = normalise_points(x2[:7], w)
    if T1[2, 2] == 0.0 or T2[2, 2] == 0.0:
        return Fs, 0
    A = np.empty((7, 9))
    for i in range(7):
        _epipolar_row(A[i], y1[i, 0], y1[i, 1], y2[i, 0], y2[i, 1])
    N, ok = null_space_qr(A)
    if not ok:
        return Fs, 0
    F1 = np.empty((3, 3))
    F2 = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            F1[r, c] = N[0, 3 * r + c]
            F2[r, c] = N[1, 3 * r + c]
    # det(mu F1 + lam F2) = a0 mu^3 + a1 mu^2 lam + a2 mu lam^2 + a3 lam^3
    a0 = det3(F1)
    a3 = det3(F2)
    a1 = 0.0
    a2 = 0.0
    for r in range(3):
        r1 = (r + 1) % 3
        r2 = (r + 2) % 3
        for c in range(3):
            c1 = (c + 1) % 3
            c2 = (c + 2) % 3
            cof1 = F1[r1, c1] * F1[r2, c2] - F1[r1, c2] * F1[r2, c1]
            cof2 = F2[r1, c1] * F2[r2, c2] - F2[r1, c2] * F2[r2, c1]
            a1 += cof1 * F2[r, c]
            a2 += cof2 * F1[r, c]
    mus, lams, nr = binary_cubic_roots(a0, a1, a2, a3)
    n = 0
    for k in range(nr):
        Fn = mus[k] * F1 + lams[k] * F2
        F = matmul3(matmul3(T2.T, Fn), T1)
        s = frobenius_normalise(F)
        if s > 0.0 and np.isfinite(s):
            Fs[n] = F
            n += 1
    return Fs, n


@njit(cache=True)
def fundamental_8pt_nb(x1, x2, w):
    F = np.zeros((3, 3))
    n = x1.shape[0]
    npos = 0
    for i in range(n):
        if w[i] > 0.0:
            npos += 1
    if npos < 8:
        return F, False
    y1, T1 = normalise_points(x1, w)
    y2, T2 = normalise_points(x2, w)
    if T1[2, 2] == 0.0 or T2[2, 2] == 0.0:
        return F, False
    P = np.ones((n, 3))
    Q = np.ones((n, 3))
    for i in range(n):
        P[i, 0], P[i, 1] = y1[i, 0], y1[i, 1]
        Q[i, 0], Q[i, 1] = y2[i, 0], y2[i, 1]
    Fn, ok = epipolar_nullvector(P, Q, w)
    if not ok:
        return F, False  # not determined: planar scene, too few distinct points, ...
    U, S, Vt = svd(Fn)
    if not S[1] > 1e-12 * S[0]:
        return F, False
    D = np.zeros((3, 3))
    D[0, 0] = S[0]
    D[1, 1] = S[1]
    F[:, :] = matmul3(matmul3(T2.T, matmul3(matmul3(U, D), Vt)), T1)
    frobenius_normalise(F)
    return F, True


def fundamental_7pt(x1: np.ndarray, x2: np.ndarray) -> list[np.ndarray]:
    """Fundamental matrices (1 or 3, rank 2, unit Frobenius norm) from 7 pixel correspondences
    (7,2) with ``x2^T F x1 = 0``. Returns ``[]`` for degenerate samples (rank-deficient
    constraints, e.g. repeated points)."""
    a, b = point_pair(x1, x2, 2, exact=7)
    Fs, n = fundamental_7pt_nb(a, b)
    return [Fs[k].copy() for k in range(n)]


def fundamental_8pt(x1: np.ndarray, x2: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
    """Least-squares fundamental matrix (normalised 8-point, rank 2 enforced) from N >= 8 pixel
    correspondences; ``weights`` (N,) >= 0 scale each equation. Returns F (unit Frobenius
    norm) or None when the points do not determine F (planar scene, too few distinct points)."""
    a, b = point_pair(x1, x2, 2, minimum=8)
    w = weights_of(weights, len(a))
    F, ok = fundamental_8pt_nb(a, b, w)
    return F if ok else None
