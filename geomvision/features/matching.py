"""Exact nearest-neighbour descriptor matching: mutual check and Lowe's ratio test.

Method (measured on fountain-P11, 8192 x 8192 RootSIFT descriptors, 2 cores; see
benchmarks/RESULTS.md): descriptors are scaled to unit L2 norm in float32, the cosine
similarities of a block of rows against all columns come from one BLAS sgemm, and a numba kernel
folds each block into the two best neighbours of every row and every column. The squared distance
of unit vectors is ``2 - 2 cos``, so nearest = most similar and the ratio test needs no square
roots of the whole matrix. This is exact (equal to a float64 brute force up to float32 rounding
of near-ties) and faster than cv2.BFMatcher (brute force, ~10x slower) and cv2.FlannBasedMatcher
(approximate: 92-99 % recall at a similar or higher cost).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
from scipy.spatial import cKDTree

from .._interrupt import map_threads, stopping
from .._validation import check_int
from ._match_kernels import NEG, group_heads, top2_update, top2_update_grouped
from ._threads import blas_single_threaded
from .options import MatchOptions

__all__ = ["location_groups", "match_descriptors", "unit_descriptors"]

BLOCK_ROWS = 256  # rows of the similarity matrix per sgemm; 256 x 8192 float32 = 8 MB stays in L3


def unit_descriptors(descriptors, name: str = "descriptors") -> np.ndarray:
    """(N,D) descriptors as C-contiguous float32 rows of unit L2 norm (zero rows stay zero)."""
    d = np.asarray(descriptors)
    if d.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {d.shape}")
    if d.dtype.kind not in "uif":
        raise ValueError(f"{name} must be numeric (uint8 or float), got {d.dtype}")
    d = np.array(d, dtype=np.float32, order="C")  # a copy we may scale in place
    if d.size and not np.isfinite(d).all():
        raise ValueError(f"{name} contains NaN or inf")
    norms = np.sqrt(np.einsum("ij,ij->i", d, d, dtype=np.float64)).astype(np.float32)
    norms[norms == 0] = 1.0
    d /= norms[:, None]
    return d


def location_groups(keypoints: np.ndarray, radius: float) -> np.ndarray:
    """(N,) int64 group of each keypoint (N,2): keypoints within ``radius`` pixels of a stronger
    one (earlier in the array: features are stored strongest first) that heads a group join it.

    Groups gather the descriptions of one location: SIFT's extra orientations, ASIFT's simulated
    tilts (about 5 other keypoints within 1.5 px of each on a 25k-keypoint ASIFT image). Each group
    lies within ``radius`` of its head; ``radius`` 0 gives every keypoint its own group.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"keypoints must have shape (N, 2), got {kp.shape}")
    n = len(kp)
    if radius <= 0 or n < 2:
        return np.arange(n, dtype=np.int64)
    close = cKDTree(kp).query_pairs(radius, output_type="ndarray").astype(np.int64)
    if not len(close):
        return np.arange(n, dtype=np.int64)
    close.sort(axis=1)  # (stronger, weaker)
    close = close[np.lexsort((close[:, 1], close[:, 0]))]
    return group_heads(n, close[:, 0], close[:, 1])


def _nearest_two_rows(A, B, BT, r0, r1, row_b1, row_b2, row_i, stop=None, groups=None):
    """Rows r0..r1 of A against all of B: fills row_* [r0:r1], returns this chunk's column top-2.
    Between blocks (8192 x 8192: ~35 ms each) it raises ``KeyboardInterrupt`` once ``stopping(stop)``.
    ``groups`` (row groups, column groups): the second best is of another group than the best."""
    n = len(B)
    col_b1 = np.full(n, NEG, np.float32)
    col_b2 = np.full(n, NEG, np.float32)
    col_i = np.full(n, -1, np.int32)
    buf = np.empty((min(BLOCK_ROWS, r1 - r0), n), np.float32)
    for i0 in range(r0, r1, BLOCK_ROWS):
        if stopping(stop):
            raise KeyboardInterrupt
        k = min(BLOCK_ROWS, r1 - i0)
        S = buf[:k]
        np.matmul(A[i0 : i0 + k], BT, out=S)
        if groups is None:
            top2_update(S, i0, row_b1, row_b2, row_i, col_b1, col_b2, col_i)
        else:
            top2_update_grouped(S, i0, groups[0], groups[1], row_b1, row_b2, row_i, col_b1, col_b2, col_i)
    return col_b1, col_b2, col_i


