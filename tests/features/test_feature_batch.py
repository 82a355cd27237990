"""Batch extraction / matching: caching by content, corrupt entries, skipped files, determinism."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from geomvision.features import (
    CacheWarning,
    FeatureOptions,
    FeatureWarning,
    MatchOptions,
    default_image_names,
    exhaustive_pairs,
    extract_all,
    match_all,
    match_descriptors,
)
from geomvision.features.cache import ArrayCache

FAST = FeatureOptions(max_image_size=640, max_num_features=1500)  # keeps the suite quick


@pytest.fixture(scope="module")
def three_images(fountain, tmp_path_factory):
    """Copies of three fountain images in a temp folder (so tests may add broken files beside them)."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for name in fountain.image_names[:3]:
        dst = folder / name
        shutil.copyfile(fountain.image_dir / name, dst)
        paths.append(dst)
    return paths


def _entries(cache_dir, kind):
    return sorted((cache_dir / kind).rglob("*.npz"))


def test_feature_cache_roundtrip_and_reuse(three_images, tmp_path):
    first = extract_all(three_images, FAST, cache_dir=tmp_path, progress=False)
    assert first.num_cached == 0 and list(first.features) == [p.name for p in three_images]
    assert len(_entries(tmp_path, "features")) == 3
    second = extract_all(three_images, FAST, cache_dir=tmp_path, progress=False)
    assert second.num_cached == 3 and second.keys == first.keys
    assert first.image_sizes == second.image_sizes == {p.name: (1536, 1024) for p in three_images}
    for name in first.features:
        assert second.features[name].equals(first.features[name])
    # different options -> different keys, no reuse
    other = extract_all(
        three_images[:1], FeatureOptions(max_image_size=640, max_num_features=1000), cache_dir=tmp_path, progress=False
    )
    assert other.num_cached == 0
    assert other.keys[three_images[0].name] != first.keys[three_images[0].name]
    assert len(other.features[three_images[0].name]) == 1000


def test_cache_key_follows_content_not_name(three_images, tmp_path):
    ref = extract_all(three_images[:1], FAST, cache_dir=tmp_path, progress=False)
    renamed = tmp_path / "renamed.jpg"
    shutil.copyfile(three_images[0], renamed)
    again = extract_all([renamed], FAST, cache_dir=tmp_path, progress=False)
    assert again.num_cached == 1
    assert again.keys["renamed.jpg"] == ref.keys[three_images[0].name]
    edited = tmp_path / "edited.jpg"
    edited.write_bytes(three_images[0].read_bytes() + b"\0")  # same pixels, different bytes
    assert extract_all([edited], FAST, cache_dir=tmp_path, progress=False).num_cached == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "wrong_key", "bad_size"])
