"""Synthetic bundle-adjustment problems for the scaling curve of ``bench_ba.py``.

A street-like sequence: ``n_cams`` cameras 1 unit apart along x, looking down +z with small
random rotations; points in a slab 8..12 units ahead; a point is observed by every camera
whose field of view (+-0.3 rad, about 6 cameras) contains it, so observations grow linearly
with the number of cameras (~1,000 per camera). RADIAL cameras (f = 800, k1, k2) with
cx = cy = 0, one per image, exactly like a BAL problem. Noise 0.5 px; the start is perturbed
(points and centres by 0.02, rotations by 0.1 deg, focal length by 1 %).
"""

from __future__ import annotations

import numpy as np

from geomvision.geometry.rotation import so3_exp
from geomvision.optim import BAProblem


def street_problem(n_cams: int, points_per_cam: int = 170, seed: int = 0) -> BAProblem:
    rng = np.random.default_rng(seed)
    n_pts = n_cams * points_per_cam
    X = np.column_stack([rng.uniform(-2.0, n_cams + 1.0, n_pts), rng.uniform(-2.5, 2.5, n_pts),
                         rng.uniform(8.0, 12.0, n_pts)])
    C = np.column_stack([np.arange(n_cams, dtype=float), np.zeros(n_cams), np.zeros(n_cams)])
    R = so3_exp(rng.normal(scale=np.radians(1.0), size=(n_cams, 3))).reshape(-1, 3, 3)
    t = -np.einsum("nij,nj->ni", R, C)
    # visibility: each point is seen by the cameras whose x lies within 0.3 z of it
    order = np.argsort(X[:, 0])
    X = X[order]
    lo = np.searchsorted(C[:, 0], X[:, 0] - 0.3 * X[:, 2])
    hi = np.searchsorted(C[:, 0], X[:, 0] + 0.3 * X[:, 2])
    counts = hi - lo
    keep = counts >= 2
    X, lo, counts = X[keep], lo[keep], counts[keep]
    obs_pt = np.repeat(np.arange(len(X)), counts)
    obs_img = lo[obs_pt] + (np.arange(len(obs_pt)) - np.repeat(np.cumsum(counts) - counts, counts))
    f, k1, k2 = 800.0, -0.05, 0.01
    Xc = np.einsum("nij,nj->ni", R[obs_img], X[obs_pt]) + t[obs_img]
    xy = Xc[:, :2] / Xc[:, 2:]
    r2 = np.sum(xy**2, axis=1, keepdims=True)
    uv = f * (1 + k1 * r2 + k2 * r2**2) * xy + rng.normal(scale=0.5, size=xy.shape)
    # perturbed start
    Cs = C + rng.normal(scale=0.02, size=C.shape)
    Rs = np.einsum("nij,njk->nik", so3_exp(rng.normal(scale=np.radians(0.1), size=(n_cams, 3))).reshape(-1, 3, 3), R)
    ts = -np.einsum("nij,nj->ni", Rs, Cs)
    Xs = X + rng.normal(scale=0.02, size=X.shape)
    params = np.tile([f * 1.01, 0.0, 0.0, k1, k2], (n_cams, 1))
    return BAProblem.from_arrays(Rs, ts, np.arange(n_cams), ["RADIAL"] * n_cams, params, Xs, obs_img, obs_pt, uv)


# --------------------------------------------------------------------- BAL-like street problems
def _look(yaw: np.ndarray) -> np.ndarray:
    """world_from_cam rotations (K,3,3) of level cameras looking along the horizontal heading
    ``yaw`` (radians from +x towards +y); camera y points down (world z is up)."""
    d = np.column_stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)])
    y_c = np.broadcast_to([0.0, 0.0, -1.0], d.shape)
    x_c = np.cross(y_c, d)
    return np.stack([x_c, y_c, d], axis=2)


def _triangulate_dlt(R, t, f, obs_img, obs_pt, xy, n_pts) -> np.ndarray:
    """Linear (DLT) triangulation of every point from normalised coordinates xy / f, no test of
    the side of the camera (as a first estimate in incremental SfM)."""
    A = np.zeros((n_pts, 4, 4))
    xn = xy / f[obs_img, None]
    P = np.concatenate([R[obs_img], t[obs_img, :, None]], axis=2)  # (M,3,4)
    rows = np.stack([xn[:, :1] * P[:, 2] - P[:, 0], xn[:, 1:] * P[:, 2] - P[:, 1]], axis=1)  # (M,2,4)
    rows /= np.linalg.norm(rows, axis=2, keepdims=True)
    np.add.at(A, obs_pt, np.einsum("mki,mkj->mij", rows, rows))
    _, vecs = np.linalg.eigh(A)
    h = vecs[:, :, 0]
    return h[:, :3] / h[:, 3:4]


