"""Loop consistency of verified pairs (sfm/view_triangles.py) and the weighted rotation consensus."""

import numpy as np

from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.sfm.mapper import _rotation_consensus
from geomvision.sfm.verification import TwoViewGeometry
from geomvision.sfm.view_triangles import TriangleSupport


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    return Rigid3.from_rotvec(np.radians(deg) * np.asarray(axis, float) / np.linalg.norm(axis), np.zeros(3)).R


def _geoms(poses: list[Rigid3], inliers: dict[tuple[int, int], int], wrong: dict[tuple[int, int], np.ndarray]):
    out = {}
    for (i, j), n in inliers.items():
        rel = poses[j] @ poses[i].inverse()
        R = wrong.get((i, j), np.eye(3)) @ rel.R
        out[(i, j)] = TwoViewGeometry("calibrated", np.zeros((n, 2), np.int64), n, Rigid3(R, rel.t))
    return out


def test_a_weak_wrong_pair_is_contradicted_and_a_strong_right_one_is_not():
    rng = np.random.default_rng(0)
    poses = [Rigid3.from_rotvec(rng.normal(0, 0.3, 3), rng.normal(0, 1, 3)) for _ in range(4)]
    inliers = {(0, 1): 500, (1, 2): 400, (0, 2): 60, (2, 3): 300, (0, 3): 40, (1, 3): 350}
    # (0, 2) verified on a shifted window grid: its rotation is 9 degrees off
    geoms = _geoms(poses, inliers, {(0, 2): _rot([0, 1, 0], 9.0)})
    tri = TriangleSupport(geoms)
    # none of its triangles closes (via 1: legs 500 / 400; via 3: 40 / 300), so it is the leg
    # that closes least in each and takes the blame of both
    assert tri.support(0, 2) == (0.0, 400.0 + 40.0) and tri.contradicted(0, 2)
    # the pairs of its triangles close elsewhere and are not blamed for it
    assert tri.support(0, 1) == (40.0, 0.0)  # closes via 3 (min(40, 350))
    assert tri.support(0, 3) == (350.0, 0.0) and tri.support(1, 2) == (300.0, 0.0)
    assert not any(tri.contradicted(*p) for p in inliers if p != (0, 2))
    # a pair without triangles, or without a pose, is not contradicted
    geoms[(4, 5)] = TwoViewGeometry("planar", np.zeros((30, 2), np.int64), 30)
    assert TriangleSupport(geoms).support(4, 5) == (0.0, 0.0)
    assert not TriangleSupport(geoms).contradicted(4, 5)


def test_rotation_consensus_is_by_weight_not_count():
    R_true = _rot([0, 0, 1], 30.0)
    R_wrong = _rot([0, 0, 1], 40.0)
    Rs = np.array([R_true, R_wrong, R_wrong @ _rot([1, 0, 0], 1.0)])
    sel, R = _rotation_consensus(Rs, np.array([329.0, 57.0, 48.0]))
    assert list(sel) == [0] and rotation_error_deg(R, R_true) < 1e-9


def test_a_wrong_pair_without_triangles_is_caught_by_the_chain_of_the_strongest_pairs():
    rng = np.random.default_rng(1)
    poses = [Rigid3.from_rotvec(rng.normal(0, 0.3, 3), rng.normal(0, 1, 3)) for _ in range(5)]
    chain = {(0, 1): 600, (1, 2): 500, (2, 3): 550, (3, 4): 450}
    geoms = _geoms(poses, {**chain, (0, 3): 45, (1, 4): 40},
                   {(0, 3): _rot([0, 0, 1], 8.0), (1, 4): _rot([0, 0, 1], 2.0)})
    tri = TriangleSupport(geoms)
    assert tri.support(0, 3) == (0.0, 0.0)  # no triangle: (0, 2) and (1, 3) were not verified
    err, weakest = tri.tree_disagreement(0, 3)
    assert abs(err - 8.0) < 1e-6 and weakest == 500 and tri.contradicted(0, 3)
    assert not tri.contradicted(1, 4)  # 2 degrees: within the tolerance
    assert tri.tree_disagreement(1, 2) == (0.0, 0.0) and not tri.contradicted(1, 2)  # a tree edge
    # a pair stronger than the chain between its views is not blamed on the chain's word
    geoms[(0, 3)] = _geoms(poses, {(0, 3): 900}, {(0, 3): _rot([0, 0, 1], 8.0)})[(0, 3)]
    tri = TriangleSupport(geoms)
    assert tri.tree_disagreement(0, 3)[0] == 0.0  # it is now a tree edge itself


def test_a_strong_wrong_pair_is_blamed_when_its_triangles_close_least():
    # (0, 1) verified on a wrong consensus with many inliers, stronger than some legs of its
    # triangles: none of its triangles closes, while each of their other legs closes elsewhere
    rng = np.random.default_rng(2)
    poses = [Rigid3.from_rotvec(rng.normal(0, 0.3, 3), rng.normal(0, 1, 3)) for _ in range(5)]
    inliers = {(0, 1): 262, (0, 2): 126, (1, 2): 392, (0, 3): 252, (1, 3): 143, (2, 3): 200, (2, 4): 300,
               (0, 4): 200, (3, 4): 250}
    tri = TriangleSupport(_geoms(poses, inliers, {(0, 1): _rot([1, 0, 0], 20.0)}))
    assert tri.support(0, 1) == (0.0, 126.0 + 143.0) and tri.contradicted(0, 1)
    assert not any(tri.contradicted(*p) for p in inliers if p != (0, 1))
