"""On-disk caches of features and matches, keyed by content, written atomically, never trusted blindly.

Keys (sha256 hex):
- features: the image file's bytes + :class:`FeatureOptions` + the OpenCV version + the format
  version. Renaming or moving an image keeps its key; editing one pixel changes it.
- matches: the descriptor digests of both images (order matters) + :class:`MatchOptions`.

Files are ``.npz`` without pickles (``<root>/<kind>/<key[:2]>/<key>.npz``), written through a
temporary file and ``os.replace``, so a crash never leaves a half-written entry. On load every
array is read in full (the zip CRC-32 catches flipped bytes), the stored key must equal the
requested one and the arrays must form valid features or in-range matches; anything else counts
as a miss (a :class:`CacheWarning` is issued) and the caller recomputes and overwrites it.
Opening a cache removes the temporary files that writers killed mid-write left behind (those of
live processes are kept: see :func:`geomvision._atomic.remove_stale_temp_files`).
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from .._atomic import atomic_write, remove_stale_temp_files
from .options import FeatureOptions, MatchOptions
from .types import Features, StreamedFeatures

__all__ = ["ArrayCache", "CacheWarning", "DescriptorStore", "bytes_digest", "feature_key", "match_key"]

FORMAT_VERSION = 1
T = TypeVar("T")


class CacheWarning(UserWarning):
    """A cache entry was unreadable or did not validate (it is recomputed), or could not be written."""


def bytes_digest(data: bytes | bytearray | memoryview) -> str:
    """sha256 hex digest of raw bytes (an image file's content)."""
    return hashlib.sha256(data).hexdigest()


def feature_key(image_digest: str, options: FeatureOptions) -> str:
    """Cache key of the features of an image with content digest ``image_digest``."""
    text = f"geomvision-features/v{FORMAT_VERSION}/opencv-{cv2.__version__}/{image_digest}/{options.fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()


def match_key(descriptor_digest1: str, descriptor_digest2: str, options: MatchOptions) -> str:
    """Cache key of the matches from descriptors with digest 1 to descriptors with digest 2."""
    text = f"geomvision-matches/v{FORMAT_VERSION}/{descriptor_digest1}/{descriptor_digest2}/{options.fingerprint()}"
    return hashlib.sha256(text.encode()).hexdigest()


# numpy parses .npy headers with ast.literal_eval, and CPython 3.11 up to 3.11.8 can fail in the
# ast module when two threads do that at once ("SystemError: AST constructor recursion depth
# mismatch", seen once in this project's test run with parallel feature extraction): reads of
# cache entries take turns (they are short next to the extraction they replace).
_NPY_HEADER_LOCK = threading.Lock()


class ArrayCache:
    """A folder of ``.npz`` entries named by key: ``save(key, arrays)`` / ``load(key, build)``.

    Opening it removes stale temporary files of killed writers (``num_stale_removed`` says how many).
    """

    def __init__(self, root: str | os.PathLike, kind: str) -> None:
        if not kind.isidentifier():
            raise ValueError(f"kind must be a plain name like 'features', got {kind!r}")
        self.folder = Path(root) / kind
        self.kind = kind
        self.num_stale_removed = remove_stale_temp_files(self.folder) if self.folder.is_dir() else 0

    def path(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"key must be a lowercase hex digest, got {key!r}")
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str, build: Callable[[dict[str, np.ndarray]], T]) -> T | None:
        """The entry for ``key`` turned into a value by ``build(arrays)``; None on a miss.

        ``build`` raises ``ValueError`` on arrays that do not form a valid value. Unreadable or
        invalid entries give a :class:`CacheWarning` and None.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with _NPY_HEADER_LOCK, np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}  # reads everything: CRC-checked
            stored = arrays.pop("__key__", None)
            if stored is None or str(stored) != key:
                raise ValueError("stored key differs from the file name")
            version = arrays.pop("__version__", None)
            if version is None or int(version) != FORMAT_VERSION:
                raise ValueError(f"format version {version} != {FORMAT_VERSION}")
            return build(arrays)
        except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            warnings.warn(f"{self.kind} cache entry {path} is corrupt ({exc}); recomputing", CacheWarning, stacklevel=2)
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> bool:
        """Write the entry atomically; a failure (full disk, read-only folder) warns and returns False."""
        path = self.path(key)
        payload = dict(arrays)
        payload["__key__"] = np.array(key)
        payload["__version__"] = np.array(FORMAT_VERSION)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "wb") as f:
                np.savez(f, **payload)
        except OSError as exc:
            warnings.warn(f"cannot write {self.kind} cache entry {path} ({exc})", CacheWarning, stacklevel=2)
            return False
        return True


def features_from_arrays(arrays: dict[str, np.ndarray]) -> Features:
    """Build cached features; ``ValueError`` when malformed."""
    return Features.from_arrays(arrays)


def matches_builder(n1: int, n2: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A ``build`` for cached matches between images with n1 and n2 features (checks the ranges)."""

    def build(arrays: dict[str, np.ndarray]) -> np.ndarray:
        m = arrays["matches"]
        if m.ndim != 2 or m.shape[1] != 2 or m.dtype.kind not in "iu":
            raise ValueError(f"matches must be (K,2) integers, got {m.dtype}{m.shape}")
        m = m.astype(np.int64)
        if len(m) and (m.min() < 0 or m[:, 0].max() >= n1 or m[:, 1].max() >= n2):
            raise ValueError(f"match indices out of range for {n1} x {n2} features")
        return m

    return build


