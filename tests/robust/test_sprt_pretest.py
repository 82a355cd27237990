"""The sequential pre-test of minimal models (``_core.passes_pretest``, Matas and Chum's SPRT):
a model at the bar (half the best minimal model's inlier rate) survives it with probability
>= 99 %, a wrong model is dropped after reading a small part of the points."""

import math

import numpy as np
from numba import njit

from geomvision.robust import _core as core


@njit(cache=False)
def _given_errors(data, model, start, stop, out):
    """A "model" whose squared errors are given (data[0]); counts the points read in data[1]."""
    for i in range(start, stop):
        out[i] = data[0][i]
    data[1][0] += stop - start


@njit(cache=False)
def _trials(is_inlier, probe, step_in, step_out, seeds):
    """Pre-test outcome and points read for each seed (a fresh inlier layout per seed)."""
    n = is_inlier.shape[1]
    passed = np.zeros(seeds, dtype=np.bool_)
    read = np.zeros(seeds, dtype=np.int64)
    errs = np.empty(n)
    in_sample = np.zeros(n, dtype=np.bool_)
    for k in range(seeds):
        sq = np.where(is_inlier[k], 0.25, 4.0)
        counter = np.zeros(1, dtype=np.int64)
        passed[k] = core.passes_pretest(_given_errors, (sq, counter), np.zeros(1), errs, 1.0, probe,
                                        (7 * k) % probe.shape[0], step_in, step_out, in_sample)
        read[k] = counter[0]
    return passed, read


def _run(rate, eps, delta, n=900, seeds=2000):
    rng = np.random.default_rng(1)
    is_inlier = rng.random((seeds, n)) < rate
    probe = core.probe_order((n + core.PRETEST_BLOCK - 1) // core.PRETEST_BLOCK, 3)
    step_in, step_out = math.log(delta / eps), math.log((1 - delta) / (1 - eps))
    return _trials(is_inlier, probe, step_in, step_out, seeds)


def test_a_model_at_the_bar_survives_and_a_wrong_one_is_dropped_early():
    eps, delta = 0.04, 0.005  # half of a 13 % inlier pair's best minimal model, a wrong model's rate
    passed, _ = _run(eps, eps, delta)
    assert passed.mean() >= 0.99
    better, read_better = _run(0.13, eps, delta)  # the true model: accepted, after few points
    assert better.all() and np.median(read_better) < 200
    passed, read = _run(delta, eps, delta)
    assert passed.mean() < 0.05 and np.median(read) < 300  # a full score reads 900


def test_the_test_is_off_where_it_cannot_tell_the_two_apart():
    assert core.sprt_steps(900, 1.0, np.inf, 0.01) == (0.0, 0.0)  # no best model yet
    assert core.sprt_steps(900, 1.0, 900 - 2 * 30.0, 0.02) == (0.0, 0.0)  # eps 1/30: delta above eps / 2
    step_in, step_out = core.sprt_steps(900, 1.0, 900 - 2 * 36.0, 0.005)  # eps 0.04
    assert step_in == math.log(0.005 / 0.04) and step_out == math.log(0.995 / 0.96)
