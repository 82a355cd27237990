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
