"""Exporters (issue 17) against each format's own conventions, on synthetic models with exact
observations: the files are parsed here as the consumers' documentation and loaders define them
(nerfstudio's ray generation, instant-ngp's loader, VisualSFM/PBA's NVM projection, Bundler's
manual), with OpenCV as the independent implementation of the lens models, and every 3-D point
must reproject onto its keypoint."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geomvision import Camera
from geomvision.io import read_ply
from geomvision.io.bundler import write_bundler
from geomvision.io.nvm import write_nvm
from geomvision.io.transforms_json import write_instant_ngp, write_nerfstudio
from geomvision.scene import Reconstruction
from geomvision.synthetic import orbit_scene

CENTRED = {  # principal point at the image centre ((w - 1) / 2, (h - 1) / 2)
    "SIMPLE_PINHOLE": Camera("SIMPLE_PINHOLE", 640, 480, [520.0, 319.5, 239.5]),
    "SIMPLE_RADIAL": Camera("SIMPLE_RADIAL", 640, 480, [500.0, 319.5, 239.5, -0.06]),
    "RADIAL": Camera("RADIAL", 640, 480, [510.0, 319.5, 239.5, -0.05, 0.012]),
}
NERF_CAMERAS = {
    "PINHOLE": Camera("PINHOLE", 640, 480, [505.0, 509.0, 322.4, 236.1]),
    "RADIAL": CENTRED["RADIAL"],
    "OPENCV": Camera("OPENCV", 640, 480, [500.0, 505.0, 321.1, 238.3, -0.1, 0.02, 0.002, -0.001]),
    "OPENCV_FISHEYE": Camera("OPENCV_FISHEYE", 640, 480, [300.0, 301.0, 320.7, 240.2, 0.05, -0.01, 0.002, -0.0003]),
}


def _model(camera: Camera, rng, n_images: int = 5) -> Reconstruction:
    scene = orbit_scene(n_images=n_images, n_points=120, camera=camera, noise_px=0.0, rng=rng)
    rec = scene.to_reconstruction()
    for k, pt in enumerate(rec.points3D.values()):
        pt.color = np.array([k % 256, (3 * k) % 256, 200], dtype=np.uint8)
    return rec


def _observations(rec: Reconstruction):
    """(image_id, keypoint_idx, uv, X) of every observation."""
    for pid, pt in rec.points3D.items():
        for iid, kp in pt.track.tolist():
            yield iid, kp, rec.images[iid].keypoints[kp], pt.xyz


# --- NVM ------------------------------------------------------------------------------------------
def _read_nvm(path):
    """Parse one NVM v3 model as VisualSFM documents it."""
    tokens = path.read_text().split()
    assert tokens[0] == "NVM_V3"
    pos = 1
    n_cams = int(tokens[pos]); pos += 1
    cams = []
    for _ in range(n_cams):
        name, vals = tokens[pos], list(map(float, tokens[pos + 1:pos + 10]))
        assert tokens[pos + 10] == "0"
        cams.append((name, vals[0], np.array(vals[1:5]), np.array(vals[5:8]), vals[8]))
        pos += 11
    n_pts = int(tokens[pos]); pos += 1
    pts = []
    for _ in range(n_pts):
        xyz, rgb, n = np.array(list(map(float, tokens[pos:pos + 3]))), tokens[pos + 3:pos + 6], int(tokens[pos + 6])
        pos += 7
        meas = [(int(tokens[pos + 4 * k]), int(tokens[pos + 4 * k + 1]),
                 np.array([float(tokens[pos + 4 * k + 2]), float(tokens[pos + 4 * k + 3])])) for k in range(n)]
        pos += 4 * n
        pts.append((xyz, list(map(int, rgb)), meas))
    assert tokens[pos] == "0"  # end of the model list
    return cams, pts


def _nvm_residual(cam, X, m) -> float:
    """PBA's projection with measurement distortion, in pixels: f (m/f (1 + r |m/f|^2) - P_xy / P_z)."""
    _, f, quat_wxyz, C, r = cam
    R = Rotation.from_quat(np.r_[quat_wxyz[1:], quat_wxyz[0]]).as_matrix()
    P = R @ (X - C)
    assert P[2] > 0  # the camera looks down +z
    n = m / f
    residual = float(f * np.linalg.norm(n * (1 + r * n @ n) - P[:2] / P[2]))
    assert math.isfinite(residual)  # max() would skip a NaN
    return residual


