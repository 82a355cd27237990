"""Levenberg-Marquardt refiners: Jacobians vs finite differences, convergence to within noise of
the truth from perturbed starts, and zero weights ignoring points."""

from __future__ import annotations

import numpy as np
import pytest
from solver_cases import CAMERA, fundamental_case, plane_homography_case, relative_case, scale_sign_error

from geomvision.geometry import (
    Camera,
    Rigid3,
    homography_transfer_sq_errors,
    project_points,
    rotation_error_deg,
    sampson_sq_errors,
    so3_exp,
)
from geomvision.solvers import (
    RefineInfo,
    fundamental_8pt,
    homography_dlt,
    refine_absolute_pose,
    refine_fundamental,
    refine_homography,
    refine_relative_pose,
)
from geomvision.solvers import refine as rf


def _central_jacobian(fun, p0, h=1e-6):
    r0 = fun(p0)
    J = np.zeros((len(r0), len(p0)))
    for k in range(len(p0)):
        d = np.zeros(len(p0))
        d[k] = h
        J[:, k] = (fun(p0 + d) - fun(p0 - d)) / (2 * h)
    return r0, J


def _check_normal_equations(JtJ, Jtr, r, J, w):
    assert np.allclose(Jtr, J.T @ (w * r), rtol=1e-5, atol=1e-7 * np.abs(J.T @ (w * r)).max())
    ref = J.T @ (w[:, None] * J)
    assert np.allclose(JtJ, ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())


# --- Jacobians --------------------------------------------------------------------------------------
def test_homography_jacobian_matches_finite_differences(rng):
    H, x1, x2 = plane_homography_case(rng, 12)
    T = np.array([[1 / 200, 0, -1.5], [0, 1 / 200, -1.5], [0, 0, 1]])  # y = T x
    y1 = (x1 - 300) / 200
    y2 = (x2 - 300) / 200 + rng.normal(scale=0.01, size=x2.shape)
    h = (T @ H @ np.linalg.inv(T)).ravel()
    h = h / np.linalg.norm(h) + rng.normal(scale=1e-3, size=9)
    w = rng.uniform(0.5, 2.0, 12)

    def res(p):
        q = np.c_[y1, np.ones(12)] @ p.reshape(3, 3).T
        return (q[:, :2] / q[:, 2:] - y2).ravel()

    r, J = _central_jacobian(res, h)
    cost, JtJ, Jtr = rf._homography_system(h, y1, y2, w, True)
    assert cost == pytest.approx(np.sum(np.repeat(w, 2) * r**2))
    _check_normal_equations(JtJ, Jtr, r, J, np.repeat(w, 2))


def _sampson_residuals(E, y1, y2, on_sphere):
    a = y1 @ E.T
    b = y2 @ E
    c = np.einsum("ij,ij->i", y2, a)
    if on_sphere:
        d = (a**2).sum(1) + (b**2).sum(1) - 2 * c**2
    else:
        d = (a[:, :2] ** 2).sum(1) + (b[:, :2] ** 2).sum(1)
    return c / np.sqrt(d)


def test_fundamental_jacobian_matches_finite_differences(rng):
    F, x1, x2, _ = fundamental_case(rng, 15)
    y1 = np.c_[(x1 - 320) / 300, np.ones(15)]
    y2 = np.c_[(x2 - 240) / 300 + rng.normal(scale=0.01, size=x2.shape), np.ones(15)]
    U, S, Vt = np.linalg.svd(F)
    U, V = U * np.sign(np.linalg.det(U)), Vt.T * np.sign(np.linalg.det(Vt))
    s = S[1] / S[0]
    w = rng.uniform(0.5, 2.0, 15)

    def E_of(p):
        return rf._F_from_factors(U @ so3_exp(p[:3]), s + p[6], V @ so3_exp(p[3:6]))

    r, J = _central_jacobian(lambda p: _sampson_residuals(E_of(p), y1, y2, False), np.zeros(7))
    dE = np.empty((7, 9))
    rf._fundamental_jacobian(U, s, V, dE)
    cost, JtJ, Jtr = rf._sampson_system(E_of(np.zeros(7)), y1.T.copy(), y2.T.copy(), w, dE, False, True)
    assert cost == pytest.approx(np.sum(w * r**2))
    _check_normal_equations(JtJ, Jtr, r, J, w)


