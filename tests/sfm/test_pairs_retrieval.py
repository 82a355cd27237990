"""Pair selection with retrieval (issue 14): loop candidates beyond the sequential window, retrieval
for unordered sets above the exhaustive limit, and the verified loop pair of desk-loop in the report."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from geomvision.features import Features, exhaustive_pairs, sequential_pairs, union_pairs
from geomvision.features.pairs import is_numbered_sequence
from geomvision.features.retrieval import top_similar_pairs
from geomvision.sfm import SfmOptions, SfmWarning, VerificationOptions, run_sfm
from geomvision.sfm.pipeline import select_pairs


def _place_features(rng: np.random.Generator, place_of_image: list[int], n_desc: int = 200) -> list[Features]:
    """One Features per image: the descriptors of its place (a pool of random SIFT-like vectors per
    place), each seen again with small noise; images of one place are alike, others are not."""
    pools = {p: rng.integers(0, 120, size=(n_desc, 128)) for p in sorted(set(place_of_image))}
    feats = []
    for p in place_of_image:
        d = np.clip(pools[p] + rng.integers(-4, 5, size=(n_desc, 128)), 0, 255).astype(np.uint8)
        feats.append(Features(rng.uniform(0, 640, (n_desc, 2)), np.ones(n_desc), np.zeros(n_desc), d,
                              np.zeros((n_desc, 3), np.uint8)))
    return feats


def _as_set(pairs) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in pairs}


@pytest.fixture
def loop_sequence(rng):
    """30 frames; frames 24-29 revisit the places of frames 0-5. Names and features are handed
    over in a shuffled order, so positions differ from frame numbers."""
    n = 30
    place = [k if k < 24 else k - 24 for k in range(n)]
    perm = rng.permutation(n)
    names = [f"frame{k:04d}.png" for k in perm]
    feats = _place_features(rng, [place[k] for k in perm])
    pos_of_frame = {int(k): i for i, k in enumerate(perm)}
    loops = _as_set(np.sort([[pos_of_frame[k - 24], pos_of_frame[k]] for k in range(24, n)], axis=1))
    return names, feats, perm, loops


def test_sequential_adds_the_similar_far_pairs_to_the_window(loop_sequence):
    names, feats, perm, loops = loop_sequence
    opts = SfmOptions(matcher="sequential", sequential_window=3, loop_candidates=2)
    sel = select_pairs(names, feats, opts)
    window = _as_set(sequential_pairs(names, window=3))
    assert sel.matcher == "sequential+retrieval"
    assert _as_set(sel.pairs) == window | set(sel.retrieved)
    assert loops <= set(sel.retrieved)  # every revisit is proposed ...
    assert not loops & window  # ... and none of them was in the window
    frame = np.asarray(perm)
    gaps = [abs(int(frame[i]) - int(frame[j])) for i, j in sel.retrieved]
    assert min(gaps) > 3  # retrieval pairs lie beyond the window
    assert len(sel.retrieved) <= len(names) * 2
    # the revisits are the most similar pairs retrieval found, by a margin
    other = [s for p, s in sel.retrieved.items() if p not in loops]
    assert min(sel.retrieved[p] for p in loops) > max(other) + 0.1
    assert np.all(sel.pairs[:, 0] < sel.pairs[:, 1])
    # deterministic for a seed
    again = select_pairs(names, feats, opts)
    np.testing.assert_array_equal(again.pairs, sel.pairs)
    # without loop detection: the window alone
    off = select_pairs(names, feats, SfmOptions(matcher="sequential", sequential_window=3, loop_detection=False))
    assert off.matcher == "sequential" and _as_set(off.pairs) == window and off.retrieved == {}


def test_a_window_spanning_every_image_runs_no_retrieval(loop_sequence):
    names, feats, _, _ = loop_sequence
    sel = select_pairs(names[:8], feats[:8], SfmOptions(matcher="sequential", sequential_window=10))
    assert sel.matcher == "sequential" and sel.retrieved == {}
    np.testing.assert_array_equal(sel.pairs, exhaustive_pairs(8))


def test_unordered_set_above_the_exhaustive_limit_gets_retrieval_pairs(rng):
    # 5 places seen 3 times each, under names without a running number, in shuffled order
    place = list(rng.permutation(np.repeat(np.arange(5), 3)))
    names = [hashlib.sha1(str(k).encode()).hexdigest()[:8] + ".jpg" for k in range(len(place))]
    assert not is_numbered_sequence(names)
    feats = _place_features(rng, place)
    same_place = {(i, j) for i in range(15) for j in range(i + 1, 15) if place[i] == place[j]}
    sel = select_pairs(names, feats, SfmOptions(exhaustive_max_images=6, retrieval_num_neighbors=2))
    assert sel.matcher == "retrieval"
    # each image's two most similar images are the other two views of its place
    assert _as_set(sel.pairs) == same_place == set(sel.retrieved)
    # today's fallback, a window over the names, would have missed most of them
    assert len(same_place - _as_set(sequential_pairs(names, window=2))) >= 6
    # at or below the limit: exhaustive, as before
    small = select_pairs(names[:6], feats[:6], SfmOptions(exhaustive_max_images=6))
    assert small.matcher == "exhaustive" and small.retrieved == {}
    np.testing.assert_array_equal(small.pairs, exhaustive_pairs(6))


def test_numbered_frames_above_the_limit_are_a_sequence_with_loop_candidates(loop_sequence):
    names, feats, _, loops = loop_sequence
    sel = select_pairs(names, feats, SfmOptions(exhaustive_max_images=10, sequential_window=3, loop_candidates=2))
    assert sel.matcher == "sequential+retrieval" and loops <= set(sel.retrieved)
    assert _as_set(sequential_pairs(names, window=3)) <= _as_set(sel.pairs)


@pytest.mark.parametrize("names, ordered", [
    (["frame0001.png", "frame0002.png", "frame0010.png"], True),
    (["10.png", "01.png", "02.png"], True),
    (["1305031102.175304.png", "1305031102.211214.png", "1305031103.011339.png"], True),  # timestamps
    (["img1.jpg", "IMG2.JPG"], True),
    (["a.jpg", "b.jpg"], False),
    (["left_01.png", "right_01.png", "left_02.png"], False),
    (["img01.jpg", "img1.jpg"], False),  # one number, two names
    (["img1.jpg", "img2.jpg", "notes.jpg"], False),
    (["scene.png"], True),
])
def test_is_numbered_sequence(names, ordered):
    assert is_numbered_sequence(names) is ordered


def test_top_similar_pairs_exclusion_featureless_rows_and_blocks(rng):
    g = rng.normal(size=(9, 16))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    g[4] = 0.0  # featureless
    sim = g @ g.T
    np.fill_diagonal(sim, -np.inf)
    sim[4, :] = sim[:, 4] = -np.inf
    exclude = np.array([[1, 0], [2, 3], [7, 8]])
    for i, j in exclude:
        sim[i, j] = sim[j, i] = -np.inf
    expected = union_pairs(np.array([[i, j] for i in range(9) if i != 4 for j in np.argsort(-sim[i])[:2]]))
    for block in (1, 4, 1024):
        np.testing.assert_array_equal(top_similar_pairs(g, 2, exclude=exclude, block=block), expected)
    got = _as_set(top_similar_pairs(g, 20, exclude=exclude))  # more than allowed: all allowed pairs
    assert got == _as_set(exhaustive_pairs(9)) - _as_set(np.sort(exclude, axis=1)) - {(i, 4) for i in range(4)} \
        - {(4, j) for j in range(5, 9)}
    with pytest.raises(ValueError, match="exclude"):
        top_similar_pairs(g, 2, exclude=np.array([[0, 9]]))
    assert top_similar_pairs(g[:1], 3).shape == (0, 2)


@pytest.mark.shared_data
def test_desk_loop_proposes_and_verifies_the_loop_pair(shared_data, tmp_path):
    """desk-loop frame 10 sees the desk from almost where frame 01 did. With a window of 3, the
    01-10 pair is not in the window: the one loop candidate per image must propose it, and
    two-view verification must accept it."""
    images = shared_data / "desk-loop" / "images"
    opts = SfmOptions(matcher="sequential", sequential_window=3, loop_candidates=1)
    with pytest.warns(SfmWarning, match="no calibration"):  # desk-loop gives no intrinsics
        res = run_sfm(images, opts, cache_dir=tmp_path, progress=False)
    rep = res.report
    assert rep["matcher"] == "sequential+retrieval"
    by_pair = {tuple(e["pair"]): e for e in rep["retrieval_pairs"]}
    assert ("01.png", "10.png") in by_pair
    loop = by_pair[("01.png", "10.png")]
    assert loop["verified"] is True and loop["config"] != "failed"
    assert loop["num_inliers"] >= VerificationOptions().min_num_inliers
    assert rep["pairs"]["01.png 10.png"]["num_inliers"] == loop["num_inliers"]
    # every retrieval pair lies beyond the window and was matched like any other pair
    for a, b in by_pair:
        assert abs(int(a[:2]) - int(b[:2])) > 3 and f"{a} {b}" in rep["pairs"]
    assert len(by_pair) <= 10
    assert rep["num_pairs_matched"] == len(sequential_pairs([f"{k:02d}.png" for k in range(1, 11)], 3)) + len(by_pair)


def test_retrieval_pairs_recall_the_overlapping_views_of_a_rendered_walk():
    # 60 views once round the demo scene under random names: each view overlaps its neighbours on
    # the walk; retrieval (10 partners per image) must find them without any order to go by
    from geomvision.features import FeatureOptions, extract_features
    from geomvision.synthetic import render_walk

    n = 60
    views = render_walk(n, width=320, height=240, arc_deg=360.0)
    gen = np.random.default_rng(3)
    perm = gen.permutation(n)  # position p holds walk frame perm[p]
    names = [f"{gen.bytes(5).hex()}.png" for _ in range(n)]
    feats = [extract_features(views.images[k], FeatureOptions(max_num_features=1000)) for k in perm]
    sel = select_pairs(names, feats, SfmOptions(exhaustive_max_images=20, retrieval_num_neighbors=10))
    assert sel.matcher == "retrieval" and len(sel.pairs) <= 10 * n
    found = {tuple(sorted((int(perm[i]), int(perm[j])))) for i, j in sel.pairs}
    # the true overlapping pairs: frames 1 and 2 steps apart on the closed walk (6 and 12 degrees)
    near = {tuple(sorted((k, (k + d) % n))) for k in range(n) for d in (1, 2)}
    recall = len(near & found) / len(near)
    assert recall >= 0.9, recall
