"""The RANSAC engine: the stopping rule pinned with a mock estimator, the samplers, options."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from geomvision.robust import _core as core
from geomvision.robust.engine import Estimator, ransac
from geomvision.robust.options import RansacOptions


# --- a mock estimator: every sample gives the same model, whose inliers are data[0] -----------
@njit(cache=True)
def _mock_fit(data, sample, models):
    models[0, 0] = 1.0
    return 1


@njit(cache=True)
def _mock_sq_errors(data, model, start, stop, out):
    labels = data[0]
    for i in range(start, stop):
        out[i] = 0.0 if labels[i] else 1e6


@njit(cache=True)
def _mock_run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_mock_fit, core.no_nonminimal, core.refine_identity, _mock_sq_errors,
                            core.no_degeneracy, core.no_repair, data, order, groups, params_i, params_f, seed)


def _mock(sample_size: int, n: int, num_inliers: int) -> Estimator:
    class Mock(Estimator):
        name = "mock"
        model_dim = 1
        max_models = 1
        k_fit_minimal = staticmethod(_mock_fit)
        k_sq_errors = staticmethod(_mock_sq_errors)
        k_run = staticmethod(_mock_run)

    Mock.sample_size = sample_size
    labels = np.zeros(n, dtype=np.bool_)
    labels[:num_inliers] = True
    return Mock((labels,), n)


def _expected(w: float, s: int, conf: float, lo: int, hi: int) -> int:
    n = math.ceil(math.log(1 - conf) / math.log(1 - w**s))
    return min(hi, max(lo, n))


@pytest.mark.parametrize(
    "s, n, k, conf, lo, hi",
    [
        (4, 1000, 500, 0.99, 10, 10_000),  # adaptive: 72 draws
        (4, 1000, 500, 0.99, 100, 10_000),  # min_iterations binds
        (7, 1000, 300, 0.9999, 0, 500),  # max_iterations binds
        (5, 200, 120, 0.999, 1, 10_000),
        (2, 100, 30, 0.9999, 0, 10_000),
        (3, 50, 50, 0.99, 7, 100),  # all inliers: only the minimum
    ],
)
@pytest.mark.parametrize("sampler", ["uniform", "prosac"])
def test_stopping_rule_is_exact(s, n, k, conf, lo, hi, sampler):
    est = _mock(s, n, k)
    opts = RansacOptions(confidence=conf, min_iterations=lo, max_iterations=hi, sampler=sampler)
    res = ransac(est, 1.0, opts, rng=0)
    want = lo if k == n else _expected(k / n, s, conf, lo, hi)
    assert res.stats.iterations == max(want, 1)
    assert res.stats.num_inliers == k
    assert res.stats.inlier_ratio == pytest.approx(k / n)
    assert res.inliers.sum() == k and res.inliers[:k].all()
    assert res.stats.success


def test_required_iterations_formula():
    assert core.required_iterations(500, 1000, 4, 0.99) == 72
    assert core.required_iterations(1000, 1000, 4, 0.99) == 0
    assert core.required_iterations(0, 1000, 4, 0.99) > 10**15


def _draws(n, s, count, prosac, seed=3):
    state = np.array([seed], dtype=np.uint64)
    pst = core.prosac_init(n, s, 200_000)
    out = np.empty(s, dtype=np.int64)
    draws = []
    for _ in range(count):
        if prosac:
            core.sample_prosac(state, pst, n, s, out)
        else:
            core.sample_uniform(state, n, out, 0)
        draws.append(out.copy())
    return np.array(draws)


def test_uniform_samples_are_distinct_and_uniform():
    d = _draws(20, 5, 4000, False)
    assert all(len(set(r)) == 5 for r in d)
    counts = np.bincount(d.ravel(), minlength=20)
    expected = 4000 * 5 / 20
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_prosac_starts_with_the_best_points_and_grows():
    d = _draws(1000, 4, 3000, True)
    assert all(len(set(r)) == 4 for r in d)
    assert sorted(d[0]) == [0, 1, 2, 3]  # the top s points first
    first = d[:50].max(axis=1)
    late = d[-200:].max(axis=1)
    assert first.max() < 100  # early draws stay among the best-ranked points
    assert np.median(late) > np.median(first)  # the pool grows with time


def test_splitmix_is_uniform():
    state = np.array([12345], dtype=np.uint64)
    u = np.array([core.next_uniform(state) for _ in range(20000)])
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005


def test_options_validate_themselves():
    with pytest.raises(ValueError, match="confidence"):
        RansacOptions(confidence=1.0)
    with pytest.raises(ValueError, match="min_iterations"):
        RansacOptions(min_iterations=200, max_iterations=100)
    with pytest.raises(ValueError, match="sampler"):
        RansacOptions(sampler="random")
    with pytest.raises(ValueError, match="max_iterations"):
        RansacOptions(max_iterations=2.5)
    with pytest.raises(ValueError, match="lo_threshold_mult"):
        RansacOptions(lo_threshold_mult=0.5)
    with pytest.raises(ValueError, match="local_optimization"):
        RansacOptions(local_optimization="yes")
    with pytest.raises(ValueError, match="polish_scale"):
        RansacOptions(polish_scale=-0.5)
    with pytest.raises(ValueError, match="polish_rounds"):
        RansacOptions(polish_rounds=-1)
    with pytest.raises(ValueError, match="unknown RANSAC option.*max_iter"):
        RansacOptions().replace(max_iter=5)
    assert RansacOptions().replace(max_iterations=700).max_iterations == 700


def test_engine_rejects_bad_calls():
    est = _mock(4, 10, 5)
    with pytest.raises(ValueError, match="sq_threshold"):
        ransac(est, 0.0)
    with pytest.raises(ValueError, match="sq_threshold"):
        ransac(est, float("nan"))
    with pytest.raises(ValueError, match="rng"):
        ransac(est, 1.0, rng="seed")
    with pytest.raises(ValueError, match="quality"):
        ransac(est, 1.0, quality=np.ones(3))
    with pytest.raises(ValueError, match="at least 4 points"):
        ransac(_mock(4, 3, 3), 1.0)
    with pytest.raises(ValueError, match="options"):
        ransac(est, 1.0, options={"max_iterations": 3})


# --- the rounds of a local optimisation: a mock whose refinement steps by 1 and counts its calls ---
@njit(cache=True)
def _line_sq_errors(data, model, start, stop, out):
    x = data[0]
    for i in range(start, stop):
        out[i] = (x[i] - model[0]) ** 2


@njit(cache=True)
def _counting_refine(data, model, idx, weights, max_iters):
    data[1][0] += 1
    return model + 1.0


@njit(cache=True)
def _lo_rounds(data, rounds, abort_score, params_i, params_f, shared):
    errs = np.empty(data[0].shape[0])
    model = np.zeros(1)
    _line_sq_errors(data, model, 0, errs.shape[0], errs)
    score, k = core.msac_score(errs, params_f[core.P_SQ_THRESHOLD])
    data[1][0] = 0
    core.local_optimization(_counting_refine, core.no_nonminimal, _line_sq_errors, data, model, score, k, errs,
                            np.zeros((1, 1)), shared, params_i, params_f, rounds, 5, False, 0, False, abort_score,
                            -np.inf)
    return data[1][0]


@pytest.mark.parametrize(("abort_score", "want"), [(-1.0, core.ABORT_ROUNDS), (np.inf, 10)])
def test_an_lo_that_stays_above_its_abort_score_stops_after_abort_rounds(abort_score, want):
    # every round moves the model by 1 and changes its score, so only the abort (or the rounds)
    # stops it; a score above abort_score (here every score) must stop it after ABORT_ROUNDS.
    # (Its round counter was once overwritten by the IRLS weights, and every other-basin LO ran
    # all its rounds: 9.8 per run on a walls pair.)
    x = 200.0 * np.linspace(-1.0, 1.0, 401) ** 3  # denser near 0: each step away raises the score
    data = (x, np.zeros(1, dtype=np.int64))
    params_i = np.zeros(core.NUM_PARAMS_I, dtype=np.int64)
    params_i[core.P_SAMPLE_SIZE] = 2
    params_f = np.zeros(core.NUM_PARAMS_F + 1)
    params_f[core.P_SQ_THRESHOLD] = 400.0
    params_f[core.P_LO_THRESHOLD_MULT] = 1.5
    shared = core.shared_scratch(np.full(x.shape[0], -1, dtype=np.int64))
    assert _lo_rounds(data, 10, abort_score, params_i, params_f, shared) == want
