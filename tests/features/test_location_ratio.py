"""The ratio test against the nearest neighbour at another location (``MatchOptions.same_location_px``):
location groups, equality with a float64 brute force of the documented rule, what it changes, real data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from geomvision.features import MatchOptions, match_descriptors, unit_descriptors
from geomvision.features.matching import _match_unit, location_groups


def _grouped_top2(S: np.ndarray, col_group: np.ndarray):
    """Per row: best column (lowest on ties), its value, best value over the other groups' columns."""
    best = np.argmax(S, axis=1)
    s1 = S[np.arange(len(S)), best]
    rival = np.where(col_group[None, :] == col_group[best][:, None], -np.inf, S)
    return best, s1, rival.max(axis=1)


def reference_grouped(d1, d2, g1, g2, opts: MatchOptions) -> np.ndarray:
    """float64 brute force of the rule in ``match_descriptors``' docstring: matches between the
    locations' heads, once per location."""
    A = unit_descriptors(d1).astype(np.float64)
    B = unit_descriptors(d2).astype(np.float64)
    S = A @ B.T

    def ok(s1, s2):
        d1_sq = np.maximum(2 - 2 * s1, 0)
        d2_sq = np.where(np.isfinite(s2), np.maximum(2 - 2 * s2, 0), np.inf)
        return (d1_sq <= opts.max_distance**2) & (d1_sq < opts.ratio**2 * d2_sq)

    rb, r1, r2 = _grouped_top2(S, g2)
    cb, c1, c2 = _grouped_top2(S.T, g1)
    rows = [i for i in np.flatnonzero(ok(r1, r2)) if ok(c1, c2)[rb[i]] and g1[cb[rb[i]]] == g1[i]]
    return _by_heads([(g1[i], g2[rb[i]]) for i in rows])


def _by_heads(pairs) -> np.ndarray:
    """Matches (location heads, in row order) kept once per location: the first of each image-2
    head, then, in order of those, the first of each image-1 head; sorted."""
    by_j = {}
    for hi, hj in pairs:
        by_j.setdefault(int(hj), int(hi))
    out, seen = [], set()
    for hj, hi in sorted(by_j.items()):
        if hi not in seen:
            seen.add(hi)
            out.append((hi, hj))
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


