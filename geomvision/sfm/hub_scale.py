"""The scale between two models that share only one viewpoint, from the depths seen there.

When every verified pair between two models meets at one image (the hub), the pairs fix the
rotation between the models and where the other model's cameras lie as seen from the hub, but
not how far: scaling the other model about the hub's centre leaves all of it where it is in the
hub's image. It does change the depths. Where points of both models lie within a few pixels of
each other in the hub's image, they mostly lie on one surface seen from the hub, so at the right
scale their depths agree; a wrong scale (or a wrong pair) leaves no consensus.

Used by :meth:`geomvision.sfm.mapper.IncrementalMapper.merge_into` when the 2D-3D
correspondences across the models do not fix the scale.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

# a point of one model and the nearest of the other within this fraction of the hub image's
# diagonal are taken as one surface seen from the hub (12.8 px at 640 x 480)
NEIGHBOUR_FRACTION = 0.016
# depths "agree" within this ratio (a surface slanted at 60 degrees changes depth by ~5 % over
# the neighbour distance at 0.5 m)
DEPTH_TOLERANCE = 0.05
# a rival is a scale this far (relative) from the best
RIVAL_SEPARATION = 0.1
MAX_CANDIDATES = 400


def scale_from_hub_depths(own_uv: np.ndarray, own_depth: np.ndarray, other_uv: np.ndarray,
                          other_depth: np.ndarray, image_diagonal: float, min_support: int
                          ) -> tuple[float | None, int, int, int]:
    """The unknown ``lam`` that makes nearby points of two models agree in depth in the hub image.

    own_uv (N,2), other_uv (M,2): pixels in the hub image of the points of the hub's model and of
    the other model. own_depth (N,2), other_depth (M,2): each depth as an affine function of the
    unknown, ``d0 + lam d1`` (columns d0, d1), in one frame. Each other point is paired with the
    nearest own point within ``NEIGHBOUR_FRACTION`` of ``image_diagonal`` pixels.

    Returns (lam, support, pairs, rival): ``lam`` is None unless at least ``min_support`` pairs
    and half of all pairs agree within ``DEPTH_TOLERANCE`` at it and no value whose scale (the
    other depths' ratio) differs by ``RIVAL_SEPARATION`` or more has half as much support.
    """
    own_uv, other_uv = np.asarray(own_uv, np.float64), np.asarray(other_uv, np.float64)
    own_depth, other_depth = np.asarray(own_depth, np.float64), np.asarray(other_depth, np.float64)
    if len(own_uv) == 0 or len(other_uv) == 0:
        return None, 0, 0, 0
    dist, nn = cKDTree(own_uv).query(other_uv, distance_upper_bound=NEIGHBOUR_FRACTION * image_diagonal)
    near = np.isfinite(dist)
    w, o = own_depth[nn[near]], other_depth[near]
    n = len(o)
    if n == 0:
        return None, 0, 0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (w[:, 0] - o[:, 0]) / (o[:, 1] - w[:, 1])  # where the two depths are equal
    cand = np.unique(lam[np.isfinite(lam)])
    if len(cand) == 0:
        return None, 0, n, 0
    if len(cand) > MAX_CANDIDATES:  # sorted: an even subset keeps the density where they cluster
        cand = cand[np.linspace(0, len(cand) - 1, MAX_CANDIDATES).astype(np.int64)]
    tol = np.log1p(DEPTH_TOLERANCE)

    def agree(lm: np.ndarray) -> np.ndarray:
        """(len(lm), n) pairs whose depths agree at each value."""
        dw = w[:, 0] + lm[:, None] * w[:, 1]
        do = o[:, 0] + lm[:, None] * o[:, 1]
        ok = (dw > 0) & (do > 0)
        ratio = np.abs(np.log(np.where(ok, do, 1.0) / np.where(ok, dw, 1.0)))
        return ok & (ratio <= tol)

    counts = agree(cand).sum(axis=1)
    best = int(np.argmax(counts))
    support = int(counts[best])
    # how far each value is from the best: the change of one pair's depth ratio (the family
    # scales one model about the hub, so every pair's ratio changes by the same factor)
    d_o, d_w = o[:, 0] + cand[best] * o[:, 1], w[:, 0] + cand[best] * w[:, 1]
    pos = np.flatnonzero((d_o > 0) & (d_w > 0))
    if len(pos) == 0:
        return None, support, n, 0
    k = int(pos[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = ((o[k, 0] + cand * o[k, 1]) / (w[k, 0] + cand * w[k, 1])) / (d_o[k] / d_w[k])
    far = ~(np.abs(rel - 1.0) < RIVAL_SEPARATION)
    rival = int(counts[far].max()) if far.any() else 0
    if support < min_support or 2 * support < n or 2 * rival > support:
        return None, support, n, rival
    inl = agree(np.array([cand[best]]))[0]
    # refine: the median of the agreeing pairs' own solutions
    return float(np.median(lam[inl])), support, n, rival
