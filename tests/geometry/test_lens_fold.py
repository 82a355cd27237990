"""Unprojection past the fold of a lens model is NaN, never a mirrored ray; index arrays of the
triangulation functions refuse non-integer values."""

from __future__ import annotations

import numpy as np
import pytest

import geomvision as gv
from geomvision.geometry.triangulation import triangulate_multiview


def test_pixels_past_the_radial_fold_have_no_ray():
    """SIMPLE_RADIAL f=500, k=-0.3: r_d = r (1 - 0.3 r^2) peaks at r_d = 0.703 (r^2 = 1/0.9); the
    image corners (r_d = 0.80) lie beyond it. Newton's method used to return the far branch, a
    ray pointing to the opposite corner."""
    cam = gv.Camera("SIMPLE_RADIAL", width=640, height=480, params=[500.0, 320.0, 240.0, -0.3])
    corners = np.array([[639.0, 479.0], [0.0, 0.0], [639.0, 0.0], [0.0, 479.0]])
    _, d = gv.rays_from_pixels(corners, cam, gv.Rigid3())
    assert np.isnan(d).all()
    # inside the fold every pixel has its ray, and it projects back to the pixel
    rng = np.random.default_rng(0)
    uv = np.array([320.0, 240.0]) + rng.uniform(-1, 1, size=(200, 2)) * 500 * 0.69 / np.sqrt(2)
    _, d = gv.rays_from_pixels(uv, cam, gv.Rigid3())
    assert np.isfinite(d).all()
    back, _ = gv.project_points(d, cam, gv.Rigid3())
    np.testing.assert_allclose(back, uv, atol=1e-6)
    # and always in the same direction from the centre as the pixel
    assert np.all(np.einsum("ij,ij->i", d[:, :2], uv - [320.0, 240.0]) > 0)


@pytest.mark.parametrize("model, params", [
    ("RADIAL", [500.0, 320.0, 240.0, -0.2, -0.05]),
    ("OPENCV", [500.0, 500.0, 320.0, 240.0, -0.35, 0.0, 0.001, -0.001]),
])
def test_no_mirrored_rays_anywhere_in_the_image(model, params):
    cam = gv.Camera(model, width=640, height=480, params=params)
    u, v = np.meshgrid(np.arange(0, 640, 16.0), np.arange(0, 480, 16.0))
    uv = np.stack([u.ravel(), v.ravel()], 1)
    _, d = gv.rays_from_pixels(uv, cam, gv.Rigid3())
    ok = np.isfinite(d).all(axis=1)
    assert ok.any() and not ok.all()  # the corners are past the fold
    centre = np.array([params[-6] if model == "OPENCV" else params[1], params[-5] if model == "OPENCV" else params[2]])
    assert np.all(np.einsum("ij,ij->i", d[ok, :2], uv[ok] - centre) >= -1e-12)
    back, _ = gv.project_points(d[ok], cam, gv.Rigid3())
    np.testing.assert_allclose(back, uv[ok], atol=1e-5)


def test_triangulation_refuses_fractional_image_indices():
    poses = [gv.Rigid3(), gv.Rigid3(t=[-1.0, 0.0, 0.0])]
    xy = np.array([[0.0, 0.0], [-0.2, 0.0]])
    X, n = triangulate_multiview(poses, np.array([0.0, 1.0]), np.array([0, 0]), xy)  # whole floats are fine
    np.testing.assert_allclose(X[0], [0.0, 0.0, 5.0], atol=1e-9)
    with pytest.raises(ValueError, match="obs_img must hold integer indices, got 0.7"):
        triangulate_multiview(poses, np.array([0.7, 1.0]), np.array([0, 0]), xy)
    with pytest.raises(ValueError, match="obs_pt must hold integer indices"):
        triangulate_multiview(poses, np.array([0, 1]), np.array([True, True]), xy)
