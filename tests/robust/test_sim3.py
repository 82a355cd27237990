"""Sim(3) from 3D-3D matches: the closed-form solver (exact, minimal, rigid), the RANSAC estimator
(exact data, 60 % outliers, with_scale=False, degenerate input, reproducibility) and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geomvision
from geomvision.geometry.rotation import random_rotation, so3_exp
from geomvision.geometry.sim3 import Sim3
from geomvision.robust import RansacOptions, Sim3Estimator, estimate_sim3
from geomvision.solvers import sim3_from_points


def _random_sim3(rng, scale_range=(0.2, 5.0)) -> Sim3:
    scale = float(np.exp(rng.uniform(*np.log(scale_range))))
    return Sim3(scale, random_rotation(rng), rng.normal(scale=3.0, size=3))


def _close(S: Sim3, T: Sim3, tol: float) -> bool:
    """Same similarity to ``tol`` relative to T's scale and translation size."""
    return (abs(S.scale - T.scale) <= tol * T.scale and np.abs(S.R - T.R).max() <= tol
            and np.abs(S.t - T.t).max() <= tol * (1.0 + np.abs(T.t).max()))


def _kabsch(X_a, X_b):
    """Rigid least squares X_b ~ R X_a + t, written independently of the library (Arun et al.)."""
    ma, mb = X_a.mean(0), X_b.mean(0)
    U, _, Vt = np.linalg.svd((X_b - mb).T @ (X_a - ma))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    return R, mb - R @ ma


def _matches(rng, n, outlier_ratio, noise, truth):
    """X_a spread over a 4 x 4 x 4 box, X_b = truth(X_a) + N(0, noise^2) in frame b; outliers
    uniform over the inliers' bounding box in b."""
    X_a = rng.uniform(-2.0, 2.0, size=(n, 3))
    X_b = truth.apply(X_a) + rng.normal(scale=noise, size=(n, 3))
    is_out = np.zeros(n, dtype=bool)
    is_out[rng.permutation(n)[: round(outlier_ratio * n)]] = True
    lo, hi = X_b.min(0), X_b.max(0)
    X_b[is_out] = rng.uniform(lo, hi, size=(is_out.sum(), 3))
    return X_a, X_b, is_out


# --- the closed-form solver ---------------------------------------------------------------------

def test_minimal_solver_on_exactly_three_points(rng):
    for _ in range(20):
        truth = _random_sim3(rng)
        X_a = rng.normal(size=(3, 3))
        S = sim3_from_points(X_a, truth.apply(X_a))
        assert _close(S, truth, 1e-10)
        assert np.linalg.det(S.R) == pytest.approx(1.0, abs=1e-12)


def test_solver_is_the_least_squares_optimum(rng):
    truth = _random_sim3(rng)
    X_a = rng.normal(size=(40, 3))
    X_b = truth.apply(X_a) + rng.normal(scale=0.05, size=(40, 3))
    w = rng.uniform(0.1, 2.0, size=40)
    S = sim3_from_points(X_a, X_b, w)

    def cost(s, R, t):
        return float(np.sum(w * np.sum((X_b - s * X_a @ R.T - t) ** 2, axis=1)))

    c0 = cost(S.scale, S.R, S.t)
    for _ in range(50):  # every small step in (log s, rotation, t) costs more
        d = rng.normal(scale=1e-4, size=7)
        assert cost(S.scale * np.exp(d[0]), so3_exp(d[1:4]) @ S.R, S.t + d[4:]) > c0


def test_rigid_solver_matches_kabsch_and_keeps_scale_one(rng):
    truth = _random_sim3(rng)  # scale != 1: the rigid optimum is not the truth
    X_a = rng.normal(size=(30, 3))
    X_b = truth.apply(X_a) + rng.normal(scale=0.05, size=(30, 3))
    S = sim3_from_points(X_a, X_b, with_scale=False)
    R, t = _kabsch(X_a, X_b)
    assert S.scale == 1.0
    np.testing.assert_allclose(S.R, R, atol=1e-12)
    np.testing.assert_allclose(S.t, t, atol=1e-12)


