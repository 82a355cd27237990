"""Essential-matrix solvers, decomposition and cheirality; ``x2^T E x1 = 0``, ``E = [t]_x R``.

Rays are camera-frame directions of any length (e.g. ``Camera.cam_from_img`` output), so these
work for every camera model including fisheye. Poses are ``cam2_from_cam1`` with unit t.

numba cores (callable from other ``@njit`` code):

- ``essential_5pt_nb(rays1 (>=5,3), rays2 (>=5,3), always_polish=True, same_side=False) -> (Es (10,3,3), n)`` — Nister's 5-point
  solver (first 5 rows): 4-dim null space by Householder QR, the 10x20 cubic constraint
  system reduced by elimination with partial pivoting, the degree-10 polynomial in z (Nister's
  3x3 determinant) solved by Sturm sequences, each root polished by Gauss-Newton on the ten
  cubic constraints (with ``always_polish=False`` only the roots not already within 1e-10 of
  the essential manifold: RANSAC's samples); a candidate off the essential manifold
  (|2EE^TE - tr(EE^T)E| >= 1e-10: a spurious root, or a hopelessly ill-conditioned one) is
  dropped; with ``same_side`` so is, before that check, a root under which the five points'
  depth ratios differ in sign (no pose of it has them all in front). Es[:n] have unit
  Frobenius norm. Near pure rotation the cubic system degenerates
  (every [t]_x R fits): with 2 % parallax 0.3-0.7 % of exact samples miss the true E (PoseLib
  2.0.5: about 4.6 %).
- ``relative_pose_5pt_nb(rays1, rays2, always_polish=True, all_in_front=False) -> (Rs (10,3,3), ts (10,3), n)``
  — the 5-point solver followed, for each E, by the decomposition with most sample points in
  front of both cameras (with ``all_in_front`` only decompositions with all five in front).
- ``essential_5pt_ws(rays1, rays2, ws, ...)``, ``relative_pose_5pt_ws(rays1, rays2, ws, ...)`` — the
  same in scratch from ``five_point_workspace()`` (no allocation per call: RANSAC's draws); the
  returned arrays are views into ``ws``. ``relative_pose_5pt_borrowed`` returns them borrowed
  (``solvers._views.carve``; valid while ``ws`` lives): RANSAC's draws.
- ``essential_8pt_nb(rays1 (N,3), rays2 (N,3), w (N,)) -> (E (3,3), ok)`` — weighted linear
  8-point solver on conditioned rays, projected onto the essential space (singular values 1,1,0).
- ``decompose_essential_nb(E) -> (Rs (4,3,3), ts (4,3), ok)`` — the four (R, t) of an E (SVD).
- ``count_in_front_nb(R, t, rays1, rays2) -> int`` — points triangulated with positive depth in
  both cameras (mid-point depths of the two rays).
- ``relative_pose_from_essential_nb(E, rays1, rays2) -> (R, t, n_in_front)`` — the decomposition
  with most points in front (n_in_front = 0 and R = I when E is degenerate).
- ``best_cheirality_nb(R, t, rays1, rays2) -> (R, t, n_in_front)`` — of the four poses sharing
  the essential matrix of (R, t), the one with most points in front ((R, t) on ties); no SVD.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array
from ..geometry.rigid import Rigid3
from ._inputs import check_rays, point_pair, weights_of
from ..geometry._rotation_kernels import hat_nb
from ._numeric import (
    det3,
    epipolar_nullvector,
    frobenius_normalise,
    matmul3,
    ROOTS_STACK,
    null_space_qr_into,
    poly_real_roots_ws,
    roots_views,
    svd,
)
from ._views import carve, owned_by

# --- monomial bookkeeping for the 10 cubic constraints --------------------------------------------
# degree-1 polynomials in (x, y, z): coefficients of [x, y, z, 1]
_MONO1 = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0))
# degree-2: [x^2, y^2, z^2, xy, xz, yz, x, y, z, 1]
_MONO2 = ((2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0))
# degree-3 in Nister's order: the first ten are eliminated, the last ten span the quotient
_MONO3 = (
    (3, 0, 0), (0, 3, 0), (2, 1, 0), (1, 2, 0), (2, 0, 1), (2, 0, 0), (0, 2, 1), (0, 2, 0), (1, 1, 1), (1, 1, 0),
    (1, 0, 2), (1, 0, 1), (1, 0, 0), (0, 1, 2), (0, 1, 1), (0, 1, 0), (0, 0, 3), (0, 0, 2), (0, 0, 1), (0, 0, 0),
)  # fmt: skip


_EXP3 = np.array(_MONO3, dtype=np.int64)  # (20,3) exponents of x, y, z


@njit(inline="always")
def _mul11_add(p, q, out, w):
    """out (10, _MONO2) += w p q for p, q (4,) of degree 1 (_MONO1), written out (no index tables)."""
    p0, p1, p2, p3 = w * p[0], w * p[1], w * p[2], w * p[3]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    out[0] += p0 * q0
    out[1] += p1 * q1
    out[2] += p2 * q2
    out[3] += p0 * q1 + p1 * q0
    out[4] += p0 * q2 + p2 * q0
    out[5] += p1 * q2 + p2 * q1
    out[6] += p0 * q3 + p3 * q0
    out[7] += p1 * q3 + p3 * q1
    out[8] += p2 * q3 + p3 * q2
    out[9] += p3 * q3


@njit(inline="always")
def _mul21_add(a, b, out):
    """out (20, _MONO3) += a b for a (10,) of degree 2 (_MONO2) and b (4,) of degree 1."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]
    b0, b1, b2, b3 = b[0], b[1], b[2], b[3]
    out[0] += a0 * b0
    out[1] += a1 * b1
    out[2] += a0 * b1 + a3 * b0
    out[3] += a1 * b0 + a3 * b1
    out[4] += a0 * b2 + a4 * b0
    out[5] += a0 * b3 + a6 * b0
    out[6] += a1 * b2 + a5 * b1
    out[7] += a1 * b3 + a7 * b1
    out[8] += a3 * b2 + a4 * b1 + a5 * b0
    out[9] += a3 * b3 + a6 * b1 + a7 * b0
    out[10] += a2 * b0 + a4 * b2
    out[11] += a4 * b3 + a6 * b2 + a8 * b0
    out[12] += a6 * b3 + a9 * b0
    out[13] += a2 * b1 + a5 * b2
    out[14] += a5 * b3 + a7 * b2 + a8 * b1
    out[15] += a7 * b3 + a9 * b1
    out[16] += a2 * b2
    out[17] += a2 * b3 + a8 * b2
    out[18] += a8 * b3 + a9 * b2
    out[19] += a9 * b3


