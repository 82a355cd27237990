"""2-D line RANSAC: exact recovery, inlier recovery under heavy outliers, reproducibility, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.robust.line import LineEstimator, estimate_line


def _line_data(rng, n, outlier_ratio, noise):
    normal = np.array([np.cos(0.7), np.sin(0.7)])
    c = -1.5
    t = rng.uniform(-10, 10, n)
    pts = np.outer(t, [-normal[1], normal[0]]) - c * normal + rng.normal(scale=noise, size=(n, 2))
    is_out = np.zeros(n, dtype=bool)
    is_out[rng.permutation(n)[: round(outlier_ratio * n)]] = True
    pts[is_out] = rng.uniform(-10, 10, size=(is_out.sum(), 2))
    return pts, is_out, np.array([normal[0], normal[1], c])


def _same_line(a, b):
    return min(np.abs(a - b).max(), np.abs(a + b).max())


def test_exact_data_recovers_the_line(rng):
    pts, _, line = _line_data(rng, 50, 0.0, 0.0)
    res = estimate_line(pts, max_error=1e-6, rng=rng)
    assert res.stats.success and res.inliers.all()
    assert _same_line(res.model, line) < 1e-8


@pytest.mark.parametrize("outlier_ratio", [0.5, 0.7, 0.9])
def test_inliers_recovered_under_outliers(rng, outlier_ratio):
    noise, thr = 0.05, 0.2
    pts, is_out, line = _line_data(rng, 2000, outlier_ratio, noise)
    res = estimate_line(pts, max_error=thr, rng=rng)
    assert res.stats.success
    assert _same_line(res.model, line) < 0.01
    # the points an oracle would call inliers: true inliers and the outliers that fall in the band
    oracle = ~is_out | (np.abs(pts @ line[:2] + line[2]) < thr)
    tp = np.count_nonzero(res.inliers & oracle)
    assert tp / res.inliers.sum() > 0.98  # precision
    assert tp / oracle.sum() > 0.98  # recall
    assert np.count_nonzero(res.inliers & ~is_out) / np.count_nonzero(~is_out) > 0.99


def test_same_seed_same_result(rng):
    pts, _, _ = _line_data(rng, 500, 0.6, 0.05)
    a = estimate_line(pts, max_error=0.2, rng=7)
    b = estimate_line(pts, max_error=0.2, rng=np.random.default_rng(7))
    assert np.array_equal(a.model, b.model) and np.array_equal(a.inliers, b.inliers)
    assert a.stats == b.stats


def test_prosac_uses_quality(rng):
    pts, is_out, line = _line_data(rng, 1000, 0.8, 0.05)
    quality = np.where(is_out, 0.0, 1.0) + rng.uniform(0, 0.5, len(pts))
    res = estimate_line(pts, max_error=0.2, rng=rng, sampler="prosac", quality=quality, min_iterations=0)
    uni = estimate_line(pts, max_error=0.2, rng=rng, min_iterations=0)
    assert res.stats.success and _same_line(res.model, line) < 0.01
    assert res.stats.iterations <= uni.stats.iterations


def test_local_optimisation_improves_the_fit(rng):
    pts, _, line = _line_data(rng, 1000, 0.5, 0.05)
    plain = estimate_line(pts, max_error=0.2, rng=1, local_optimization=False, final_refinement_rounds=0)
    lo = estimate_line(pts, max_error=0.2, rng=1)
    assert lo.stats.lo_runs > 0 and plain.stats.lo_runs == 0
    assert lo.stats.score <= plain.stats.score
    assert _same_line(lo.model, line) <= _same_line(plain.model, line) + 1e-3


def test_coincident_points_fail_cleanly():
    pts = np.tile([[3.0, 4.0]], (20, 1))
    res = estimate_line(pts, max_error=0.1, rng=0)
    assert not res.stats.success and res.model is None and not res.inliers.any()
    assert "degenerate" in res.stats.message


def test_pure_noise_is_no_line(rng):
    pts = rng.uniform(-1000, 1000, size=(30, 2))
    res = estimate_line(pts, max_error=1e-3, rng=rng)
    assert not res.stats.success and res.model is None


def test_protocol_methods(rng):
    pts, _, line = _line_data(rng, 20, 0.0, 0.0)
    est = LineEstimator(pts)
    models = est.fit_minimal(np.array([0, 1]))
    assert len(models) == 1 and _same_line(models[0], line) < 1e-9
    assert est.sq_errors(models[0]).max() < 1e-20
    assert est.fit_minimal(np.array([3, 3])) == []
    refined = est.refine(np.array([1.0, 0.0, 0.0]), np.ones(20, dtype=bool))
    assert _same_line(refined, line) < 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"points": np.zeros((10, 3))}, "points must have shape"),
        ({"points": np.full((10, 2), np.nan)}, "points contains"),
        ({"points": np.zeros((1, 2))}, "at least 2 points"),
        ({"max_error": 0.0}, "max_error"),
        ({"max_error": -1.0}, "max_error"),
        ({"max_iters": 3}, "unknown RANSAC option"),
        ({"confidence": 2.0}, "confidence"),
    ],
)
def test_bad_input_raises(rng, kwargs, match):
    args = {"points": rng.normal(size=(10, 2)), "max_error": 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        estimate_line(**args)
