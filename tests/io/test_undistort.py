"""Undistortion (issue 17): the PINHOLE camera crops to valid pixels or keeps every input pixel, as
COLMAP's UndistortCamera does (compared with pycolmap's); undistorted renders of a distorted
camera line up with renders through the PINHOLE camera to a tenth of a pixel; the written
model (COLMAP's undistorter layout) is read by pycolmap and reprojects its points onto its
keypoints; the images match COLMAP's own undistorter's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geomvision import Camera
from geomvision.io import read_model, write_model
from geomvision.io.undistort import (
    UndistortOptions,
    undistort_image,
    undistort_model,
    undistort_reconstruction,
    undistorted_camera,
    undistortion_maps,
)
from geomvision.synthetic import demo_scene, orbit_cameras, orbit_scene, render_image

from colmap_helpers import multi_model_reconstruction, require_module

DISTORTED = {
    "barrel": Camera("OPENCV", 320, 240, [260.0, 262.0, 161.3, 118.2, -0.2, 0.05, 1e-3, -8e-4]),
    "pincushion": Camera("RADIAL", 320, 240, [255.0, 158.9, 121.4, 0.15, 0.02]),
    "simple_radial": Camera("SIMPLE_RADIAL", 300, 200, [240.0, 149.5, 99.5, -0.08]),
    "fisheye": Camera("OPENCV_FISHEYE", 320, 240, [170.0, 171.0, 160.5, 119.0, 0.04, -0.01, 0.003, -0.001]),
    "skew": Camera("PINHOLE_SKEW", 320, 240, [260.0, 262.0, 5.0, 161.3, 118.2]),
}


def _border_centres(cam: Camera) -> np.ndarray:
    u, v = np.arange(cam.width, dtype=float), np.arange(cam.height, dtype=float)
    return np.vstack([np.column_stack([u, np.zeros_like(u)]), np.column_stack([u, np.full_like(u, cam.height - 1)]),
                      np.column_stack([np.zeros_like(v), v]), np.column_stack([np.full_like(v, cam.width - 1), v])])


@pytest.mark.parametrize("name", sorted(DISTORTED))
def test_crop_gives_only_valid_pixels_and_keep_all_every_input_pixel(name):
    cam = DISTORTED[name]
    crop = undistorted_camera(cam)  # blank_pixels = 0, COLMAP's default
    keep = undistorted_camera(cam, UndistortOptions(blank_pixels=1.0))
    for new in (crop, keep):
        assert new.model == "PINHOLE"
        assert new.focal_length_x == cam.focal_length_x and new.focal_length_y == cam.focal_length_y
        # the principal point keeps its relative position (a centred one stays centred)
        rel_old = (cam.principal_point + 0.5) / [cam.width, cam.height]
        rel_new = (new.principal_point + 0.5) / [new.width, new.height]
        np.testing.assert_allclose(rel_new, rel_old, rtol=0, atol=1e-12)
    # crop: every output pixel centre samples inside the input image ...
    assert undistortion_maps(cam, crop)[2].all()
    # ... and one more column and row would not (the crop is tight to a pixel)
    wider = Camera("PINHOLE", crop.width + 2, crop.height + 2, crop.params + [0, 0, 1, 1])
    assert not undistortion_maps(cam, wider)[2].all()
    # keep all: every input border pixel lands inside the output image
    rays = cam.cam_from_img(_border_centres(cam))
    rays = rays[np.isfinite(rays).all(axis=1)]
    uv = keep.img_from_cam(rays)
    assert (uv >= -0.5).all() and (uv[:, 0] <= keep.width - 0.5).all() and (uv[:, 1] <= keep.height - 0.5).all()
    assert keep.width * keep.height > crop.width * crop.height
    assert not undistortion_maps(cam, keep)[2].all()  # hence some black pixels


@pytest.mark.parametrize("name", ["barrel", "pincushion", "fisheye"])
@pytest.mark.parametrize("blank", [0.0, 1.0])
def test_camera_agrees_with_colmaps_undistort_camera(name, blank):
    pycolmap = require_module("pycolmap")
    cam = DISTORTED[name]
    ours = undistorted_camera(cam, UndistortOptions(blank_pixels=blank))
    params = cam.params.copy()
    names = cam.param_names
    params[names.index("cx")] += 0.5  # COLMAP's pixel origin
    params[names.index("cy")] += 0.5
    opts = pycolmap.UndistortCameraOptions()
    opts.blank_pixels = blank
    theirs = pycolmap.undistort_camera(opts, pycolmap.Camera(model=cam.model, width=cam.width, height=cam.height,
                                                             params=params))
    assert theirs.model.name == "PINHOLE"
    # COLMAP measures the borders from the outer pixel edges on one side and the pixel centres on
    # the other; we use the centres on both: the sizes agree to 2 pixels
    assert abs(ours.width - theirs.width) <= 2 and abs(ours.height - theirs.height) <= 2
    np.testing.assert_allclose(ours.params[:2], theirs.params[:2])
    rel_theirs = np.array(theirs.params[2:4]) / [theirs.width, theirs.height]
    np.testing.assert_allclose((ours.principal_point + 0.5) / [ours.width, ours.height], rel_theirs, atol=1e-12)


def test_pinhole_cameras_are_kept_and_max_image_size_rescales():
    cam = Camera("SIMPLE_PINHOLE", 640, 480, [500.0, 319.5, 239.5])
    assert undistorted_camera(cam) == Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5])
    small = undistorted_camera(cam, UndistortOptions(max_image_size=320))
    assert (small.width, small.height) == (320, 240)
    np.testing.assert_allclose(small.params, [250.0, 250.0, 159.5, 119.5])  # pixel centres rescaled
    with pytest.raises(ValueError, match="blank_pixels must be a number in \\[0, 1\\]"):
        UndistortOptions(blank_pixels=2)
    with pytest.raises(ValueError, match="max_image_size must be a positive integer"):
        UndistortOptions(max_image_size=0)


def _window_shifts(a: np.ndarray, b: np.ndarray, win: int = 96) -> np.ndarray:
    """Sub-pixel shifts (9,2) between a and b in a 3x3 grid of windows (phase correlation)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    hann = cv2.createHanningWindow((win, win), cv2.CV_64F)
    out = []
    for y in np.linspace(0, ga.shape[0] - win, 3).astype(int):
        for x in np.linspace(0, ga.shape[1] - win, 3).astype(int):
            (dx, dy), _ = cv2.phaseCorrelate(ga[y:y + win, x:x + win], gb[y:y + win, x:x + win], hann)
            out.append((dx, dy))
    return np.array(out)


