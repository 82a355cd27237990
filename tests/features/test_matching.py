"""Exact descriptor matching: equals a float64 brute force; ratio / mutual / distance semantics; real data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geomvision.features import MatchOptions, match_descriptors, unit_descriptors
from geomvision.geometry.epipolar import fundamental_from_pose, sampson_sq_errors


def _nearest_two_ref(S: np.ndarray):
    """Brute force on a similarity matrix: best index (lowest on ties), best and second-best value."""
    n = S.shape[1]
    best = np.argmax(S, axis=1)
    s1 = S[np.arange(len(S)), best]
    rest = S.copy()
    rest[np.arange(len(S)), best] = -np.inf
    s2 = rest.max(axis=1) if n > 1 else np.full(len(S), -np.inf)
    return best, s1, s2


def reference_matches(d1, d2, opts: MatchOptions, margin: float = 0.0):
    """float64 brute force of the documented semantics; also how close any decision is to its threshold."""
    A = unit_descriptors(d1).astype(np.float64)
    B = unit_descriptors(d2).astype(np.float64)
    if len(A) == 0 or len(B) == 0:
        return np.zeros((0, 2), np.int64), 1.0
    S = A @ B.T

    def tests(best, s1, s2):
        d1_sq = np.maximum(2 - 2 * s1, 0)
        d2_sq = np.where(np.isfinite(s2), np.maximum(2 - 2 * s2, 0), np.inf)
        ok = (d1_sq <= opts.max_distance**2) & (d1_sq < opts.ratio**2 * d2_sq)
        closeness = np.minimum(np.abs(d1_sq - opts.max_distance**2), np.abs(d1_sq - opts.ratio**2 * d2_sq))
        return ok, closeness

    fb, f1, f2 = _nearest_two_ref(S)
    fok, fclose = tests(fb, f1, f2)
    i = np.flatnonzero(fok)
    j = fb[i]
    close = [fclose]
    if opts.mutual:
        bb, b1, b2 = _nearest_two_ref(S.T)
        bok, bclose = tests(bb, b1, b2)
        keep = (bb[j] == i) & bok[j]
        i, j = i[keep], j[keep]
        close.append(bclose)
        # near-ties of the best row for a column make "mutual" float-rounding dependent
        close.append(np.abs(np.sort(S, axis=0)[-1] - np.sort(S, axis=0)[-2]) if len(S) > 1 else np.ones(S.shape[1]))
    if S.shape[1] > 1:
        close.append(np.abs(f1 - f2))
    tightest = min((c.min() for c in close if c.size), default=1.0)
    return np.column_stack([i, j]).astype(np.int64).reshape(-1, 2), tightest


descriptor_sets = st.integers(1, 6).flatmap(
    lambda dim: st.tuples(
        arrays(np.uint8, st.tuples(st.integers(0, 40), st.just(dim * 4)), elements=st.integers(0, 255)),
        arrays(np.uint8, st.tuples(st.integers(0, 40), st.just(dim * 4)), elements=st.integers(0, 255)),
    )
)


@settings(max_examples=150, deadline=None)
@given(
    descriptor_sets,
    st.floats(0.3, 1.0),
    st.booleans(),
    st.floats(0.05, 2.0),
)
def test_exact_matcher_equals_brute_force(descs, ratio, mutual, max_distance):
    d1, d2 = descs
    opts = MatchOptions(ratio=ratio, mutual=mutual, max_distance=max_distance)
    expected, tightest = reference_matches(d1, d2, opts)
    assume(tightest > 1e-5)  # decisions closer than float32 rounding to a threshold may go either way
    np.testing.assert_array_equal(match_descriptors(d1, d2, opts), expected)


@pytest.mark.parametrize("shape", [(700, 300), (257, 1000), (5, 64), (300, 65)])
def test_blocked_kernel_equals_brute_force_on_larger_sets(rng, shape):
    """Several row blocks, lane remainders (n % 64 != 0) and n < 64 all follow the same semantics."""
    m, n = shape
    base = rng.random((n, 32)).astype(np.float32)
    d2 = base
    d1 = base[rng.integers(0, n, m)] + 0.15 * rng.random((m, 32)).astype(np.float32)  # many true matches
    for opts in (MatchOptions(), MatchOptions(mutual=False, ratio=0.9), MatchOptions(ratio=1.0, max_distance=2.0)):
        expected, tightest = reference_matches(d1, d2, opts)
        assert tightest > 1e-6
        for threads in (1, 2):
            np.testing.assert_array_equal(match_descriptors(d1, d2, opts, num_threads=threads), expected)
    assert len(match_descriptors(d1, d2, MatchOptions(ratio=1.0, max_distance=2.0))) > min(m, n) // 4


def test_ratio_test_semantics():
    q = np.array([[1.0, 0.0, 0.0, 0.0]])

    # the nearest at distance a, the second at distance b: accept iff a < ratio * b
    def unit(angle):
        return np.array([np.cos(angle), np.sin(angle), 0.0, 0.0])

    def chord(angle):
        return 2 * np.sin(angle / 2)

    near, far_ok, far_bad = 0.3, 0.3 / 0.79, 0.3 / 0.81  # chord ratio ~ angle ratio for small angles
    for far, accepted in ((far_ok, chord(near) < 0.8 * chord(far_ok)), (far_bad, chord(near) < 0.8 * chord(far_bad))):
        d2 = np.stack([unit(near), np.array([np.cos(far), 0.0, np.sin(far), 0.0])])
        m = match_descriptors(q, d2, MatchOptions(ratio=0.8, mutual=False, max_distance=2.0))
        assert (len(m) == 1) == accepted
    assert chord(near) < 0.8 * chord(far_ok) and not chord(near) < 0.8 * chord(far_bad)


def test_mutual_check_semantics():
    # two queries share the nearest neighbour 0 of desc2; only query 1 is its mutual nearest
    d2 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    d1 = np.array([[0.9, 0.35, 0.0], [1.0, 0.05, 0.0]])
    loose = MatchOptions(ratio=1.0, mutual=False, max_distance=2.0)
    np.testing.assert_array_equal(match_descriptors(d1, d2, loose), [[0, 0], [1, 0]])
    strict = MatchOptions(ratio=1.0, mutual=True, max_distance=2.0)
    np.testing.assert_array_equal(match_descriptors(d1, d2, strict), [[1, 0]])
    # mutual also applies the ratio test from desc2's side: desc2[0] has two close candidates in
    # d1b (distance ratio 0.834), so it is ambiguous at ratio 0.8 but not at 0.9
    d1b = np.array([[1.0, 0.05, 0.0], [1.0, 0.06, 0.0]])
    assert len(match_descriptors(d1b, d2, MatchOptions(ratio=0.8, mutual=True, max_distance=2.0))) == 0
    np.testing.assert_array_equal(match_descriptors(d1b, d2, MatchOptions(ratio=0.9, max_distance=2.0)), [[0, 0]])
    np.testing.assert_array_equal(
        match_descriptors(d1b, d2, MatchOptions(ratio=0.8, mutual=False, max_distance=2.0)), [[0, 0], [1, 0]]
    )


def test_max_distance_and_ties():
    d1 = np.array([[1.0, 0.0]])
    d2 = np.array([[np.cos(0.5), np.sin(0.5)]])  # a single candidate: the ratio test cannot reject it
    dist = 2 * np.sin(0.25)
    assert len(match_descriptors(d1, d2, MatchOptions(max_distance=dist + 1e-4))) == 1
    assert len(match_descriptors(d1, d2, MatchOptions(max_distance=dist - 1e-4))) == 0
    twins = np.array([[1.0, 0.1], [1.0, 0.1]])  # an exact tie is ambiguous even with ratio 1
    assert len(match_descriptors(d1, twins, MatchOptions(ratio=1.0, max_distance=2.0, mutual=False))) == 0


def test_empty_and_invalid_inputs():
    empty = np.zeros((0, 128), np.uint8)
    some = np.ones((3, 128), np.uint8)
    assert match_descriptors(empty, some).shape == (0, 2)
    assert match_descriptors(some, empty).shape == (0, 2)
    assert match_descriptors(some, some).dtype == np.int64
    with pytest.raises(ValueError, match="same length"):
        match_descriptors(some, np.ones((3, 64), np.uint8))
    with pytest.raises(ValueError, match="desc1"):
        match_descriptors(np.ones(5), some)
    with pytest.raises(ValueError, match="NaN"):
        match_descriptors(np.full((2, 4), np.nan), np.ones((2, 4)))
    with pytest.raises(ValueError, match="ratio"):
        MatchOptions(ratio=1.5)
    with pytest.raises(ValueError, match="max_distance"):
        MatchOptions(max_distance=3.0)
    with pytest.raises(ValueError, match="mutual"):
        MatchOptions(mutual="yes")


def test_fountain_matches_follow_ground_truth_epipolar_geometry(fountain, fountain_features):
    n1, n2 = fountain.image_names[:2]
    f1, f2 = fountain_features[n1], fountain_features[n2]
    m = match_descriptors(f1.descriptors, f2.descriptors)
    cam2_from_cam1 = fountain.cams_from_world[n2] @ fountain.cams_from_world[n1].inverse()
    F = fundamental_from_pose(cam2_from_cam1, fountain.cameras[n1], fountain.cameras[n2])
    err = np.sqrt(sampson_sq_errors(F, f1.keypoints[m[:, 0]], f2.keypoints[m[:, 1]]))
    assert len(m) > 2000
    assert np.mean(err < 2.0) > 0.9
    assert np.median(err) < 0.3
    # the ratio test alone (no mutual check) is still mostly right, but keeps more outliers
    loose = match_descriptors(f1.descriptors, f2.descriptors, MatchOptions(mutual=False))
    err_loose = np.sqrt(sampson_sq_errors(F, f1.keypoints[loose[:, 0]], f2.keypoints[loose[:, 1]]))
    assert len(loose) >= len(m)
    assert np.mean(err_loose < 2.0) > 0.8


def test_result_does_not_depend_on_threads(fountain_features):
    f1, f2 = fountain_features.values()
    ref = match_descriptors(f1.descriptors, f2.descriptors, num_threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(match_descriptors(f1.descriptors, f2.descriptors, num_threads=threads), ref)
    with pytest.raises(ValueError, match="num_threads"):
        match_descriptors(f1.descriptors, f2.descriptors, num_threads=0)