@pytest.mark.parametrize("model", ["SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"])
def test_nvm_reprojects_with_visualsfms_projection(model, tmp_path, rng):
    camera = CENTRED[model]
    rec = _model(camera, rng)
    info = write_nvm(rec, tmp_path / "model.nvm", image_dir=tmp_path / "imgs")
    cams, pts = _read_nvm(tmp_path / "model.nvm")
    assert [c[0] for c in cams] == [f"imgs/{rec.images[i].name}" for i in rec.registered_image_ids]
    assert all(c[2][0] >= 0 for c in cams)
    # poses: quaternion of cam_from_world's rotation, camera centre
    for (_, f, q, C, _), iid in zip(cams, rec.registered_image_ids):
        T = rec.images[iid].cam_from_world
        np.testing.assert_allclose(Rotation.from_quat(np.r_[q[1:], q[0]]).as_matrix(), T.R, atol=1e-12)
        np.testing.assert_allclose(C, -T.R.T @ T.t, atol=1e-12)
        assert f == camera.mean_focal_length
    index = {k: iid for k, iid in enumerate(rec.registered_image_ids)}
    worst = 0.0
    n_meas = 0
    for (xyz, rgb, meas), pid in zip(pts, sorted(rec.points3D)):
        assert np.array_equal(xyz, rec.points3D[pid].xyz) and rgb == rec.points3D[pid].color.tolist()
        for k, feat, m in meas:
            img = rec.images[index[k]]
            # the measurement is the keypoint relative to the image centre, y down
            np.testing.assert_allclose(m, img.keypoints[feat] - [319.5, 239.5], atol=1e-12)
            worst = max(worst, _nvm_residual(cams[k], xyz, m))
            n_meas += 1
    assert n_meas == sum(p.track_length for p in rec.points3D.values())
    if model == "SIMPLE_PINHOLE":
        assert worst < 1e-9 and info["max_error_px"] == 0.0
    else:  # one radial term on the measurement only approximates the camera's lens
        assert worst <= info["max_error_px"] + 1e-9 and 0 < info["max_error_px"] < 1.0
        r, k = cams[0][4], camera.params[3]
        assert r * k < 0 and abs(r + k) < 0.3 * abs(k)  # COLMAP's first-order r = -k, refined


def test_nvm_keeps_one_measurement_per_image(tmp_path, rng):
    rec = _model(CENTRED["SIMPLE_PINHOLE"], rng)
    pid = next(iter(rec.points3D))
    iid = int(rec.points3D[pid].track[0, 0])
    img = rec.images[iid]
    img.keypoints = np.vstack([img.keypoints, img.keypoints[rec.points3D[pid].track[0, 1]]])
    img.point3D_ids = np.r_[img.point3D_ids, -1]
    rec.add_observation(pid, iid, len(img.keypoints) - 1)
    assert write_nvm(rec, tmp_path / "m.nvm")["dropped_measurements"] == 1


def test_nvm_and_bundler_refuse_cameras_they_cannot_hold(tmp_path, rng):
    off_centre = _model(Camera("PINHOLE", 640, 480, [500.0, 500.0, 330.0, 239.5]), rng)
    with pytest.raises(ValueError, match="principal point is 10.5 px from the image centre.*accept the error"):
        write_nvm(off_centre, tmp_path / "m.nvm")
    assert write_nvm(off_centre, tmp_path / "m.nvm", max_error=11.0)["max_error_px"] == pytest.approx(10.5)
    tangential = _model(NERF_CAMERAS["OPENCV"], rng)
    with pytest.raises(ValueError, match="fx = 500 and fy = 505 differ; its OPENCV lens is not radial-only. Undistort"):
        write_bundler(tangential, tmp_path / "bundle.out")
    assert not (tmp_path / "bundle.out").exists()
    with pytest.raises(TypeError, match=r"write_bundler takes \(rec, path\)"):
        write_bundler(tmp_path / "bundle.out", tangential)


