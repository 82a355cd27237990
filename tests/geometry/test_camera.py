"""Camera models: round trips, Jacobians against finite differences, OpenCV agreement, input checks."""

import cv2
import numpy as np
import pytest

from geomvision import Camera
from geomvision.geometry.camera import CAMERA_MODELS

# realistic parameters for every model (640 x 480)
MODELS = {
    "SIMPLE_PINHOLE": [520.0, 319.5, 239.5],
    "PINHOLE": [520.0, 515.0, 321.0, 238.0],
    "SIMPLE_RADIAL": [520.0, 319.5, 239.5, -0.12],
    "RADIAL": [520.0, 319.5, 239.5, -0.15, 0.04],
    "OPENCV": [520.0, 515.0, 321.0, 238.0, -0.2, 0.05, 1e-3, -2e-3],
    "OPENCV_FISHEYE": [300.0, 301.0, 320.0, 240.0, 0.05, -0.01, 0.004, -0.001],
    "PINHOLE_SKEW": [520.0, 515.0, 2.5, 321.0, 238.0],
}


def test_every_model_is_covered():
    assert set(MODELS) == set(CAMERA_MODELS)


def _points_in_view(camera, rng, n=300):
    """Camera-frame points whose projections fall inside the image."""
    uv = rng.uniform([0, 0], [camera.width - 1, camera.height - 1], size=(n, 2))
    rays = camera.cam_from_img(uv)
    return rays * rng.uniform(0.5, 20.0, size=(n, 1)), uv


@pytest.mark.parametrize("model", MODELS)
def test_project_unproject_round_trip(model, rng):
    cam = Camera(model, 640, 480, MODELS[model])
    X, uv = _points_in_view(cam, rng)
    np.testing.assert_allclose(cam.img_from_cam(X), uv, atol=1e-9)
    rays = cam.cam_from_img(cam.img_from_cam(X))
    np.testing.assert_allclose(rays, X / X[:, 2:], atol=1e-12)
    b = cam.bearings_from_img(uv)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-15)


@pytest.mark.parametrize("model", MODELS)
def test_unprojection_is_exact_to_1e10_px(model, rng):
    cam = Camera(model, 640, 480, MODELS[model])
    uv = rng.uniform([0, 0], [639, 479], size=(500, 2))
    np.testing.assert_allclose(cam.img_from_cam(cam.cam_from_img(uv)), uv, atol=1e-10, rtol=0)


@pytest.mark.parametrize("model", MODELS)
def test_jacobians_match_central_differences(model, rng):
    cam = Camera(model, 640, 480, MODELS[model])
    X, _ = _points_in_view(cam, rng, 100)
    uv, J_X, J_p = cam.img_from_cam(X, jacobians=True)
    np.testing.assert_array_equal(uv, cam.img_from_cam(X))
    h = 1e-6
    for k in range(3):
        d = np.zeros(3)
        d[k] = h * np.abs(X[:, k]).max()
        num = (cam.img_from_cam(X + d) - cam.img_from_cam(X - d)) / (2 * d[k])
        np.testing.assert_allclose(J_X[:, :, k], num, rtol=1e-6, atol=1e-6 * np.abs(num).max())
    p = cam.params
    for k in range(len(p)):
        hk = 1e-6 * max(1.0, abs(p[k]))
        pp, pm = p.copy(), p.copy()
        pp[k] += hk
        pm[k] -= hk
        num = (cam.with_params(pp).img_from_cam(X) - cam.with_params(pm).img_from_cam(X)) / (2 * hk)
        np.testing.assert_allclose(J_p[:, :, k], num, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(num).max()))


def test_fisheye_jacobian_on_the_optical_axis():
    cam = Camera("OPENCV_FISHEYE", 640, 480, MODELS["OPENCV_FISHEYE"])
    X = np.array([[1e-12, -2e-12, 1.0], [0.0, 0.0, 2.0]])
    uv, J_X, J_p = cam.img_from_cam(X, jacobians=True)
    np.testing.assert_allclose(uv[1], [320.0, 240.0])
    np.testing.assert_allclose(J_X[1], [[150.0, 0.0, 0.0], [0.0, 150.5, 0.0]], atol=1e-9)
    assert np.isfinite(J_p).all()


def test_points_behind_the_camera_are_nan():
    cam = Camera("PINHOLE", 640, 480, MODELS["PINHOLE"])
    uv = cam.img_from_cam(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.1, 0.2, 1.0]]))
    assert np.isnan(uv[:2]).all() and np.isfinite(uv[2]).all()


def _cv2_undistort_to_convergence(uv, K, dist):
    """OpenCV's iterative undistortion run to convergence (OpenCV 4 names it undistortPointsIter;
    OpenCV 5 takes the criteria in undistortPoints)."""
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
    src = uv.reshape(-1, 1, 2)
    if hasattr(cv2, "undistortPointsIter"):
        out = cv2.undistortPointsIter(src, K, dist, np.eye(3), np.eye(3), crit)
    else:
        out = cv2.undistortPoints(src, K, dist, None, np.eye(3), np.eye(3), crit)
    return out.reshape(-1, 2)


