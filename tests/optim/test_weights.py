"""Per-observation standard deviations in bundle adjustment."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.optim import BAOptions, BAProblem, solve_bundle

from test_bundle import centre_error, perturb, scene_problem


def test_a_common_sigma_changes_the_cost_not_the_solution(rng):
    _, gt = scene_problem(rng)
    start = perturb(gt, rng)
    a, b = start.copy(), start.copy()
    b.obs_inv_sigma = np.full(b.num_observations, 1.0 / 3.0)
    opts = BAOptions(function_tolerance=1e-12, parameter_tolerance=1e-12)
    ra, rb = solve_bundle(a, opts), solve_bundle(b, opts)
    assert rb.final_cost == pytest.approx(ra.final_cost / 9.0, rel=1e-6)
    assert rb.final_rms_px == pytest.approx(ra.final_rms_px, rel=1e-6)  # RMS stays in pixels
    np.testing.assert_allclose(b.X, a.X, atol=1e-6)


def test_weighting_by_the_true_sigma_beats_equal_weights(rng):
    """Half the observations are 10x noisier: weighting each by its sigma (the maximum-likelihood
    estimate) must recover the cameras better than treating all alike."""
    scene, gt = scene_problem(rng, noise=0.0)
    sigma = np.where(rng.random(gt.num_observations) < 0.5, 0.2, 2.0)
    gt.obs_uv += rng.normal(size=gt.obs_uv.shape) * sigma[:, None]
    start = perturb(gt, rng)
    equal, weighted = start.copy(), start.copy()
    weighted.obs_inv_sigma = 1.0 / sigma
    opts = BAOptions(function_tolerance=1e-10)
    solve_bundle(equal, opts)
    solve_bundle(weighted, opts)
    truth = BAProblem.from_arrays(
        np.array([T.R for T in scene.cams_from_world]), np.array([T.t for T in scene.cams_from_world]),
        gt.img_cam, gt.cam_model, gt.cam_params, scene.X_world, gt.obs_img, gt.obs_pt, gt.obs_uv)
    e_equal, e_weighted = centre_error(equal, truth), centre_error(weighted, truth)
    assert e_weighted < 0.7 * e_equal


def test_bad_sigma_raises(rng):
    _, gt = scene_problem(rng, n_images=3, n_points=30)
    with pytest.raises(ValueError, match="obs_sigma must hold one positive"):
        BAProblem.from_arrays(gt.R, gt.t, gt.img_cam, gt.cam_model, gt.cam_params, gt.X, gt.obs_img, gt.obs_pt,
                              gt.obs_uv, obs_sigma=np.zeros(gt.num_observations))
    with pytest.raises(ValueError, match="obs_sigma must hold one positive"):
        BAProblem.from_arrays(gt.R, gt.t, gt.img_cam, gt.cam_model, gt.cam_params, gt.X, gt.obs_img, gt.obs_pt,
                              gt.obs_uv, obs_sigma=np.ones(3))


@pytest.mark.parametrize("sigma", [0.05, 0.5, 2.0])
def test_noise_sigma_measures_the_noise_despite_outliers(rng, sigma):
    """At the true cameras and points: the per-axis noise of the observations, in units of each
    observation's sigma, with 15 % of the observations moved 5-50 sigma away: the median moves
    to the inliers' 59th percentile, 12 % above their median (a larger scale: the safe side)."""
    _, gt = scene_problem(rng, noise=0.0)
    m = gt.num_observations
    own = np.where(rng.random(m) < 0.5, 1.0, 3.0)  # each observation's sigma, relative units
    noise = rng.normal(size=(m, 2)) * (sigma * own)[:, None]
    far = rng.random(m) < 0.15
    direction = rng.normal(size=(m, 2))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    noise[far] = direction[far] * (rng.uniform(5, 50, far.sum()) * sigma * own[far])[:, None]
    gt.obs_uv += noise
    gt.obs_inv_sigma = 1.0 / own
    assert sigma <= gt.noise_sigma() <= 1.15 * sigma
    gt.obs_inv_sigma = np.ones(m)  # every observation weighed alike: the mixture's wider median
    assert gt.noise_sigma() > 1.3 * sigma