# --- Bundler --------------------------------------------------------------------------------------
def _read_bundler(path):
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    n_cams, n_pts = map(int, lines[0].split())
    rows = [np.array(list(map(float, ln.split()))) for ln in lines[1:1 + 5 * n_cams]]
    cams = [(rows[5 * k], np.array(rows[5 * k + 1:5 * k + 4]), rows[5 * k + 4]) for k in range(n_cams)]
    pts = []
    rest = lines[1 + 5 * n_cams:]
    for k in range(n_pts):
        xyz = np.array(list(map(float, rest[3 * k].split())))
        rgb = list(map(int, rest[3 * k + 1].split()))
        v = rest[3 * k + 2].split()
        views = [(int(v[1 + 4 * j]), int(v[2 + 4 * j]), np.array([float(v[3 + 4 * j]), float(v[4 + 4 * j])]))
                 for j in range(int(v[0]))]
        pts.append((xyz, rgb, views))
    return cams, pts


@pytest.mark.parametrize("model", ["SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"])
def test_bundler_reprojects_with_bundlers_projection(model, tmp_path, rng):
    camera = CENTRED[model]
    rec = _model(camera, rng)
    (tmp_path / "bundle").mkdir()
    info = write_bundler(rec, tmp_path / "bundle" / "bundle.out", list_path=tmp_path / "list.txt",
                         image_dir=tmp_path / "imgs")
    assert info["max_error_px"] < 1e-9  # these cameras are Bundler cameras exactly
    names = (tmp_path / "list.txt").read_text().splitlines()
    assert names == [f"imgs/{rec.images[i].name}" for i in rec.registered_image_ids]
    cams, pts = _read_bundler(tmp_path / "bundle" / "bundle.out")
    ids = rec.registered_image_ids
    worst = 0.0
    for (xyz, rgb, views), pid in zip(pts, sorted(rec.points3D)):
        assert np.array_equal(xyz, rec.points3D[pid].xyz)
        for k, key, xy in views:
            (f, k1, k2), R, t = cams[k]
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
            assert np.linalg.det(R) == pytest.approx(1.0)
            P = R @ xyz + t
            assert P[2] < 0  # Bundler's camera looks down -z
            p = -P[:2] / P[2]
            proj = f * (1 + k1 * (p @ p) + k2 * (p @ p) ** 2) * p
            worst = max(worst, float(np.linalg.norm(proj - xy)))
            assert math.isfinite(worst)
            # origin at the image centre, y up: (-w/2, -h/2) is the lower-left image corner
            u, v = rec.images[ids[k]].keypoints[key]
            np.testing.assert_allclose(xy, [u + 0.5 - 320.0, 240.0 - (v + 0.5)], atol=1e-12)
    assert worst < 1e-9
    # the camera centre -R^T t is geomvision's
    for (_, R, t), iid in zip(cams, ids):
        np.testing.assert_allclose(-R.T @ t, rec.images[iid].center, atol=1e-9)


