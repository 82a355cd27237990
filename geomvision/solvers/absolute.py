"""Absolute pose solvers: P3P (Lambda Twist) and EPnP; poses are ``cam_from_world``.

Rays are camera-frame directions of any length (e.g. ``Camera.cam_from_img`` output), so the
solvers work for every camera model; a point X_world is explained when
``cam_from_world.apply(X_world)`` is a positive multiple of its ray.

numba cores (callable from other ``@njit`` code):

- ``p3p_nb(rays (>=3,3), X_world (>=3,3)) -> (Rs (4,3,3), ts (4,3), n)`` — first 3 rows; the
  Lambda Twist construction (Persson & Nordberg, ECCV 2018): the pencil of the two homogeneous
  distance conics is made degenerate by one real root of a cubic, the degenerate conic splits
  into two lines, each line meets a conic in two points, the depths are polished by
  Gauss-Newton and the pose follows from the two triangles. Only solutions with all three
  depths positive are returned (at most 4).
- ``epnp_nb(rays (N,3), X_world (N,3)) -> (R (3,3), t (3,), ok)`` — EPnP (Lepetit, Moreno-Noguer,
  Fua, IJCV 2009) with 4 control points (3 for planar point sets), the linearised beta
  estimates for null-space dimensions 1..3, Gauss-Newton on the betas, and the candidate with
  the smallest angular residual; N >= 4 (N >= 3 points not collinear when planar... see epnp).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array, check_same_length
from ..geometry.rigid import Rigid3
from ._inputs import check_rays
from ._numeric import binary_cubic_roots, det3


@njit(cache=True, inline="always")
def _quad(D, a0, a1, a2, b0, b1, b2):
    """a^T D b for a symmetric 3x3 D."""
    return (
        a0 * (D[0, 0] * b0 + D[0, 1] * b1 + D[0, 2] * b2)
        + a1 * (D[1, 0] * b0 + D[1, 1] * b1 + D[1, 2] * b2)
        + a2 * (D[2, 0] * b0 + D[2, 1] * b1 + D[2, 2] * b2)
    )


@njit(cache=True)
def _cofactor_sym(A):
    C = np.empty((3, 3))
    C[0, 0] = A[1, 1] * A[2, 2] - A[1, 2] * A[2, 1]
    C[0, 1] = A[1, 2] * A[2, 0] - A[1, 0] * A[2, 2]
    C[0, 2] = A[1, 0] * A[2, 1] - A[1, 1] * A[2, 0]
    C[1, 0] = A[2, 1] * A[0, 2] - A[2, 2] * A[0, 1]
    C[1, 1] = A[2, 2] * A[0, 0] - A[2, 0] * A[0, 2]
    C[1, 2] = A[2, 0] * A[0, 1] - A[2, 1] * A[0, 0]
    C[2, 0] = A[0, 1] * A[1, 2] - A[0, 2] * A[1, 1]
    C[2, 1] = A[0, 2] * A[1, 0] - A[0, 0] * A[1, 2]
    C[2, 2] = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
    return C


@njit(cache=True)
def _largest_cross_of_rows(A):
    """Unit vector orthogonal to the two rows of A whose cross product is largest (A rank 2)."""
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
def p3p_nb(rays, X):
    Rs = np.zeros((4, 3, 3))
    ts = np.zeros((4, 3))
    y = np.empty((3, 3))
    for i in range(3):
        nr = np.sqrt(rays[i, 0] ** 2 + rays[i, 1] ** 2 + rays[i, 2] ** 2)
        if not nr > 0.0:
            return Rs, ts, 0
        for k in range(3):
            y[i, k] = rays[i, k] / nr
    b12 = y[0, 0] * y[1, 0] + y[0, 1] * y[1, 1] + y[0, 2] * y[1, 2]
    b13 = y[0, 0] * y[2, 0] + y[0, 1] * y[2, 1] + y[0, 2] * y[2, 2]
    b23 = y[1, 0] * y[2, 0] + y[1, 1] * y[2, 1] + y[1, 2] * y[2, 2]
    d12 = X[0] - X[1]
    d13 = X[0] - X[2]
    a12 = d12[0] ** 2 + d12[1] ** 2 + d12[2] ** 2
    a13 = d13[0] ** 2 + d13[1] ** 2 + d13[2] ** 2
    d23 = X[1] - X[2]
    a23 = d23[0] ** 2 + d23[1] ** 2 + d23[2] ** 2
    # world frame of the triangle; collinear points have no unique pose
    c = np.cross(d12, d13)
    cc = c[0] ** 2 + c[1] ** 2 + c[2] ** 2
    if not cc > 1e-20 * a12 * a13:
        return Rs, ts, 0
    # homogeneous conics D1 = a23 M12 - a12 M23, D2 = a23 M13 - a13 M23 (Lambda^T D Lambda = 0)
    D1 = np.zeros((3, 3))
    D2 = np.zeros((3, 3))
    D1[0, 0] = a23
    D1[0, 1] = D1[1, 0] = -a23 * b12
    D1[1, 1] = a23 - a12
    D1[1, 2] = D1[2, 1] = a12 * b23
    D1[2, 2] = -a12
    D2[0, 0] = a23
    D2[0, 2] = D2[2, 0] = -a23 * b13
    D2[1, 1] = -a13
    D2[1, 2] = D2[2, 1] = a13 * b23
    D2[2, 2] = a23 - a13
    # det(mu D1 + g D2) = c0 mu^3 + c1 mu^2 g + c2 mu g^2 + c3 g^3
    C1 = _cofactor_sym(D1)
    C2 = _cofactor_sym(D2)
    k0 = det3(D1)
    k3 = det3(D2)
    k1 = 0.0
    k2 = 0.0
    for i in range(3):
        for j in range(3):
            k1 += C1[i, j] * D2[i, j]
            k2 += C2[i, j] * D1[i, j]
    mus, gs, nr_ = binary_cubic_roots(k0, k1, k2, k3)
    # choose the root whose degenerate conic is the most clearly indefinite (a real line pair)
    best = 0.0
    D0 = np.zeros((3, 3))
    found = False
    for r in range(nr_):
        mu = mus[r]
        g = gs[r]
        Dt = mu * D1 + g * D2
        fro = 0.0
        for i in range(3):
            for j in range(3):
                fro += Dt[i, j] * Dt[i, j]
        pm = (
            Dt[0, 0] * Dt[1, 1] - Dt[0, 1] * Dt[1, 0]
            + Dt[0, 0] * Dt[2, 2] - Dt[0, 2] * Dt[2, 0]
            + Dt[1, 1] * Dt[2, 2] - Dt[1, 2] * Dt[2, 1]
        )  # sigma1 sigma2 (the third eigenvalue is 0)
        score = -pm / fro if fro > 0.0 else 0.0
        if score > best:
            best = score
            D0[:, :] = Dt
            found = True
    if not found:
        return Rs, ts, 0
    # eigen-structure of D0: eigenvalues s1, s2 (opposite signs) and 0
    e3 = _largest_cross_of_rows(D0)
    tr = D0[0, 0] + D0[1, 1] + D0[2, 2]
    pm = (
        D0[0, 0] * D0[1, 1] - D0[0, 1] * D0[1, 0]
        + D0[0, 0] * D0[2, 2] - D0[0, 2] * D0[2, 0]
        + D0[1, 1] * D0[2, 2] - D0[1, 2] * D0[2, 1]
    )
    disc = np.sqrt(max(tr * tr - 4.0 * pm, 0.0))
    s1 = 0.5 * (tr + disc) if tr >= 0.0 else 0.5 * (tr - disc)  # larger magnitude first
    s2 = pm / s1
    Ds = D0.copy()
    for i in range(3):
        Ds[i, i] -= s1
    e1 = _largest_cross_of_rows(Ds)
    e2 = np.cross(e3, e1)
    ne2 = np.sqrt(e2[0] ** 2 + e2[1] ** 2 + e2[2] ** 2)
    if not ne2 > 0.0:
        return Rs, ts, 0
    e2 /= ne2
    ra = np.sqrt(abs(s1))
    rb = np.sqrt(abs(s2))
    # Sigma = M12 + M13 + M23 is positive definite: it fixes the scale of Lambda
    S = np.empty((3, 3))
    S[0, 0] = S[1, 1] = S[2, 2] = 2.0
    S[0, 1] = S[1, 0] = -b12
    S[0, 2] = S[2, 0] = -b13
    S[1, 2] = S[2, 1] = -b23
    asum = a12 + a13 + a23
    # inverse of the world triangle frame A = [d12, d13, d12 x d13] (columns)
    A = np.empty((3, 3))
    for k in range(3):
        A[k, 0] = d12[k]
        A[k, 1] = d13[k]
        A[k, 2] = c[k]
    detA = det3(A)
    Ainv = _cofactor_sym(A).T / detA
    n = 0
    nD1 = 0.0
    nD2 = 0.0
    for i in range(3):
        for j in range(3):
            nD1 += D1[i, j] * D1[i, j]
            nD2 += D2[i, j] * D2[i, j]
    nD1 = np.sqrt(nD1)
    nD2 = np.sqrt(nD2)
    for sgn in (-1.0, 1.0):
        # the line n . Lambda = 0 with n = sqrt|s1| e1 + sgn sqrt|s2| e2
        nv = ra * e1 + sgn * rb * e2
        # orthonormal basis (u, v) of the plane n . Lambda = 0
        ax = 0
        if abs(nv[1]) < abs(nv[ax]):
            ax = 1
        if abs(nv[2]) < abs(nv[ax]):
            ax = 2
        ek = np.zeros(3)
        ek[ax] = 1.0
        u = np.cross(nv, ek)
        u /= np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        v = np.cross(nv, u)
        v /= np.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
        # restrict the better-conditioned conic to the line: k11 al^2 + 2 k12 al be + k22 be^2 = 0
        q11 = _quad(D1, u[0], u[1], u[2], u[0], u[1], u[2])
        q12 = _quad(D1, u[0], u[1], u[2], v[0], v[1], v[2])
        q22 = _quad(D1, v[0], v[1], v[2], v[0], v[1], v[2])
        r11 = _quad(D2, u[0], u[1], u[2], u[0], u[1], u[2])
        r12 = _quad(D2, u[0], u[1], u[2], v[0], v[1], v[2])
        r22 = _quad(D2, v[0], v[1], v[2], v[0], v[1], v[2])
        m1 = np.sqrt(q11 * q11 + 2.0 * q12 * q12 + q22 * q22) / nD1
        m2 = np.sqrt(r11 * r11 + 2.0 * r12 * r12 + r22 * r22) / nD2
        if m2 > m1:
            q11, q12, q22 = r11, r12, r22
        th = 0.5 * np.arctan2(2.0 * q12, q11 - q22)
        cth = np.cos(th)
        sth = np.sin(th)
        kap1 = q11 * cth * cth + 2.0 * q12 * sth * cth + q22 * sth * sth
        kap2 = q11 + q22 - kap1
        if kap1 * kap2 > 0.0:
            continue  # the line misses the conic: no real solution on it
        w1 = np.sqrt(abs(kap2))
        w2 = np.sqrt(abs(kap1))
        for sg2 in (-1.0, 1.0):
            # z = w1 f1 + sg2 w2 f2 with f1 = (c, s), f2 = (-s, c)
            al = w1 * cth - sg2 * w2 * sth
            be = w1 * sth + sg2 * w2 * cth
            d = al * u + be * v
            dSd = _quad(S, d[0], d[1], d[2], d[0], d[1], d[2])
            if not dSd > 0.0:
                continue
            k = np.sqrt(asum / dSd)
            if d[0] + d[1] + d[2] < 0.0:
                k = -k
            l1 = k * d[0]
            l2 = k * d[1]
            l3 = k * d[2]
            if not (l1 > 0.0 and l2 > 0.0 and l3 > 0.0):
                continue
            # Gauss-Newton on the three distance equations
            for _ in range(5):
                f1 = l1 * l1 + l2 * l2 - 2.0 * b12 * l1 * l2 - a12
                f2 = l1 * l1 + l3 * l3 - 2.0 * b13 * l1 * l3 - a13
                f3 = l2 * l2 + l3 * l3 - 2.0 * b23 * l2 * l3 - a23
                if abs(f1) + abs(f2) + abs(f3) <= 1e-15 * asum:
                    break
                j11 = 2.0 * (l1 - b12 * l2)
                j12 = 2.0 * (l2 - b12 * l1)
                j21 = 2.0 * (l1 - b13 * l3)
                j23 = 2.0 * (l3 - b13 * l1)
                j32 = 2.0 * (l2 - b23 * l3)
                j33 = 2.0 * (l3 - b23 * l2)
                # J = [[j11, j12, 0], [j21, 0, j23], [0, j32, j33]]
                dj = j11 * (-j23 * j32) - j12 * (j21 * j33)
                if dj == 0.0 or not np.isfinite(dj):
                    break
                # Cramer's rule for J delta = f
                x1 = (f1 * (-j23 * j32) - j12 * (f2 * j33 - j23 * f3)) / dj
                x2 = (j11 * (f2 * j33 - j23 * f3) - f1 * (j21 * j33)) / dj
                x3 = (-j11 * j32 * f2 - j12 * j21 * f3 + f1 * j21 * j32) / dj
                l1 -= x1
                l2 -= x2
                l3 -= x3
            if not (l1 > 0.0 and l2 > 0.0 and l3 > 0.0):
                continue
            # camera-frame triangle B = [l1 y1 - l2 y2, l1 y1 - l3 y3, cross] ; R = B A^-1
            p1 = l1 * y[0]
            g12 = p1 - l2 * y[1]
            g13 = p1 - l3 * y[2]
            gc = np.cross(g12, g13)
            B = np.empty((3, 3))
            for kk in range(3):
                B[kk, 0] = g12[kk]
                B[kk, 1] = g13[kk]
                B[kk, 2] = gc[kk]
            R = B @ Ainv
            if not np.isfinite(R[0, 0]):
                continue
            Rs[n] = R
            for kk in range(3):
                ts[n, kk] = p1[kk] - (R[kk, 0] * X[0, 0] + R[kk, 1] * X[0, 1] + R[kk, 2] * X[0, 2])
            n += 1
    return Rs, ts, n


def _rays_points(rays, X_world, *, exact=None, minimum=None):
    r = as_array(rays, "rays", (exact, 3))
    X = as_array(X_world, "X_world", (exact, 3))
    check_same_length(rays=r, X_world=X)
    if minimum is not None and len(r) < minimum:
        raise ValueError(f"rays: need at least {minimum} 2D-3D correspondences, got {len(r)}")
    check_rays(r, "rays")
    return r, X


def p3p(rays: np.ndarray, X_world: np.ndarray) -> list[Rigid3]:
    """Camera poses ``cam_from_world`` (0..4) from 3 ray / world-point correspondences (3,3).

    Every returned pose maps each X_world to a positive multiple of its ray. Returns ``[]`` for
    collinear world points or when no real solution has positive depths.
    """
    r, X = _rays_points(rays, X_world, exact=3)
    Rs, ts, n = p3p_nb(r, X)
    return [Rigid3(Rs[k], ts[k], check=False) for k in range(n)]
