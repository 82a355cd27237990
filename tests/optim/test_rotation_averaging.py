"""Robust rotation averaging (optim/pose_graph_init.average_rotations) against exact rotations."""

import numpy as np
import pytest

from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.optim.pose_graph_init import average_rotations


def _random_rotations(rng, n: int, sigma: float = 1.0) -> np.ndarray:
    return np.array([Rigid3.from_rotvec(rng.normal(0, sigma, 3), np.zeros(3)).R for _ in range(n)])


@pytest.mark.parametrize("seed", range(4))
def test_rotations_are_recovered_exactly_despite_a_fifth_of_the_edges_wrong(seed):
    rng = np.random.default_rng(seed)
    n = 12
    R_true = _random_rotations(rng, n)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if j - i <= 3 or rng.random() < 0.2]
    ri, rj = np.array(pairs).T
    R_rel = np.swapaxes(R_true[ri], 1, 2) @ R_true[rj]  # R_j = R_i R_rel
    while True:  # wrong edges, at most a third of any node's
        bad = rng.random(len(pairs)) < 0.2
        if all(bad[(ri == k) | (rj == k)].mean() <= 1 / 3 for k in range(n)):
            break
    axes = rng.normal(size=(int(bad.sum()), 3))
    angles = np.radians(rng.uniform(10, 40, len(axes)))
    R_rel[bad] = np.array([Rigid3.from_rotvec(a / np.linalg.norm(a) * t, np.zeros(3)).R
                           for a, t in zip(axes, angles)]) @ R_rel[bad]
    R, resid = average_rotations(n, ri, rj, R_rel, rng.uniform(50, 500, len(pairs)))
    # the gauge: node 0 keeps the identity
    assert rotation_error_deg(R_true[0] @ R, R_true).max() < 1e-4
    assert np.all(resid[~bad] < 1e-4) and np.allclose(resid[bad], rotation_error_deg(
        R_rel[bad], np.swapaxes(R_true[ri[bad]], 1, 2) @ R_true[rj[bad]]), atol=1e-4)


def test_each_connected_component_has_its_own_gauge(rng):
    R_true = _random_rotations(rng, 6)
    ri, rj = np.array([0, 1, 0, 3, 4]), np.array([1, 2, 2, 4, 5])
    R_rel = np.swapaxes(R_true[ri], 1, 2) @ R_true[rj]
    R, resid = average_rotations(6, ri, rj, R_rel, np.ones(5))
    assert rotation_error_deg(R[[0, 3]], np.eye(3)[None]).max() < 1e-9
    assert rotation_error_deg(R_true[3] @ R[3:], R_true[3:]).max() < 1e-4 and resid.max() < 1e-4


def test_non_positive_weights_are_refused():
    with pytest.raises(ValueError, match="positive"):
        average_rotations(2, np.array([0]), np.array([1]), np.eye(3)[None], np.array([0.0]))
