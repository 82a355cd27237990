"""Sim3 (x_b = s R x_a + t) and Rigid2: composition, inverse, mixing with Rigid3, checks."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rigid2 import Rigid2, wrap_angle
from geomvision.geometry.rotation import random_rotation
from geomvision.geometry.sim3 import Sim3


def _sim3(rng) -> Sim3:
    return Sim3(float(np.exp(rng.normal())), random_rotation(rng), rng.normal(size=3))


def test_sim3_applies_composes_and_inverts(rng):
    c_from_b, b_from_a = _sim3(rng), _sim3(rng)
    X_a = rng.normal(size=(10, 3))
    np.testing.assert_allclose(b_from_a.apply(X_a), b_from_a.scale * X_a @ b_from_a.R.T + b_from_a.t)
    np.testing.assert_allclose((c_from_b @ b_from_a).apply(X_a), c_from_b.apply(b_from_a.apply(X_a)), atol=1e-12)
    assert (b_from_a.inverse() @ b_from_a).allclose(Sim3(), atol=1e-12)
    np.testing.assert_allclose(b_from_a.inverse().apply(b_from_a.apply(X_a)), X_a, atol=1e-12)
    M = b_from_a.matrix4x4
    assert Sim3.from_matrix(M).allclose(b_from_a, atol=1e-12)


def test_sim3_mixes_with_rigid3(rng):
    S, T = _sim3(rng), Rigid3.random(rng)
    X = rng.normal(size=(5, 3))
    left, right = S @ T, T @ S
    assert isinstance(left, Sim3) and isinstance(right, Sim3)
    np.testing.assert_allclose(left.apply(X), S.apply(T.apply(X)), atol=1e-12)
    np.testing.assert_allclose(right.apply(X), T.apply(S.apply(X)), atol=1e-12)
    assert Sim3.from_rigid(T).rigid().allclose(T)


@pytest.mark.parametrize("kwargs, match", [({"scale": 0.0}, "scale must be finite and positive"),
                                           ({"scale": float("nan")}, "scale must be finite and positive"),
                                           ({"R": np.eye(3) * 2}, "not a rotation")])
def test_sim3_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sim3(**kwargs)


def test_rigid2_composes_inverts_and_wraps(rng):
    b_from_a = Rigid2(3.0, [1.0, -2.0])
    c_from_b = Rigid2(0.5, [0.3, 0.1])
    X = rng.normal(size=(6, 2))
    np.testing.assert_allclose((c_from_b @ b_from_a).apply(X), c_from_b.apply(b_from_a.apply(X)), atol=1e-12)
    assert (c_from_b @ b_from_a).theta == pytest.approx(3.5 - 2 * np.pi)  # wrapped to (-pi, pi]
    assert (b_from_a.inverse() @ b_from_a).allclose(Rigid2(), atol=1e-12)
    assert wrap_angle(np.pi) == np.pi and wrap_angle(-np.pi) == np.pi
    assert wrap_angle(-0.017453) == -0.017453  # in range: unchanged bit for bit
    with pytest.raises(ValueError, match="theta must be finite"):
        Rigid2(float("inf"))
