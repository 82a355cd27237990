"""A small real reconstruction for the viz tests: SIFT on three fountain-P11 images, matches
checked against the ground-truth epipolar geometry, tracks, and points triangulated with the
ground-truth poses (linear triangulation), kept when they reproject within 2 px in every view."""

from __future__ import annotations

import cv2
import numpy as np

from geomvision.geometry import fundamental_from_pose, sampson_sq_errors
from geomvision.scene import Reconstruction
from geomvision.sfm.tracks import build_tracks

IMAGES = ("0004.jpg", "0005.jpg", "0006.jpg")


def detect_sift(grey: np.ndarray, n_features: int = 2000, downscale: int = 2):
    """SIFT keypoints (pixel centre convention, full-resolution coordinates) and descriptors,
    detected on the image shrunk by ``downscale`` (fast enough for a test)."""
    small = cv2.resize(grey, (grey.shape[1] // downscale, grey.shape[0] // downscale), interpolation=cv2.INTER_AREA)
    k, d = cv2.SIFT_create(nfeatures=n_features).detectAndCompute(small, None)
    uv = np.array([p.pt for p in k], dtype=np.float64)
    return downscale * (uv + 0.5) - 0.5, d


def ratio_matches(d1: np.ndarray, d2: np.ndarray, ratio: float = 0.8) -> np.ndarray:
    """(K,2) keypoint indices passing Lowe's ratio test."""
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    return np.array([[a.queryIdx, a.trainIdx] for a, b in knn if a.distance < ratio * b.distance], dtype=np.int64)


def _triangulate(P: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of one point from (k,3,4) projection matrices and (k,2) pixels."""
    A = np.concatenate([uv[:, :1] * P[:, 2] - P[:, 0], uv[:, 1:] * P[:, 2] - P[:, 1]])
    X = np.linalg.svd(A)[2][-1]
    return X[:3] / X[3]


def build_fountain_model(scene, images=IMAGES, max_error: float = 2.0) -> tuple[Reconstruction, dict]:
    """(reconstruction, info) where info holds the grey and RGB images by name."""
    grey = {n: cv2.imread(str(scene.image_dir / n), cv2.IMREAD_GRAYSCALE) for n in images}
    rgb = {n: cv2.cvtColor(cv2.imread(str(scene.image_dir / n)), cv2.COLOR_BGR2RGB) for n in images}
    kps, descs = zip(*(detect_sift(grey[n]) for n in images))
    pair_matches = {}
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            m = ratio_matches(descs[i], descs[j])
            T = scene.cams_from_world[images[j]] @ scene.cams_from_world[images[i]].inverse()
            F = fundamental_from_pose(T, scene.cameras[images[i]], scene.cameras[images[j]])
            ok = sampson_sq_errors(F, kps[i][m[:, 0]], kps[j][m[:, 1]]) < 1.0
            pair_matches[(i, j)] = m[ok]
    tracks, _ = build_tracks(np.array([len(k) for k in kps]), pair_matches)
    rec = Reconstruction()
    cam_ids = {}
    for k, n in enumerate(images):
        cam = scene.cameras[n]
        key = tuple(cam.params)
        if key not in cam_ids:
            cam_ids[key] = rec.add_camera(cam)
        rec.add_image(n, cam_ids[key], kps[k], scene.cams_from_world[n], image_id=k + 1)
    P = np.array([scene.cameras[n].K @ scene.cams_from_world[n].matrix3x4 for n in images])
    for t in range(tracks.num_tracks):
        img_idx, kp_idx = tracks.observations(t)
        uv = np.array([kps[i][k] for i, k in zip(img_idx, kp_idx)])
        X = _triangulate(P[img_idx], uv)
        proj = np.einsum("kij,j->ki", P[img_idx], np.append(X, 1.0))
        if np.any(proj[:, 2] <= 0):
            continue
        err = np.linalg.norm(proj[:, :2] / proj[:, 2:] - uv, axis=1)
        if err.max() > max_error:
            continue
        u, v = np.round(uv[0]).astype(int)
        colour = rgb[images[img_idx[0]]][v, u]
        rec.add_point3D(X, np.stack([img_idx + 1, kp_idx], axis=1), color=colour, error=float(err.mean()))
    return rec, {"grey": grey, "rgb": rgb}
