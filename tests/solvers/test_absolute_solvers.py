"""P3P and EPnP against exact random poses."""

from __future__ import annotations

import numpy as np
import pytest
from solver_cases import absolute_case

from geomvision.geometry import Rigid3
from geomvision.solvers import epnp, p3p


def _pose_error(A: Rigid3, B: Rigid3) -> float:
    return float(np.abs(A.R - B.R).max() + np.abs(A.t - B.t).max())


def _ray_error(T: Rigid3, rays: np.ndarray, X: np.ndarray) -> float:
    """Max angle-like error between the rays and the directions of the transformed points;
    2 for a point behind the camera."""
    Xc = T.apply(X)
    u = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    v = Xc / np.linalg.norm(Xc, axis=1, keepdims=True)
    return float(np.linalg.norm(u - v, axis=1).max())


def test_p3p_recovers_ground_truth_and_all_solutions_are_exact(rng):
    counts = np.zeros(5, dtype=int)
    for _ in range(500):
        T, rays, X = absolute_case(rng, 3)
        sols = p3p(rays, X)
        counts[len(sols)] += 1
        assert 1 <= len(sols) <= 4
        assert min(_pose_error(S, T) for S in sols) < 1e-8
        for S in sols:
            assert np.isclose(np.linalg.det(S.R), 1.0, atol=1e-10)
            assert np.allclose(S.R.T @ S.R, np.eye(3), atol=1e-10)
            assert _ray_error(S, rays, X) < 1e-9  # every real solution reprojects the 3 points
    assert counts[2] > 0 and counts[4] > 0


def test_p3p_wide_angle_rays(rng):
    # points all around the camera (rays beyond 90 degrees from the optical axis)
    for _ in range(100):
        T = Rigid3.random(rng)
        d = rng.normal(size=(3, 3))
        Xc = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(1.0, 5.0, (3, 1))
        sols = p3p(Xc, T.inverse().apply(Xc))
        assert min(_pose_error(S, T) for S in sols) < 1e-8


def test_p3p_rotations_are_rotations_on_ill_conditioned_triangles(rng):
    """Issue 15: a sample an SfM model of a rendered walls walk gave P3P (two points 0.023 apart,
    the third 60,633 away, out on a wrong model's ray) came back with |R R^T - I| = 1.2e-3; LO
    kept it (its retractions multiply by exact rotations) and the pose reached bundle adjustment,
    which refuses such an R. Every rotation returned must be one."""
    rays = np.array([[-0.2595723615373884, 0.27163077218191967, 1.0],
                     [-0.27701171875, 0.2753490339006696, 1.0],
                     [-0.08434246579149633, 0.17760984303903707, 1.0]])
    X = np.array([[-324.4766592307556, -144.20069329004832, -820.5509266514895],
                  [-324.47205474899283, -144.2019796392572, -820.5734273662097],
                  [-50602.19931618644, 5807.1330863495, 32542.557684551582]])
    cases = [(rays, X)]
    for _ in range(300):  # the same kind of triangle at random: a close pair and a far point
        X = rng.normal(size=(3, 3)) * 10.0
        X[1] = X[0] + rng.normal(size=3) * 10.0 ** rng.uniform(-4, -1)
        X[2] = rng.normal(size=3) * 10.0 ** rng.uniform(3, 5)
        r = rng.normal(size=(3, 3)) * 0.3 + [0.0, 0.0, 1.0]
        cases.append((r, X))
    found = 0
    for r, X in cases:
        for S in p3p(r, X):
            found += 1
            assert np.abs(S.R @ S.R.T - np.eye(3)).max() < 1e-11
            assert np.linalg.det(S.R) > 0.0
    assert found > 100  # the triangles do give poses


def test_p3p_degenerate(rng):
    _T, rays, X = absolute_case(rng, 3)
    col = X.copy()
    col[2] = 0.25 * col[0] + 0.75 * col[1]
    assert p3p(rays, col) == []
    same = X.copy()
    same[1] = same[0]
    assert p3p(rays, same) == []


@pytest.mark.parametrize("n", [4, 5, 6, 10, 100])
@pytest.mark.parametrize("planar", [False, True])
def test_epnp_recovers_ground_truth(rng, n, planar):
    for _ in range(40):
        T, rays, X = absolute_case(rng, n, planar=planar)
        S = epnp(rays, X)
        assert S is not None
        assert _pose_error(S, T) < 1e-8
        assert np.isclose(np.linalg.det(S.R), 1.0)


def test_epnp_noisy_is_close(rng):
    T, rays, X = absolute_case(rng, 200)
    noisy = rays / rays[:, 2:] + rng.normal(scale=1e-3, size=(200, 3)) * [1, 1, 0]  # ~0.5 px at f=500
    S = epnp(noisy, X)
    ang = np.degrees(np.arccos(np.clip((np.trace(S.R.T @ T.R) - 1) / 2, -1, 1)))
    assert 0.0 < ang < 0.2
    assert np.linalg.norm(S.inverse().t - T.inverse().t) < 0.02


def test_epnp_degenerate(rng):
    _T, rays, X = absolute_case(rng, 10)
    line = X[0] + np.outer(np.linspace(0, 1, 10), X[1] - X[0])
    assert epnp(rays, line) is None
    assert epnp(rays, np.tile(X[0], (10, 1))) is None


def test_bad_input(rng):
    _T, rays, X = absolute_case(rng, 6)
    with pytest.raises(ValueError, match="rays"):
        p3p(rays[:2], X[:2])
    with pytest.raises(ValueError, match="X_world"):
        p3p(rays[:3], X[:3, :2])
    with pytest.raises(ValueError, match="rays"):
        epnp(rays[:3], X[:3])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_world"):
        epnp(rays, bad)
    zero = rays.copy()
    zero[1] = 0.0
    with pytest.raises(ValueError, match="rays"):
        epnp(zero, X)
