"""Pixels beyond a lens model's invertible region (issue 15 trace).

With strong barrel distortion (k1 < 0) the distorted radius r (1 + k1 r^2) peaks at
r^2 = -1 / (3 k1), and pixels farther out have no ray: ``cam_from_img`` gives NaN. SfM can hold
such a camera while it self-calibrates (a rendered courtyard with k1 = -0.25, started from the
true k1 and the focal length the fundamental matrices give, 536 px against the true 700: 62 of a
pair's 1,230 matches had no ray), and ``estimate_relative_pose`` then stopped with a
ZeroDivisionError inside its kernels:
a match with one ray zeroed had a Sampson error of zero, so it was an inlier, and the refinement
divided by its ray. Such matches must never be inliers, and the estimate must stay right.
"""

from __future__ import annotations

import numpy as np
import pytest

import geomvision as gv
from geomvision.geometry.rotation import rotation_error_deg, so3_exp

W, H = 800, 600
CAMERA = gv.Camera("SIMPLE_RADIAL", W, H, [536.0, (W - 1) / 2, (H - 1) / 2, -0.25])


def _beyond_the_lens(rng: np.random.Generator, n: int) -> np.ndarray:
    """n pixels near the image corners, beyond the camera's invertible region."""
    corners = np.array([[0.0, 0.0], [W - 1.0, 0.0], [0.0, H - 1.0], [W - 1.0, H - 1.0]])
    uv = corners[rng.integers(0, 4, n)] + rng.uniform(-40, 40, (n, 2)) * np.sign(
        np.array([W / 2, H / 2]) - corners[rng.integers(0, 4, n)])
    uv = np.clip(uv, 0.0, [W - 1.0, H - 1.0])
    assert np.isnan(CAMERA.cam_from_img(uv)[:, 0]).all()
    return uv


def _points_in_view(rng: np.random.Generator, pose: gv.Rigid3, n: int) -> np.ndarray:
    X = np.column_stack([rng.uniform(-3, 3, 4 * n), rng.uniform(-2, 2, 4 * n), rng.uniform(6, 12, 4 * n)])
    uv1 = CAMERA.img_from_cam(X)
    uv2 = CAMERA.img_from_cam(pose.apply(X))
    ok = np.isfinite(CAMERA.cam_from_img(uv1)[:, 0]) & np.isfinite(CAMERA.cam_from_img(uv2)[:, 0])
    ok &= (uv1 >= 0).all(1) & (uv1 < [W, H]).all(1) & (uv2 >= 0).all(1) & (uv2 < [W, H]).all(1)
    return X[ok][:n]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relative_pose_never_takes_a_pixel_without_a_ray(seed):
    rng = np.random.default_rng(seed)
    gt = gv.Rigid3(so3_exp(np.array([0.02, 0.15, -0.01])), np.array([-1.0, 0.05, 0.1]))
    X = _points_in_view(rng, gt, 300)
    x1, x2 = CAMERA.img_from_cam(X), CAMERA.img_from_cam(gt.apply(X))
    # 80 matches whose first pixel has no ray (and 20 more the other way round)
    far = _beyond_the_lens(rng, 100)
    y1 = np.vstack([x1, far[:80], rng.uniform(0, [W, H], (20, 2))])
    y2 = np.vstack([x2, rng.uniform(0, [W, H], (80, 2)), far[80:]])
    res = gv.estimate_relative_pose(y1, y2, CAMERA, CAMERA, max_error=1.0, rng=seed)
    assert res.stats.success
    assert not res.inliers[300:].any()
    assert res.inliers[:300].sum() >= 295
    assert rotation_error_deg(res.model.R, gt.R) < 0.01
    t = gt.t / np.linalg.norm(gt.t)
    assert np.degrees(np.arccos(np.clip(res.model.t @ t, -1, 1))) < 0.05


def test_absolute_pose_never_takes_a_pixel_without_a_ray():
    rng = np.random.default_rng(3)
    gt = gv.Rigid3(so3_exp(np.array([0.05, -0.1, 0.02])), np.array([0.3, -0.2, 0.5]))
    Xc = _points_in_view(rng, gv.Rigid3(), 200)
    X = gt.inverse().apply(Xc)  # world points whose camera-frame points are Xc
    uv = CAMERA.img_from_cam(Xc)
    # 60 pixels without a ray, paired with world points that project near the principal point
    # (where a zero ray's error would be smallest)
    near = gt.inverse().apply(np.column_stack([rng.normal(0, 0.05, (60, 2)), rng.uniform(6, 12, 60)]))
    res = gv.estimate_absolute_pose(np.vstack([uv, _beyond_the_lens(rng, 60)]), np.vstack([X, near]), CAMERA,
                                    max_error=1.0, rng=0)
    assert res.stats.success
    assert not res.inliers[200:].any()
    assert res.inliers[:200].sum() >= 198
    assert rotation_error_deg(res.model.R, gt.R) < 0.01
    assert np.linalg.norm(res.model.t - gt.t) < 1e-3
