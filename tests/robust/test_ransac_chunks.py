"""RANSAC in chunks (issue 18, item 7): the kernel returns every CHUNK_ITERATIONS draws so that
Ctrl-C is seen between them; the chunks must give exactly the result of one uninterrupted call."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision import _interrupt
from geomvision.geometry.rigid import Rigid3
from geomvision.robust import engine, estimate_absolute_pose, estimate_fundamental, estimate_homography, estimate_line


def _two_views(rng, n=400, outliers=0.6):
    X = rng.uniform(-1, 1, (n, 3)) + [0.0, 0.0, 6.0]
    R = Rigid3.look_at(center=[1.0, 0.2, 0.0], target=[0.0, 0.0, 6.0]).R
    t = -R @ np.array([1.0, 0.2, 0.0])

    def project(X_cam):
        return 600.0 * X_cam[:, :2] / X_cam[:, 2:] + [320.0, 240.0]

    x1 = project(X) + rng.normal(0, 0.3, (n, 2))
    x2 = project(X @ R.T + t) + rng.normal(0, 0.3, (n, 2))
    bad = rng.random(n) < outliers
    x2[bad] = rng.uniform(0, 640, (bad.sum(), 2))
    return X, x1, x2, R, t


def _run_all(rng_seed: int):
    rng = np.random.default_rng(rng_seed)
    X, x1, x2, R, t = _two_views(rng)
    out = {
        "F": estimate_fundamental(x1, x2, max_error=1.0, rng=1),
        "H": estimate_homography(x1, x2, max_error=2.0, rng=2, sampler="prosac",
                                 quality=rng.random(len(x1))),
        "pose": estimate_absolute_pose(x2, X, _camera(), max_error=1.0, rng=3),
    }
    pts = np.column_stack([np.linspace(0, 10, 300), 2.0 * np.linspace(0, 10, 300) + 1.0])
    pts[::3] += rng.normal(0, 5, (100, 2))
    out["line"] = estimate_line(pts, max_error=0.1, rng=4)
    return out


def _camera():
    from geomvision.geometry.camera import Camera

    return Camera("PINHOLE", width=640, height=480, params=[600.0, 600.0, 320.0, 240.0])


def _same(a, b):
    assert a.stats == b.stats
    np.testing.assert_array_equal(a.inliers, b.inliers)
    if a.model is None:
        assert b.model is None
    elif isinstance(a.model, Rigid3):
        np.testing.assert_array_equal(a.model.R, b.model.R)
        np.testing.assert_array_equal(a.model.t, b.model.t)
    else:
        np.testing.assert_array_equal(np.asarray(a.model), np.asarray(b.model))


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_chunks_give_the_result_of_one_call(monkeypatch, chunk):
    monkeypatch.setattr(engine, "CHUNK_ITERATIONS", 0)  # 0: the whole run in one call
    whole = _run_all(0)
    assert all(r.stats.iterations > 20 for r in whole.values())  # several chunks of 7 at least
    monkeypatch.setattr(engine, "CHUNK_ITERATIONS", chunk)
    chunked = _run_all(0)
    for name in whole:
        _same(whole[name], chunked[name])


def test_an_interrupt_request_stops_ransac_between_chunks(monkeypatch):
    """With a pending request (Ctrl-C inside ``_interrupt.deferred``) the run stops at the first
    chunk boundary, after CHUNK_ITERATIONS draws, instead of running its 10,000."""
    rng = np.random.default_rng(5)
    x1, x2 = rng.uniform(0, 640, (2000, 2)), rng.uniform(0, 640, (2000, 2))  # no model: 10,000 draws
    calls = []
    from geomvision.robust import fundamental

    run = fundamental.FundamentalEstimator.k_run

    def counting(*args):
        calls.append(1)
        return run(*args)

    monkeypatch.setattr(fundamental.FundamentalEstimator, "k_run", staticmethod(counting))
    monkeypatch.setattr(engine, "CHUNK_ITERATIONS", 100)
    _interrupt._requested.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            estimate_fundamental(x1, x2, max_error=1.0, rng=0)
    finally:
        _interrupt._requested.clear()
    assert len(calls) == 1
    res = estimate_fundamental(x1, x2, max_error=1.0, rng=0)  # without a request: all chunks
    assert len(calls) == 1 + 100 and res.stats.iterations == 10_000
