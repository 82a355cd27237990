"""numba kernels of the normal equations and their Schur complement on the points.

The Gauss-Newton system of bundle adjustment, with damping D (diagonal) and lambda,

    [ U + lam Dc   W          ] [hc]     [gc]
    [ W^T          V + lam Dp ] [hp] = - [gp]

has a block-diagonal V (one 3x3 block per free point). Eliminating the points gives the reduced
camera system  S hc = b  with

    S = U + lam Dc - sum_j W_j (V_j + lam Dp_j)^-1 W_j^T,   b = -gc + sum_j W_j (V_j + lam Dp_j)^-1 gp_j

and then hp_j = (V_j + lam Dp_j)^-1 (-gp_j - W_j^T hc). W_j's block of observation o is
Jc_o^T Jp_o, so nothing but the per-observation Jacobians is stored.

Accumulation works on *images*: each image has a list of free local columns (its pose, then its
camera's intrinsics; ``img_nloc``, ``img_loc_jc``, ``img_loc_g``). The point loop sums dense
L x L blocks per pair of images that share a point (``pair_ptr``/``pair_col``, ia <= ib) with
plain array indexing, and U per image; ``assemble`` then scatters the blocks once into S, so a
camera shared by several images simply receives several contributions.

S is stored either dense (``mode == 0``, N*N row-major) or as the data array of a symmetric
CSR matrix whose pattern is block-structured over *groups* of columns (the free pose columns of
one image, the free intrinsics of one camera): all rows of a group share one column pattern,
so the data position of (row ca, column cb) is

    gbase[ga] + within[ca] * growlen[ga] + gcolstart[k] + within[cb]

with k the entry of group gb in group ga's sorted neighbour list (``gptr``/``gcol``).
Every kernel that loops over observations or points is written once over a range (``_*_range``)
and driven either serially or, for large problems, by a ``*_parallel`` twin over ``nchunks``
chunks; the Schur complement's chunks sum into their own copies of the image-pair blocks, added
up afterwards (race-free; the copies are small next to the Jacobian).
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
def _add_block(S, mode, N, ca_list, na, cb_list, nb, blk, transpose, col_grp, col_within, gptr, gcol, gcolstart, gbase,
               growlen):
    """S[ca_list[a], cb_list[b]] += blk[a, b] (or blk[b, a] with ``transpose``)."""
    for a in range(na):
        ca = ca_list[a]
        if mode == 0:
            base = ca * N
            for b in range(nb):
                S[base + cb_list[b]] += blk[b, a] if transpose else blk[a, b]
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
                S[rowbase + off + col_within[cb]] += blk[b, a] if transpose else blk[a, b]


@njit(cache=True)
def _accumulate_cameras_range(lo, hi, r, Jc, obs_img, img_nloc, img_loc_jc, Uimg, gimg):
    Uimg[:] = 0.0
    gimg[:] = 0.0
    for o in range(lo, hi):
        i = obs_img[o]
        n = img_nloc[i]
        for a in range(n):
            ja = img_loc_jc[i, a]
            c0 = Jc[o, 0, ja]
            c1 = Jc[o, 1, ja]
            gimg[i, a] += c0 * r[o, 0] + c1 * r[o, 1]
            for b in range(n):
                jb = img_loc_jc[i, b]
                Uimg[i, a, b] += c0 * Jc[o, 0, jb] + c1 * Jc[o, 1, jb]


@njit(cache=True)
def accumulate_cameras(r, Jc, obs_img, img_nloc, img_loc_jc, Uimg, gimg):
    """Per image: Uimg[i] = sum_o Jc_o^T Jc_o and gimg[i] = sum_o Jc_o^T r_o over its free local columns."""
    _accumulate_cameras_range(0, obs_img.shape[0], r, Jc, obs_img, img_nloc, img_loc_jc, Uimg, gimg)


@njit(cache=True, parallel=True)
def accumulate_cameras_parallel(r, Jc, obs_img, img_nloc, img_loc_jc, U_parts, g_parts):
    """``accumulate_cameras`` over ``len(U_parts)`` parallel chunks of observations, chunk k into
    its own ``U_parts[k]``, ``g_parts[k]`` (the caller adds them up)."""
    nchunks = U_parts.shape[0]
    m = obs_img.shape[0]
    for k in prange(nchunks):
        _accumulate_cameras_range(k * m // nchunks, (k + 1) * m // nchunks, r, Jc, obs_img, img_nloc, img_loc_jc,
                                  U_parts[k], g_parts[k])


@njit(cache=True)
def _accumulate_points_range(lo, hi, r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp):
    for q in range(lo, hi):
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


@njit(cache=True)
def accumulate_points(r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp):
    """V_j = sum Jp^T Jp (N',3,3) and gp_j = sum Jp^T r (N',3) for every free point
    (``pt_free_idx`` lists the point index of each free row)."""
    _accumulate_points_range(0, pt_free_idx.shape[0], r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp)


@njit(cache=True, parallel=True)
def accumulate_points_parallel(r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp, nchunks):
    n = pt_free_idx.shape[0]
    for k in prange(nchunks):
        _accumulate_points_range(k * n // nchunks, (k + 1) * n // nchunks, r, Jp, pt_ptr, pt_obs, pt_free_idx, V, gp)


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


@njit(cache=True, inline="always")
def _damped_point_inverse(q, lam, V, Dp, gp, Vd, Vi, Vinv):
    """Vi = Vinv[q] = (V_q + lam diag(Dp_q))^-1 (zero when not positive definite); returns
    (whether it was positive definite, y = Vi gp_q as three numbers)."""
    for a in range(3):
        for b in range(3):
            Vd[a, b] = V[q, a, b]
        Vd[a, a] += lam * Dp[q, a]
    ok = _inv3_sym(Vd, Vi)
    if not ok:
        Vi[:, :] = 0.0
    for a in range(3):
        for b in range(3):
            Vinv[q, a, b] = Vi[a, b]
    y0 = Vi[0, 0] * gp[q, 0] + Vi[0, 1] * gp[q, 1] + Vi[0, 2] * gp[q, 2]
    y1 = Vi[1, 0] * gp[q, 0] + Vi[1, 1] * gp[q, 1] + Vi[1, 2] * gp[q, 2]
    y2 = Vi[2, 0] * gp[q, 0] + Vi[2, 1] * gp[q, 1] + Vi[2, 2] * gp[q, 2]
    return ok, y0, y1, y2


@njit(cache=True, inline="always")
def _observation_blocks(o, i, n, Jc, Jp, img_loc_jc, Vi, y0, y1, y2, E, F, bimg):
    """E = Jp_o^T Jc_o (3 x n free local columns of image i) and F = Vd^-1 E; bimg[i] += E^T y."""
    for c in range(n):
        jc = img_loc_jc[i, c]
        j0 = Jc[o, 0, jc]
        j1 = Jc[o, 1, jc]
        e0 = Jp[o, 0, 0] * j0 + Jp[o, 1, 0] * j1
        e1 = Jp[o, 0, 1] * j0 + Jp[o, 1, 1] * j1
        e2 = Jp[o, 0, 2] * j0 + Jp[o, 1, 2] * j1
        E[0, c] = e0
        E[1, c] = e1
        E[2, c] = e2
        F[0, c] = Vi[0, 0] * e0 + Vi[0, 1] * e1 + Vi[0, 2] * e2
        F[1, c] = Vi[1, 0] * e0 + Vi[1, 1] * e1 + Vi[1, 2] * e2
        F[2, c] = Vi[2, 0] * e0 + Vi[2, 1] * e1 + Vi[2, 2] * e2
        bimg[i, c] += e0 * y0 + e1 * y1 + e2 * y2


@njit(cache=True, inline="always")
def _pair_index(pair_ptr, pair_col, ia, ib):
    lo = pair_ptr[ia]
    hi = pair_ptr[ia + 1] - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        g = pair_col[mid]
        if g == ib:
            return mid
        if g < ib:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


@njit(cache=True)
def _schur_range(lo, hi, lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp,
                 pair_ptr, pair_col, max_track, B, bimg, Vinv):
    """Sums over free point rows lo..hi-1 of -W_j Vd_j^-1 W_j^T, as image-pair blocks
    ``B[pair, a, b]`` (pairs ia <= ib of ``pair_ptr``/``pair_col``, local free columns a of ia,
    b of ib), and of W_j Vd_j^-1 gp_j per image (``bimg[i, a]``); stores Vd_j^-1 (Vd_j = V_j +
    lam diag(Dp_j)) in ``Vinv``. Returns the number of points whose damped block is not
    positive definite."""
    L = Jc.shape[2]
    B[:] = 0.0
    bimg[:] = 0.0
    img = np.empty(max_track, np.int64)
    E = np.empty((max_track, 3, L))
    F = np.empty((max_track, 3, L))
    Vd = np.empty((3, 3))
    Vi = np.empty((3, 3))
    bad = 0
    for q in range(lo, hi):
        j = pt_free_idx[q]
        ok, y0, y1, y2 = _damped_point_inverse(q, lam, V, Dp, gp, Vd, Vi, Vinv)
        if not ok:
            bad += 1
        k = 0
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            o = pt_obs[e]
            i = obs_img[o]
            n = img_nloc[i]
            if n == 0:
                continue
            img[k] = i
            _observation_blocks(o, i, n, Jc, Jp, img_loc_jc, Vi, y0, y1, y2, E[k], F[k], bimg)
            k += 1
        for a_ in range(k):
            ia = img[a_]
            na = img_nloc[ia]
            for b_ in range(a_, k):
                ib = img[b_]
                nb = img_nloc[ib]
                if ia <= ib:
                    Bk = B[_pair_index(pair_ptr, pair_col, ia, ib)]
                    for a in range(na):
                        ea0 = E[a_, 0, a]
                        ea1 = E[a_, 1, a]
                        ea2 = E[a_, 2, a]
                        for b in range(nb):
                            Bk[a, b] -= ea0 * F[b_, 0, b] + ea1 * F[b_, 1, b] + ea2 * F[b_, 2, b]
                if ib < ia or (ia == ib and a_ != b_):
                    Bk = B[_pair_index(pair_ptr, pair_col, ib, ia)]
                    for b in range(nb):
                        eb0 = F[b_, 0, b]
                        eb1 = F[b_, 1, b]
                        eb2 = F[b_, 2, b]
                        for a in range(na):
                            Bk[b, a] -= eb0 * E[a_, 0, a] + eb1 * E[a_, 1, a] + eb2 * E[a_, 2, a]
    return bad


@njit(cache=True)
def schur_complement(lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp, pair_ptr,
                     pair_col, max_track, B_parts, b_parts, Vinv):
    """The Schur complement of every free point into ``B_parts[0]``, ``b_parts[0]`` (see _schur_range)."""
    return _schur_range(0, pt_free_idx.shape[0], lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs,
                        pt_free_idx, V, Dp, gp, pair_ptr, pair_col, max_track, B_parts[0], b_parts[0], Vinv)


@njit(cache=True, parallel=True)
def schur_complement_parallel(lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp,
                              pair_ptr, pair_col, max_track, B_parts, b_parts, Vinv):
    """``schur_complement`` in ``len(B_parts)`` parallel chunks of points, chunk k summing into
    its own ``B_parts[k]``, ``b_parts[k]`` (the caller adds them up)."""
    nchunks = B_parts.shape[0]
    n = pt_free_idx.shape[0]
    bad = 0
    for k in prange(nchunks):
        bad += _schur_range(k * n // nchunks, (k + 1) * n // nchunks, lam, Jc, Jp, obs_img, img_nloc, img_loc_jc,
                            pt_ptr, pt_obs, pt_free_idx, V, Dp, gp, pair_ptr, pair_col, max_track, B_parts[k],
                            b_parts[k], Vinv)
    return bad


@njit(cache=True)
def assemble(mode, N, pair_ptr, pair_col, B, Uimg, img_nloc, img_loc_g, col_grp, col_within, gptr, gcol, gcolstart,
             gbase, growlen, S):
    """S += the image-pair blocks B (pairs ia <= ib; the lower triangle gets the transposes) and
    the per-image blocks Uimg, scattered to the reduced columns ``img_loc_g``."""
    for ia in range(pair_ptr.shape[0] - 1):
        na = img_nloc[ia]
        if na == 0:
            continue
        ga = img_loc_g[ia]
        _add_block(S, mode, N, ga, na, ga, na, Uimg[ia], False, col_grp, col_within, gptr, gcol, gcolstart, gbase,
                   growlen)
        for k in range(pair_ptr[ia], pair_ptr[ia + 1]):
            ib = pair_col[k]
            nb = img_nloc[ib]
            gb = img_loc_g[ib]
            _add_block(S, mode, N, ga, na, gb, nb, B[k], False, col_grp, col_within, gptr, gcol, gcolstart, gbase,
                       growlen)
            if ib != ia:
                _add_block(S, mode, N, gb, nb, ga, na, B[k], True, col_grp, col_within, gptr, gcol, gcolstart,
                           gbase, growlen)


@njit(cache=True)
def _back_substitute_range(lo, hi, hc, Jc, Jp, obs_img, img_nloc, img_loc_jc, img_loc_g, pt_ptr, pt_obs, pt_free_idx,
                           Vinv, gp, hp):
    for q in range(lo, hi):
        j = pt_free_idx[q]
        z0 = -gp[q, 0]
        z1 = -gp[q, 1]
        z2 = -gp[q, 2]
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            o = pt_obs[e]
            i = obs_img[o]
            s0 = 0.0
            s1 = 0.0
            for c in range(img_nloc[i]):
                h = hc[img_loc_g[i, c]]
                jc = img_loc_jc[i, c]
                s0 += Jc[o, 0, jc] * h
                s1 += Jc[o, 1, jc] * h
            z0 -= Jp[o, 0, 0] * s0 + Jp[o, 1, 0] * s1
            z1 -= Jp[o, 0, 1] * s0 + Jp[o, 1, 1] * s1
            z2 -= Jp[o, 0, 2] * s0 + Jp[o, 1, 2] * s1
        for a in range(3):
            hp[q, a] = Vinv[q, a, 0] * z0 + Vinv[q, a, 1] * z1 + Vinv[q, a, 2] * z2


@njit(cache=True)
def back_substitute(hc, Jc, Jp, obs_img, img_nloc, img_loc_jc, img_loc_g, pt_ptr, pt_obs, pt_free_idx, Vinv, gp, hp):
    """hp_q = Vd_q^-1 (-gp_q - sum_o Jp_o^T Jc_o hc[cols of o]) for every free point row q."""
    _back_substitute_range(0, pt_free_idx.shape[0], hc, Jc, Jp, obs_img, img_nloc, img_loc_jc, img_loc_g, pt_ptr,
                           pt_obs, pt_free_idx, Vinv, gp, hp)


@njit(cache=True, parallel=True)
def back_substitute_parallel(hc, Jc, Jp, obs_img, img_nloc, img_loc_jc, img_loc_g, pt_ptr, pt_obs, pt_free_idx, Vinv,
                             gp, hp, nchunks):
    n = pt_free_idx.shape[0]
    for k in prange(nchunks):
        _back_substitute_range(k * n // nchunks, (k + 1) * n // nchunks, hc, Jc, Jp, obs_img, img_nloc, img_loc_jc,
                               img_loc_g, pt_ptr, pt_obs, pt_free_idx, Vinv, gp, hp)


@njit(cache=True)
def mark_image_pairs(pt_ptr, pt_obs, obs_img, pt_free, mark):
    """mark[a, b] = True for every pair of images a <= b that observe a common free point, and
    mark[a, a] for every observing image (memory I x I, no list of pairs)."""
    for j in range(pt_ptr.shape[0] - 1):
        s = pt_ptr[j]
        e = pt_ptr[j + 1]
        for a in range(s, e):
            ia = obs_img[pt_obs[a]]
            mark[ia, ia] = True
            if not pt_free[j]:
                continue
            for b in range(a + 1, e):
                ib = obs_img[pt_obs[b]]
                if ia <= ib:
                    mark[ia, ib] = True
                else:
                    mark[ib, ia] = True


@njit(cache=True)
def co_observing_image_pairs(pt_ptr, pt_obs, obs_img, pt_free, n_img):
    """Codes a * n_img + b of every pair of images a <= b that observe a common free point (with
    repeats), plus (a, a) for every observing image; for problems too large for ``mark_image_pairs``."""
    total = 0
    for j in range(pt_ptr.shape[0] - 1):
        k = pt_ptr[j + 1] - pt_ptr[j]
        total += k * (k + 1) // 2 if pt_free[j] else k
    out = np.empty(total, np.int64)
    n = 0
    for j in range(pt_ptr.shape[0] - 1):
        s = pt_ptr[j]
        e = pt_ptr[j + 1]
        for a in range(s, e):
            ia = obs_img[pt_obs[a]]
            out[n] = ia * n_img + ia
            n += 1
            if not pt_free[j]:
                continue
            for b in range(a + 1, e):
                ib = obs_img[pt_obs[b]]
                out[n] = ia * n_img + ib if ia <= ib else ib * n_img + ia
                n += 1
    return out
