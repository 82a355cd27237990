"""Guided matching: descriptor matching restricted to the candidates that geometry admits.

Two uses, one grid and one descriptor comparison (numba):

- :func:`match_by_projection` (the online mapper's tracker): a map point's predicted position in
  an image (its 3-D point projected with a predicted pose) searches only the keypoints within
  ``radius`` pixels of it; the ratio test runs among those candidates and each keypoint goes to
  at most one point.
- :func:`match_guided` (guided re-matching after two-view verification, COLMAP's
  ``guided_matching``): with a pair's verified fundamental matrix (or homography), a keypoint of
  image 1 is compared only with the keypoints of image 2 within ``max_error`` pixels of its
  epipolar line (whose own epipolar line in image 1 passes within ``max_error`` of it too), or of
  its homography transfer. The ratio test and the mutual check run among these admissible
  candidates only, so a window among identical windows, which the global ratio test rejects
  (its twins are as close in descriptor space), is matched when the geometry leaves it one
  candidate.

Both search a grid of square cells over the keypoints of the second image (a CSR layout:
``cell_start`` / ``cell_items``): a disc visits the cells it overlaps, an epipolar band the cells
along the line. The grid only accelerates: every candidate is tested exactly, so the result equals
the brute force over all pairs (tested against a numpy reference).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._validation import as_array, as_points, check_positive
from ..robust.fundamental import sampson_sq_errors_flat
from ..robust.homography import transfer_sq_errors
from .matching import unit_descriptors

__all__ = ["match_by_projection", "match_guided"]


@njit(cache=True)
def _grid(uv, ok, x_lo, y_lo, cell, gw, gh):
    """CSR grid of the points ``uv`` (N,2) with ``ok``: cell of point k = (cy * gw + cx), cells of
    ``cell`` pixels from (x_lo, y_lo); points outside go to the border cells (a query clamps its
    cell range the same way, so nothing is missed). Returns (cell_start (gw*gh+1,), cell_items)."""
    n = uv.shape[0]
    start = np.zeros(gw * gh + 1, np.int64)
    kcell = np.full(n, -1, np.int64)
    for k in range(n):
        if not ok[k]:
            continue
        cx = min(max(int(math.floor((uv[k, 0] - x_lo) / cell)), 0), gw - 1)
        cy = min(max(int(math.floor((uv[k, 1] - y_lo) / cell)), 0), gh - 1)
        kcell[k] = cy * gw + cx
        start[kcell[k] + 1] += 1
    for c in range(gw * gh):
        start[c + 1] += start[c]
    items = np.empty(start[gw * gh], np.int64)
    fill = start[:-1].copy()
    for k in range(n):
        if kcell[k] >= 0:
            items[fill[kcell[k]]] = k
            fill[kcell[k]] += 1
    return start, items


@njit(cache=True, inline="always")
def _cell_index(x, lo, cell, n):
    return min(max(int(math.floor((x - lo) / cell)), 0), n - 1)


@njit(cache=True, fastmath=True)
def _chord_sq(A, p, B, k):
    """Squared distance of unit descriptors A[p], B[k]: 2 - 2 cos."""
    dot = 0.0
    for q in range(A.shape[1]):
        dot += A[p, q] * B[k, q]
    return 2.0 - 2.0 * dot


@njit(cache=True)
def _match_by_projection(pred_uv, pred_ok, A, kp_uv, B, radius, width, height, ratio_sq, max_d_sq):
    n_kp = kp_uv.shape[0]
    cell = radius
    gw = int(width / cell) + 1
    gh = int(height / cell) + 1
    start, items = _grid(kp_uv, np.ones(n_kp, np.bool_), 0.0, 0.0, cell, gw, gh)
    n_pt = pred_uv.shape[0]
    best_kp = np.full(n_pt, -1, np.int64)
    best_d = np.full(n_pt, np.inf)
    r2 = radius * radius
    for p in range(n_pt):
        if not pred_ok[p]:
            continue
        u = pred_uv[p, 0]
        v = pred_uv[p, 1]
        b1 = np.inf
        b2 = np.inf
        bi = -1
        for cy in range(_cell_index(v - radius, 0.0, cell, gh), _cell_index(v + radius, 0.0, cell, gh) + 1):
            for cx in range(_cell_index(u - radius, 0.0, cell, gw), _cell_index(u + radius, 0.0, cell, gw) + 1):
                c = cy * gw + cx
                for o in range(start[c], start[c + 1]):
                    k = items[o]
                    du = kp_uv[k, 0] - u
                    dv = kp_uv[k, 1] - v
                    if du * du + dv * dv > r2:
                        continue
                    d = _chord_sq(A, p, B, k)
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


def _unit_pair(desc1, desc2, n1: int, n2: int, names: tuple[str, str], what: tuple[str, str]):
    """Both descriptor sets as unit float32 rows, checked against their n1 / n2 points (``what``
    names those in the message) and against each other's length."""
    A = unit_descriptors(desc1, names[0])
    B = unit_descriptors(desc2, names[1])
    if len(A) != n1 or len(B) != n2:
        raise ValueError(f"descriptors must match their points in number: {names[0]} has {len(A)} for {n1} "
                         f"{what[0]}, {names[1]} {len(B)} for {n2} {what[1]}")
    if len(A) and len(B) and A.shape[1] != B.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length D, got {A.shape[1]} and {B.shape[1]}")
    return A, B


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
    A, B = _unit_pair(point_descriptors, keypoint_descriptors, len(uv), len(kp),
                      ("point_descriptors", "keypoint_descriptors"), ("predictions", "keypoints"))
    r = check_positive(radius, "radius")
    ratio = check_positive(ratio, "ratio")
    w, h = (float(v) for v in image_size)
    ok = np.isfinite(uv).all(axis=1) if valid is None else (np.asarray(valid, bool).reshape(len(uv))
                                                           & np.isfinite(uv).all(axis=1))
    if len(uv) == 0 or len(kp) == 0:
        return np.zeros((0, 2), np.int64)
    return _match_by_projection(np.where(ok[:, None], uv, 0.0), ok, A, kp, B, r, w, h, min(ratio, 1.0) ** 2,
                                float(max_distance) ** 2)