_WS_FLOATS = 1466  # the float scratch of ``_five_point_views``; checked in five_point_workspace
_WS_INTS = 2 * ROOTS_STACK + 11


@njit(cache=True)
def five_point_workspace():
    """Scratch for ``essential_5pt_ws`` / ``relative_pose_5pt_ws``: (floats, ints), made once per
    RANSAC call so that a draw allocates nothing. Two flat arrays rather than a tuple of ~30:
    RANSAC passes its data tuple, which holds this, by value to every kernel."""
    wf, wi = np.zeros(_WS_FLOATS), np.zeros(_WS_INTS, dtype=np.int64)
    o, oi = _five_point_views(wf, wi)[4:]
    if o != _WS_FLOATS or oi != _WS_INTS:  # the sizes above must be the layout's
        raise AssertionError("five_point_workspace: _WS_FLOATS/_WS_INTS disagree with _five_point_views")
    return wf, wi


@njit(inline="always")
def _five_point_views(wf, wi):
    """The workspace as arrays (views, no allocation): (system, roots, solutions, poses, o, oi)
    with system = (A (5,9), V (5,9), N (4,9), e (3,3,4), G (3,3,10), M (10,20), M0 (10,20),
    cof (3,10), buf (34,), P (3,4), Q (3,4), R (3,5), poly (11,)), roots = ``roots_views`` for
    degree 10, solutions = (zs (10,), B (3,3), Es (10,3,3), mono (4,20), T (2,3,3)),
    poses = (Rs (10,3,3), ts (10,3), cR (4,3,3), ct (4,3), En (3,3), t (3,), cof (3,3)) and
    o, oi the float and int sizes used."""
    A, o = carve(wf, 0, (5, 9))
    V, o = carve(wf, o, (5, 9))
    N, o = carve(wf, o, (4, 9))
    e, o = carve(wf, o, (3, 3, 4))
    G, o = carve(wf, o, (3, 3, 10))
    M, o = carve(wf, o, (10, 20))
    M0, o = carve(wf, o, (10, 20))
    cof, o = carve(wf, o, (3, 10))
    buf, o = carve(wf, o, (34,))
    P, o = carve(wf, o, (3, 4))
    Q, o = carve(wf, o, (3, 4))
    R, o = carve(wf, o, (3, 5))
    poly, o = carve(wf, o, (11,))
    system = (A, V, N, e, G, M, M0, cof, buf, P, Q, R, poly)
    roots, o, oi = roots_views(wf, o, wi, 0, 10)
    zs, o = carve(wf, o, (10,))
    B, o = carve(wf, o, (3, 3))
    Es, o = carve(wf, o, (10, 3, 3))
    mono, o = carve(wf, o, (4, 20))
    T, o = carve(wf, o, (2, 3, 3))
    solutions = (zs, B, Es, mono, T)
    Rs, o = carve(wf, o, (10, 3, 3))
    ts, o = carve(wf, o, (10, 3))
    cR, o = carve(wf, o, (4, 3, 3))
    ct, o = carve(wf, o, (4, 3))
    En, o = carve(wf, o, (3, 3))
    tv, o = carve(wf, o, (3,))
    cf, o = carve(wf, o, (3, 3))
    poses = (Rs, ts, cR, ct, En, tv, cf)
    return system, roots, solutions, poses, o, oi


@njit(cache=True)
def _null_space_5x9(rays1, rays2, A, V, N):
    """Orthonormal basis N (4,9) of the null space of the 5x9 epipolar constraint matrix A
    (scratch, as V); returns ok."""
    for i in range(5):  # row i = kron(b_i, a_i) of unit rays
        n1 = np.sqrt(rays1[i, 0] ** 2 + rays1[i, 1] ** 2 + rays1[i, 2] ** 2)
        n2 = np.sqrt(rays2[i, 0] ** 2 + rays2[i, 1] ** 2 + rays2[i, 2] ** 2)
        inv = 1.0 / (n1 * n2)
        for j in range(3):
            for k in range(3):
                A[i, 3 * j + k] = rays2[i, j] * rays1[i, k] * inv
    return null_space_qr_into(A, V, N)