def test_corrupt_feature_cache_entry_is_recomputed(three_images, tmp_path, damage):
    ref = extract_all(three_images[:1], FAST, cache_dir=tmp_path, progress=False)
    (entry,) = _entries(tmp_path, "features")
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        for k in range(len(data) // 3, len(data) // 3 + 64):
            data[k] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a zip file at all")
    elif damage == "bad_size":  # well-formed, but the keypoints do not fit the stated image size
        arrays = dict(np.load(entry))
        key = str(arrays.pop("__key__"))
        arrays.pop("__version__")
        ArrayCache(tmp_path, "features").save(key, {**arrays, "image_size": np.array([100, 100])})
        data = bytearray(entry.read_bytes())
    else:  # a valid entry of another image stored under this key
        other = extract_all(three_images[1:2], FAST, cache_dir=tmp_path / "x", progress=False)
        (other_entry,) = _entries(tmp_path / "x", "features")
        data = bytearray(other_entry.read_bytes())
        assert other.keys != ref.keys
    entry.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="corrupt"):
        again = extract_all(three_images[:1], FAST, cache_dir=tmp_path, progress=False)
    name = three_images[0].name
    assert again.num_cached == 0 and again.features[name].equals(ref.features[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is valid again
        assert extract_all(three_images[:1], FAST, cache_dir=tmp_path, progress=False).num_cached == 1


def test_unreadable_files_are_skipped_with_reason(three_images, tmp_path):
    junk = tmp_path / "notes.jpg"
    junk.write_text("this is not an image")
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(three_images[0].read_bytes()[:20000])
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    missing = tmp_path / "missing.jpg"
    paths = [three_images[0], junk, truncated, folder, missing]
    with pytest.warns(FeatureWarning) as record:
        res = extract_all(paths, FAST, names=["good", "junk", "half", "dir", "gone"], progress=False)
    assert list(res.features) == ["good"]
    assert set(res.skipped) == {"junk", "half", "dir", "gone"}
    assert "not a readable image" in res.skipped["junk"] and "not a readable image" in res.skipped["half"]
    assert "folder" in res.skipped["dir"] and "cannot read" in res.skipped["gone"]
    assert len(record) == 4 and any("notes.jpg" in str(w.message) for w in record)


def test_names_default_and_validation(tmp_path):
    a, b = tmp_path / "x" / "1.jpg", tmp_path / "y" / "1.jpg"
    assert default_image_names([a, b]) == ["x/1.jpg", "y/1.jpg"]
    assert default_image_names([a]) == ["1.jpg"]
    with pytest.raises(ValueError, match="unique"):
        extract_all([a, a], progress=False)
    with pytest.raises(ValueError, match="names"):
        extract_all([a, b], names=["one"], progress=False)
    with pytest.raises(ValueError, match="num_threads"):
        extract_all([a], num_threads=0, progress=False)


def test_batch_extraction_is_deterministic_and_thread_independent(three_images):
    one = extract_all(three_images, FAST, num_threads=1, progress=False)
    two = extract_all(three_images, FAST, num_threads=2, progress=False)
    assert all(one.features[n].equals(two.features[n]) for n in one.features)


@pytest.fixture(scope="module")
def three_features(three_images):
    return extract_all(three_images, FAST, progress=False).features


def test_match_all_equals_pairwise_matching_and_caches(three_features, tmp_path):
    names = list(three_features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    opts = MatchOptions()
    first = match_all(pairs, three_features, opts, cache_dir=tmp_path, progress=False)
    assert list(first) == pairs
    for (a, b), m in first.items():
        expected = match_descriptors(three_features[a].descriptors, three_features[b].descriptors, opts)
        np.testing.assert_array_equal(m, expected)
        assert m.dtype == np.int64
    assert len(first[pairs[0]]) > 200
    entries = _entries(tmp_path, "matches")
    assert len(entries) == 3
    # second run: every pair from the cache (a corrupt entry would warn), identical arrays
    stamp = {e: e.stat().st_mtime_ns for e in entries}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = match_all(pairs, three_features, opts, cache_dir=tmp_path, num_threads=1, progress=False)
    assert all(np.array_equal(first[p], second[p]) for p in pairs)
    assert first.num_cached == 0 and second.num_cached == 3
    assert {e: e.stat().st_mtime_ns for e in _entries(tmp_path, "matches")} == stamp  # nothing rewritten
    # other options: new keys
    match_all(pairs[:1], three_features, MatchOptions(ratio=0.7), cache_dir=tmp_path, progress=False)
    assert len(_entries(tmp_path, "matches")) == 4


def test_corrupt_match_cache_entry_is_recomputed(three_features, tmp_path):
    names = list(three_features)
    pair = (names[0], names[1])
    ref = match_all([pair], three_features, cache_dir=tmp_path, progress=False)[pair]
    (entry,) = _entries(tmp_path, "matches")
    # a well-formed file whose indices are out of range for these images
    ArrayCache(tmp_path, "matches").save(entry.stem, {"matches": np.array([[0, 10**6]], np.int32)})
    with pytest.warns(CacheWarning, match="out of range"):
        again = match_all([pair], three_features, cache_dir=tmp_path, progress=False)[pair]
    np.testing.assert_array_equal(again, ref)


def test_match_all_validates_pairs(three_features):
    names = list(three_features)
    with pytest.raises(ValueError, match="no features"):
        match_all([(names[0], "nope.jpg")], three_features, progress=False)
    with pytest.raises(ValueError, match="itself"):
        match_all([(names[0], names[0])], three_features, progress=False)
    with pytest.raises(ValueError, match="tuples"):
        match_all([names[0]], three_features, progress=False)
    dup = match_all([(names[0], names[1]), (names[0], names[1])], three_features, progress=False)
    assert len(dup) == 1


def test_opencv_failure_on_one_image_is_a_skip(three_images, monkeypatch):
    import cv2

    from geomvision.features import batch

    real = batch.extract_features

    def flaky(image, options):
        if image.shape[1] == 1536 and image[0, 0, 0] == first_pixel:
            raise cv2.error("OpenCV(5.0.0) sift.cpp:1 error: (-215:Assertion failed) boom")
        return real(image, options)

    from geomvision.imageio import read_image

    first_pixel = read_image(three_images[0])[0, 0, 0]
    assert read_image(three_images[1])[0, 0, 0] != first_pixel
    monkeypatch.setattr(batch, "extract_features", flaky)
    with pytest.warns(FeatureWarning, match="OpenCV failed"):
        res = extract_all(three_images[:2], FAST, progress=False)
    assert list(res.skipped) == [three_images[0].name] and list(res.features) == [three_images[1].name]


def test_cached_features_stream_their_descriptors(three_images, tmp_path, monkeypatch):
    """With a cache, the descriptors stay in it: the store holds at most ``max_bytes`` of them
    (the least recently used are read again), every access gives the extracted descriptors,
    matching gives the in-memory result, and a vanished entry is a clear error."""
    import pickle

    from geomvision.features.types import StreamedFeatures

    monkeypatch.setattr("geomvision.features.cache.DESCRIPTOR_MEMORY_BYTES", 1)  # one entry at a time
    ex = extract_all(three_images, FAST, cache_dir=tmp_path, num_threads=1, progress=False)
    mem = extract_all(three_images, FAST, progress=False)
    names = list(ex.features)
    assert all(type(ex.features[n]) is StreamedFeatures for n in names)
    assert not any(isinstance(f, StreamedFeatures) for f in mem.features.values())
    store = ex.descriptor_store
    assert len(store._held) == 1 and store.num_reads == 0  # the last image extracted
    for n in names * 2:
        np.testing.assert_array_equal(ex.features[n].descriptors, mem.features[n].descriptors)
        assert len(store._held) == 1
    assert store.num_reads == 2 * len(names)  # each access after the first image's read it back
    assert ex.features[names[0]].equals(mem.features[names[0]])
    copy = pickle.loads(pickle.dumps(ex.features[names[1]]))  # a cluster task's copy reads the cache too
    np.testing.assert_array_equal(copy.descriptors, mem.features[names[1]].descriptors)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    got, want = match_all(pairs, ex.features, progress=False), match_all(pairs, mem.features, progress=False)
    assert all(np.array_equal(got[p], want[p]) for p in pairs)
    for e in _entries(tmp_path, "features"):
        e.unlink()
    gone = next(n for n in names if ex.keys[n] not in store._held)
    with pytest.raises(ValueError, match="missing from .* rerun the feature extraction"):
        ex.features[gone].descriptors


def test_cached_matches_are_read_back_per_pair(three_features, tmp_path):
    """With a cache, match_all keeps only each pair's count: every access reads its entry back
    (equal to the in-memory result), counts need no read, and a vanished entry is a clear error."""
    from geomvision.features.batch import MatchResults, StreamedMatchResults

    names = list(three_features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    mem = match_all(pairs, three_features, progress=False)
    got = match_all(pairs, three_features, cache_dir=tmp_path, progress=False)
    assert type(mem) is MatchResults and type(got) is StreamedMatchResults
    assert all(isinstance(v, type(got._entries[pairs[0]])) and not isinstance(v, np.ndarray)
               for v in got._entries.values())  # nothing held
    assert list(got) == pairs and len(got) == 3
    for p in pairs:
        np.testing.assert_array_equal(got[p], mem[p])
        assert got[p].dtype == np.int64 and got.count(p) == mem.count(p) == len(mem[p])
    again = match_all(pairs, three_features, cache_dir=tmp_path, progress=False)
    assert again.num_cached == 3 and all(np.array_equal(again[p], mem[p]) for p in pairs)
    for e in _entries(tmp_path, "matches"):
        e.unlink()
    assert got.count(pairs[0]) == len(mem[pairs[0]])
    with pytest.raises(ValueError, match="missing from .* rerun the matching"):
        got[pairs[0]]