@njit(cache=True, inline="always")
def _push_row(d, k, b1, b2, bi):
    """Top-2 update of one row with candidate k at distance d; ties go to the lower index (the
    second best then equals the best, so the ratio test rejects a tie)."""
    if d < b1 or (d == b1 and k < bi):
        return d, b1, k
    if d < b2:
        return b1, d, bi
    return b1, b2, bi


@njit(cache=True, inline="always")
def _band_cells(p, q, c, x0, cell, t, y_origin, n):
    """Cells (lo, hi) along y that the band of half-width t about the line p x + q y + c = 0
    crosses over x in [x0, x0 + cell] (|q| > 0: the line is closer to the x axis)."""
    ya = -(p * x0 + c) / q
    yb = -(p * (x0 + cell) + c) / q
    w = t / abs(q)
    return _cell_index(min(ya, yb) - w, y_origin, cell, n), _cell_index(max(ya, yb) + w, y_origin, cell, n)


@njit(cache=True)
def _guided_candidates(x1, A, x2, B, G, use_h, t, cell):
    """Row and column top-2 descriptor distances among the admissible pairs (i, k): with
    ``use_h`` False, x2[k] within t px of the epipolar line G @ x1[i] and x1[i] within t px of
    G.T @ x2[k]; with ``use_h`` True, |x2[k] - H(x1[i])| <= t (G = H). Every admissible pair is
    visited once, so rows and columns are exact."""
    n1 = x1.shape[0]
    n2 = x2.shape[0]
    row_b1 = np.full(n1, np.inf)
    row_b2 = np.full(n1, np.inf)
    row_i = np.full(n1, -1, np.int64)
    col_b1 = np.full(n2, np.inf)
    col_b2 = np.full(n2, np.inf)
    col_i = np.full(n2, -1, np.int64)
    if n1 == 0 or n2 == 0:
        return row_b1, row_b2, row_i, col_b1, col_b2, col_i
    x_lo = x2[:, 0].min()
    y_lo = x2[:, 1].min()
    gw = int((x2[:, 0].max() - x_lo) / cell) + 1
    gh = int((x2[:, 1].max() - y_lo) / cell) + 1
    start, items = _grid(x2, np.ones(n2, np.bool_), x_lo, y_lo, cell, gw, gh)
    t2 = t * t
    for i in range(n1):
        u1 = x1[i, 0]
        v1 = x1[i, 1]
        # l = G x1: the epipolar line (a, b, c), or the homogeneous transfer (hx, hy, hw)
        a = G[0, 0] * u1 + G[0, 1] * v1 + G[0, 2]
        b = G[1, 0] * u1 + G[1, 1] * v1 + G[1, 2]
        c = G[2, 0] * u1 + G[2, 1] * v1 + G[2, 2]
        b1, b2, bi = np.inf, np.inf, np.int64(-1)
        nrm = 1.0
        pu = pv = 0.0
        cx0 = cx = 0
        if use_h:
            if c <= 1e-15 * (abs(G[2, 0] * u1) + abs(G[2, 1] * v1) + abs(G[2, 2])):
                continue  # transferred to infinity or behind the camera
            pu = a / c
            pv = b / c
            cx0, cx1 = _cell_index(pu - t, x_lo, cell, gw), _cell_index(pu + t, x_lo, cell, gw)
            lines = cx1 - cx0 + 1
            horizontal = True
        else:
            nrm = math.sqrt(a * a + b * b)
            if nrm == 0.0:
                continue
            a /= nrm
            b /= nrm
            c /= nrm
            horizontal = abs(b) >= abs(a)  # walk the columns of a flat line, the rows of a steep one
            lines = gw if horizontal else gh
            cx0 = 0
        for s in range(lines):
            if use_h:
                cx = cx0 + s
                lo, hi = _cell_index(pv - t, y_lo, cell, gh), _cell_index(pv + t, y_lo, cell, gh)
            elif horizontal:
                # v on the line over this column's u range, widened by the band (t / |b| in v);
                # the border columns also hold nothing beyond the data's extent
                lo, hi = _band_cells(a, b, c, x_lo + s * cell, cell, t, y_lo, gh)
            else:  # the same with u and v swapped
                lo, hi = _band_cells(b, a, c, y_lo + s * cell, cell, t, x_lo, gw)
            for q in range(lo, hi + 1):
                if use_h or horizontal:
                    cc = q * gw + (cx if use_h else s)
                else:
                    cc = s * gw + q
                for o in range(start[cc], start[cc + 1]):
                    k = items[o]
                    u2 = x2[k, 0]
                    v2 = x2[k, 1]
                    if use_h:
                        du = u2 - pu
                        dv = v2 - pv
                        if du * du + dv * dv > t2:
                            continue
                    else:
                        e = a * u2 + b * v2 + c  # distance of x2 to the line (normalised)
                        if e * e > t2:
                            continue
                        # x1's distance to the line G^T x2 in image 1
                        a1 = G[0, 0] * u2 + G[1, 0] * v2 + G[2, 0]
                        b1_ = G[0, 1] * u2 + G[1, 1] * v2 + G[2, 1]
                        n1sq = a1 * a1 + b1_ * b1_
                        if e * e * nrm * nrm > t2 * n1sq:  # (x2^T G x1)^2 / |G^T x2|_12^2 > t^2
                            continue
                    d = _chord_sq(A, i, B, k)
                    b1, b2, bi = _push_row(d, k, b1, b2, bi)
                    cb1, cb2, ci = _push_row(d, i, col_b1[k], col_b2[k], col_i[k])
                    col_b1[k] = cb1
                    col_b2[k] = cb2
                    col_i[k] = ci
        row_b1[i] = b1
        row_b2[i] = b2
        row_i[i] = bi
    return row_b1, row_b2, row_i, col_b1, col_b2, col_i


