"""numba kernels of the implicit Schur complement (the "iterative" linear solver).

The reduced camera matrix S = U + lam Dc - sum_j W_j Vd_j^-1 W_j^T (see ``_schur_kernels``) is
never formed: conjugate gradients only needs products S x, and

    S x = U x + lam Dc x - sum_o Jc_o^T Jp_o w_j(o),   w_j = Vd_j^-1 sum_{o of j} Jp_o^T Jc_o x

costs two passes over the observations whatever the tracks' length (forming S costs the sum of
squared track lengths). Vectors on the camera side are held per image over its free local
columns (``xi[i, a]`` for reduced column ``img_loc_g[i, a]``), as in ``_schur_kernels``.

The block-Jacobi preconditioner takes, per image, U_i + lam Dc_i - sum_o E_o^T Vd_j^-1 E_o over
its own observations (E_o = Jp_o^T Jc_o): the exact diagonal block of S for a pose (a point is
seen once per image); a shared camera's intrinsics get the sum of their images' blocks.
Each kernel is written over a range of point rows and driven serially or by a parallel twin whose
chunks write their own per-image copies (race-free; added up by the caller).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._schur_kernels import _damped_point_inverse, _observation_blocks


@njit(cache=True)
def _prepare_range(lo, hi, lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp,
                   Vinv, bimg, Pimg, Es):
    """For free point rows lo..hi-1: Vinv_q = Vd_q^-1; Es[e] = E_o = Jp_o^T Jc_o over the free
    local columns of o's image (slot e of o in ``pt_obs``, so the products stream through Es in
    order); bimg[i] += E_o^T Vd_q^-1 gp_q and Pimg[i] -= E_o^T Vd_q^-1 E_o (image i of o).
    Returns (number of points whose damped block is not positive definite, sum of
    gp_q^T Vd_q^-1 gp_q)."""
    L = Jc.shape[2]
    Vd = np.empty((3, 3))
    Vi = np.empty((3, 3))
    F = np.empty((3, L))
    bad = 0
    gvg = 0.0
    for q in range(lo, hi):
        j = pt_free_idx[q]
        ok, y0, y1, y2 = _damped_point_inverse(q, lam, V, Dp, gp, Vd, Vi, Vinv)
        if not ok:
            bad += 1
        gvg += gp[q, 0] * y0 + gp[q, 1] * y1 + gp[q, 2] * y2
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            o = pt_obs[e]
            i = obs_img[o]
            n = img_nloc[i]
            E = Es[e]
            _observation_blocks(o, i, n, Jc, Jp, img_loc_jc, Vi, y0, y1, y2, E, F, bimg)
            for a in range(n):
                for b in range(n):
                    Pimg[i, a, b] -= E[0, a] * F[0, b] + E[1, a] * F[1, b] + E[2, a] * F[2, b]
    return bad, gvg


@njit(cache=True)
def prepare(lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp, Vinv, b_parts,
            P_parts, Es):
    """``_prepare_range`` over every free point into ``b_parts[0]`` and ``P_parts[0]`` (both
    zeroed here; the caller adds U to the P blocks)."""
    b_parts[:] = 0.0
    P_parts[:] = 0.0
    return _prepare_range(0, pt_free_idx.shape[0], lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs,
                          pt_free_idx, V, Dp, gp, Vinv, b_parts[0], P_parts[0], Es)


@njit(cache=True, parallel=True)
def prepare_parallel(lam, Jc, Jp, obs_img, img_nloc, img_loc_jc, pt_ptr, pt_obs, pt_free_idx, V, Dp, gp, Vinv,
                     b_parts, P_parts, Es):
    """``prepare`` in ``len(b_parts)`` parallel chunks of points, each into its own part."""
    b_parts[:] = 0.0
    P_parts[:] = 0.0
    nchunks = b_parts.shape[0]
    n = pt_free_idx.shape[0]
    bad = np.zeros(nchunks, np.int64)
    gvg = np.zeros(nchunks)
    for k in prange(nchunks):
        bk, gk = _prepare_range(k * n // nchunks, (k + 1) * n // nchunks, lam, Jc, Jp, obs_img, img_nloc, img_loc_jc,
                                pt_ptr, pt_obs, pt_free_idx, V, Dp, gp, Vinv, b_parts[k], P_parts[k], Es)
        bad[k] = bk
        gvg[k] = gk
    return bad.sum(), gvg.sum()


@njit(cache=True, inline="always")
def _own_block_product(lo, hi, xi, Uimg, img_nloc, out):
    for i in range(lo, hi):
        n = img_nloc[i]
        for a in range(n):
            s = 0.0
            for b in range(n):
                s += Uimg[i, a, b] * xi[i, b]
            out[i, a] = s


@njit(cache=True)
def _reduced_product_range(lo, hi, xi, Es, e_img, img_nloc, pt_ptr, pt_free_idx, Vinv, out):
    """out[i] -= sum over the observation slots e (image i) of point rows lo..hi-1 of
    E_e^T Vd_j^-1 sum_{e' of j} E_e' xi[i(e')]: the -W Vd^-1 W^T x part of S x."""
    for q in range(lo, hi):
        j = pt_free_idx[q]
        z0 = 0.0
        z1 = 0.0
        z2 = 0.0
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            i = e_img[e]
            for c in range(img_nloc[i]):
                h = xi[i, c]
                z0 += Es[e, 0, c] * h
                z1 += Es[e, 1, c] * h
                z2 += Es[e, 2, c] * h
        w0 = Vinv[q, 0, 0] * z0 + Vinv[q, 0, 1] * z1 + Vinv[q, 0, 2] * z2
        w1 = Vinv[q, 1, 0] * z0 + Vinv[q, 1, 1] * z1 + Vinv[q, 1, 2] * z2
        w2 = Vinv[q, 2, 0] * z0 + Vinv[q, 2, 1] * z1 + Vinv[q, 2, 2] * z2
        for e in range(pt_ptr[j], pt_ptr[j + 1]):
            i = e_img[e]
            for c in range(img_nloc[i]):
                out[i, c] -= Es[e, 0, c] * w0 + Es[e, 1, c] * w1 + Es[e, 2, c] * w2


@njit(cache=True)
def reduced_product(xi, Uimg, Es, e_img, img_nloc, pt_ptr, pt_free_idx, Vinv, out_parts):
    """Per image (I, L), ``out_parts[0][i] = U_i xi[i] - (W Vd^-1 W^T x)_i`` (the caller adds
    lam Dc x and scatters to reduced columns)."""
    out = out_parts[0]
    _own_block_product(0, Uimg.shape[0], xi, Uimg, img_nloc, out)
    _reduced_product_range(0, pt_free_idx.shape[0], xi, Es, e_img, img_nloc, pt_ptr, pt_free_idx, Vinv, out)


@njit(cache=True, parallel=True)
def reduced_product_parallel(xi, Uimg, Es, e_img, img_nloc, pt_ptr, pt_free_idx, Vinv, out_parts):
    """``reduced_product`` in ``len(out_parts)`` parallel chunks (sum the parts)."""
    nchunks = out_parts.shape[0]
    n = pt_free_idx.shape[0]
    I = Uimg.shape[0]
    for k in prange(nchunks):
        out = out_parts[k]
        out[:] = 0.0
        _own_block_product(k * I // nchunks, (k + 1) * I // nchunks, xi, Uimg, img_nloc, out)
        _reduced_product_range(k * n // nchunks, (k + 1) * n // nchunks, xi, Es, e_img, img_nloc, pt_ptr,
                               pt_free_idx, Vinv, out)