# --- nerfstudio and instant-ngp: rays through the keypoints ------------------------------------
def _undistort_opencv(xy_pixels: np.ndarray, fl, c, dist: dict, fisheye: bool) -> np.ndarray:
    """OpenCV's own undistortion (the reference implementation of both lens models): normalised
    z = 1 coordinates of pixels given in COLMAP/NeRF pixel coordinates (origin at the corner)."""
    K = np.array([[fl[0], 0, c[0]], [0, fl[1], c[1]], [0, 0, 1.0]])
    pts = xy_pixels.reshape(-1, 1, 2).astype(np.float64)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    if fisheye:
        D = np.array([dist["k1"], dist["k2"], dist["k3"], dist["k4"]])
        return cv2.fisheye.undistortPoints(pts, K, D, criteria=crit).reshape(-1, 2)
    D = np.array([dist.get("k1", 0.0), dist.get("k2", 0.0), dist.get("p1", 0.0), dist.get("p2", 0.0)])
    return cv2.undistortPoints(pts, K, D, None, None, criteria=crit).reshape(-1, 2)


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    angle = math.atan2(np.linalg.norm(np.cross(a, b)), float(a @ b))
    assert math.isfinite(angle)  # max() would skip a NaN
    return angle


def _nerf_rays_hit_points(meta: dict, rec: Reconstruction, world_from_model: np.ndarray, flavour: str) -> float:
    """Largest angle (rad) between a keypoint's ray, generated as the loader does, and its point."""
    by_path = {fr["file_path"]: fr for fr in meta["frames"]}
    worst = 0.0
    for iid in rec.registered_image_ids:
        img = rec.images[iid]
        frame = by_path[f"images/{img.name}"]
        intr = {**meta, **frame}
        c2w = np.array(frame["transform_matrix"])
        np.testing.assert_allclose(c2w[3], [0, 0, 0, 1])
        np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-12)
        fisheye = intr.get("camera_model") == "OPENCV_FISHEYE" or intr.get("is_fisheye", False)
        m = img.point3D_ids >= 0
        # pixel (i, j)'s centre is at (i + 0.5, j + 0.5) for both loaders
        xy = _undistort_opencv(img.keypoints[m] + 0.5, (intr["fl_x"], intr["fl_y"]), (intr["cx"], intr["cy"]),
                               intr, fisheye)
        if flavour == "nerfstudio":  # cameras.py: undistort, flip y (OpenGL), direction (x, y, -1)
            dirs_cam = np.column_stack([xy[:, 0], -xy[:, 1], -np.ones(len(xy))])
            dirs = dirs_cam @ c2w[:3, :3].T
        else:  # nerf_loader.cu: nerf_matrix_to_ngp flips the y and z columns, then (x, y, 1) in that frame
            c2w_ngp = c2w.copy()
            c2w_ngp[:3, 1:3] *= -1
            dirs = np.column_stack([xy, np.ones(len(xy))]) @ c2w_ngp[:3, :3].T
        X = np.array([rec.points3D[p].xyz for p in img.point3D_ids[m]])
        X = X @ world_from_model[:3, :3].T + world_from_model[:3, 3]
        for d, x in zip(dirs, X):
            worst = max(worst, _angle_between(d, x - c2w[:3, 3]))
    return worst


@pytest.mark.parametrize("model", sorted(NERF_CAMERAS))
def test_nerfstudio_rays_pass_through_the_points(model, tmp_path, rng):
    rec = _model(NERF_CAMERAS[model], rng)
    write_nerfstudio(rec, tmp_path / "transforms.json")
    meta = json.loads((tmp_path / "transforms.json").read_text())
    cam = NERF_CAMERAS[model]
    assert meta["camera_model"] == ("OPENCV_FISHEYE" if model == "OPENCV_FISHEYE" else "OPENCV")
    assert (meta["w"], meta["h"]) == (cam.width, cam.height)
    assert "applied_transform" not in meta  # poses and points in the model's own frame
    assert _nerf_rays_hit_points(meta, rec, np.eye(4), "nerfstudio") < 1e-9
    xyz, colors = read_ply(tmp_path / meta["ply_file_path"])
    _, ref_xyz, ref_colors = rec.point_arrays()
    np.testing.assert_allclose(xyz, ref_xyz, rtol=1e-6)  # float32, as ns-process-data writes
    assert np.array_equal(colors, ref_colors)