def bal_street_problem(n_positions: int = 13, *, rig: int = 4, seed: int = 0, street_step: float = 1.5,
                       points_per_position: int = 700, noise_px: float = 0.7, outlier_fraction: float = 0.01,
                       keep_probability: float = 0.45, drift_deg: float = 1.5, drift_pos: float = 0.2,
                       max_start_error_px: float = 30.0, keep_flipped: float = 0.05) -> BAProblem:
    """A problem shaped like BAL's Ladybug files: a vehicle with a ``rig`` of cameras looking in
    ``rig`` horizontal directions drives ``n_positions`` steps down a gently curving street
    (``n_positions * rig`` images, f = 500 px, k1 = -0.08, k2 = 0.02, 1024 x 768 px); points on
    the facades on both sides (3-35 units away) and far points down the street and beyond
    (40-400 units). Observations: Gaussian noise ``noise_px`` plus ``outlier_fraction`` of 4 px
    blunders; tracks broken at random (``keep_probability`` per visible view, so mean track ~4).

    The start is what an incremental reconstruction hands to the final BA: poses that drifted
    along the street (random walks in heading, pitch and roll and in position, shared by the rig's
    cameras, whose end-to-end spread is ``drift_deg`` and ``drift_pos`` whatever the number of
    steps, plus 0.05 deg per image),
    focal lengths 2 % off, k1 0.02 off and k2 = 0, and points triangulated linearly from those
    poses: far points seen over short baselines can flip through infinity and land behind their
    cameras. An incremental SfM would drop most of those points and the observations more than
    ``max_start_error_px`` from their start projection; this keeps ``keep_flipped`` of them
    (about 0.1 % of the observations end behind their camera, as in BAL's Ladybug: 31 of
    31,843). Returned with ``cheirality=False`` (BAL's projection), like ``read_bal``.
    """
    from geomvision.io.bal import bal_to_problem, problem_to_bal

    rng = np.random.default_rng(seed)
    n_img = n_positions * rig
    f_true, k1_true, k2_true = 500.0, -0.08, 0.02
    half_w, half_h = 512.0, 384.0
    # trajectory
    s = street_step * np.arange(n_positions)
    length = s[-1] if n_positions > 1 else 1.0
    path = np.column_stack([s, 3.0 * np.sin(2 * np.pi * s / max(length, 30.0)), np.full(n_positions, 1.5)])
    dpath = np.gradient(path[:, :2], axis=0) if n_positions > 1 else np.array([[1.0, 0.0]])
    heading = np.arctan2(dpath[:, 1], dpath[:, 0])
    yaw = (heading[:, None] + 2 * np.pi * np.arange(rig)[None, :] / rig).ravel()
    wfc = _look(yaw)  # world_from_cam
    C = np.repeat(path, rig, axis=0)
    R = np.transpose(wfc, (0, 2, 1))
    t = -np.einsum("nij,nj->ni", R, C)
    # points: facades (both sides) and far points
    n_pts = n_positions * points_per_position
    n_far = n_pts // 4
    n_fac = n_pts - n_far
    u = rng.uniform(-20.0, length + 20.0, n_fac)
    side = rng.choice([-1.0, 1.0], n_fac)
    lat = np.interp(u, s, path[:, 1]) if n_positions > 1 else np.zeros(n_fac)
    facades = np.column_stack([u, lat + side * rng.uniform(7.0, 9.0, n_fac), rng.uniform(0.0, 12.0, n_fac)])
    ang = rng.uniform(0, 2 * np.pi, n_far)
    dist = np.exp(rng.uniform(np.log(40.0), np.log(1000.0), n_far))
    centre = rng.uniform(0.0, length, n_far)
    far = np.column_stack([centre + dist * np.cos(ang), dist * np.sin(ang), rng.uniform(0.0, 0.15, n_far) * dist])
    X = np.concatenate([facades, far])
    # visibility (front, inside the image, not too far for a facade feature), then broken tracks
    Xc = np.einsum("nij,mj->nmi", R, X) + t[:, None, :]
    z = Xc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = Xc[..., 0] / z
        y = Xc[..., 1] / z
    r2 = x * x + y * y
    d = 1.0 + k1_true * r2 + k2_true * r2 * r2
    uv_x, uv_y = f_true * d * x, f_true * d * y
    rng_cam = np.linalg.norm(Xc, axis=2)
    is_far = np.arange(len(X)) >= n_fac
    vis = (z > 1.0) & (np.abs(uv_x) < half_w) & (np.abs(uv_y) < half_h) & (r2 < 1.5)
    # a facade feature is matched up to 20 units away, a far one over 30 units of the street
    vis &= np.where(is_far[None, :], np.abs(C[:, :1] - np.r_[np.zeros(n_fac), centre][None, :]) < 15.0,
                    rng_cam < 20.0)
    vis &= rng.random(vis.shape) < keep_probability
    counts = vis.sum(axis=0)
    keep_pt = counts >= 2
    vis = vis[:, keep_pt]
    X = X[keep_pt]
    uv_x, uv_y = uv_x[:, keep_pt], uv_y[:, keep_pt]
    obs_img, obs_pt = np.nonzero(vis)
    order = np.lexsort((obs_img, obs_pt))
    obs_img, obs_pt = obs_img[order], obs_pt[order]
    uv = np.column_stack([uv_x[obs_img, obs_pt], uv_y[obs_img, obs_pt]])
    uv += rng.normal(scale=noise_px, size=uv.shape)
    blunder = rng.random(len(uv)) < outlier_fraction
    uv[blunder] += rng.normal(scale=4.0, size=(int(blunder.sum()), 2))
    # the drifted start
    walk = lambda sigma, k: np.cumsum(rng.normal(scale=sigma, size=(n_positions, k)), axis=0)
    per_step = 1.0 / np.sqrt(max(n_positions - 1, 1))
    dR_pos = so3_exp(np.radians(walk(drift_deg * per_step, 3))).reshape(-1, 3, 3)
    dR = np.einsum("nij,njk->nik", so3_exp(rng.normal(scale=np.radians(0.05), size=(n_img, 3))).reshape(-1, 3, 3),
                   np.repeat(dR_pos, rig, axis=0))
    C0 = C + np.repeat(walk(drift_pos * per_step, 3), rig, axis=0)
    R0 = np.einsum("nij,njk->nik", R, dR)  # cam_from_world perturbed on the world side
    t0 = -np.einsum("nij,nj->ni", R0, C0)
    f0 = f_true * (1.0 + rng.normal(scale=0.02, size=n_img))
    # linear triangulation of the start points (undistorted with the true k; the start k is 0)
    r2o = (uv[:, 0] ** 2 + uv[:, 1] ** 2) / f_true**2
    xy_und = uv / (1.0 + k1_true * r2o + k2_true * r2o**2)[:, None]
    X0 = _triangulate_dlt(R0, t0, f0, obs_img, obs_pt, xy_und, len(X))
    # what an incremental SfM keeps before its final BA: points in front of most of their cameras
    # (the linear solution of a far point can flip through infinity: ``keep_flipped`` of those are
    # kept, legal in BAL's model and what real files hold), observations within
    # ``max_start_error_px`` of their start projection, points still seen twice
    k10 = k1_true + rng.normal(scale=0.02, size=n_img)
    params = np.column_stack([f0, np.zeros(n_img), np.zeros(n_img), k10, np.zeros(n_img)])
    X0 = np.where(np.isfinite(X0), X0, 0.0)
    depth = np.einsum("mj,mj->m", R0[obs_img, 2], X0[obs_pt]) + t0[obs_img, 2]
    n_seen = np.bincount(obs_pt, minlength=len(X))
    front = np.bincount(obs_pt, weights=(depth > 0).astype(float), minlength=len(X)) / np.maximum(n_seen, 1)
    ok_pt = (front >= 0.5) | (rng.random(len(X)) < keep_flipped)
    keep_obs = ok_pt[obs_pt]
    tmp = BAProblem.from_arrays(R0, t0, np.arange(n_img), ["RADIAL"] * n_img, params, X0, obs_img[keep_obs],
                                obs_pt[keep_obs], uv[keep_obs], cheirality=False)
    err = np.sqrt(tmp.sq_errors())
    keep = np.isfinite(err) & (err < max_start_error_px)
    obs_img, obs_pt, uv = tmp.obs_img[keep], tmp.obs_pt[keep], tmp.obs_uv[keep]
    ok = np.bincount(obs_pt, minlength=len(X)) >= 2
    keep_obs = ok[obs_pt]
    remap = np.cumsum(ok) - 1
    obs_img, obs_pt, uv = obs_img[keep_obs], remap[obs_pt[keep_obs]], uv[keep_obs]
    ours = BAProblem.from_arrays(R0, t0, np.arange(n_img), ["RADIAL"] * n_img, params, X0[ok], obs_img, obs_pt, uv)
    return bal_to_problem(*problem_to_bal(ours))  # through the BAL arrays: cheirality=False, exactly like a file
