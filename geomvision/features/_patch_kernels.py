"""numba kernels of patch alignment: bilinear sampling and affine-photometric Lucas-Kanade.

A reference patch is sampled on a (2r+1) x (2r+1) grid of 1-pixel spacing around a keypoint of
its image. Aligning it in a target image finds the translation ``x``, the 2x2 affine ``A`` and
the gain / bias ``a, b`` minimising

    sum_g w(g) (T(x + A g) - a R(g) - b)^2

over grid offsets g (Gauss-Newton, forward additive, 8 parameters). ``T`` is bilinearly
interpolated with its exact derivative, so the fixed point is a stationary point of the cost
itself. Everything here is per patch and independent: the batch kernel runs them in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_NPAR = 8  # du, dv, A00, A01, A10, A11, gain, bias


@njit(cache=True, inline="always")
def _bilinear(img, u, v):
    """(value, d/du, d/dv) of the bilinear interpolant at (u, v); value NaN outside the pixel grid."""
    h, w = img.shape
    if not (u >= 0.0 and v >= 0.0 and u <= w - 1.0 and v <= h - 1.0):
        return np.nan, 0.0, 0.0
    iu = min(int(u), w - 2)
    iv = min(int(v), h - 2)
    fu = u - iu
    fv = v - iv
    p00 = img[iv, iu]
    p01 = img[iv, iu + 1]
    p10 = img[iv + 1, iu]
    p11 = img[iv + 1, iu + 1]
    top = p00 + fu * (p01 - p00)
    bot = p10 + fu * (p11 - p10)
    val = top + fv * (bot - top)
    du = (1.0 - fv) * (p01 - p00) + fv * (p11 - p10)
    dv = bot - top
    return val, du, dv


@njit(cache=True, inline="always")
def _warped(img, u, v, A, gu, gv):
    """``_bilinear`` at (u, v) + A (gu, gv): the target pixel of patch offset (gu, gv)."""
    return _bilinear(img, u + A[0, 0] * gu + A[0, 1] * gv, v + A[1, 0] * gu + A[1, 1] * gv)


@njit(cache=True, parallel=True)
def sample_patches(img, uv, radius):
    """(N, 2r+1, 2r+1) float32 patches centred on uv (N,2), axis-aligned, 1-pixel spacing.
    A patch that leaves the image is all NaN."""
    n = uv.shape[0]
    p = 2 * radius + 1
    out = np.empty((n, p, p), np.float32)
    for k in prange(n):
        inside = True
        for i in range(p):
            for j in range(p):
                val, _, _ = _bilinear(img, uv[k, 0] + (j - radius), uv[k, 1] + (i - radius))
                if np.isnan(val):
                    inside = False
                out[k, i, j] = val
        if not inside:
            out[k, :, :] = np.nan
    return out


@njit(cache=True, inline="always")
def _solve_spd(H, g, x):
    """x = H^-1 g by Cholesky in place of H (8x8); False when H is not positive definite."""
    n = H.shape[0]
    for j in range(n):
        s = H[j, j]
        for k in range(j):
            s -= H[j, k] * H[j, k]
        if not s > 1e-12 * (1.0 + abs(H[j, j])):
            return False
        d = np.sqrt(s)
        H[j, j] = d
        for i in range(j + 1, n):
            s = H[i, j]
            for k in range(j):
                s -= H[i, k] * H[j, k]
            H[i, j] = s / d
    for i in range(n):
        s = g[i]
        for k in range(i):
            s -= H[i, k] * x[k]
        x[i] = s / H[i, i]
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, n):
            s -= H[k, i] * x[k]
        x[i] = s / H[i, i]
    return True


@njit(cache=True)
def _ncc(img, ref, weights, radius, u, v, A):
    """Weighted normalised cross-correlation of ref with the target warped by (u, v, A)."""
    p = 2 * radius + 1
    sw = 0.0
    st = 0.0
    sr = 0.0
    stt = 0.0
    srr = 0.0
    str_ = 0.0
    for i in range(p):
        gv = float(i - radius)
        for j in range(p):
            gu = float(j - radius)
            t, _, _ = _warped(img, u, v, A, gu, gv)
            if np.isnan(t):
                return -1.0
            w = weights[i, j]
            r = ref[i, j]
            sw += w
            st += w * t
            sr += w * r
            stt += w * t * t
            srr += w * r * r
            str_ += w * t * r
    vt = stt - st * st / sw
    vr = srr - sr * sr / sw
    if not (vt > 0.0 and vr > 0.0):
        return -1.0
    return (str_ - st * sr / sw) / np.sqrt(vt * vr)


@njit(cache=True)
def _align_one(img, ref, weights, radius, u0, v0, A0, max_iterations, tol, max_shift, H, g, J, step):
    """Align one patch; returns (u, v, ncc, converged). ncc is -1 when the patch leaves the image."""
    p = 2 * radius + 1
    u = u0
    v = v0
    A = A0.copy()
    det0 = abs(A0[0, 0] * A0[1, 1] - A0[0, 1] * A0[1, 0])
    gain = 1.0
    bias = 0.0
    converged = False
    for _ in range(max_iterations):
        H[:, :] = 0.0
        g[:] = 0.0
        for i in range(p):
            gv = float(i - radius)
            for j in range(p):
                gu = float(j - radius)
                t, tu, tv = _warped(img, u, v, A, gu, gv)
                if np.isnan(t):
                    return u0, v0, -1.0, False
                w = weights[i, j]
                r = t - gain * ref[i, j] - bias
                J[0] = tu
                J[1] = tv
                J[2] = tu * gu
                J[3] = tu * gv
                J[4] = tv * gu
                J[5] = tv * gv
                J[6] = -ref[i, j]
                J[7] = -1.0
                for a in range(_NPAR):
                    wa = w * J[a]
                    g[a] -= wa * r
                    for b in range(a + 1):
                        H[a, b] += wa * J[b]
        for a in range(_NPAR):
            H[a, a] *= 1.0 + 1e-9
        if not _solve_spd(H, g, step):
            return u0, v0, -1.0, False
        u += step[0]
        v += step[1]
        A[0, 0] += step[2]
        A[0, 1] += step[3]
        A[1, 0] += step[4]
        A[1, 1] += step[5]
        gain += step[6]
        bias += step[7]
        det = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
        if (u - u0) ** 2 + (v - v0) ** 2 > max_shift * max_shift or not (0.25 * det0 < det < 4.0 * det0):
            return u0, v0, -1.0, False
        if step[0] * step[0] + step[1] * step[1] < tol * tol:
            converged = True
            break
    return u, v, _ncc(img, ref, weights, radius, u, v, A), converged


@njit(cache=True, parallel=True)
def align_patches(img, refs, weights, uv0, A0, max_iterations, tol, max_shift):
    """Align refs (N,P,P) in img from uv0 (N,2) and A0 (N,2,2) in parallel.

    Returns uv (N,2) (uv0 where alignment failed), ncc (N,) (-1 on failure) and converged (N,).
    """
    n = refs.shape[0]
    radius = (refs.shape[1] - 1) // 2
    uv = uv0.copy()
    ncc = np.full(n, -1.0)
    converged = np.zeros(n, np.bool_)
    for k in prange(n):
        if np.isnan(refs[k, 0, 0]):
            continue
        H = np.empty((_NPAR, _NPAR))
        g = np.empty(_NPAR)
        J = np.empty(_NPAR)
        step = np.empty(_NPAR)
        u, v, c, ok = _align_one(img, refs[k], weights, radius, uv0[k, 0], uv0[k, 1], A0[k], max_iterations, tol,
                                 max_shift, H, g, J, step)
        uv[k, 0] = u
        uv[k, 1] = v
        ncc[k] = c
        converged[k] = ok
    return uv, ncc, converged
