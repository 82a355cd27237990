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
  estimates for null-space dimensions 1..3, Gauss-Newton on the betas, the candidate with
  the smallest angular residual (with 4-5 points the P3P solutions of the first three points
  compete), then a few Gauss-Newton steps on the pose (tangent-plane ray errors);
  N >= 4 non-collinear points.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array, check_same_length
from ..geometry.rigid import Rigid3
from ._inputs import check_rays
from ._numeric import binary_cubic_roots, det3, matmul3, solve_linear


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
            R = matmul3(B, Ainv)
            if not np.isfinite(R[0, 0]):
                continue
            Rs[n] = R
            for kk in range(3):
                ts[n, kk] = p1[kk] - (R[kk, 0] * X[0, 0] + R[kk, 1] * X[0, 1] + R[kk, 2] * X[0, 2])
            n += 1
    return Rs, ts, n


# --- EPnP ---------------------------------------------------------------------------------------
@njit(cache=True)
def _kabsch(A, B, w_ok):
    """R, t minimising sum |R A_i + t - B_i|^2 over rows with w_ok[i]; returns (R, t, ok)."""
    n = A.shape[0]
    ca = np.zeros(3)
    cb = np.zeros(3)
    m = 0
    for i in range(n):
        if w_ok[i]:
            m += 1
            for k in range(3):
                ca[k] += A[i, k]
                cb[k] += B[i, k]
    if m < 3:
        return np.eye(3), np.zeros(3), False
    ca /= m
    cb /= m
    H = np.zeros((3, 3))
    for i in range(n):
        if w_ok[i]:
            for r in range(3):
                ar = A[i, r] - ca[r]
                for c in range(3):
                    H[r, c] += ar * (B[i, c] - cb[c])
    U, S, Vt = np.linalg.svd(H)
    if not S[1] > 1e-12 * S[0]:
        return np.eye(3), np.zeros(3), False
    V = Vt.T.copy()
    Ut = U.T.copy()
    D = np.eye(3)
    if det3(matmul3(V, Ut)) < 0.0:
        D[2, 2] = -1.0
    R = matmul3(matmul3(V, D), Ut)
    t = np.empty(3)
    for k in range(3):
        t[k] = cb[k] - (R[k, 0] * ca[0] + R[k, 1] * ca[1] + R[k, 2] * ca[2])
    return R, t, True


@njit(cache=True)
def _epnp_pose(alphas, X, y, V, betas, K, nb):
    """Pose from betas: camera control points sum_k beta_k v_k, points by barycentric
    combination, sign by cheirality, then the rigid alignment. Returns (R, t, ok, cost)."""
    n = X.shape[0]
    C = np.zeros((K, 3))
    for j in range(K):
        for k in range(nb):
            for d in range(3):
                C[j, d] += betas[k] * V[3 * j + d, k]
    Xc = np.zeros((n, 3))
    front = 0.0
    for i in range(n):
        for j in range(K):
            for d in range(3):
                Xc[i, d] += alphas[i, j] * C[j, d]
        front += Xc[i, 0] * y[i, 0] + Xc[i, 1] * y[i, 1] + Xc[i, 2] * y[i, 2]
    if front < 0.0:
        Xc = -Xc
    ok_rows = np.ones(n, dtype=np.bool_)
    R, t, ok = _kabsch(X, Xc, ok_rows)
    if not ok:
        return R, t, False, np.inf
    return R, t, True, _angular_cost(R, t, X, y)


@njit(cache=True)
def _angular_cost(R, t, X, y):
    """sum_i |unit(R X_i + t) - y_i|^2 for unit rays y."""
    n = X.shape[0]
    cost = 0.0
    for i in range(n):
        p0 = R[0, 0] * X[i, 0] + R[0, 1] * X[i, 1] + R[0, 2] * X[i, 2] + t[0]
        p1 = R[1, 0] * X[i, 0] + R[1, 1] * X[i, 1] + R[1, 2] * X[i, 2] + t[1]
        p2 = R[2, 0] * X[i, 0] + R[2, 1] * X[i, 1] + R[2, 2] * X[i, 2] + t[2]
        npn = np.sqrt(p0 * p0 + p1 * p1 + p2 * p2)
        if npn == 0.0:
            cost += 4.0
            continue
        dx = p0 / npn - y[i, 0]
        dy = p1 / npn - y[i, 1]
        dz = p2 / npn - y[i, 2]
        cost += dx * dx + dy * dy + dz * dz
    return cost


