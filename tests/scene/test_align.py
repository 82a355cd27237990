"""Similarity alignment and camera error metrics."""

import numpy as np
import pytest

from geomvision import Rigid3
from geomvision.scene import camera_errors, umeyama
from geomvision.synthetic import orbit_scene


def test_umeyama_recovers_an_exact_similarity(rng):
    src = rng.normal(size=(30, 3))
    T = Rigid3.random(rng, t_scale=3.0)
    dst = 2.5 * (src @ T.R.T + T.t)
    s, T_est = umeyama(src, dst)
    assert s == pytest.approx(2.5, rel=1e-12)
    assert T_est.allclose(T, atol=1e-12)


def test_umeyama_rejects_reflections(rng):
    src = rng.normal(size=(30, 3))
    dst = src * [1, 1, -1]  # a mirror image: the best rotation is not the reflection
    _, T = umeyama(src, dst)
    assert np.linalg.det(T.R) == pytest.approx(1.0)


def _in_other_frame(gt, sim, scale, moved=None, offset=0.0):
    """The same cameras after x -> scale (R x + t), optionally with one centre moved by ``offset``."""
    est = []
    for k, T in enumerate(gt):
        Rn = T.R @ sim.R.T
        C = T.inverse().t + (np.array([offset, 0, 0]) if k == moved else 0)
        Cn = scale * (sim.R @ C + sim.t)
        est.append(Rigid3(Rn, -Rn @ Cn))
    return est


def test_camera_errors_of_a_similar_copy_are_zero(rng):
    gt = orbit_scene(rng=1).cams_from_world
    err = camera_errors(_in_other_frame(gt, Rigid3.random(rng), 0.3), gt)
    assert err.max_center_error < 1e-12 and err.mean_rotation_error_deg < 1e-10
    assert err.scale == pytest.approx(1 / 0.3, rel=1e-12)


def test_camera_errors_find_a_moved_camera(rng):
    gt = orbit_scene(rng=1).cams_from_world
    err = camera_errors(_in_other_frame(gt, Rigid3.random(rng), 0.3, moved=3, offset=0.05), gt)
    assert int(np.argmax(err.center_errors)) == 3
    # the alignment spreads the 0.05 offset: the moved camera keeps most of it
    assert 0.035 < err.max_center_error < 0.05
    assert err.mean_rotation_error_deg < 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        umeyama(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coincide"):
        umeyama(np.ones((4, 3)), np.zeros((4, 3)))
