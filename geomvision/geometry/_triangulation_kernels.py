"""numba kernels of the one triangulation stack (:mod:`geomvision.geometry.triangulation`).

Every triangulation in geomvision runs here: the public functions of ``triangulation.py`` (DLT,
midpoint, per-point refinement, angles, checks, robust per-track triangulation) and the
incremental mapper (``sfm/mapper.py``, through :func:`triangulate_tracks`). Poses are flat
arrays ``R`` (I,3,3), ``t`` (I,3) (cam_from_world); observations are normalised coordinates
``xy`` (x = X_cam / Z_cam) unless a kernel says pixels.

Two DLTs live here on purpose: :func:`_dlt_kernel` (eigen-decomposition of the 4x4 normal
matrix, many points at once) serves ``triangulate_multiview``; :func:`_dlt_svd` (SVD of the
stacked rows) is the re-estimation step of the robust kernel. They agree to rounding, not to the
bit, and the mapper's results are pinned to the SVD one.

Robust triangulation of tracks (:func:`triangulate_tracks`): a track may hold a wrong
observation (a repeated texture matched across views). Each track is triangulated RANSAC-style
over pairs of its observations (as COLMAP's track triangulation): every pair with a large enough
viewing angle gives a midpoint candidate; the candidate seen by most observations (squared error
on the z = 1 plane below that observation's threshold, in front of the camera) wins; the point is
then re-estimated by DLT from its inliers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._camera_kernels import project_one


@njit(cache=True)
def _dlt_kernel(R, t, obs_img, xy, order, ptr, X):
    A = np.empty((4, 4))
    row = np.empty(4)
    for j in range(ptr.shape[0] - 1):
        if ptr[j + 1] - ptr[j] < 2:
            X[j, :] = np.nan
            continue
        A[:, :] = 0.0
        for e in range(ptr[j], ptr[j + 1]):
            o = order[e]
            i = obs_img[o]
            for r in range(2):
                c = xy[o, r]
                for k in range(3):
                    row[k] = c * R[i, 2, k] - R[i, r, k]
                row[3] = c * t[i, 2] - t[i, r]
                s = 1.0 / np.sqrt(row[0] ** 2 + row[1] ** 2 + row[2] ** 2 + row[3] ** 2)
                for a in range(4):
                    for b in range(4):
                        A[a, b] += row[a] * row[b] * s * s
        _, V = np.linalg.eigh(A)
        v = V[:, 0]
        if abs(v[3]) < 1e-14 * (abs(v[0]) + abs(v[1]) + abs(v[2])):
            X[j, :] = np.nan  # at infinity
        else:
            X[j, 0] = v[0] / v[3]
            X[j, 1] = v[1] / v[3]
            X[j, 2] = v[2] / v[3]


@njit(cache=True)
def _midpoint_kernel(R, t, obs_img, xy, order, ptr, X):
    A = np.empty((3, 3))
    b = np.empty(3)
    for j in range(ptr.shape[0] - 1):
        if ptr[j + 1] - ptr[j] < 2:
            X[j, :] = np.nan
            continue
        A[:, :] = 0.0
        b[:] = 0.0
        for e in range(ptr[j], ptr[j + 1]):
            o = order[e]
            i = obs_img[o]
            d = np.empty(3)
            C = np.empty(3)
            for k in range(3):  # d = R^T (x, y, 1), C = -R^T t
                d[k] = R[i, 0, k] * xy[o, 0] + R[i, 1, k] * xy[o, 1] + R[i, 2, k]
                C[k] = -(R[i, 0, k] * t[i, 0] + R[i, 1, k] * t[i, 1] + R[i, 2, k] * t[i, 2])
            d /= np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
            for a in range(3):
                for c in range(3):
                    m = (1.0 if a == c else 0.0) - d[a] * d[c]
                    A[a, c] += m
                    b[a] += m * C[c]
        if abs(np.linalg.det(A)) < 1e-12:
            X[j, :] = np.nan  # parallel rays
        else:
            X[j, :] = np.linalg.solve(A, b)


@njit(cache=True)
def _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, uv, want_jac, J_out, r_out,
                  through_centre=False):
    """Squared pixel error per observation (NaN when the point does not project); with
    ``want_jac`` also the residual (projection - uv) into r_out (M,2) and d uv / d X_world into
    J_out (M,2,3). ``through_centre``: a point behind the camera projects through the centre
    (BAL's model: -X_cam), as one in front."""
    m = obs_img.shape[0]
    out = np.empty(m)
    JX = np.empty((2, 3))
    Jp = np.empty((2, cam_params.shape[1]))
    for o in range(m):
        i = obs_img[o]
        j = obs_pt[o]
        c = img_cam[i]
        Xc = R[i, 0, 0] * X[j, 0] + R[i, 0, 1] * X[j, 1] + R[i, 0, 2] * X[j, 2] + t[i, 0]
        Yc = R[i, 1, 0] * X[j, 0] + R[i, 1, 1] * X[j, 1] + R[i, 1, 2] * X[j, 2] + t[i, 1]
        Zc = R[i, 2, 0] * X[j, 0] + R[i, 2, 1] * X[j, 1] + R[i, 2, 2] * X[j, 2] + t[i, 2]
        if through_centre and Zc < 0.0:
            Xc, Yc, Zc = -Xc, -Yc, -Zc
        u, v = project_one(cam_model[c], cam_params[c, : cam_nparams[c]], Xc, Yc, Zc, want_jac, JX,
                           Jp[:, : cam_nparams[c]])
        ru = u - uv[o, 0]
        rv = v - uv[o, 1]
        out[o] = ru * ru + rv * rv
        if want_jac:
            r_out[o, 0] = ru
            r_out[o, 1] = rv
            for a in range(2):
                for b in range(3):
                    J_out[o, a, b] = JX[a, 0] * R[i, 0, b] + JX[a, 1] * R[i, 1, b] + JX[a, 2] * R[i, 2, b]
    return out


@njit(cache=True)
def _refine_kernel(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, uv, order, ptr, max_iterations):
    """Per point LM on its reprojection error; X updated in place; returns the RMS per point."""
    n = ptr.shape[0] - 1
    rms = np.full(n, np.nan)
    for j in range(n):
        k = ptr[j + 1] - ptr[j]
        if k == 0 or not np.isfinite(X[j, 0] + X[j, 1] + X[j, 2]):
            continue
        idx = order[ptr[j] : ptr[j + 1]]
        oi = obs_img[idx]
        ouv = uv[idx]
        zeros = np.zeros(k, np.int64)
        J = np.empty((k, 2, 3))
        r = np.empty((k, 2))
        Jn = np.empty((k, 2, 3))
        rn = np.empty((k, 2))
        Xp = X[j : j + 1].copy()
        Xn = np.empty((1, 3))
        cost = _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, Xp, oi, zeros, ouv, True, J, r).sum()
        if not np.isfinite(cost):
            continue
        lam = 1e-3
        H = np.empty((3, 3))
        g = np.empty(3)
        for _ in range(max_iterations):
            H[:, :] = 0.0
            g[:] = 0.0
            for q in range(k):
                for a in range(3):
                    g[a] += J[q, 0, a] * r[q, 0] + J[q, 1, a] * r[q, 1]
                    for b in range(3):
                        H[a, b] += J[q, 0, a] * J[q, 0, b] + J[q, 1, a] * J[q, 1, b]
            improved = False
            for _try in range(10):
                Hd = H.copy()
                for a in range(3):
                    Hd[a, a] += lam * max(H[a, a], 1e-12)
                if abs(np.linalg.det(Hd)) < 1e-300:
                    lam *= 10.0
                    continue
                h = np.linalg.solve(Hd, -g)
                Xn[0, :] = Xp[0, :] + h
                cn = _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, Xn, oi, zeros, ouv, True, Jn,
                                   rn).sum()
                if np.isfinite(cn) and cn < cost:
                    small = cost - cn <= 1e-14 * cost or np.sqrt(h @ h) <= 1e-12 * np.sqrt(Xp[0] @ Xp[0])
                    Xp[0, :] = Xn[0, :]
                    J[:, :, :] = Jn
                    r[:, :] = rn
                    cost = cn
                    lam = max(lam / 10.0, 1e-12)
                    improved = not small
                    break
                lam *= 10.0
            if not improved:
                break
        X[j, :] = Xp[0, :]
        rms[j] = np.sqrt(cost / k)
    return rms


