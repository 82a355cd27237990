"""A cheap global image descriptor (VLAD) to propose loop-closure pairs.

Sequential matching only pairs images that are close in the sequence; a camera that comes back
to a place it saw earlier needs pairs far apart in it. :func:`similar_pairs` proposes them:

1. a vocabulary of ``vocabulary_size`` visual words by spherical k-means (Lloyd iterations from
   sampled seeds, fixed ``rng``) on a sample of the images' own unit descriptors;
2. per image a VLAD vector (Jegou et al. 2010, with intra-normalisation and signed square root):
   the residuals of its descriptors to their nearest words, summed per word;
3. for each image, the ``num_neighbors`` images with the largest cosine similarity.

VLAD with 64 words ranked the loop closure of ``shared/datasets/desk-loop`` (frames 01 and 10)
first for every seed tried, where a tf-idf bag of 256 words depended on the seed. Deterministic
for a given ``rng``. Combine with the sequential window, asking for neighbours beyond it:
``w = sequential_pairs(names, 10)``, ``union_pairs(w, similar_pairs([features[n] for n in names], 5, exclude=w))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import RngLike, as_rng, check_int
from .matching import unit_descriptors
from .pairs import union_pairs
from .types import Features

__all__ = ["similar_pairs", "top_similar_pairs", "train_vocabulary", "vlad_descriptors"]


def _nearest_word(X: np.ndarray, words: np.ndarray, block: int = 8192) -> np.ndarray:
    """Index of the most similar word (max dot product of unit vectors) per row of X."""
    out = np.empty(len(X), np.int64)
    for i0 in range(0, len(X), block):
        out[i0 : i0 + block] = np.argmax(X[i0 : i0 + block] @ words.T, axis=1)
    return out


def train_vocabulary(
    features: Sequence[Features],
    vocabulary_size: int = 64,
    *,
    max_samples: int = 20_000,
    iterations: int = 10,
    rng: RngLike = 0,
) -> np.ndarray:
    """(V, D) float32 unit visual words by spherical k-means on a sample of the descriptors."""
    vocabulary_size = check_int(vocabulary_size, "vocabulary_size", minimum=2)
    max_samples = check_int(max_samples, "max_samples", minimum=vocabulary_size)
    iterations = check_int(iterations, "iterations", minimum=1)
    gen = as_rng(rng)
    feats = [f for f in features if len(f)]
    if not feats:
        raise ValueError("features hold no descriptors: cannot train a vocabulary")
    # sample before converting, so that memory stays O(max_samples) for thousands of images
    # (the same rows as converting all and sampling the concatenation)
    counts = np.array([len(f) for f in feats], dtype=np.int64)
    total = int(counts.sum())
    if total > max_samples:
        take = np.sort(gen.choice(total, max_samples, replace=False))
        bounds = np.searchsorted(take, np.concatenate([[0], np.cumsum(counts)]))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        descs = [unit_descriptors(f.descriptors[take[bounds[k] : bounds[k + 1]] - starts[k]])
                 for k, f in enumerate(feats) if bounds[k + 1] > bounds[k]]
    else:
        descs = [unit_descriptors(f.descriptors) for f in feats]
    X = np.concatenate(descs)
    k = min(vocabulary_size, len(X))
    # seeds: k distinct sampled descriptors (k-means++ seeding cost more than it gained here)
    words = X[np.sort(gen.choice(len(X), k, replace=False))].copy()
    for _ in range(iterations):
        assign = _nearest_word(X, words)
        order = np.argsort(assign, kind="stable")
        used, starts = np.unique(assign[order], return_index=True)
        sums = np.add.reduceat(X[order], starts, axis=0, dtype=np.float64)  # per-word sums
        norms = np.linalg.norm(sums, axis=1)
        ok = norms > 0
        words[used[ok]] = (sums[ok] / norms[ok, None]).astype(np.float32)
    return words


def vlad_descriptors(features: Sequence[Features], words: np.ndarray) -> np.ndarray:
    """(n, V * D) VLAD vectors: per word, the sum of the residuals of the descriptors assigned to it,
    scaled to unit norm per word (intra-normalisation), then signed square root and unit norm.
    A featureless image gives a zero row."""
    words = np.asarray(words, dtype=np.float32)
    V, D = words.shape
    out = np.zeros((len(features), V * D), np.float64)
    for k, f in enumerate(features):
        if not len(f):
            continue
        X = unit_descriptors(f.descriptors)
        if X.shape[1] != D:
            raise ValueError(f"features[{k}] has descriptors of length {X.shape[1]}, the vocabulary {D}")
        assign = _nearest_word(X, words)
        order = np.argsort(assign, kind="stable")
        used, starts = np.unique(assign[order], return_index=True)
        resid = np.zeros((V, D), np.float64)
        resid[used] = np.add.reduceat((X - words[assign])[order], starts, axis=0, dtype=np.float64)
        norms = np.linalg.norm(resid, axis=1, keepdims=True)
        v = (resid / np.where(norms > 0, norms, 1.0)).ravel()
        v = np.sign(v) * np.sqrt(np.abs(v))
        total = np.linalg.norm(v)
        out[k] = v / total if total > 0 else v
    return out


def top_similar_pairs(
    descriptors: np.ndarray,
    num_neighbors: int,
    *,
    exclude: np.ndarray | None = None,
    block: int = 1024,
) -> np.ndarray:
    """(P,2) index pairs (i < j): each row of ``descriptors`` with the ``num_neighbors`` rows of the
    largest dot product (cosine for the unit rows of :func:`vlad_descriptors`).

    exclude : (Q,2) index pairs never proposed, in either order (e.g. a sequential window: each
        image then gets its ``num_neighbors`` most similar images *beyond* the window).
    Zero rows (featureless images) are nobody's neighbour. An image with fewer allowed partners
    than ``num_neighbors`` gets them all. Ties are broken by the lower index; rows are processed
    ``block`` at a time so that the n x n similarity matrix is never held.
    """
    num_neighbors = check_int(num_neighbors, "num_neighbors", minimum=1)
    block = check_int(block, "block", minimum=1)
    g = np.asarray(descriptors, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"descriptors must have shape (n, D), got {g.shape}")
    n = len(g)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    ex = union_pairs(np.zeros((0, 2), np.int64) if exclude is None else np.asarray(exclude))
    if len(ex) and ex.max() >= n:
        raise ValueError(f"exclude holds an index >= the number of descriptors ({n})")
    ex = np.concatenate([ex, ex[:, ::-1]])
    ex = ex[np.argsort(ex[:, 0], kind="stable")]
    featureless = ~np.any(g != 0, axis=1)
    k = min(num_neighbors, n - 1)
    rows = []
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        sim = g[i0:i1] @ g.T
        sim[np.arange(i1 - i0), np.arange(i0, i1)] = -np.inf
        a, b = np.searchsorted(ex[:, 0], [i0, i1])
        sim[ex[a:b, 0] - i0, ex[a:b, 1]] = -np.inf
        sim[:, featureless] = -np.inf
        sim[featureless[i0:i1]] = -np.inf
        # stable order: by decreasing similarity, ties by index
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        ok = np.isfinite(np.take_along_axis(sim, order, axis=1))
        src = np.broadcast_to(np.arange(i0, i1)[:, None], order.shape)
        rows.append(np.column_stack([src[ok], order[ok]]))
    return union_pairs(*rows)


def similar_pairs(
    features: Sequence[Features],
    num_neighbors: int = 5,
    *,
    vocabulary_size: int = 64,
    exclude: np.ndarray | None = None,
    rng: RngLike = 0,
) -> np.ndarray:
    """(P,2) index pairs (i < j): each image with its ``num_neighbors`` most similar images.

    Similarity is the cosine of the :func:`vlad_descriptors` over a vocabulary trained on these
    features (:func:`top_similar_pairs`; ``exclude``: pairs never proposed, e.g. a sequential
    window). Indices refer to positions in ``features``; featureless images get no pairs.
    """
    num_neighbors = check_int(num_neighbors, "num_neighbors", minimum=1)
    if len(features) < 2:
        return np.zeros((0, 2), np.int64)
    words = train_vocabulary(features, vocabulary_size, rng=rng)
    return top_similar_pairs(vlad_descriptors(features, words), num_neighbors, exclude=exclude)
