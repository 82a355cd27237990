"""Motion-only (one pose from 2D-3D matches) and structure-only (points with poses fixed)."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry.rigid import Rigid3, camera_center
from geomvision.geometry.rotation import rotation_error_deg, so3_exp
from geomvision.optim import BAOptions, refine_points, refine_pose
from geomvision.synthetic import orbit_scene


def _perturbed_pose(T: Rigid3, rng, rot_deg=2.0, centre=0.2) -> Rigid3:
    C = camera_center(T) + rng.normal(scale=centre, size=3)
    R = so3_exp(rng.normal(scale=np.radians(rot_deg), size=3)) @ T.R
    return Rigid3(R, -R @ C)


def test_refine_pose_recovers_the_true_pose(rng):
    scene = orbit_scene(n_images=3, n_points=300, radius=3.5, noise_px=0.5, rng=rng)
    uv, X, _ = scene.view(1)
    T_gt = scene.cams_from_world[1]
    T, cam, rep = refine_pose(uv, X, scene.camera, _perturbed_pose(T_gt, rng))
    assert rep.converged and rep.final_rms_px < 0.8
    assert rotation_error_deg(T.R, T_gt.R) < 0.05
    assert np.linalg.norm(camera_center(T) - camera_center(T_gt)) < 0.01
    assert cam == scene.camera  # intrinsics held by default


def test_refine_pose_with_outliers_and_a_robust_loss(rng):
    scene = orbit_scene(n_images=3, n_points=300, radius=3.5, noise_px=0.5, outlier_ratio=0.2, rng=rng)
    uv, X, out = scene.view(0)
    assert out.mean() > 0.1
    T_gt = scene.cams_from_world[0]
    start = _perturbed_pose(T_gt, rng)
    T, _, _ = refine_pose(uv, X, scene.camera, start, BAOptions(loss="cauchy", loss_scale=1.0))
    T_plain, _, _ = refine_pose(uv, X, scene.camera, start)
    err = np.linalg.norm(camera_center(T) - camera_center(T_gt))
    assert err < 0.02
    assert np.linalg.norm(camera_center(T_plain) - camera_center(T_gt)) > 3 * err


def test_refine_pose_with_focal_length(rng):
    scene = orbit_scene(n_images=2, n_points=400, radius=3.5, noise_px=0.2, rng=rng)
    uv, X, _ = scene.view(0)
    cam0 = scene.camera.with_params(scene.camera.params * [1.03, 1.03, 1, 1])
    _, cam, _ = refine_pose(uv, X, cam0, scene.cams_from_world[0], refine_focal_length=True)
    np.testing.assert_allclose(cam.params[:2], scene.camera.params[:2], rtol=5e-3)
    np.testing.assert_array_equal(cam.params[2:], scene.camera.params[2:])


def test_refine_points_with_poses_fixed(rng):
    scene = orbit_scene(n_images=5, n_points=200, radius=3.5, noise_px=0.3, rng=rng)
    X0 = scene.X_world + rng.normal(scale=0.05, size=scene.X_world.shape)
    X, rep = refine_points(X0, scene.obs_point_idx, scene.obs_image_idx, scene.obs_uv, [scene.camera],
                           scene.cams_from_world, image_cameras=np.zeros(scene.num_images, int))
    err0 = np.linalg.norm(X0 - scene.X_world, axis=1)
    err = np.linalg.norm(X - scene.X_world, axis=1)
    assert np.median(err) < 0.1 * np.median(err0)
    assert np.median(err) < 3e-3
    assert rep.num_reduced_parameters == 0 and rep.converged


def test_refine_pose_rejects_mismatched_input(rng):
    scene = orbit_scene(n_images=2, n_points=50, rng=rng)
    uv, X, _ = scene.view(0)
    with pytest.raises(ValueError, match="same number of rows"):
        refine_pose(uv[:-1], X, scene.camera, scene.cams_from_world[0])
    behind = X.copy()
    T = scene.cams_from_world[0]
    behind[0] = camera_center(T) - 2.0 * T.R[2]
    with pytest.raises(ValueError, match="behind"):
        refine_pose(uv, behind, scene.camera, T)
