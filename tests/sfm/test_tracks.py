"""Track building: connected components of matches, refusing tracks that see one image twice."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomvision.sfm.tracks import TrackBuilder, build_tracks


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


def _batch_order(matches):
    """The pairs in build_tracks's merge order: most matches first, ties by pair."""
    keys = sorted(matches)
    return sorted(keys, key=lambda k: (-len(matches[k]), keys.index(k)))


def _random_matches(rng, n_img, n_kp, n_match):
    m = {}
    for i in range(n_img):
        for j in range(i + 1, n_img):
            k = int(rng.integers(0, n_match + 1))
            m[(i, j)] = np.stack([rng.integers(0, n_kp, k), rng.integers(0, n_kp, k)], axis=1)
    return m


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_img=st.integers(2, 6), n_kp=st.integers(1, 30), n_match=st.integers(0, 40))
def test_incremental_builder_equals_the_batch_one_on_random_matches(seed, n_img, n_kp, n_match):
    # random matches refuse many merges: the same order gives exactly the same tracks
    rng = np.random.default_rng(seed)
    num_kp = rng.integers(n_kp, n_kp + 5, n_img)
    m = _random_matches(rng, n_img, n_kp, n_match)
    batch, refused = build_tracks(num_kp, m)
    builder = TrackBuilder()
    n_refused = 0
    for i in range(n_img):  # images arrive one by one, each with the matches to the earlier ones
        builder.add_image(int(num_kp[i]))
    for i, j in _batch_order(m):
        n_refused += builder.add_matches(i, j, m[(i, j)])
    inc = builder.tracks()
    assert n_refused == refused == builder.num_refused
    for name in ("ptr", "image_idx", "keypoint_idx", "track_of", "offsets"):
        np.testing.assert_array_equal(getattr(inc, name), getattr(batch, name))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_img=st.integers(2, 7), n_pts=st.integers(1, 40))
def test_incremental_builder_in_any_order_when_no_merge_is_refused(seed, n_img, n_pts):
    # matches between keypoints that see one scene point: no track can see an image twice
    rng = np.random.default_rng(seed)
    kp_of = [rng.permutation(n_pts + 3)[:n_pts] for _ in range(n_img)]  # keypoint of point p in image i
    seen = rng.random((n_img, n_pts)) < 0.7
    m = {}
    for i in range(n_img):
        for j in range(i + 1, n_img):
            p = np.flatnonzero(seen[i] & seen[j] & (rng.random(n_pts) < 0.6))
            m[(i, j)] = np.stack([kp_of[i][p], kp_of[j][p]], axis=1)
    batch, refused = build_tracks([n_pts + 3] * n_img, m)
    assert refused == 0
    builder = TrackBuilder()
    pairs = list(m)
    rng.shuffle(pairs)
    for i in range(n_img):
        builder.add_image(n_pts + 3)
        # the matches of image i to earlier images, in random order and random row order
        for a, b in [p for p in pairs if max(p) == i]:
            rows = rng.permutation(len(m[(a, b)]))
            assert builder.add_matches(a, b, m[(a, b)][rows]) == 0
    assert _as_sets(builder.tracks()) == _as_sets(batch)


def test_incremental_builder_validates_and_grows():
    b = TrackBuilder([2, 2])
    with pytest.raises(ValueError, match="invalid pair"):
        b.add_matches(0, 2, np.array([[0, 0]]))
    with pytest.raises(ValueError, match="out of range"):
        b.add_matches(0, 1, np.array([[0, 2]]))
    b.add_matches(0, 1, np.array([[0, 1]]))
    assert _as_sets(b.tracks()) == {frozenset({(0, 0), (1, 1)})}
    for _ in range(100):  # capacity doubles: far fewer reallocations than images
        b.add_image(3)
    assert b.num_images == 102 and len(b._parent) < 2 * (4 + 300)
    b.add_matches(1, 101, np.array([[1, 2]]))
    b.add_matches(50, 101, np.array([[0, 2]]))
    assert frozenset({(0, 0), (1, 1), (50, 0), (101, 2)}) in _as_sets(b.tracks())
