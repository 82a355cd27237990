"""The rendered courtyard of repeated windows: exact cameras inside it, facades of one window tile."""

import numpy as np
import pytest

from geomvision.synthetic import courtyard_scene, courtyard_walk, render_courtyard, render_depth
from geomvision.synthetic.courtyard import FACADE_TEXELS_PER_M, facade_texture


def test_walk_is_closed_inside_the_courtyard_and_looks_at_the_facades():
    poses = courtyard_walk(19)
    C = np.array([-T.R.T @ T.t for T in poses])
    assert np.all(np.abs(C[:, 0]) < 9.0 - 2.9) and np.all(np.abs(C[:, 1]) < 6.5 - 2.9)
    steps = np.linalg.norm(np.diff(np.r_[C, C[:1]], axis=0), axis=1)
    assert steps.max() < 2.0 * steps.min()  # no gap: the last view leads back to the first
    views = render_courtyard(6, width=160, height=120, supersample=1)
    for image, T in zip(views.images, views.cams_from_world):
        depth, _ = render_depth(courtyard_scene(), views.camera, T)
        centre = depth[60, 80]
        # the optical axis meets a facade (not the sky) within the courtyard's diagonal
        assert 3.0 < centre < np.hypot(18.0, 13.0)
        assert image.std() > 20


def test_facades_repeat_one_window_tile():
    tex = facade_texture(18.0, 10.0, np.random.default_rng(0), unique_fraction=0.15).image
    tw, th = int(1.2 * FACADE_TEXELS_PER_M), int(1.6 * FACADE_TEXELS_PER_M)
    # the windows of the bottom row: equal tiles, but for the few made unique
    v = int(0.55 * 10.0 / 3 * FACADE_TEXELS_PER_M) - th // 2
    n_cols = int((18.0 - 1.0) // 2.6)
    x0 = 0.5 * (18.0 - (n_cols - 1) * 2.6)
    tiles = [tex[v:v + th, int((x0 + c * 2.6) * FACADE_TEXELS_PER_M) - tw // 2:][:, :tw] for c in range(n_cols)]
    same = [np.array_equal(t, tiles[0]) for t in tiles]
    assert sum(same) >= 0.6 * n_cols
    with pytest.raises(ValueError, match="margin_m"):
        courtyard_walk(5, margin_m=7.0)


def test_walk_facing_the_walls_looks_outwards_at_the_nearest_facade():
    poses = courtyard_walk(12, size_m=(40.0, 30.0), margin_m=12.0, facing="walls")
    C = np.array([-T.R.T @ T.t for T in poses])
    axis = np.array([T.R[2] for T in poses])  # optical axes in the world
    assert np.all(np.sum(axis[:, :2] * C[:, :2], axis=1) > 0)  # outwards, away from the centre
    # the optical axis meets the wall it faces within 20 m (the across walk looks 25-35 m away)
    half = np.array([20.0, 15.0])
    hit = np.min((half - np.abs(C[:, :2])) / np.maximum(np.abs(axis[:, :2]), 1e-9), axis=1)
    assert np.all(hit < 20.0)
    with pytest.raises(ValueError, match="facing"):
        courtyard_walk(5, facing="up")