def test_opencv_model_matches_cv2_project_points(rng):
    fx, fy, cx, cy, k1, k2, p1, p2 = MODELS["OPENCV"]
    cam = Camera("OPENCV", 640, 480, MODELS["OPENCV"])
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    dist = np.array([k1, k2, p1, p2])
    X, _ = _points_in_view(cam, rng)
    ref, _ = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, dist)
    np.testing.assert_allclose(cam.img_from_cam(X), ref.reshape(-1, 2), atol=1e-6)
    # undistortion: OpenCV's iterative solver run to convergence
    uv = cam.img_from_cam(X)
    ref_xy = _cv2_undistort_to_convergence(uv, K, dist)
    ours = cam.cam_from_img(uv)[:, :2]
    np.testing.assert_allclose(ours * [fx, fy], ref_xy * [fx, fy], atol=1e-6)


def test_radial_models_match_cv2_with_zero_tangential(rng):
    for model in ("SIMPLE_RADIAL", "RADIAL"):
        cam = Camera(model, 640, 480, MODELS[model])
        f, cx, cy = cam.params[:3]
        dist = np.r_[cam.params[3:], np.zeros(4 - len(cam.params[3:]))]
        K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
        X, _ = _points_in_view(cam, rng)
        ref, _ = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, dist)
        np.testing.assert_allclose(cam.img_from_cam(X), ref.reshape(-1, 2), atol=1e-6)


def test_fisheye_matches_cv2_fisheye(rng):
    fx, fy, cx, cy, *D = MODELS["OPENCV_FISHEYE"]
    cam = Camera("OPENCV_FISHEYE", 640, 480, MODELS["OPENCV_FISHEYE"])
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    D = np.array(D)
    X, _ = _points_in_view(cam, rng)
    ref, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)
    np.testing.assert_allclose(cam.img_from_cam(X), ref.reshape(-1, 2), atol=1e-6)
    uv = cam.img_from_cam(X)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
    ref_xy = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), K, D, criteria=crit).reshape(-1, 2)
    np.testing.assert_allclose(cam.cam_from_img(uv)[:, :2] * [fx, fy], ref_xy * [fx, fy], atol=1e-6)


def test_pinhole_skew_matches_K(rng):
    cam = Camera("PINHOLE_SKEW", 640, 480, MODELS["PINHOLE_SKEW"])
    X, _ = _points_in_view(cam, rng)
    h = X @ cam.K.T
    np.testing.assert_allclose(cam.img_from_cam(X), h[:, :2] / h[:, 2:], atol=1e-10)


def test_from_K_and_from_focal():
    K = np.array([[800.0, 0, 330.0], [0, 810.0, 250.0], [0, 0, 1]])
    cam = Camera.from_K(K, 640, 480)
    assert cam.model == "PINHOLE"
    np.testing.assert_array_equal(cam.K, K)
    K[0, 1] = 1.5
    assert Camera.from_K(K, 640, 480).model == "PINHOLE_SKEW"
    np.testing.assert_array_equal(Camera.from_K(K, 640, 480).K, K)
    cam = Camera.from_focal(700.0, 640, 480)
    np.testing.assert_array_equal(cam.params, [700.0, 319.5, 239.5])  # centre of a 640x480 image
    cam = Camera.from_focal(700.0, 640, 480, model="OPENCV")
    np.testing.assert_array_equal(cam.params, [700.0, 700.0, 319.5, 239.5, 0, 0, 0, 0])
    assert not cam.has_distortion


def test_rescaled_keeps_pixel_centre_convention(rng):
    cam = Camera("OPENCV", 640, 480, MODELS["OPENCV"])
    half = cam.rescaled(320, 240)
    X, _ = _points_in_view(cam, rng)
    # the same ray hits pixel u in the full image and (u + 0.5) / 2 - 0.5 in the half-size image
    np.testing.assert_allclose(half.img_from_cam(X), (cam.img_from_cam(X) + 0.5) / 2 - 0.5, atol=1e-10)


def test_params_by_name():
    cam = Camera("OPENCV", 640, 480, MODELS["OPENCV"])
    assert cam.param("p2") == -2e-3
    np.testing.assert_array_equal(cam.principal_point, [321.0, 238.0])
    with pytest.raises(ValueError, match="has no parameter 'k3'"):
        cam.param("k3")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(model="KANNALA", width=640, height=480, params=[1, 2, 3]), "unknown camera model"),
        (dict(model="PINHOLE", width=640, height=480, params=[1, 2, 3]), "PINHOLE takes 4 parameters"),
        (dict(model="PINHOLE", width=0, height=480, params=[1, 1, 2, 3]), "width"),
        (dict(model="PINHOLE", width=640.5, height=480, params=[1, 1, 2, 3]), "width"),
        (dict(model="PINHOLE", width=640, height=480, params=[1, np.nan, 2, 3]), "NaN"),
        (dict(model="PINHOLE", width=640, height=480, params=[-1, 1, 2, 3]), "focal lengths must be positive"),
    ],
)
def test_bad_camera_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Camera(**kwargs)


def test_bad_points_raise():
    cam = Camera("PINHOLE", 640, 480, MODELS["PINHOLE"])
    with pytest.raises(ValueError, match="X_cam must have shape"):
        cam.img_from_cam(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="uv contains 1 NaN"):
        cam.cam_from_img(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"K must be upper triangular"):
        Camera.from_K(np.ones((3, 3)), 640, 480)
