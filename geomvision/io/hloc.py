"""hloc's HDF5 features and matches (``features.h5``, ``matches.h5``; needs h5py: ``pip install
"geomvision[h5]"``).

Layout (hloc ``extract_features.py`` / ``match_features.py`` / ``utils/io.py``):

- features: one group per image name (a name with ``/`` is a nested group) holding
  ``keypoints`` (N,2) float pixels, optional ``descriptors`` (D,N) (one column per keypoint),
  ``scores`` (N,), ``image_size`` (2,) = (width, height), and for SIFT ``scales`` / ``oris``.
- matches: one group per pair, named ``names_to_pair(name0, name1)`` = the two names with ``/``
  replaced by ``-``, joined by ``/`` (so a nested group ``name0/name1``); older files join them
  by ``_`` into one flat group. It holds ``matches0`` (N0,) int: the index of the matching
  keypoint of image 1 for each keypoint of image 0, -1 for none, and ``matching_scores0`` (N0,).

Pixel convention: hloc's keypoints put the centre of the top-left pixel at (0, 0), like
geomvision (hloc rescales them as ``(kp + 0.5) * scale - 0.5`` and adds 0.5 only when it writes a
COLMAP database), so keypoints are read and written unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_writer_arguments

__all__ = ["HlocFeatures", "hloc_pair_name", "read_hloc_features", "read_hloc_matches", "write_hloc_features",
           "write_hloc_matches"]


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError('reading hloc files needs h5py: pip install "geomvision[h5]" (or pip install h5py)') from None
    return h5py


@dataclass
class HlocFeatures:
    """The features of one image as hloc stores them, in geomvision's layout.

    keypoints : (N,2) float64 pixels, (0, 0) the centre of the top-left pixel.
    descriptors : (N,D) float32 (hloc's (D,N) transposed) or None.
    scores, scales, orientations_rad : (N,) float64 or None.
    image_size : (width, height) or None.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray | None = None
    scores: np.ndarray | None = None
    scales: np.ndarray | None = None
    orientations_rad: np.ndarray | None = None
    image_size: tuple[int, int] | None = None


def hloc_pair_name(name0: str, name1: str, separator: str = "/") -> str:
    """hloc's ``names_to_pair``: the key of the pair (name0, name1) in a matches file."""
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


def _vector(group, key: str, n: int, path) -> np.ndarray | None:
    if key not in group:
        return None
    v = np.asarray(group[key][()], dtype=np.float64).reshape(-1)
    if len(v) != n:
        raise ValueError(f"{path}: {group.name}/{key} has {len(v)} entries for {n} keypoints")
    return v


def read_hloc_features(path: str | os.PathLike) -> dict[str, HlocFeatures]:
    """Every image's features in an hloc ``features.h5`` -> {image name: HlocFeatures}.

    A group is an image when it holds a ``keypoints`` dataset (its path is the name). Raises
    ``ValueError`` for keypoints that are not (N,2), descriptors that do not have one column per
    keypoint, or a file without any image."""
    h5py = _h5py()
    out: dict[str, HlocFeatures] = {}
    with h5py.File(path, "r") as f:
        groups = []
        f.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group) and "keypoints" in obj
                     else None)
        for name in sorted(groups):
            g = f[name]
            kp = np.asarray(g["keypoints"][()], dtype=np.float64)
            if kp.ndim != 2 or kp.shape[1] != 2:
                raise ValueError(f"{path}: {name}/keypoints must be (N,2), got {kp.shape}")
            n = len(kp)
            desc = None
            if "descriptors" in g:
                d = np.asarray(g["descriptors"][()])
                if d.ndim != 2 or d.shape[1] != n:
                    raise ValueError(f"{path}: {name}/descriptors must be (D,N) with N = {n} keypoints (hloc stores "
                                     f"one column per keypoint), got {d.shape}")
                desc = np.ascontiguousarray(d.T, dtype=np.float32)
            size = None
            if "image_size" in g:
                s = np.asarray(g["image_size"][()]).reshape(-1)
                size = (int(s[0]), int(s[1]))
            out[name] = HlocFeatures(kp, desc, _vector(g, "scores", n, path), _vector(g, "scales", n, path),
                                     _vector(g, "oris", n, path), size)
    if not out:
        raise ValueError(f"{path} holds no image features (no group with a 'keypoints' dataset): is it an hloc "
                         "features file?")
    return out