@njit(cache=True)
def _poly_mul_into(a, b, out):
    """out[:len(a) + len(b) - 1] = the product of the polynomials a and b (coefficients low -> high)."""
    m = a.shape[0] + b.shape[0] - 1
    for k in range(m):
        out[k] = 0.0
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i + j] += a[i] * b[j]


@njit(cache=True)
def _poly_mul_diff(a, b, c, d, out, scratch):
    """out = a b - c d (polynomials, low -> high; len(a) + len(b) == len(c) + len(d)), without
    allocating: ``scratch`` holds c d."""
    _poly_mul_into(a, b, out)
    _poly_mul_into(c, d, scratch)
    for k in range(a.shape[0] + b.shape[0] - 1):
        out[k] -= scratch[k]


@njit(cache=True)
def _five_point_system(rays1, rays2, ws):
    """Into the system workspace ``ws`` (see ``five_point_workspace``): the null-space basis
    N (4,9), the 10x20 cubic constraints M0, the polynomial matrix rows P (3,4), Q (3,4),
    R (3,5) and its degree-10 determinant poly (11,) (coefficients lowest degree first).
    Returns ok, False when degenerate."""
    A, V, N, e, G, M, M0, cof, buf, P, Q, R, poly = ws
    if not _null_space_5x9(rays1, rays2, A, V, N):
        return False
    # E(x, y, z) = x X + y Y + z Z + W: entries as degree-1 polynomials
    for r in range(3):
        for c in range(3):
            for k in range(4):
                e[r, c, k] = N[k, 3 * r + c]
    # E E^T (symmetric, degree 2), then G = E E^T - tr(E E^T) I / 2
    G[:, :, :] = 0.0
    for i in range(3):
        for j in range(i, 3):
            for k in range(3):
                _mul11_add(e[i, k], e[j, k], G[i, j], 1.0)
    for m in range(10):
        h = 0.5 * (G[0, 0, m] + G[1, 1, m] + G[2, 2, m])
        G[0, 0, m] -= h
        G[1, 1, m] -= h
        G[2, 2, m] -= h
        G[1, 0, m] = G[0, 1, m]
        G[2, 0, m] = G[0, 2, m]
        G[2, 1, m] = G[1, 2, m]
    M[:, :] = 0.0
    # rows 0..8: (E E^T - tr(E E^T) I / 2) E = 0
    for i in range(3):
        for j in range(3):
            for k in range(3):
                _mul21_add(G[i, k], e[k, j], M[3 * i + j])
    # row 9: det(E) = E0 . (E1 x E2) with rows E0, E1, E2
    cof[:, :] = 0.0
    for c in range(3):
        c1 = (c + 1) % 3
        c2 = (c + 2) % 3
        _mul11_add(e[1, c1], e[2, c2], cof[c], 1.0)
        _mul11_add(e[1, c2], e[2, c1], cof[c], -1.0)
    for c in range(3):
        _mul21_add(cof[c], e[0, c], M[9])
    M0[:, :] = M
    # eliminate the first ten monomials: forward elimination with partial pivoting, then back
    # substitution on the last ten columns of rows 4..9, the only rows read below (a third of
    # the operations of a full Gauss-Jordan on the 10x20 system)
    for k in range(10):
        p = k
        best = abs(M[k, k])
        for i in range(k + 1, 10):
            if abs(M[i, k]) > best:
                best = abs(M[i, k])
                p = i
        if not best > 0.0 or not np.isfinite(best):
            return False
        if p != k:
            for j in range(k, 20):
                tmp = M[k, j]
                M[k, j] = M[p, j]
                M[p, j] = tmp
        piv = 1.0 / M[k, k]
        for i in range(k + 1, 10):
            f = M[i, k] * piv
            if f != 0.0:
                for j in range(k + 1, 20):
                    M[i, j] -= f * M[k, j]
    for r in range(9, 3, -1):
        for c in range(r + 1, 10):
            f = M[r, c]
            if f != 0.0:
                for j in range(10, 20):
                    M[r, j] -= f * M[c, j]
        piv = 1.0 / M[r, r]
        for j in range(10, 20):
            M[r, j] *= piv
    # rows e..j (x^2 z, x^2, y^2 z, y^2, xyz, xy): <e> - z<f>, <g> - z<h>, <i> - z<j> give
    # [p(z) q(z) r(z)] . (x, y, 1) = 0 with p, q cubic and r quartic (coefficients low -> high)
    for m in range(3):
        u = 4 + 2 * m
        v = u + 1
        # remaining columns: xz^2, xz, x, yz^2, yz, y, z^3, z^2, z, 1 (10..19)
        P[m, 0] = M[u, 12]
        P[m, 1] = M[u, 11] - M[v, 12]
        P[m, 2] = M[u, 10] - M[v, 11]
        P[m, 3] = -M[v, 10]
        Q[m, 0] = M[u, 15]
        Q[m, 1] = M[u, 14] - M[v, 15]
        Q[m, 2] = M[u, 13] - M[v, 14]
        Q[m, 3] = -M[v, 13]
        R[m, 0] = M[u, 19]
        R[m, 1] = M[u, 18] - M[v, 19]
        R[m, 2] = M[u, 17] - M[v, 18]
        R[m, 3] = M[u, 16] - M[v, 17]
        R[m, 4] = -M[v, 16]
    # det of the 3x3 polynomial matrix (degree 10) by its first row's cofactors
    # buf: t0 (8), t1 (8), t2 (7), scratch (11)
    t0, t1, t2, tmp = buf[:8], buf[8:16], buf[16:23], buf[23:34]
    _poly_mul_diff(Q[1], R[2], Q[2], R[1], t0, tmp)
    _poly_mul_diff(P[1], R[2], P[2], R[1], t1, tmp)
    _poly_mul_diff(P[1], Q[2], P[2], Q[1], t2, tmp)
    _poly_mul_diff(P[0], t0, Q[0], t1, poly, tmp)
    _poly_mul_into(R[0], t2, tmp)
    for k in range(11):
        poly[k] += tmp[k]
    return True