@njit(cache=True)
def _angles_kernel(R, t, X, obs_img, order, ptr):
    n = ptr.shape[0] - 1
    out = np.zeros(n)
    for j in range(n):
        k = ptr[j + 1] - ptr[j]
        D = np.empty((k, 3))
        for q in range(k):
            i = obs_img[order[ptr[j] + q]]
            for a in range(3):  # X - C with C = -R^T t
                D[q, a] = X[j, a] + (R[i, 0, a] * t[i, 0] + R[i, 1, a] * t[i, 1] + R[i, 2, a] * t[i, 2])
            D[q] /= np.sqrt(D[q, 0] ** 2 + D[q, 1] ** 2 + D[q, 2] ** 2)
        best = 1.0
        for a in range(k):
            for b in range(a + 1, k):
                c = D[a, 0] * D[b, 0] + D[a, 1] * D[b, 1] + D[a, 2] * D[b, 2]
                best = min(best, c)
        out[j] = np.degrees(np.arccos(max(-1.0, min(1.0, best)))) if k >= 2 else 0.0
    return out


# --------------------------------------------------------------------------------------------------
# robust per-track triangulation (the mapper's)
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
def _midpoint_two_rays(Ca, da, Cb, db):
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
def _sq_error_xy(R, t, i, X, x, y):
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
def _dlt_svd(R, t, imgs, xs, ys):
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
                X, ok = _midpoint_two_rays(Cs[a], ds[a], Cs[b], ds[b])
                if not ok:
                    continue
                cnt = 0
                for q in range(n):
                    if _sq_error_xy(R, t, imgs[q], X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]:
                        cnt += 1
                if cnt > best_n:
                    best_n = cnt
                    best_X[:] = X
        if best_n < 2:
            continue
        # re-estimate from the inliers by DLT and take its inliers
        mask = np.zeros(n, dtype=np.bool_)
        for q in range(n):
            mask[q] = _sq_error_xy(R, t, imgs[q], best_X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]
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
        X, ok = _dlt_svd(R, t, sel_i, sel_x, sel_y)
        if ok:
            cnt = 0
            for q in range(n):
                if _sq_error_xy(R, t, imgs[q], X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]:
                    cnt += 1
            if cnt >= best_n:
                best_X[:] = X
        n_in = 0
        widest = 1.0
        for q in range(n):
            ok_q = _sq_error_xy(R, t, imgs[q], best_X, xs[q], ys[q]) < thr_sq[cand_obs[s + q]]
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