@njit(cache=True)
def _betas_gauss_newton(L, rho, betas, nb):
    """Gauss-Newton on sum_p (L_p . b(beta) - rho_p)^2 with b the products beta_k beta_l (k <= l)
    in the order 11, 12, 22, 13, 23, 33, 14, 24, 34, 44."""
    npairs = L.shape[0]
    for _ in range(10):
        JtJ = np.zeros((nb, nb))
        Jtr = np.zeros(nb)
        cost = 0.0
        for p in range(npairs):
            r = -rho[p]
            J = np.zeros(nb)
            m = 0
            for l in range(nb):
                for k in range(l + 1):
                    r += L[p, m] * betas[k] * betas[l]
                    J[k] += L[p, m] * betas[l]
                    J[l] += L[p, m] * betas[k]
                    m += 1
            cost += r * r
            for a in range(nb):
                Jtr[a] += J[a] * r
                for b in range(nb):
                    JtJ[a, b] += J[a] * J[b]
        for a in range(nb):
            JtJ[a, a] *= 1.0 + 1e-12
        d, ok = solve_linear(JtJ, Jtr)
        if not ok:
            break
        dn = 0.0
        bn = 0.0
        for a in range(nb):
            betas[a] -= d[a]
            dn += d[a] * d[a]
            bn += betas[a] * betas[a]
        if dn <= 1e-24 * bn:
            break
    return betas


