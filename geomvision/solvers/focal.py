"""Focal lengths from a fundamental matrix (zero skew, unit aspect ratio, known principal points).

numba cores (callable from other ``@njit`` code):

- ``focal_from_fundamental_nb(F, pp1 (2,), pp2 (2,)) -> (f1, f2)`` — Bougnoux's closed form
  (Kruppa equations with known principal points); NaN where f^2 <= 0 (imaginary solution).
- ``shared_focal_from_fundamental_nb(F, pp (2,), scale) -> f`` — one focal for both images:
  least squares over the nine trace constraints 2 E E^T E - tr(E E^T) E = 0 of
  E = K^T F K, K = diag(f, f, 1) (principal point moved to the origin), a quartic in
  s = (f / scale)^2 whose minimiser is a root of a cubic; NaN when the cost has no interior
  minimum over s > 0 below its value at s -> 0.

Both are exact on exact data and degenerate (unstable) when the two optical axes intersect,
e.g. cameras fixating the same 3D point (Newsam, Huynh, Brooks, Pan 1996).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array, check_positive
from ..geometry._rotation_kernels import hat_nb
from ._numeric import cubic_roots, frobenius_normalise, matmul3


@njit(cache=True)
def _null_cross(A):
    """Unit vector orthogonal to the rows of a rank-2 matrix (largest cross product of rows)."""
    best = -1.0
    v = np.zeros(3)
    for a in range(3):
        b = (a + 1) % 3
        cx = A[a, 1] * A[b, 2] - A[a, 2] * A[b, 1]
        cy = A[a, 2] * A[b, 0] - A[a, 0] * A[b, 2]
        cz = A[a, 0] * A[b, 1] - A[a, 1] * A[b, 0]
        nn = cx * cx + cy * cy + cz * cz
        if nn > best:
            best = nn
            v[0], v[1], v[2] = cx, cy, cz
    if best > 0.0:
        v /= np.sqrt(best)
    return v


@njit(cache=True)
def _bougnoux_f2(F, p1, p2):
    """f1^2 of image 1 (the image of x1 in x2^T F x1 = 0) by Bougnoux's formula."""
    e2 = _null_cross(F.T.copy())  # F^T e2 = 0: epipole in image 2
    # [e2]_x I~ F with I~ = diag(1, 1, 0)
    IF = F.copy()
    IF[2, :] = 0.0
    A = matmul3(hat_nb(e2), IF)  # [e2]_x I~ F
    p2A = np.zeros(3)
    for j in range(3):
        p2A[j] = p2[0] * A[0, j] + p2[1] * A[1, j] + p2[2] * A[2, j]
    Fp1 = np.zeros(3)
    Ftp2 = np.zeros(3)
    for j in range(3):
        Fp1[j] = F[j, 0] * p1[0] + F[j, 1] * p1[1] + F[j, 2] * p1[2]
        Ftp2[j] = F[0, j] * p2[0] + F[1, j] * p2[1] + F[2, j] * p2[2]
    num = (p2A[0] * p1[0] + p2A[1] * p1[1] + p2A[2] * p1[2]) * (p1[0] * Ftp2[0] + p1[1] * Ftp2[1] + p1[2] * Ftp2[2])
    # denominator p2^T [e2]_x I~ F I~ F^T p2
    den = p2A[0] * Ftp2[0] + p2A[1] * Ftp2[1]
    if den == 0.0:
        return np.nan
    return -num / den


@njit(cache=True)
def focal_from_fundamental_nb(F, pp1, pp2):
    Fn = F.copy()
    frobenius_normalise(Fn)
    p1 = np.array([pp1[0], pp1[1], 1.0])
    p2 = np.array([pp2[0], pp2[1], 1.0])
    a = _bougnoux_f2(Fn, p1, p2)
    b = _bougnoux_f2(Fn.T.copy(), p2, p1)
    f1 = np.sqrt(a) if a > 0.0 else np.nan
    f2 = np.sqrt(b) if b > 0.0 else np.nan
    return f1, f2


