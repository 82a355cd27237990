"""Outside features and matches into a project folder, in place of ``geomvision extract`` (COLMAP's
``feature_importer`` / ``matches_importer``): learned features (SuperPoint, DISK, ALIKED ...) and
their matches (LightGlue, SuperGlue ...) then go through geomvision's verification and mapping.

:func:`import_features` takes plain arrays (``geomvision.io.hloc`` reads hloc's HDF5 files into
them) and records them as the extract stage would: the features in the project's cache,
``features.json`` with ``source = "imported:<what>"``, and the matches in
``imported_matches.npz``, which ``geomvision match`` verifies (``--matcher imported``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..features.batch import ExtractionResult
from ..features.pairs import natural_sort_key
from ..features.types import Features
from ..imageio import image_size, read_image
from .project import (IMPORTED_MATCHES_NPZ, FeatureIndex, feature_cache, write_feature_index,
                      write_imported_matches)

__all__ = ["import_features"]


def _size_of(name: str, sizes: Mapping, image_dir: Path | None) -> tuple[int, int]:
    if name in sizes and sizes[name] is not None:
        return int(sizes[name][0]), int(sizes[name][1])
    if image_dir is not None and (image_dir / name).is_file():
        return image_size(image_dir / name)
    raise ValueError(f"the size of image {name!r} is unknown: give the image folder (--images) or store its "
                     "image_size with the features")


def _colors(path: Path, keypoints: np.ndarray) -> np.ndarray:
    """(N,3) uint8 RGB of the pixel nearest each keypoint, grey when the image is not at hand."""
    if not str(path) or not path.is_file():
        return np.full((len(keypoints), 3), 128, np.uint8)
    img = read_image(path)
    h, w = img.shape[:2]
    u = np.clip(np.rint(keypoints[:, 0]).astype(np.int64), 0, w - 1)
    v = np.clip(np.rint(keypoints[:, 1]).astype(np.int64), 0, h - 1)
    return img[v, u].reshape(-1, 3)


def _key(name: str, feats: Features, source: str) -> str:
    h = hashlib.sha256(f"geomvision-imported/{source}/{name}".encode())
    for arr in (feats.keypoints, feats.descriptors, feats.scales):
        h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def import_features(project: str | os.PathLike, keypoints: Mapping[str, np.ndarray], *,
                    descriptors: Mapping[str, np.ndarray | None] | None = None,
                    scales: Mapping[str, np.ndarray | None] | None = None,
                    orientations_rad: Mapping[str, np.ndarray | None] | None = None,
                    image_sizes: Mapping[str, tuple[int, int] | None] | None = None,
                    matches: Mapping[tuple[str, str], np.ndarray] | None = None,
                    image_dir: str | os.PathLike | None = None, source: str = "imported") -> ExtractionResult:
    """Record outside features (and matches) in ``project`` as the extract stage would.

    keypoints : image name -> (N,2) pixels, (0, 0) the centre of the top-left pixel (geomvision's
        and hloc's convention; COLMAP's files add 0.5).
    descriptors : name -> (N,D) (float32 or uint8); when any image lacks them, none are kept and
        only the imported matches can be used (a one-byte placeholder stands in).
    scales : detection scale in pixels (weights the observations; 1 when missing);
        orientations_rad : keypoint orientation (for patch alignment; 0 when missing).
    image_sizes : name -> (width, height); else read from ``image_dir``'s files.
    matches : (name1, name2) -> (K,2) keypoint indices; replaces the project's imported matches
        (None removes them).
    image_dir : the images (sizes, colours, and the keypoint refinement of ``map``).
    Returns the features as :func:`load_features` will give them back. Raises ``ValueError``
    for keypoints outside their image, mismatched lengths or matches out of range.
    """
    if not keypoints:
        raise ValueError("no features to import")
    descriptors, scales = descriptors or {}, scales or {}
    orientations_rad, image_sizes = orientations_rad or {}, image_sizes or {}
    folder = Path(image_dir) if image_dir is not None else None
    names = sorted(keypoints, key=natural_sort_key)
    has_desc = all(descriptors.get(n) is not None for n in names)
    project = Path(project)
    cache = feature_cache(project)
    ex = ExtractionResult(features={}, source=f"imported:{source}", has_descriptors=has_desc,
                          image_dir=str(folder.resolve()) if folder is not None else "")
    for name in names:
        kp = np.asarray(keypoints[name], dtype=np.float64).reshape(-1, 2)
        n = len(kp)
        w, h = _size_of(name, image_sizes, folder)
        if n and (kp.min() < -0.5 or kp[:, 0].max() > w - 0.5 or kp[:, 1].max() > h - 0.5):
            raise ValueError(f"keypoints of {name!r} lie outside its {w} x {h} image: are they in pixels of the full "
                             "image, with (0, 0) the centre of the top-left pixel?")
        desc = np.asarray(descriptors[name]) if has_desc else np.zeros((n, 1), np.uint8)
        if desc.dtype != np.uint8:
            desc = desc.astype(np.float32)
        path = (folder / name) if folder is not None else Path("")  # "": the image is not at hand
        sc, ori = scales.get(name), orientations_rad.get(name)
        feats = Features(kp, np.ones(n) if sc is None else np.asarray(sc, np.float64),
                         np.zeros(n) if ori is None else np.mod(np.asarray(ori, np.float64), 2 * np.pi),
                         desc, _colors(path, kp))
        key = _key(name, feats, source)
        if not cache.save(key, {**feats.to_arrays(), "image_size": np.array([w, h], np.int64)}):
            raise OSError(f"cannot write the features of {name} into {cache.folder}")
        ex.features[name], ex.paths[name], ex.keys[name], ex.image_sizes[name] = feats, path, key, (w, h)
    if matches is not None:
        for (a, b), m in matches.items():
            for x in (a, b):
                if x not in ex.features:
                    raise ValueError(f"matches name image {x!r}, which has no imported features")
            m = np.asarray(m)
            if len(m) and (m.min() < 0 or m[:, 0].max() >= len(ex.features[a]) or m[:, 1].max() >= len(ex.features[b])):
                raise ValueError(f"matches of ({a}, {b}) index keypoints that do not exist")
        write_imported_matches(dict(matches), project)
    else:
        (project / IMPORTED_MATCHES_NPZ).unlink(missing_ok=True)
    index = FeatureIndex(ex.image_dir, names, [str(ex.paths[n].resolve()) if folder is not None else "" for n in names],
                         [ex.image_sizes[n] for n in names], [ex.keys[n] for n in names], {}, ex.source, has_desc)
    ex.digest = write_feature_index(index, project)
    return ex
