"""Consistency of the verified pairs' rotations with their robust average (sfm/view_rotations.py)
and the weighted rotation consensus."""

import numpy as np

from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.sfm.mapper import _rotation_consensus
from geomvision.sfm.verification import TwoViewGeometry
from geomvision.sfm.view_rotations import RotationConsistency


def _rot(axis, deg: float) -> np.ndarray:
    return Rigid3.from_rotvec(np.radians(deg) * np.asarray(axis, float) / np.linalg.norm(axis), np.zeros(3)).R


def _poses(n: int, seed: int) -> list[Rigid3]:
    rng = np.random.default_rng(seed)
    return [Rigid3.from_rotvec(rng.normal(0, 0.3, 3), rng.normal(0, 1, 3)) for _ in range(n)]


def _geoms(poses: list[Rigid3], inliers: dict[tuple[int, int], int], wrong: dict[tuple[int, int], np.ndarray]):
    out = {}
    for (i, j), n in inliers.items():
        rel = poses[j] @ poses[i].inverse()
        R = wrong.get((i, j), np.eye(3)) @ rel.R
        out[(i, j)] = TwoViewGeometry("calibrated", np.zeros((n, 2), np.int64), n, Rigid3(R, rel.t))
    return out


def test_a_weak_wrong_pair_is_contradicted_and_the_right_ones_are_not():
    poses = _poses(4, 0)
    inliers = {(0, 1): 500, (1, 2): 400, (0, 2): 60, (2, 3): 300, (0, 3): 40, (1, 3): 350}
    # (0, 2) verified on a shifted window grid: its rotation is 9 degrees off
    rot = RotationConsistency(_geoms(poses, inliers, {(0, 2): _rot([0, 1, 0], 9.0)}))
    assert abs(rot.residual_deg(0, 2) - 9.0) < 0.5 and rot.contradicted(0, 2)
    assert all(rot.residual_deg(*p) < 0.5 and not rot.contradicted(*p) for p in inliers if p != (0, 2))
    # another candidate rotation of a pair (a planar pair's other decomposition) is judged too
    rel = poses[2] @ poses[0].inverse()
    assert not rot.contradicted(0, 2, rel.R) and rot.contradicted(1, 2, _rot([1, 0, 0], 7.0) @ rel.R)


def test_a_pair_without_a_rotation_or_without_other_evidence_is_not_contradicted():
    poses = _poses(6, 3)
    geoms = _geoms(poses, {(0, 1): 300, (1, 2): 200, (0, 2): 100, (2, 3): 50}, {(2, 3): _rot([0, 0, 1], 30.0)})
    geoms[(4, 5)] = TwoViewGeometry("planar", np.zeros((30, 2), np.int64), 30)  # no pose chosen
    rot = RotationConsistency(geoms)
    assert rot.residual_deg(4, 5) == 0.0 and not rot.contradicted(4, 5)
    # (2, 3) alone joins view 3: nothing can judge it, however wrong
    assert rot.residual_deg(2, 3) < 1e-6 and not rot.contradicted(2, 3)


def test_rotation_consensus_is_by_weight_not_count():
    R_true = _rot([0, 0, 1], 30.0)
    R_wrong = _rot([0, 0, 1], 40.0)
    Rs = np.array([R_true, R_wrong, R_wrong @ _rot([1, 0, 0], 1.0)])
    sel, R = _rotation_consensus(Rs, np.array([329.0, 57.0, 48.0]))
    assert list(sel) == [0] and rotation_error_deg(R, R_true) < 1e-9


def test_a_wrong_pair_without_triangles_is_caught_by_the_chain_of_the_strongest_pairs():
    poses = _poses(5, 1)
    chain = {(0, 1): 600, (1, 2): 500, (2, 3): 550, (3, 4): 450}
    rot = RotationConsistency(_geoms(poses, {**chain, (0, 3): 45, (1, 4): 40},
                                     {(0, 3): _rot([0, 0, 1], 8.0), (1, 4): _rot([0, 0, 1], 2.0)}))
    assert abs(rot.residual_deg(0, 3) - 8.0) < 1.0 and rot.contradicted(0, 3)
    assert not rot.contradicted(1, 4)  # 2 degrees: within the tolerance
    assert not any(rot.contradicted(*p) for p in chain)


