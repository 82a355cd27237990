"""numba kernels of bundle adjustment over flat observation arrays.

Layout (structure of arrays; ``P`` = widest camera model in the problem):

    R (I,3,3), t (I,3)        cam_from_world of every image: X_cam = R X + t
    cam_model (C,), cam_params (C,P), cam_nparams (C,)   intrinsics, shared by ``img_cam`` (I,)
    X (N,3)                   points in world
    obs_img (M,), obs_pt (M,), obs_uv (M,2)              observations
    obs_inv_sigma (M,)        1 / standard deviation (pixels) of each observation

Local parameter update (written down once, here): for image i and point j

    R_i <- R_i @ so3_exp(dw_i),   t_i <- t_i + dt_i,   params_c <- params_c + dp_c,   X_j <- X_j + dX_j

so d X_cam / d dw = -R [X]_x, d X_cam / d dt = I and d X_cam / d X = R. The per-observation
camera-side Jacobian ``Jc`` (M,2,6+P) has columns (dw, dt, dparams); the point Jacobian ``Jp``
is (M,2,3). Both, and the residual ``r = pi(X) - uv`` (M,2), are multiplied by
``q sqrt(rho'(q^2 |r|^2))`` with ``q = obs_inv_sigma``: the loss acts on the residual in units of its
standard deviation (IRLS form of a robust loss; see ``losses.py``); reported squared errors stay
in pixels. Observations whose point projects to NaN
(behind the camera, or NaN input) make the cost infinite: the LM driver rejects such steps.

``cheirality`` (the last argument of every observation kernel, default True): with False a point
behind its camera (Z < 0) projects through the centre like one in front, x = X / Z = (-X) / (-Z):
the kernels project (-X_cam) and flip the sign of d uv / d X_cam. This is the camera model of BAL
files (p = -P / P.z, the sign of P.z untested), which Ceres's BAL examples follow; only Z = 0 is
then invalid.

Each loop over observations is written once over a range (``_*_range``) and driven serially
(``evaluate``, ``linearize``) or by a parallel twin over chunks (``*_parallel``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..geometry._camera_kernels import project_one
from ..geometry._rotation_kernels import so3_exp_into
from ..geometry._triangulation_kernels import _project_flat
from .losses import loss_rho


@njit(cache=True)
def _evaluate_range(lo, hi, R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                    loss_scale, cheirality):
    """(0.5 sum rho, sum of squared errors, non-finite count) over observations lo..hi-1."""
    cost = 0.0
    sq = 0.0
    bad = 0
    dJX = np.empty((2, 3))
    dJp = np.empty((2, cam_params.shape[1]))
    for o in range(lo, hi):
        i = obs_img[o]
        j = obs_pt[o]
        c = img_cam[i]
        Xw0 = X[j, 0]
        Xw1 = X[j, 1]
        Xw2 = X[j, 2]
        Xc = R[i, 0, 0] * Xw0 + R[i, 0, 1] * Xw1 + R[i, 0, 2] * Xw2 + t[i, 0]
        Yc = R[i, 1, 0] * Xw0 + R[i, 1, 1] * Xw1 + R[i, 1, 2] * Xw2 + t[i, 1]
        Zc = R[i, 2, 0] * Xw0 + R[i, 2, 1] * Xw1 + R[i, 2, 2] * Xw2 + t[i, 2]
        np_c = cam_nparams[c]
        if not cheirality and Zc < 0.0:  # BAL: through the centre whatever the sign of the depth
            Xc, Yc, Zc = -Xc, -Yc, -Zc
        u, v = project_one(cam_model[c], cam_params[c, :np_c], Xc, Yc, Zc, False, dJX, dJp[:, :np_c])
        ru = u - obs_uv[o, 0]
        rv = v - obs_uv[o, 1]
        s = ru * ru + rv * rv
        if np.isfinite(s):
            q = obs_inv_sigma[o]
            rho, _ = loss_rho(loss_id, loss_scale, q * q * s)
            cost += 0.5 * rho
            sq += s
        else:
            bad += 1
    return cost, sq, bad


@njit(cache=True)
def _linearize_range(lo, hi, R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                     loss_scale, r, Jc, Jp, cheirality):
    """``linearize`` over observations lo..hi-1."""
    P = cam_params.shape[1]
    cost = 0.0
    sq = 0.0
    bad = 0
    JX = np.empty((2, 3))
    for o in range(lo, hi):
        i = obs_img[o]
        j = obs_pt[o]
        c = img_cam[i]
        Xw0 = X[j, 0]
        Xw1 = X[j, 1]
        Xw2 = X[j, 2]
        Xc = R[i, 0, 0] * Xw0 + R[i, 0, 1] * Xw1 + R[i, 0, 2] * Xw2 + t[i, 0]
        Yc = R[i, 1, 0] * Xw0 + R[i, 1, 1] * Xw1 + R[i, 1, 2] * Xw2 + t[i, 1]
        Zc = R[i, 2, 0] * Xw0 + R[i, 2, 1] * Xw1 + R[i, 2, 2] * Xw2 + t[i, 2]
        np_c = cam_nparams[c]
        for k in range(6 + np_c, 6 + P):
            Jc[o, 0, k] = 0.0
            Jc[o, 1, k] = 0.0
        flip = not cheirality and Zc < 0.0  # BAL: project -X_cam, then d uv / d X_cam = -JX
        if flip:
            Xc, Yc, Zc = -Xc, -Yc, -Zc
        u, v = project_one(cam_model[c], cam_params[c, :np_c], Xc, Yc, Zc, True, JX, Jc[o, :, 6 : 6 + np_c])
        if flip:
            for a in range(2):
                for b in range(3):
                    JX[a, b] = -JX[a, b]
        ru = u - obs_uv[o, 0]
        rv = v - obs_uv[o, 1]
        s = ru * ru + rv * rv
        if not np.isfinite(s):
            bad += 1
            r[o, 0] = 0.0
            r[o, 1] = 0.0
            for k in range(6 + P):
                Jc[o, 0, k] = 0.0
                Jc[o, 1, k] = 0.0
            for k in range(3):
                Jp[o, 0, k] = 0.0
                Jp[o, 1, k] = 0.0
            continue
        q = obs_inv_sigma[o]
        rho, d1 = loss_rho(loss_id, loss_scale, q * q * s)
        cost += 0.5 * rho
        sq += s
        w = q * np.sqrt(d1)
        r[o, 0] = w * ru
        r[o, 1] = w * rv
        for a in range(2):
            # d uv / d X_world = JX R
            for b in range(3):
                Jp[o, a, b] = w * (JX[a, 0] * R[i, 0, b] + JX[a, 1] * R[i, 1, b] + JX[a, 2] * R[i, 2, b])
            # d X_cam / d dw = R (-[X]_x), -[X]_x = [[0, Z, -Y], [-Z, 0, X], [Y, -X, 0]] (column b below)
            for b in range(3):
                if b == 0:
                    m0, m1, m2 = 0.0, -Xw2, Xw1
                elif b == 1:
                    m0, m1, m2 = Xw2, 0.0, -Xw0
                else:
                    m0, m1, m2 = -Xw1, Xw0, 0.0
                acc = 0.0
                for q in range(3):
                    acc += JX[a, q] * (R[i, q, 0] * m0 + R[i, q, 1] * m1 + R[i, q, 2] * m2)
                Jc[o, a, b] = w * acc
                Jc[o, a, 3 + b] = w * JX[a, b]
            for k in range(np_c):
                Jc[o, a, 6 + k] *= w
    return cost, sq, bad


@njit(cache=True)
def evaluate(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
             loss_scale, cheirality=True):
    """(cost = 0.5 sum rho, sum of squared pixel errors, number of non-finite residuals)."""
    return _evaluate_range(0, obs_img.shape[0], R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img,
                           obs_pt, obs_uv, obs_inv_sigma, loss_id, loss_scale, cheirality)


@njit(cache=True, parallel=True)
def evaluate_parallel(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                      loss_scale, nchunks, cheirality=True):
    """``evaluate`` split into ``nchunks`` parallel chunks."""
    m = obs_img.shape[0]
    cost = 0.0
    sq = 0.0
    bad = 0
    for k in prange(nchunks):
        c_, s_, b_ = _evaluate_range(k * m // nchunks, (k + 1) * m // nchunks, R, t, cam_model, cam_params,
                                     cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                                     loss_scale, cheirality)
        cost += c_
        sq += s_
        bad += b_
    return cost, sq, bad


@njit(cache=True)
def sq_errors(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, cheirality=True):
    """Squared pixel error per observation (M,); NaN where the point does not project."""
    return _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, False,
                         np.empty((0, 2, 3)), np.empty((0, 2)), not cheirality)


@njit(cache=True)
def linearize(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id, loss_scale, r,
              Jc, Jp, cheirality=True):
    """Fill weighted residuals r (M,2), camera Jacobians Jc (M,2,6+P) and point Jacobians Jp (M,2,3).

    Columns of Jc: dw (3), dt (3), then d params (cam_nparams of the image's camera; the rest 0).
    Returns (cost, sum of squared pixel errors, number of non-finite residuals).
    """
    return _linearize_range(0, obs_img.shape[0], R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img,
                            obs_pt, obs_uv, obs_inv_sigma, loss_id, loss_scale, r, Jc, Jp, cheirality)


@njit(cache=True, parallel=True)
def linearize_parallel(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                       loss_scale, r, Jc, Jp, nchunks, cheirality=True):
    """``linearize`` split into ``nchunks`` parallel chunks."""
    m = obs_img.shape[0]
    cost = 0.0
    sq = 0.0
    bad = 0
    for k in prange(nchunks):
        c_, s_, b_ = _linearize_range(k * m // nchunks, (k + 1) * m // nchunks, R, t, cam_model, cam_params,
                                      cam_nparams, img_cam, X, obs_img, obs_pt, obs_uv, obs_inv_sigma, loss_id,
                                      loss_scale, r, Jc, Jp, cheirality)
        cost += c_
        sq += s_
        bad += b_
    return cost, sq, bad


@njit(cache=True)
def apply_update(R, t, cam_params, X, pose_col, intr_col, pt_col, h_c, h_p, R_out, t_out, params_out, X_out):
    """Candidate parameters x (+) h. ``pose_col`` (I,6) / ``intr_col`` (C,P) give the index of each
    local parameter in the reduced camera vector ``h_c`` (-1: fixed); ``pt_col`` (N,) the row of
    each point in ``h_p`` (N',3) (-1: fixed)."""
    n_img = R.shape[0]
    W = np.empty((3, 3))
    w = np.empty(3)
    for i in range(n_img):
        w[:] = 0.0
        for k in range(3):
            col = pose_col[i, k]
            if col >= 0:
                w[k] = h_c[col]
        for k in range(3):
            col = pose_col[i, 3 + k]
            t_out[i, k] = t[i, k] + (h_c[col] if col >= 0 else 0.0)
        so3_exp_into(w[0], w[1], w[2], W)
        for a in range(3):
            for b in range(3):
                R_out[i, a, b] = R[i, a, 0] * W[0, b] + R[i, a, 1] * W[1, b] + R[i, a, 2] * W[2, b]
    for c in range(cam_params.shape[0]):
        for k in range(cam_params.shape[1]):
            col = intr_col[c, k]
            params_out[c, k] = cam_params[c, k] + (h_c[col] if col >= 0 else 0.0)
    for j in range(X.shape[0]):
        row = pt_col[j]
        for k in range(3):
            X_out[j, k] = X[j, k] + (h_p[row, k] if row >= 0 else 0.0)
