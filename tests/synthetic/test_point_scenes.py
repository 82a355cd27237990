"""Synthetic scenes: exact projections, the requested noise and outlier levels, determinism."""

import numpy as np
import pytest

from geomvision.geometry.epipolar import fundamental_from_pose, homography_transfer_sq_errors, sampson_sq_errors
from geomvision.geometry.projection import project_points
from geomvision.synthetic import forward_scene, orbit_scene, planar_scene, rotation_scene

GENERATORS = [orbit_scene, forward_scene, rotation_scene, planar_scene]


@pytest.mark.parametrize("make", GENERATORS)
def test_true_pixels_are_exact_projections_inside_the_image(make):
    s = make(rng=1)
    for i, T in enumerate(s.cams_from_world):
        m = s.obs_image_idx == i
        uv, depth = project_points(s.X_world[s.obs_point_idx[m]], s.camera, T)
        np.testing.assert_allclose(s.obs_uv_true[m], uv, atol=1e-12)
        assert (depth > 0).all()
    assert (s.obs_uv_true >= 0).all() and (s.obs_uv_true[:, 0] <= s.camera.width - 1).all()
    assert len(s.pair(0, 1)[0]) >= 50  # neighbouring views overlap


@pytest.mark.parametrize("make", GENERATORS)
def test_noise_and_outlier_levels(make):
    s = make(noise_px=0.7, outlier_ratio=0.3, rng=2)
    err = s.obs_uv[~s.obs_is_outlier] - s.obs_uv_true[~s.obs_is_outlier]
    assert np.std(err) == pytest.approx(0.7, rel=0.1)
    assert s.obs_is_outlier.mean() == pytest.approx(0.3, abs=0.05)


def test_seed_determinism():
    a, b = orbit_scene(noise_px=1, outlier_ratio=0.2, rng=5), orbit_scene(noise_px=1, outlier_ratio=0.2, rng=5)
    np.testing.assert_array_equal(a.obs_uv, b.obs_uv)
    assert not np.array_equal(a.obs_uv, orbit_scene(noise_px=1, outlier_ratio=0.2, rng=6).obs_uv)


def test_pair_geometry_matches_ground_truth():
    s = orbit_scene(rng=3)
    x1, x2, _, out = s.pair(0, 1)
    F = fundamental_from_pose(s.relative_pose(0, 1), s.camera, s.camera)
    assert not out.any() and sampson_sq_errors(F, x1, x2).max() < 1e-16
    r = rotation_scene(rng=3)
    x1, x2, _, _ = r.pair(0, 2)
    K = r.camera.K
    H = K @ r.relative_pose(0, 2).R @ np.linalg.inv(K)
    assert homography_transfer_sq_errors(H, x1, x2).max() < 1e-18


def test_bad_arguments():
    with pytest.raises(ValueError, match="outlier_ratio"):
        orbit_scene(outlier_ratio=1.5)
    with pytest.raises(ValueError, match="noise_px"):
        orbit_scene(noise_px=-1)
    with pytest.raises(ValueError, match="n_images"):
        orbit_scene(n_images=0)
    with pytest.raises(ValueError, match="rng"):
        orbit_scene(rng="seed")


def test_orbit_terrain_points_lie_on_their_surface():
    scene = orbit_scene(n_points=300, height=4.0, points="terrain", rng=2)
    x, y, z = scene.X_world.T
    np.testing.assert_allclose(z, 0.3 * np.sin(2 * x) * np.cos(1.5 * y) - 0.5, atol=1e-12)
    assert np.abs(scene.X_world[:, :2]).max() <= 2.0
    with pytest.raises(ValueError, match="points must be"):
        orbit_scene(points="sphere")
