"""Rigid3: composition, inverse, textbook frames, conversions and input checks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomvision import Rigid3, camera_center
from geomvision.geometry.rotation import random_rotation


def test_textbook_frame_with_axes_and_centre():
    # frame t: x_t = y_w, y_t = -x_w (so z_t = z_w), centre (3, 2, 0): world (4, 2, 0) is (0, -1, 0) in t
    axes_in_world = np.column_stack([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t_from_world = Rigid3.from_camera_axes_center(axes_in_world, [3.0, 2.0, 0.0])
    np.testing.assert_allclose(t_from_world.apply(np.array([4.0, 2.0, 0.0])), [0.0, -1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(camera_center(t_from_world), [3.0, 2.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(t_from_world.inverse().t, [3.0, 2.0, 0.0], atol=1e-15)


def test_composition_reads_right_to_left(rng):
    b_from_a, c_from_b = Rigid3.random(rng), Rigid3.random(rng)
    X_a = rng.normal(size=(20, 3))
    c_from_a = c_from_b @ b_from_a
    np.testing.assert_allclose(c_from_a.apply(X_a), c_from_b.apply(b_from_a.apply(X_a)), atol=1e-13)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_inverse_property(seed):
    T = Rigid3.random(seed, t_scale=10.0)
    I = T.inverse() @ T
    np.testing.assert_allclose(I.R, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(I.t, 0.0, atol=1e-13)


def test_matrix_conversions(rng):
    T = Rigid3.random(rng)
    M4 = T.matrix4x4
    np.testing.assert_allclose(M4[3], [0, 0, 0, 1])
    assert Rigid3.from_matrix(M4).allclose(T, atol=0)
    assert Rigid3.from_matrix(T.matrix3x4).allclose(T, atol=0)
    X = rng.normal(size=(5, 3))
    np.testing.assert_allclose((M4 @ np.c_[X, np.ones(5)].T).T[:, :3], T.apply(X), atol=1e-14)
    assert Rigid3.from_rotvec(T.rotvec, T.t).allclose(T, atol=1e-13)
    assert Rigid3.from_quat_wxyz(T.quat_wxyz, T.t).allclose(T, atol=1e-14)


def test_look_at_points_camera_z_at_target_with_up_upwards():
    T = Rigid3.look_at([0.0, -5.0, 0.0], [0.0, 0.0, 0.0], up=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(T.apply(np.zeros(3)), [0.0, 0.0, 5.0], atol=1e-14)
    # a point above the target appears above the image centre: negative camera y (y points down)
    assert T.apply(np.array([0.0, 0.0, 1.0]))[1] < 0
    # a point to the right (+x world, seen from -y looking at +y) has positive camera x
    assert T.apply(np.array([1.0, 0.0, 0.0]))[0] > 0


def test_bad_input():
    with pytest.raises(ValueError, match="R is not a rotation"):
        Rigid3(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="R is not a rotation"):
        Rigid3(2 * np.eye(3))
    with pytest.raises(ValueError, match="t must have shape"):
        Rigid3(np.eye(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        Rigid3(np.eye(3), [np.nan, 0, 0])
    with pytest.raises(ValueError, match="M must have shape"):
        Rigid3.from_matrix(np.eye(3))
    with pytest.raises(ValueError, match="X_a must have shape"):
        Rigid3().apply(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="R_axes_in_world"):
        Rigid3.from_camera_axes_center(random_rotation(0) * 2, np.zeros(3))