@pytest.mark.parametrize("camera", [
    Camera("OPENCV", 480, 360, [390.0, 393.0, 241.3, 178.2, -0.2, 0.05, 1e-3, -8e-4]),
    Camera("OPENCV_FISHEYE", 480, 360, [250.0, 252.0, 240.5, 179.0, 0.04, -0.01, 0.003, -0.001]),
], ids=["opencv", "fisheye"])
def test_undistorted_render_lines_up_with_a_render_through_the_pinhole_camera(camera):
    scene = demo_scene(0)
    cam_from_world = orbit_cameras(3)[1]
    new = undistorted_camera(camera)
    distorted = render_image(scene, camera, cam_from_world, supersample=3)
    reference = render_image(scene, new, cam_from_world, supersample=3)
    shifts = _window_shifts(undistort_image(distorted, camera, new), reference)
    assert np.abs(shifts).max() < 0.35  # every window, corners included
    assert np.linalg.norm(shifts.mean(axis=0)) < 0.08
    # the classic bug, a principal point off by half a pixel, is caught by the same measure
    off = camera.with_params(np.r_[camera.params[:2], camera.params[2:4] + 0.5, camera.params[4:]])
    assert np.linalg.norm(_window_shifts(undistort_image(distorted, off, new), reference).mean(axis=0)) > 0.45


def test_image_keeps_dtype_and_channels():
    cam = DISTORTED["barrel"]
    new = undistorted_camera(cam)
    grey16 = (np.arange(cam.width * cam.height, dtype=np.uint16).reshape(cam.height, cam.width) * 7)
    out = undistort_image(grey16, cam)
    assert out.dtype == np.uint16 and out.shape == (new.height, new.width)
    rgba = np.zeros((cam.height, cam.width, 4), np.uint8)
    assert undistort_image(rgba, cam).shape == (new.height, new.width, 4)
    with pytest.raises(ValueError, match="image has shape \\(10, 10\\), but the camera is 320x240"):
        undistort_image(np.zeros((10, 10)), cam)


def test_undistorted_model_reprojects_onto_its_keypoints(rng):
    rec = multi_model_reconstruction(rng)
    exact = orbit_scene(n_images=3, n_points=60, camera=DISTORTED["barrel"], noise_px=0.0, rng=rng).to_reconstruction()
    for r in (rec, exact):
        before = np.sort(r.reprojection_errors()[2])
        out, cams, linear = undistort_reconstruction(r)
        assert linear == 0
        assert {c.model for c in out.cameras.values()} == {"PINHOLE"}
        after = np.sort(out.reprojection_errors()[2])
        # same poses and points; the errors only change by the local pixel scale of the lens
        np.testing.assert_allclose(after, before, rtol=0.15, atol=1e-9)
        for iid in r.registered_image_ids:
            assert out.images[iid].cam_from_world.allclose(r.images[iid].cam_from_world, atol=0)
    assert out.reprojection_errors()[2].max() < 1e-9  # exact observations stay exact


