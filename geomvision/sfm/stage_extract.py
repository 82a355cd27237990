"""Stage 1 of SfM, ``geomvision extract``: features of every image (COLMAP's ``feature_extractor``).

:func:`extract_features` runs SIFT over a folder of images (reusing the project's content-keyed
cache, so an interrupted or repeated extraction does only what is missing) and records the images
in ``PROJECT/features.json``; :func:`load_features` gives the next stages the same
``ExtractionResult`` back from the project, without extracting anything.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from ..features import extract_all
from ..features.batch import ExtractionResult, cached_entry
from ..features.cache import DescriptorStore
from ..features.distributed import cluster_client
from ..features.pairs import natural_sort_key
from .options import SfmOptions, sfm_options
from .project import FeatureIndex, cache_dir, feature_cache, read_feature_index, write_feature_index
from .report import SfmWarning

__all__ = ["extract_features", "list_images", "load_features"]


def list_images(image_dir: str | os.PathLike) -> list[Path]:
    """Regular, non-hidden files of a folder in natural name order (non-images are skipped later,
    with a reason, by feature extraction). Raises for a missing or empty folder."""
    if isinstance(image_dir, str) and not image_dir.strip():
        raise ValueError("image_dir is empty: give the folder of images (an empty path would mean the current folder)")
    d = Path(image_dir)
    if not d.exists():
        raise FileNotFoundError(f"image folder {d} does not exist")
    if not d.is_dir():
        raise NotADirectoryError(f"{d} is not a folder of images")
    files = sorted((p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: natural_sort_key(p.name))
    if not files:
        raise ValueError(f"image folder {d} is empty")
    return files


def extract_features(image_dir: str | os.PathLike, project: str | os.PathLike | None = None,
                     options: SfmOptions | None = None, *, cache: str | os.PathLike | None = None,
                     progress: bool = True, client=None) -> ExtractionResult:
    """Features (``options.features``) of the images in ``image_dir``, in natural name order.

    project : folder to record the result in (``features.json``) and to cache features in
        (``PROJECT/cache``); None keeps everything in memory (unless ``cache`` is given).
    cache : the feature cache folder when it is not the project's (``run_sfm``'s ``cache_dir``).
    client : a Dask client to use (else one is opened when ``options.workers`` / ``scheduler`` ask).
    Unreadable files are skipped with an :class:`SfmWarning` and listed in ``result.skipped``;
    fewer than two readable images raise ``ValueError`` (nothing is recorded then).
    """
    options = sfm_options(options)
    files = list_images(image_dir)
    if cache is None and project is not None:
        cache = cache_dir(project)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files are reported below, not warned twice
        with cluster_client(options.scheduler, options.workers, client) as client:
            ex = extract_all(files, options.features, cache_dir=cache, num_threads=options.num_threads,
                             progress=progress, client=client)
    for name, why in ex.skipped.items():
        warnings.warn(f"skipped {name}: {why}", SfmWarning, stacklevel=2)
    if len(ex.features) < 2:
        raise ValueError(
            f"need at least 2 readable images in {image_dir}, found {len(ex.features)}"
            + (f" ({len(ex.skipped)} skipped: not images or corrupt)" if ex.skipped else ""))
    ex.timings = {"features": time.perf_counter() - t0}
    ex.image_dir = str(Path(image_dir).resolve())
    if project is not None:
        names = list(ex.features)
        index = FeatureIndex(ex.image_dir, names, [str(Path(ex.paths[n]).resolve()) for n in names],
                             [tuple(ex.image_sizes[n]) for n in names], [ex.keys[n] for n in names],
                             dict(ex.skipped), "sift", True, {"features": round(ex.timings["features"], 3)})
        ex.digest = write_feature_index(index, project)
    return ex


def load_features(project: str | os.PathLike) -> ExtractionResult:
    """The features a project's extract (or import) stage recorded, read from its cache.

    ``result.digest`` identifies the recorded ``features.json``; ``result.has_descriptors`` is
    False for keypoints imported without descriptors. Raises ``FileNotFoundError`` when no
    features were recorded, ``ValueError`` when a recorded entry is missing or corrupt.
    """
    index, digest = read_feature_index(project)
    cache = feature_cache(project)
    store = DescriptorStore(cache)  # descriptors read back when needed, not all held
    ex = ExtractionResult(features={}, skipped=dict(index.skipped), descriptor_store=store)
    for name, path, size, key in zip(index.names, index.paths, index.sizes, index.keys, strict=True):
        feats = cache.load(key, _features_only)
        if feats is None:
            raise ValueError(f"the features of {name} are missing from {cache.folder}: rerun `geomvision extract`")
        ex.features[name] = store.stream(feats, key)
        ex.paths[name] = Path(path)
        ex.keys[name] = key
        ex.image_sizes[name] = tuple(size)
        ex.num_cached += 1
    ex.timings = dict(index.timings)
    ex.image_dir = index.image_dir
    ex.digest = digest
    ex.has_descriptors = index.has_descriptors
    ex.source = index.source
    return ex


def require_images(features: ExtractionResult, names: list[str], fix: str) -> None:
    """``ValueError`` (ending with ``fix``) when some of the images ``names`` are not at hand
    (imported features may come without their images)."""
    missing = [n for n in names if not str(features.paths.get(n, "")) or not os.path.isfile(features.paths[n])]
    if missing:
        raise ValueError(f"keypoint refinement reads the images, but {len(missing)} are not at hand (e.g. "
                         f"{missing[0]!r}): {fix}")


def _features_only(arrays):
    return cached_entry(arrays)[0]
