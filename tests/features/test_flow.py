"""Sparse optical flow (features/flow.py): sub-pixel accuracy on exactly known motions, the
round-trip check drops points whose neighbourhood changed, bad input is refused."""

import cv2
import numpy as np
import pytest

from geomvision.features.flow import grey_u8, track_points


def _texture(h=240, w=320, seed=0, A=None):
    """An analytic texture (random plane waves, wavelengths 6-40 px) sampled at each pixel, moved
    by the affine map x' = A[:, :2] x + A[:, 2] (exact: no resampling of another image)."""
    rng = np.random.default_rng(seed)
    k = 2 * np.pi / rng.uniform(6, 40, 48)
    th = rng.uniform(0, np.pi, 48)
    kv = np.column_stack([k * np.cos(th), k * np.sin(th)])
    ph, amp = rng.uniform(0, 2 * np.pi, 48), rng.uniform(0.5, 1.0, 48)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = np.stack([u.ravel(), v.ravel()], 1)
    if A is not None:  # the pixel x' of the moved image shows the texture at A^-1 (x' - b)
        x = (x - A[:, 2]) @ np.linalg.inv(A[:, :2]).T
    img = np.sin(x @ kv.T + ph) @ amp
    return np.clip(128 + 110 * img.reshape(h, w) / (3 * np.sqrt(0.5 * np.sum(amp**2))), 0, 255).round().astype(np.uint8)


def _warp(seed, A):
    return _texture(seed=seed, A=A)


def _grid(h, w, margin=40, step=20):
    u, v = np.meshgrid(np.arange(margin, w - margin, step), np.arange(margin, h - margin, step))
    return np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)


@pytest.mark.parametrize("A", [
    np.array([[1.0, 0.0, 3.37], [0.0, 1.0, -2.71]]),  # sub-pixel translation
    np.array([[1.01, -0.02, 6.4], [0.02, 1.01, 1.3]]),  # small rotation and zoom
])
def test_points_follow_a_known_motion_to_a_twentieth_of_a_pixel(A):
    prev = _texture()
    cur = _warp(0, A)
    p0 = _grid(*prev.shape)
    truth = p0 @ A[:, :2].T + A[:, 2]
    uv, ok = track_points(prev, cur, p0)
    assert ok.mean() > 0.95
    err = np.linalg.norm(uv[ok] - truth[ok], axis=1)
    assert np.median(err) < 0.05 and err.max() < 0.15


def test_a_guess_reaches_a_motion_beyond_the_pyramid():
    prev = _texture(seed=1)
    A = np.array([[1.0, 0.0, 70.0], [0.0, 1.0, 0.0]])  # 70 px: beyond 3 levels of a 21 px window
    cur = _warp(1, A)
    p0 = _grid(*prev.shape, margin=20)
    p0 = p0[p0[:, 0] < prev.shape[1] - 90]
    truth = p0 + A[:, 2]
    uv, ok = track_points(prev, cur, p0, truth + 1.5)  # a prediction 2 px off
    assert ok.mean() > 0.95
    assert np.abs(uv[ok] - truth[ok]).max() < 0.2
    # without the guess most of them end wrong or are dropped; none of those kept is far off
    uv0, ok0 = track_points(prev, cur, p0)
    assert (ok0 & (np.linalg.norm(uv0 - truth, axis=1) < 0.5)).mean() < 0.5


def test_the_round_trip_check_drops_points_whose_patch_changed():
    prev = _texture(seed=2)
    A = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    cur = _warp(2, A)
    cur[:, 160:] = _texture(seed=3)[:, 160:]  # the right half is another scene now
    p0 = _grid(*prev.shape)
    truth = p0 + A[:, 2]
    uv, ok = track_points(prev, cur, p0)
    changed = truth[:, 0] > 160 + 12  # the window lies wholly in the replaced half
    kept_wrong = ok & changed & (np.linalg.norm(uv - truth, axis=1) > 0.5)
    assert ok[~changed & (truth[:, 0] < 160 - 12)].mean() > 0.95
    assert kept_wrong.sum() <= 0.05 * changed.sum()


def test_points_that_leave_the_image_are_not_kept():
    prev = _texture(seed=4)
    A = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, 0.0]])
    cur = _warp(4, A)
    p0 = np.array([[10.0, 120.0], [200.0, 120.0]])
    uv, ok = track_points(prev, cur, p0, p0 + A[:, 2])
    assert not ok[0] and ok[1]
    assert np.abs(uv[1] - (p0[1] + A[:, 2])).max() < 0.1


def test_grey_and_input_checks():
    rgb = np.dstack([_texture(seed=5)] * 3)
    g = grey_u8(rgb)
    assert g.shape == rgb.shape[:2] and g.dtype == np.uint8
    assert np.array_equal(g, rgb[..., 0])
    uv, ok = track_points(g, g, np.zeros((0, 2)))
    assert uv.shape == (0, 2) and ok.shape == (0,)
    with pytest.raises(ValueError, match="grey_u8"):
        track_points(rgb, rgb, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="one size"):
        track_points(g, g[:100], np.zeros((1, 2)))
