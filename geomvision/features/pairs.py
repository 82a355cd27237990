"""Which image pairs to match: all of them, a window over an ordered sequence, the nearest images
by position (GPS: :func:`spatial_pairs`), plus, for loop closures and unordered sets, the most
similar images (:mod:`geomvision.features.retrieval`).

Every function returns a (P,2) int64 array of image indices with ``i < j`` in each row, rows
unique and sorted; turn them into name pairs with ``[(names[i], names[j]) for i, j in pairs]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .._validation import check_int

__all__ = ["exhaustive_pairs", "is_numbered_sequence", "natural_sort_key", "sequential_pairs", "spatial_pairs",
           "union_pairs"]


def exhaustive_pairs(n: int) -> np.ndarray:
    """All n (n - 1) / 2 pairs (i, j), i < j, in lexicographic order."""
    n = check_int(n, "n", minimum=0)
    i, j = np.triu_indices(n, k=1)
    return np.column_stack([i, j]).astype(np.int64).reshape(-1, 2)


def natural_sort_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers: 'img2' < 'img10' (then by the plain text)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), name


def is_numbered_sequence(names: Sequence[str]) -> bool:
    """Whether the names look like the frames of one sequence, so that their natural order is the
    capture order: all names have the same text around their digit runs (compared without case)
    and differ in their numbers ('frame0001.png' ... 'frame0480.png'; timestamps such as
    '1305031102.175304.png' too). Names without a common pattern ('a.jpg', 'IMG_3.jpg',
    'left_01.png' with 'right_01.png') are an unordered set. Fewer than two names: True.
    """
    names = [str(n) for n in names]
    if len(names) < 2:
        return True
    skeletons, numbers = set(), set()
    for name in names:
        parts = re.split(r"(\d+)", name)
        skeletons.add(tuple(p.casefold() for p in parts[0::2]))
        numbers.add(tuple(int(p) for p in parts[1::2]))
    # one skeleton with at least one digit run; distinct numbers (else two names share a place)
    return len(skeletons) == 1 and len(next(iter(skeletons))) > 1 and len(numbers) == len(names)


def sequential_pairs(names: Sequence[str], window: int = 10) -> np.ndarray:
    """Pairs of images at most ``window`` apart in the natural order of their names.

    names : image names (any order; they are sorted with :func:`natural_sort_key`, so
        'frame2' comes before 'frame10'). The returned indices refer to positions in ``names``.
    window : how many following images each image is paired with (>= 1).

    For loop closures (the camera returning to a place seen much earlier) add candidates from a
    global descriptor beyond the window: ``w = sequential_pairs(names)``,
    ``union_pairs(w, similar_pairs(features_list, exclude=w))`` (see :mod:`geomvision.features.retrieval`).
    """
    names = [str(n) for n in names]
    window = check_int(window, "window", minimum=1)
    order = np.array(sorted(range(len(names)), key=lambda k: natural_sort_key(names[k])), dtype=np.int64)
    n = len(order)
    rows = []
    for step in range(1, min(window, n - 1) + 1):
        rows.append(np.column_stack([order[:-step], order[step:]]))
    if not rows:
        return np.zeros((0, 2), np.int64)
    return union_pairs(*rows)


def spatial_pairs(positions: np.ndarray, num_neighbors: int = 20, max_distance: float | None = None) -> np.ndarray:
    """Pairs of each image with its ``num_neighbors`` nearest images by position (COLMAP's
    spatial matcher), found with a k-d tree (``scipy.spatial.cKDTree``).

    positions : (N,2) or (N,3) image positions in metres in one metric frame (east-north or
        east-north-up from GPS: :func:`geomvision.geometry.geodesy.local_enu_from_geodetic`);
        the row index is the image index. A row with a NaN is an image without a position: it
        gets no pair.
    num_neighbors : nearest images per image (integer >= 1); a pair is kept when either image
        chose the other, so an image may get more partners. Among images at exactly the same
        distance the tree decides which are taken.
    max_distance : only partners at most this far (metres, > 0); None: no limit.
    """
    X = np.asarray(positions, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape (N,2) or (N,3), got {X.shape}")
    num_neighbors = check_int(num_neighbors, "num_neighbors", minimum=1)
    if max_distance is not None and not (np.isfinite(max_distance) and max_distance > 0):
        raise ValueError(f"max_distance must be a positive number of metres or None, got {max_distance!r}")
    if np.isinf(X).any():
        raise ValueError("positions hold infinite values (mark an image without a position with NaN)")
    idx = np.flatnonzero(~np.isnan(X).any(axis=1))
    if len(idx) < 2:
        return np.zeros((0, 2), np.int64)
    from scipy.spatial import cKDTree

    k = min(num_neighbors + 1, len(idx))  # + 1: each point finds itself (or a twin at distance 0)
    dist, nn = cKDTree(X[idx]).query(X[idx], k=k, distance_upper_bound=np.inf if max_distance is None
                                     else float(max_distance))
    dist, nn = dist.reshape(len(idx), k), nn.reshape(len(idx), k)
    own = np.arange(len(idx))[:, None]
    keep = (nn != own) & np.isfinite(dist)  # a missing neighbour (beyond max_distance) is inf / len(idx)
    keep &= np.cumsum(keep, axis=1) <= num_neighbors  # self may be missing among twins at distance 0
    rows = np.broadcast_to(own, nn.shape)[keep]
    return union_pairs(np.column_stack([idx[rows], idx[nn[keep]]]))


def union_pairs(*pairs: np.ndarray) -> np.ndarray:
    """Union of (P,2) index-pair arrays: each row ordered as (min, max), duplicates and (i, i) dropped."""
    if not pairs:
        return np.zeros((0, 2), np.int64)
    arrs = []
    for k, p in enumerate(pairs):
        p = np.asarray(p)
        if p.size == 0:
            continue
        if p.ndim != 2 or p.shape[1] != 2 or p.dtype.kind not in "iu":
            raise ValueError(f"pairs[{k}] must be a (P,2) integer array, got {p.dtype}{p.shape}")
        if p.min() < 0:
            raise ValueError(f"pairs[{k}] holds negative indices")
        arrs.append(np.sort(p.astype(np.int64), axis=1))
    if not arrs:
        return np.zeros((0, 2), np.int64)
    allp = np.concatenate(arrs)
    allp = allp[allp[:, 0] != allp[:, 1]]
    return np.unique(allp, axis=0).reshape(-1, 2)