@njit(cache=True)
def epnp_nb(rays, X):
    n = X.shape[0]
    R_best = np.eye(3)
    t_best = np.zeros(3)
    if n < 4:
        return R_best, t_best, False
    y = np.empty((n, 3))
    for i in range(n):
        nr = np.sqrt(rays[i, 0] ** 2 + rays[i, 1] ** 2 + rays[i, 2] ** 2)
        for k in range(3):
            y[i, k] = rays[i, k] / nr
    # control points: centroid + principal directions scaled by their standard deviations
    c0 = np.zeros(3)
    for i in range(n):
        for k in range(3):
            c0[k] += X[i, k]
    c0 /= n
    Cov = np.zeros((3, 3))
    for i in range(n):
        for a in range(3):
            for b in range(3):
                Cov[a, b] += (X[i, a] - c0[a]) * (X[i, b] - c0[b])
    ev, evec = np.linalg.eigh(Cov / n)
    if not ev[1] > 1e-10 * ev[2]:
        return R_best, t_best, False  # collinear (or coincident) points
    planar = not ev[0] > 1e-8 * ev[2]
    K = 3 if planar else 4
    first = 1 if planar else 0  # principal axes used (largest ones)
    ctrl = np.zeros((K, 3))
    ctrl[0] = c0
    axes = np.zeros((K - 1, 3))
    sd = np.zeros(K - 1)
    for j in range(K - 1):
        e = first + j
        sd[j] = np.sqrt(ev[e])
        for k in range(3):
            axes[j, k] = evec[k, e]
            ctrl[j + 1, k] = c0[k] + sd[j] * evec[k, e]
    alphas = np.empty((n, K))
    for i in range(n):
        s = 0.0
        for j in range(K - 1):
            a = ((X[i, 0] - c0[0]) * axes[j, 0] + (X[i, 1] - c0[1]) * axes[j, 1] + (X[i, 2] - c0[2]) * axes[j, 2]) / sd[j]
            alphas[i, j + 1] = a
            s += a
        alphas[i, 0] = 1.0 - s
    # M^T M = sum_i (alpha_i alpha_i^T) kron (I - y_i y_i^T)
    dim = 3 * K
    MtM = np.zeros((dim, dim))
    for i in range(n):
        P = np.empty((3, 3))
        for a in range(3):
            for b in range(3):
                P[a, b] = (1.0 if a == b else 0.0) - y[i, a] * y[i, b]
        for j in range(K):
            aj = alphas[i, j]
            for k in range(K):
                ajk = aj * alphas[i, k]
                for a in range(3):
                    for b in range(3):
                        MtM[3 * j + a, 3 * k + b] += ajk * P[a, b]
    evm, V = np.linalg.eigh(MtM)
    nb = 4 if K == 4 else 3
    # distance constraints between control points
    npairs = K * (K - 1) // 2
    nprod = nb * (nb + 1) // 2
    L = np.zeros((npairs, nprod))
    rho = np.zeros(npairs)
    p = 0
    for a in range(K):
        for b in range(a + 1, K):
            dv = np.empty((nb, 3))
            for k in range(nb):
                for d in range(3):
                    dv[k, d] = V[3 * a + d, k] - V[3 * b + d, k]
            m = 0
            for l in range(nb):
                for k in range(l + 1):
                    dot = dv[k, 0] * dv[l, 0] + dv[k, 1] * dv[l, 1] + dv[k, 2] * dv[l, 2]
                    L[p, m] = dot if k == l else 2.0 * dot
                    m += 1
            rho[p] = (ctrl[a, 0] - ctrl[b, 0]) ** 2 + (ctrl[a, 1] - ctrl[b, 1]) ** 2 + (ctrl[a, 2] - ctrl[b, 2]) ** 2
            p += 1
    best_cost = np.inf
    found = False
    # product index of (k, l), k <= l: l (l + 1) / 2 + k
    for approx in range(3):
        if approx == 0:
            cols = np.array([0, 1, 3, 6]) if nb == 4 else np.array([0, 1, 3])  # b11, b12, b13 (, b14)
        elif approx == 1:
            cols = np.array([0, 1, 2])  # b11, b12, b22
        else:
            if nb < 4:
                break
            cols = np.array([0, 1, 2, 3, 4])  # b11, b12, b22, b13, b23
        nc = cols.shape[0]
        if nc > npairs:
            continue
        A = np.empty((npairs, nc))
        for r in range(npairs):
            for c in range(nc):
                A[r, c] = L[r, cols[c]]
        sol, ok = solve_linear(A.T @ A, A.T @ rho)
        if not ok:
            continue
        betas = np.zeros(nb)
        if approx == 0:
            if sol[0] < 0.0:
                sol = -sol
            b1 = np.sqrt(sol[0])
            if not b1 > 0.0:
                continue
            betas[0] = b1
            for k in range(1, nc):
                betas[k] = sol[k] / b1
        else:
            s = -1.0 if sol[0] < 0.0 else 1.0
            b1 = np.sqrt(max(s * sol[0], 0.0))
            b2 = np.sqrt(max(s * sol[2], 0.0))
            if s * sol[1] < 0.0:
                b1 = -b1
            betas[0] = b1
            betas[1] = b2
            if approx == 2 and b1 != 0.0:
                betas[2] = s * sol[3] / b1
        betas = _betas_gauss_newton(L, rho, betas, nb)
        R, t, ok, cost = _epnp_pose(alphas, X, y, V, betas, K, nb)
        if ok and cost < best_cost:
            best_cost = cost
            R_best = R
            t_best = t
            found = True
    if n <= 5 and not planar:
        # with 4-5 points the null space is 4-dimensional and the beta approximations can all
        # miss: also try the P3P solutions of the first three points, scored on every point
        Rs, ts, ns = p3p_nb(y, X)
        for k in range(ns):
            cost = _angular_cost(Rs[k], ts[k], X, y)
            if cost < best_cost:
                best_cost = cost
                R_best = Rs[k].copy()
                t_best = ts[k].copy()
                found = True
    if found:
        R_best, t_best = _polish_pose(R_best, t_best, X, y)
    return R_best, t_best, found


@njit(cache=True)
def _tangent_cost(R, t, X, y):
    """sum_i |(I - y y^T) X_c / (y . X_c)|^2 (tangent-plane error of each unit ray); inf when a
    point is not in front of its ray."""
    cost = 0.0
    for i in range(X.shape[0]):
        c0 = R[0, 0] * X[i, 0] + R[0, 1] * X[i, 1] + R[0, 2] * X[i, 2] + t[0]
        c1 = R[1, 0] * X[i, 0] + R[1, 1] * X[i, 1] + R[1, 2] * X[i, 2] + t[1]
        c2 = R[2, 0] * X[i, 0] + R[2, 1] * X[i, 1] + R[2, 2] * X[i, 2] + t[2]
        d = c0 * y[i, 0] + c1 * y[i, 1] + c2 * y[i, 2]
        if not d > 0.0:
            return np.inf
        e0 = c0 / d - y[i, 0]
        e1 = c1 / d - y[i, 1]
        e2 = c2 / d - y[i, 2]
        cost += e0 * e0 + e1 * e1 + e2 * e2
    return cost


