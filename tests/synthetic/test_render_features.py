"""Rendered demo images are good input for features, matching and SfM: SIFT matches between
neighbouring orbit views obey the true epipolar geometry, matches in the rotation sequence obey
the true homographies, and the same seed gives bit-identical images."""

import cv2
import numba
import numpy as np
import pytest

from geomvision.geometry.epipolar import fundamental_from_pose, homography_transfer_sq_errors, sampson_sq_errors
from geomvision.synthetic import demo_camera, demo_scene, orbit_cameras, render_depth, render_image, rotation_sequence


@pytest.fixture(scope="module")
def scene():
    return demo_scene(0)


def _sift_matches(image1: np.ndarray, image2: np.ndarray, ratio: float = 0.8):
    """OpenCV SIFT (4000 features) + Lowe ratio test: (x1 (M,2), x2 (M,2), n_features1, n_features2)."""
    sift = cv2.SIFT_create(4000)
    kp1, d1 = sift.detectAndCompute(cv2.cvtColor(image1, cv2.COLOR_RGB2GRAY), None)
    kp2, d2 = sift.detectAndCompute(cv2.cvtColor(image2, cv2.COLOR_RGB2GRAY), None)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m for m, n in knn if m.distance < ratio * n.distance]
    x1 = np.array([kp1[m.queryIdx].pt for m in good])
    x2 = np.array([kp2[m.trainIdx].pt for m in good])
    return x1, x2, len(kp1), len(kp2)


def test_neighbouring_orbit_views_match_under_the_true_epipolar_geometry(scene):
    camera = demo_camera()
    poses = orbit_cameras(12)
    i = 5
    x1, x2, n1, n2 = _sift_matches(render_image(scene, camera, poses[i]), render_image(scene, camera, poses[i + 1]))
    assert min(n1, n2) >= 3500  # richly textured everywhere (4000 is the cap)
    F = fundamental_from_pose(poses[i + 1] @ poses[i].inverse(), camera, camera)
    dist = np.sqrt(sampson_sq_errors(F, x1, x2))
    assert np.count_nonzero(dist < 1.0) > 1000
    assert np.median(dist) < 0.3
    assert np.mean(dist < 1.0) > 0.9  # distinctive texture: few wrong matches


def test_rotation_sequence_matches_follow_the_true_homographies(scene):
    seq = rotation_sequence(2, pan_deg=15.0, scene=scene)
    x1, x2, _, _ = _sift_matches(seq.images[0], seq.images[1])
    err = np.sqrt(homography_transfer_sq_errors(seq.homography(0, 1), x1, x2))
    assert np.count_nonzero(err < 1.0) > 800
    assert np.median(err) < 0.5


def test_rotation_sequence_homographies_are_exact(scene, rng):
    """Geometry alone: one centre, and H_ij maps the projection in i of any point to its
    projection in j."""
    seq = rotation_sequence(4, width=64, height=48, pan_deg=45.0, scene=scene, supersample=1)
    centres = np.array([T.inverse().t for T in seq.cams_from_world])
    np.testing.assert_allclose(centres, centres[:1].repeat(4, axis=0), atol=1e-12)
    X = centres[0] + rng.normal(size=(200, 3)) * [6.0, 6.0, 1.0] + [0.0, 8.0, 0.0]
    for i, j in [(0, 1), (0, 3), (2, 1)]:
        X_i = seq.cams_from_world[i].apply(X)
        X_j = seq.cams_from_world[j].apply(X)
        ok = (X_i[:, 2] > 0.1) & (X_j[:, 2] > 0.1)
        uv_i = seq.camera.img_from_cam(X_i[ok])
        uv_j = seq.camera.img_from_cam(X_j[ok])
        assert ok.sum() > 50
        assert np.sqrt(homography_transfer_sq_errors(seq.homography(i, j), uv_i, uv_j)).max() < 1e-9


def test_same_seed_gives_bit_identical_images_whatever_the_thread_count(scene):
    """demo_scene(0) built and rendered again on one thread (texture painting and rendering
    are parallel) gives the same bytes as the module's scene; another pose differs."""
    camera = demo_camera(240, 180)
    pose = orbit_cameras(3)[1]
    first = render_image(scene, camera, pose)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        second = render_image(demo_scene(0), camera, pose)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, render_image(scene, camera, pose))
    other = render_image(scene, camera, orbit_cameras(3)[2])
    assert np.mean(np.abs(other.astype(int) - first.astype(int))) > 10.0


def test_views_show_depth_variation_and_every_shape_kind(scene):
    """The demo scene is not degenerate for SfM: depths in a view span a wide range and the
    camera sees the ground, walls, boxes, cylinders and spheres."""
    camera = demo_camera(200, 150)
    depth, idx = render_depth(scene, camera, orbit_cameras(12)[6])
    finite = depth[np.isfinite(depth)]
    assert finite.size > 0.7 * depth.size
    assert np.percentile(finite, 95) > 2.0 * np.percentile(finite, 5)
    kinds = {type(scene.shapes[k]).__name__ for k in np.unique(idx[idx >= 0])}
    assert kinds == {"Quad", "Box", "Cylinder", "Sphere"}
