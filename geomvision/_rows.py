"""Grouping equal rows of a small 2D array by sorting (shared by ``robust`` and ``scene``)."""

from __future__ import annotations

import numpy as np


def row_groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort the rows of an (N,k) array lexicographically (first column first; ``np.lexsort``, a
    tenth of ``np.unique(axis=0)``'s time, which sorts rows as byte strings). Returns (order,
    group): ``group[m]`` is the index, in that order, of the distinct row ``rows[order[m]]``."""
    order = np.lexsort(rows.T[::-1])
    s = rows[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = np.any(s[1:] != s[:-1], axis=1)
    return order, np.cumsum(new) - 1
