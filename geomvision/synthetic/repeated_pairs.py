"""Two-view matches on repeated structure with exact ground truth (hard relative-pose pairs).

A courtyard corner: two perpendicular facades, each a grid of identical windows (the same
template of 3D feature points, with relief, repeated every ``period`` metres) plus a few unique
points per facade. Two cameras look at the corner across a wide baseline. The matches are

- inliers: a point seen by both cameras (Gaussian pixel noise);
- repeated-structure outliers: a point of one window in image 1 matched to *the same template
  point of a neighbouring window* in image 2 (a shift of whole periods along the facade). Every
  group of such matches with the same facade and shift is exactly consistent with a wrong
  relative pose (camera 2 moved by that shift), the way wrong matches on repetitive facades are
  in real images: competing consensus sets, not uniform noise;
- uniform outliers: random pixels in both images.

Each shift group is smaller than the true inlier set (drawn at 30-70 % of it), so the true pose
is the largest consensus, but at 10-30 % inliers a RANSAC that stops early or settles on a
competing group returns a pose that is off by degrees. ``quality`` mimics a ratio-test score
(higher is better): matches on the repeated windows, right or wrong, are ambiguous (low scores),
the unique points score higher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import RngLike, as_rng, check_int, check_positive, check_probability
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .point_scenes import project_visible


@dataclass
class MatchedPair:
    """Matches x1, x2 (N,2) of one camera in two poses, the true ``cam2_from_cam1``, which
    matches are true (``is_inlier`` (N,)) and a ratio-test-like ``quality`` (N,) (higher is
    better)."""

    x1: np.ndarray
    x2: np.ndarray
    camera: Camera
    cam2_from_cam1: Rigid3
    is_inlier: np.ndarray
    quality: np.ndarray


_WINDOW = (1.6, 2.0)  # window period (horizontal, vertical) in metres
_GRID = (9, 4)  # windows per facade (columns, storeys)


def _facade_points(gen: np.random.Generator, template: np.ndarray, origin, e_h, e_v, n_unique: int):
    """World points of one facade: ``template`` (T,3) (h, v, relief) repeated in every window
    cell, and ``n_unique`` random points. Returns (X (P,3), cell (P,2) int, is_repeated (P,))."""
    cols, rows = np.meshgrid(np.arange(_GRID[0]), np.arange(_GRID[1]), indexing="ij")
    cells = np.stack([cols.ravel(), rows.ravel()], axis=1)  # (C,2)
    local = np.repeat(template[None], len(cells), axis=0)  # (C,T,3)
    h = local[..., 0] + cells[:, None, 0] * _WINDOW[0]
    v = local[..., 1] + cells[:, None, 1] * _WINDOW[1]
    normal = np.cross(e_h, e_v)
    X_rep = origin + h[..., None] * e_h + v[..., None] * e_v + local[..., 2:3] * normal
    cell_rep = np.repeat(cells, template.shape[0], axis=0)
    hu = gen.uniform(0.0, _GRID[0] * _WINDOW[0], n_unique)
    vu = gen.uniform(0.0, _GRID[1] * _WINDOW[1], n_unique)
    X_uni = origin + hu[:, None] * e_h + vu[:, None] * e_v + gen.uniform(-0.1, 0.3, (n_unique, 1)) * normal
    X = np.concatenate([X_rep.reshape(-1, 3), X_uni])
    cell = np.concatenate([cell_rep, np.full((n_unique, 2), -1)])
    return X, cell, np.arange(len(X)) < len(cell_rep)


def repeated_structure_pair(
    num_matches: int = 800,
    inlier_ratio: float = 0.15,
    *,
    structured_ratio: float = 0.7,
    baseline_deg: float = 35.0,
    noise_px: float = 0.5,
    camera: Camera | None = None,
    rng: RngLike = None,
) -> MatchedPair:
    """Matches of a wide-baseline pair of views of two repetitive facades (see the module
    docstring): ``num_matches`` matches of which ``inlier_ratio`` are true, ``structured_ratio``
    of the rest shifted by whole window periods (groups of 30-70 % of the inliers' size each) and
    the others uniform. The cameras are 11-14 m from the corner, ``baseline_deg`` apart as seen
    from it. Default camera: PINHOLE 1536 x 1024, f = 1380 px."""
    num_matches = check_int(num_matches, "num_matches", minimum=20)
    inlier_ratio = check_probability(inlier_ratio, "inlier_ratio")
    structured_ratio = check_probability(structured_ratio, "structured_ratio", open_interval=False)
    baseline = np.radians(check_positive(baseline_deg, "baseline_deg"))
    noise_px = check_positive(noise_px, "noise_px", allow_zero=True)
    cam = Camera("PINHOLE", 1536, 1024, [1380.0, 1380.0, 767.5, 511.5]) if camera is None else camera
    gen = as_rng(rng)

    # a window template: frame corners at the facade, glass recessed, a sill standing out
    n_t = 14
    template = np.column_stack([gen.uniform(0.2, 1.4, n_t), gen.uniform(0.3, 1.8, n_t),
                                gen.choice([0.0, -0.25, 0.15], n_t)])
    width = _GRID[0] * _WINDOW[0]
    facades = [  # (origin, e_h, e_v) of the two walls, meeting at the origin, z up
        (np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])),
        (np.array([0.0, width, 0.0]), np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])),
    ]
    parts = [_facade_points(gen, template, o, eh, ev, n_unique=60) for o, eh, ev in facades]

    # cameras in the courtyard, looking at the corner region from baseline_deg apart
    target = np.array([width / 2.5, width / 2.5, 3.5]) + gen.normal(scale=0.5, size=3) * [1, 1, 0.3]
    a0 = np.radians(45.0) + gen.uniform(-0.3, 0.3) - baseline / 2
    poses = []
    for a in (a0, a0 + baseline):
        dist = gen.uniform(11.0, 14.0)
        C = target + dist * np.array([np.cos(a), np.sin(a), 0.0]) + [0.0, 0.0, gen.uniform(-1.5, 1.5)]
        aim = target + gen.normal(scale=0.4, size=3)
        poses.append(Rigid3.look_at(C, aim))
    T1, T2 = poses

    n_in = max(5, int(round(inlier_ratio * num_matches)))
    n_out = num_matches - n_in
    n_struct = int(round(structured_ratio * n_out))
    x1s, x2s, q = [], [], []
    # inliers: points both cameras see, from both facades
    X_all = np.concatenate([p[0] for p in parts])
    rep_all = np.concatenate([p[2] for p in parts])
    uv1, ok1 = project_visible(cam, T1, X_all)
    uv2, ok2 = project_visible(cam, T2, X_all)
    both = np.flatnonzero(ok1 & ok2)
    pick = gen.choice(both, size=n_in, replace=len(both) < n_in)
    x1s.append(uv1[pick])
    x2s.append(uv2[pick])
    q.append(np.where(rep_all[pick], gen.uniform(0.0, 0.25, n_in), gen.uniform(0.15, 0.6, n_in)))

    # repeated-structure outliers: groups (facade, shift) of 30-70 % of the inliers' size
    shifts = [(dh, dv) for dh in (-2, -1, 1, 2) for dv in (-1, 0, 1)]
    left = n_struct
    groups = [(f, d) for f in range(2) for d in shifts]
    for g in gen.permutation(len(groups)):  # each (facade, shift) once; off-screen ones skipped
        if left <= 0:
            break
        f, (dh, dv) = groups[g]
        size = min(left, max(3, int(gen.uniform(0.3, 0.7) * n_in)))
        X, cell, rep = parts[f]
        origin, e_h, e_v = facades[f]
        shifted = X + (dh * _WINDOW[0]) * e_h + (dv * _WINDOW[1]) * e_v
        inside = rep & (cell[:, 0] + dh >= 0) & (cell[:, 0] + dh < _GRID[0])
        inside &= (cell[:, 1] + dv >= 0) & (cell[:, 1] + dv < _GRID[1])
        u1, v1 = project_visible(cam, T1, X)
        u2, v2 = project_visible(cam, T2, shifted)
        cand = np.flatnonzero(inside & v1 & v2)
        if len(cand) < size:
            continue
        sel = gen.choice(cand, size=size, replace=False)
        x1s.append(u1[sel])
        x2s.append(u2[sel])
        q.append(gen.uniform(0.0, 0.25, size))
        left -= size

    n_uni = n_out - n_struct + max(left, 0)
    hi = [cam.width - 1, cam.height - 1]
    x1s.append(gen.uniform([0, 0], hi, size=(n_uni, 2)))
    x2s.append(gen.uniform([0, 0], hi, size=(n_uni, 2)))
    q.append(gen.uniform(0.0, 0.4, n_uni))

    x1 = np.concatenate(x1s)
    x2 = np.concatenate(x2s)
    if noise_px > 0:
        x1 = x1 + gen.normal(scale=noise_px, size=x1.shape)
        x2 = x2 + gen.normal(scale=noise_px, size=x2.shape)
    is_inlier = np.arange(len(x1)) < n_in
    perm = gen.permutation(len(x1))
    return MatchedPair(x1[perm], x2[perm], cam, T2 @ T1.inverse(), is_inlier[perm], np.concatenate(q)[perm])