def test_a_strong_wrong_pair_is_outweighed_by_the_pairs_around_it():
    # (0, 1) verified on a wrong consensus with many inliers, stronger than some of the pairs
    # that contradict it
    poses = _poses(5, 2)
    inliers = {(0, 1): 262, (0, 2): 126, (1, 2): 392, (0, 3): 252, (1, 3): 143, (2, 3): 200, (2, 4): 300,
               (0, 4): 200, (3, 4): 250}
    rot = RotationConsistency(_geoms(poses, inliers, {(0, 1): _rot([1, 0, 0], 20.0)}))
    assert rot.contradicted(0, 1) and abs(rot.residual_deg(0, 1) - 20.0) < 1.0
    assert not any(rot.contradicted(*p) for p in inliers if p != (0, 1))


def test_wrong_pairs_that_agree_with_each_other_do_not_outvote_the_strong_right_ones():
    # a closed walk of 10 views whose neighbours' pairs are strong and right; views 3, 4 and 6, 7
    # also verified four weak pairs on the window grid shifted by one window: all four are
    # consistent with 6 and 7 turned 9 degrees against 3 and 4, so every triangle of the right
    # pair (4, 5) through 6 or 7 fails while the wrong pairs' triangles close among themselves
    # (the walls-facing courtyard: loop tests by triangles blamed (4, 5) there)
    poses = _poses(10, 4)
    ring = {(k, k + 1): 300 + 70 * k for k in range(9)} | {(0, 9): 320}
    shift = _rot([0, 1, 0], 9.0)
    wrong = {(3, 6): 52, (3, 7): 48, (4, 6): 84, (4, 7): 32}
    geoms = _geoms(poses, {**ring, **wrong, (5, 7): 78}, {p: shift for p in wrong})
    rot = RotationConsistency(geoms)
    assert all(rot.contradicted(*p) and abs(rot.residual_deg(*p) - 9.0) < 1.0 for p in wrong)
    assert not any(rot.contradicted(*p) for p in ring) and not rot.contradicted(5, 7)


def test_a_strong_pair_is_judged_by_the_other_pairs_without_its_own_vote():
    # a walk round a courtyard: a ring of 8 views, each pair seeing one wall; (3, 4) holds the
    # most inliers and its rotation is a plane's other decomposition, 10 degrees off. With its
    # own vote the average bends towards it; without it, the rest of the ring says where the
    # true rotation is
    poses = _poses(8, 4)
    ring = {(k, k + 1): 300 for k in range(7)} | {(0, 7): 300, (3, 4): 2000}
    wrong = _rot([0, 1, 0], 10.0)
    rot = RotationConsistency(_geoms(poses, ring, {(3, 4): wrong}))
    true = (poses[4] @ poses[3].inverse()).R
    assert rot.residual_deg(3, 4, true) > 2.0  # the pair's own vote pulls the average off the truth
    assert rot.residual_without_pair_deg(3, 4, true) < 0.1
    assert abs(rot.residual_without_pair_deg(3, 4, wrong @ true) - 10.0) < 0.1
    # a pair that alone joins its views: nothing else judges it
    chain = RotationConsistency(_geoms(poses, {(0, 1): 300, (1, 2): 200, (0, 2): 100, (2, 3): 50}, {}))
    assert chain.residual_without_pair_deg(2, 3, np.eye(3)) is None
    assert chain.residual_without_pair_deg(0, 1, (poses[1] @ poses[0].inverse()).R) < 1e-6


def test_a_planar_pair_votes_only_with_the_decomposition_its_own_matches_decide():
    # an essential matrix fitted to a plane is either decomposition at random: (5, 6)'s verified
    # rotation is the wrong one, 12 degrees off; its own matches decide the true one, or nothing
    poses = _poses(8, 5)
    ring = {(k, k + 1): 300 for k in range(7)} | {(0, 7): 300}
    geoms = _geoms(poses, ring, {(5, 6): _rot([1, 0, 0], 12.0)})
    geoms[(5, 6)].config = "planar"
    true = {k: (poses[k[1]] @ poses[k[0]].inverse()).R for k in ring}
    decided = RotationConsistency(geoms, planar_rotation=lambda k: true[k])
    assert decided.residual_without_pair_deg(3, 4, true[(3, 4)]) < 1e-6
    undecided = RotationConsistency(geoms, planar_rotation=lambda k: None)
    assert undecided.residual_without_pair_deg(3, 4, true[(3, 4)]) is None  # the ring is open at (5, 6)
    # once the rotations decide (5, 6), it closes the ring for the next pair
    undecided.add_planar_decision(5, 6, true[(5, 6)])
    assert undecided.residual_without_pair_deg(3, 4, true[(3, 4)]) < 1e-6
    # without a judge of planar pairs none votes
    assert RotationConsistency(geoms).residual_without_pair_deg(3, 4, true[(3, 4)]) is None
