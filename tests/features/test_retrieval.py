"""Loop-closure candidates from VLAD global descriptors, on the desk-loop sequence."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.features import (
    FeatureOptions,
    Features,
    extract_all,
    sequential_pairs,
    similar_pairs,
    train_vocabulary,
    union_pairs,
    vlad_descriptors,
)


@pytest.fixture(scope="module")
def desk_loop(shared_data):
    paths = sorted((shared_data / "desk-loop" / "images").glob("*.png"))
    assert len(paths) == 10
    res = extract_all(paths, FeatureOptions(max_num_features=4000), progress=False)
    return list(res.features), list(res.features.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loop_closure_is_the_most_similar_image(desk_loop, seed):
    """Frames 01 and 10 see the desk from almost the same place: each is the other's best match."""
    names, feats = desk_loop
    g = vlad_descriptors(feats, train_vocabulary(feats, rng=seed))
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0)
    sim = g @ g.T
    np.fill_diagonal(sim, -np.inf)
    assert names[int(np.argmax(sim[0]))] == "10.png"
    assert names[int(np.argmax(sim[9]))] == "01.png"


def test_similar_pairs_add_the_loop_to_a_sequential_window(desk_loop):
    names, feats = desk_loop
    window = sequential_pairs(names, window=3)
    assert [0, 9] not in window.tolist()
    loops = similar_pairs(feats, num_neighbors=1)
    assert [0, 9] in loops.tolist()
    assert np.all(loops[:, 0] < loops[:, 1])
    both = union_pairs(window, loops)
    assert [0, 9] in both.tolist() and len(both) <= len(window) + len(loops)
    np.testing.assert_array_equal(similar_pairs(feats, 1), loops)  # deterministic


def test_similar_pairs_edge_cases():
    empty = Features(
        np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros((0, 128), np.uint8), np.zeros((0, 3), np.uint8)
    )
    assert similar_pairs([empty]).shape == (0, 2)
    with pytest.raises(ValueError, match="no descriptors"):
        similar_pairs([empty, empty])
    with pytest.raises(ValueError, match="num_neighbors"):
        similar_pairs([empty, empty], num_neighbors=0)
