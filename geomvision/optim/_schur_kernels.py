"""numba kernels of the normal equations and their Schur complement on the points.

The Gauss-Newton system of bundle adjustment, with damping D (diagonal) and lambda,

    [ U + lam Dc   W          ] [hc]     [gc]
    [ W^T          V + lam Dp ] [hp] = - [gp]

has a block-diagonal V (one 3x3 block per free point). Eliminating the points gives the reduced
camera system  S hc = b  with

    S = U + lam Dc - sum_j W_j (V_j + lam Dp_j)^-1 W_j^T,   b = -gc + sum_j W_j (V_j + lam Dp_j)^-1 gp_j

and then hp_j = (V_j + lam Dp_j)^-1 (-gp_j - W_j^T hc). W_j's block of observation o is
Jc_o^T Jp_o, so nothing but the per-observation Jacobians is stored.

S is stored either dense (``mode == 0``, N*N row-major) or as the data array of a symmetric
CSR matrix whose pattern is block-structured over *groups* of columns (the free pose columns of
one image, the free intrinsics of one camera): all rows of a group share one column pattern,
so the data position of (row ca, column cb) is

    gbase[ga] + within[ca] * growlen[ga] + gcolstart[k] + within[cb]

with k the entry of group gb in group ga's sorted neighbour list (``gptr``/``gcol``).
The Schur complement runs over points in ``nchunks`` parallel chunks, each into its own copy of
S; the copies are summed at the end (race-free; the copies are small next to the Jacobian).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _find_block(gptr, gcol, ga, gb):
    lo = gptr[ga]
    hi = gptr[ga + 1] - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        g = gcol[mid]
        if g == gb:
            return mid
        if g < gb:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


@njit(cache=True, inline="always")
def _local_columns(o, obs_img, img_cam, pose_col, intr_col, loc_jc, loc_g):
    """Free camera-side columns of observation o: Jc column indices and reduced-system indices."""
    i = obs_img[o]
    c = img_cam[i]
    n = 0
    for k in range(6):
        g = pose_col[i, k]
        if g >= 0:
            loc_jc[n] = k
            loc_g[n] = g
            n += 1
    for k in range(intr_col.shape[1]):
        g = intr_col[c, k]
        if g >= 0:
            loc_jc[n] = 6 + k
            loc_g[n] = g
            n += 1
    return n


@njit(cache=True, inline="always")
def _add_block(S, mode, N, ca_list, na, cb_list, nb, blk, sign, col_grp, col_within, gptr, gcol, gcolstart, gbase, growlen):
    """S[ca, cb] += sign * blk[a, b] for the local column lists of two observations."""
    for a in range(na):
        ca = ca_list[a]
        if mode == 0:
            base = ca * N
            for b in range(nb):
                S[base + cb_list[b]] += sign * blk[a, b]
        else:
            ga = col_grp[ca]
            rowbase = gbase[ga] + col_within[ca] * growlen[ga]
            last_g = -1
            off = 0
            for b in range(nb):
                cb = cb_list[b]
                gb = col_grp[cb]
                if gb != last_g:
                    off = gcolstart[_find_block(gptr, gcol, ga, gb)]
                    last_g = gb
                S[rowbase + off + col_within[cb]] += sign * blk[a, b]


@njit(cache=True)
def accumulate_cameras(
    mode, N, r, Jc, obs_img, img_cam, pose_col, intr_col, col_grp, col_within, gptr, gcol, gcolstart, gbase, growlen, U, gc
):
    """U += sum_o Jc_o^T Jc_o and gc += sum_o Jc_o^T r_o over the free camera-side columns."""
    L = Jc.shape[2]
    loc_jc = np.empty(L, np.int64)
    loc_g = np.empty(L, np.int64)
    blk = np.empty((L, L))
    for o in range(obs_img.shape[0]):
        n = _local_columns(o, obs_img, img_cam, pose_col, intr_col, loc_jc, loc_g)
        if n == 0:
            continue
        for a in range(n):
            ja = loc_jc[a]
            gc[loc_g[a]] += Jc[o, 0, ja] * r[o, 0] + Jc[o, 1, ja] * r[o, 1]
            for b in range(n):
                jb = loc_jc[b]
                blk[a, b] = Jc[o, 0, ja] * Jc[o, 0, jb] + Jc[o, 1, ja] * Jc[o, 1, jb]
        _add_block(U, mode, N, loc_g, n, loc_g, n, blk, 1.0, col_grp, col_within, gptr, gcol, gcolstart, gbase, growlen)


@njit(cache=True, parallel=True)
def accumulate_points(r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp):
    """V_j = sum Jp^T Jp (N',3,3) and gp_j = sum Jp^T r (N',3) for every free point
    (``pt_free_idx`` lists the point index of each free row)."""
    for q in prange(pt_free_idx.shape[0]):
        j = pt_free_idx[q]
        for a in range(3):
            gp[q, a] = 0.0
            for b in range(3):
                V[q, a, b] = 0.0
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            o = pt_obs[e]
            for a in range(3):
                gp[q, a] += Jp[o, 0, a] * r[o, 0] + Jp[o, 1, a] * r[o, 1]
                for b in range(3):
                    V[q, a, b] += Jp[o, 0, a] * Jp[o, 0, b] + Jp[o, 1, a] * Jp[o, 1, b]


@njit(cache=True, inline="always")
def _inv3_sym(A, out):
    """Inverse of a symmetric 3x3 matrix; returns False when it is not positive definite."""
    c00 = A[1, 1] * A[2, 2] - A[1, 2] * A[2, 1]
    c01 = A[1, 2] * A[2, 0] - A[1, 0] * A[2, 2]
    c02 = A[1, 0] * A[2, 1] - A[1, 1] * A[2, 0]
    det = A[0, 0] * c00 + A[0, 1] * c01 + A[0, 2] * c02
    m2 = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
    if not (A[0, 0] > 0.0 and m2 > 0.0 and det > 0.0):
        return False
    inv = 1.0 / det
    out[0, 0] = c00 * inv
    out[0, 1] = c01 * inv
    out[0, 2] = c02 * inv
    out[1, 0] = c01 * inv
    out[1, 1] = (A[0, 0] * A[2, 2] - A[0, 2] * A[2, 0]) * inv
    out[1, 2] = (A[0, 2] * A[1, 0] - A[0, 0] * A[1, 2]) * inv
    out[2, 0] = c02 * inv
    out[2, 1] = out[1, 2]
    out[2, 2] = m2 * inv
    return True


@njit(cache=True, parallel=True)
def schur_complement(
    mode,
    N,
    lam,
    Jc,
    Jp,
    obs_img,
    img_cam,
    pose_col,
    intr_col,
    pt_ptr,
    pt_obs,
    pt_free_idx,
    V,
    Dp,
    gp,
    col_grp,
    col_within,
    gptr,
    gcol,
    gcolstart,
    gbase,
    growlen,
    max_track,
    nchunks,
    S_parts,
    b_parts,
    Vinv,
):
    """Per-chunk sums of -W_j Vd_j^-1 W_j^T into ``S_parts[k]`` and of W_j Vd_j^-1 gp_j into
    ``b_parts[k]``; Vd_j^-1 (with Vd_j = V_j + lam diag(Dp_j)) into ``Vinv``.
    Returns the number of points whose damped block is not positive definite (then 0 is used)."""
    L = Jc.shape[2]
    n_free = pt_free_idx.shape[0]
    bad_total = 0
    for chunk in prange(nchunks):
        S = S_parts[chunk]
        bvec = b_parts[chunk]
        S[:] = 0.0
        bvec[:] = 0.0
        loc_jc = np.empty((max_track, L), np.int64)
        loc_g = np.empty((max_track, L), np.int64)
        nloc = np.empty(max_track, np.int64)
        E = np.empty((max_track, 3, L))
        F = np.empty((max_track, 3, L))
        blk = np.empty((L, L))
        Vd = np.empty((3, 3))
        Vi = np.empty((3, 3))
        y = np.empty(3)
        bad = 0
        lo = chunk * n_free // nchunks
        hi = (chunk + 1) * n_free // nchunks
        for q in range(lo, hi):
            j = pt_free_idx[q]
            for a in range(3):
                for b in range(3):
                    Vd[a, b] = V[q, a, b]
                Vd[a, a] += lam * Dp[q, a]
            if not _inv3_sym(Vd, Vi):
                bad += 1
                Vi[:, :] = 0.0
            for a in range(3):
                for b in range(3):
                    Vinv[q, a, b] = Vi[a, b]
            y[0] = Vi[0, 0] * gp[q, 0] + Vi[0, 1] * gp[q, 1] + Vi[0, 2] * gp[q, 2]
            y[1] = Vi[1, 0] * gp[q, 0] + Vi[1, 1] * gp[q, 1] + Vi[1, 2] * gp[q, 2]
            y[2] = Vi[2, 0] * gp[q, 0] + Vi[2, 1] * gp[q, 1] + Vi[2, 2] * gp[q, 2]
            k = 0
            for e in range(pt_ptr[j], pt_ptr[j + 1]):
                o = pt_obs[e]
                n = _local_columns(o, obs_img, img_cam, pose_col, intr_col, loc_jc[k], loc_g[k])
                if n == 0:
                    continue
                nloc[k] = n
                # E = Jp^T Jc (3 x n), F = Vd^-1 E
                for a in range(3):
                    for c in range(n):
                        jc = loc_jc[k, c]
                        E[k, a, c] = Jp[o, 0, a] * Jc[o, 0, jc] + Jp[o, 1, a] * Jc[o, 1, jc]
                for a in range(3):
                    for c in range(n):
                        F[k, a, c] = Vi[a, 0] * E[k, 0, c] + Vi[a, 1] * E[k, 1, c] + Vi[a, 2] * E[k, 2, c]
                for c in range(n):
                    bvec[loc_g[k, c]] += E[k, 0, c] * y[0] + E[k, 1, c] * y[1] + E[k, 2, c] * y[2]
                k += 1
            for a_ in range(k):
                na = nloc[a_]
                for b_ in range(a_, k):
                    nb = nloc[b_]
                    for a in range(na):
                        for b in range(nb):
                            blk[a, b] = E[a_, 0, a] * F[b_, 0, b] + E[a_, 1, a] * F[b_, 1, b] + E[a_, 2, a] * F[b_, 2, b]
                    _add_block(S, mode, N, loc_g[a_], na, loc_g[b_], nb, blk, -1.0, col_grp, col_within, gptr, gcol, gcolstart, gbase, growlen)
                    if b_ != a_:
                        for a in range(na):
                            for b in range(nb):
                                blk[b, a] = E[a_, 0, a] * F[b_, 0, b] + E[a_, 1, a] * F[b_, 1, b] + E[a_, 2, a] * F[b_, 2, b]
                        _add_block(S, mode, N, loc_g[b_], nb, loc_g[a_], na, blk, -1.0, col_grp, col_within, gptr, gcol, gcolstart, gbase, growlen)
        bad_total += bad
    return bad_total


@njit(cache=True, parallel=True)
def back_substitute(hc, Jc, Jp, obs_img, img_cam, pose_col, intr_col, pt_ptr, pt_obs, pt_free_idx, Vinv, gp, hp):
    """hp_q = Vd_q^-1 (-gp_q - sum_o Jp_o^T Jc_o hc[cols of o]) for every free point row q."""
    L = Jc.shape[2]
    for q in prange(pt_free_idx.shape[0]):
        j = pt_free_idx[q]
        loc_jc = np.empty(L, np.int64)
        loc_g = np.empty(L, np.int64)
        z0 = -gp[q, 0]
        z1 = -gp[q, 1]
        z2 = -gp[q, 2]
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            o = pt_obs[e]
            n = _local_columns(o, obs_img, img_cam, pose_col, intr_col, loc_jc, loc_g)
            s0 = 0.0
            s1 = 0.0
            for c in range(n):
                h = hc[loc_g[c]]
                s0 += Jc[o, 0, loc_jc[c]] * h
                s1 += Jc[o, 1, loc_jc[c]] * h
            z0 -= Jp[o, 0, 0] * s0 + Jp[o, 1, 0] * s1
            z1 -= Jp[o, 0, 1] * s0 + Jp[o, 1, 1] * s1
            z2 -= Jp[o, 0, 2] * s0 + Jp[o, 1, 2] * s1
        for a in range(3):
            hp[q, a] = Vinv[q, a, 0] * z0 + Vinv[q, a, 1] * z1 + Vinv[q, a, 2] * z2


@njit(cache=True)
def co_observing_image_pairs(pt_ptr, pt_obs, obs_img, pt_free, n_img):
    """Codes a * n_img + b of every ordered pair of images (a, b) that observe a common free point
    (with repeats), plus (a, a) for every observing image."""
    total = 0
    for j in range(pt_ptr.shape[0] - 1):
        k = pt_ptr[j + 1] - pt_ptr[j]
        total += k * k if pt_free[j] else k
    out = np.empty(total, np.int64)
    n = 0
    for j in range(pt_ptr.shape[0] - 1):
        s = pt_ptr[j]
        e = pt_ptr[j + 1]
        if pt_free[j]:
            for a in range(s, e):
                ia = obs_img[pt_obs[a]]
                for b in range(s, e):
                    out[n] = ia * n_img + obs_img[pt_obs[b]]
                    n += 1
        else:
            for a in range(s, e):
                ia = obs_img[pt_obs[a]]
                out[n] = ia * n_img + ia
                n += 1
    return out
