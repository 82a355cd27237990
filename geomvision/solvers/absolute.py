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

Points on a plane: :func:`planar_pose_ippe` gives both poses of the plane's two-fold ambiguity
(IPPE, Collins & Bartoli, IJCV 2014), for the caller to refine and compare.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array, check_same_length
from ..geometry._rotation_kernels import nearest_rotation, orthonormality_error, so3_exp
from ..geometry.rigid import Rigid3
from ._inputs import check_rays
from ._numeric import binary_cubic_roots, det3, eigh, matmul3, solve_linear, svd
from .homography import homography_dlt_nb


@njit(cache=True)
def _qform(d00, d01, d02, d11, d12, d22, a0, a1, a2, b0, b1, b2):
    """a^T D b for the symmetric 3x3 D given by its upper triangle."""
    return (
        a0 * (d00 * b0 + d01 * b1 + d02 * b2)
        + a1 * (d01 * b0 + d11 * b1 + d12 * b2)
        + a2 * (d02 * b0 + d12 * b1 + d22 * b2)
    )


@njit(cache=True)
def _null_sym(d00, d01, d02, d11, d12, d22):
    """Unit null vector of a rank-2 symmetric matrix: the largest cross product of two rows."""
    # rows r0 = (d00, d01, d02), r1 = (d01, d11, d12), r2 = (d02, d12, d22)
    x0 = d01 * d12 - d02 * d11
    y0 = d02 * d01 - d00 * d12
    z0 = d00 * d11 - d01 * d01  # r0 x r1
    x1 = d11 * d22 - d12 * d12
    y1 = d12 * d02 - d01 * d22
    z1 = d01 * d12 - d11 * d02  # r1 x r2
    x2 = d12 * d02 - d22 * d01
    y2 = d22 * d00 - d02 * d02
    z2 = d02 * d01 - d12 * d00  # r2 x r0
    n0 = x0 * x0 + y0 * y0 + z0 * z0
    n1 = x1 * x1 + y1 * y1 + z1 * z1
    n2 = x2 * x2 + y2 * y2 + z2 * z2
    if n0 >= n1 and n0 >= n2:
        s = 1.0 / np.sqrt(n0) if n0 > 0.0 else 0.0
        return x0 * s, y0 * s, z0 * s
    if n1 >= n2:
        s = 1.0 / np.sqrt(n1)
        return x1 * s, y1 * s, z1 * s
    s = 1.0 / np.sqrt(n2)
    return x2 * s, y2 * s, z2 * s


@njit(cache=True)
def _det_sym(d00, d01, d02, d11, d12, d22):
    return d00 * (d11 * d22 - d12 * d12) - d01 * (d01 * d22 - d12 * d02) + d02 * (d01 * d12 - d11 * d02)


@njit(cache=True)
def _cof_dot(p00, p01, p02, p11, p12, p22, q00, q01, q02, q11, q12, q22):
    """sum_ij cof(P)_ij Q_ij for symmetric P, Q (the mixed term of det(P + g Q))."""
    c00 = p11 * p22 - p12 * p12
    c11 = p00 * p22 - p02 * p02
    c22 = p00 * p11 - p01 * p01
    c01 = p02 * p12 - p01 * p22
    c02 = p01 * p12 - p02 * p11
    c12 = p01 * p02 - p00 * p12
    return c00 * q00 + c11 * q11 + c22 * q22 + 2.0 * (c01 * q01 + c02 * q02 + c12 * q12)


P3P_MAX_ORTHO_ERROR = 1e-12  # max |R R^T - I| of a P3P rotation before it is projected onto SO(3)