def _passes_sq(b1: np.ndarray, b2: np.ndarray, ratio: float, max_distance: float) -> np.ndarray:
    """Ratio and distance tests on squared distances; a lone candidate (b2 = inf) passes the ratio."""
    return np.isfinite(b1) & (b1 <= max_distance**2) & ((b1 < ratio**2 * b2) | ~np.isfinite(b2))


def match_guided(
    x1: np.ndarray,
    x2: np.ndarray,
    desc1: np.ndarray,
    desc2: np.ndarray,
    *,
    F: np.ndarray | None = None,
    H: np.ndarray | None = None,
    max_error: float,
    ratio: float = 0.8,
    max_distance: float = 0.7,
    mutual: bool = True,
) -> np.ndarray:
    """Match keypoints x1 (N1,2) / x2 (N2,2) pixels with descriptors (N1,D) / (N2,D) among the
    candidates a two-view model admits. Returns (K,2) int64 index pairs (i1, i2), sorted by i1.

    Exactly one model: ``F`` (3,3), ``x2^T F x1 = 0``: (i, k) is admissible when x2[k] lies within
    ``max_error`` pixels of the epipolar line ``F x1[i]`` and x1[i] within ``max_error`` of
    ``F^T x2[k]`` (so its Sampson error is below ``max_error / sqrt(2)``); ``H`` (3,3),
    ``x2 ~ H x1``: when ``|x2[k] - H(x1[i])| <= max_error`` (the transfer error of
    ``estimate_homography``). Among its admissible candidates, i takes the nearest descriptor
    (unit-norm descriptors, chord distance, as :func:`match_descriptors`) when it is at most
    ``max_distance`` and below ``ratio`` times the second nearest (a lone candidate passes); with
    ``mutual``, k must choose i by the same tests among its own admissible candidates. Exact (a
    grid over x2 only accelerates); ties go to the lower index.
    """
    if (F is None) == (H is None):
        raise ValueError("match_guided needs exactly one model: F or H")
    G = as_array(F if F is not None else H, "F" if F is not None else "H", (3, 3))
    if not np.isfinite(G).all():
        raise ValueError("the model contains NaN or inf")
    p1 = as_points(x1, "x1", 2)
    p2 = as_points(x2, "x2", 2)
    A, B = _unit_pair(desc1, desc2, len(p1), len(p2), ("desc1", "desc2"), ("keypoints of image 1", "of image 2"))
    t = check_positive(max_error, "max_error")
    ratio = check_positive(ratio, "ratio")
    if len(p1) == 0 or len(p2) == 0:
        return np.zeros((0, 2), np.int64)
    G = G / np.linalg.norm(G)
    span = np.ptp(p2, axis=0)
    # cells of ~2 keypoints on average, never much narrower than the band
    cell = max(4.0 * t, math.sqrt(max(span[0] * span[1], 1.0) / len(p2) * 2.0), 1.0)
    rb1, rb2, ri, cb1, cb2, ci = _guided_candidates(p1, A, p2, B, G, H is not None, t, cell)
    ok = _passes_sq(rb1, rb2, min(ratio, 1.0), max_distance)
    i = np.flatnonzero(ok)
    k = ri[i]
    if mutual:
        col_ok = _passes_sq(cb1, cb2, min(ratio, 1.0), max_distance)
        keep = (ci[k] == i) & col_ok[k]
        i, k = i[keep], k[keep]
    return np.column_stack([i.astype(np.int64), k]).reshape(-1, 2)


