"""spatial_pairs (issue 16): each image with its k nearest images by position, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.features.pairs import spatial_pairs


def _brute_force(X: np.ndarray, k: int, max_distance: float | None = None) -> set[tuple[int, int]]:
    """Each positioned row with its k nearest others (full distance matrix), as i < j pairs."""
    ok = ~np.isnan(X).any(axis=1)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    D[~ok] = np.inf
    D[:, ~ok] = np.inf
    np.fill_diagonal(D, np.inf)
    out = set()
    for i in np.flatnonzero(ok):
        for j in np.argsort(D[i])[:k]:
            if np.isfinite(D[i, j]) and (max_distance is None or D[i, j] <= max_distance):
                out.add((min(i, int(j)), max(i, int(j))))
    return out


def _check_format(p: np.ndarray) -> None:
    assert p.dtype == np.int64 and p.ndim == 2 and p.shape[1] == 2
    assert np.all(p[:, 0] < p[:, 1])
    np.testing.assert_array_equal(p, np.unique(p, axis=0))  # unique and sorted


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_equals_the_k_nearest_by_brute_force(rng, dim, k):
    X = rng.uniform(0, 500, (120, dim))
    p = spatial_pairs(X, k)
    _check_format(p)
    assert {tuple(map(int, r)) for r in p} == _brute_force(X, k)
    limited = spatial_pairs(X, k, max_distance=40.0)
    assert {tuple(map(int, r)) for r in limited} == _brute_force(X, k, 40.0)
    assert len(limited) < len(p)


def test_images_without_a_position_get_no_pair(rng):
    X = rng.uniform(0, 100, (30, 2))
    X[[0, 7, 29]] = np.nan
    X[12, 1] = np.nan  # one NaN coordinate is enough
    p = spatial_pairs(X, 4)
    assert not np.isin(p, [0, 7, 12, 29]).any()
    assert {tuple(map(int, r)) for r in p} == _brute_force(X, 4)
    assert spatial_pairs(np.full((5, 3), np.nan), 2).shape == (0, 2)
    assert spatial_pairs(np.zeros((1, 3)), 2).shape == (0, 2)


def test_a_survey_grid_pairs_its_flight_line_and_side_neighbours():
    # 6 x 4 photos 20 m apart along each flight line, lines 30 m apart (a lawnmower pattern:
    # alternate lines flown backwards, so the index order is the flight order)
    rows = []
    for line in range(4):
        xs = np.arange(6) * 20.0
        rows += [(x, line * 30.0) for x in (xs if line % 2 == 0 else xs[::-1])]
    X = np.array(rows)
    p = {tuple(map(int, r)) for r in spatial_pairs(X, 4, max_distance=31.0)}
    same_line = {(i, i + 1) for i in range(23) if (i + 1) % 6}
    side = {(min(i, j), max(i, j)) for i in range(24) for j in range(24)
            if i < j and np.isclose(X[i, 0], X[j, 0]) and np.isclose(abs(X[i, 1] - X[j, 1]), 30.0)}
    assert same_line | side == p  # 20 m and 30 m neighbours, no diagonal (36 m) and nothing 40 m away
    # the side neighbours are 7-11 frames apart in flight order: a window over names misses them
    assert min(abs(i - j) for i, j in side) == 1 and max(abs(i - j) for i, j in side) == 11


def test_twins_at_one_place_do_not_pair_with_themselves():
    X = np.zeros((6, 3))
    X[5] = [100, 0, 0]
    p = spatial_pairs(X, 2)
    _check_format(p)
    counts = np.bincount(p[p[:, 1] < 5].ravel(), minlength=5)[:5]
    assert np.all(counts >= 2)  # each twin chose two others
    assert all(i != j for i, j in p)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"shape \(N,2\) or \(N,3\)"):
        spatial_pairs(np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match="infinite"):
        spatial_pairs(np.array([[0.0, np.inf], [1, 1]]), 2)
    with pytest.raises(ValueError, match="num_neighbors"):
        spatial_pairs(np.zeros((4, 2)), 0)
    with pytest.raises(ValueError, match="max_distance"):
        spatial_pairs(np.zeros((4, 2)), 2, max_distance=0.0)
