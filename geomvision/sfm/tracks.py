"""Feature tracks: connected keypoints across images, built by union-find over verified matches.

A track is a set of (image_idx, keypoint_idx) that see the same scene point. Plain union-find
can chain two keypoints of one image into a track (A1-B1-A2): such a track is inconsistent. We
avoid them at construction: edges are merged strongest pair first, and a merge that would put
one image twice into a track is refused, which splits the component where its weakest link is
(as constrained union-find in OpenMVG/Theia). Tracks keep >= 2 observations.

Tracks are returned in CSR form (:class:`Tracks`), never as Python lists of tuples.

Two builders share one union-find kernel: :func:`build_tracks` (batch: all matches at once,
strongest pair first) and :class:`TrackBuilder` (incremental: images and matches arrive over
time). Fed the same matches in the same order, they give the same tracks; when no merge is
refused the order does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .._union_find import find_root


@dataclass
class Tracks:
    """``track t`` has observations ``image_idx[ptr[t]:ptr[t+1]]``, ``keypoint_idx[...]`` (sorted
    by image). ``track_of[offsets[i] + k]`` is the track of keypoint k of image i, or -1."""

    ptr: np.ndarray  # (T+1,) int64
    image_idx: np.ndarray  # (M,) int64
    keypoint_idx: np.ndarray  # (M,) int64
    track_of: np.ndarray  # (sum of keypoints,) int64
    offsets: np.ndarray  # (n_images + 1,) int64

    @property
    def num_tracks(self) -> int:
        return len(self.ptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.ptr)

    def observations(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.ptr[t], self.ptr[t + 1]
        return self.image_idx[s:e], self.keypoint_idx[s:e]

    def tracks_of_image(self, image_idx: int) -> np.ndarray:
        """(K,) track id of each keypoint of an image (-1: in no track)."""
        return self.track_of[self.offsets[image_idx] : self.offsets[image_idx + 1]]


@njit(cache=True)
def _merge_edges(parent, size, nxt, stamp, img_of, edges_a, edges_b, stamp_base):
    """Merge the sets of each edge's two nodes in order, refusing a merge that would put one
    image twice into a set; ``nxt`` links each set's members in a circle and ``stamp`` (per image)
    marks the images of a set (stamps ``stamp_base + e`` must not have been used before).
    Updates the arrays in place; returns the number of refused merges."""
    n_refused = 0
    for e0 in range(edges_a.shape[0]):
        e = stamp_base + e0
        ra = find_root(parent, edges_a[e0])
        rb = find_root(parent, edges_b[e0])
        if ra == rb:
            continue
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        # mark the images of the larger set, then look for a clash among the smaller one's
        m = ra
        while True:
            stamp[img_of[m]] = e
            m = nxt[m]
            if m == ra:
                break
        clash = False
        m = rb
        while True:
            if stamp[img_of[m]] == e:
                clash = True
                break
            m = nxt[m]
            if m == rb:
                break
        if clash:
            n_refused += 1
            continue
        parent[rb] = ra
        size[ra] += size[rb]
        tmp = nxt[ra]
        nxt[ra] = nxt[rb]
        nxt[rb] = tmp
    return n_refused


@njit(cache=True)
def _roots(parent, n_nodes):
    roots = np.empty(n_nodes, dtype=np.int64)
    for i in range(n_nodes):
        roots[i] = find_root(parent, i)
    return roots


@njit(cache=True)
def _constrained_union_find(edges_a, edges_b, img_of, n_nodes, n_images):
    parent = np.arange(n_nodes)
    size = np.ones(n_nodes, dtype=np.int64)
    nxt = np.arange(n_nodes)  # circular linked list of each set's members
    stamp = np.full(n_images, -1, dtype=np.int64)
    n_refused = _merge_edges(parent, size, nxt, stamp, img_of, edges_a, edges_b, 0)
    roots = np.empty(n_nodes, dtype=np.int64)
    for i in range(n_nodes):
        roots[i] = find_root(parent, i)
    return roots, n_refused


def build_tracks(
    num_keypoints: np.ndarray,
    pair_matches: dict[tuple[int, int], np.ndarray],
    pair_weights: dict[tuple[int, int], float] | None = None,
    min_track_length: int = 2,
) -> tuple[Tracks, int]:
    """Tracks from verified matches.

    num_keypoints: (n_images,) keypoints per image. pair_matches: ``(i, j) -> (K,2)`` keypoint
    indices (column 0 in image i, column 1 in image j). pair_weights: merge priority per pair
    (e.g. its inlier count; default: the number of matches) — stronger pairs merge first.
    Returns ``(tracks, n_refused)`` where ``n_refused`` counts merges refused because they would
    put one image twice into a track.
    """
    num_keypoints = np.asarray(num_keypoints, dtype=np.int64)
    n_images = len(num_keypoints)
    offsets = np.zeros(n_images + 1, dtype=np.int64)
    np.cumsum(num_keypoints, out=offsets[1:])
    n_nodes = int(offsets[-1])
    img_of = np.repeat(np.arange(n_images, dtype=np.int64), num_keypoints)

    keys = sorted(pair_matches)
    for i, j in keys:
        if not (0 <= i < n_images and 0 <= j < n_images) or i == j:
            raise ValueError(f"pair_matches has an invalid pair ({i}, {j}) for {n_images} images")
    weights = np.array([(pair_weights or {}).get(k, len(pair_matches[k])) for k in keys], dtype=float)
    # stable order: strongest pair first, ties by pair index
    order = np.lexsort((np.arange(len(keys)), -weights))
    ea, eb = [], []
    for idx in order:
        i, j = keys[idx]
        a, b = _match_edges(i, j, pair_matches[(i, j)], num_keypoints, offsets)
        ea.append(a)
        eb.append(b)
    edges_a = np.concatenate(ea) if ea else np.zeros(0, np.int64)
    edges_b = np.concatenate(eb) if eb else np.zeros(0, np.int64)
    roots, n_refused = _constrained_union_find(edges_a, edges_b, img_of, n_nodes, n_images)
    return _tracks_from_roots(roots, img_of, offsets, min_track_length), int(n_refused)


def _match_edges(i: int, j: int, matches, num_keypoints: np.ndarray, offsets: np.ndarray):
    m = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
    if len(m) and (m.min() < 0 or m[:, 0].max() >= num_keypoints[i] or m[:, 1].max() >= num_keypoints[j]):
        raise ValueError(f"pair_matches[({i}, {j})] has keypoint indices out of range")
    return offsets[i] + m[:, 0], offsets[j] + m[:, 1]


def _tracks_from_roots(roots: np.ndarray, img_of: np.ndarray, offsets: np.ndarray, min_track_length: int) -> Tracks:
    """Tracks (groups of nodes with one root) of at least ``min_track_length`` (and 2) nodes,
    ordered by root; observations within a track by node id (hence by image)."""
    n_nodes = len(roots)
    # group nodes by root; keep groups with enough observations
    order = np.argsort(roots, kind="stable")
    _, counts = np.unique(roots[order], return_counts=True)
    keep = counts >= max(2, min_track_length)
    track_of = np.full(n_nodes, -1, dtype=np.int64)
    sizes = counts[keep]
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    members = order[np.repeat(keep, counts)]  # nodes of kept groups, grouped, ascending within a group
    track_ids = np.repeat(np.arange(len(sizes)), sizes)
    track_of[members] = track_ids
    # members are sorted by node id within a track, hence by image
    image_idx = img_of[members]
    keypoint_idx = members - offsets[image_idx]
    return Tracks(ptr, image_idx, keypoint_idx, track_of, offsets)


def _grown(a: np.ndarray, n: int, fill) -> np.ndarray:
    """``a`` with room for at least ``n`` entries: capacity doubled, new entries ``fill``."""
    if n <= len(a):
        return a
    out = np.full(max(n, 2 * len(a), 16), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


class TrackBuilder:
    """Tracks built incrementally: add images and verified matches at any time.

    The same constrained union-find as :func:`build_tracks` (a merge that would put one image
    twice into a track is refused), over nodes numbered image after image; its arrays grow by
    capacity doubling. Feeding the pairs in :func:`build_tracks`'s order (strongest first) gives
    exactly its tracks; without refused merges any order does.

        builder = TrackBuilder()
        i = builder.add_image(len(keypoints_i))
        builder.add_matches(i, j, matches_ij)  # (K,2): keypoint in i, keypoint in j
        tracks = builder.tracks()              # a Tracks snapshot
    """

    def __init__(self, num_keypoints=()) -> None:
        self._n_nodes = 0
        self._parent = np.zeros(0, np.int64)
        self._size = np.zeros(0, np.int64)
        self._nxt = np.zeros(0, np.int64)
        self._img_of = np.zeros(0, np.int64)
        self._stamp = np.zeros(0, np.int64)
        self._stamp_base = 0
        self.num_keypoints: list[int] = []
        self._offsets = [0]
        self.num_refused = 0
        for n in num_keypoints:
            self.add_image(int(n))

    @property
    def num_images(self) -> int:
        return len(self.num_keypoints)

    def add_image(self, num_keypoints: int) -> int:
        """A new image with ``num_keypoints`` keypoints (each its own singleton); returns its index."""
        n = int(num_keypoints)
        if n < 0:
            raise ValueError(f"num_keypoints must be >= 0, got {num_keypoints!r}")
        i = self.num_images
        a, b = self._n_nodes, self._n_nodes + n
        self._parent = _grown(self._parent, b, 0)
        self._size = _grown(self._size, b, 1)
        self._nxt = _grown(self._nxt, b, 0)
        self._img_of = _grown(self._img_of, b, 0)
        self._stamp = _grown(self._stamp, i + 1, -1)
        self._parent[a:b] = np.arange(a, b)
        self._nxt[a:b] = np.arange(a, b)
        self._size[a:b] = 1
        self._img_of[a:b] = i
        self._n_nodes = b
        self.num_keypoints.append(n)
        self._offsets.append(b)
        return i

    def add_matches(self, i: int, j: int, matches: np.ndarray) -> int:
        """Merge the tracks of matched keypoints ``matches`` (K,2) (column 0 in image i, column 1
        in image j), in row order. Returns the number of merges refused."""
        if not (0 <= i < self.num_images and 0 <= j < self.num_images) or i == j:
            raise ValueError(f"add_matches: invalid pair ({i}, {j}) for {self.num_images} images")
        nk = np.asarray(self.num_keypoints, dtype=np.int64)
        off = np.asarray(self._offsets, dtype=np.int64)
        ea, eb = _match_edges(i, j, matches, nk, off)
        refused = _merge_edges(self._parent, self._size, self._nxt, self._stamp, self._img_of,
                               np.ascontiguousarray(ea), np.ascontiguousarray(eb), self._stamp_base)
        self._stamp_base += len(ea)
        self.num_refused += int(refused)
        return int(refused)

    def tracks(self, min_track_length: int = 2) -> Tracks:
        """The current tracks (ids are those of this snapshot: a merge renumbers them)."""
        n = self._n_nodes
        roots = _roots(self._parent, n)
        offsets = np.asarray(self._offsets, dtype=np.int64)
        return _tracks_from_roots(roots, self._img_of[:n].copy(), offsets, min_track_length)
