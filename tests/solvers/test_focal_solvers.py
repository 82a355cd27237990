"""Focal lengths from F: exact recovery, noise, imaginary solutions."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry import Camera, Rigid3, fundamental_from_pose, hat, project_points, so3_exp
from geomvision.solvers import (
    focal_from_fundamental,
    fundamental_8pt,
    refine_fundamental,
    shared_focal_from_fundamental,
)
from geomvision.synthetic import orbit_scene


def _bougnoux_reference(F, p1, p2):
    """f1^2 by Bougnoux's formula written out with numpy (independent of the numba code)."""
    e2 = np.linalg.svd(F)[0][:, 2]  # F^T e2 = 0
    p1 = np.r_[p1, 1.0]
    p2 = np.r_[p2, 1.0]
    II = np.diag([1.0, 1.0, 0.0])
    num = -(p2 @ hat(e2) @ II @ F @ p1) * (p1 @ F.T @ p2)
    den = p2 @ hat(e2) @ II @ F @ II @ F.T @ p2
    return num / den


def _random_pose(rng):
    # a generic (non-fixating) wide-baseline pair
    R = so3_exp(rng.normal(scale=0.3, size=3))
    C = rng.normal(size=3)
    return Rigid3(R, -R @ C)


def test_exact_focals_recovered(rng):
    for _ in range(50):
        f1, f2 = rng.uniform(300, 2000, size=2)
        c1 = Camera("PINHOLE", 640, 480, [f1, f1, *rng.uniform([250, 200], [390, 280])])
        c2 = Camera("PINHOLE", 1024, 768, [f2, f2, *rng.uniform([450, 330], [570, 430])])
        F = fundamental_from_pose(_random_pose(rng), c1, c2)
        g1, g2 = focal_from_fundamental(F, c1.principal_point, c2.principal_point)
        assert g1 == pytest.approx(f1, rel=1e-8)
        assert g2 == pytest.approx(f2, rel=1e-8)
        Fs = fundamental_from_pose(_random_pose(rng), c1, c1)
        assert shared_focal_from_fundamental(Fs, c1.principal_point) == pytest.approx(f1, rel=1e-8)
        g1, g2 = focal_from_fundamental(Fs, c1.principal_point, c1.principal_point)
        assert g1 == pytest.approx(f1, rel=1e-8) and g2 == pytest.approx(f1, rel=1e-8)


def test_noisy_wide_baseline_pair_within_one_percent(rng):
    # two views of orbit_scene's cube; camera 2 is tilted by 0.3 rad so that the optical axes do
    # not meet (cameras fixating one point are the classic degenerate case for focal from F)
    sc = orbit_scene(2, 800, arc_deg=70.0, radius=3.5, rng=rng)
    cam = sc.camera
    T1 = sc.cams_from_world[0]
    T2 = Rigid3(so3_exp(np.array([0.3, 0.0, 0.0]))) @ sc.cams_from_world[1]
    uv1, d1 = project_points(sc.X_world, cam, T1)
    uv2, d2 = project_points(sc.X_world, cam, T2)
    size = [cam.width - 1, cam.height - 1]
    ok = (d1 > 0) & (d2 > 0) & ((uv1 >= 0) & (uv1 <= size)).all(1) & ((uv2 >= 0) & (uv2 <= size)).all(1)
    assert ok.sum() > 400
    x1 = uv1[ok] + rng.normal(scale=0.5, size=(ok.sum(), 2))
    x2 = uv2[ok] + rng.normal(scale=0.5, size=(ok.sum(), 2))
    F, _ = refine_fundamental(fundamental_8pt(x1, x2), x1, x2)
    f_true = cam.focal_length_x
    f = shared_focal_from_fundamental(F, cam.principal_point)
    assert abs(f / f_true - 1.0) < 0.01
    f1, f2 = focal_from_fundamental(F, cam.principal_point, cam.principal_point)
    assert abs(f1 / f_true - 1.0) < 0.01 and abs(f2 / f_true - 1.0) < 0.01


def test_imaginary_solution_is_nan(rng):
    seen_nan = seen_real = 0
    for _ in range(200):
        U, _, Vt = np.linalg.svd(rng.normal(size=(3, 3)))
        F = U @ np.diag([1.0, rng.uniform(0.1, 1.0), 0.0]) @ Vt
        p1, p2 = rng.normal(size=2), rng.normal(size=2)
        f1, f2 = focal_from_fundamental(F, p1, p2)
        a = _bougnoux_reference(F, p1, p2)
        b = _bougnoux_reference(F.T, p2, p1)
        for f, sq in ((f1, a), (f2, b)):
            if sq > 0:
                assert f == pytest.approx(np.sqrt(sq), rel=1e-8)
                seen_real += 1
            else:
                assert np.isnan(f)
                seen_nan += 1
    assert seen_nan > 20 and seen_real > 20


def _trace_cost(G, s):
    """|2 G D G^T D G - tr(D G D G^T) G|^2 with D = diag(s, s, 1) (numpy reference); s scalar
    or (K,) array."""
    s_arr = np.atleast_1d(np.asarray(s, dtype=float))
    D = np.zeros((len(s_arr), 3, 3))
    D[:, 0, 0] = D[:, 1, 1] = s_arr
    D[:, 2, 2] = 1.0
    A = D @ G @ D @ G.T
    R = 2.0 * G @ D @ G.T @ D @ G - np.trace(A, axis1=1, axis2=2)[:, None, None] * G
    out = (R**2).sum(axis=(1, 2))
    return float(out[0]) if np.ndim(s) == 0 else out


def test_shared_focal_is_the_least_squares_minimiser_or_none(rng):
    grid = np.logspace(-7, 5, 8001)
    seen_none = seen_f = 0
    for _ in range(60):
        U, _, Vt = np.linalg.svd(rng.normal(size=(3, 3)))
        G = U @ np.diag([1.0, rng.uniform(0.2, 1.0), 0.0]) @ Vt
        f = shared_focal_from_fundamental(G, np.zeros(2), scale=1.0)
        costs = _trace_cost(G, grid)
        interior = (costs[1:-1] < costs[:-2]) & (costs[1:-1] < costs[2:])
        at_zero = _trace_cost(G, 0.0)
        if f is None:
            seen_none += 1
            assert costs.min() >= at_zero * (1 - 1e-9)  # the cost is lowest as f -> 0
        else:
            seen_f += 1
            cost_f = _trace_cost(G, f**2)
            assert cost_f < at_zero
            assert cost_f <= costs.min() * (1 + 1e-9) + 1e-15
            best = grid[1:-1][interior][np.argmin(costs[1:-1][interior])]
            assert f**2 == pytest.approx(best, rel=5e-3)
    assert seen_none > 0 and seen_f > 0


def test_bad_input():
    with pytest.raises(ValueError, match="F"):
        focal_from_fundamental(np.eye(2), [0, 0], [0, 0])
    with pytest.raises(ValueError, match="pp1"):
        focal_from_fundamental(np.eye(3), [0, 0, 1], [0, 0])
    with pytest.raises(ValueError, match="pp"):
        shared_focal_from_fundamental(np.eye(3), [np.nan, 0])
    with pytest.raises(ValueError, match="scale"):
        shared_focal_from_fundamental(np.eye(3), [0, 0], scale=-1.0)