@pytest.mark.parametrize("on_sphere", [False, True])
def test_relative_pose_jacobian_matches_finite_differences(rng, on_sphere):
    T, r1, r2 = relative_case(rng, 15)
    y1 = r1 / (np.linalg.norm(r1, axis=1, keepdims=True) if on_sphere else r1[:, 2:])
    y2 = r2 / (np.linalg.norm(r2, axis=1, keepdims=True) if on_sphere else r2[:, 2:])
    y2 = y2 + rng.normal(scale=0.01, size=y2.shape) * [1, 1, 0]
    w = rng.uniform(0.5, 2.0, 15)
    w[[2, 11]] = 0.0  # points without weight drop out of the (branch-free, vectorised) sums
    Bt = rf._tangent_basis(T.t)

    def E_of(p):
        t = T.t + Bt @ p[3:]
        t /= np.linalg.norm(t)
        Rn = T.R @ so3_exp(p[:3])
        return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ Rn

    r, J = _central_jacobian(lambda p: _sampson_residuals(E_of(p), y1, y2, on_sphere), np.zeros(5))
    dE = np.empty((5, 9))
    E = rf._essential_jacobian(T.R, T.t, Bt, dE)
    cost, JtJ, Jtr = rf._sampson_system(E, y1.T.copy(), y2.T.copy(), w, dE, on_sphere, True)
    assert cost == pytest.approx(np.sum(w * r**2))
    _check_normal_equations(JtJ, Jtr, r, J, w)


@pytest.mark.parametrize("model", ["PINHOLE", "OPENCV", "OPENCV_FISHEYE"])
def test_absolute_pose_jacobian_matches_finite_differences(rng, model):
    params = {
        "PINHOLE": [500.0, 510.0, 320.0, 240.0],
        "OPENCV": [500.0, 510.0, 320.0, 240.0, -0.1, 0.02, 0.001, -0.002],
        "OPENCV_FISHEYE": [300.0, 300.0, 320.0, 240.0, 0.05, -0.01, 0.002, 0.0],
    }[model]
    cam = Camera(model, 640, 480, params)
    T = Rigid3.random(rng)
    Xc = rng.uniform([-1, -1, 2], [1, 1, 5], size=(10, 3))
    X = T.inverse().apply(Xc)
    uv = cam.img_from_cam(Xc) + rng.normal(scale=2.0, size=(10, 2))
    w = rng.uniform(0.5, 2.0, 10)

    def res(p):
        Tp = Rigid3(T.R @ so3_exp(p[:3]), T.t + p[3:], check=False)
        return (cam.img_from_cam(Tp.apply(X)) - uv).ravel()

    r, J = _central_jacobian(res, np.zeros(6))
    cost, valid, JtJ, Jtr = rf._absolute_system(T.R, T.t, uv, X, cam.model_id, cam.params, w, True)
    assert valid == 10
    assert cost == pytest.approx(np.sum(np.repeat(w, 2) * r**2))
    _check_normal_equations(JtJ, Jtr, r, J, np.repeat(w, 2))