def model_sq_errors(x1: np.ndarray, x2: np.ndarray, *, F: np.ndarray | None = None,
                    H: np.ndarray | None = None) -> np.ndarray:
    """(K,) squared errors in pixels of matched points x1, x2 (K,2) under F (Sampson) or H
    (transfer ``|x2 - H(x1)|^2``), the errors two-view verification thresholds."""
    p1 = np.ascontiguousarray(x1, dtype=np.float64).reshape(-1, 2)
    p2 = np.ascontiguousarray(x2, dtype=np.float64).reshape(-1, 2)
    out = np.empty(len(p1))
    G = np.ascontiguousarray(F if F is not None else H, dtype=np.float64).ravel()
    (sampson_sq_errors_flat if F is not None else transfer_sq_errors)(G, p1, p2, 0, len(p1), out)
    return out


def coherent_with_anchors(x1: np.ndarray, x2: np.ndarray, anchor1: np.ndarray, anchor2: np.ndarray, *,
                          num_neighbors: int = 8, slack: float = 0.5, min_tolerance: float = 4.0) -> np.ndarray:
    """(K,) bool: whether each match x1 -> x2 (K,2) moves as the anchor matches anchor1 -> anchor2
    (M,2) around it do (local motion coherence).

    The prediction is x1 plus the median displacement of the ``num_neighbors`` anchors nearest to
    x1 in image 1; a match is coherent when it lands within ``min_tolerance + slack * r`` pixels
    of it, r the distance to the farthest of those anchors (motion varies with depth, and the
    more the farther the anchors). A match on an identical window one period along the epipolar
    line (its true match unseen) is off by the period; a true one is not. No anchors: all False.
    """
    p1 = as_points(x1, "x1", 2)
    p2 = as_points(x2, "x2", 2)
    a1 = as_points(anchor1, "anchor1", 2)
    a2 = as_points(anchor2, "anchor2", 2)
    if len(p1) != len(p2) or len(a1) != len(a2):
        raise ValueError(f"matched points must pair up: {len(p1)} vs {len(p2)}, anchors {len(a1)} vs {len(a2)}")
    if len(a1) == 0 or len(p1) == 0:
        return np.zeros(len(p1), bool)
    from scipy.spatial import cKDTree

    k = min(int(num_neighbors), len(a1))
    dist, idx = cKDTree(a1).query(p1, k=k)
    dist, idx = dist.reshape(len(p1), k), idx.reshape(len(p1), k)
    predicted = p1 + np.median(a2[idx] - a1[idx], axis=1)
    return np.linalg.norm(p2 - predicted, axis=1) <= min_tolerance + slack * dist[:, -1]
