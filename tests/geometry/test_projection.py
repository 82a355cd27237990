"""World-level projection and unprojection."""

import numpy as np
import pytest

from geomvision import Camera, Rigid3, project_points, rays_from_pixels, unproject_points
from geomvision.geometry.projection import reprojection_sq_errors


@pytest.fixture
def camera():
    return Camera("OPENCV", 640, 480, [500.0, 505.0, 320.0, 240.0, -0.1, 0.02, 1e-3, 5e-4])


def test_project_then_unproject_with_depth(camera, rng):
    T = Rigid3.random(rng, t_scale=2.0)
    uv = rng.uniform([0, 0], [639, 479], size=(200, 2))
    depth = rng.uniform(1.0, 30.0, 200)
    X = unproject_points(uv, depth, camera, T)
    uv2, depth2 = project_points(X, camera, T)
    np.testing.assert_allclose(uv2, uv, atol=1e-9)
    np.testing.assert_allclose(depth2, depth, rtol=1e-12)


def test_rays_start_at_centre_and_pass_through_points(camera, rng):
    T = Rigid3.random(rng, t_scale=2.0)
    uv = rng.uniform([0, 0], [639, 479], size=(50, 2))
    X = unproject_points(uv, rng.uniform(1, 10, 50), camera, T)
    origins, dirs = rays_from_pixels(uv, camera, T)
    np.testing.assert_allclose(origins, np.broadcast_to(T.inverse().t, (50, 3)), atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-15)
    to_X = X - origins
    np.testing.assert_allclose(np.cross(dirs, to_X / np.linalg.norm(to_X, axis=1, keepdims=True)), 0.0, atol=1e-12)
    assert (np.einsum("ij,ij->i", dirs, to_X) > 0).all()


def test_pinhole_direction_is_RT_Kinv_uv1(rng):
    cam = Camera("PINHOLE", 640, 480, [500.0, 505.0, 320.0, 240.0])
    T = Rigid3.random(rng)
    uv = rng.uniform([0, 0], [639, 479], size=(20, 2))
    _, dirs = rays_from_pixels(uv, cam, T)
    ref = (T.R.T @ np.linalg.inv(cam.K) @ np.c_[uv, np.ones(20)].T).T
    np.testing.assert_allclose(dirs, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-14)


def test_points_behind_have_infinite_error(camera):
    T = Rigid3()
    X = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, -5.0]])
    err = reprojection_sq_errors(np.array([[321.0, 240.0], [320.0, 240.0]]), X, camera, T)
    assert err[0] == pytest.approx(1.0) and np.isinf(err[1])


def test_bad_input(camera):
    with pytest.raises(ValueError, match="cam_from_world must be a geomvision.Rigid3"):
        project_points(np.zeros((1, 3)), camera, np.eye(4))
    with pytest.raises(ValueError, match="camera must be a geomvision.Camera"):
        project_points(np.zeros((1, 3)), "PINHOLE", Rigid3())
    with pytest.raises(ValueError, match="X_world must have shape"):
        project_points(np.zeros((3,)), camera, Rigid3())
    with pytest.raises(ValueError, match="depths must have one value per pixel"):
        unproject_points(np.zeros((2, 2)), np.ones(3), camera, Rigid3())
