"""The implicit reduced camera system ("iterative" solver) against the explicit one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from geomvision.optim import BAConfig, BAOptions, solve_bundle
from geomvision.optim.schur import SchurSystem
from geomvision.optim.solver import _BundleLM

from test_bundle import centre_error, perturb, scene_problem, two_shared_cameras


def _systems(problem, config, lam):
    """The same linearisation held by an explicit (sparse) and an implicit system."""
    masks = config.masks(problem)
    out = []
    for solver in ("sparse", "iterative"):
        lmp = _BundleLM(problem, *masks, BAOptions(linear_solver=solver, iterative_tolerance=1e-12))
        lmp.linearize()
        out.append(lmp.system)
    explicit, implicit = out
    return explicit, implicit


def _explicit_S(system: SchurSystem, lam: float) -> np.ndarray:
    """S of the sparse system for damping lam, as a dense matrix (rebuilt like ``solve`` does)."""
    from geomvision.optim import _schur_kernels as sk

    I = len(system.img_nloc)
    B = np.empty((1, len(system.pair_col), system.L, system.L))
    b = np.empty((1, I, system.L))
    Vinv = np.empty((len(system.pt_free_idx), 3, 3))
    sk.schur_complement(lam, system.Jc, system.Jp, system.obs_img, system.img_nloc, system.img_loc_jc, system.pt_ptr,
                        system.pt_obs, system.pt_free_idx, system.V, system.Dp, system.gp, system.pair_ptr,
                        system.pair_col, system.max_track, B, b, Vinv)
    S = np.zeros(system.size)
    sk.assemble(system.mode, system.n, system.pair_ptr, system.pair_col, B[0], system.Uimg, system.img_nloc,
                system.img_loc_g, system.col_grp, system.col_within, system.gptr, system.gcol, system.gcolstart,
                system.gbase, system.growlen, S)
    S[system.diag_pos] += lam * system.Dc
    return scipy.sparse.csr_matrix((S, system.indices, system.indptr), shape=(system.n, system.n)).toarray()


@pytest.mark.parametrize("shared", [False, True])
def test_product_and_preconditioner_match_the_formed_matrix(shared, rng):
    """S x from two passes over the observations equals the formed S times x, and the
    preconditioner's pose blocks are S's diagonal blocks (one or two shared cameras, free
    intrinsics, so the intrinsics couple every image)."""
    _, gt = scene_problem(rng, n_images=6, n_points=150)
    start = perturb(gt, rng)
    if shared:
        start = two_shared_cameras(start)
    lam = 1e-3
    explicit, implicit = _systems(start, BAConfig(), lam)
    S = _explicit_S(explicit, lam)
    assert implicit.n == explicit.n and np.allclose(S, S.T)
    hc = implicit._implicit.solve(implicit, lam)  # sets Vinv, the preconditioner and the per-observation blocks
    assert hc is not None
    for _ in range(3):
        x = rng.normal(size=implicit.n)
        np.testing.assert_allclose(implicit._implicit._product(implicit, x, lam), S @ x, rtol=1e-9, atol=1e-9 * np.abs(S).max())
    blocks = np.linalg.inv(implicit._implicit.Minv)
    n_pose_groups = int((implicit.pose_col >= 0).any(axis=1).sum())
    assert n_pose_groups == start.num_images
    for g in range(n_pose_groups):
        k = int(implicit.group_size[g])
        cols = np.arange(implicit.group_offset[g], implicit.group_offset[g + 1])
        np.testing.assert_allclose(blocks[g][:k, :k], S[np.ix_(cols, cols)], rtol=1e-9, atol=1e-12 * np.abs(S).max())
    # to a tight tolerance, the step is the direct solve's
    he, _ = explicit.solve(lam)
    np.testing.assert_allclose(hc, he, rtol=1e-6, atol=1e-9 * np.abs(he).max())


def test_model_decrease_of_an_inexact_step(rng):
    """With a loose tolerance the step is not the exact solution; the gain ratio's denominator
    is still L(0) - L(h) of the step taken: -g.h - 0.5 h^T (J^T J + lam D) h from the Jacobians."""
    _, gt = scene_problem(rng, n_images=6, n_points=150)
    start = perturb(gt, rng)
    config = BAConfig()
    lmp = _BundleLM(start, *config.masks(start), BAOptions(linear_solver="iterative", iterative_tolerance=0.3))
    lmp.linearize()
    lam = 1e-2
    step_norm, decrease = lmp.compute_step(lam)
    s = lmp.system
    hc, hp = lmp.step
    assert s._implicit.iterations < s.n  # stopped early: an inexact step
    # J h per observation: camera part through the local columns, point part through Jp
    xi = np.append(hc, 0.0)[s.img_loc_g]
    Jh = np.zeros((start.num_observations, 2))
    for o in range(start.num_observations):
        i = s.obs_img[o]
        cols = s.img_loc_jc[i, : s.img_nloc[i]]
        Jh[o] += s.Jc[o][:, cols] @ xi[i, : s.img_nloc[i]]
        q = s.pt_col[start.obs_pt[o]]
        if q >= 0:
            Jh[o] += s.Jp[o] @ hp[q]
    hDh = hc @ (s.Dc * hc) + np.einsum("qi,qi,qi->", hp, s.Dp, hp)
    expected = -(s.gc @ hc + np.einsum("qi,qi->", s.gp, hp)) - 0.5 * (np.sum(Jh**2) + lam * hDh)
    assert decrease == pytest.approx(expected, rel=1e-9)
    assert decrease > 0


def test_auto_takes_iterative_on_long_tracks_and_reaches_the_same_optimum(rng):
    """24 images that all see every point (tracks of 24): "auto" forms no S, and ends where the
    sparse Cholesky does."""
    _, gt = scene_problem(rng, n_images=24, n_points=150)
    t = np.bincount(gt.obs_pt)
    assert (t @ t) / t.sum() >= BAOptions().auto_iterative_track_length
    start = perturb(gt, rng)
    a, b = start.copy(), start.copy()
    tight = {"function_tolerance": 1e-12, "parameter_tolerance": 1e-12}
    gauge = BAConfig(gauge="two_cameras")
    ra = solve_bundle(a, BAOptions(linear_solver="sparse", **tight), gauge)
    rb = solve_bundle(b, BAOptions(**tight), gauge)
    assert rb.linear_solver == "iterative" and ra.linear_solver.startswith("sparse")
    assert rb.final_rms_px == pytest.approx(ra.final_rms_px, rel=1e-7)
    assert centre_error(b, a) < 1e-6
    # short tracks keep the direct solve
    _, short = scene_problem(rng, n_images=4, n_points=100)
    assert solve_bundle(perturb(short, rng), BAOptions(max_iterations=2)).linear_solver == "dense"


def test_a_finished_system_is_freed_without_the_cyclic_collector(rng):
    """The iterative solver keeps no reference back to its system: a cycle would hold every
    finished problem's Jacobians until Python's cyclic collector runs (seen in SfM as +400 MB
    over the last global adjustments of 300 images)."""
    import gc
    import weakref

    _, gt = scene_problem(rng, n_images=6, n_points=150)
    start = perturb(gt, rng)
    lmp = _BundleLM(start, *BAConfig().masks(start), BAOptions(linear_solver="iterative"))
    lmp.linearize()
    assert lmp.compute_step(1e-3) is not None
    ref = weakref.ref(lmp.system)
    gc.disable()
    try:
        del lmp
        assert ref() is None
    finally:
        gc.enable()