@njit(cache=True)
def _polish_xyz(M0, x, y, z, scratch):
    """Gauss-Newton on the ten cubic constraints M0 @ monomials(x, y, z) = 0 (up to 5 steps,
    none when the residual is already at rounding level): removes the error that the
    elimination and the degree-10 polynomial accumulate on ill-conditioned samples.
    ``scratch`` (4,20) holds the monomials and their x, y, z derivatives."""
    mono, dmx, dmy, dmz = scratch[0], scratch[1], scratch[2], scratch[3]
    for _ in range(5):
        x2 = x * x
        y2 = y * y
        z2 = z * z
        scale = 1.0 + abs(x) + abs(y) + abs(z)
        scale = scale * scale * scale
        for m in range(20):
            a = _EXP3[m, 0]
            b = _EXP3[m, 1]
            c = _EXP3[m, 2]
            px = 1.0 if a == 0 else (x if a == 1 else (x2 if a == 2 else x2 * x))
            py = 1.0 if b == 0 else (y if b == 1 else (y2 if b == 2 else y2 * y))
            pz = 1.0 if c == 0 else (z if c == 1 else (z2 if c == 2 else z2 * z))
            qx = 0.0 if a == 0 else (1.0 if a == 1 else (2.0 * x if a == 2 else 3.0 * x2))
            qy = 0.0 if b == 0 else (1.0 if b == 1 else (2.0 * y if b == 2 else 3.0 * y2))
            qz = 0.0 if c == 0 else (1.0 if c == 1 else (2.0 * z if c == 2 else 3.0 * z2))
            mono[m] = px * py * pz
            dmx[m] = qx * py * pz
            dmy[m] = px * qy * pz
            dmz[m] = px * py * qz
        a00 = a01 = a02 = a11 = a12 = a22 = 0.0
        g0 = g1 = g2 = 0.0
        rr = 0.0
        mm = 0.0
        for i in range(10):
            r = 0.0
            j0 = 0.0
            j1 = 0.0
            j2 = 0.0
            for m in range(20):
                v = M0[i, m]
                r += v * mono[m]
                j0 += v * dmx[m]
                j1 += v * dmy[m]
                j2 += v * dmz[m]
                mm = max(mm, abs(v))
            rr += r * r
            a00 += j0 * j0
            a01 += j0 * j1
            a02 += j0 * j2
            a11 += j1 * j1
            a12 += j1 * j2
            a22 += j2 * j2
            g0 += j0 * r
            g1 += j1 * r
            g2 += j2 * r
        if np.sqrt(rr) <= 1e-14 * mm * scale:
            break
        # solve the 3x3 normal equations by Cramer's rule
        c00 = a11 * a22 - a12 * a12
        c01 = a02 * a12 - a01 * a22
        c02 = a01 * a12 - a02 * a11
        det = a00 * c00 + a01 * c01 + a02 * c02
        if not (det > 0.0 and np.isfinite(det)):
            break
        c11 = a00 * a22 - a02 * a02
        c12 = a01 * a02 - a00 * a12
        c22 = a00 * a11 - a01 * a01
        d0 = (c00 * g0 + c01 * g1 + c02 * g2) / det
        d1 = (c01 * g0 + c11 * g1 + c12 * g2) / det
        d2 = (c02 * g0 + c12 * g1 + c22 * g2) / det
        x -= d0
        y -= d1
        z -= d2
        if abs(d0) + abs(d1) + abs(d2) <= 1e-13 * (1.0 + abs(x) + abs(y) + abs(z)):
            break
    return x, y, z


@njit(cache=True)
def _left_null_vector(E):
    """t with E^T t = 0 (unnormalised) and |t|^2: t is orthogonal to every column of E, so the
    largest cross product of two columns. Returns (t0, t1, t2, |t|^2)."""
    best = -1.0
    t0 = t1 = t2 = 0.0
    for a in range(3):
        b = (a + 1) % 3
        cx = E[1, a] * E[2, b] - E[2, a] * E[1, b]
        cy = E[2, a] * E[0, b] - E[0, a] * E[2, b]
        cz = E[0, a] * E[1, b] - E[1, a] * E[0, b]
        nn = cx * cx + cy * cy + cz * cz
        if nn > best:
            best = nn
            t0, t1, t2 = cx, cy, cz
    return t0, t1, t2, best


