"""MapperState: its invariants are kept by its own methods (the mapper writes nothing directly)."""

import numpy as np
import pytest

from geomvision.geometry.camera import Camera
from geomvision.geometry.rigid import Rigid3
from geomvision.sfm.state import ImageData, MapperState
from geomvision.sfm.tracks import build_tracks


def _state(n_images=3, n_kp=4):
    """n_images images seeing n_kp points each: keypoint k of every image is track k."""
    rng = np.random.default_rng(0)
    kps = [rng.uniform(0, 100, (n_kp, 2)) for _ in range(n_images)]
    matches = {(i, j): np.stack([np.arange(n_kp)] * 2, axis=1) for i in range(n_images) for j in range(i + 1, n_images)}
    tracks, _ = build_tracks([n_kp] * n_images, matches)
    data = ImageData([f"{i}" for i in range(n_images)], kps, [np.zeros((n_kp, 3), np.uint8)] * n_images,
                     np.tile([100, 100], (n_images, 1)))
    cam = Camera.from_focal(100.0, 100, 100, "PINHOLE")
    return MapperState(data, [cam], np.zeros(n_images, np.int64), np.array([True]), tracks)


def _obs(s, img, trk):
    return int(np.flatnonzero((s.obs_img == img) & (s.obs_track == trk))[0])


def test_register_set_points_and_activate_keep_the_invariants():
    s = _state()
    s.check_invariants()
    s.register(0, Rigid3(), 0)
    s.register(1, Rigid3(np.eye(3), [1.0, 0, 0]), 0)
    s.set_points([0, 2], np.array([[0, 0, 5.0], [1, 1, 6.0]]), 0)
    s.activate_observations([_obs(s, 0, 0), _obs(s, 1, 0), _obs(s, 0, 2)])
    s.check_invariants()
    assert s.registered[:2].all() and list(s.image_model) == [0, 0, -1]
    assert list(s.point_model) == [0, -1, 0, -1] and list(s.point_valid) == [True, False, True, False]
    np.testing.assert_array_equal(s.active_count(), [2, 0, 1, 0])
    np.testing.assert_array_equal(s.pose(1).t, [1.0, 0, 0])


def test_activation_refuses_what_would_break_an_invariant():
    s = _state()
    s.register(0, Rigid3(), 0)
    s.register(1, Rigid3(), 1)
    s.set_points([0], np.array([[0, 0, 5.0]]), 0)
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 0, 1)])  # track 1 has no point
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 2, 0)])  # image 2 is not registered
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 1, 0)])  # image 1 belongs to model 1, the point to model 0
    with pytest.raises(ValueError, match="already have a point"):
        s.set_points([0], np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="registered in model 1"):
        s.register(1, Rigid3(), 0)
    assert not s.obs_active.any()
    s.check_invariants()


def test_invalidation_and_deregistration_deactivate_their_observations():
    s = _state()
    for i in range(3):
        s.register(i, Rigid3(), 0)
    s.set_points([0, 1, 2, 3], np.tile([0, 0, 5.0], (4, 1)), 0)
    s.activate_observations(np.arange(len(s.obs_img)))
    s.invalidate_points([1])
    s.check_invariants()
    assert not s.obs_active[s.obs_track == 1].any() and s.point_model[1] == -1
    s.deregister([2])
    s.check_invariants()
    assert not s.obs_active[s.obs_img == 2].any() and s.image_model[2] == -1 and not s.registered[2]
    np.testing.assert_array_equal(s.active_count(), [2, 0, 2, 2])
    # points left with one active observation are dropped
    s.deactivate_observations([_obs(s, 0, 3)])
    assert s.drop_weak_points(2) == 1 and not s.point_valid[3]
    s.check_invariants()
