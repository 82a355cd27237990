"""Bundle adjustment in bounded kernel calls (issue 18, item 7): the observation kernels run over
ranges of OBS_PER_CALL observations with a Ctrl-C check between them, and the LM loop checks
between iterations; ranges give the result of one call (up to the order of the sums)."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision import _interrupt
from geomvision.optim import BAOptions, BAProblem, solve_bundle
from geomvision.optim import _ba_kernels, solver
from geomvision.synthetic import orbit_scene


def _problem(rng):
    scene = orbit_scene(n_images=8, n_points=300, radius=3.5, arc_deg=120.0, noise_px=0.5, rng=rng)
    cam = scene.camera
    R = np.array([T.R for T in scene.cams_from_world])
    t = np.array([T.t for T in scene.cams_from_world])
    p = BAProblem.from_arrays(R, t, np.zeros(len(R), int), [cam.model], [cam.params], scene.X_world,
                              scene.obs_image_idx, scene.obs_point_idx, scene.obs_uv)
    p.X += rng.normal(scale=0.03, size=p.X.shape)
    p.t += rng.normal(scale=0.03, size=p.t.shape)
    return p


@pytest.mark.parametrize("num_threads", [1, 2])
def test_observation_ranges_give_the_result_of_one_call(rng, monkeypatch, num_threads):
    start = _problem(rng)
    opts = BAOptions(num_threads=num_threads, parallel_min_observations=0, function_tolerance=1e-12)
    whole = start.copy()
    rep_whole = solve_bundle(whole, opts)
    monkeypatch.setattr(solver, "OBS_PER_CALL", 333)  # ~7 ranges of a ~2300-observation problem
    ranged = start.copy()
    rep_ranged = solve_bundle(ranged, opts)
    assert start.num_observations > 5 * 333
    assert rep_ranged.iterations == rep_whole.iterations
    np.testing.assert_allclose(rep_ranged.final_cost, rep_whole.final_cost, rtol=1e-9)
    np.testing.assert_allclose(ranged.X, whole.X, atol=1e-9)
    np.testing.assert_allclose(ranged.t, whole.t, atol=1e-9)


def test_an_interrupt_request_stops_bundle_adjustment_after_one_range(rng, monkeypatch):
    start = _problem(rng)
    calls = []
    real = _ba_kernels.linearize

    def counting(*args):
        calls.append(len(args[7]))  # obs_img of this range
        return real(*args)

    monkeypatch.setattr(solver.kern, "linearize", counting)
    monkeypatch.setattr(solver, "OBS_PER_CALL", 500)
    _interrupt._requested.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            solve_bundle(start.copy(), BAOptions(num_threads=1))
    finally:
        _interrupt._requested.clear()
    assert calls == [500]  # the first range, then the check
    calls.clear()
    rep = solve_bundle(start.copy(), BAOptions(num_threads=1))
    assert rep.converged and sum(calls) == start.num_observations * (1 + rep.successful_iterations)
