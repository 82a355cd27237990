"""Rendered data sets on disk (Strecha layout, read back by load_strecha_scene), orbit poses,
and input validation of the renderer's public API."""

import cv2
import numpy as np
import pytest

from geomvision import Camera, Rigid3
from geomvision.io.datasets import load_strecha_scene
from geomvision.synthetic import (
    Box,
    Cylinder,
    Quad,
    Sphere,
    Texture,
    TexturedScene,
    demo_camera,
    demo_scene,
    orbit_cameras,
    render_depth,
    render_image,
    render_orbit_dataset,
    render_orbit_views,
    rotation_sequence,
)

TEX = Texture(np.full((4, 4, 3), 128, dtype=np.uint8), 10.0)


@pytest.fixture(scope="module")
def small_scene():
    return TexturedScene([Quad(Rigid3(t=np.array([0.0, 0.0, 0.0])), (4.0, 4.0), TEX), Box(Rigid3(), (1, 1, 1), TEX)])


def test_orbit_dataset_round_trips_through_the_strecha_loader(tmp_path):
    out = render_orbit_dataset(tmp_path / "demo", n_images=3, width=160, height=120, arc_deg=30.0)
    scene = demo_scene(0)  # the default scene of render_orbit_dataset
    views = render_orbit_views(3, width=160, height=120, arc_deg=30.0, scene=scene)
    gt = load_strecha_scene(out)
    assert gt.image_names == ["0000.png", "0001.png", "0002.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == gt.image_names  # no temporary files left
    np.testing.assert_allclose(np.loadtxt(out / "K.txt"), views.camera.K, atol=1e-6)
    for name, image, T in zip(gt.image_names, views.images, views.cams_from_world):
        np.testing.assert_array_equal(gt.cams_from_world[name].R, T.R)  # json floats round-trip exactly
        np.testing.assert_array_equal(gt.cams_from_world[name].t, T.t)
        np.testing.assert_array_equal(gt.cameras[name].K, views.camera.K)
        assert (gt.cameras[name].width, gt.cameras[name].height) == (160, 120)
        np.testing.assert_array_equal(cv2.imread(str(gt.image_dir / name))[..., ::-1], image)
    # rewriting an existing folder replaces the files in place
    render_orbit_dataset(out, n_images=2, width=160, height=120, arc_deg=30.0, scene=scene)
    assert load_strecha_scene(out).image_names == ["0000.png", "0001.png"]


def test_orbit_cameras_lie_on_the_arc_and_look_at_the_target():
    target = np.array([0.5, -0.2, 0.7])
    poses = orbit_cameras(7, radius=5.0, height=2.0, target=target, arc_deg=120.0, center_deg=30.0)
    centres = np.array([T.inverse().t for T in poses])
    np.testing.assert_allclose(np.hypot(*(centres[:, :2] - target[:2]).T), 5.0, atol=1e-12)
    np.testing.assert_allclose(centres[:, 2], 2.0, atol=1e-12)
    az = np.degrees(np.arctan2(centres[:, 1] - target[1], centres[:, 0] - target[0]))
    np.testing.assert_allclose(az, np.linspace(-30.0, 90.0, 7), atol=1e-9)
    for T in poses:  # the target is straight ahead: on the optical axis
        X = T.apply(target)
        assert X[2] > 0 and np.hypot(X[0], X[1]) < 1e-9 * X[2]


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda s: render_image("scene", demo_camera(64, 48), Rigid3()), "scene"),
        (lambda s: render_image(s, "camera", Rigid3()), "camera"),
        (lambda s: render_image(s, demo_camera(64, 48), np.eye(4)), "cam_from_world"),
        (lambda s: render_image(s, demo_camera(64, 48), Rigid3(), supersample=0), "supersample"),
        (lambda s: render_image(s, demo_camera(64, 48), Rigid3(), supersample=2.0), "supersample"),
        (lambda s: render_image(s, demo_camera(64, 48), Rigid3(), supersample=9), "supersample"),
        (lambda s: render_depth(s, Camera("PINHOLE", 8, 8, [8, 8, 4, 4]), "pose"), "cam_from_world"),
        (lambda s: demo_camera(0, 48), "width"),
        (lambda s: demo_camera(64, -48), "height"),
        (lambda s: demo_camera("64", 48), "width"),
        (lambda s: demo_camera(64, 48, focal=-1.0), "focal"),
        (lambda s: render_orbit_views(0, scene=s), "n_images"),
        (lambda s: render_orbit_views(2, width=0, scene=s), "width"),
        (lambda s: render_orbit_views(2, width=64, height=48, scene="demo"), "scene"),
        (lambda s: render_orbit_dataset("/tmp/never", n_images=-1), "n_images"),
        (lambda s: render_orbit_dataset("/tmp/never", n_images=2, width=64, height=48, scene=3), "scene"),
        (lambda s: rotation_sequence(3, pan_deg=-5.0, scene=s), "pan_deg"),
        (lambda s: rotation_sequence(3, pan_deg=200.0, scene=s), "pan_deg"),
        (lambda s: rotation_sequence(3, height=0, scene=s), "height"),
        (lambda s: rotation_sequence(3, center=(0, 0), scene=s), "center"),
        (lambda s: orbit_cameras(0), "n_images"),
        (lambda s: orbit_cameras(3, radius=0.0), "radius"),
        (lambda s: orbit_cameras(3, arc_deg=400.0), "arc_deg"),
        (lambda s: orbit_cameras(3, height="high"), "height"),
        (lambda s: orbit_cameras(3, target=(0, 0)), "target"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(small_scene, call, name):
    with pytest.raises(ValueError, match=name):
        call(small_scene)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: Texture(np.zeros((4, 4, 3), dtype=np.float32), 10.0), "image"),
        (lambda: Texture(np.zeros((4, 4), dtype=np.uint8), 10.0), "image"),
        (lambda: Texture(np.zeros((4, 4, 3), dtype=np.uint8), 0.0), "texels_per_metre"),
        (lambda: Quad(np.eye(4), (1, 1), TEX), "world_from_object"),
        (lambda: Quad(Rigid3(), (1, -1), TEX), "size"),
        (lambda: Quad(Rigid3(), (1, 1, 1), TEX), "size"),
        (lambda: Box(Rigid3(), (1, 1, 0), TEX), "size"),
        (lambda: Box(Rigid3(), (1, 1, 1), [TEX, TEX]), "textures"),
        (lambda: Box(Rigid3(), (1, 1, 1), [TEX] * 5 + ["wood"]), "textures"),
        (lambda: Cylinder(Rigid3(), -0.5, 1.0, TEX), "radius"),
        (lambda: Cylinder(Rigid3(), 0.5, 0.0, TEX), "height"),
        (lambda: Sphere(Rigid3(), float("nan"), TEX), "radius"),
        (lambda: TexturedScene([]), "shapes"),
        (lambda: TexturedScene([Box(Rigid3(), (1, 1, 1), TEX), "sphere"]), "shapes"),
        (lambda: TexturedScene([Box(Rigid3(), (1, 1, 1), TEX)], light_direction=(0, 0, 0)), "light_direction"),
        (lambda: TexturedScene([Box(Rigid3(), (1, 1, 1), TEX)], ambient=1.5), "ambient"),
        (lambda: TexturedScene([Box(Rigid3(), (1, 1, 1), TEX)], sky_zenith=(0, 300, 0)), "sky_zenith"),
    ],
)
def test_bad_shapes_raise_value_errors_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_walk_poses_follow_the_circle_and_look_inwards():
    from geomvision.synthetic import walk_poses

    poses = walk_poses(37, arc_deg=360.0, radius=5.0)
    C = np.array([-T.R.T @ T.t for T in poses])
    assert np.allclose(np.hypot(C[:, 0], C[:, 1]), 5.0)
    assert np.all(np.abs(C[:, 2] - 1.6) <= 0.1 + 1e-12)
    az = np.unwrap(np.arctan2(C[:, 1], C[:, 0]))
    assert np.allclose(np.diff(az), np.radians(360.0 / 37))  # a closed loop: the last step leads back
    forward = np.array([T.R[2] for T in poses])  # camera z in world
    assert np.all(np.einsum("ij,ij->i", forward[:, :2], -C[:, :2]) > 0.95 * 5.0 * np.hypot(*forward[:, :2].T))
    with pytest.raises(ValueError, match="radius"):
        walk_poses(5, radius=2.0)
    with pytest.raises(ValueError, match="arc_deg"):
        walk_poses(5, arc_deg=0.0)