@njit(cache=True)
def p3p_nb(rays, X):
    Rs = np.zeros((4, 3, 3))
    ts = np.zeros((4, 3))
    # unit rays
    n1 = np.sqrt(rays[0, 0] ** 2 + rays[0, 1] ** 2 + rays[0, 2] ** 2)
    n2 = np.sqrt(rays[1, 0] ** 2 + rays[1, 1] ** 2 + rays[1, 2] ** 2)
    n3 = np.sqrt(rays[2, 0] ** 2 + rays[2, 1] ** 2 + rays[2, 2] ** 2)
    if not (n1 > 0.0 and n2 > 0.0 and n3 > 0.0):
        return Rs, ts, 0
    y1x, y1y, y1z = rays[0, 0] / n1, rays[0, 1] / n1, rays[0, 2] / n1
    y2x, y2y, y2z = rays[1, 0] / n2, rays[1, 1] / n2, rays[1, 2] / n2
    y3x, y3y, y3z = rays[2, 0] / n3, rays[2, 1] / n3, rays[2, 2] / n3
    b12 = y1x * y2x + y1y * y2y + y1z * y2z
    b13 = y1x * y3x + y1y * y3y + y1z * y3z
    b23 = y2x * y3x + y2y * y3y + y2z * y3z
    # world triangle
    ux, uy, uz = X[0, 0] - X[1, 0], X[0, 1] - X[1, 1], X[0, 2] - X[1, 2]  # d12
    vx, vy, vz = X[0, 0] - X[2, 0], X[0, 1] - X[2, 1], X[0, 2] - X[2, 2]  # d13
    a12 = ux * ux + uy * uy + uz * uz
    a13 = vx * vx + vy * vy + vz * vz
    a23 = (X[1, 0] - X[2, 0]) ** 2 + (X[1, 1] - X[2, 1]) ** 2 + (X[1, 2] - X[2, 2]) ** 2
    cx = uy * vz - uz * vy
    cy = uz * vx - ux * vz
    cz = ux * vy - uy * vx
    cc = cx * cx + cy * cy + cz * cz
    if not cc > 1e-20 * a12 * a13:
        return Rs, ts, 0  # collinear or coincident world points: no unique pose
    # homogeneous conics D1 = a23 M12 - a12 M23, D2 = a23 M13 - a13 M23 (Lambda^T D Lambda = 0)
    p00, p01, p02, p11, p12, p22 = a23, -a23 * b12, 0.0, a23 - a12, a12 * b23, -a12
    q00, q01, q02, q11, q12, q22 = a23, 0.0, -a23 * b13, -a13, a13 * b23, a23 - a13
    # det(mu D1 + g D2) = k0 mu^3 + k1 mu^2 g + k2 mu g^2 + k3 g^3
    k0 = _det_sym(p00, p01, p02, p11, p12, p22)
    k3 = _det_sym(q00, q01, q02, q11, q12, q22)
    k1 = _cof_dot(p00, p01, p02, p11, p12, p22, q00, q01, q02, q11, q12, q22)
    k2 = _cof_dot(q00, q01, q02, q11, q12, q22, p00, p01, p02, p11, p12, p22)
    mus, gs, nroots = binary_cubic_roots(k0, k1, k2, k3)
    # the degenerate conic that is most clearly indefinite (a real pair of lines)
    best = 0.0
    d00 = d01 = d02 = d11 = d12 = d22 = 0.0
    for r in range(nroots):
        mu = mus[r]
        g = gs[r]
        e00 = mu * p00 + g * q00
        e01 = mu * p01 + g * q01
        e02 = mu * p02 + g * q02
        e11 = mu * p11 + g * q11
        e12 = mu * p12 + g * q12
        e22 = mu * p22 + g * q22
        fro = e00 * e00 + e11 * e11 + e22 * e22 + 2.0 * (e01 * e01 + e02 * e02 + e12 * e12)
        pm = e00 * e11 - e01 * e01 + e00 * e22 - e02 * e02 + e11 * e22 - e12 * e12  # s1 s2
        if fro > 0.0 and -pm / fro > best:
            best = -pm / fro
            d00, d01, d02, d11, d12, d22 = e00, e01, e02, e11, e12, e22
    if not best > 0.0:
        return Rs, ts, 0
    # eigenvalues s1, s2 (opposite signs; the third is 0) and their eigenvectors
    tr = d00 + d11 + d22
    pm = d00 * d11 - d01 * d01 + d00 * d22 - d02 * d02 + d11 * d22 - d12 * d12
    disc = np.sqrt(max(tr * tr - 4.0 * pm, 0.0))
    s1 = 0.5 * (tr + disc) if tr >= 0.0 else 0.5 * (tr - disc)  # the larger magnitude first
    s2 = pm / s1
    e1x, e1y, e1z = _null_sym(d00 - s1, d01, d02, d11 - s1, d12, d22 - s1)
    e2x, e2y, e2z = _null_sym(d00 - s2, d01, d02, d11 - s2, d12, d22 - s2)
    ra = np.sqrt(abs(s1))
    rb = np.sqrt(abs(s2))
    asum = a12 + a13 + a23
    fp = np.sqrt(p00 * p00 + p11 * p11 + p22 * p22 + 2.0 * (p01 * p01 + p12 * p12))
    fq = np.sqrt(q00 * q00 + q11 * q11 + q22 * q22 + 2.0 * (q02 * q02 + q12 * q12))
    # rows of A^-1 for A = [d12, d13, c] (columns): (d13 x c, c x d12, d12 x d13) / |c|^2
    ic = 1.0 / cc
    i00, i01, i02 = (vy * cz - vz * cy) * ic, (vz * cx - vx * cz) * ic, (vx * cy - vy * cx) * ic
    i10, i11, i12 = (cy * uz - cz * uy) * ic, (cz * ux - cx * uz) * ic, (cx * uy - cy * ux) * ic
    i20, i21, i22 = cx * ic, cy * ic, cz * ic
    n = 0
    for line in range(2):
        sgn = 1.0 if line == 0 else -1.0
        # the line n . Lambda = 0 with n = sqrt|s1| e1 + sgn sqrt|s2| e2
        nx = ra * e1x + sgn * rb * e2x
        ny = ra * e1y + sgn * rb * e2y
        nz = ra * e1z + sgn * rb * e2z
        # orthonormal basis (u, v) of that plane: u = n x e_k for the axis least aligned with n
        if abs(nx) <= abs(ny) and abs(nx) <= abs(nz):
            bx, by, bz = 0.0, nz, -ny
        elif abs(ny) <= abs(nz):
            bx, by, bz = -nz, 0.0, nx
        else:
            bx, by, bz = ny, -nx, 0.0
        sb = 1.0 / np.sqrt(bx * bx + by * by + bz * bz)
        bx *= sb
        by *= sb
        bz *= sb
        wx = ny * bz - nz * by
        wy = nz * bx - nx * bz
        wz = nx * by - ny * bx
        sw = 1.0 / np.sqrt(wx * wx + wy * wy + wz * wz)
        wx *= sw
        wy *= sw
        wz *= sw
        # restrict the better-conditioned conic to the line: k11 al^2 + 2 k12 al be + k22 be^2
        h11 = _qform(p00, p01, p02, p11, p12, p22, bx, by, bz, bx, by, bz)
        h12 = _qform(p00, p01, p02, p11, p12, p22, bx, by, bz, wx, wy, wz)
        h22 = _qform(p00, p01, p02, p11, p12, p22, wx, wy, wz, wx, wy, wz)
        g11 = _qform(q00, q01, q02, q11, q12, q22, bx, by, bz, bx, by, bz)
        g12 = _qform(q00, q01, q02, q11, q12, q22, bx, by, bz, wx, wy, wz)
        g22 = _qform(q00, q01, q02, q11, q12, q22, wx, wy, wz, wx, wy, wz)
        if (
            np.sqrt(g11 * g11 + 2.0 * g12 * g12 + g22 * g22) * fp
            > np.sqrt(h11 * h11 + 2.0 * h12 * h12 + h22 * h22) * fq
        ):
            h11, h12, h22 = g11, g12, g22
        th = 0.5 * np.arctan2(2.0 * h12, h11 - h22)
        cth = np.cos(th)
        sth = np.sin(th)
        kap1 = h11 * cth * cth + 2.0 * h12 * sth * cth + h22 * sth * sth
        kap2 = h11 + h22 - kap1
        if kap1 * kap2 > 0.0:
            continue  # the line misses the conic: no real solution on it
        w1 = np.sqrt(abs(kap2))
        w2 = np.sqrt(abs(kap1))
        for side in range(2):
            sg2 = 1.0 if side == 0 else -1.0
            al = w1 * cth - sg2 * w2 * sth
            be = w1 * sth + sg2 * w2 * cth
            dx = al * bx + be * wx
            dy = al * by + be * wy
            dz = al * bz + be * wz
            # Sigma = M12 + M13 + M23 is positive definite: it fixes the scale of Lambda
            dSd = 2.0 * (dx * dx + dy * dy + dz * dz) - 2.0 * (b12 * dx * dy + b13 * dx * dz + b23 * dy * dz)
            if not dSd > 0.0:
                continue
            k = np.sqrt(asum / dSd)
            if dx + dy + dz < 0.0:
                k = -k
            l1 = k * dx
            l2 = k * dy
            l3 = k * dz
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
                # J = [[j11, j12, 0], [j21, 0, j23], [0, j32, j33]], Cramer's rule for J x = f
                dj = -j11 * j23 * j32 - j12 * j21 * j33
                if dj == 0.0 or not np.isfinite(dj):
                    break
                x1 = (-f1 * j23 * j32 - j12 * (f2 * j33 - j23 * f3)) / dj
                x2 = (j11 * (f2 * j33 - j23 * f3) - f1 * j21 * j33) / dj
                x3 = (-j11 * j32 * f2 - j12 * j21 * f3 + f1 * j21 * j32) / dj
                l1 -= x1
                l2 -= x2
                l3 -= x3
            if not (l1 > 0.0 and l2 > 0.0 and l3 > 0.0):
                continue
            # camera-frame triangle B = [l1 y1 - l2 y2, l1 y1 - l3 y3, cross]; R = B A^-1
            px, py, pz = l1 * y1x, l1 * y1y, l1 * y1z
            gx, gy, gz = px - l2 * y2x, py - l2 * y2y, pz - l2 * y2z
            hx, hy, hz = px - l3 * y3x, py - l3 * y3y, pz - l3 * y3z
            ox = gy * hz - gz * hy
            oy = gz * hx - gx * hz
            oz = gx * hy - gy * hx
            R = Rs[n]
            R[0, 0] = gx * i00 + hx * i10 + ox * i20
            R[0, 1] = gx * i01 + hx * i11 + ox * i21
            R[0, 2] = gx * i02 + hx * i12 + ox * i22
            R[1, 0] = gy * i00 + hy * i10 + oy * i20
            R[1, 1] = gy * i01 + hy * i11 + oy * i21
            R[1, 2] = gy * i02 + hy * i12 + oy * i22
            R[2, 0] = gz * i00 + hz * i10 + oz * i20
            R[2, 1] = gz * i01 + hz * i11 + oz * i21
            R[2, 2] = gz * i02 + hz * i12 + oz * i22
            if not np.isfinite(R[0, 0] + R[1, 1] + R[2, 2]):
                continue
            if orthonormality_error(R) > P3P_MAX_ORTHO_ERROR:
                # distances the Gauss-Newton did not settle (a triangle of sides 0.02 and 60,000
                # in an SfM model: 1e-3) leave B A^-1 off the rotations, and every refinement
                # from it (retractions by exact rotations) would keep the defect
                R[:, :] = nearest_rotation(R)
            ts[n, 0] = px - (R[0, 0] * X[0, 0] + R[0, 1] * X[0, 1] + R[0, 2] * X[0, 2])
            ts[n, 1] = py - (R[1, 0] * X[0, 0] + R[1, 1] * X[0, 1] + R[1, 2] * X[0, 2])
            ts[n, 2] = pz - (R[2, 0] * X[0, 0] + R[2, 1] * X[0, 1] + R[2, 2] * X[0, 2])
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
    U, S, Vt = svd(H)
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
    J = np.empty(nb)
    for _ in range(10):
        JtJ = np.zeros((nb, nb))
        Jtr = np.zeros(nb)
        cost = 0.0
        for p in range(npairs):
            r = -rho[p]
            J[:] = 0.0
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
    ev, evec = eigh(Cov / n)
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
            a = ((X[i, 0] - c0[0]) * axes[j, 0] + (X[i, 1] - c0[1]) * axes[j, 1] + (X[i, 2] - c0[2]) * axes[j, 2]) / sd[
                j
            ]
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
    _, V = eigh(MtM)
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
        c = np.empty(3)
        e = np.empty(3)
        G = np.empty((3, 3))
        RX = np.empty((3, 3))  # -R [X]_x
        for i in range(X.shape[0]):
            # X_c = R X + t; d X_c / d dw = -R [X]_x, d X_c / d t = I
            for k in range(3):
                c[k] = R[k, 0] * X[i, 0] + R[k, 1] * X[i, 1] + R[k, 2] * X[i, 2] + t[k]
            d = c[0] * y[i, 0] + c[1] * y[i, 1] + c[2] * y[i, 2]
            for k in range(3):
                e[k] = c[k] / d
            # d (c / d) / d c = (I - (c / d) y^T) / d
            for a in range(3):
                for b in range(3):
                    G[a, b] = ((1.0 if a == b else 0.0) - e[a] * y[i, b]) / d
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
                    for v in range(u, 6):
                        JtJ[u, v] += J[a, u] * J[a, v]
        for u in range(6):
            for v in range(u):
                JtJ[u, v] = JtJ[v, u]
        dlt, ok = solve_linear(JtJ, Jtr)
        if not ok:
            break
        w = np.empty(3)
        for k in range(3):
            w[k] = -dlt[k]
        Rn = matmul3(R, so3_exp(w[0], w[1], w[2]))
        tn = t - dlt[3:]
        cn = _tangent_cost(Rn, tn, X, y)
        if not cn < cost:
            break
        converged = cost - cn <= 1e-10 * cost
        R, t, cost = Rn, tn, cn
        if converged:
            break
    return R, t


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