def test_solver_rejects_a_reflection(rng):
    X_a = rng.normal(size=(30, 3))
    S = sim3_from_points(X_a, X_a * [1.0, 1.0, -1.0])  # a mirror image: no rotation reproduces it
    assert np.linalg.det(S.R) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_solver_inverts_and_composes(seed):
    gen = np.random.default_rng(seed)
    b_from_a = _random_sim3(gen)
    X_a = gen.normal(size=(10, 3))
    X_b = b_from_a.apply(X_a)
    S_ba = sim3_from_points(X_a, X_b)
    S_ab = sim3_from_points(X_b, X_a)
    assert _close(S_ba, b_from_a, 1e-9)
    I = S_ab @ S_ba
    assert abs(I.scale - 1.0) < 1e-9 and np.abs(I.R - np.eye(3)).max() < 1e-9 and np.abs(I.t).max() < 1e-8


def test_solver_undetermined_and_bad_input(rng):
    assert sim3_from_points(np.ones((4, 3)), rng.normal(size=(4, 3))) is None  # X_a coincide
    assert sim3_from_points(rng.normal(size=(4, 3)), np.ones((4, 3))) is None  # scale would be 0
    assert sim3_from_points(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), np.zeros(4)) is None
    with pytest.raises(ValueError, match="at least 3"):
        sim3_from_points(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="weights"):
        sim3_from_points(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), -np.ones(4))


# --- the RANSAC estimator -----------------------------------------------------------------------

def test_exact_data_some_candidate_and_the_result_equal_the_truth(rng):
    for _ in range(5):
        truth = _random_sim3(rng)
        X_a, X_b, _ = _matches(rng, 60, 0.0, 0.0, truth)
        est = Sim3Estimator(X_a, X_b)
        models = est.fit_minimal(rng.choice(60, 3, replace=False))
        assert any(_close(M, truth, 1e-10) for M in models)
        res = estimate_sim3(X_a, X_b, max_error=1e-6, rng=rng)
        assert res.stats.success and res.inliers.all()
        assert isinstance(res.model, Sim3) and _close(res.model, truth, 1e-10)
        assert est.sq_errors(res.model).max() < 1e-18 * truth.scale**2


@pytest.mark.parametrize("scale_range", [(0.2, 0.2), (1.0, 1.0), (5.0, 5.0)])
def test_sixty_percent_outliers(rng, scale_range):
    noise = 0.01  # in frame b
    thr = 4.0 * noise
    truth = _random_sim3(rng, scale_range)
    X_a, X_b, is_out = _matches(rng, 500, 0.6, noise, truth)
    res = estimate_sim3(X_a, X_b, max_error=thr, rng=rng)
    assert res.stats.success
    # the oracle's inliers: every point within the threshold of the true transform
    oracle = np.sum((X_b - truth.apply(X_a)) ** 2, axis=1) < thr**2
    tp = np.sum(res.inliers & oracle)
    assert tp / res.inliers.sum() > 0.98 and tp / oracle.sum() > 0.98
    # the model is as good as the noise allows: it moves the inliers' points by far less than
    # the noise, and their residuals are the injected noise (rms sqrt(3) * noise in 3-D)
    inl = ~is_out
    moved = np.sqrt(np.mean(np.sum((res.model.apply(X_a[inl]) - truth.apply(X_a[inl])) ** 2, axis=1)))
    assert moved < 0.3 * noise
    rms = np.sqrt(np.mean(np.sum((X_b[inl] - res.model.apply(X_a[inl])) ** 2, axis=1)))
    assert 0.9 * np.sqrt(3) * noise < rms < 1.1 * np.sqrt(3) * noise
    assert abs(res.model.scale / truth.scale - 1.0) < 0.01