@njit(cache=True)
def _depth_signs_mixed(E, rays1, rays2):
    """True when no pose with essential matrix E puts all five ray pairs in front of both cameras:
    lambda2 (t x b) = lambda1 E a gives (t x b).(E a) = (lambda2 / lambda1) |t x b|^2, so the
    depth ratios of the five points have the signs of (t x b).(E a) with t the left null vector
    of E (the four poses share them up to one common sign); mixed signs rule out every pose."""
    t0, t1, t2, _ = _left_null_vector(E)
    pos = False
    neg = False
    for i in range(5):
        a0, a1, a2 = rays1[i, 0], rays1[i, 1], rays1[i, 2]
        b0, b1, b2 = rays2[i, 0], rays2[i, 1], rays2[i, 2]
        e0 = E[0, 0] * a0 + E[0, 1] * a1 + E[0, 2] * a2
        e1 = E[1, 0] * a0 + E[1, 1] * a1 + E[1, 2] * a2
        e2 = E[2, 0] * a0 + E[2, 1] * a1 + E[2, 2] * a2
        v = (t1 * b2 - t2 * b1) * e0 + (t2 * b0 - t0 * b2) * e1 + (t0 * b1 - t1 * b0) * e2
        pos = pos or v > 0.0
        neg = neg or v < 0.0
    return pos and neg


@njit(cache=True)
def essential_5pt_nb(rays1, rays2, always_polish=True, same_side=False):
    return essential_5pt_ws(rays1, rays2, five_point_workspace(), always_polish, same_side)


@njit(cache=True)
def essential_5pt_ws(rays1, rays2, ws, always_polish=True, same_side=False):
    """``essential_5pt_nb`` in the workspace ``ws`` of ``five_point_workspace``; the returned Es
    is a view into it (valid until the next call with the same workspace)."""
    Es, n = _essential_5pt_views(rays1, rays2, _five_point_views(ws[0], ws[1]), always_polish, same_side)
    return owned_by(Es, ws[0]), n


@njit(cache=True)
def _essential_5pt_views(rays1, rays2, ws, always_polish, same_side):
    zs, B, Es, mono, T = ws[2]
    if not _five_point_system(rays1, rays2, ws[0]):
        return Es, 0
    N, M0, P, Q, R, poly = ws[0][2], ws[0][6], ws[0][9], ws[0][10], ws[0][11], ws[0][12]
    nz = poly_real_roots_ws(poly, zs, ws[1])
    n = 0
    for s in range(nz):
        z = zs[s]
        for m in range(3):
            B[m, 0] = P[m, 0] + z * (P[m, 1] + z * (P[m, 2] + z * P[m, 3]))
            B[m, 1] = Q[m, 0] + z * (Q[m, 1] + z * (Q[m, 2] + z * Q[m, 3]))
            B[m, 2] = R[m, 0] + z * (R[m, 1] + z * (R[m, 2] + z * (R[m, 3] + z * R[m, 4])))
        # (x, y, 1) spans the null space of B: the largest cross product of two rows
        best = -1.0
        vx = vy = vz = 0.0
        for a in range(3):
            b = (a + 1) % 3
            cx = B[a, 1] * B[b, 2] - B[a, 2] * B[b, 1]
            cy = B[a, 2] * B[b, 0] - B[a, 0] * B[b, 2]
            cz = B[a, 0] * B[b, 1] - B[a, 1] * B[b, 0]
            nn = cx * cx + cy * cy + cz * cz
            if nn > best:
                best = nn
                vx, vy, vz = cx, cy, cz
        if not abs(vz) > 1e-14 * np.sqrt(best):
            continue
        x = vx / vz
        y = vy / vz
        # without always_polish (RANSAC samples) the root is polished only when it is not
        # already on the essential manifold: most are, and the polish is ~15 % of the solver
        for attempt in range(2):
            if always_polish or attempt == 1:
                x, y, z = _polish_xyz(M0, x, y, z, mono)
            for r in range(3):
                for c in range(3):
                    k = 3 * r + c
                    Es[n, r, c] = x * N[0, k] + y * N[1, k] + z * N[2, k] + N[3, k]
            sc = frobenius_normalise(Es[n])
            if not (sc > 0.0 and np.isfinite(sc)):
                break
            if same_side and _depth_signs_mixed(Es[n], rays1, rays2):
                break  # (most roots of RANSAC samples): no need to check or polish it
            if _essential_residual(Es[n], T) < 1e-10:
                n += 1
                break
            if always_polish:
                break
    return Es, n


@njit(cache=True)
def _essential_residual(E, T):
    """|2 E E^T E - tr(E E^T) E|_F of a unit-norm E: ~|s1 - s2| + s3, zero on the essential
    manifold. Rejects spurious roots (numerically real twins of complex pairs). T (2,3,3) is
    scratch."""
    A, B = T[0], T[1]
    for i in range(3):
        for j in range(3):
            A[i, j] = E[i, 0] * E[j, 0] + E[i, 1] * E[j, 1] + E[i, 2] * E[j, 2]
    tr = A[0, 0] + A[1, 1] + A[2, 2]
    for i in range(3):
        for j in range(3):
            B[i, j] = A[i, 0] * E[0, j] + A[i, 1] * E[1, j] + A[i, 2] * E[2, j]
    r = 0.0
    for i in range(3):
        for j in range(3):
            v = 2.0 * B[i, j] - tr * E[i, j]
            r += v * v
    return np.sqrt(r)


@njit(cache=True)
def _midpoint_system(R, t, a0, a1, a2, b0, b1, b2):
    """The mid-point triangulation of the rays a (camera 1) and b (camera 2) under (R, t):
    minimising |l1 R a + t - l2 b|^2 gives [aa, -ab; -ab, bb] (l1, l2) = (p, q) with p = -(Ra).t,
    q = b.t. Returns (aa, bb, ab, p, q)."""
    ra0 = R[0, 0] * a0 + R[0, 1] * a1 + R[0, 2] * a2
    ra1 = R[1, 0] * a0 + R[1, 1] * a1 + R[1, 2] * a2
    ra2 = R[2, 0] * a0 + R[2, 1] * a1 + R[2, 2] * a2
    aa = ra0 * ra0 + ra1 * ra1 + ra2 * ra2
    bb = b0 * b0 + b1 * b1 + b2 * b2
    ab = ra0 * b0 + ra1 * b1 + ra2 * b2
    p = -(ra0 * t[0] + ra1 * t[1] + ra2 * t[2])
    q = b0 * t[0] + b1 * t[1] + b2 * t[2]
    return aa, bb, ab, p, q