def test_absolute_rays_jacobian_matches_finite_differences_and_the_pixel_error(rng):
    cam = Camera("PINHOLE", 640, 480, [500.0, 510.0, 320.0, 240.0])
    T = Rigid3.random(rng)
    Xc = rng.uniform([-1, -1, 2], [1, 1, 5], size=(10, 3))
    X = T.inverse().apply(Xc)
    uv = cam.img_from_cam(Xc) + rng.normal(scale=2.0, size=(10, 2))
    rays = cam.cam_from_img(uv)
    f2 = np.array([500.0, 510.0]) ** 2
    w = rng.uniform(0.5, 2.0, 10)

    def res(p):
        Tp = Rigid3(T.R @ so3_exp(p[:3]), T.t + p[3:], check=False)
        Y = Tp.apply(X)
        return ((Y[:, :2] / Y[:, 2:] - rays[:, :2]) * np.sqrt(f2)).ravel()

    r, J = _central_jacobian(res, np.zeros(6))
    cost, valid, JtJ, Jtr = rf._absolute_rays_system(T.R, T.t, rays, X, f2, w, True)
    assert valid == 10
    assert cost == pytest.approx(np.sum(np.repeat(w, 2) * r**2))
    _check_normal_equations(JtJ, Jtr, r, J, np.repeat(w, 2))
    # for a pinhole camera this is the pixel reprojection error itself
    pixel_cost, _, _, _ = rf._absolute_system(T.R, T.t, uv, X, cam.model_id, cam.params, w, False)
    assert cost == pytest.approx(pixel_cost, rel=1e-10)
    R1, t1, _, _, c1 = rf.refine_absolute_pose_rays_nb(T.R, T.t, rays, X, f2, w, 50, 1e-14, 1e-14, 1e-16)
    R2, t2, _, _, c2 = rf.refine_absolute_pose_nb(T.R, T.t, uv, X, cam.model_id, cam.params, w, 50, 1e-14, 1e-14,
                                                  1e-16)
    assert c1 == pytest.approx(c2, rel=1e-8) and np.allclose(R1, R2, atol=1e-8) and np.allclose(t1, t2, atol=1e-8)

# --- convergence ------------------------------------------------------------------------------------
def test_refine_homography_converges_within_noise(rng):
    H, x1, x2 = plane_homography_case(rng, 300)
    sigma = 0.5
    n1 = x1 + rng.normal(scale=sigma, size=x1.shape)
    n2 = x2 + rng.normal(scale=sigma, size=x2.shape)
    H0 = homography_dlt(n1, n2) + rng.normal(scale=1e-3, size=(3, 3))
    Hr, info = refine_homography(H0, n1, n2)
    assert isinstance(info, RefineInfo) and info.iterations >= 1
    assert info.final_cost == pytest.approx(homography_transfer_sq_errors(Hr, n1, n2).sum(), rel=1e-9)
    at_truth = homography_transfer_sq_errors(H, n1, n2).sum()
    assert info.final_cost < info.initial_cost
    assert 0.9 * at_truth < info.final_cost <= at_truth
    rms = np.sqrt(homography_transfer_sq_errors(Hr, x1, x2).mean())
    assert 0.0 < rms < 0.3 * sigma
    assert np.isclose(np.linalg.norm(Hr), 1.0)


def test_refine_fundamental_converges_within_noise(rng):
    F, x1, x2, _ = fundamental_case(rng, 300)
    sigma = 0.5
    n1 = x1 + rng.normal(scale=sigma, size=x1.shape)
    n2 = x2 + rng.normal(scale=sigma, size=x2.shape)
    F0 = fundamental_8pt(n1, n2)
    Fr, info = refine_fundamental(F0, n1, n2)
    assert info.final_cost == pytest.approx(sampson_sq_errors(Fr, n1, n2).sum(), rel=1e-9)
    at_truth = sampson_sq_errors(F, n1, n2).sum()
    assert info.final_cost < info.initial_cost
    assert 0.9 * at_truth < info.final_cost <= at_truth
    s = np.linalg.svd(Fr, compute_uv=False)
    assert s[2] < 1e-12 * s[0]
    assert 0.0 < np.sqrt(sampson_sq_errors(Fr, x1, x2).mean()) < 0.3 * sigma


