"""Essential-matrix solvers, decomposition and cheirality against exact relative poses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_cases import relative_case, scale_sign_error

from geomvision.geometry import Rigid3, essential_from_pose, hat, random_rotation, rotation_error_deg
from geomvision.solvers import (
    decompose_essential,
    essential_5pt,
    essential_8pt,
    relative_pose_5pt,
    relative_pose_from_essential,
)
from geomvision.geometry._rotation_kernels import hat_nb
from geomvision.solvers.essential import (
    best_cheirality_nb,
    count_in_front_nb,
    essential_5pt_nb,
    essential_from_pose_nb,
    five_point_workspace,
    relative_pose_5pt_nb,
    relative_pose_5pt_ws,
)


def _assert_essential(E, rays1, rays2):
    s = np.linalg.svd(E, compute_uv=False)
    assert abs(s[0] - s[1]) < 1e-9 * s[0]
    assert s[2] < 1e-9 * s[0]
    u1 = rays1 / np.linalg.norm(rays1, axis=1, keepdims=True)
    u2 = rays2 / np.linalg.norm(rays2, axis=1, keepdims=True)
    assert np.abs(np.einsum("ij,jk,ik->i", u2, E / np.linalg.norm(E), u1)).max() < 1e-10


def _pose_error(A: Rigid3, B: Rigid3) -> float:
    return float(np.abs(A.R - B.R).max() + np.abs(A.t - B.t).max())


@pytest.mark.parametrize("omni", [False, True])
def test_5pt_recovers_ground_truth(rng, omni):
    for _ in range(150):
        T, r1, r2 = relative_case(rng, 5, omni=omni)
        E = essential_from_pose(T)
        Es = essential_5pt(r1, r2)
        assert 1 <= len(Es) <= 10
        assert min(scale_sign_error(G, E) for G in Es) < 1e-8
        for G in Es:
            _assert_essential(G, r1, r2)
        poses = relative_pose_5pt(r1, r2)
        assert len(poses) == len(Es)
        assert min(_pose_error(P, T) for P in poses) < 1e-8
        for P in poses:
            assert np.isclose(np.linalg.det(P.R), 1.0) and np.isclose(np.linalg.norm(P.t), 1.0)


def test_5pt_same_side_drops_exactly_the_roots_no_pose_can_use(rng):
    # RANSAC's filter: a root whose five depth ratios differ in sign is dropped before it is
    # checked and decomposed. The true E of an all-in-front sample survives it; with one point
    # moved behind camera 2 (its ray reversed: still on the epipolar plane) the true E fits the
    # sample but no pose of it has all five in front, and the filter drops it
    kept = total = 0
    for _ in range(100):
        T, r1, r2 = relative_case(rng, 5)
        E = essential_from_pose(T)
        Es, n = essential_5pt_nb(r1, r2, False, True)
        assert min(scale_sign_error(G, E) for G in Es[:n]) < 1e-8
        Es_all, n_all = essential_5pt_nb(r1, r2, False, False)
        assert n <= n_all
        kept += n
        total += n_all
        for G in Es_all[:n_all]:  # what it drops has no pose with all five in front
            if min((scale_sign_error(G, H) for H in Es[:n]), default=1.0) > 1e-12:
                assert max(count_in_front_nb(P.R, P.t, r1, r2) for P in decompose_essential(G)) < 5
        r2b = r2.copy()
        r2b[2] = -r2b[2]
        Es, n = essential_5pt_nb(r1, r2b, False, False)
        assert min(scale_sign_error(G, E) for G in Es[:n]) < 1e-8
        Es, n = essential_5pt_nb(r1, r2b, False, True)
        assert n == 0 or min(scale_sign_error(G, E) for G in Es[:n]) > 1e-3
    assert kept < total


def test_5pt_in_one_reused_workspace_matches_fresh_calls(rng):
    # RANSAC calls the solver in one workspace for every draw: what a previous sample left in
    # it (more roots, a degenerate sample's early exit, a polished root) must not change the
    # next one's result, bit for bit, nor the count of candidates
    ws = five_point_workspace()
    for k in range(300):
        if k % 3 == 0:
            r1 = np.c_[rng.normal(scale=0.5, size=(5, 2)), np.ones(5)]
            r2 = np.c_[rng.normal(scale=0.5, size=(5, 2)), np.ones(5)]
        else:
            _T, r1, r2 = relative_case(rng, 5, baseline=0.1 if k % 3 == 1 else 1.0)
        if k % 10 == 0:
            r1[4], r2[4] = 2.0 * r1[0], 3.0 * r2[0]  # degenerate: the null space is 5-dimensional
        for always_polish, all_in_front in ((False, True), (True, False)):
            Rs, ts, n = relative_pose_5pt_nb(r1, r2, always_polish, all_in_front)
            Rw, tw, nw = relative_pose_5pt_ws(r1, r2, ws, always_polish, all_in_front)
            assert nw == n
            assert np.array_equal(Rw[:n], Rs[:n]) and np.array_equal(tw[:n], ts[:n])


def test_5pt_results_outlive_the_workspace_they_were_solved_in(rng):
    # the _nb solvers make a workspace per call and return views into it; the scratch views are
    # borrowed (no reference counting), so the returned ones must own the workspace or they
    # would point into freed memory once the allocations below reuse it
    T, r1, r2 = relative_case(rng, 5)
    Es, n = essential_5pt_nb(r1, r2)
    Rs, ts, m = relative_pose_5pt_nb(r1, r2)
    junk = [np.full(4096, np.nan) for _ in range(64)]
    assert n >= 1 and m >= 1 and np.isfinite(Es[:n]).all() and np.isfinite(Rs[:m]).all()
    assert min(scale_sign_error(G, essential_from_pose(T)) for G in Es[:n]) < 1e-8
    assert min(np.linalg.norm(R - T.R) + np.linalg.norm(t - T.t / np.linalg.norm(T.t)) for R, t in zip(Rs[:m], ts[:m])) < 1e-8
    del junk


def test_5pt_short_baseline(rng):
    # 2 % parallax: close to pure rotation, where every [t]_x R fits and the cubic system
    # degenerates. The true E must still be found for nearly every sample (PoseLib 2.0.5's
    # solver misses it in about 4 % of these samples, and is off by more than 1e-8 in 20 %),
    # and every candidate must be a valid essential matrix.
    hits = 0
    trials = 300
    for _ in range(trials):
        T, r1, r2 = relative_case(rng, 5, baseline=0.1)
        Es = essential_5pt(r1, r2)
        for G in Es:
            _assert_essential(G, r1, r2)
        hits += bool(Es) and min(scale_sign_error(G, essential_from_pose(T)) for G in Es) < 1e-8
    assert hits >= 0.98 * trials


def test_5pt_degenerate_samples(rng):
    _T, r1, r2 = relative_case(rng, 5)
    rep1, rep2 = r1.copy(), r2.copy()
    rep1[4], rep2[4] = 2.0 * rep1[0], 0.5 * rep2[0]  # the same correspondence twice
    assert essential_5pt(rep1, rep2) == []
    assert relative_pose_5pt(rep1, rep2) == []
    assert essential_5pt(np.tile([0.0, 0.0, 1.0], (5, 1)), np.tile([0.1, 0.0, 1.0], (5, 1))) == []


def test_8pt_exact_weights_and_scale_invariance(rng):
    T, r1, r2 = relative_case(rng, 40)
    E = essential_from_pose(T)
    G = essential_8pt(r1, r2)
    assert scale_sign_error(G, E) < 1e-10
    assert np.allclose(np.linalg.svd(G, compute_uv=False), [1.0, 1.0, 0.0], atol=1e-12)
    o1 = np.vstack([r1, rng.normal(size=(15, 3))])
    o2 = np.vstack([r2, rng.normal(size=(15, 3))])
    w = np.r_[np.ones(40), np.zeros(15)]
    assert scale_sign_error(essential_8pt(o1, o2, w), E) < 1e-10
    assert scale_sign_error(essential_8pt(o1, o2), E) > 1e-3
    Tw, w1, w2 = relative_case(rng, 30, omni=True)
    assert scale_sign_error(essential_8pt(w1, w2), essential_from_pose(Tw)) < 1e-10


def test_8pt_degenerate_returns_none(rng):
    R = random_rotation(rng)
    X = rng.normal(size=(30, 3))
    assert essential_8pt(X, X @ R.T) is None  # pure rotation: t undetermined
    _T, r1, r2 = relative_case(rng, 8)
    assert essential_8pt(np.tile(r1[:4], (2, 1)), np.tile(r2[:4], (2, 1))) is None


def test_decompose_essential_gives_the_four_poses(rng):
    for _ in range(50):
        T, r1, r2 = relative_case(rng, 20)
        E = essential_from_pose(T)
        poses = decompose_essential(3.7 * E)
        assert len(poses) == 4
        for P in poses:
            assert np.isclose(np.linalg.det(P.R), 1.0)
            assert np.allclose(P.R.T @ P.R, np.eye(3), atol=1e-12)
            assert np.isclose(np.linalg.norm(P.t), 1.0)
            assert scale_sign_error(hat(P.t) @ P.R, E) < 1e-10
        assert min(_pose_error(P, T) for P in poses) < 1e-10
        # the pair (R, t), (R, -t) and the twisted pair R' = rot(t, pi) R
        ts = np.array([P.t for P in poses])
        assert np.allclose(ts[0], -ts[1]) and np.allclose(ts[2], -ts[3])
        twist = poses[2].R @ poses[0].R.T
        assert np.isclose(rotation_error_deg(twist, np.eye(3)), 180.0, atol=1e-6)
        # cheirality picks the truth, with every point in front
        P, n = relative_pose_from_essential(E, r1, r2)
        assert n == 20 and _pose_error(P, T) < 1e-10
        counts = sorted(count_in_front_nb(Q.R, Q.t, r1, r2) for Q in poses)
        assert counts[-1] == 20 and counts[-2] < 20


def test_best_cheirality_finds_the_pose_from_any_of_the_four(rng):
    # from each of the four poses of E, the one-pass check (no SVD) returns the true pose with
    # its count; with a point moved behind a camera the count says so and the pose stays
    for omni in (False, True):
        for _ in range(20):
            T, r1, r2 = relative_case(rng, 30, omni=omni)
            counts = {}
            for P in decompose_essential(essential_from_pose(T)):
                R, t, n = best_cheirality_nb(P.R, P.t, r1, r2)
                assert n == 30 and _pose_error(Rigid3(R, t), T) < 1e-12
                counts[count_in_front_nb(P.R, P.t, r1, r2)] = P
            assert max(counts) == 30
            r2b = r2.copy()
            r2b[0] = -r2b[0]
            R, t, n = best_cheirality_nb(T.R, T.t, r1, r2b)
            assert n == 29 and n == count_in_front_nb(T.R, T.t, r1, r2b) and _pose_error(Rigid3(R, t), T) < 1e-12


def test_cheirality_with_wide_angle_rays(rng):
    T, r1, r2 = relative_case(rng, 50, omni=True)
    P, n = relative_pose_from_essential(essential_from_pose(T), r1, r2)
    assert n == 50 and _pose_error(P, T) < 1e-10
    # a point behind camera 2 is not counted
    r2b = r2.copy()
    r2b[0] = -r2b[0]
    assert count_in_front_nb(T.R, T.t, r1, r2b) == 49


def test_degenerate_essential():
    assert decompose_essential(np.zeros((3, 3))) == []
    rank1 = np.outer([1.0, 2.0, 3.0], [0.5, -1.0, 2.0])
    assert decompose_essential(rank1) == []
    P, n = relative_pose_from_essential(np.zeros((3, 3)), np.eye(3), np.eye(3))
    assert P is None and n == 0


def test_bad_input(rng):
    r = rng.normal(size=(8, 3))
    with pytest.raises(ValueError, match="rays1"):
        essential_5pt(r[:4], r[:4])
    with pytest.raises(ValueError, match="rays2"):
        essential_5pt(r[:5], r[:5, :2])
    z = r[:5].copy()
    z[2] = 0.0
    with pytest.raises(ValueError, match="rays1"):
        essential_5pt(z, r[:5])
    with pytest.raises(ValueError, match="rays1"):
        essential_8pt(r[:7], r[:7])
    with pytest.raises(ValueError, match="E"):
        decompose_essential(np.eye(2))
    with pytest.raises(ValueError, match="E"):
        relative_pose_from_essential(np.full((3, 3), np.nan), r, r)
    bad = r.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="rays2"):
        relative_pose_from_essential(np.eye(3), r, bad)


@settings(max_examples=200, deadline=None)
@given(
    rotvec=st.lists(st.floats(-1.8, 1.8), min_size=3, max_size=3),
    t=st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 0.1),
    scale=st.floats(1e-3, 1e3),
)
def test_decompose_essential_property(rotvec, t, scale):
    T = Rigid3.from_rotvec(np.array(rotvec), np.array(t) / np.linalg.norm(t))
    poses = decompose_essential(scale * essential_from_pose(T))
    assert min(_pose_error(P, T) for P in poses) < 1e-9
    for P in poses:
        assert np.isclose(np.linalg.det(P.R), 1.0)


@settings(max_examples=50, deadline=None)
@given(
    rotvec=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    t=st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3),
)
def test_essential_from_pose_kernel_matches_the_public_one(rotvec, t):
    """The kernels' E = [t]_x R (RANSAC's decomposition check, the refinement's Jacobian) equal
    the public essential_from_pose, and [t]_x u = t x u."""
    T = Rigid3.from_rotvec(np.array(rotvec), np.array(t))
    assert np.allclose(essential_from_pose_nb(T.R, T.t), essential_from_pose(T), rtol=0, atol=1e-12)
    u = np.array([0.3, -1.2, 2.5])
    assert np.allclose(hat_nb(T.t) @ u, np.cross(T.t, u), rtol=0, atol=1e-12)


def test_the_written_out_monomial_products_match_the_exponent_tables(rng):
    """The 5-point system's products of degree-1 and degree-2 polynomials in (x, y, z), written
    out term by term, against the product spelled out from the monomials' exponents."""
    from geomvision.solvers.essential import _MONO1, _MONO2, _MONO3, _mul11_add, _mul21_add

    def product(a, mono_a, b, mono_b, mono_out):
        out = np.zeros(len(mono_out))
        for i, ea in enumerate(mono_a):
            for j, eb in enumerate(mono_b):
                out[mono_out.index(tuple(u + v for u, v in zip(ea, eb)))] += a[i] * b[j]
        return out

    p, q, a, w = rng.normal(size=4), rng.normal(size=4), rng.normal(size=10), -1.5
    out = rng.normal(size=10)
    expect = out + w * product(p, _MONO1, q, _MONO1, _MONO2)
    _mul11_add(p, q, out, w)
    assert np.allclose(out, expect, rtol=1e-14, atol=1e-14)
    out = rng.normal(size=20)
    expect = out + product(a, _MONO2, q, _MONO1, _MONO3)
    _mul21_add(a, q, out)
    assert np.allclose(out, expect, rtol=1e-14, atol=1e-14)