def _rotation_to_z(a: np.ndarray) -> np.ndarray:
    """A rotation taking the direction a (3,) onto +z (the smallest one; IPPE's R_v^T)."""
    a = a / np.linalg.norm(a)
    c = a[2]
    if 1.0 + c < 1e-12:
        return np.diag([1.0, -1.0, -1.0])  # a = -z: a half turn about x
    d = 1.0 / (1.0 + c)
    ax, ay = a[0], a[1]
    return np.array([[1.0 - ax * ax * d, -ax * ay * d, -ax],
                     [-ax * ay * d, 1.0 - ay * ay * d, -ay],
                     [ax, ay, 1.0 - (ax * ax + ay * ay) * d]])


def planar_pose_ippe(rays: np.ndarray, X_world: np.ndarray) -> list[Rigid3]:
    """The two camera poses ``cam_from_world`` that explain N >= 4 rays (N,3, z > 0) of
    (near-)coplanar world points X_world (N,3): IPPE (Collins & Bartoli, "Infinitesimal Plane-based
    Pose Estimation", IJCV 2014).

    A plane seen by a camera has a two-fold pose ambiguity: the homography from the plane to the
    image pins down the pose only to first order at one point, and two rotations (the plane
    normal reflected about the line of sight) fit it there. IPPE returns both, each with its
    least-squares translation; the true pose is one of them, and the other is a second minimum
    of the reprojection error that can fit almost as well (weak perspective: a small or distant
    plane). Refine both and compare them on all correspondences. Points off the best-fitting
    plane are projected onto it. Returns ``[]`` when the points are collinear or a ray has z <= 0.
    """
    r, X = _rays_points(rays, X_world, minimum=4)
    if not (r[:, 2] > 0).all():
        return []
    c = X.mean(axis=0)
    _, sv, Vt = np.linalg.svd(X - c, full_matrices=False)
    if not sv[1] > 1e-9 * max(sv[0], 1e-300):
        return []
    P = Vt.T  # world_from_plane rotation: columns e1, e2 (in the plane), e3 (normal)
    if np.linalg.det(P) < 0:
        P[:, 2] = -P[:, 2]
    U = (X - c) @ P[:, :2]  # plane coordinates (N,2), centred
    q = r[:, :2] / r[:, 2:3]  # normalised image coordinates
    # the homography plane (u, v) -> image (x, y)
    H, ok = homography_dlt_nb(np.ascontiguousarray(U), np.ascontiguousarray(q), np.ones(len(U)))
    if not ok or abs(H[2, 2]) < 1e-12:
        return []
    H = H / H[2, 2]
    p0, p1 = H[0, 2], H[1, 2]  # image of the centroid
    J = np.array([[H[0, 0] - H[2, 0] * p0, H[0, 1] - H[2, 1] * p0],
                  [H[1, 0] - H[2, 0] * p1, H[1, 1] - H[2, 1] * p1]])
    Rv = _rotation_to_z(np.array([p0, p1, 1.0])).T  # takes +z to the line of sight of the centroid
    B = np.array([[1.0, 0.0, -p0], [0.0, 1.0, -p1]]) @ Rv[:, :2]
    if abs(np.linalg.det(B)) < 1e-300:
        return []
    A = np.linalg.solve(B, J)
    gamma = np.linalg.svd(A, compute_uv=False)[0]
    if not gamma > 0:
        return []
    Rt = A / gamma
    b0 = np.sqrt(max(1.0 - Rt[0, 0] ** 2 - Rt[1, 0] ** 2, 0.0))
    b1 = np.sqrt(max(1.0 - Rt[0, 1] ** 2 - Rt[1, 1] ** 2, 0.0))
    if -Rt[0, 0] * Rt[0, 1] - Rt[1, 0] * Rt[1, 1] < 0:
        b1 = -b1
    U3 = np.column_stack([U, np.zeros(len(U))])
    hat_q = np.zeros((len(q), 3, 3))  # [q~]_x of each homogeneous image point
    hat_q[:, 0, 1], hat_q[:, 0, 2] = -1.0, q[:, 1]
    hat_q[:, 1, 0], hat_q[:, 1, 2] = 1.0, -q[:, 0]
    hat_q[:, 2, 0], hat_q[:, 2, 1] = -q[:, 1], q[:, 0]
    out = []
    for sign in (1.0, -1.0):
        c1 = np.array([Rt[0, 0], Rt[1, 0], sign * b0])
        c2 = np.array([Rt[0, 1], Rt[1, 1], sign * b1])
        R_cp = Rv @ np.column_stack([c1, c2, np.cross(c1, c2)])  # cam_from_plane
        Uo, _, Vto = np.linalg.svd(R_cp)
        R_cp = Uo @ Vto
        # translation: q~ x (R U + t) = 0 for every point, least squares
        A_t = hat_q.reshape(-1, 3)
        b_t = -np.einsum("nij,nj->ni", hat_q, U3 @ R_cp.T).reshape(-1)
        t_cp = np.linalg.lstsq(A_t, b_t, rcond=None)[0]
        if t_cp[2] < 0:  # the plane behind the camera: this rotation cannot be it
            continue
        R = R_cp @ P.T  # cam_from_world = cam_from_plane o plane_from_world
        out.append(Rigid3(R, t_cp - R @ c, check=False))
    return out