def _described_locations(rng, n_loc: int, dim: int, spread: float = 3.0):
    """n_loc locations, each described 1-4 times (descriptors = the location's + small noise,
    keypoints within 0.5 px of each other): descriptors (N,dim), keypoints (N,2), location (N,)."""
    base = rng.normal(size=(n_loc, dim))
    xy = rng.uniform(0, 400, size=(n_loc, 2))
    times = rng.integers(1, 5, size=n_loc)
    loc = np.repeat(np.arange(n_loc), times)
    desc = base[loc] + spread * 0.1 * rng.normal(size=(len(loc), dim))
    kp = xy[loc] + rng.uniform(-0.25, 0.25, size=(len(loc), 2))
    order = rng.permutation(len(loc))
    return desc[order], kp[order], loc[order]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_location_groups_are_greedy_by_strength(seed, radius):
    """Heads are pairwise farther apart than the radius; each keypoint's head is the first
    (strongest) head within the radius; radius 0 leaves every keypoint alone."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 20, size=(int(rng.integers(1, 200)), 2))
    g = location_groups(kp, radius)
    heads = np.flatnonzero(g == np.arange(len(kp)))
    assert np.all(g[g] == g)  # a head heads its own group
    assert np.all(g <= np.arange(len(kp)))
    if radius == 0:
        assert np.array_equal(g, np.arange(len(kp)))
        return
    D = cdist(kp, kp)
    assert np.all(D[np.arange(len(kp)), g] <= radius)
    if len(heads) > 1:
        Dh = D[np.ix_(heads, heads)]
        assert Dh[~np.eye(len(heads), dtype=bool)].min() > radius
    for k in np.flatnonzero(g != np.arange(len(kp))):  # the first head within the radius
        near = heads[(heads < k) & (D[k, heads] <= radius)]
        assert g[k] == near[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mutual", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_grouped_matcher_equals_brute_force(seed, mutual, threads):
    """Several 256-row blocks split over threads (their column halves merged group-aware)."""
    rng = np.random.default_rng(seed)
    d1, k1, _ = _described_locations(rng, 300, 16)
    d2, k2, _ = _described_locations(rng, 250, 16)
    d2 = np.r_[d2, d1[:200] + 0.2 * rng.normal(size=(200, 16))]  # shared locations to match
    k2 = np.r_[k2, rng.uniform(500, 900, size=(200, 2))]
    opts = MatchOptions(ratio=0.8, max_distance=2.0, mutual=mutual, same_location_px=1.0)
    g1, g2 = location_groups(k1, 1.0), location_groups(k2, 1.0)
    got = _match_unit(unit_descriptors(d1), unit_descriptors(d2), opts, threads, groups=(g1, g2))
    if not mutual:  # without the mutual check a row keeps its own best; the reference below is mutual
        A, B = unit_descriptors(d1).astype(np.float64), unit_descriptors(d2).astype(np.float64)
        rb, r1, r2 = _grouped_top2(A @ B.T, g2)
        d1_sq, d2_sq = np.maximum(2 - 2 * r1, 0), np.maximum(2 - 2 * r2, 0)
        i = np.flatnonzero((d1_sq <= 4.0) & (d1_sq < 0.64 * d2_sq))
        want = _by_heads(zip(g1[i], g2[rb[i]]))
    else:
        want = reference_grouped(d1, d2, g1, g2, opts)
    assert len(want) > 50
    np.testing.assert_array_equal(got, want)


def test_second_description_of_a_location_is_no_rival():
    """Image 2 describes one location twice (ASIFT: two simulated tilts): plain Lowe rejects the
    match as ambiguous, the location-aware test keeps it; two descriptions of one pattern at two
    places (repeated structure) stay ambiguous either way."""
    rng = np.random.default_rng(5)
    d = rng.normal(size=(40, 32))
    d1 = d[:20]
    twice = [d[0] + 0.05 * rng.normal(size=32) for _ in range(2)]  # one place, described twice
    repeated = [d[1] + 0.05 * rng.normal(size=32) for _ in range(2)]  # one pattern at two places
    d2 = np.r_[d[20:], twice, repeated]
    k1 = rng.uniform(0, 300, size=(20, 2))
    k2 = np.r_[rng.uniform(0, 300, size=(20, 2)), [[50.0, 50.0], [50.6, 50.3], [100.0, 100.0], [200.0, 180.0]]]
    plain = match_descriptors(d1, d2, MatchOptions(same_location_px=0), keypoints1=k1, keypoints2=k2)
    aware = match_descriptors(d1, d2, MatchOptions(same_location_px=1.5), keypoints1=k1, keypoints2=k2)
    assert 0 not in plain[:, 0] and 1 not in plain[:, 0]
    assert aware[aware[:, 0] == 0, 1].tolist() == [20]  # matched to the location's head (first description)
    assert 1 not in aware[:, 0]
    # without keypoints the option cannot apply: plain Lowe
    np.testing.assert_array_equal(match_descriptors(d1, d2, MatchOptions(same_location_px=1.5)), plain)


def test_matches_of_one_location_name_one_keypoint_so_tracks_join():
    """Image b describes each location three times (ASIFT's tilts); a's and c's nearest
    descriptions of a location in b differ about two times in three, which split the track
    through b in two (on desk-loop, 16 of 04's locations matched to both 02 and 10 before, 43
    after). Matches are reported between the locations' heads, so every match of a location
    names one keypoint of b."""
    rng = np.random.default_rng(11)
    n, dim = 150, 32
    base = rng.normal(size=(n, dim))
    xy = rng.uniform(0, 600, size=(n, 2))
    loc_b = np.repeat(np.arange(n), 3)
    db = base[loc_b] + 0.15 * rng.normal(size=(3 * n, dim))
    kb = xy[loc_b] + rng.uniform(-0.4, 0.4, size=(3 * n, 2))
    da, dc = (base + 0.15 * rng.normal(size=(n, dim)) for _ in range(2))
    ka, kc = rng.uniform(0, 600, size=(n, 2)), rng.uniform(0, 600, size=(n, 2))
    opts = MatchOptions(same_location_px=1.0)
    ab = match_descriptors(da, db, opts, keypoints1=ka, keypoints2=kb)
    cb = match_descriptors(dc, db, opts, keypoints1=kc, keypoints2=kb)
    heads = location_groups(kb, 1.0)
    for m in (ab, cb):
        assert len(m) > 0.9 * n and np.array_equal(loc_b[m[:, 1]], m[:, 0])  # right locations
        assert np.array_equal(heads[m[:, 1]], m[:, 1])  # named by their heads
    both = np.intersect1d(ab[:, 0], cb[:, 0])  # locations a and c both matched into b
    assert np.array_equal(ab[np.isin(ab[:, 0], both), 1], cb[np.isin(cb[:, 0], both), 1])
    # the nearest descriptions themselves would disagree on most of them
    A, C, B = unit_descriptors(da), unit_descriptors(dc), unit_descriptors(db)
    nearest_a, nearest_c = np.argmax(A[both] @ B.T, axis=1), np.argmax(C[both] @ B.T, axis=1)
    assert np.mean(nearest_a != nearest_c) > 0.4


def test_bad_same_location_px():
    for bad in (-1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="same_location_px"):
            MatchOptions(same_location_px=bad)
    with pytest.raises(ValueError, match="keypoints must have shape"):
        location_groups(np.zeros((5, 3)), 1.0)
    with pytest.raises(ValueError, match="keypoints for"):
        match_descriptors(np.ones((3, 8)), np.ones((4, 8)), MatchOptions(same_location_px=1.5),
                          keypoints1=np.zeros((2, 2)), keypoints2=np.zeros((4, 2)))


def test_default_is_resolved_from_the_features():
    """None: grouped for ASIFT features, plain Lowe for SIFT; plain Lowe keeps the cache key of
    the runs before the option existed."""
    from geomvision.features import FeatureOptions
    from geomvision.features.options import ASIFT_SAME_LOCATION_PX

    opts = MatchOptions()
    assert opts.same_location_px is None and opts.location_px == 0.0
    assert opts.for_features(FeatureOptions(affine_max_tilt=4)).same_location_px == ASIFT_SAME_LOCATION_PX
    assert opts.for_features(FeatureOptions()).same_location_px == 0.0
    assert MatchOptions(same_location_px=3.0).for_features(FeatureOptions()).same_location_px == 3.0
    assert MatchOptions(same_location_px=0).fingerprint() == opts.fingerprint()
    assert MatchOptions(same_location_px=1.5).fingerprint() != opts.fingerprint()


def test_match_all_and_cluster_tasks_group_by_location(tmp_path):
    """match_all (cached) and a cluster task (``_match_chunk``) give match_descriptors' grouped result."""
    from geomvision.features import Features, match_all
    from geomvision.features.batch import _match_chunk

    rng = np.random.default_rng(3)
    d1, k1, _ = _described_locations(rng, 200, 128, spread=0.5)
    d2 = np.r_[d1[:150] + 0.2 * rng.normal(size=(150, 128)), rng.normal(size=(60, 128))]
    k2 = np.r_[k1[:150] + 40.0, rng.uniform(0, 400, size=(60, 2))]

    def feats(d, k):
        d = np.clip(np.abs(d) * 40, 0, 255).astype(np.uint8)
        return Features(k, np.ones(len(k)), np.zeros(len(k)), d, np.zeros((len(k), 3), np.uint8))

    fa, fb = feats(d1, k1), feats(d2, k2)
    opts = MatchOptions(same_location_px=1.5)
    want = match_descriptors(fa.descriptors, fb.descriptors, opts, keypoints1=fa.keypoints, keypoints2=fb.keypoints)
    plain = match_descriptors(fa.descriptors, fb.descriptors, MatchOptions(same_location_px=0))
    assert len(want) > len(plain) + 20
    for _ in range(2):  # computed, then from the cache
        got = match_all([("a", "b")], {"a": fa, "b": fb}, opts, cache_dir=tmp_path, progress=False)
        np.testing.assert_array_equal(got[("a", "b")], want)
    units = {n: (unit_descriptors(f.descriptors), f.keypoints) for n, f in (("a", fa), ("b", fb))}
    np.testing.assert_array_equal(_match_chunk(units, [("a", "b")], opts)[0], want)
    # plain options keep the plain result (and key) whatever the keypoints
    np.testing.assert_array_equal(match_all([("a", "b")], {"a": fa, "b": fb}, MatchOptions(), progress=False)[("a", "b")],
                                  plain)
