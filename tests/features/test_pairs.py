"""Pair selection: exhaustive and sequential windows over naturally sorted names."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.features import exhaustive_pairs, natural_sort_key, sequential_pairs, union_pairs


def test_exhaustive_pairs():
    p = exhaustive_pairs(5)
    assert p.shape == (10, 2) and p.dtype == np.int64
    assert {tuple(r) for r in p} == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    assert exhaustive_pairs(1).shape == (0, 2) and exhaustive_pairs(0).shape == (0, 2)
    with pytest.raises(ValueError, match="n"):
        exhaustive_pairs(-1)


def test_natural_sort():
    names = ["f10.jpg", "f2.jpg", "f1.jpg", "a.jpg", "f02.jpg"]
    assert sorted(names, key=natural_sort_key) == ["a.jpg", "f1.jpg", "f02.jpg", "f2.jpg", "f10.jpg"]


def test_sequential_pairs_window_over_sorted_names():
    names = ["f10", "f2", "f1", "f3"]  # natural order: f1 f2 f3 f10 -> positions 2, 1, 3, 0
    p = sequential_pairs(names, window=1)
    got = {frozenset((names[i], names[j])) for i, j in p}
    assert got == {frozenset(s) for s in [("f1", "f2"), ("f2", "f3"), ("f3", "f10")]}
    assert np.all(p[:, 0] < p[:, 1])
    p2 = sequential_pairs(names, window=2)
    assert len(p2) == 3 + 2
    assert {frozenset((names[i], names[j])) for i, j in p2} >= {frozenset(("f1", "f3")), frozenset(("f2", "f10"))}


def test_sequential_pairs_counts():
    names = [f"{k:04d}.png" for k in range(30)]
    for window in (1, 5, 10):
        p = sequential_pairs(names, window)
        assert len(p) == sum(30 - s for s in range(1, window + 1))
        assert np.all((p[:, 1] - p[:, 0] >= 1) & (p[:, 1] - p[:, 0] <= window))
    # a window beyond the sequence is exhaustive
    np.testing.assert_array_equal(sequential_pairs(names[:6], window=10), exhaustive_pairs(6))
    assert sequential_pairs(names[:1]).shape == (0, 2)
    with pytest.raises(ValueError, match="window"):
        sequential_pairs(names, window=0)


def test_union_pairs():
    u = union_pairs(np.array([[0, 1], [2, 1]]), np.array([[1, 0], [3, 3], [1, 2]]))
    np.testing.assert_array_equal(u, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="pairs"):
        union_pairs(np.array([0, 1]))
