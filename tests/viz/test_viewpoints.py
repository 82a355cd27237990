"""Named screenshot viewpoints: directions, framing and the first camera's exact intrinsics."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry import Camera, project_points
from geomvision.synthetic import orbit_scene
from geomvision.viz.scene import build_scene
from geomvision.viz.viewpoints import view_camera


@pytest.fixture
def layers(rng):
    return build_scene(orbit_scene(7, 300, rng=rng).to_reconstruction())


def _fill(layers, camera, T):
    uv, depth = project_points(layers.content_points(), camera, T)
    assert np.all(depth > 0)
    c = np.array([(camera.width - 1) / 2, (camera.height - 1) / 2])
    return np.max(np.abs(uv - c) / (np.array([camera.width, camera.height]) / 2), axis=0)


@pytest.mark.parametrize("viewpoint", ["top", "side"])
def test_top_and_side_frame_the_content(layers, viewpoint):
    cam, T = view_camera(layers, viewpoint, 640, 480)
    fr = layers.frame
    if viewpoint == "top":
        np.testing.assert_allclose(T.R, [fr.right, -fr.forward, -fr.up], atol=1e-12)  # looks down, forward up
    else:
        np.testing.assert_allclose(T.R, [fr.forward, -fr.up, -fr.right], atol=1e-12)  # up is up, forward right
    assert np.linalg.det(T.R) == pytest.approx(1.0)
    assert cam.focal_length_x == cam.focal_length_y
    fill = _fill(layers, cam, T)
    assert np.all(fill <= 0.9 + 1e-9) and np.max(fill) == pytest.approx(0.9, abs=1e-9)


def test_top_view_puts_cameras_below_the_points(layers):
    cam, T = view_camera(layers, "top", 640, 480)
    v_cams = project_points(layers.camera_centres, cam, T)[0][:, 1]
    v_pts = project_points(layers.points, cam, T)[0][:, 1]
    assert v_cams.min() > np.median(v_pts)  # cameras look "up the page" at the scene


def test_first_camera_is_the_first_registered_image_rescaled(layers):
    first = layers.cameras[0]
    same, T = view_camera(layers, "first-camera")
    assert T is first.cam_from_world
    assert (same.width, same.height) == (first.camera.width, first.camera.height)
    small, _ = view_camera(layers, "first-camera", width=320)
    assert (small.width, small.height) == (320, 240)
    uv, _ = project_points(layers.points, first.camera, T)
    uv_small, _ = project_points(layers.points, small, T)
    np.testing.assert_allclose(uv_small, 0.5 * (uv + 0.5) - 0.5, atol=1e-9)  # pixel-centre rule
    tall, _ = view_camera(layers, "first-camera", width=320, height=400)  # another aspect: per axis
    uv_tall, _ = project_points(layers.points, tall, T)
    np.testing.assert_allclose(uv_tall, np.array([0.5, 400 / 480]) * (uv + 0.5) - 0.5, atol=1e-9)


def test_first_camera_drops_distortion_keeps_k(rng):
    cam = Camera("SIMPLE_RADIAL", 640, 480, [520.0, 320.0, 241.0, -0.2])
    rec = orbit_scene(4, 100, camera=cam, rng=rng).to_reconstruction()
    got, _ = view_camera(build_scene(rec), "first-camera")
    assert got.model == "PINHOLE" and not got.has_distortion
    np.testing.assert_allclose(got.K, cam.K)


def test_bad_viewpoints_raise(layers):
    with pytest.raises(ValueError, match="viewpoint must be one of"):
        view_camera(layers, "front")
    with pytest.raises(ValueError, match="registered images"):
        view_camera(build_scene(np.random.default_rng(1).normal(size=(50, 3))), "first-camera")
    with pytest.raises(ValueError, match="width"):
        view_camera(layers, "top", width=0)