def test_rigid_fit_has_scale_one_and_is_the_rigid_optimum(rng):
    noise = 0.01
    truth = Sim3(1.0, random_rotation(rng), rng.normal(size=3))
    X_a, X_b, is_out = _matches(rng, 300, 0.4, noise, truth)
    res = estimate_sim3(X_a, X_b, max_error=4 * noise, rng=rng, with_scale=False)
    assert res.stats.success and res.model.scale == 1.0
    assert np.abs(res.model.R - truth.R).max() < 0.3 * noise and np.abs(res.model.t - truth.t).max() < 0.3 * noise
    # the refinement with unit weights on the inliers is the rigid least-squares optimum
    est = Sim3Estimator(X_a, X_b, with_scale=False)
    ref = est.refine(res.model, res.inliers)
    R, t = _kabsch(X_a[res.inliers], X_b[res.inliers])
    assert ref.scale == 1.0
    np.testing.assert_allclose(ref.R, R, atol=1e-12)
    np.testing.assert_allclose(ref.t, t, atol=1e-12)
    # on data with a scale, the rigid fit keeps scale 1 while the similarity finds it
    X_b2 = 1.5 * X_b
    assert estimate_sim3(X_a, X_b2, max_error=1.0, rng=rng, with_scale=False).model.scale == 1.0
    assert estimate_sim3(X_a, X_b2, max_error=0.06, rng=rng).model.scale == pytest.approx(1.5, rel=1e-2)


def test_collinear_points_give_no_model(rng):
    truth = _random_sim3(rng)
    X_a = np.outer(rng.uniform(-2, 2, 50), [0.3, -0.5, 0.8]) + [1.0, 2.0, 3.0]
    res = estimate_sim3(X_a, truth.apply(X_a), max_error=0.01, rng=rng)
    assert not res.stats.success and res.model is None and not res.inliers.any()
    assert "degenerate" in res.stats.message or "no non-degenerate" in res.stats.message
    # nearly collinear: the points leave the line by less than the threshold
    X_a2 = X_a + rng.normal(scale=1e-3, size=X_a.shape)
    res = estimate_sim3(X_a2, truth.apply(X_a2), max_error=0.05 * truth.scale, rng=rng)
    assert not res.stats.success and res.model is None
    assert "line-degenerate" in res.stats.message


def test_planar_points_are_not_degenerate(rng):
    truth = _random_sim3(rng)
    X_a = np.c_[rng.uniform(-2, 2, size=(50, 2)), np.zeros(50)]
    res = estimate_sim3(X_a, truth.apply(X_a), max_error=1e-6, rng=rng)
    assert res.stats.success and _close(res.model, truth, 1e-10)


def test_same_seed_same_result(rng):
    X_a, X_b, _ = _matches(rng, 200, 0.5, 0.01, _random_sim3(rng))
    r1 = estimate_sim3(X_a, X_b, max_error=0.04, rng=7)
    r2 = estimate_sim3(X_a, X_b, RansacOptions(), max_error=0.04, rng=7)
    assert r1.model == r2.model and np.array_equal(r1.inliers, r2.inliers)


def test_input_checks(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="at least 3"):
        estimate_sim3(X[:2], X[:2], max_error=0.1)
    with pytest.raises(ValueError, match="X_b must have shape"):
        estimate_sim3(X, X[:, :2], max_error=0.1)
    with pytest.raises(ValueError, match="same number of rows"):
        estimate_sim3(X, X[:9], max_error=0.1)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X_a contains 1 NaN"):
        estimate_sim3(bad, X, max_error=0.1)
    with pytest.raises(ValueError, match="max_error"):
        estimate_sim3(X, X, max_error=0.0)
    with pytest.raises(ValueError, match="with_scale"):
        estimate_sim3(X, X, max_error=0.1, with_scale=1)
    with pytest.raises(ValueError, match="unknown RANSAC option"):
        estimate_sim3(X, X, max_error=0.1, max_iteration=5)
    with pytest.raises(ValueError, match="Sim3"):
        Sim3Estimator(X, X).sq_errors(np.eye(4))


def test_top_level_lazy_export():
    assert geomvision.estimate_sim3 is estimate_sim3
