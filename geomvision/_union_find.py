"""Union-find kernels shared by the layers (matches sharing a keypoint in ``robust``, feature
tracks in ``sfm``): ``parent`` is an int64 array, each set's root its own parent."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def find_root(parent, a):
    """The root of ``a``'s set, compressing the path from ``a`` to it."""
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:  # path compression
        nxt = parent[a]
        parent[a] = root
        a = nxt
    return root