@njit(cache=True)
def _in_front(R, t, a0, a1, a2, b0, b1, b2):
    """True when the rays a (camera 1) and b (camera 2) meet in front of both cameras."""
    aa, bb, ab, p, q = _midpoint_system(R, t, a0, a1, a2, b0, b1, b2)
    # solution times the positive determinant aa bb - ab^2
    l1 = bb * p + ab * q
    l2 = ab * p + aa * q
    return l1 > 0.0 and l2 > 0.0


@njit(cache=True)
def count_in_front_nb(R, t, rays1, rays2):
    n = 0
    for i in range(rays1.shape[0]):
        if _in_front(R, t, rays1[i, 0], rays1[i, 1], rays1[i, 2], rays2[i, 0], rays2[i, 1], rays2[i, 2]):
            n += 1
    return n


@njit(cache=True)
def _decompose_exact(E, Rs, ts, En, t, cof):
    """The four (R, t) of an (exactly) essential E without an SVD: t spans the left null space,
    R = cof(E) -/+ [t]_x E for E scaled to |E|_F^2 = 2 (Horn 1990). En (3,3), t (3,) and
    cof (3,3) are scratch. Returns ok."""
    En[:, :] = E
    s = frobenius_normalise(En)
    if not s > 0.0:
        return False
    r2 = np.sqrt(2.0)
    for i in range(3):
        for j in range(3):
            En[i, j] *= r2
    t[0], t[1], t[2], best = _left_null_vector(En)
    if not best > 0.0:
        return False
    nt = np.sqrt(best)
    t /= nt
    for i in range(3):
        i1 = (i + 1) % 3
        i2 = (i + 2) % 3
        cof[i, 0] = En[i1, 1] * En[i2, 2] - En[i1, 2] * En[i2, 1]
        cof[i, 1] = En[i1, 2] * En[i2, 0] - En[i1, 0] * En[i2, 2]
        cof[i, 2] = En[i1, 0] * En[i2, 1] - En[i1, 1] * En[i2, 0]
    for c in range(3):
        # [t]_x E column c = t x E[:, c]
        tx0 = t[1] * En[2, c] - t[2] * En[1, c]
        tx1 = t[2] * En[0, c] - t[0] * En[2, c]
        tx2 = t[0] * En[1, c] - t[1] * En[0, c]
        Rs[0, 0, c] = cof[0, c] - tx0
        Rs[0, 1, c] = cof[1, c] - tx1
        Rs[0, 2, c] = cof[2, c] - tx2
        Rs[2, 0, c] = cof[0, c] + tx0
        Rs[2, 1, c] = cof[1, c] + tx1
        Rs[2, 2, c] = cof[2, c] + tx2
    Rs[1] = Rs[0]
    Rs[3] = Rs[2]
    for k in range(3):
        ts[0, k] = t[k]
        ts[1, k] = -t[k]
        ts[2, k] = t[k]
        ts[3, k] = -t[k]
    return True


@njit(cache=True)
def relative_pose_5pt_nb(rays1, rays2, always_polish=True, all_in_front=False):
    return relative_pose_5pt_ws(rays1, rays2, five_point_workspace(), always_polish, all_in_front)


@njit(cache=True)
def relative_pose_5pt_ws(rays1, rays2, ws, always_polish=True, all_in_front=False):
    """``relative_pose_5pt_nb`` in the workspace ``ws`` of ``five_point_workspace``; Rs and ts
    are views into it (valid until the next call with the same workspace)."""
    Rs, ts, n = relative_pose_5pt_borrowed(rays1, rays2, ws, always_polish, all_in_front)
    return owned_by(Rs, ws[0]), owned_by(ts, ws[0]), n


@njit(cache=True)
def relative_pose_5pt_borrowed(rays1, rays2, ws, always_polish=True, all_in_front=False):
    """``relative_pose_5pt_ws`` returning borrowed views (``solvers._views.carve``): for kernels
    that read them before ``ws`` goes (RANSAC's draws), sparing two reference-count updates
    on each use."""
    views = _five_point_views(ws[0], ws[1])
    Es, ne = _essential_5pt_views(rays1, rays2, views, always_polish, all_in_front)
    Rs, ts, cR, ct, En, tv, cof = views[3]
    n = 0
    for k in range(ne):
        if not _decompose_exact(Es[k], cR, ct, En, tv, cof):
            continue
        bi = _all_in_front(cR, ct, rays1, rays2) if all_in_front else _most_in_front(cR, ct, rays1, rays2)
        if bi >= 0:
            Rs[n] = cR[bi]
            ts[n] = ct[bi]
            n += 1
    return Rs, ts, n


@njit(cache=True)
def _most_in_front(cR, ct, rays1, rays2):
    """The candidate (of four) with the most of the five ray pairs in front (-1: none)."""
    best = 0
    bi = -1
    for c in range(4):
        cnt = count_in_front_nb(cR[c], ct[c], rays1[:5], rays2[:5])
        if cnt > best:
            best = cnt
            bi = c
    return bi


