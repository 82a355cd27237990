"""Rotations: exp/log accuracy (incl. near 0 and pi), quaternion conventions against scipy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from geomvision.geometry.rotation import (
    hat,
    is_rotation,
    project_to_rotation,
    quat_wxyz_from_rotmat,
    quat_xyzw_from_rotmat,
    random_rotation,
    rotation_angle_deg,
    rotation_error_deg,
    rotmat_from_quat_wxyz,
    rotmat_from_quat_xyzw,
    so3_exp,
    so3_log,
    vee,
)


def _unit(rng, n):
    a = rng.normal(size=(n, 3))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_hat_is_cross_product(rng):
    a, b = rng.normal(size=(2, 50, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", hat(a), b), np.cross(a, b), atol=1e-14)
    np.testing.assert_allclose(vee(hat(a)), a, atol=0)


def test_exp_matches_scipy(rng):
    w = rng.normal(size=(200, 3)) * 2.0
    np.testing.assert_allclose(so3_exp(w), Rotation.from_rotvec(w).as_matrix(), atol=1e-14)


def test_textbook_rotation_about_z():
    R = so3_exp(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("log10_angle", [-12, -8, -5, -3, -1, 0])
def test_log_inverts_exp_small_angles(rng, log10_angle):
    w = _unit(rng, 100) * 10.0**log10_angle
    np.testing.assert_allclose(so3_log(so3_exp(w)), w, rtol=1e-10, atol=1e-18)


@pytest.mark.parametrize("gap", [1e-12, 1e-9, 1e-6, 1e-3, 0.05, 0.2])
def test_log_inverts_exp_near_pi(rng, gap):
    w = _unit(rng, 100) * (np.pi - gap)
    np.testing.assert_allclose(so3_log(so3_exp(w)), w, atol=1e-9)


def test_log_at_exactly_pi_gives_a_valid_rotation_vector(rng):
    axes = _unit(rng, 20)
    R = so3_exp(axes * np.pi)
    w = so3_log(R)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.pi, atol=1e-12)
    np.testing.assert_allclose(so3_exp(w), R, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3))
def test_exp_log_round_trip_property(w):
    w = np.array(w)
    if np.linalg.norm(w) >= np.pi:
        w = w / np.linalg.norm(w) * (np.pi - 1e-3)
    R = so3_exp(w)
    assert is_rotation(R, atol=1e-12)
    np.testing.assert_allclose(so3_log(R), w, atol=1e-10)


def test_quaternion_orders_match_scipy(rng):
    R = random_rotation(rng, 300)
    q_scipy = Rotation.from_matrix(R).as_quat()  # xyzw
    q_scipy *= np.sign(q_scipy[:, 3:])
    np.testing.assert_allclose(quat_xyzw_from_rotmat(R), q_scipy, atol=1e-14)
    np.testing.assert_allclose(quat_wxyz_from_rotmat(R), np.roll(q_scipy, 1, axis=1), atol=1e-14)
    np.testing.assert_allclose(rotmat_from_quat_xyzw(q_scipy), R, atol=1e-14)
    np.testing.assert_allclose(rotmat_from_quat_wxyz(np.roll(q_scipy, 1, axis=1)), R, atol=1e-14)


def test_quaternion_of_half_turns_is_accurate():
    # 180 degree rotations stress the w ~ 0 branch of Shepperd's method
    for axis in np.eye(3):
        R = so3_exp(axis * np.pi)
        q = quat_wxyz_from_rotmat(R)
        np.testing.assert_allclose(np.abs(q), np.r_[0.0, np.abs(axis)], atol=1e-15)
        np.testing.assert_allclose(rotmat_from_quat_wxyz(q), R, atol=1e-15)


def test_textbook_quaternion():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45)
    q = quat_wxyz_from_rotmat(so3_exp([0, 0, np.pi / 2]))
    np.testing.assert_allclose(q, [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-15)


def test_random_rotation_is_seeded_and_uniform():
    R1 = random_rotation(7, 4000)
    R2 = random_rotation(np.random.default_rng(7), 4000)
    np.testing.assert_array_equal(R1, R2)
    assert is_rotation(R1)
    # Haar measure: E[trace] = 0 and the rotation angle has density (1 - cos a) / pi, mean pi/2 + 2/pi
    assert abs(np.trace(R1, axis1=1, axis2=2).mean()) < 0.05
    mean_angle = np.radians(rotation_angle_deg(R1)).mean()
    assert abs(mean_angle - (np.pi / 2 + 2 / np.pi)) < 0.03


def test_rotation_error_and_projection(rng):
    R = random_rotation(rng)
    dR = so3_exp(np.array([0.0, 0.0, np.radians(3.0)]))
    assert rotation_error_deg(R, R @ dR) == pytest.approx(3.0, abs=1e-12)
    noisy = R + 1e-3 * rng.normal(size=(3, 3))
    P = project_to_rotation(noisy)
    assert is_rotation(P, atol=1e-12)
    assert rotation_error_deg(P, R) < 0.2
    assert not is_rotation(np.diag([1.0, 1.0, -1.0]))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="rotvec"):
        so3_exp(np.zeros(4))
    with pytest.raises(ValueError, match="R"):
        so3_log(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="quat_wxyz"):
        rotmat_from_quat_wxyz(np.zeros(4))


def test_numba_kernel_matches_numpy(rng):
    from geomvision.geometry._rotation_kernels import so3_exp as so3_exp_nb

    for scale in (1e-9, 1e-5, 1e-3, 0.5, 3.0):
        for w in rng.normal(size=(20, 3)) * scale:
            np.testing.assert_allclose(so3_exp_nb(*w), so3_exp(w), atol=1e-15)
