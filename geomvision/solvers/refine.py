"""Non-linear refinement (Levenberg-Marquardt, small dense, numba) of H, F, relative and absolute pose.

Every refiner minimises ``cost = sum_i w_i * r_i^2`` (per-point weights ``w`` >= 0 so that a
RANSAC engine can run IRLS / robust losses; a zero weight ignores the point) and stops after
``max_iterations`` or when the relative cost decrease < ``function_tolerance``, the step is
< ``step_tolerance`` relative to the parameters, or the gradient max-norm < ``gradient_tolerance``.
A step is kept only when it lowers the cost (Marquardt damping, diag(J^T J) scaled).
Refiners do not judge degeneracy (the solvers and the RANSAC engine do): when every weighted
point coincides the input model is returned unchanged with its cost. Each refiner is a
``system`` (cost and normal equations in local coordinates) and a ``retract`` (apply a step)
run by the one LM driver in ``_lm.py``.

numba cores (callable from other ``@njit`` code); each returns the refined model followed by
``(iterations, initial_cost, final_cost)``:

- ``refine_homography_nb(H, x1, x2, w, max_iter, ftol, xtol, gtol) -> (H, it, c0, c1)`` — one-sided
  transfer error |x2 - H(x1)|^2 (pixels^2, the error RANSAC scores); H on the unit sphere of
  R^9 (8 dof), computed in Hartley-normalised coordinates and reported in pixels.
- ``refine_fundamental_nb(F, x1, x2, w, max_iter, ftol, xtol, gtol) -> (F, it, c0, c1)`` — Sampson
  error (pixels^2); rank 2 kept by the orthonormal representation F = U diag(1, s, 0) V^T
  (Bartoli & Sturm 2004): U, V rotations updated by Exp, s scalar (7 dof).
- ``refine_relative_pose_nb(R, t, rays1, rays2, w, on_sphere, max_iter, ftol, xtol, gtol)
  -> (R, t, it, c0, c1)`` — 5 dof (R <- R Exp(dw), unit t moved on its tangent plane). Sampson
  error of E = [t]_x R either on the z = 1 plane (``on_sphere`` False: first-order image
  error for pinhole cameras, in normalised units; rays must have z > 0) or in the tangent
  planes of unit bearings (``on_sphere`` True: any direction, e.g. wide fisheye).
- ``refine_absolute_pose_nb(R, t, uv, X_world, model_id, params, w, max_iter, ftol, xtol, gtol)
  -> (R, t, it, c0, c1)`` — pixel reprojection error through the camera model
  (``_camera_kernels.project_one``, every model incl. distortion); a step may not push a point
  behind the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .._validation import as_array, check_int, check_positive, check_same_length
from ..geometry._camera_kernels import project_one
from ..geometry._rotation_kernels import hat_nb, so3_exp
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from ._inputs import check_rays, point_pair, weights_of
from ._lm import lm_minimise
from ._lm import norm as _norm
from ._numeric import det3, matmul3, normalise_points, svd
from .essential import essential_from_pose_nb


@dataclass(frozen=True)
class RefineInfo:
    """Outcome of a refinement: iterations run, cost before and after (sum of weighted
    squared errors, in the units the refiner documents)."""

    iterations: int
    initial_cost: float
    final_cost: float


# --- shared helpers --------------------------------------------------------------------------------
@njit(cache=True)
def _mirror_upper(A):
    """Fill the lower triangle of the square A from its upper triangle (normal equations are
    accumulated on the upper triangle only)."""
    for p in range(A.shape[0]):
        for q in range(p):
            A[p, q] = A[q, p]


@njit(cache=True)
def _tangent_basis(v):
    """(n, n-1) orthonormal basis of the complement of the unit vector v (Householder)."""
    n = v.shape[0]
    k = 0
    for i in range(n):
        if abs(v[i]) > abs(v[k]):
            k = i
    u = v.copy()
    u[k] += 1.0 if v[k] >= 0.0 else -1.0
    uu = 0.0
    for i in range(n):
        uu += u[i] * u[i]
    B = np.empty((n, n - 1))
    c = 0
    for j in range(n):
        if j == k:
            continue
        for i in range(n):
            B[i, c] = (1.0 if i == j else 0.0) - 2.0 * u[i] * u[j] / uu
        c += 1
    return B


# --- homography --------------------------------------------------------------------------------------
@njit(cache=True)
def _homography_system(h, y1, y2, w, want):
    """Cost and (with want) the 9-parameter normal equations of the transfer error."""
    JtJ = np.zeros((9, 9))
    Jtr = np.zeros(9)
    cost = 0.0
    g = np.empty(9)
    q = np.empty(9)
    for i in range(y1.shape[0]):
        wi = w[i]
        if wi <= 0.0:
            continue
        x, y = y1[i, 0], y1[i, 1]
        p0 = h[0] * x + h[1] * y + h[2]
        p1 = h[3] * x + h[4] * y + h[5]
        p2 = h[6] * x + h[7] * y + h[8]
        if abs(p2) < 1e-12:
            continue
        ip = 1.0 / p2
        u = p0 * ip
        v = p1 * ip
        ru = u - y2[i, 0]
        rv = v - y2[i, 1]
        cost += wi * (ru * ru + rv * rv)
        if want:
            g[0], g[1], g[2] = x * ip, y * ip, ip
            g[3] = g[4] = g[5] = 0.0
            g[6], g[7], g[8] = -u * x * ip, -u * y * ip, -u * ip
            q[0] = q[1] = q[2] = 0.0
            q[3], q[4], q[5] = x * ip, y * ip, ip
            q[6], q[7], q[8] = -v * x * ip, -v * y * ip, -v * ip
            for a in range(9):
                ga = wi * g[a]
                qa = wi * q[a]
                Jtr[a] += ga * ru + qa * rv
                for b in range(a, 9):
                    JtJ[a, b] += ga * g[b] + qa * q[b]
    _mirror_upper(JtJ)
    return cost, JtJ, Jtr


@njit(cache=True)
def _h_system(h, data, want):
    """Transfer-error system in the 8 tangent coordinates of the unit-norm h."""
    y1, y2, w = data
    cost, JtJ9, Jtr9 = _homography_system(h, y1, y2, w, want)
    B = _tangent_basis(h)
    return cost, 0, B.T @ JtJ9 @ B, B.T @ Jtr9, 0.0


@njit(cache=True)
def _h_retract(h, d, data):
    hn = h + _tangent_basis(h) @ d
    return hn / _norm(hn)


@njit(cache=True)
def refine_homography_nb(H, x1, x2, w, max_iter, ftol, xtol, gtol):
    y1, T1 = normalise_points(x1, w)
    y2, T2 = normalise_points(x2, w)
    if T1[2, 2] == 0.0 or T2[2, 2] == 0.0:
        # all weighted points coincide (or no weight): nothing to refine
        c, _, _ = _homography_system(H.ravel().copy(), x1, x2, w, False)
        return H.copy(), 0, c, c
    s2 = T2[0, 0]
    # Hn = T2 H T1^-1
    T1i = np.zeros((3, 3))
    T1i[0, 0] = T1i[1, 1] = 1.0 / T1[0, 0]
    T1i[0, 2] = -T1[0, 2] / T1[0, 0]
    T1i[1, 2] = -T1[1, 2] / T1[1, 1]
    T1i[2, 2] = 1.0
    Hn = matmul3(matmul3(T2, H), T1i)
    h = Hn.ravel().copy()
    h /= _norm(h)
    h, it, cost0, cost = lm_minimise(_h_system, _h_retract, h, (y1, y2, w), max_iter, ftol, xtol, gtol)
    Hr = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            Hr[r, c] = h[3 * r + c]
    # H = T2^-1 Hn T1
    T2i = np.zeros((3, 3))
    T2i[0, 0] = T2i[1, 1] = 1.0 / s2
    T2i[0, 2] = -T2[0, 2] / s2
    T2i[1, 2] = -T2[1, 2] / s2
    T2i[2, 2] = 1.0
    Hp = matmul3(matmul3(T2i, Hr), T1)
    nh = 0.0
    for r in range(3):
        for c in range(3):
            nh += Hp[r, c] * Hp[r, c]
    Hp /= np.sqrt(nh)
    # keep the sign of the input
    dot = 0.0
    for r in range(3):
        for c in range(3):
            dot += Hp[r, c] * H[r, c]
    if dot < 0.0:
        Hp = -Hp
    return Hp, it, cost0 / (s2 * s2), cost / (s2 * s2)


# --- epipolar (Sampson) ------------------------------------------------------------------------------
@njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def _sampson_system(E, y1, y2, w, dE, on_sphere, want):
    """Cost sum w r^2 of the Sampson residuals r = c / sqrt(d) of the points y1, y2 given as
    columns (3, N), and (with want) the normal equations for the parameters whose dE/dp are the
    rows of dE (P, 9). Branch-free loops over the columns run on SIMD lanes (4x the speed of a
    per-point accumulation); the sums are reassociated, so results move at rounding level."""
    n = y1.shape[1]
    P = dE.shape[0]
    e00, e01, e02, e10, e11, e12, e20, e21, e22 = (E[0, 0], E[0, 1], E[0, 2], E[1, 0], E[1, 1], E[1, 2],
                                                   E[2, 0], E[2, 1], E[2, 2])
    G = np.empty((9, n if want else 0))  # sqrt(w) dr/dE per point
    rs = np.empty(n)  # sqrt(w) r
    cost = 0.0
    for i in range(n):
        x0, x1_, x2_ = y1[0, i], y1[1, i], y1[2, i]
        z0, z1, z2 = y2[0, i], y2[1, i], y2[2, i]
        a0 = e00 * x0 + e01 * x1_ + e02 * x2_
        a1 = e10 * x0 + e11 * x1_ + e12 * x2_
        a2 = e20 * x0 + e21 * x1_ + e22 * x2_
        b0 = e00 * z0 + e10 * z1 + e20 * z2
        b1 = e01 * z0 + e11 * z1 + e21 * z2
        b2 = e02 * z0 + e12 * z1 + e22 * z2
        c = z0 * a0 + z1 * a1 + z2 * a2
        if on_sphere:
            d = a0 * a0 + a1 * a1 + a2 * a2 + b0 * b0 + b1 * b1 + b2 * b2 - 2.0 * c * c
        else:
            d = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
        ok = d > 1e-300 and w[i] > 0.0
        sw = np.sqrt(w[i]) if ok else 0.0
        isd = 1.0 / np.sqrt(d if ok else 1.0)
        r = c * isd * sw
        cost += r * r
        rs[i] = r
        if not want:
            continue
        # dr/dE_jk = z_j x_k / sqrt(d) - c / (2 d^1.5) dd/dE_jk with dd/dE_jk = 2 a_j x_k + 2 b_k z_j
        # (- 4 c z_j x_k on the sphere; on the plane without the j = 2 and k = 2 terms), i.e.
        # dr/dE_jk = x_k u_j - B_k z_j
        h2 = c * isd * isd * isd
        if on_sphere:
            sc = isd + 2.0 * h2 * c
            A2, B2 = h2 * a2, h2 * b2
        else:
            sc = isd
            A2, B2 = 0.0, 0.0
        u0 = (z0 * sc - h2 * a0) * sw
        u1 = (z1 * sc - h2 * a1) * sw
        u2 = (z2 * sc - A2) * sw
        B0 = h2 * b0 * sw
        B1 = h2 * b1 * sw
        B2 = B2 * sw
        G[0, i] = x0 * u0 - B0 * z0
        G[1, i] = x1_ * u0 - B1 * z0
        G[2, i] = x2_ * u0 - B2 * z0
        G[3, i] = x0 * u1 - B0 * z1
        G[4, i] = x1_ * u1 - B1 * z1
        G[5, i] = x2_ * u1 - B2 * z1
        G[6, i] = x0 * u2 - B0 * z2
        G[7, i] = x1_ * u2 - B1 * z2
        G[8, i] = x2_ * u2 - B2 * z2
    JtJ = np.zeros((P, P))
    Jtr = np.zeros(P)
    if not want:
        return cost, JtJ, Jtr
    J = np.empty((P, n))
    for p in range(P):
        d0, d1, d2, d3, d4 = dE[p, 0], dE[p, 1], dE[p, 2], dE[p, 3], dE[p, 4]
        d5, d6, d7, d8 = dE[p, 5], dE[p, 6], dE[p, 7], dE[p, 8]
        s = 0.0
        for i in range(n):
            v = (G[0, i] * d0 + G[1, i] * d1 + G[2, i] * d2 + G[3, i] * d3 + G[4, i] * d4 + G[5, i] * d5
                 + G[6, i] * d6 + G[7, i] * d7 + G[8, i] * d8)
            J[p, i] = v
            s += v * rs[i]
        Jtr[p] = s
    for p in range(P):
        for q in range(p, P):
            s = 0.0
            for i in range(n):
                s += J[p, i] * J[q, i]
            JtJ[p, q] = s
            JtJ[q, p] = s
    return cost, JtJ, Jtr


@njit(cache=True)
def _hat_times(k, M, left):
    """[e_k]_x M (left) or M [e_k]_x (not left)."""
    S = np.zeros((3, 3))
    if k == 0:
        S[1, 2] = -1.0
        S[2, 1] = 1.0
    elif k == 1:
        S[0, 2] = 1.0
        S[2, 0] = -1.0
    else:
        S[0, 1] = -1.0
        S[1, 0] = 1.0
    return matmul3(S, M) if left else matmul3(M, S)


@njit(cache=True)
def _F_from_factors(U, s, V):
    F = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            F[i, j] = U[i, 0] * V[j, 0] + s * U[i, 1] * V[j, 1]
    return F


@njit(cache=True)
def _fundamental_jacobian(U, s, V, dE):
    """Rows of dE (7, 9) for F = U diag(1, s, 0) V^T with U <- U Exp(du), V <- V Exp(dv),
    s <- s + ds: U [e_k]_x S V^T, -U S [e_k]_x V^T and U e2 e2^T V^T."""
    Sd = np.zeros((3, 3))
    Sd[0, 0] = 1.0
    Sd[1, 1] = s
    Vt_ = V.T.copy()
    SVt = matmul3(Sd, Vt_)
    US = matmul3(U, Sd)
    for k in range(3):
        Du = matmul3(U, _hat_times(k, SVt, True))
        Dv = matmul3(_hat_times(k, US, False), Vt_)
        for m in range(9):
            dE[k, m] = Du[m // 3, m % 3]
            dE[3 + k, m] = -Dv[m // 3, m % 3]
    for m in range(9):
        dE[6, m] = U[m // 3, 1] * V[m % 3, 1]


@njit(cache=True)
def _f_system(x, data, want):
    """Sampson system of F = U diag(1, s, 0) V^T, x = (U (9), V (9), s); 7 local coordinates."""
    y1, y2, w, dE = data
    U = x[:9].reshape(3, 3)
    V = x[9:18].reshape(3, 3)
    if want:
        _fundamental_jacobian(U, x[18], V, dE)
    cost, JtJ, Jtr = _sampson_system(_F_from_factors(U, x[18], V), y1, y2, w, dE, False, want)
    return cost, 0, JtJ, Jtr, abs(x[18])


@njit(cache=True)
def _f_retract(x, d, data):
    xn = np.empty(19)
    xn[:9] = matmul3(x[:9].reshape(3, 3), so3_exp(d[0], d[1], d[2])).ravel()
    xn[9:18] = matmul3(x[9:18].reshape(3, 3), so3_exp(d[3], d[4], d[5])).ravel()
    xn[18] = x[18] + d[6]
    return xn


@njit(cache=True)
def refine_fundamental_nb(F, x1, x2, w, max_iter, ftol, xtol, gtol):
    # normalise both images with one common scale so that Sampson errors scale uniformly
    n = x1.shape[0]
    _, T1 = normalise_points(x1, w)
    _, T2 = normalise_points(x2, w)
    if T1[2, 2] == 0.0 or T2[2, 2] == 0.0:
        # all weighted points coincide (or no weight): nothing to refine
        h1 = np.ones((3, n))
        h2 = np.ones((3, n))
        h1[:2] = x1.T
        h2[:2] = x2.T
        c, _, _ = _sampson_system(F, h1, h2, w, np.zeros((0, 9)), False, False)
        return F.copy(), 0, c, c
    sc = np.sqrt(T1[0, 0] * T2[0, 0])
    c1x, c1y = -T1[0, 2] / T1[0, 0], -T1[1, 2] / T1[1, 1]
    c2x, c2y = -T2[0, 2] / T2[0, 0], -T2[1, 2] / T2[1, 1]
    y1 = np.empty((3, n))  # columns: the vectorised Sampson system reads them on SIMD lanes
    y2 = np.empty((3, n))
    for i in range(n):
        y1[0, i] = sc * (x1[i, 0] - c1x)
        y1[1, i] = sc * (x1[i, 1] - c1y)
        y1[2, i] = 1.0
        y2[0, i] = sc * (x2[i, 0] - c2x)
        y2[1, i] = sc * (x2[i, 1] - c2y)
        y2[2, i] = 1.0
    # Fn = A2^-T F A1^-1 with A = [[sc, 0, -sc c], [0, sc, -sc c], [0, 0, 1]]
    A1i = np.zeros((3, 3))
    A1i[0, 0] = A1i[1, 1] = 1.0 / sc
    A1i[0, 2] = c1x
    A1i[1, 2] = c1y
    A1i[2, 2] = 1.0
    A2i = np.zeros((3, 3))
    A2i[0, 0] = A2i[1, 1] = 1.0 / sc
    A2i[0, 2] = c2x
    A2i[1, 2] = c2y
    A2i[2, 2] = 1.0
    Fn = matmul3(matmul3(A2i.T.copy(), F), A1i)
    U, S, Vt = svd(Fn)
    if not S[0] > 0.0:
        return F.copy(), 0, np.nan, np.nan
    V = Vt.T.copy()
    if det3(U) < 0.0:
        U = -U
    if det3(V) < 0.0:
        V = -V
    x = np.empty(19)
    x[:9] = U.ravel()
    x[9:18] = V.ravel()
    x[18] = S[1] / S[0]
    x, it, cost0, cost = lm_minimise(_f_system, _f_retract, x, (y1, y2, w, np.empty((7, 9))), max_iter, ftol, xtol,
                                     gtol)
    E = _F_from_factors(x[:9].reshape(3, 3), x[18], x[9:18].reshape(3, 3))
    Fp = matmul3(matmul3(_inv_T(A2i).T.copy(), E), _inv_T(A1i))
    nf = 0.0
    for r in range(3):
        for c in range(3):
            nf += Fp[r, c] * Fp[r, c]
    Fp /= np.sqrt(nf)
    dot = 0.0
    for r in range(3):
        for c in range(3):
            dot += Fp[r, c] * F[r, c]
    if dot < 0.0:
        Fp = -Fp
    s2 = sc * sc
    return Fp, it, cost0 / s2, cost / s2


@njit(cache=True)
def _inv_T(Ai):
    """Inverse of [[1/s, 0, cx], [0, 1/s, cy], [0, 0, 1]]."""
    A = np.zeros((3, 3))
    s = 1.0 / Ai[0, 0]
    A[0, 0] = A[1, 1] = s
    A[0, 2] = -s * Ai[0, 2]
    A[1, 2] = -s * Ai[1, 2]
    A[2, 2] = 1.0
    return A


# --- relative pose -----------------------------------------------------------------------------------
@njit(cache=True)
def _essential_jacobian(R, t, Bt, dE):
    """Rows of dE (5, 9): dE/d dw_k = [t]_x R [e_k]_x and dE/d dt_j = [B_j]_x R."""
    E = essential_from_pose_nb(R, t)
    for k in range(3):
        D = _hat_times(k, E, False)
        for m in range(9):
            dE[k, m] = D[m // 3, m % 3]
    for j in range(2):
        D = matmul3(hat_nb(Bt[:, j]), R)
        for m in range(9):
            dE[3 + j, m] = D[m // 3, m % 3]
    return E


@njit(cache=True)
def _rel_system(x, data, want):
    """Sampson system of E = [t]_x R, x = (R (9), unit t (3)); 5 local coordinates."""
    y1, y2, w, dE, on_sphere = data
    t = x[9:].copy()
    E = _essential_jacobian(x[:9].reshape(3, 3), t, _tangent_basis(t), dE)
    cost, JtJ, Jtr = _sampson_system(E, y1, y2, w, dE, on_sphere, want)
    return cost, 0, JtJ, Jtr, 0.0


@njit(cache=True)
def _rel_retract(x, d, data):
    t = x[9:].copy()
    Bt = _tangent_basis(t)
    xn = np.empty(12)
    xn[:9] = matmul3(x[:9].reshape(3, 3), so3_exp(d[0], d[1], d[2])).ravel()
    tn = t + Bt[:, 0] * d[3] + Bt[:, 1] * d[4]
    xn[9:] = tn / _norm(tn)
    return xn


@njit(cache=True)
def refine_relative_pose_nb(R, t, rays1, rays2, w, on_sphere, max_iter, ftol, xtol, gtol):
    n = rays1.shape[0]
    y1 = np.empty((3, n))  # columns for the vectorised Sampson system
    y2 = np.empty((3, n))
    for i in range(n):
        if on_sphere:
            d1 = np.sqrt(rays1[i, 0] ** 2 + rays1[i, 1] ** 2 + rays1[i, 2] ** 2)
            d2 = np.sqrt(rays2[i, 0] ** 2 + rays2[i, 1] ** 2 + rays2[i, 2] ** 2)
        else:
            d1 = rays1[i, 2]
            d2 = rays2[i, 2]
        for k in range(3):
            y1[k, i] = rays1[i, k] / d1
            y2[k, i] = rays2[i, k] / d2
    x = np.empty(12)
    x[:9] = R.ravel()
    x[9:] = t / _norm(t)
    x, it, cost0, cost = lm_minimise(_rel_system, _rel_retract, x, (y1, y2, w, np.empty((5, 9)), on_sphere),
                                     max_iter, ftol, xtol, gtol)
    return x[:9].reshape(3, 3).copy(), x[9:].copy(), it, cost0, cost


# --- absolute pose -----------------------------------------------------------------------------------
@njit(inline="always")
def _transform(R, t, x0, x1, x2):
    """R (x0, x1, x2) + t as three scalars."""
    return (R[0, 0] * x0 + R[0, 1] * x1 + R[0, 2] * x2 + t[0],
            R[1, 0] * x0 + R[1, 1] * x1 + R[1, 2] * x2 + t[1],
            R[2, 0] * x0 + R[2, 1] * x1 + R[2, 2] * x2 + t[2])


@njit(inline="always")
def _add_pose_rows(J_X, R, x0, x1, x2, wi, ru, rv, J, JtJ, Jtr):
    """Add one observation's weighted rows to the normal equations of (dw, dt) for the pose
    X_c = R Exp(dw) X + t (dX_c/d dw = -R [X]_x, dX_c/dt = I), given J_X = d(ru, rv)/dX_c (2,3)."""
    for a in range(2):
        for b in range(3):
            J[a, 3 + b] = J_X[a, b]
        # row a of J_X (-R [X]_x) is -m^T [X]_x with m = R^T J_X[a]
        m0 = J_X[a, 0] * R[0, 0] + J_X[a, 1] * R[1, 0] + J_X[a, 2] * R[2, 0]
        m1 = J_X[a, 0] * R[0, 1] + J_X[a, 1] * R[1, 1] + J_X[a, 2] * R[2, 1]
        m2 = J_X[a, 0] * R[0, 2] + J_X[a, 1] * R[1, 2] + J_X[a, 2] * R[2, 2]
        J[a, 0] = m2 * x1 - m1 * x2
        J[a, 1] = m0 * x2 - m2 * x0
        J[a, 2] = m1 * x0 - m0 * x1
    for p in range(6):
        jp0 = wi * J[0, p]
        jp1 = wi * J[1, p]
        Jtr[p] += jp0 * ru + jp1 * rv
        for q in range(p, 6):
            JtJ[p, q] += jp0 * J[0, q] + jp1 * J[1, q]


@njit(cache=True)
def _absolute_system(R, t, uv, X, model_id, params, w, want):
    """(cost, number of points in front, JtJ (6,6), Jtr (6,)) of the reprojection error."""
    JtJ = np.zeros((6, 6))
    Jtr = np.zeros(6)
    J_X = np.empty((2, 3))
    J_p = np.zeros((2, params.shape[0]))
    J = np.empty((2, 6))
    cost = 0.0
    valid = 0
    for i in range(X.shape[0]):
        wi = w[i]
        if wi <= 0.0:
            continue
        x0, x1, x2 = X[i, 0], X[i, 1], X[i, 2]
        c0, c1, c2 = _transform(R, t, x0, x1, x2)
        u, v = project_one(model_id, params, c0, c1, c2, want, J_X, J_p)
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        valid += 1
        ru = u - uv[i, 0]
        rv = v - uv[i, 1]
        cost += wi * (ru * ru + rv * rv)
        if not want:
            continue
        _add_pose_rows(J_X, R, x0, x1, x2, wi, ru, rv, J, JtJ, Jtr)
    _mirror_upper(JtJ)
    return cost, valid, JtJ, Jtr


@njit(cache=True)
def _absolute_rays_system(R, t, rays, X, f2, w, want):
    """(cost, points in front, JtJ (6,6), Jtr (6,)) of the focal-scaled error on the z = 1 plane,
    f^2 |(X_c / z_c) - ray|^2 with f2 = (fx^2, fy^2): the pixel error of an undistorted camera."""
    JtJ = np.zeros((6, 6))
    Jtr = np.zeros(6)
    J = np.empty((2, 6))
    J_X = np.zeros((2, 3))
    fx = np.sqrt(f2[0])
    fy = np.sqrt(f2[1])
    cost = 0.0
    valid = 0
    for i in range(X.shape[0]):
        wi = w[i]
        if wi <= 0.0:
            continue
        x0, x1, x2 = X[i, 0], X[i, 1], X[i, 2]
        c0, c1, c2 = _transform(R, t, x0, x1, x2)
        if not c2 > 0.0:
            continue
        valid += 1
        iz = 1.0 / c2
        ru = fx * (c0 * iz - rays[i, 0])
        rv = fy * (c1 * iz - rays[i, 1])
        cost += wi * (ru * ru + rv * rv)
        if not want:
            continue
        # d(ru, rv)/dX_c: fx (1/z, 0, -x/z^2) and fy (0, 1/z, -y/z^2)
        J_X[0, 0] = fx * iz
        J_X[0, 2] = -fx * c0 * iz * iz
        J_X[1, 1] = fy * iz
        J_X[1, 2] = -fy * c1 * iz * iz
        _add_pose_rows(J_X, R, x0, x1, x2, wi, ru, rv, J, JtJ, Jtr)
    _mirror_upper(JtJ)
    return cost, valid, JtJ, Jtr


@njit(cache=True)
def _abs_system(x, data, want):
    """Reprojection system of x = (R (9), t (3)) with R <- R Exp(dw), t <- t + dt."""
    uv, X, model_id, params, w = data
    t = x[9:].copy()
    cost, valid, JtJ, Jtr = _absolute_system(x[:9].reshape(3, 3), t, uv, X, model_id, params, w, want)
    return cost, valid, JtJ, Jtr, _norm(t)


@njit(cache=True)
def _abs_retract(x, d, data):
    xn = np.empty(12)
    xn[:9] = matmul3(x[:9].reshape(3, 3), so3_exp(d[0], d[1], d[2])).ravel()
    for k in range(3):
        xn[9 + k] = x[9 + k] + d[3 + k]
    return xn


@njit(cache=True)
def refine_absolute_pose_nb(R, t, uv, X, model_id, params, w, max_iter, ftol, xtol, gtol):
    x = np.empty(12)
    x[:9] = R.ravel()
    x[9:] = t
    x, it, cost0, cost = lm_minimise(_abs_system, _abs_retract, x, (uv, X, model_id, params, w), max_iter, ftol,
                                     xtol, gtol)
    return x[:9].reshape(3, 3).copy(), x[9:].copy(), it, cost0, cost


@njit(cache=True)
def _abs_rays_system(x, data, want):
    rays, X, f2, w = data
    t = x[9:].copy()
    cost, valid, JtJ, Jtr = _absolute_rays_system(x[:9].reshape(3, 3), t, rays, X, f2, w, want)
    return cost, valid, JtJ, Jtr, _norm(t)


@njit(cache=True)
def refine_absolute_pose_rays_nb(R, t, rays, X, f2, w, max_iter, ftol, xtol, gtol):
    """``refine_absolute_pose_nb`` on undistorted rays (z = 1) with the focal-scaled error of
    ``_absolute_rays_system``: exact pixels for pinhole cameras without skew, the error the RANSAC
    engine scores with for the others, and 3-4x cheaper than going through the camera model."""
    x = np.empty(12)
    x[:9] = R.ravel()
    x[9:] = t
    x, it, cost0, cost = lm_minimise(_abs_rays_system, _abs_retract, x, (rays, X, f2, w), max_iter, ftol, xtol,
                                     gtol)
    return x[:9].reshape(3, 3).copy(), x[9:].copy(), it, cost0, cost


# --- Python API -------------------------------------------------------------------------------------
def _options(max_iterations, function_tolerance, step_tolerance, gradient_tolerance):
    return (
        check_int(max_iterations, "max_iterations", minimum=0),
        check_positive(function_tolerance, "function_tolerance", allow_zero=True),
        check_positive(step_tolerance, "step_tolerance", allow_zero=True),
        check_positive(gradient_tolerance, "gradient_tolerance", allow_zero=True),
    )


def _refine_matrix(kernel, name: str, M, x1, x2, weights, opts) -> tuple[np.ndarray, RefineInfo]:
    """Checked inputs of a two-view 3x3 matrix refiner, run through its numba ``kernel``."""
    M = as_array(M, name, (3, 3))
    a, b = point_pair(x1, x2, 2, minimum=1)
    w = weights_of(weights, len(a))
    if not np.linalg.norm(M) > 0:
        raise ValueError(f"{name} must not be all zeros")
    Mr, it, c0, c1 = kernel(M, a, b, w, *opts)
    return Mr, RefineInfo(int(it), float(c0), float(c1))


def refine_homography(
    H: np.ndarray,
    x1: np.ndarray,
    x2: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_iterations: int = 100,
    function_tolerance: float = 1e-12,
    step_tolerance: float = 1e-12,
    gradient_tolerance: float = 1e-14,
) -> tuple[np.ndarray, RefineInfo]:
    """Refine H (x2 ~ H x1) on the one-sided transfer error sum w |x2 - H(x1)|^2 (pixels^2).

    Returns ``(H (unit Frobenius norm, sign of the input), RefineInfo)``.

    Options: ``max_iterations`` (default 100), ``function_tolerance`` (relative cost decrease,
    1e-12), ``step_tolerance`` (relative step, 1e-12), ``gradient_tolerance`` (gradient max-norm
    relative to the cost, 1e-14).
    """
    opts = _options(max_iterations, function_tolerance, step_tolerance, gradient_tolerance)
    return _refine_matrix(refine_homography_nb, "H", H, x1, x2, weights, opts)


def refine_fundamental(
    F: np.ndarray,
    x1: np.ndarray,
    x2: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_iterations: int = 100,
    function_tolerance: float = 1e-12,
    step_tolerance: float = 1e-12,
    gradient_tolerance: float = 1e-14,
) -> tuple[np.ndarray, RefineInfo]:
    """Refine F (x2^T F x1 = 0) on the Sampson error (pixels^2), keeping rank 2 through the
    orthonormal representation F = U diag(1, s, 0) V^T.

    Returns ``(F (rank 2, unit Frobenius norm), RefineInfo)``.

    Options: ``max_iterations`` (default 100), ``function_tolerance`` (relative cost decrease,
    1e-12), ``step_tolerance`` (relative step, 1e-12), ``gradient_tolerance`` (gradient max-norm
    relative to the cost, 1e-14).
    """
    opts = _options(max_iterations, function_tolerance, step_tolerance, gradient_tolerance)
    return _refine_matrix(refine_fundamental_nb, "F", F, x1, x2, weights, opts)


def refine_relative_pose(
    cam2_from_cam1: Rigid3,
    rays1: np.ndarray,
    rays2: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    error: str = "auto",
    max_iterations: int = 100,
    function_tolerance: float = 1e-12,
    step_tolerance: float = 1e-12,
    gradient_tolerance: float = 1e-14,
) -> tuple[Rigid3, RefineInfo]:
    """Refine a relative pose (5 dof: rotation and unit translation) on the Sampson error of
    E = [t]_x R.

    ``error``: ``"plane"`` — Sampson error on the z = 1 plane (the first-order image error of
    pinhole cameras, in normalised units: multiply by f^2 for pixels^2; needs z > 0);
    ``"sphere"`` — Sampson error in the tangent planes of unit bearings (any direction, e.g.
    fisheye beyond 90 degrees); ``"auto"`` — plane when every ray is within 80 degrees of the
    optical axis, sphere otherwise. Plane is the default because pixel noise of a pinhole camera
    is isotropic there: on 150 synthetic pinhole pairs with 0.5 px noise (f = 300 and 800 px) its
    median pose error was 2-6 % lower than the sphere's. Returns ``(cam2_from_cam1 with unit t,
    RefineInfo)``.

    Options: ``max_iterations`` (default 100), ``function_tolerance`` (relative cost decrease,
    1e-12), ``step_tolerance`` (relative step, 1e-12), ``gradient_tolerance`` (gradient max-norm
    relative to the cost, 1e-14).
    """
    if not isinstance(cam2_from_cam1, Rigid3):
        raise ValueError("cam2_from_cam1 must be a Rigid3")
    if not np.linalg.norm(cam2_from_cam1.t) > 0:
        raise ValueError("cam2_from_cam1.t must be non-zero (the translation direction is refined)")
    a, b = point_pair(rays1, rays2, 3, minimum=1)
    check_rays(a, "rays1")
    check_rays(b, "rays2")
    w = weights_of(weights, len(a))
    opts = _options(max_iterations, function_tolerance, step_tolerance, gradient_tolerance)
    if error not in ("auto", "plane", "sphere"):
        raise ValueError(f"error must be 'auto', 'plane' or 'sphere', got {error!r}")
    cos_z = np.minimum(a[:, 2] / np.linalg.norm(a, axis=1), b[:, 2] / np.linalg.norm(b, axis=1))
    if error == "plane" and not (cos_z > 1e-9).all():
        raise ValueError("rays1/rays2: error='plane' needs every ray in front of its camera (z > 0); use 'sphere'")
    on_sphere = error == "sphere" or (error == "auto" and not (cos_z > np.cos(np.radians(80.0))).all())
    R, t, it, c0, c1 = refine_relative_pose_nb(cam2_from_cam1.R, cam2_from_cam1.t, a, b, w, on_sphere, *opts)
    return Rigid3(R, t, check=False), RefineInfo(int(it), float(c0), float(c1))


def refine_absolute_pose(
    cam_from_world: Rigid3,
    uv: np.ndarray,
    X_world: np.ndarray,
    camera: Camera,
    weights: np.ndarray | None = None,
    *,
    max_iterations: int = 100,
    function_tolerance: float = 1e-12,
    step_tolerance: float = 1e-12,
    gradient_tolerance: float = 1e-14,
) -> tuple[Rigid3, RefineInfo]:
    """Refine ``cam_from_world`` on the pixel reprojection error sum w |project(X) - uv|^2
    through ``camera`` (any model, with distortion). Points behind the camera do not count
    and a step may not move a point behind it.

    Returns ``(cam_from_world, RefineInfo)`` (costs in pixels^2).

    Options: ``max_iterations`` (default 100), ``function_tolerance`` (relative cost decrease,
    1e-12), ``step_tolerance`` (relative step, 1e-12), ``gradient_tolerance`` (gradient max-norm
    relative to the cost, 1e-14).
    """
    if not isinstance(cam_from_world, Rigid3):
        raise ValueError("cam_from_world must be a Rigid3")
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geomvision Camera, got {type(camera).__name__}")
    uv = as_array(uv, "uv", (None, 2))
    X = as_array(X_world, "X_world", (None, 3))
    check_same_length(uv=uv, X_world=X)
    w = weights_of(weights, len(uv))
    opts = _options(max_iterations, function_tolerance, step_tolerance, gradient_tolerance)
    R, t, it, c0, c1 = refine_absolute_pose_nb(
        cam_from_world.R, cam_from_world.t, uv, X, camera.model_id, camera.params, w, *opts
    )
    return Rigid3(R, t, check=False), RefineInfo(int(it), float(c0), float(c1))