@pytest.mark.parametrize("model", sorted(NERF_CAMERAS))
def test_instant_ngp_rays_pass_through_the_points(model, tmp_path, rng):
    rec = _model(NERF_CAMERAS[model], rng)
    M = write_instant_ngp(rec, tmp_path / "transforms.json")
    meta = json.loads((tmp_path / "transforms.json").read_text())
    np.testing.assert_allclose(meta["geomvision_ngp_from_model"], M)
    assert _nerf_rays_hit_points(meta, rec, M, "ngp") < 1e-9
    if model == "OPENCV_FISHEYE":  # p1, p2 would overwrite k3, k4 in instant-ngp's lens
        assert meta["is_fisheye"] is True and "p1" not in meta and "p2" not in meta
    else:
        assert "k3" not in meta and "k4" not in meta
        assert meta["camera_angle_x"] == pytest.approx(2 * math.atan(320 / meta["fl_x"]))
    # colmap2nerf's frame: cameras about the origin at a mean distance of 4, their up direction +z
    c2w = np.array([fr["transform_matrix"] for fr in meta["frames"]])
    assert np.linalg.norm(c2w[:, :3, 3], axis=1).mean() == pytest.approx(4.0)
    up = c2w[:, :3, 1].sum(axis=0)
    np.testing.assert_allclose(up / np.linalg.norm(up), [0, 0, 1], atol=1e-12)
    # the orbit cameras look at the cube's centre: the centre of attention is near the origin
    centre = M[:3, :3] @ np.zeros(3) + M[:3, 3]
    assert np.linalg.norm(centre) < 0.1
    # aabb_scale: the smallest power of two whose box (|x| <= 1.5 aabb_scale at scale 0.33) holds the points
    _, xyz, _ = rec.point_arrays()
    reach = np.quantile(np.abs(xyz @ M[:3, :3].T + M[:3, 3]).max(axis=1), 0.99)
    k = meta["aabb_scale"]
    assert reach <= k / (2 * 0.33) and (k == 1 or reach > k / 4 / 0.33)


def test_several_cameras_put_intrinsics_in_every_frame(tmp_path, rng):
    rec = _model(NERF_CAMERAS["OPENCV"], rng, n_images=3)
    rec.images[2].camera_id = rec.add_camera(NERF_CAMERAS["PINHOLE"])  # only the files are checked here
    (tmp_path / "ns").mkdir()
    write_nerfstudio(rec, tmp_path / "ns" / "transforms.json", image_dir=tmp_path / "imgs")
    meta = json.loads((tmp_path / "ns" / "transforms.json").read_text())
    assert "fl_x" not in meta and meta["camera_model"] == "OPENCV"
    frames = {fr["colmap_im_id"]: fr for fr in meta["frames"]}
    assert frames[2]["fl_x"] == 505.0 and frames[2]["p1"] == 0.0
    assert frames[1]["fl_x"] == 500.0 and frames[1]["p1"] == 0.002
    assert frames[1]["file_path"] == "../imgs/image_0000.png"
    fish = rec.add_camera(NERF_CAMERAS["OPENCV_FISHEYE"])
    rec.images[3].camera_id = fish
    with pytest.raises(ValueError, match="mixes fisheye and perspective cameras"):
        write_nerfstudio(rec, tmp_path / "ns" / "transforms.json")
    write_instant_ngp(rec, tmp_path / "ngp.json")
    ngp = json.loads((tmp_path / "ngp.json").read_text())
    assert [fr.get("is_fisheye", False) for fr in ngp["frames"]] == [False, False, True]


def test_skewed_cameras_are_refused(tmp_path, rng):
    rec = _model(Camera("PINHOLE_SKEW", 640, 480, [500.0, 505.0, 3.0, 319.5, 239.5]), rng)
    for writer in (write_nerfstudio, write_instant_ngp):
        with pytest.raises(ValueError, match="PINHOLE_SKEW.*geomvision undistort"):
            writer(rec, tmp_path / "transforms.json")