class _Either:
    """Two stop events seen as one (``is_set`` when either is)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def _merge_columns(first, second, row_groups=None):
    """Column top-2 of rows [a, b) and [b, c) -> of rows [a, c); ties keep the lower row.
    With ``row_groups``, a best of the other half's best's group is no second best."""
    a1, a2, ai = first
    b1, b2, bi = second
    take_b = b1 > a1
    best1 = np.where(take_b, b1, a1)
    best_i = np.where(take_b, bi, ai)
    if row_groups is None:
        best2 = np.where(take_b, np.maximum(a1, b2), np.maximum(a2, b1))
    else:
        same = (ai >= 0) & (bi >= 0) & (row_groups[np.maximum(ai, 0)] == row_groups[np.maximum(bi, 0)])
        best2 = np.where(take_b, np.maximum(np.where(same, a2, a1), b2), np.maximum(a2, np.where(same, b2, b1)))
    return best1, best2, best_i


def _nearest_two(A: np.ndarray, B: np.ndarray, num_threads: int = 1, stop: threading.Event | None = None,
                 groups: tuple[np.ndarray, np.ndarray] | None = None):
    """Best and second-best cosine similarity (and best index) of each row of A in B and vice versa.
    ``groups``: (M,), (N,) location groups of A's and B's rows: the second best is the best of
    another group than the best's (:func:`location_groups`).

    With ``num_threads > 1`` the rows are split at multiples of BLOCK_ROWS over worker threads
    (each sgemm call is the same as in the sequential loop, so the result is identical).
    ``stop``: the caller's stop event (see ``_interrupt.map_threads``), polled between blocks.
    """
    m, n = len(A), len(B)
    row_b1 = np.full(m, NEG, np.float32)
    row_b2 = np.full(m, NEG, np.float32)
    row_i = np.full(m, -1, np.int32)
    if m == 0 or n == 0:
        return row_b1, row_b2, row_i, np.full(n, NEG, np.float32), np.full(n, NEG, np.float32), np.full(n, -1, np.int32)
    BT = np.ascontiguousarray(B.T)  # (D, n): a few % faster in sgemm than the transposed view
    n_blocks = -(-m // BLOCK_ROWS)
    workers = max(1, min(num_threads, n_blocks))
    if workers == 1:
        small = m * n < 2**20  # too small for BLAS to thread anyway: skip the limit's overhead
        with contextlib.nullcontext() if small else blas_single_threaded():
            cols = _nearest_two_rows(A, B, BT, 0, m, row_b1, row_b2, row_i, stop, groups)
        return row_b1, row_b2, row_i, *cols
    bounds = [min(m, BLOCK_ROWS * (n_blocks * w // workers)) for w in range(workers + 1)]
    parts: list = [None] * workers

    def work(w: int, pool_stop: threading.Event) -> None:
        either = pool_stop if stop is None else _Either(stop, pool_stop)
        parts[w] = _nearest_two_rows(A, B, BT, bounds[w], bounds[w + 1], row_b1, row_b2, row_i, either, groups)

    with blas_single_threaded() as limited:
        map_threads(work, workers, workers if limited else 1)
    cols = parts[0]
    for part in parts[1:]:
        cols = _merge_columns(cols, part, None if groups is None else groups[0])
    return row_b1, row_b2, row_i, *cols


def _passes(best1: np.ndarray, best2: np.ndarray, ratio: float, max_distance: float) -> np.ndarray:
    """Ratio and distance tests from similarities: d^2 = 2 - 2 s for unit vectors."""
    d1_sq = np.maximum(2.0 - 2.0 * best1.astype(np.float64), 0.0)
    d2_sq = np.maximum(2.0 - 2.0 * best2.astype(np.float64), 0.0)
    no_second = best2 <= NEG  # a single candidate: nothing to be ambiguous with
    return (d1_sq <= max_distance**2) & ((d1_sq < ratio**2 * d2_sq) | no_second) & (best1 > NEG)


def match_descriptors(desc1, desc2, options: MatchOptions | None = None, *, num_threads: int = 2,
                      keypoints1: np.ndarray | None = None, keypoints2: np.ndarray | None = None) -> np.ndarray:
    """Match (N1,D) against (N2,D) descriptors; returns (K,2) int64 index pairs (i1, i2), sorted by i1.

    A pair (i, j) is kept when j is i's nearest neighbour in desc2, the Lowe ratio test
    ``d1 < ratio * d2`` and ``d1 <= max_distance`` hold, and, with ``options.mutual``, i is also
    j's nearest neighbour in desc1 and j passes both tests against desc1 as well. Distances are
    Euclidean between descriptors scaled to unit norm (see :class:`MatchOptions`). Exact.
    uint8 (SIFT / RootSIFT) or float descriptors. ``num_threads`` worker threads share the rows,
    each calling single-threaded BLAS (via threadpoolctl; without it, one worker on BLAS's own
    threads); the result does not depend on ``num_threads``.

    With both images' keypoints (N1,2), (N2,2) and ``options.same_location_px`` > 0, descriptions
    of one location (:func:`location_groups`, strongest first) are not each other's rivals: the
    ratio test compares the nearest neighbour with the nearest at another location, the
    mutual check accepts i when j's nearest neighbour is i or another description of i's location,
    and a match is reported between the two locations' heads (their strongest descriptions), one
    per location, so that every match of a location names the same keypoint.
    """
    num_threads = check_int(num_threads, "num_threads", minimum=1)
    options = MatchOptions() if options is None else options
    if not isinstance(options, MatchOptions):
        raise ValueError(f"options must be a MatchOptions, got {type(options).__name__}")
    A = unit_descriptors(desc1, "desc1")
    B = unit_descriptors(desc2, "desc2")
    if A.shape[1] != B.shape[1] and len(A) and len(B):
        raise ValueError(f"desc1 and desc2 must have the same length D, got {A.shape[1]} and {B.shape[1]}")
    groups = None
    if keypoints1 is not None and keypoints2 is not None:
        groups = match_groups(keypoints1, keypoints2, len(A), len(B), options)
    return _match_unit(A, B, options, num_threads, groups=groups)


def match_groups(keypoints1, keypoints2, n1: int, n2: int, options: MatchOptions
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Location groups of two images' keypoints for :func:`_match_unit`, or None when
    ``options.same_location_px`` is 0 / None or neither image describes a location twice."""
    if options.location_px <= 0:
        return None
    return pair_groups(location_groups(keypoints1, options.location_px),
                       location_groups(keypoints2, options.location_px), n1, n2)