@njit(cache=True)
def shared_focal_from_fundamental_nb(F, pp, scale):
    # move the principal point to the origin and scale pixels by 1 / scale:
    # G = T^T F T with T = [[scale, 0, px], [0, scale, py], [0, 0, 1]] (x = T x_n)
    T = np.zeros((3, 3))
    T[0, 0] = scale
    T[1, 1] = scale
    T[0, 2] = pp[0]
    T[1, 2] = pp[1]
    T[2, 2] = 1.0
    G = matmul3(matmul3(T.T.copy(), F), T)
    if not frobenius_normalise(G) > 0.0:
        return np.nan
    # D^2 = s J + Z with J = diag(1, 1, 0), Z = diag(0, 0, 1)
    GJ = G.copy()
    GJ[:, 2] = 0.0
    GZ = np.zeros((3, 3))
    GZ[:, 2] = G[:, 2]
    # A = G D^2 G^T = s A1 + A0
    A1 = matmul3(GJ, G.T.copy())
    A0 = matmul3(GZ, G.T.copy())
    # B = A D^2 G = s^2 A1 J G + s (A1 Z G + A0 J G) + A0 Z G
    JG = G.copy()
    JG[2, :] = 0.0
    ZG = np.zeros((3, 3))
    ZG[2, :] = G[2, :]
    B2 = matmul3(A1, JG)
    B1 = matmul3(A1, ZG) + matmul3(A0, JG)
    B0 = matmul3(A0, ZG)
    # tr(D^2 A) = s^2 tr(J A1) + s (tr(Z A1) + tr(J A0)) + tr(Z A0)
    t2 = A1[0, 0] + A1[1, 1]
    t1 = A1[2, 2] + A0[0, 0] + A0[1, 1]
    t0 = A0[2, 2]
    # residual R(s) = 2 B(s) - tr(s) G = C2 s^2 + C1 s + C0
    C2 = 2.0 * B2 - t2 * G
    C1 = 2.0 * B1 - t1 * G
    C0 = 2.0 * B0 - t0 * G
    g22 = 0.0
    g21 = 0.0
    g11 = 0.0
    g20 = 0.0
    g10 = 0.0
    g00 = 0.0
    for i in range(3):
        for j in range(3):
            g22 += C2[i, j] * C2[i, j]
            g21 += C2[i, j] * C1[i, j]
            g11 += C1[i, j] * C1[i, j]
            g20 += C2[i, j] * C0[i, j]
            g10 += C1[i, j] * C0[i, j]
            g00 += C0[i, j] * C0[i, j]
    # d/ds |R(s)|^2 / 2 = 2 g22 s^3 + 3 g21 s^2 + (g11 + 2 g20) s + g10
    roots, n = cubic_roots(2.0 * g22, 3.0 * g21, g11 + 2.0 * g20, g10)
    # the global minimiser over s > 0 if it is an interior local minimum below the cost at
    # s -> 0+ (otherwise the data prefer f -> 0: no valid focal)
    best = g00
    s_best = np.nan
    for k in range(n):
        s = roots[k]
        if not s > 0.0:
            continue
        curvature = 12.0 * g22 * s * s + 12.0 * g21 * s + 2.0 * (g11 + 2.0 * g20)
        if not curvature > 0.0:
            continue
        cost = g22 * s**4 + 2.0 * g21 * s**3 + (g11 + 2.0 * g20) * s**2 + 2.0 * g10 * s + g00
        if cost < best:
            best = cost
            s_best = s
    if not s_best > 0.0:
        return np.nan
    return scale * np.sqrt(s_best)


def _pp(pp, name):
    return as_array(pp, name, (2,))


def focal_from_fundamental(F: np.ndarray, pp1: np.ndarray, pp2: np.ndarray) -> tuple[float, float]:
    """Focal lengths ``(f1, f2)`` (pixels) of the two images of F (``x2^T F x1 = 0``) by
    Bougnoux's formula, given the principal points pp1, pp2 (2,) and assuming zero skew and
    square pixels. A focal is NaN when its solution is imaginary (f^2 <= 0: noise or a
    degenerate configuration such as intersecting optical axes)."""
    F = as_array(F, "F", (3, 3))
    f1, f2 = focal_from_fundamental_nb(F, _pp(pp1, "pp1"), _pp(pp2, "pp2"))
    return float(f1), float(f2)


def shared_focal_from_fundamental(F: np.ndarray, pp: np.ndarray, *, scale: float | None = None) -> float | None:
    """One focal length (pixels) shared by both images of F, given their common principal
    point pp (2,): least squares over the essential-matrix trace constraints of E = K^T F K.

    ``scale`` (pixels, default ``max(2 |pp|, 1)``, about the image diagonal) conditions the
    problem. Returns None when no positive focal length fits (the least-squares cost has no
    minimum over f > 0 below its limit at f -> 0).
    """
    F = as_array(F, "F", (3, 3))
    p = _pp(pp, "pp")
    c = max(2.0 * float(np.hypot(*p)), 1.0) if scale is None else check_positive(scale, "scale")
    f = shared_focal_from_fundamental_nb(F, p, c)
    return float(f) if np.isfinite(f) else None
