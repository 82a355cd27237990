"""Batch feature extraction and matching over many images: parallel, cached on disk, with progress.

``extract_all`` runs one image per worker thread (OpenCV releases the GIL; its own thread pool is
set to one thread meanwhile, which measured faster than nesting pools on 2 cores), and
``match_all`` one pair per worker thread with BLAS limited to one thread per call (via
threadpoolctl when installed, else the pairs run one after another on BLAS's own threads).
Results do not depend on the number of threads. Ctrl-C cancels the images / pairs not started,
stops a pair being matched at its next 256-row block and lets the images being extracted finish
(OpenCV cannot be stopped midway) before ``KeyboardInterrupt`` is raised; a second Ctrl-C during
that wait is ignored (see ``_interrupt.map_threads``). Finished items stay in the cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .._interrupt import map_threads, stopping
from .._progress import Progress
from .._validation import check_int
from ..imageio import decode_image
from ._threads import blas_single_threaded, cv2_single_threaded
from .cache import (ArrayCache, DescriptorStore, bytes_digest, feature_key, features_from_arrays, match_key,
                    matches_builder, stored_entry)
from .matching import _match_unit, location_groups, match_groups, pair_groups, unit_descriptors
from .options import FeatureOptions, MatchOptions
from .sift import extract_features
from .types import Features

__all__ = ["ExtractionResult", "FeatureWarning", "MatchResults", "default_image_names", "extract_all", "match_all"]


class MatchResults(dict):
    """``{(name1, name2): (K,2) int64 matches}`` as returned by :func:`match_all` without a
    cache, plus ``num_cached``: how many pairs came from the cache."""

    num_cached: int = 0

    def count(self, pair: tuple[str, str]) -> int:
        """Number of matches of ``pair``."""
        return len(self[pair])


@dataclass(frozen=True)
class _StoredMatches:
    """Where a pair's matches are in the cache: the entry's key, both images' feature counts
    (what validates it when read back) and the number of matches."""

    key: str
    n1: int
    n2: int
    count: int

    @classmethod
    def of(cls, key: str, pair: tuple[str, str], features, m: np.ndarray) -> _StoredMatches:
        return cls(key, len(features[pair[0]]), len(features[pair[1]]), len(m))


def _read_stored(cache: ArrayCache, stored: _StoredMatches, pair: tuple[str, str]) -> np.ndarray:
    """The matches of ``pair`` read back from ``cache`` (validated); ``ValueError`` when gone."""
    m = cache.load(stored.key, matches_builder(stored.n1, stored.n2))
    if m is None:
        raise ValueError(f"the matches of {pair} are missing from {cache.folder} or corrupt (was the cache "
                         "cleared while running?): rerun the matching")
    return m


class StreamedMatchResults(Mapping):
    """:class:`MatchResults` whose arrays stay in the on-disk match cache: each access reads
    the pair's entry back (validated against both images' feature counts), so matching a set of
    any size holds only the pairs' counts in memory. A pair whose entry could not be written is
    held. ``ValueError`` when an entry vanished from the cache."""

    def __init__(self, cache: ArrayCache, entries: dict) -> None:
        self.cache = cache
        self._entries = entries  # pair -> _StoredMatches or (K,2) array
        self.num_cached = 0

    def __getitem__(self, pair: tuple[str, str]) -> np.ndarray:
        v = self._entries[pair]
        return _read_stored(self.cache, v, pair) if isinstance(v, _StoredMatches) else v

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def count(self, pair: tuple[str, str]) -> int:
        """Number of matches of ``pair`` (without reading them)."""
        v = self._entries[pair]
        return v.count if isinstance(v, _StoredMatches) else len(v)

    def reader(self, pair: tuple[str, str]):
        """A picklable callable giving ``self[pair]`` (what a cluster task that can open the
        cache is sent instead of the array), or the array itself when it is held."""
        v = self._entries[pair]
        return functools.partial(_read_stored, self.cache, v, pair) if isinstance(v, _StoredMatches) else v

    def stored_path(self):
        """A cache file of these matches (None when every pair is held): what workers are probed with."""
        v = next((v for v in self._entries.values() if isinstance(v, _StoredMatches)), None)
        return None if v is None else self.cache.path(v.key)


class FeatureWarning(UserWarning):
    """An input image was skipped (unreadable, not an image, corrupt)."""


@dataclass
class ExtractionResult:
    """What :func:`extract_all` returns.

    features : name -> Features of every image that could be read, in input order.
    skipped : name -> reason, for files that were skipped (not an image, truncated, unreadable).
    paths : name -> path of every input.
    keys : name -> feature cache key (image content + options) of every image read.
    image_sizes : name -> (width, height) in pixels of every image with features.
    num_cached : how many feature sets came from the cache.
    descriptor_store : with a cache, where the features' descriptors are read from (they are
        :class:`~.types.StreamedFeatures`: at most ``DESCRIPTOR_MEMORY_BYTES`` of descriptors
        are held at once); None: in memory.
    image_dir, timings, digest, source, has_descriptors : what an SfM project records about the
        extraction (:mod:`geomvision.sfm.stage_extract`): the folder, seconds per step, the digest
        of ``features.json``, "sift" or "imported:<file>", and whether there are real descriptors
        (imported keypoints may come without: a one-byte placeholder stands in).
    """

    features: dict[str, Features]
    skipped: dict[str, str] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    num_cached: int = 0
    image_dir: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    digest: str | None = None
    source: str = "sift"
    has_descriptors: bool = True
    descriptor_store: DescriptorStore | None = None


def default_image_names(paths: Sequence[Path]) -> list[str]:
    """Names of images: their paths relative to the deepest common folder, with '/' separators."""
    if not paths:
        return []
    parents = [os.path.abspath(p.parent) for p in paths]
    root = os.path.commonpath(parents)
    return [Path(os.path.relpath(os.path.abspath(p), root)).as_posix() for p in paths]


def _check_options(options, cls):
    options = cls() if options is None else options
    if not isinstance(options, cls):
        raise ValueError(f"options must be a {cls.__name__}, got {type(options).__name__}")
    return options


def cached_entry(arrays: dict[str, np.ndarray]) -> tuple[Features, tuple[int, int]]:
    """Features and (width, height) from a cache entry; ``ValueError`` when inconsistent."""
    size = arrays.get("image_size")
    if size is None or size.shape != (2,) or size.dtype.kind not in "iu" or size.min() <= 0:
        raise ValueError("image_size must hold two positive integers")
    w, h = int(size[0]), int(size[1])
    feats = features_from_arrays(arrays)
    kp = feats.keypoints
    if len(kp) and (kp.min() < -0.5 or kp[:, 0].max() > w - 0.5 or kp[:, 1].max() > h - 0.5):
        raise ValueError(f"keypoints outside the {w}x{h} image")
    return feats, (w, h)


def _extract_one(path: Path, options: FeatureOptions, cache: ArrayCache | None):
    """-> (features | None, (w, h) | None, key | None, from_cache, skip_reason | None)"""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        return None, None, None, False, "is a folder, not an image file"
    except OSError as exc:
        return None, None, None, False, f"cannot read ({exc.strerror or exc})"
    key = feature_key(bytes_digest(data), options)
    if cache is not None:
        cached = cache.load(key, cached_entry)
        if cached is not None:
            return cached[0], cached[1], key, True, None
    try:
        image = decode_image(data, str(path))
        feats = extract_features(image, options)
    except ValueError as exc:
        return None, None, key, False, str(exc).removeprefix(f"{path}: ")
    except cv2.error as exc:  # an OpenCV failure on one image must not stop the batch
        return None, None, key, False, f"OpenCV failed: {str(exc).strip().splitlines()[-1]}"
    size = (image.shape[1], image.shape[0])
    if cache is not None:
        cache.save(key, {**feats.to_arrays(), "image_size": np.array(size, np.int64)})
    return feats, size, key, False, None


def _streamed(outcome, store: DescriptorStore | None):
    """An outcome of :func:`_extract_one` whose features, once in the cache, keep their
    descriptors there (``store``) rather than in memory."""
    feats, size, key, from_cache, reason = outcome
    if store is None or feats is None or not store.cache.path(key).is_file():
        return outcome
    return store.stream(feats, key), size, key, from_cache, reason


def _extract_on_cluster(client, paths: list[Path], options: FeatureOptions, cache: ArrayCache | None,
                        store: DescriptorStore | None, outcomes: list, progress: bool) -> None:
    """Fill ``outcomes`` (as :func:`_extract_one`'s) of the images the cache lacks, on the cluster."""
    from .distributed import run_tasks

    todo = list(range(len(paths)))
    if cache is not None:
        for k in todo:
            try:
                key = feature_key(bytes_digest(paths[k].read_bytes()), options)
            except OSError:
                continue  # reported by the local pass
            hit = cache.load(key, cached_entry)
            if hit is not None:
                outcomes[k] = _streamed((hit[0], hit[1], key, True, None), store)
        todo = [k for k in todo if outcomes[k] is None]
    with Progress(len(todo), "features (cluster)", unit="img", enabled=progress) as bar:

        def done(t: int, outcome) -> None:
            k = todo[t]
            feats, size, key, _, _ = outcome
            if cache is not None and feats is not None:
                cache.save(key, {**feats.to_arrays(), "image_size": np.array(size, np.int64)})
            outcomes[k] = _streamed(outcome, store)
            bar.update()

        run_tasks(client, _extract_one, [(paths[k], options, None) for k in todo], done)


def extract_all(
    image_paths: Iterable[str | os.PathLike],
    options: FeatureOptions | None = None,
    *,
    names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_threads: int = 2,
    progress: bool = True,
    client=None,
) -> ExtractionResult:
    """Extract features from image files in parallel, reusing and filling an on-disk cache.

    image_paths : the image files. Names default to :func:`default_image_names` (the file names
        when all images share a folder); pass ``names`` (same length, unique) to choose them.
    cache_dir : folder of the cache (created when missing); entries are keyed by the image's
        bytes and the options, so a rerun or a ``--resume`` reuses them. None disables caching.
    num_threads : worker threads (images processed at once).
    progress : report count / rate / ETA on stderr.
    client : a ``dask.distributed`` client (:func:`.distributed.dask_client`): the images the
        cache lacks are extracted by its workers (one task each; the paths must be readable
        there), the cache is filled here. Same result as a local run.

    Files that are not readable images are skipped with a :class:`FeatureWarning` and listed
    in ``result.skipped`` with the reason; they never stop the batch.
    """
    options = _check_options(options, FeatureOptions)
    num_threads = check_int(num_threads, "num_threads", minimum=1)
    paths = [Path(os.fspath(p)) for p in image_paths]
    if names is None:
        names = default_image_names(paths)
    else:
        names = [str(n) for n in names]
        if len(names) != len(paths):
            raise ValueError(f"names has {len(names)} entries for {len(paths)} image_paths; give one name per image")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"image names must be unique; repeated: {dupes[:5]} (pass distinct names=)")
    cache = ArrayCache(cache_dir, "features") if cache_dir is not None else None
    store = DescriptorStore(cache) if cache is not None else None

    outcomes: list = [None] * len(paths)
    if client is not None:
        _extract_on_cluster(client, paths, options, cache, store, outcomes, progress)
    one_image = len(paths) == 1  # then OpenCV's own threads are the only parallelism available
    with (
        Progress(len(paths), "features", unit="img", enabled=progress) as bar,
        contextlib.nullcontext() if one_image else cv2_single_threaded(),
    ):

        def work(k: int, stop: threading.Event):
            if outcomes[k] is not None:  # done on the cluster
                bar.update()
                return
            if stopping(stop):  # Ctrl-C: images not started are skipped, the running ones finish
                return
            outcomes[k] = _streamed(_extract_one(paths[k], options, cache), store)
            bar.update()

        map_threads(work, len(paths), num_threads)

    result = ExtractionResult(features={}, paths=dict(zip(names, paths)), descriptor_store=store)
    for name, path, (feats, size, key, from_cache, reason) in zip(names, paths, outcomes):
        if key is not None:
            result.keys[name] = key
        if feats is None:
            result.skipped[name] = reason
            warnings.warn(f"skipping {path}: {reason}", FeatureWarning, stacklevel=2)
            continue
        result.features[name] = feats
        result.image_sizes[name] = size
        result.num_cached += bool(from_cache)
    return result