@pytest.mark.parametrize("error", ["plane", "sphere"])
def test_refine_relative_pose_converges_within_noise(rng, error):
    T, r1, r2 = relative_case(rng, 300)
    x1 = CAMERA.img_from_cam(r1) + rng.normal(scale=0.5, size=(300, 2))
    x2 = CAMERA.img_from_cam(r2) + rng.normal(scale=0.5, size=(300, 2))
    n1, n2 = CAMERA.cam_from_img(x1), CAMERA.cam_from_img(x2)
    start = Rigid3(T.R @ so3_exp(rng.normal(scale=0.03, size=3)), T.t + rng.normal(scale=0.1, size=3))
    P, info = refine_relative_pose(start, n1, n2, error=error)
    _, at_truth = refine_relative_pose(T, n1, n2, error=error, max_iterations=0)
    assert at_truth.iterations == 0 and at_truth.final_cost == at_truth.initial_cost
    assert info.final_cost < info.initial_cost
    assert 0.95 * at_truth.final_cost < info.final_cost <= at_truth.final_cost
    assert 1e-4 < rotation_error_deg(P.R, T.R) < 0.2
    assert 1e-4 < np.degrees(np.arccos(np.clip(P.t @ T.t, -1, 1))) < 2.0
    assert np.isclose(np.linalg.norm(P.t), 1.0)


def test_refine_relative_pose_wide_angle(rng):
    T, r1, r2 = relative_case(rng, 200, omni=True)
    u1 = r1 / np.linalg.norm(r1, axis=1, keepdims=True) + rng.normal(scale=1e-3, size=(200, 3))
    u2 = r2 / np.linalg.norm(r2, axis=1, keepdims=True) + rng.normal(scale=1e-3, size=(200, 3))
    start = Rigid3(T.R @ so3_exp(rng.normal(scale=0.03, size=3)), T.t + rng.normal(scale=0.1, size=3))
    P, info = refine_relative_pose(start, u1, u2)  # auto: rays beyond 80 degrees -> sphere
    assert info.final_cost < info.initial_cost
    assert 1e-4 < rotation_error_deg(P.R, T.R) < 0.3
    with pytest.raises(ValueError, match="sphere"):
        refine_relative_pose(start, u1, u2, error="plane")


@pytest.mark.parametrize("model", ["SIMPLE_RADIAL", "OPENCV_FISHEYE"])
def test_refine_absolute_pose_converges_within_noise(rng, model):
    params = {
        "SIMPLE_RADIAL": [500.0, 320.0, 240.0, -0.08],
        "OPENCV_FISHEYE": [300.0, 300.0, 320.0, 240.0, 0.05, -0.01, 0.002, 0.0],
    }
    cam = Camera(model, 640, 480, params[model])
    T = Rigid3.random(rng)
    Xc = rng.uniform([-2, -2, 3], [2, 2, 8], size=(200, 3))
    X = T.inverse().apply(Xc)
    uv = cam.img_from_cam(Xc) + rng.normal(scale=0.5, size=(200, 2))
    start = Rigid3(T.R @ so3_exp(rng.normal(scale=0.02, size=3)), T.t + rng.normal(scale=0.1, size=3))
    P, info = refine_absolute_pose(start, uv, X, cam)
    _, at_truth = refine_absolute_pose(T, uv, X, cam, max_iterations=0)
    assert info.final_cost < info.initial_cost
    assert 0.9 * at_truth.final_cost < info.final_cost <= at_truth.final_cost
    uv_fit, _ = project_points(X, cam, P)
    assert info.final_cost == pytest.approx(((uv_fit - uv) ** 2).sum(), rel=1e-9)
    assert 1e-5 < rotation_error_deg(P.R, T.R) < 0.1


