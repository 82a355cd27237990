"""Helpers of the relative-pose tests on real and rendered image pairs."""

from __future__ import annotations

import cv2
import numpy as np

import geomvision as gv
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.imageio import read_image
from geomvision.io.datasets import load_strecha_scene


def pose_error_deg(pose: gv.Rigid3, gt: gv.Rigid3) -> float:
    """max(rotation error, angle between the translation directions) in degrees."""
    c = np.dot(pose.t, gt.t) / (np.linalg.norm(pose.t) * np.linalg.norm(gt.t))
    return max(rotation_error_deg(pose.R, gt.R), float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))))


def sift_ratio_matches(rgb1: np.ndarray, rgb2: np.ndarray, ratio: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Matched pixels (M,2) of two RGB (H,W,3) or grey (H,W) images: OpenCV SIFT (8,000 features)
    and 2-NN matches passing Lowe's ratio test, as in ``benchmarks/bench_relative_pose.py``."""
    sift = cv2.SIFT_create(nfeatures=8000)
    feats = []
    for img in (rgb1, rgb2):
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        kp, desc = sift.detectAndCompute(grey, None)
        feats.append((np.array([p.pt for p in kp]), desc))
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(feats[0][1], feats[1][1], k=2)
    m = np.array([(p.queryIdx, p.trainIdx) for p, q in knn if p.distance < ratio * q.distance])
    return feats[0][0][m[:, 0]], feats[1][0][m[:, 1]]


def strecha_pair(root, scene_name: str, i: int, j: int, *, decoder_grey: bool = False) -> tuple:
    """(x1, x2, camera1, camera2, cam2_from_cam1) of views i and j of a Strecha scene under
    ``root`` (the shared ``strecha`` folder), matched with :func:`sift_ratio_matches`.
    ``decoder_grey``: the grey images of OpenCV's decoder (``cv2.IMREAD_GRAYSCALE``, the
    benchmark's matches) instead of the RGB images' conversion (a few matches differ)."""
    scene = load_strecha_scene(root / scene_name)
    a, b = scene.image_names[i], scene.image_names[j]
    if decoder_grey:
        imgs = [cv2.imread(str(scene.image_dir / name), cv2.IMREAD_GRAYSCALE) for name in (a, b)]
    else:
        imgs = [read_image(scene.image_dir / name) for name in (a, b)]
    x1, x2 = sift_ratio_matches(*imgs)
    gt = scene.cams_from_world[b] @ scene.cams_from_world[a].inverse()
    return x1, x2, scene.cameras[a], scene.cameras[b], gt