def read_hloc_matches(path: str | os.PathLike, names: list[str],
                      num_keypoints: dict[str, int] | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Every pair of the images ``names`` in an hloc ``matches.h5`` -> {(name0, name1): (K,2)
    int64 keypoint indices (image 0, image 1)}, in the file's order of the two names.

    Pairs are found under hloc's current key (``name0/name1`` nested) and the older flat one
    (``name0_name1``). ``num_keypoints`` (per name) checks the indices. Raises ``ValueError`` for
    a pair whose images are not among ``names`` or indices out of range."""
    h5py = _h5py()
    flat = {n.replace("/", "-"): n for n in names}
    out: dict[tuple[str, str], np.ndarray] = {}
    with h5py.File(path, "r") as f:
        found = []
        f.visititems(lambda key, obj: found.append(key) if isinstance(obj, h5py.Group) and "matches0" in obj
                     else None)
        for key in found:
            pair = _split_pair(key, flat)
            if pair is None:
                raise ValueError(f"{path}: pair {key!r} does not name two of the {len(names)} images (as hloc's "
                                 "names_to_pair does); were the features extracted for other images?")
            m0 = np.asarray(f[key]["matches0"][()]).astype(np.int64).reshape(-1)
            idx = np.flatnonzero(m0 >= 0)
            m = np.stack([idx, m0[idx]], axis=1)
            if num_keypoints is not None and len(m0):
                n0, n1 = num_keypoints[pair[0]], num_keypoints[pair[1]]
                if len(m0) != n0 or (len(m) and m[:, 1].max() >= n1):
                    raise ValueError(f"{path}: {key}/matches0 does not fit the {n0} and {n1} keypoints of the images")
            out[pair] = m
    return out


def _split_pair(key: str, flat: dict[str, str]) -> tuple[str, str] | None:
    """The two image names of a pair key (``a/b``, or the older ``a_b``)."""
    for sep in ("/", "_"):
        parts = key.split(sep)
        for k in range(1, len(parts)):
            a, b = sep.join(parts[:k]), sep.join(parts[k:])
            if a in flat and b in flat:
                return flat[a], flat[b]
    return None


def write_hloc_features(features: dict[str, HlocFeatures], path: str | os.PathLike) -> None:
    """Write features in hloc's ``features.h5`` layout (descriptors stored (D,N), as hloc does)."""
    check_writer_arguments(features, "write_hloc_features", "(features, path)")
    h5py = _h5py()
    with h5py.File(Path(path), "w") as f:
        for name, feats in features.items():
            g = f.create_group(name)
            g.create_dataset("keypoints", data=np.asarray(feats.keypoints, np.float32))
            if feats.descriptors is not None:
                g.create_dataset("descriptors", data=np.ascontiguousarray(np.asarray(feats.descriptors).T))
            for key, value in (("scores", feats.scores), ("scales", feats.scales), ("oris", feats.orientations_rad)):
                if value is not None:
                    g.create_dataset(key, data=np.asarray(value, np.float32))
            if feats.image_size is not None:
                g.create_dataset("image_size", data=np.asarray(feats.image_size, np.int64))


def write_hloc_matches(matches: dict[tuple[str, str], np.ndarray], num_keypoints: dict[str, int],
                       path: str | os.PathLike, *, old_pair_names: bool = False) -> None:
    """Write matches {(name0, name1): (K,2)} in hloc's ``matches.h5`` layout (``matches0`` with -1
    for unmatched keypoints of image 0, ``matching_scores0`` 1 for matched ones); with
    ``old_pair_names`` the pairs get hloc's older flat ``name0_name1`` keys."""
    check_writer_arguments(matches, "write_hloc_matches", "(matches, num_keypoints, path)")
    h5py = _h5py()
    with h5py.File(Path(path), "w") as f:
        for (a, b), m in matches.items():
            m = np.asarray(m, np.int64).reshape(-1, 2)
            m0 = np.full(num_keypoints[a], -1, np.int64)
            m0[m[:, 0]] = m[:, 1]
            g = f.create_group(hloc_pair_name(a, b, "_" if old_pair_names else "/"))
            g.create_dataset("matches0", data=m0.astype(np.int16 if len(m0) < 2**15 and num_keypoints[b] < 2**15
                                                       else np.int32))
            g.create_dataset("matching_scores0", data=(m0 >= 0).astype(np.float16))