@njit(cache=True)
def _all_in_front(cR, ct, rays1, rays2):
    """The candidate (of four) with all five ray pairs in front, or -1: the first pair is in
    front under exactly one candidate (the four cover its four depth signs), so only that one
    is checked on the others."""
    for c in range(4):
        if _in_front(cR[c], ct[c], rays1[0, 0], rays1[0, 1], rays1[0, 2], rays2[0, 0], rays2[0, 1], rays2[0, 2]):
            for i in range(1, 5):
                if not _in_front(cR[c], ct[c], rays1[i, 0], rays1[i, 1], rays1[i, 2], rays2[i, 0], rays2[i, 1],
                                 rays2[i, 2]):
                    return -1
            return c
    return -1


@njit(cache=True)
def _ray_conditioner(rays, w):
    """Linear map T (3,3) that turns the weighted mean direction of ``rays`` into +z and spreads
    the rest isotropically (Hartley normalisation for bearings; valid for any direction)."""
    m = np.zeros(3)
    n = rays.shape[0]
    U = np.empty((n, 3))
    for i in range(n):
        nr = np.sqrt(rays[i, 0] ** 2 + rays[i, 1] ** 2 + rays[i, 2] ** 2)
        for k in range(3):
            U[i, k] = rays[i, k] / nr
            m[k] += w[i] * U[i, k]
    nm = np.sqrt(m[0] ** 2 + m[1] ** 2 + m[2] ** 2)
    T = np.eye(3)
    if nm > 1e-12:
        m /= nm
        # Householder reflection taking m to e_z
        v = m.copy()
        v[2] -= 1.0
        vv = v[0] ** 2 + v[1] ** 2 + v[2] ** 2
        if vv > 1e-24:
            for i in range(3):
                for j in range(3):
                    T[i, j] -= 2.0 * v[i] * v[j] / vv
    # isotropic scale of the (x, y) spread after the reflection
    sw = 0.0
    sp = 0.0
    for i in range(n):
        x = T[0, 0] * U[i, 0] + T[0, 1] * U[i, 1] + T[0, 2] * U[i, 2]
        y = T[1, 0] * U[i, 0] + T[1, 1] * U[i, 1] + T[1, 2] * U[i, 2]
        sw += w[i]
        sp += w[i] * (x * x + y * y)
    if sw > 0.0 and sp > 0.0:
        s = 1.0 / np.sqrt(0.5 * sp / sw)
        s = min(s, 1e6)
        for j in range(3):
            T[0, j] *= s
            T[1, j] *= s
    return T, U


@njit(cache=True)
def _project_essential(E):
    """Closest essential matrix (singular values 1, 1, 0) by SVD; ok False when rank < 2."""
    U, S, Vt = svd(E)
    if not S[1] > 1e-12 * S[0]:
        return np.zeros((3, 3)), False
    D = np.zeros((3, 3))
    D[0, 0] = 1.0
    D[1, 1] = 1.0
    return matmul3(matmul3(U, D), Vt), True


@njit(cache=True)
def essential_8pt_nb(rays1, rays2, w):
    E = np.zeros((3, 3))
    n = rays1.shape[0]
    npos = 0
    for i in range(n):
        if w[i] > 0.0:
            npos += 1
    if npos < 8:
        return E, False
    T1, U1 = _ray_conditioner(rays1, w)
    T2, U2 = _ray_conditioner(rays2, w)
    P = np.empty((n, 3))
    Q = np.empty((n, 3))
    for i in range(n):
        for j in range(3):
            P[i, j] = T1[j, 0] * U1[i, 0] + T1[j, 1] * U1[i, 1] + T1[j, 2] * U1[i, 2]
            Q[i, j] = T2[j, 0] * U2[i, 0] + T2[j, 1] * U2[i, 1] + T2[j, 2] * U2[i, 2]
    En, ok = epipolar_nullvector(P, Q, w)
    if not ok:
        return E, False  # not determined (e.g. pure rotation or too few distinct rays)
    E, ok = _project_essential(matmul3(matmul3(T2.T, En), T1))
    return E, ok


@njit(cache=True)
def decompose_essential_nb(E):
    Rs = np.zeros((4, 3, 3))
    ts = np.zeros((4, 3))
    U, S, Vt = svd(E)
    if not (S[0] > 0.0 and S[1] > 1e-9 * S[0]):
        return Rs, ts, False
    if det3(U) < 0.0:
        U = -U
    if det3(Vt) < 0.0:
        Vt = -Vt
    W = np.zeros((3, 3))
    W[0, 1] = -1.0
    W[1, 0] = 1.0
    W[2, 2] = 1.0
    Ra = matmul3(matmul3(U, W), Vt)
    Rb = matmul3(matmul3(U, W.T.copy()), Vt)
    Rs[0] = Ra
    Rs[1] = Ra
    Rs[2] = Rb
    Rs[3] = Rb
    for k in range(3):
        ts[0, k] = U[k, 2]
        ts[1, k] = -U[k, 2]
        ts[2, k] = U[k, 2]
        ts[3, k] = -U[k, 2]
    return Rs, ts, True


@njit(cache=True)
def essential_from_pose_nb(R, t):
    """E = [t]_x R (3, 3) of the relative pose (R, t)."""
    return matmul3(hat_nb(t), R)


