"""Which image pairs to match: all of them, or a window over an ordered sequence.

Every function returns a (P,2) int64 array of image indices with ``i < j`` in each row, rows
unique and sorted; turn them into name pairs with ``[(names[i], names[j]) for i, j in pairs]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .._validation import check_int

__all__ = ["exhaustive_pairs", "natural_sort_key", "sequential_pairs", "union_pairs"]


def exhaustive_pairs(n: int) -> np.ndarray:
    """All n (n - 1) / 2 pairs (i, j), i < j, in lexicographic order."""
    n = check_int(n, "n", minimum=0)
    i, j = np.triu_indices(n, k=1)
    return np.column_stack([i, j]).astype(np.int64).reshape(-1, 2)


def natural_sort_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers: 'img2' < 'img10' (then by the plain text)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), name


def sequential_pairs(names: Sequence[str], window: int = 10) -> np.ndarray:
    """Pairs of images at most ``window`` apart in the natural order of their names.

    names : image names (any order; they are sorted with :func:`natural_sort_key`, so
        'frame2' comes before 'frame10'). The returned indices refer to positions in ``names``.
    window : how many following images each image is paired with (>= 1).

    For loop closures (the camera returning to a place seen much earlier) add candidates from a
    global descriptor: ``union_pairs(sequential_pairs(names), similar_pairs(features_list))``
    (see :mod:`geomvision.features.retrieval`).
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
