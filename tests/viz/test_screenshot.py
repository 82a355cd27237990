"""Offscreen screenshots: bright pixels fall where geomvision's camera model projects the points."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

from geomvision.cli.main import main
from geomvision.geometry import Camera, Rigid3, project_points
from geomvision.synthetic import orbit_scene
from geomvision.viz.offscreen import open3d_intrinsics, render_screenshot, save_screenshot
from geomvision.viz.scene import build_scene

POINT_SIZE = 3.0


@pytest.fixture(scope="module")
def white_points():
    rec = orbit_scene(6, 300, rng=np.random.default_rng(11)).to_reconstruction()
    return rec, build_scene(rec, point_color=(1.0, 1.0, 1.0))


def _check_agreement(shot, X_world):
    """Bright pixels lie near projections, projections are covered, isolated blobs are centred."""
    cam, T = shot.camera, shot.cam_from_world
    uv, depth = project_points(X_world, cam, T)
    w, h = cam.width, cam.height
    inside = (depth > 0) & (uv[:, 0] > 1) & (uv[:, 0] < w - 2) & (uv[:, 1] > 1) & (uv[:, 1] < h - 2)
    assert inside.sum() > 100
    g = shot.image.astype(float).mean(axis=2)
    bright = np.argwhere(g > 128)[:, ::-1]  # (u, v)
    assert len(bright) > 3 * inside.sum()  # not blank: each point is a blob of several pixels
    tree = cKDTree(uv[depth > 0])
    d_bright, _ = tree.query(bright)
    assert np.mean(d_bright <= POINT_SIZE / 2 + 1.0) > 0.995, np.percentile(d_bright, [50, 99, 100])
    covered = ndimage.maximum_filter(g > 128, size=3)[np.round(uv[inside, 1]).astype(int), np.round(uv[inside, 0]).astype(int)]
    assert covered.mean() > 0.99
    # blobs holding exactly one projected point: centroid vs projection (pins the pixel-centre
    # convention: without open3d's +0.5 px principal-point shift the offset is 0.7 px)
    labels, n = ndimage.label(g > 0)
    centroids = np.array(ndimage.center_of_mass(g, labels, np.arange(1, n + 1))).reshape(-1, 2)[:, ::-1]
    uv_in = uv[inside]
    lab_of = labels[np.round(uv_in[:, 1]).astype(int), np.round(uv_in[:, 0]).astype(int)]
    assert np.all(lab_of > 0)
    single = np.bincount(lab_of, minlength=n + 1)[lab_of] == 1
    assert single.sum() > 20
    offsets = centroids[lab_of[single] - 1] - uv_in[single]
    assert np.all(np.abs(np.median(offsets, axis=0)) < 0.1), np.median(offsets, axis=0)
    assert np.median(np.linalg.norm(offsets, axis=1)) < 0.2


@pytest.mark.parametrize("viewpoint", ["first-camera", "top", "side"])
def test_points_render_where_the_camera_model_projects_them(o3d, white_points, viewpoint):
    _, layers = white_points
    shot = render_screenshot(layers, viewpoint=viewpoint, width=480, height=360, layers=("points",),
                             point_size=POINT_SIZE, background=(0, 0, 0))
    assert shot.image.shape == (360, 480, 3) and shot.image.dtype == np.uint8
    _check_agreement(shot, layers.points)


def test_explicit_camera_with_unequal_focals_and_off_centre_principal_point(o3d, white_points, rng):
    _, layers = white_points
    cam = Camera("PINHOLE", 400, 300, [330.0, 360.0, 181.3, 163.9])
    T = Rigid3.look_at(np.array([2.0, -5.5, 2.5]), np.array([0.2, 0.1, -0.1]))
    shot = render_screenshot(layers, camera=cam, cam_from_world=T, layers=("points",), point_size=POINT_SIZE,
                             background=(0, 0, 0))
    assert shot.camera is cam and shot.cam_from_world is T
    _check_agreement(shot, layers.points)


def test_open3d_intrinsics_shift_the_principal_point_by_half_a_pixel():
    cam = Camera("PINHOLE_SKEW", 100, 80, [90.0, 91.0, 0.5, 49.0, 39.0])
    K = open3d_intrinsics(cam)
    np.testing.assert_allclose(K, [[90.0, 0.0, 49.5], [0.0, 91.0, 39.5], [0.0, 0.0, 1.0]])


def test_small_scale_scene_is_not_clipped_by_a_fixed_near_plane(o3d):
    rec = orbit_scene(6, 300, rng=np.random.default_rng(11)).to_reconstruction()
    rec.transform(0.005, Rigid3.identity())  # everything within 3 cm of the cameras
    layers = build_scene(rec, point_color=(1.0, 1.0, 1.0))
    shot = render_screenshot(layers, viewpoint="first-camera", width=480, layers=("points",),
                             point_size=POINT_SIZE, background=(0, 0, 0))
    _check_agreement(shot, layers.points)


def test_cli_screenshot_of_a_model_folder_draws_every_layer(o3d, white_points, tmp_path):
    from geomvision.io import write_model

    rec, _ = white_points
    write_model(rec, tmp_path / "model", binary=False)
    out = tmp_path / "view.png"
    assert main(["view", str(tmp_path / "model"), "--screenshot", str(out), "--width", "320", "--height", "240",
                 "--viewpoint", "top"]) == 0
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (240, 320, 3)
    background = np.all(img == 255, axis=2)
    assert 0.005 < 1 - background.mean() < 0.5  # drawn but not filled
    red = (img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)  # frustums
    blue = (img[..., 2] > 150) & (img[..., 0] < 90) & (img[..., 1] < 140)  # camera path and z axis
    assert red.sum() > 50 and blue.sum() > 10
    assert not list(tmp_path.glob(".view.png.*"))  # atomic write left no temporary file


def test_screenshot_argument_errors(white_points):
    _, layers = white_points
    with pytest.raises(ValueError, match="layers"):
        render_screenshot(layers, layers=("points", "mesh"))
    with pytest.raises(ValueError, match="both camera and cam_from_world"):
        render_screenshot(layers, camera=Camera("PINHOLE", 10, 10, [5, 5, 5, 5]))
    with pytest.raises(ValueError, match="background"):
        render_screenshot(layers, background=(0, 0, 300))
    with pytest.raises(ValueError, match="folder"):
        save_screenshot(layers, "/nonexistent-folder/x.png")