# --- weights ----------------------------------------------------------------------------------------
def test_zero_weights_ignore_points(rng):
    _H, x1, x2 = plane_homography_case(rng, 80)
    n1 = x1 + rng.normal(scale=0.5, size=x1.shape)
    n2 = x2 + rng.normal(scale=0.5, size=x2.shape)
    o1 = np.vstack([n1, rng.uniform(0, 640, (20, 2))])
    o2 = np.vstack([n2, rng.uniform(0, 480, (20, 2))])
    w = np.r_[np.ones(80), np.zeros(20)]
    H0 = homography_dlt(n1, n2)
    Ha, ia = refine_homography(H0, n1, n2)
    Hb, ib = refine_homography(H0, o1, o2, w)
    assert scale_sign_error(Ha, Hb) < 1e-9 and ib.final_cost == pytest.approx(ia.final_cost, rel=1e-9)

    _F, y1, y2, T = fundamental_case(rng, 80)
    m1 = y1 + rng.normal(scale=0.5, size=y1.shape)
    m2 = y2 + rng.normal(scale=0.5, size=y2.shape)
    p1 = np.vstack([m1, rng.uniform(0, 640, (20, 2))])
    p2 = np.vstack([m2, rng.uniform(0, 480, (20, 2))])
    F0 = fundamental_8pt(m1, m2)
    Fa, _ = refine_fundamental(F0, m1, m2)
    Fb, _ = refine_fundamental(F0, p1, p2, w)
    assert scale_sign_error(Fa, Fb) < 1e-9

    r1, r2 = CAMERA.cam_from_img(m1), CAMERA.cam_from_img(m2)
    q1, q2 = CAMERA.cam_from_img(p1), CAMERA.cam_from_img(p2)
    Pa, _ = refine_relative_pose(T, r1, r2)
    Pb, _ = refine_relative_pose(T, q1, q2, w)
    assert Pa.allclose(Pb, atol=1e-9)

    Xw = T.inverse().apply(r1 * rng.uniform(3, 7, (80, 1)))
    uv = np.vstack([m1, rng.uniform(0, 640, (20, 2))])
    Xo = np.vstack([Xw, rng.normal(size=(20, 3))])
    start = Rigid3.identity()
    Aa, _ = refine_absolute_pose(start, m1, Xw, CAMERA)
    Ab, _ = refine_absolute_pose(start, uv, Xo, CAMERA, w)
    assert Aa.allclose(Ab, atol=1e-9)


def test_bad_input(rng):
    x = rng.uniform(size=(10, 2))
    with pytest.raises(ValueError, match="H"):
        refine_homography(np.zeros((3, 3)), x, x)
    with pytest.raises(ValueError, match="weights"):
        refine_fundamental(np.eye(3), x, x, np.ones(3))
    with pytest.raises(ValueError, match="max_iterations"):
        refine_fundamental(np.eye(3), x, x, max_iterations=-1)
    with pytest.raises(ValueError, match="cam2_from_cam1"):
        refine_relative_pose(np.eye(3), np.ones((5, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="error"):
        refine_relative_pose(Rigid3(None, [1, 0, 0]), np.ones((5, 3)), np.ones((5, 3)), error="angle")
    with pytest.raises(ValueError, match="camera"):
        refine_absolute_pose(Rigid3(), x, np.ones((10, 3)), "PINHOLE")
    with pytest.raises(ValueError, match="X_world"):
        refine_absolute_pose(Rigid3(), x, np.ones((9, 3)), CAMERA)


def test_coincident_points_return_the_input_with_its_cost():
    x = np.tile([[100.0, 200.0]], (20, 1))
    H = np.array([[1.0, 0.1, 5.0], [0.0, 1.0, -3.0], [1e-4, 0.0, 1.0]])
    Hr, info = refine_homography(H, x, x + 1.0)
    assert np.array_equal(Hr, H) and info.iterations == 0
    assert info.final_cost == pytest.approx(homography_transfer_sq_errors(H, x, x + 1.0).sum())
    F = np.array([[0.0, -1e-3, 0.1], [1e-3, 0.0, -0.2], [-0.1, 0.2, 0.0]])
    Fr, info = refine_fundamental(F, x, x + 1.0)
    assert np.array_equal(Fr, F) and info.iterations == 0
    assert info.final_cost == pytest.approx(sampson_sq_errors(F, x, x + 1.0).sum())
