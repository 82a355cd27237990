"""Triangulation: exact recovery, optimality of the two-view correction, refinement, checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomvision import Camera
from geomvision.geometry.epipolar import essential_from_pose, fundamental_from_pose
from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rotation import so3_exp
from geomvision.geometry.triangulation import (
    check_points,
    optimal_correction,
    refine_points_reprojection,
    triangulate_multiview,
    triangulate_multiview_robust,
    triangulate_two_view,
    triangulation_angles_deg,
)


def _views(rng, n_views=2, n=50):
    X = rng.uniform(-1, 1, (n, 3)) + [0, 0, 6.0]
    poses = []
    for k in range(n_views):
        C = np.array([k * 0.8 - 0.4 * n_views, 0.3 * rng.normal(), 0.3 * rng.normal()])
        poses.append(Rigid3.look_at(C, np.array([0, 0, 6.0]) + rng.normal(scale=0.1, size=3), up=(0, -1, 0)))
    return X, poses


def _xy(T: Rigid3, X: np.ndarray) -> np.ndarray:
    Xc = T.apply(X)
    return Xc[:, :2] / Xc[:, 2:]


def _cost(T1, T2, X, xy1, xy2):
    return np.sum((_xy(T1, X) - xy1) ** 2, axis=1) + np.sum((_xy(T2, X) - xy2) ** 2, axis=1)


@pytest.mark.parametrize("method", ["dlt", "midpoint", "optimal"])
def test_two_view_exact(method, rng):
    X, (T1, T2) = _views(rng)
    est = triangulate_two_view(T1, T2, _xy(T1, X), _xy(T2, X), method=method)
    np.testing.assert_allclose(est, X, atol=1e-9)


@pytest.mark.parametrize("method", ["dlt", "midpoint"])
def test_multiview_exact_and_counts(method, rng):
    X, poses = _views(rng, n_views=5, n=40)
    obs_img = np.repeat(np.arange(5), 40)
    obs_pt = np.tile(np.arange(40), 5)
    keep = ~((obs_pt == 3) & (obs_img > 0))  # point 3 seen once only
    xy = np.vstack([_xy(T, X) for T in poses])
    est, views = triangulate_multiview(poses, obs_img[keep], obs_pt[keep], xy[keep], 40, method=method)
    assert views[3] == 1 and np.isnan(est[3]).all()
    ok = np.arange(40) != 3
    np.testing.assert_allclose(est[ok], X[ok], atol=1e-9)
    assert np.all(views[ok] == 5)


def test_optimal_correction_satisfies_the_constraint_and_is_minimal(rng):
    X, (T1, T2) = _views(rng, n=200)
    xy1 = _xy(T1, X) + rng.normal(scale=2e-3, size=(200, 2))
    xy2 = _xy(T2, X) + rng.normal(scale=2e-3, size=(200, 2))
    E = essential_from_pose(T2 @ T1.inverse())
    c1, c2 = optimal_correction(E, xy1, xy2)
    h1 = np.column_stack([c1, np.ones(200)])
    h2 = np.column_stack([c2, np.ones(200)])
    assert np.abs(np.einsum("ni,ij,nj->n", h2, E / np.linalg.norm(E), h1)).max() < 1e-12
    X_opt = triangulate_two_view(T1, T2, xy1, xy2, method="optimal")
    # reprojects exactly onto the corrected points
    np.testing.assert_allclose(_xy(T1, X_opt), c1, atol=1e-10)
    np.testing.assert_allclose(_xy(T2, X_opt), c2, atol=1e-10)
    # least two-view reprojection cost: below DLT and midpoint, equal to nonlinear refinement
    cost_opt = _cost(T1, T2, X_opt, xy1, xy2)
    for method in ("dlt", "midpoint"):
        other = triangulate_two_view(T1, T2, xy1, xy2, method=method)
        assert np.all(cost_opt <= _cost(T1, T2, other, xy1, xy2) * (1 + 1e-9) + 1e-18)
    cam = Camera("PINHOLE", 1000, 1000, [1.0, 1.0, 0.0, 0.0])
    X_ref, _ = refine_points_reprojection(triangulate_two_view(T1, T2, xy1, xy2), cam, [T1, T2],
                                          np.repeat([0, 1], 200), np.tile(np.arange(200), 2), np.vstack([xy1, xy2]))
    np.testing.assert_allclose(cost_opt, _cost(T1, T2, X_ref, xy1, xy2), rtol=1e-6, atol=1e-16)


def test_optimal_correction_in_pixels_with_a_fundamental_matrix(rng):
    X, (T1, T2) = _views(rng, n=100)
    cam = Camera("PINHOLE", 640, 480, [500.0, 520.0, 320.0, 240.0])
    F = fundamental_from_pose(T2 @ T1.inverse(), cam, cam)
    uv1 = cam.img_from_cam(T1.apply(X)) + rng.normal(scale=0.7, size=(100, 2))
    uv2 = cam.img_from_cam(T2.apply(X)) + rng.normal(scale=0.7, size=(100, 2))
    c1, c2 = optimal_correction(F, uv1, uv2)
    h1 = np.column_stack([c1, np.ones(100)])
    h2 = np.column_stack([c2, np.ones(100)])
    line_norm = np.linalg.norm((h1 @ F.T)[:, :2], axis=1)
    assert np.abs(np.einsum("ni,ij,nj->n", h2, F, h1)).max() / line_norm.min() < 1e-9  # pixels from the line
    moved = np.sum((c1 - uv1) ** 2 + (c2 - uv2) ** 2, axis=1)
    assert np.sqrt(np.mean(moved)) < 2 * 0.7


def test_refinement_with_a_distorted_camera(rng):
    cam = Camera("OPENCV", 640, 480, [500.0, 505.0, 320.0, 240.0, -0.2, 0.05, 0.001, -0.002])
    X, poses = _views(rng, n_views=3, n=60)
    obs_img = np.repeat(np.arange(3), 60)
    obs_pt = np.tile(np.arange(60), 3)
    uv = np.vstack([cam.img_from_cam(T.apply(X)) for T in poses])
    start = X + rng.normal(scale=0.05, size=X.shape)
    Xr, rms = refine_points_reprojection(start, cam, poses, obs_img, obs_pt, uv)
    np.testing.assert_allclose(Xr, X, atol=1e-7)
    assert np.all(rms < 1e-6)
    # linear triangulation on undistorted rays is exact too
    xy = cam.cam_from_img(uv)[:, :2]
    Xd, _ = triangulate_multiview(poses, obs_img, obs_pt, xy)
    np.testing.assert_allclose(Xd, X, atol=1e-7)


def test_checks_report_which_points_pass():
    T1 = Rigid3(np.eye(3), np.array([1.0, 0, 0]))  # centre (-1, 0, 0)
    T2 = Rigid3(np.eye(3), np.array([-1.0, 0, 0]))  # centre (1, 0, 0)
    X = np.array([[0, 0, 5.0], [0, 0, 500.0], [0, 0, -5.0], [0, 0, 4.0]])
    obs_img = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    obs_pt = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    cam = Camera("PINHOLE", 640, 480, [500.0, 500.0, 320.0, 240.0])
    uv = np.vstack([cam.img_from_cam(T.apply(X[[p]])) if T.apply(X[[p]])[0, 2] > 0 else [[0.0, 0.0]]
                    for T, p in zip([T1, T2] * 4, obs_pt)])
    uv[7] += [10.0, 0.0]  # point 3 reprojects 10 px off in view 2
    chk = check_points(X, cam, [T1, T2], obs_img, obs_pt, uv, min_tri_angle_deg=1.5, max_error=4.0)
    np.testing.assert_allclose(chk.tri_angle_deg[[0, 1]], np.degrees(2 * np.arctan([1 / 5.0, 1 / 500.0])))
    np.testing.assert_array_equal(chk.angle_ok, [True, False, True, True])
    np.testing.assert_array_equal(chk.depth_ok, [True, True, False, True])
    np.testing.assert_array_equal(chk.error_ok, [True, True, False, False])
    np.testing.assert_array_equal(chk.ok, [True, False, False, False])
    assert chk.max_error_px[3] == pytest.approx(10.0)
    angles = triangulation_angles_deg(X, [T1, T2], obs_img, obs_pt)
    np.testing.assert_allclose(angles, chk.tri_angle_deg)


def test_robust_multiview_rejects_a_wrong_observation_per_point(rng):
    X, poses = _views(rng, n_views=5, n=30)
    obs_img = np.repeat(np.arange(5), 30)
    obs_pt = np.tile(np.arange(30), 5)
    xy = np.vstack([_xy(T, X) for T in poses])
    # one wrong observation (a far-away match) for every point, in a view that varies with the point
    wrong = obs_img == (obs_pt % 5)
    xy[wrong] += rng.choice([-1, 1], (int(wrong.sum()), 2)) * rng.uniform(0.05, 0.2, (int(wrong.sum()), 2))
    res = triangulate_multiview_robust(poses, obs_img, obs_pt, xy, 1e-3, 30, min_tri_angle_deg=1.0)
    np.testing.assert_array_equal(res.inlier, ~wrong)
    np.testing.assert_allclose(res.X_world, X, atol=1e-9)
    assert res.ok.all()
    np.testing.assert_allclose(res.tri_angle_deg, triangulation_angles_deg(X, poses, obs_img[~wrong], obs_pt[~wrong]),
                               atol=1e-6)
    # plain DLT over all observations is pulled away by the wrong one
    dlt, _ = triangulate_multiview(poses, obs_img, obs_pt, xy, 30)
    assert np.linalg.norm(dlt - X, axis=1).min() > 1e-3


def test_robust_multiview_needs_two_agreeing_views_with_enough_angle(rng):
    X, (T1, T2) = _views(rng, n=10)
    xy = np.vstack([_xy(T1, X), _xy(T2, X)])
    obs_img = np.repeat([0, 1], 10)
    obs_pt = np.tile(np.arange(10), 2)
    xy[3] += 0.3  # point 3: the two views disagree
    res = triangulate_multiview_robust([T1, T2], obs_img, obs_pt, xy, 1e-3, 10)
    assert not res.ok[3] and np.isnan(res.X_world[3]).all() and res.tri_angle_deg[3] == 0
    assert not res.inlier[[3, 13]].any() and res.inlier[obs_pt != 3].all()
    # the same views, but a required angle wider than the baseline gives: no point at all
    angles = triangulation_angles_deg(X, [T1, T2], obs_img, obs_pt)
    res = triangulate_multiview_robust([T1, T2], obs_img, obs_pt, xy, 1e-3, 10,
                                       min_tri_angle_deg=float(angles.max()) + 1.0)
    assert not res.ok.any() and not res.inlier.any()
    with pytest.raises(ValueError, match="max_error_xy"):
        triangulate_multiview_robust([T1, T2], obs_img, obs_pt, xy, 0.0, 10)


def test_bad_input(rng):
    X, (T1, T2) = _views(rng, n=5)
    with pytest.raises(ValueError, match="method"):
        triangulate_two_view(T1, T2, _xy(T1, X), _xy(T2, X), method="svd")
    with pytest.raises(ValueError, match="same number of rows"):
        triangulate_two_view(T1, T2, _xy(T1, X)[:4], _xy(T2, X))
    with pytest.raises(ValueError, match="obs_img"):
        triangulate_multiview([T1, T2], np.array([0, 2]), np.array([0, 0]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Rigid3"):
        triangulate_multiview([np.eye(4)], np.array([0]), np.array([0]), np.zeros((1, 2)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), baseline=st.floats(0.05, 3.0))
def test_every_method_is_exact_on_random_two_view_geometry(seed, baseline):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (20, 3)) + [0, 0, 8.0]
    T1 = Rigid3(so3_exp(rng.normal(scale=0.05, size=3)), rng.normal(scale=0.1, size=3))
    C2 = rng.normal(size=3)
    C2 *= baseline / np.linalg.norm(C2)
    R2 = so3_exp(rng.normal(scale=0.1, size=3))
    T2 = Rigid3(R2, -R2 @ C2)
    assert np.all(T1.apply(X)[:, 2] > 0) and np.all(T2.apply(X)[:, 2] > 0)
    for method in ("dlt", "midpoint", "optimal"):
        est = triangulate_two_view(T1, T2, _xy(T1, X), _xy(T2, X), method=method)
        np.testing.assert_allclose(est, X, atol=1e-7 / baseline)
