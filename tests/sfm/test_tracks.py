"""Track building: connected components of matches, refusing tracks that see one image twice."""

import numpy as np
import pytest

from geomvision.sfm.tracks import build_tracks


def _as_sets(tracks):
    return {
        frozenset(zip(*map(lambda a: a.tolist(), tracks.observations(t)))) for t in range(tracks.num_tracks)
    }


def test_chains_merge_into_one_track():
    # image0 kp1 <-> image1 kp2 <-> image2 kp0, and a separate pair
    m = {(0, 1): np.array([[1, 2], [0, 0]]), (1, 2): np.array([[2, 0]])}
    tracks, refused = build_tracks([3, 3, 3], m)
    assert refused == 0
    assert _as_sets(tracks) == {frozenset({(0, 1), (1, 2), (2, 0)}), frozenset({(0, 0), (1, 0)})}
    assert tracks.tracks_of_image(2)[0] == tracks.tracks_of_image(0)[1]
    assert tracks.tracks_of_image(2)[1] == -1


def test_merge_that_puts_one_image_twice_is_refused_at_the_weakest_link():
    # A0-B0 (strong pair), B0-C0 (strong), C0-A1 (weak pair): A0 and A1 would share a track
    m = {(0, 1): np.array([[0, 0]]), (1, 2): np.array([[0, 0]]), (0, 2): np.array([[1, 0]])}
    w = {(0, 1): 100.0, (1, 2): 90.0, (0, 2): 10.0}
    tracks, refused = build_tracks([2, 1, 1], m, w)
    assert refused == 1
    assert _as_sets(tracks) == {frozenset({(0, 0), (1, 0), (2, 0)})}
    for t in range(tracks.num_tracks):
        imgs, _ = tracks.observations(t)
        assert len(np.unique(imgs)) == len(imgs)


def test_random_matches_never_give_duplicate_images(rng):
    n_img, n_kp = 6, 200
    m = {}
    for i in range(n_img):
        for j in range(i + 1, n_img):
            m[(i, j)] = np.stack([rng.integers(0, n_kp, 150), rng.integers(0, n_kp, 150)], axis=1)
    tracks, refused = build_tracks([n_kp] * n_img, m)
    assert refused > 0
    assert tracks.lengths().min() >= 2
    for t in range(tracks.num_tracks):
        imgs, kps = tracks.observations(t)
        assert len(np.unique(imgs)) == len(imgs)
        np.testing.assert_array_equal(tracks.track_of[tracks.offsets[imgs] + kps], t)
    # every match joins its two keypoints into one track unless its merge was refused
    n_joined = sum(
        int(np.sum(tracks.track_of[tracks.offsets[i] + mm[:, 0]] == tracks.track_of[tracks.offsets[j] + mm[:, 1]]))
        for (i, j), mm in m.items()
    )
    assert n_joined + refused == sum(len(v) for v in m.values())


def test_deterministic_and_validated():
    m = {(0, 1): np.array([[0, 0], [1, 1]])}
    a, _ = build_tracks([2, 2], m)
    b, _ = build_tracks([2, 2], m)
    np.testing.assert_array_equal(a.track_of, b.track_of)
    with pytest.raises(ValueError, match="out of range"):
        build_tracks([2, 2], {(0, 1): np.array([[0, 5]])})
    with pytest.raises(ValueError, match="invalid pair"):
        build_tracks([2, 2], {(0, 0): np.array([[0, 1]])})