# descriptors held in memory at once by a DescriptorStore: all of them up to ~8,000 images of
# 1,000 SIFT features (or ~1,000 photos of 8,000); beyond, the least recently used are read again
DESCRIPTOR_MEMORY_BYTES = 1 << 30


def _descriptors_of(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return features_from_arrays(arrays).descriptors


class DescriptorStore:
    """Descriptors read back from a features cache, the most recently used kept in memory up to
    ``max_bytes`` in all (thread-safe). :meth:`stream` turns Features saved under a key into
    :class:`StreamedFeatures` that read theirs through the store, so that a set of images holds
    O(max_bytes) of descriptors whatever its size. Picklable (a copy starts empty)."""

    def __init__(self, cache: ArrayCache, max_bytes: int | None = None) -> None:
        self.cache = cache
        self.max_bytes = int(DESCRIPTOR_MEMORY_BYTES if max_bytes is None else max_bytes)
        self._init_memory()

    def _init_memory(self) -> None:
        self._held: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.num_reads = 0

    def __getstate__(self):
        return {"cache": self.cache, "max_bytes": self.max_bytes}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._init_memory()

    def get(self, key: str) -> np.ndarray:
        """The descriptors of the entry ``key``; ``ValueError`` when it is gone or corrupt."""
        with self._lock:
            d = self._held.get(key)
            if d is not None:
                self._held.move_to_end(key)
                return d
        d = self.cache.load(key, _descriptors_of)
        if d is None:
            raise ValueError(f"the descriptors of features entry {key} are missing from {self.cache.folder} or "
                             "corrupt (was the cache cleared while running?): rerun the feature extraction")
        with self._lock:
            self.num_reads += 1
            self._hold(key, d)
        return d

    def _hold(self, key: str, d: np.ndarray) -> None:
        if key not in self._held:
            self._held[key] = d
            self._bytes += d.nbytes
        self._held.move_to_end(key)
        while self._bytes > self.max_bytes and len(self._held) > 1:
            _, old = self._held.popitem(last=False)
            self._bytes -= old.nbytes

    def stream(self, features: Features, key: str) -> StreamedFeatures:
        """``features`` (saved in the cache under ``key``) without their descriptors in memory:
        the store keeps these while they are among the most recently used."""
        if not isinstance(features, StreamedFeatures):
            with self._lock:
                self._hold(key, features.descriptors)
        return StreamedFeatures(features, _StoredDescriptors(self, key))


class _StoredDescriptors:
    """``load()`` of a StreamedFeatures: its entry's descriptors through a DescriptorStore."""

    def __init__(self, store: DescriptorStore, key: str) -> None:
        self.store, self.key = store, key

    def __call__(self) -> np.ndarray:
        return self.store.get(self.key)


def stored_entry(features: Features) -> Path | None:
    """The cache file that streamed ``features`` read their descriptors from (None when they are
    held in memory or come from elsewhere)."""
    load = getattr(features, "_load", None) if isinstance(features, StreamedFeatures) else None
    return load.store.cache.path(load.key) if isinstance(load, _StoredDescriptors) else None