def _normalise_pairs(pairs, features: Mapping[str, Features]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        try:
            a, b = pair
        except (TypeError, ValueError):
            raise ValueError(f"pairs must hold (name1, name2) tuples, got {pair!r}") from None
        if a not in features or b not in features:
            missing = a if a not in features else b
            raise ValueError(f"pair {pair!r}: no features for {missing!r} (was it skipped?)")
        if a == b:
            raise ValueError(f"pair {pair!r} matches an image with itself")
        if (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


PAIRS_PER_TASK = 64


def _match_chunk(descriptors: dict[str, tuple[np.ndarray, np.ndarray]], pairs: list[tuple[str, str]],
                 options: MatchOptions) -> list[np.ndarray]:
    """The matches of ``pairs`` from (unit descriptors, keypoints) by image name (a cluster task);
    in place of the unit descriptors, an image may give the loader of its descriptors in the
    shared cache, which this worker calls."""
    units = {n: (unit_descriptors(d(), f"features[{n!r}].descriptors") if callable(d) else d, k)
             for n, (d, k) in descriptors.items()}
    out = []
    for a, b in pairs:
        (A, ka), (B, kb) = units[a], units[b]
        if len(A) and len(B) and A.shape[1] != B.shape[1]:
            raise ValueError(f"descriptors of {a!r} and {b!r} differ in length: {A.shape[1]} vs {B.shape[1]}")
        out.append(_match_unit(A, B, options, groups=match_groups(ka, kb, len(A), len(B), options)))
    return out


def _match_digest(f: Features, options: MatchOptions) -> str:
    """What names an image's side of a cached match: its descriptors, and its keypoints when
    the ratio test groups them by location (``options.location_px``)."""
    d = f.descriptor_digest()
    if options.location_px > 0:
        d += "/" + hashlib.sha256(np.ascontiguousarray(f.keypoints, dtype=np.float64).data).hexdigest()
    return d


def _stored(cache: ArrayCache, key: str, pair: tuple[str, str], features, m: np.ndarray):
    """Save the matches ``m`` of ``pair`` under ``key``: a reference to the entry, or ``m``
    itself when it could not be written."""
    if not cache.save(key, {"matches": m.astype(np.int32)}):
        return m
    return _StoredMatches.of(key, pair, features, m)


def _workers_read_cache(client, features: list[Features]) -> bool:
    """True when every features object is streamed from a cache entry that every worker of
    ``client`` can open (a cache on a shared path, or workers on this machine)."""
    from .distributed import workers_see

    entries = [stored_entry(f) for f in features]
    return bool(entries) and all(e is not None for e in entries) and workers_see(client, entries[0])


def _match_on_cluster(client, pair_list, features, options, cache, keys, results, hits, progress) -> None:
    """Fill ``results`` of the pairs the cache lacks, matched on the cluster."""
    from .distributed import run_tasks

    todo = list(range(len(pair_list)))
    if cache is not None:
        for k in todo:
            a, b = pair_list[k]
            hit = cache.load(keys[k], matches_builder(len(features[a]), len(features[b])))
            if hit is not None:
                results[k], hits[k] = _StoredMatches.of(keys[k], (a, b), features, hit), True
        todo = [k for k in todo if results[k] is None]
    if not todo:
        return
    names = sorted({n for k in todo for n in pair_list[k]})
    if _workers_read_cache(client, [features[n] for n in names]):
        # each task reads its images' descriptors from the shared cache: the client holds and
        # sends none (their unit float32 form is 4x the cached bytes), only the loaders
        units = [(features[n]._load, features[n].keypoints) for n in names]
    else:
        units = [(unit_descriptors(features[n].descriptors, f"features[{n!r}].descriptors"), features[n].keypoints)
                 for n in names]
    # sent once per image; a list, not a dict: the data get content-derived keys, never another
    # run's under the same name
    scattered = dict(zip(names, client.scatter(units)))
    chunks = [todo[c:c + PAIRS_PER_TASK] for c in range(0, len(todo), PAIRS_PER_TASK)]
    args = []
    for chunk in chunks:
        pairs = [pair_list[k] for k in chunk]
        args.append(({n: scattered[n] for n in {x for p in pairs for x in p}}, pairs, options))
    with Progress(len(todo), "matching (cluster)", unit="pair", enabled=progress) as bar:

        def done(c: int, matches: list[np.ndarray]) -> None:
            for k, m in zip(chunks[c], matches):
                results[k] = m if cache is None else _stored(cache, keys[k], pair_list[k], features, m)
            bar.update(len(matches))

        run_tasks(client, _match_chunk, args, done)


def match_all(
    pairs: Iterable[tuple[str, str]],
    features: Mapping[str, Features],
    options: MatchOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    num_threads: int = 2,
    progress: bool = True,
    client=None,
) -> MatchResults | StreamedMatchResults:
    """Match descriptors for each pair of image names; -> {(name1, name2): (K,2) int64 indices}
    (with a cache, a :class:`StreamedMatchResults` that reads each pair's matches back from it).

    pairs : (name1, name2) tuples, e.g. ``[(names[i], names[j]) for i, j in exhaustive_pairs(n)]``;
        repeated pairs are matched once. The result keeps the order of first appearance.
    features : name -> Features (e.g. ``extract_all(...).features``).
    cache_dir : cache folder (shared with :func:`extract_all`); entries are keyed by both
        images' descriptors and the options.
    client : a ``dask.distributed`` client: the pairs the cache lacks are matched by its workers
        (tasks of ``PAIRS_PER_TASK`` pairs; each image's descriptors sent once), the cache is
        filled here. Same result as a local run.
    Exact mutual-nearest-neighbour + ratio matching (:func:`match_descriptors`) in parallel.
    """
    options = _check_options(options, MatchOptions)
    num_threads = check_int(num_threads, "num_threads", minimum=1)
    pair_list = _normalise_pairs(pairs, features)
    cache = ArrayCache(cache_dir, "matches") if cache_dir is not None else None
    used = {n for p in pair_list for n in p}
    digests = {n: _match_digest(features[n], options) for n in used} if cache is not None else {}

    @functools.lru_cache(maxsize=32)
    def unit(name: str) -> np.ndarray:
        return unit_descriptors(features[name].descriptors, f"features[{name!r}].descriptors")

    @functools.lru_cache(maxsize=32)
    def groups(name: str) -> np.ndarray:
        return location_groups(features[name].keypoints, options.location_px)

    results: list = [None] * len(pair_list)
    hits = [False] * len(pair_list)
    if client is not None:
        keys = [match_key(digests[a], digests[b], options) for a, b in pair_list] if cache is not None else None
        _match_on_cluster(client, pair_list, features, options, cache, keys, results, hits, progress)
    inner_threads = num_threads if len(pair_list) == 1 else 1  # one pair: split its rows instead
    with Progress(len(pair_list), "matching", unit="pair", enabled=progress) as bar, blas_single_threaded() as ok:

        def work(k: int, stop: threading.Event):
            if results[k] is not None:  # done on the cluster
                bar.update()
                return
            if stopping(stop):
                return
            a, b = pair_list[k]
            key = None
            if cache is not None:
                key = match_key(digests[a], digests[b], options)
                hit = cache.load(key, matches_builder(len(features[a]), len(features[b])))
                if hit is not None:
                    results[k] = _StoredMatches.of(key, (a, b), features, hit)
                    hits[k] = True
                    bar.update()
                    return
            A, B = unit(a), unit(b)
            if len(A) and len(B) and A.shape[1] != B.shape[1]:
                raise ValueError(f"descriptors of {a!r} and {b!r} differ in length: {A.shape[1]} vs {B.shape[1]}")
            g = pair_groups(groups(a), groups(b), len(A), len(B)) if options.location_px > 0 else None
            m = _match_unit(A, B, options, num_threads=inner_threads, stop=stop, groups=g)
            results[k] = m if cache is None else _stored(cache, key, (a, b), features, m)
            bar.update()

        map_threads(work, len(pair_list), min(num_threads if ok else 1, max(1, len(pair_list))))
    entries = dict(zip(pair_list, results))
    out = MatchResults(entries) if cache is None else StreamedMatchResults(cache, entries)
    out.num_cached = sum(hits)
    return out
