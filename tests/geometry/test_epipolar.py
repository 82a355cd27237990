"""Epipolar geometry against exact two-view configurations."""

import numpy as np
import pytest

from geomvision import Camera, Rigid3
from geomvision.geometry.epipolar import (
    epipolar_lines1,
    epipolar_lines2,
    epipoles,
    essential_from_fundamental,
    essential_from_pose,
    fundamental_from_essential,
    fundamental_from_pose,
    homography_transfer_sq_errors,
    sampson_sq_errors,
    symmetric_epipolar_sq_errors,
    symmetric_transfer_sq_errors,
)
from geomvision.geometry.projection import project_points
from geomvision.geometry.rigid import camera_center
from geomvision.geometry.rotation import so3_exp


@pytest.fixture
def two_view(rng):
    cam1 = Camera("PINHOLE", 640, 480, [500.0, 510.0, 320.0, 240.0])
    cam2 = Camera("PINHOLE_SKEW", 800, 600, [700.0, 690.0, 1.0, 400.0, 300.0])
    cam1_from_world = Rigid3.look_at([0.0, -6.0, 0.5], [0.0, 0.0, 0.0])
    cam2_from_world = Rigid3.look_at([2.5, -5.5, 1.0], [0.1, 0.0, 0.0])
    X = rng.uniform(-1, 1, size=(100, 3))
    x1, _ = project_points(X, cam1, cam1_from_world)
    x2, _ = project_points(X, cam2, cam2_from_world)
    return cam1, cam2, cam1_from_world, cam2_from_world, X, x1, x2


def test_essential_and_fundamental_constraints(two_view):
    cam1, cam2, T1, T2, X, x1, x2 = two_view
    T21 = T2 @ T1.inverse()
    E = essential_from_pose(T21)
    n1 = cam1.cam_from_img(x1)
    n2 = cam2.cam_from_img(x2)
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", n2, E, n1), 0.0, atol=1e-12)
    s = np.linalg.svd(E, compute_uv=False)
    assert s[0] == pytest.approx(s[1]) and s[2] < 1e-12
    F = fundamental_from_pose(T21, cam1, cam2)
    h1, h2 = np.c_[x1, np.ones(100)], np.c_[x2, np.ones(100)]
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", h2, F, h1), 0.0, atol=1e-10)
    assert np.linalg.matrix_rank(F, tol=1e-10) == 2
    E_back = essential_from_fundamental(F, cam1, cam2)
    E_unit = E / np.linalg.norm(E)
    np.testing.assert_allclose(E_back * np.sign(np.vdot(E_back, E_unit)), E_unit, atol=1e-12)


def test_epipoles_are_images_of_the_other_centre(two_view):
    cam1, cam2, T1, T2, *_ = two_view
    F = fundamental_from_pose(T2 @ T1.inverse(), cam1, cam2)
    e1, e2 = epipoles(F)
    c2_in_1, _ = project_points(camera_center(T2)[None], cam1, T1)
    c1_in_2, _ = project_points(camera_center(T1)[None], cam2, T2)
    np.testing.assert_allclose(e1[:2] / e1[2], c2_in_1[0], atol=1e-8)
    np.testing.assert_allclose(e2[:2] / e2[2], c1_in_2[0], atol=1e-8)
    np.testing.assert_allclose(F @ e1, 0.0, atol=1e-12)
    np.testing.assert_allclose(F.T @ e2, 0.0, atol=1e-12)


def test_epipolar_lines_pass_through_correspondences_and_epipoles(two_view):
    cam1, cam2, T1, T2, X, x1, x2 = two_view
    F = fundamental_from_pose(T2 @ T1.inverse(), cam1, cam2)
    l2 = epipolar_lines2(F, x1)
    l1 = epipolar_lines1(F, x2)
    np.testing.assert_allclose(np.hypot(l2[:, 0], l2[:, 1]), 1.0)
    np.testing.assert_allclose(np.einsum("ij,ij->i", l2, np.c_[x2, np.ones(100)]), 0.0, atol=1e-8)
    np.testing.assert_allclose(np.einsum("ij,ij->i", l1, np.c_[x1, np.ones(100)]), 0.0, atol=1e-8)
    e1, e2 = epipoles(F)
    np.testing.assert_allclose(l2 @ (e2 / e2[2]), 0.0, atol=1e-8)


def test_errors_measure_pixel_distances(two_view, rng):
    cam1, cam2, T1, T2, X, x1, x2 = two_view
    F = fundamental_from_pose(T2 @ T1.inverse(), cam1, cam2)
    assert sampson_sq_errors(F, x1, x2).max() < 1e-16
    # move x2 by d pixels perpendicular to its epipolar line: the point-line error is d
    l2 = epipolar_lines2(F, x1)
    d = rng.uniform(0.5, 3.0, 100)
    x2_off = x2 + d[:, None] * l2[:, :2]
    sym = symmetric_epipolar_sq_errors(F, x1, x2_off)
    l1 = epipolar_lines1(F, x2_off)
    d1 = np.einsum("ij,ij->i", l1, np.c_[x1, np.ones(100)])
    np.testing.assert_allclose(sym, d**2 + d1**2, rtol=1e-8)
    # Sampson distance is a first-order approximation of the reprojection error: below the
    # one-image distance and above half of it for such small offsets
    samp = sampson_sq_errors(F, x1, x2_off)
    assert np.all(samp <= d**2 * (1 + 1e-6)) and np.all(samp >= 0.2 * d**2)


def test_homography_transfer_errors(rng):
    H = np.array([[1.1, 0.05, 10.0], [-0.02, 0.95, -5.0], [1e-4, -2e-4, 1.0]])
    x1 = rng.uniform(0, 600, size=(50, 2))
    h = np.c_[x1, np.ones(50)] @ H.T
    x2 = h[:, :2] / h[:, 2:]
    assert homography_transfer_sq_errors(H, x1, x2).max() < 1e-20
    assert symmetric_transfer_sq_errors(H, x1, x2).max() < 1e-18
    x2_off = x2 + [3.0, 4.0]
    np.testing.assert_allclose(homography_transfer_sq_errors(H, x1, x2_off), 25.0, rtol=1e-10)
    with pytest.raises(ValueError, match="H is singular"):
        symmetric_transfer_sq_errors(np.zeros((3, 3)), x1, x2)


def test_pure_rotation_homography_matches_K_R_Kinv(rng):
    cam = Camera("PINHOLE", 640, 480, [500.0, 500.0, 320.0, 240.0])
    R = so3_exp(np.radians([2.0, 5.0, 1.0]))
    X = rng.uniform(-1, 1, size=(30, 3)) + [0, 0, 5]
    x1, _ = project_points(X, cam, Rigid3())
    x2, _ = project_points(X, cam, Rigid3(R))
    H = cam.K @ R @ np.linalg.inv(cam.K)
    assert homography_transfer_sq_errors(H, x1, x2).max() < 1e-18


def test_bad_input():
    with pytest.raises(ValueError, match="arrays must have the same number of rows"):
        sampson_sq_errors(np.eye(3), np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="F must have shape"):
        sampson_sq_errors(np.eye(4), np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="camera1 has lens distortion"):
        fundamental_from_essential(np.eye(3), Camera("SIMPLE_RADIAL", 10, 10, [5, 5, 5, 0.1]), np.eye(3))