@njit(cache=True)
def _polish_pose(R, t, X, y):
    """A few Gauss-Newton steps on the tangent-plane ray errors (R <- R Exp(dw), t <- t + dt);
    a step is kept only when it lowers the cost."""
    cost = _tangent_cost(R, t, X, y)
    for _ in range(5):
        if not cost > 1e-30:
            break
        JtJ = np.zeros((6, 6))
        Jtr = np.zeros(6)
        J = np.empty((3, 6))
        for i in range(X.shape[0]):
            # X_c = R X + t; d X_c / d dw = -R [X]_x, d X_c / d t = I
            c = np.empty(3)
            for k in range(3):
                c[k] = R[k, 0] * X[i, 0] + R[k, 1] * X[i, 1] + R[k, 2] * X[i, 2] + t[k]
            d = c[0] * y[i, 0] + c[1] * y[i, 1] + c[2] * y[i, 2]
            e = np.empty(3)
            for k in range(3):
                e[k] = c[k] / d
            # d (c / d) / d c = (I - (c / d) y^T) / d
            G = np.empty((3, 3))
            for a in range(3):
                for b in range(3):
                    G[a, b] = ((1.0 if a == b else 0.0) - e[a] * y[i, b]) / d
            RX = np.empty((3, 3))  # -R [X]_x
            x0, x1, x2 = X[i, 0], X[i, 1], X[i, 2]
            for a in range(3):
                RX[a, 0] = -(R[a, 1] * x2 - R[a, 2] * x1)
                RX[a, 1] = -(R[a, 2] * x0 - R[a, 0] * x2)
                RX[a, 2] = -(R[a, 0] * x1 - R[a, 1] * x0)
            for a in range(3):
                for b in range(3):
                    J[a, b] = G[a, 0] * RX[0, b] + G[a, 1] * RX[1, b] + G[a, 2] * RX[2, b]
                    J[a, 3 + b] = G[a, b]
            for a in range(3):
                r = e[a] - y[i, a]
                for u in range(6):
                    Jtr[u] += J[a, u] * r
                    for v in range(6):
                        JtJ[u, v] += J[a, u] * J[a, v]
        dlt, ok = solve_linear(JtJ, Jtr)
        if not ok:
            break
        w = np.empty(3)
        for k in range(3):
            w[k] = -dlt[k]
        Rn = matmul3(R, _exp_so3(w))
        tn = t - dlt[3:]
        cn = _tangent_cost(Rn, tn, X, y)
        if not cn < cost:
            break
        R, t, cost = Rn, tn, cn
    return R, t


@njit(cache=True)
def _exp_so3(w):
    th2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2]
    th = np.sqrt(th2)
    if th < 1e-4:
        a = 1.0 - th2 / 6.0
        b = 0.5 - th2 / 24.0
    else:
        a = np.sin(th) / th
        b = (1.0 - np.cos(th)) / th2
    W = np.zeros((3, 3))
    W[0, 1] = -w[2]
    W[0, 2] = w[1]
    W[1, 0] = w[2]
    W[1, 2] = -w[0]
    W[2, 0] = -w[1]
    W[2, 1] = w[0]
    W2 = matmul3(W, W)
    R = np.eye(3)
    for i in range(3):
        for j in range(3):
            R[i, j] += a * W[i, j] + b * W2[i, j]
    return R


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


def epnp(rays: np.ndarray, X_world: np.ndarray) -> Rigid3 | None:
    """Camera pose ``cam_from_world`` from N >= 4 ray / world-point correspondences (EPnP with
    Gauss-Newton refinement of the betas; planar point sets use 3 control points).

    Returns None when the world points are collinear or the configuration has no solution.
    """
    r, X = _rays_points(rays, X_world, minimum=4)
    R, t, ok = epnp_nb(r, X)
    return Rigid3(R, t, check=False) if ok else None
