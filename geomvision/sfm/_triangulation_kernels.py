"""numba kernel: robust triangulation of many tracks at once.

A track may hold a wrong observation (a repeated texture matched across views). Each track is
triangulated RANSAC-style over pairs of its observations (as COLMAP's track triangulation):
every pair with a large enough viewing angle gives a midpoint candidate; the candidate seen by
most observations (squared error on the z = 1 plane below that observation's threshold, in
front of the camera) wins; the point is then re-estimated by DLT from its inliers.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _ray(R, t, i, x, y):
    """Centre and unit world direction of the ray of normalised point (x, y) in image i."""
    C = np.empty(3)
    d = np.empty(3)
    for r in range(3):
        C[r] = -(R[i, 0, r] * t[i, 0] + R[i, 1, r] * t[i, 1] + R[i, 2, r] * t[i, 2])
        d[r] = R[i, 0, r] * x + R[i, 1, r] * y + R[i, 2, r]
    n = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    d /= n
    return C, d


@njit(cache=True)
def _midpoint(Ca, da, Cb, db):
    """Midpoint of the shortest segment between two rays; ok=False when they are parallel."""
    w0 = Ca - Cb
    b = da[0] * db[0] + da[1] * db[1] + da[2] * db[2]
    d = da[0] * w0[0] + da[1] * w0[1] + da[2] * w0[2]
    e = db[0] * w0[0] + db[1] * w0[1] + db[2] * w0[2]
    den = 1.0 - b * b
    X = np.empty(3)
    if den < 1e-12:
        return X, False
    sa = (b * e - d) / den
    sb = (e - b * d) / den
    for r in range(3):
        X[r] = 0.5 * (Ca[r] + sa * da[r] + Cb[r] + sb * db[r])
    return X, True


@njit(cache=True)
def _sq_error(R, t, i, X, x, y):
    """Squared error on the z = 1 plane of X seen in image i at (x, y); inf behind the camera."""
    Xc = R[i, 0, 0] * X[0] + R[i, 0, 1] * X[1] + R[i, 0, 2] * X[2] + t[i, 0]
    Yc = R[i, 1, 0] * X[0] + R[i, 1, 1] * X[1] + R[i, 1, 2] * X[2] + t[i, 1]
    Zc = R[i, 2, 0] * X[0] + R[i, 2, 1] * X[1] + R[i, 2, 2] * X[2] + t[i, 2]
    if not Zc > 0.0:
        return np.inf
    ex = Xc / Zc - x
    ey = Yc / Zc - y
    return ex * ex + ey * ey


@njit(cache=True)
def _dlt(R, t, imgs, xs, ys):
    n = imgs.shape[0]
    A = np.empty((2 * n, 4))
    for k in range(n):
        i = imgs[k]
        for c in range(4):
            p0 = R[i, 0, c] if c < 3 else t[i, 0]
            p1 = R[i, 1, c] if c < 3 else t[i, 1]
            p2 = R[i, 2, c] if c < 3 else t[i, 2]
            A[2 * k, c] = xs[k] * p2 - p0
            A[2 * k + 1, c] = ys[k] * p2 - p1
        for r in (2 * k, 2 * k + 1):
            nr = np.sqrt(A[r, 0] ** 2 + A[r, 1] ** 2 + A[r, 2] ** 2 + A[r, 3] ** 2)
            if nr > 0.0:
                A[r, :] /= nr
    _, _, Vt = np.linalg.svd(A)
    h = Vt[3]
    X = np.empty(3)
    if abs(h[3]) < 1e-15:
        return X, False
    X[0] = h[0] / h[3]
    X[1] = h[1] / h[3]
    X[2] = h[2] / h[3]
    return X, True


@njit(cache=True)
def triangulate_tracks(R, t, ptr, cand_obs, obs_img, obs_xy, thr_sq, min_cos, max_pairs):
    """Triangulate each group ``cand_obs[ptr[k]:ptr[k+1]]`` of observations.

    Returns X (K,3), inlier (len(cand_obs),) bool, max_angle_cos (K,) (cosine of the widest
    angle between two inlier rays; 1 when fewer than two inliers).
    """
    K = ptr.shape[0] - 1
    X_out = np.full((K, 3), np.nan)
    inlier = np.zeros(cand_obs.shape[0], dtype=np.bool_)
    best_cos = np.ones(K)
    for k in range(K):
        s = ptr[k]
        n = ptr[k + 1] - s
        if n < 2:
            continue
        Cs = np.empty((n, 3))
        ds = np.empty((n, 3))
        imgs = np.empty(n, dtype=np.int64)
        xs = np.empty(n)
        ys = np.empty(n)
        for a in range(n):
            o = cand_obs[s + a]
            imgs[a] = obs_img[o]
            xs[a] = obs_xy[o, 0]
            ys[a] = obs_xy[o, 1]
            C, d = _ray(R, t, imgs[a], xs[a], ys[a])
            Cs[a] = C
            ds[a] = d
        best_n = 0
        best_X = np.empty(3)
        tried = 0
        for a in range(n):
            if tried >= max_pairs:
                break
            for b in range(a + 1, n):
                if tried >= max_pairs:
                    break
                c = ds[a, 0] * ds[b, 0] + ds[a, 1] * ds[b, 1] + ds[a, 2] * ds[b, 2]
                if c > min_cos:
                    continue
                tried += 1
                X, ok = _midpoint(Cs[a], ds[a], Cs[b], ds[b])
                if not ok:
                    continue
                cnt = 0
                for q in range(n):
                    if _sq_error(R, t, imgs[q], X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]:
                        cnt += 1
                if cnt > best_n:
                    best_n = cnt
                    best_X[:] = X
        if best_n < 2:
            continue
        # re-estimate from the inliers by DLT and take its inliers
        mask = np.zeros(n, dtype=np.bool_)
        for q in range(n):
            mask[q] = _sq_error(R, t, imgs[q], best_X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]
        m = 0
        for q in range(n):
            if mask[q]:
                m += 1
        sel_i = np.empty(m, dtype=np.int64)
        sel_x = np.empty(m)
        sel_y = np.empty(m)
        m = 0
        for q in range(n):
            if mask[q]:
                sel_i[m] = imgs[q]
                sel_x[m] = xs[q]
                sel_y[m] = ys[q]
                m += 1
        X, ok = _dlt(R, t, sel_i, sel_x, sel_y)
        if ok:
            cnt = 0
            for q in range(n):
                if _sq_error(R, t, imgs[q], X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]:
                    cnt += 1
            if cnt >= best_n:
                best_X[:] = X
        n_in = 0
        widest = 1.0
        for q in range(n):
            ok_q = _sq_error(R, t, imgs[q], best_X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]
            inlier[s + q] = ok_q
            if ok_q:
                n_in += 1
                for p in range(q):
                    if inlier[s + p]:
                        c = ds[p, 0] * ds[q, 0] + ds[p, 1] * ds[q, 1] + ds[p, 2] * ds[q, 2]
                        if c < widest:
                            widest = c
        if n_in >= 2:
            X_out[k] = best_X
            best_cos[k] = widest
        else:
            for q in range(n):
                inlier[s + q] = False
    return X_out, inlier, best_cos
