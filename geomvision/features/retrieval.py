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
for a given ``rng``. Combine with the sequential window:
``union_pairs(sequential_pairs(names, 10), similar_pairs([features[n] for n in names], 5))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import RngLike, as_rng, check_int
from .matching import unit_descriptors
from .pairs import union_pairs
from .types import Features

__all__ = ["similar_pairs", "train_vocabulary", "vlad_descriptors"]


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
    descs = [unit_descriptors(f.descriptors) for f in features if len(f)]
    if not descs:
        raise ValueError("features hold no descriptors: cannot train a vocabulary")
    X = np.concatenate(descs)
    if len(X) > max_samples:
        X = X[np.sort(gen.choice(len(X), max_samples, replace=False))]
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


def similar_pairs(
    features: Sequence[Features],
    num_neighbors: int = 5,
    *,
    vocabulary_size: int = 64,
    rng: RngLike = 0,
) -> np.ndarray:
    """(P,2) index pairs (i < j): each image with its ``num_neighbors`` most similar images.

    Similarity is the cosine of the :func:`vlad_descriptors` over a vocabulary trained on these
    features. Indices refer to positions in ``features``.
    """
    num_neighbors = check_int(num_neighbors, "num_neighbors", minimum=1)
    n = len(features)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    words = train_vocabulary(features, vocabulary_size, rng=rng)
    g = vlad_descriptors(features, words)
    sim = g @ g.T
    np.fill_diagonal(sim, -np.inf)
    k = min(num_neighbors, n - 1)
    # stable order: by decreasing similarity, ties by index
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    rows = np.column_stack([np.repeat(np.arange(n), k), order.ravel()])
    return union_pairs(rows)
