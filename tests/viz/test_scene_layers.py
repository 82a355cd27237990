"""Scene layers (pure numpy): frustums, scale, path, axes and the scene frame, against geometry."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry import Camera, Rigid3, random_rotation
from geomvision.scene import Reconstruction
from geomvision.synthetic import orbit_scene
from geomvision.viz.scene import build_scene, scene_frame, scene_inputs


def _angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


@pytest.fixture
def orbit_rec(rng):
    return orbit_scene(8, 400, rng=rng).to_reconstruction()


def test_frustum_apex_and_corners_reproject_to_image_corners(rng):
    cam = Camera("OPENCV", 800, 600, [610.0, 590.0, 402.0, 296.5, -0.12, 0.03, 0.001, -0.002])
    rec = Reconstruction()
    rec.add_camera(cam, camera_id=1)
    poses = [Rigid3.random(rng, 3.0) for _ in range(4)]
    for k, T in enumerate(poses):
        rec.add_image(f"im{k}.png", 1, None, T)
    layers = build_scene(rec, frustum_scale_override=0.7)
    V = layers.frustums.points.reshape(4, 6, 3)
    corners_px = np.array([[-0.5, -0.5], [799.5, -0.5], [799.5, 599.5], [-0.5, 599.5]])
    for k, T in enumerate(poses):
        np.testing.assert_allclose(V[k, 0], T.inverse().t, atol=1e-9)  # apex = camera centre
        X_cam = T.apply(V[k, 1:5])
        np.testing.assert_allclose(X_cam[:, 2], 0.7, atol=1e-9)  # corners at the frustum depth
        np.testing.assert_allclose(cam.img_from_cam(X_cam), corners_px, atol=1e-6)  # through the lens
        tip = T.apply(V[k, 5])
        assert tip[1] < X_cam[0, 1] and tip[2] == pytest.approx(0.7)  # up marker above the top edge
    assert len(layers.frustums) == 4 * 10
    assert layers.frustums.lines.max() == 4 * 6 - 1


def test_frustum_scale_is_a_fraction_of_camera_spacing_and_scales_with_the_scene(orbit_rec):
    layers = build_scene(orbit_rec)
    C = layers.camera_centres
    d = np.linalg.norm(C[:, None] - C[None], axis=2)
    np.fill_diagonal(d, np.inf)
    expected = 0.8 * np.median(d.min(axis=1))
    assert 0.01 * layers.frame.extent < expected < 0.1 * layers.frame.extent  # not clamped here
    assert layers.frustum_scale == pytest.approx(expected, rel=1e-12)
    orbit_rec.transform(7.5, Rigid3(np.eye(3), np.array([1.0, -2.0, 0.5])))  # the extent box is axis-aligned
    scaled = build_scene(orbit_rec)
    assert scaled.frustum_scale == pytest.approx(7.5 * expected, rel=1e-9)
    assert scaled.frame.extent == pytest.approx(7.5 * layers.frame.extent, rel=1e-9)


def test_frustum_scale_clamped_for_clustered_and_single_cameras(orbit_rec):
    rec = Reconstruction()
    rec.add_camera(orbit_rec.cameras[1], camera_id=1)
    T = orbit_rec.images[1].cam_from_world
    rec.add_image("a.png", 1, None, T)
    rec.add_image("b.png", 1, None, Rigid3(T.R, T.t + [1e-6, 0, 0]))  # almost the same place
    _, xyz, _ = orbit_rec.point_arrays()
    for X in xyz[:50]:
        rec.add_point3D(X)
    layers = build_scene(rec)
    assert layers.frustum_scale == pytest.approx(0.01 * layers.frame.extent)
    single = Reconstruction()
    single.add_camera(orbit_rec.cameras[1], camera_id=1)
    single.add_image("a.png", 1, None, T)
    for X in xyz[:50]:
        single.add_point3D(X)
    layers1 = build_scene(single)
    assert layers1.frustum_scale == pytest.approx(0.05 * layers1.frame.extent)


def test_path_follows_image_names_and_axes_sit_at_origin(orbit_rec):
    # rename so that name order reverses id order
    n = len(orbit_rec.images)
    for iid, im in orbit_rec.images.items():
        im.name = f"frame_{n - iid:03d}.png"
    layers = build_scene(orbit_rec)
    by_name = sorted(orbit_rec.images.values(), key=lambda im: im.name)
    np.testing.assert_allclose(layers.path.points, np.array([im.center for im in by_name]), atol=1e-12)
    np.testing.assert_array_equal(layers.path.lines, np.stack([np.arange(n - 1), np.arange(1, n)], 1))
    ax = layers.axes
    np.testing.assert_allclose(ax.points[0], 0.0)
    np.testing.assert_allclose(ax.points[1:] - ax.points[0], 0.1 * layers.frame.extent * np.eye(3))
    np.testing.assert_allclose(ax.colors, np.eye(3))


def test_axes_move_to_the_scene_for_geo_referenced_models(orbit_rec):
    orbit_rec.transform(1.0, Rigid3(np.eye(3), np.array([5.0e5, 4.2e6, 120.0])))
    layers = build_scene(orbit_rec)
    np.testing.assert_allclose(layers.axes.points[0], layers.frame.centre)


def test_scene_frame_of_an_orbit_is_z_up_and_looks_along_y(orbit_rec):
    fr = build_scene(orbit_rec).frame
    # cameras on an arc at y < 0 looking at the origin from 1 unit above (look_at with z up)
    # up = mean camera up: tilted towards the scene by the cameras' downward look (atan(1/6) = 9.5 deg)
    Rs = np.array([im.cam_from_world.R for im in orbit_rec.images.values()])
    np.testing.assert_allclose(fr.up, -Rs[:, 1].mean(0) / np.linalg.norm(Rs[:, 1].mean(0)), atol=1e-12)
    assert 5.0 < _angle_deg(fr.up, [0, 0, 1]) < 12.0
    assert _angle_deg(fr.forward * [1, 1, 0], [0, 1, 0]) < 1.0  # horizontally: towards +y
    assert abs(fr.up @ fr.forward) < 1e-12
    np.testing.assert_allclose(fr.right, np.cross(fr.forward, fr.up), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm([fr.up, fr.forward, fr.right], axis=1), 1.0)


def test_scene_frame_rotates_with_the_scene(orbit_rec, rng):
    before = build_scene(orbit_rec).frame
    R = random_rotation(rng)
    orbit_rec.transform(1.0, Rigid3(R, np.zeros(3)))
    after = build_scene(orbit_rec).frame
    for a, b in ((after.up, before.up), (after.forward, before.forward), (after.right, before.right)):
        np.testing.assert_allclose(a, R @ b, atol=1e-9)


def test_points_only_frame_and_colours():
    xyz = np.random.default_rng(5).normal(size=(200, 3))
    layers = build_scene(xyz)
    assert layers.cameras == [] and len(layers.frustums) == 0 and len(layers.path) == 0
    np.testing.assert_allclose(layers.frame.up, [0, -1, 0])
    np.testing.assert_allclose(layers.colors, 0.35 + np.array([0, 0, 0.05]) + 0 * layers.colors)
    white = build_scene(xyz, point_color=(1, 1, 1))
    np.testing.assert_allclose(white.colors, 1.0)
    with pytest.raises(ValueError, match="point_color"):
        build_scene(xyz, point_color=(2, 0, 0))


def test_reconstruction_colours_are_scaled_to_unit_range(orbit_rec):
    for pid, pt in orbit_rec.points3D.items():
        pt.color = np.array([pid % 256, 10, 255], dtype=np.uint8)
    layers = build_scene(orbit_rec)
    _, _, col = orbit_rec.point_arrays()
    np.testing.assert_allclose(layers.colors, col / 255.0)


def test_outlying_points_do_not_set_the_extent(orbit_rec):
    base = build_scene(orbit_rec).frame.extent
    for k in range(3):
        orbit_rec.add_point3D(np.array([1e6 * (k + 1), 0.0, 0.0]))
    assert build_scene(orbit_rec).frame.extent == pytest.approx(base, rel=0.1)


def test_unregistered_images_are_not_drawn(orbit_rec):
    orbit_rec.deregister_image(3)
    _, _, cams = scene_inputs(orbit_rec)
    assert [c.image_id for c in cams] == [i for i in sorted(orbit_rec.images) if i != 3]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="model must be"):
        build_scene(42)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        build_scene(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="frustum_scale_override"):
        build_scene(np.zeros((5, 3)), frustum_scale_override=-1)


def test_scene_frame_without_anything_is_defined():
    fr = scene_frame(np.zeros((0, 3)), [])
    assert fr.extent == 1.0
    np.testing.assert_allclose(fr.centre, 0.0)