def pair_groups(g1: np.ndarray, g2: np.ndarray, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(g1, g2) checked against the descriptor counts; None when every group is one keypoint."""
    if len(g1) != n1 or len(g2) != n2:
        raise ValueError(f"{len(g1)} and {len(g2)} keypoints for {n1} and {n2} descriptors")
    if np.array_equal(g1, np.arange(n1)) and np.array_equal(g2, np.arange(n2)):
        return None
    return g1, g2


def _match_unit(A: np.ndarray, B: np.ndarray, options: MatchOptions, num_threads: int = 1,
                stop: threading.Event | None = None, groups: tuple[np.ndarray, np.ndarray] | None = None
                ) -> np.ndarray:
    row_b1, row_b2, row_i, col_b1, col_b2, col_i = _nearest_two(A, B, num_threads, stop, groups)
    ok = _passes(row_b1, row_b2, options.ratio, options.max_distance)
    i = np.flatnonzero(ok)
    j = row_i[i].astype(np.int64)
    if options.mutual:
        col_ok = _passes(col_b1, col_b2, options.ratio, options.max_distance)
        back = col_i[j].astype(np.int64)
        if groups is None:
            keep = (back == i) & col_ok[j]
        else:  # i or another description of its location; the pair kept is j's nearest, once
            keep = (groups[0][back] == groups[0][i]) & col_ok[j]
        i, j = back[keep], j[keep]
    if groups is not None:
        i, j = _one_pair_per_location(i, j, groups)
    return np.column_stack([i.astype(np.int64), j]).reshape(-1, 2)


def _one_pair_per_location(i: np.ndarray, j: np.ndarray, groups: tuple[np.ndarray, np.ndarray]
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Matches (i, j) reported as the heads of their locations, at most one pair per location on
    each side (the strongest description's first): every pair an image's location takes part in
    then names the same keypoint, so tracks through it join (ASIFT describes a location ~3 times,
    and otherwise one image's matches to two others often name two descriptions of one point)."""
    i, j = groups[0][i], groups[1][j]
    j, first = np.unique(j, return_index=True)
    i = i[first]
    i, first = np.unique(i, return_index=True)
    return i, j[first]