def _write_images(rec, folder, rng) -> None:
    folder.mkdir()
    for img in rec.images.values():
        cam = rec.cameras[img.camera_id]
        noise = rng.integers(0, 256, size=(cam.height, cam.width, 3), dtype=np.uint8)
        pixels = cv2.GaussianBlur(noise, (0, 0), 2.0)
        (folder / img.name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / img.name), pixels)


def test_undistort_model_writes_colmaps_layout_and_pycolmap_reads_it(tmp_path, rng):
    pycolmap = require_module("pycolmap")
    scene = orbit_scene(n_images=3, n_points=80, camera=DISTORTED["barrel"], noise_px=0.0, rng=rng)
    rec = scene.to_reconstruction()
    pin = rec.add_camera(Camera("PINHOLE", 200, 150, [180.0, 181.0, 99.5, 74.5]))
    rec.add_image("sub/pinhole.png", pin, cam_from_world=scene.cams_from_world[0])
    _write_images(rec, tmp_path / "images", rng)

    report = undistort_model(rec, tmp_path / "images", tmp_path / "out", sparse_subdir="0", num_threads=2)
    out = tmp_path / "out"
    assert report.model_dir == out / "sparse" / "0"
    assert (report.images_written, report.images_copied) == (3, 1)
    assert sorted(p.name for p in (out / "stereo").iterdir()) == [
        "consistency_graphs", "depth_maps", "fusion.cfg", "normal_maps", "patch-match.cfg"]
    names = [rec.images[i].name for i in rec.registered_image_ids]
    assert (out / "stereo" / "fusion.cfg").read_text().split("\n")[:-1] == names
    assert (out / "stereo" / "patch-match.cfg").read_text().split("\n")[1] == "__auto__, 20"
    # the pinhole image is copied byte for byte, the others have their camera's new size
    assert (out / "images" / "sub" / "pinhole.png").read_bytes() == (tmp_path / "images" / "sub" / "pinhole.png").read_bytes()
    prec = pycolmap.Reconstruction(str(report.model_dir))
    assert {c.model.name for c in prec.cameras.values()} == {"PINHOLE"}
    worst = 0.0
    for image in prec.images.values():
        cam = prec.cameras[image.camera_id]
        h, w = cv2.imread(str(out / "images" / image.name)).shape[:2]
        assert (w, h) == (cam.width, cam.height)
        for p2d in image.points2D:
            if p2d.has_point3D():
                uv = image.project_point(prec.points3D[p2d.point3D_id].xyz)
                worst = max(worst, float(np.linalg.norm(uv - p2d.xy)))
    assert worst < 1e-6  # COLMAP projects the exact points onto the undistorted keypoints
    assert read_model(report.model_dir).num_registered_images == 4


def test_images_match_colmaps_undistorter(tmp_path, rng):
    pycolmap = require_module("pycolmap")
    rec = orbit_scene(n_images=2, n_points=50, camera=DISTORTED["barrel"], rng=rng).to_reconstruction()
    _write_images(rec, tmp_path / "images", rng)
    write_model(rec, tmp_path / "model")
    pycolmap.undistort_images(str(tmp_path / "colmap"), str(tmp_path / "model"), str(tmp_path / "images"))
    undistort_model(rec, tmp_path / "images", tmp_path / "ours", num_threads=1)
    theirs_cam = next(iter(pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse")).cameras.values()))
    ours_cam = read_model(tmp_path / "ours" / "sparse").cameras[1]
    for img in rec.images.values():
        a = cv2.imread(str(tmp_path / "ours" / "images" / img.name)).astype(float)
        b = cv2.imread(str(tmp_path / "colmap" / "images" / img.name)).astype(float)
        # the two crops differ by at most a column/row; compare the common top-left part, shifted by
        # the difference of the principal points (both keep it at the same relative position)
        shift = (np.array(theirs_cam.params[2:4]) - 0.5) - ours_cam.principal_point
        assert np.abs(shift).max() < 1.0
        M = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        b_in_ours = cv2.warpAffine(b, M, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        inner = (slice(3, min(a.shape[0], b.shape[0]) - 3), slice(3, min(a.shape[1], b.shape[1]) - 3))
        assert np.abs(a[inner] - b_in_ours[inner]).mean() < 1.0  # grey levels of 255


def test_undistort_model_refuses_missing_or_wrong_size_images(tmp_path, rng):
    rec = orbit_scene(n_images=2, n_points=30, camera=DISTORTED["barrel"], rng=rng).to_reconstruction()
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="image 'image_0000.png': .* does not exist"):
        undistort_model(rec, tmp_path / "images", tmp_path / "out")
    for img in rec.images.values():
        cv2.imwrite(str(tmp_path / "images" / img.name), np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="is 100x100 pixels but its camera 1 is 320x240"):
        undistort_model(rec, tmp_path / "images", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written
