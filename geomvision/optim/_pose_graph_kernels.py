"""numba kernels of pose-graph optimisation: per-edge errors and Jacobians, block normal equations.

Node state (flat arrays, one row per node): ``R`` (N,m,m) and ``t`` (N,m) of ``world_from_node``
(m = 3, or 2 in SE(2)) and ``s`` (N,) its scale (Sim(3); ones otherwise). A node's tangent
vector and the edge error share one order (see ``scene/pose_graph.py``):

    SE(3)  [dt (3), dw (3)]          T <- T Exp([dt, dw]): t <- t + R V(dw) dt, R <- R Exp(dw)
    SE(2)  [dt (2), dtheta]          the same in the plane
    Sim(3) [dt (3), dw (3), dsigma]  as SE(3), and s <- s exp(dsigma)

(steps in the node's own frame). With ``v = R_i^T (t_j - t_i)`` and the measurement
``(s_z, R_z, t_z)`` the Jacobians at h = 0 are

    de_t/dt_i = -R_z^T / (s_i s_z)          de_t/dt_j = R_z^T R_i^T R_j / (s_i s_z)
    de_t/dw_i = R_z^T [v]_x / (s_i s_z)     (SE(2): -R_z^T S v with S = [[0,-1],[1,0]])
    de_t/dsigma_i = -R_z^T v / (s_i s_z)
    de_r/dw_i = -Jr^-1(e_r) R_j^T R_i       de_r/dw_j = Jr^-1(e_r)   (SE(2): -1 and 1)
    de_s/dsigma_i = -1                      de_s/dsigma_j = 1

Each edge is whitened by ``S_k`` (``S_k^T S_k = information_k``) and reweighted by the robust
loss (``losses.loss_rho`` on the squared norm, IRLS as in bundle adjustment). Its blocks are
added to ``Hb`` (one d x d block per free node, then one per linked pair of free nodes) and to the
gradient ``g`` (F*d,) of the free nodes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..geometry._rotation_kernels import (hat_nb, so3_exp_into, so3_left_jacobian, so3_log_into,
                                          so3_right_jacobian_inverse)
from .losses import loss_rho

SE3 = 0
SE2 = 1
SIM3 = 2


@njit(cache=True)
def edge_error_jacobians(kind, R, t, s, i, j, Rz, tz, sz, e, Ai, Aj, want_jac):
    """Error e (d,) of one edge and, with ``want_jac``, its Jacobians Ai, Aj (d,d) (module docstring)."""
    m = t.shape[1]
    Ri = R[i]
    Rj = R[j]
    k = 1.0 / (s[i] * sz)
    # v = R_i^T (t_j - t_i); u = R_z^T v
    v = np.zeros(3)
    for a in range(m):
        acc = 0.0
        for b in range(m):
            acc += Ri[b, a] * (t[j, b] - t[i, b])
        v[a] = acc
    for a in range(m):
        acc = 0.0
        for b in range(m):
            acc += Rz[b, a] * (v[b] / s[i] - tz[b])
        e[a] = acc / sz
    # R_D = R_z^T R_i^T R_j
    RiRj = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            acc = 0.0
            for c in range(m):
                acc += Ri[c, a] * Rj[c, b]
            RiRj[a, b] = acc
    RD = np.zeros((m, m))
    for a in range(m):
        for b in range(m):
            acc = 0.0
            for c in range(m):
                acc += Rz[c, a] * RiRj[c, b]
            RD[a, b] = acc
    if kind == SE2:
        e[2] = np.arctan2(RD[1, 0], RD[0, 0])
    else:
        er = np.empty(3)
        so3_log_into(RD, er)
        e[3], e[4], e[5] = er[0], er[1], er[2]
        if kind == SIM3:
            e[6] = np.log(s[j] / (s[i] * sz))
    if not want_jac:
        return
    d = e.shape[0]
    for a in range(d):
        for b in range(d):
            Ai[a, b] = 0.0
            Aj[a, b] = 0.0
    # translation rows (body-frame steps t <- t + R dt): de_t/dt_i = -k R_z^T, de_t/dt_j = k R_z^T R_i^T R_j
    for a in range(m):
        for b in range(m):
            Ai[a, b] = -k * Rz[b, a]
            acc = 0.0
            for c in range(m):
                acc += Rz[c, a] * RiRj[c, b]
            Aj[a, b] = k * acc
    if kind == SE2:
        # de_t/dtheta_i = -k R_z^T S v,  S v = (-v1, v0)
        Ai[0, 2] = -k * (Rz[0, 0] * (-v[1]) + Rz[1, 0] * v[0])
        Ai[1, 2] = -k * (Rz[0, 1] * (-v[1]) + Rz[1, 1] * v[0])
        Ai[2, 2] = -1.0
        Aj[2, 2] = 1.0
        return
    # de_t/dw_i = k R_z^T [v]x
    vx = hat_nb(v)
    for a in range(3):
        for b in range(3):
            acc = 0.0
            for c in range(3):
                acc += Rz[c, a] * vx[c, b]
            Ai[a, 3 + b] = k * acc
    Jinv = np.empty((3, 3))
    so3_right_jacobian_inverse(e[3:6], Jinv)
    # de_r/dw_i = -Jr^-1 R_j^T R_i = -Jr^-1 (R_i^T R_j)^T
    for a in range(3):
        for b in range(3):
            acc = 0.0
            for c in range(3):
                acc += Jinv[a, c] * RiRj[b, c]
            Ai[3 + a, 3 + b] = -acc
            Aj[3 + a, 3 + b] = Jinv[a, b]
    if kind == SIM3:
        for a in range(3):
            acc = 0.0
            for c in range(3):
                acc += Rz[c, a] * v[c]
            Ai[a, 6] = -k * acc
        Ai[6, 6] = -1.0
        Aj[6, 6] = 1.0


@njit(cache=True)
def accumulate(kind, R, t, s, ri, rj, Rz, tz, sz, sqrt_info, active, loss_id, loss_scale,
               free_row, blk_ij, want_jac, Hb, g, chi2):
    """Cost 0.5 sum rho(|S e|^2) over active edges; per-edge chi2 = |S e|^2 (E,) always;
    with ``want_jac`` the blocks of J^T J into Hb (zeroed here) and J^T r into g (zeroed here).

    ``free_row`` (N,): the free index of each node (-1 fixed); diagonal block of free node f is
    Hb[f]; ``blk_ij[k]`` the off-diagonal block of edge k, which holds the coupling of the rows
    (min(f_i, f_j), max(f_i, f_j)); -1 when either node is fixed."""
    E = ri.shape[0]
    d = sqrt_info.shape[1]
    if want_jac:
        Hb[:] = 0.0
        g[:] = 0.0
    e = np.empty(d)
    Ai = np.empty((d, d))
    Aj = np.empty((d, d))
    r = np.empty(d)
    Bi = np.empty((d, d))
    Bj = np.empty((d, d))
    cost = 0.0
    for k in range(E):
        edge_error_jacobians(kind, R, t, s, ri[k], rj[k], Rz[k], tz[k], sz[k], e, Ai, Aj, want_jac)
        S = sqrt_info[k]
        sq = 0.0
        for a in range(d):
            acc = 0.0
            for b in range(d):
                acc += S[a, b] * e[b]
            r[a] = acc
            sq += acc * acc
        chi2[k] = sq
        if not active[k]:
            continue
        rho, d1 = loss_rho(loss_id, loss_scale, sq)
        cost += 0.5 * rho
        if not want_jac:
            continue
        wsq = np.sqrt(d1)
        fi = free_row[ri[k]]
        fj = free_row[rj[k]]
        for a in range(d):
            r[a] *= wsq
            for b in range(d):
                acc_i = 0.0
                acc_j = 0.0
                for c in range(d):
                    acc_i += S[a, c] * Ai[c, b]
                    acc_j += S[a, c] * Aj[c, b]
                Bi[a, b] = wsq * acc_i
                Bj[a, b] = wsq * acc_j
        if fi >= 0:
            _add_AtB(Bi, Bi, Hb[fi])
            _add_Atr(Bi, r, g, fi * d)
        if fj >= 0:
            _add_AtB(Bj, Bj, Hb[fj])
            _add_Atr(Bj, r, g, fj * d)
        b_ij = blk_ij[k]
        if b_ij >= 0:  # the block of the pair (min, max) of the two free rows
            if fi < fj:
                _add_AtB(Bi, Bj, Hb[b_ij])
            else:
                _add_AtB(Bj, Bi, Hb[b_ij])
    return cost


@njit(cache=True, inline="always")
def _add_AtB(A, B, out):
    d = A.shape[0]
    for a in range(d):
        for b in range(d):
            acc = 0.0
            for c in range(d):
                acc += A[c, a] * B[c, b]
            out[a, b] += acc


@njit(cache=True, inline="always")
def _add_Atr(A, r, g, off):
    d = A.shape[0]
    for a in range(d):
        acc = 0.0
        for c in range(d):
            acc += A[c, a] * r[c]
        g[off + a] += acc


@njit(cache=True)
def scatter_csr(Hb, blk_row, blk_col, pos_ab, pos_ba, indptr_b, lam, min_diag, max_diag, vals, diag):
    """Write the blocks Hb (B,d,d) into the CSR data ``vals`` of the full symmetric matrix
    (block (a, b) at block-CSR position pos_ab, its transpose at pos_ba), then add
    ``lam * clip(diag(H), min_diag, max_diag)`` to the diagonal; ``diag`` (F*d,) receives that
    clipped diagonal (the LM scaling D)."""
    B, d, _ = Hb.shape
    for k in range(B):
        a = blk_row[k]
        b = blk_col[k]
        nb_a = indptr_b[a + 1] - indptr_b[a]
        nb_b = indptr_b[b + 1] - indptr_b[b]
        base_a = d * d * indptr_b[a]
        off_a = (pos_ab[k] - indptr_b[a]) * d
        for r in range(d):
            row0 = base_a + r * d * nb_a + off_a
            for c in range(d):
                vals[row0 + c] = Hb[k, r, c]
        if a != b:
            base_b = d * d * indptr_b[b]
            off_b = (pos_ba[k] - indptr_b[b]) * d
            for c in range(d):
                row0 = base_b + c * d * nb_b + off_b
                for r in range(d):
                    vals[row0 + r] = Hb[k, r, c]
        else:
            for r in range(d):
                p = base_a + r * d * nb_a + off_a + r
                dv = min(max(Hb[k, r, r], min_diag), max_diag)
                diag[a * d + r] = dv
                vals[p] += lam * dv


@njit(cache=True)
def retract(kind, R, t, s, free_row, h, R_out, t_out, s_out):
    """x (+) h for every free node: T <- T Exp(h) with the group's exponential (SE(3), SE(2);
    Sim(3): the SE(3) exponential and s <- s exp(dsigma)); fixed nodes are copied.

    The exponential moves t by R V(w) dt (V the left Jacobian of SO(3) / SO(2)): a rigid motion of
    a whole sub-graph is then a straight line in the step, so Gauss-Newton follows the flat
    valleys of badly conditioned graphs in a few steps (parking-garage: 17 -> 6 iterations)."""
    N = R.shape[0]
    m = t.shape[1]
    d = 3 if kind == SE2 else (6 if kind == SE3 else 7)
    E = np.empty((3, 3))
    V = np.empty((3, 3))
    for n in range(N):
        f = free_row[n]
        if f < 0:
            R_out[n] = R[n]
            t_out[n] = t[n]
            s_out[n] = s[n]
            continue
        o = f * d
        if kind == SE2:
            th = h[o + 2]
            if abs(th) < 1e-6:
                a = 1.0 - th * th / 6.0
                b = 0.5 * th
            else:
                a = np.sin(th) / th
                b = (1.0 - np.cos(th)) / th
            # V = [[a, -b], [b, a]]; t <- t + R V dt
            v0 = a * h[o] - b * h[o + 1]
            v1 = b * h[o] + a * h[o + 1]
            t_out[n, 0] = t[n, 0] + R[n, 0, 0] * v0 + R[n, 0, 1] * v1
            t_out[n, 1] = t[n, 1] + R[n, 1, 0] * v0 + R[n, 1, 1] * v1
            c = np.cos(th)
            sn = np.sin(th)
            for a_ in range(2):
                R_out[n, a_, 0] = R[n, a_, 0] * c + R[n, a_, 1] * sn
                R_out[n, a_, 1] = -R[n, a_, 0] * sn + R[n, a_, 1] * c
            s_out[n] = s[n]
            continue
        wx, wy, wz = h[o + 3], h[o + 4], h[o + 5]
        so3_exp_into(wx, wy, wz, E)
        so3_left_jacobian(wx, wy, wz, V)
        for a in range(3):
            acc = 0.0
            for b in range(3):
                vb = V[b, 0] * h[o] + V[b, 1] * h[o + 1] + V[b, 2] * h[o + 2]
                acc += R[n, a, b] * vb
            t_out[n, a] = t[n, a] + acc
        for a in range(3):
            for b in range(3):
                acc = 0.0
                for c in range(3):
                    acc += R[n, a, c] * E[c, b]
                R_out[n, a, b] = acc
        s_out[n] = s[n] * np.exp(h[o + 6]) if kind == SIM3 else s[n]