@njit(cache=True)
def best_cheirality_nb(R, t, rays1, rays2):
    """Of the four poses with the essential matrix of (R, t) (unit t): (R, t), (R, -t), (H R, t),
    (H R, -t) with H = 2 t t^T - I (the rotation by pi about t), the one with the most rays in
    front of both cameras; (R, t) unless another has strictly more. One pass and no SVD: for the
    twisted pair the mid-point system shares p = -(Ra).t and only (Ra).b changes, to
    2 (Ra.t)(b.t) - (Ra).b; negating t negates both depths. Returns (R, t, n_in_front)."""
    t0, t1, t2 = t[0], t[1], t[2]
    counts = np.zeros(4, dtype=np.int64)
    for i in range(rays1.shape[0]):
        aa, bb, ab, p, q = _midpoint_system(R, t, rays1[i, 0], rays1[i, 1], rays1[i, 2], rays2[i, 0], rays2[i, 1],
                                            rays2[i, 2])
        l1 = bb * p + ab * q
        l2 = ab * p + aa * q
        ab_tw = -2.0 * p * q - ab
        m1 = bb * p + ab_tw * q
        m2 = ab_tw * p + aa * q
        counts[0] += l1 > 0.0 and l2 > 0.0
        counts[1] += l1 < 0.0 and l2 < 0.0
        counts[2] += m1 > 0.0 and m2 > 0.0
        counts[3] += m1 < 0.0 and m2 < 0.0
    bi = 0
    for c in range(1, 4):
        if counts[c] > counts[bi]:
            bi = c
    if bi == 0:
        return R.copy(), t.copy(), counts[0]
    Rb = R.copy()
    if bi >= 2:
        for c in range(3):
            d = t0 * R[0, c] + t1 * R[1, c] + t2 * R[2, c]
            for r in range(3):
                Rb[r, c] = 2.0 * t[r] * d - R[r, c]
    tb = -t if bi != 2 else t.copy()
    return Rb, tb, counts[bi]


@njit(cache=True)
def relative_pose_from_essential_nb(E, rays1, rays2):
    Rs, ts, ok = decompose_essential_nb(E)
    if not ok:
        return np.eye(3), np.zeros(3), 0
    best = -1
    bi = 0
    for c in range(4):
        cnt = count_in_front_nb(Rs[c], ts[c], rays1, rays2)
        if cnt > best:
            best = cnt
            bi = c
    return Rs[bi].copy(), ts[bi].copy(), best


# --- Python API -------------------------------------------------------------------------------------
def _rays_pair(rays1, rays2, *, exact=None, minimum=None):
    a, b = point_pair(rays1, rays2, 3, exact=exact, minimum=minimum)
    check_rays(a, "rays1")
    check_rays(b, "rays2")
    return a, b


def essential_5pt(rays1: np.ndarray, rays2: np.ndarray) -> list[np.ndarray]:
    """Essential matrices (up to 10, unit Frobenius norm) from 5 ray correspondences (5,3).

    ``x2^T E x1 = 0``; rays are camera-frame directions of any length. Returns ``[]`` for
    degenerate samples (repeated correspondences, rank-deficient constraints).
    """
    a, b = _rays_pair(rays1, rays2, exact=5)
    Es, n = essential_5pt_nb(a, b)
    return [Es[k].copy() for k in range(n)]


def relative_pose_5pt(rays1: np.ndarray, rays2: np.ndarray) -> list[Rigid3]:
    """Relative poses ``cam2_from_cam1`` (unit t) from 5 ray correspondences: for each E of
    :func:`essential_5pt`, the decomposition with most of the 5 points in front of both cameras."""
    a, b = _rays_pair(rays1, rays2, exact=5)
    Rs, ts, n = relative_pose_5pt_nb(a, b)
    return [Rigid3(Rs[k], ts[k], check=False) for k in range(n)]


def essential_8pt(rays1: np.ndarray, rays2: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
    """Least-squares essential matrix from N >= 8 ray correspondences (linear 8-point on
    conditioned bearings), projected onto the essential space (singular values (1, 1, 0)).

    ``weights`` (N,) >= 0 scale each equation. Returns None when the data do not determine E
    (fewer than 8 distinct correspondences, pure rotation, ...).
    """
    a, b = _rays_pair(rays1, rays2, minimum=8)
    w = weights_of(weights, len(a))
    E, ok = essential_8pt_nb(a, b, w)
    return E if ok else None


def decompose_essential(E: np.ndarray) -> list[Rigid3]:
    """The four candidate ``cam2_from_cam1`` (unit t) of an essential matrix: (R1, t), (R1, -t),
    (R2, t), (R2, -t). E is first projected onto the essential space. Returns [] when rank(E) < 2."""
    E = as_array(E, "E", (3, 3))
    Rs, ts, ok = decompose_essential_nb(E)
    if not ok:
        return []
    return [Rigid3(Rs[k], ts[k], check=False) for k in range(4)]


def relative_pose_from_essential(E: np.ndarray, rays1: np.ndarray, rays2: np.ndarray) -> tuple[Rigid3 | None, int]:
    """``(cam2_from_cam1, n_in_front)``: the decomposition of E that puts most correspondences
    in front of both cameras (cheirality), with unit t. ``(None, 0)`` when E is degenerate or no
    point is in front."""
    E = as_array(E, "E", (3, 3))
    a, b = _rays_pair(rays1, rays2, minimum=1)
    R, t, n = relative_pose_from_essential_nb(E, a, b)
    if n <= 0:
        return None, 0
    return Rigid3(R, t, check=False), int(n)
