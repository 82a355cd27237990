"""Matching by projection: each predicted point position searches the keypoints near it.

A tracker knows roughly where a map point will appear (its 3-D point projected with a predicted
pose); comparing its descriptor only with the keypoints within ``radius`` pixels of that position
costs O(points x keypoints in a window) instead of O(points x keypoints), and the window itself
removes most wrong candidates. :func:`match_by_projection` does this with a grid of
``radius``-sized cells over the keypoints (numba), a ratio test among the candidates of each
point, and one point per keypoint (the closest descriptor wins).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_points, check_positive
from .matching import unit_descriptors

__all__ = ["match_by_projection"]


@njit(cache=True)
def _match_by_projection(pred_uv, pred_ok, A, kp_uv, B, radius, width, height, ratio_sq, max_d_sq):
    n_kp = kp_uv.shape[0]
    cell = radius
    gw = int(width / cell) + 1
    gh = int(height / cell) + 1
    counts = np.zeros(gw * gh + 1, np.int64)
    kcell = np.full(n_kp, -1, np.int64)
    for k in range(n_kp):
        cx = int(kp_uv[k, 0] / cell)
        cy = int(kp_uv[k, 1] / cell)
        if 0 <= cx < gw and 0 <= cy < gh:
            kcell[k] = cy * gw + cx
            counts[kcell[k] + 1] += 1
    for c in range(gw * gh):
        counts[c + 1] += counts[c]
    order = np.empty(counts[gw * gh], np.int64)
    fill = counts[:-1].copy()
    for k in range(n_kp):
        if kcell[k] >= 0:
            order[fill[kcell[k]]] = k
            fill[kcell[k]] += 1
    n_pt = pred_uv.shape[0]
    D = A.shape[1]
    best_kp = np.full(n_pt, -1, np.int64)
    best_d = np.full(n_pt, np.inf)
    r2 = radius * radius
    for p in range(n_pt):
        if not pred_ok[p]:
            continue
        u = pred_uv[p, 0]
        v = pred_uv[p, 1]
        x0 = max(int((u - radius) / cell), 0)
        x1 = min(int((u + radius) / cell), gw - 1)
        y0 = max(int((v - radius) / cell), 0)
        y1 = min(int((v + radius) / cell), gh - 1)
        b1 = np.inf
        b2 = np.inf
        bi = -1
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * gw + cx
                for o in range(counts[c], counts[c + 1]):
                    k = order[o]
                    du = kp_uv[k, 0] - u
                    dv = kp_uv[k, 1] - v
                    if du * du + dv * dv > r2:
                        continue
                    dot = 0.0
                    for q in range(D):
                        dot += A[p, q] * B[k, q]
                    d = 2.0 - 2.0 * dot
                    if d < b1:
                        b2 = b1
                        b1 = d
                        bi = k
                    elif d < b2:
                        b2 = d
        if bi >= 0 and b1 <= max_d_sq and b1 < ratio_sq * b2:
            best_kp[p] = bi
            best_d[p] = b1
    owner = np.full(n_kp, -1, np.int64)
    owner_d = np.full(n_kp, np.inf)
    for p in range(n_pt):
        k = best_kp[p]
        if k >= 0 and best_d[p] < owner_d[k]:
            owner[k] = p
            owner_d[k] = best_d[p]
    n = 0
    for k in range(n_kp):
        if owner[k] >= 0:
            n += 1
    out = np.empty((n, 2), np.int64)
    n = 0
    for p in range(n_pt):
        k = best_kp[p]
        if k >= 0 and owner[k] == p:
            out[n, 0] = p
            out[n, 1] = k
            n += 1
    return out


def match_by_projection(
    predicted_uv: np.ndarray,
    point_descriptors: np.ndarray,
    keypoints: np.ndarray,
    keypoint_descriptors: np.ndarray,
    *,
    radius: float,
    image_size: tuple[int, int],
    ratio: float = 0.9,
    max_distance: float = 0.7,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Match points at ``predicted_uv`` (P,2) pixels with descriptors (P,D) to ``keypoints`` (N,2)
    with descriptors (N,D) of an image of ``image_size`` (width, height).

    A point's candidates are the keypoints within ``radius`` pixels of its prediction; it takes
    the nearest in descriptor distance (unit-norm descriptors, chord distance) when that is at
    most ``max_distance`` and below ``ratio`` times the second nearest candidate's. A keypoint
    goes to at most one point (the nearest). ``valid`` (P,) bool skips points (e.g. behind the
    camera). Returns (K,2) int64 ``(point, keypoint)`` pairs, by point index.
    """
    uv = as_points(predicted_uv, "predicted_uv", 2, finite=False)
    kp = as_points(keypoints, "keypoints", 2)
    A = unit_descriptors(point_descriptors, "point_descriptors")
    B = unit_descriptors(keypoint_descriptors, "keypoint_descriptors")
    if len(A) != len(uv) or len(B) != len(kp):
        raise ValueError(f"descriptors must match the points in number: {len(A)} vs {len(uv)} predictions, "
                         f"{len(B)} vs {len(kp)} keypoints")
    if len(A) and len(B) and A.shape[1] != B.shape[1]:
        raise ValueError(f"point and keypoint descriptors differ in length: {A.shape[1]} vs {B.shape[1]}")
    r = check_positive(radius, "radius")
    ratio = check_positive(ratio, "ratio")
    w, h = (float(v) for v in image_size)
    ok = np.isfinite(uv).all(axis=1) if valid is None else (np.asarray(valid, bool).reshape(len(uv))
                                                           & np.isfinite(uv).all(axis=1))
    if len(uv) == 0 or len(kp) == 0:
        return np.zeros((0, 2), np.int64)
    return _match_by_projection(np.where(ok[:, None], uv, 0.0), ok, A, kp, B, r, w, h, min(ratio, 1.0) ** 2,
                                float(max_distance) ** 2)
