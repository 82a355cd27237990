"""MapperState.observations_of_tracks: the observations of some tracks without scanning all of
them (issue 16), kept right as the state grows and as tracks are merged."""

import numpy as np

from geomvision.geometry.rigid import Rigid3
from geomvision.sfm.state import MapperState
from geomvision.synthetic import demo_camera


def _brute(s, tracks):
    return np.concatenate([np.flatnonzero(s.obs_track == t) for t in tracks]) if len(tracks) else np.zeros(0, int)


def _check(s, rng):
    for _ in range(20):
        tracks = rng.permutation(s.num_tracks)[: rng.integers(0, s.num_tracks + 1)]
        np.testing.assert_array_equal(s.observations_of_tracks(tracks), _brute(s, tracks))


def test_observations_of_tracks_follow_growth_and_merges():
    rng = np.random.default_rng(3)
    s = MapperState.empty()
    c = s.add_camera(demo_camera(320, 240), known=True)
    kp = rng.uniform(0, 200, (30, 2))
    imgs = [s.add_image(f"{i}", kp + i, c) for i in range(4)]
    # tracks 0..9: keypoint k of images 0 and 1
    s.add_tracks(np.arange(0, 21, 2), np.tile(imgs[:2], 10), np.repeat(np.arange(10), 2))
    _check(s, rng)
    assert len(s.observations_of_tracks([])) == 0
    # observations appended to old tracks come last in their group, in index order
    s.add_observations([3, 0, 3], [imgs[2], imgs[2], imgs[3]], [3, 0, 4])
    np.testing.assert_array_equal(s.observations_of_tracks([3]), [6, 7, 20, 22])
    _check(s, rng)
    s.add_tracks([0, 2], [imgs[2], imgs[3]], [20, 20])  # a new track 10
    _check(s, rng)
    # merging moves the observations of track 10 (images 2, 3) to track 1 (images 0, 1): the
    # number of observations stays, and the index follows
    for i in imgs:
        s.register(i, Rigid3(np.eye(3), [0.1 * i, 0.0, 0.0]), 0)
    s.set_points([1, 10], np.array([[0.0, 0.0, 5.0], [0.0, 0.1, 5.0]]), 0)
    s.activate_observations(_brute(s, [1, 10]))
    assert s.merge_tracks(np.array([1]), np.array([10])) == 2
    np.testing.assert_array_equal(s.observations_of_tracks([1, 10]), [2, 3, 23, 24])
    _check(s, rng)
    s.check_invariants()
