"""``run_sfm``: images in, reconstructions and a report out (library entry point of ``geomvision sfm``).

Three stages, each a public function that ``geomvision extract`` / ``match`` / ``map`` also run
alone over a project folder (:mod:`geomvision.sfm.project`):

1. :func:`~geomvision.sfm.stage_extract.extract_features`: features (cached);
2. :func:`~geomvision.sfm.stage_match.match_and_verify`: intrinsics, pairs (all, a window over a
   sequence with VLAD loop candidates beyond it, the most similar images, a pairs file:
   ``select_pairs``) -> matching (cached) -> geometric verification -> self-calibration of the
   focal length from F when nothing better is known;
3. :func:`~geomvision.sfm.stage_map.map_project`: tracks -> sub-pixel keypoint refinement (each
   track's observations aligned to one reference patch) -> incremental mapping (the batch
   controller ``incremental.IncrementalController`` over the mapper's verbs).

Given a ``project`` folder, each stage records its result there; without one nothing is written
outside the cache folder. The CLI writes the models (:mod:`geomvision.cli.sfm_outputs`).

Degenerate input ends with a reason instead of a model: when every verified pair is panoramic
(a rotation about one camera centre explains its matches, with or without a known K; without K,
pairs that a plain shift of the image explains may join them), there is no 3-D structure to
recover; ``run_sfm`` warns, builds no model and says so in ``report["failure"]``
(``ROTATION_ONLY``: use ``geomvision stitch``). A given K is checked
against the image size (``intrinsics.check_K_for_image``) and against the focal length the
fundamental matrices imply (``report["K_check"]``, a warning beyond ``K_DISAGREEMENT_FACTOR``).

A planar scene (most verified pairs planar: ``planar.planar_scene_pairs``) leaves F undetermined:
no self-calibration from F. A camera with no K or EXIF focal length gets its focal length from
the views of the plane (``planar.focal_from_plane``, lens distortion held at 0), or the run ends
with ``PLANE_UNCALIBRATED`` when they do not fix it. The mapper resolves the plane's two-fold
ambiguities (initial pair, registration: :mod:`geomvision.sfm.planar`). Each model that rests on
a plane (``planar.plane_support``) gets a warning; ``report["planar"]`` says what was found.
"""

from __future__ import annotations

import os
import time

from .intrinsics import parse_K
from ..features.distributed import cluster_client
from .options import SfmOptions, sfm_options
from .project import cache_dir as project_cache
from .report import PLANE_UNCALIBRATED, ROTATION_ONLY, SfmResult, SfmWarning
from .stage_extract import extract_features, list_images
from .stage_map import map_project
from .stage_match import (K_CHECK_MAX_PAIRS, K_CHECK_MIN_PAIRS, K_DISAGREEMENT_FACTOR, PairSelection, _initial_cameras,
                          _rotation_only, match_and_verify, select_pairs)

__all__ = ["PLANE_UNCALIBRATED", "ROTATION_ONLY", "K_CHECK_MAX_PAIRS", "K_CHECK_MIN_PAIRS", "K_DISAGREEMENT_FACTOR",
           "PairSelection", "SfmResult", "SfmWarning", "_initial_cameras", "_rotation_only", "list_images", "run_sfm",
           "select_pairs"]


def run_sfm(
    image_dir: str | os.PathLike,
    options: SfmOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    project: str | os.PathLike | None = None,
    progress: bool = True,
) -> SfmResult:
    """Reconstruct the images of ``image_dir``; returns the models (largest first) and a report.

    Runs :func:`extract_features`, :func:`match_and_verify` and :func:`map_project` in sequence.
    ``project``: record each stage's result in that folder (``features.json``, ``verified.npz``;
    its ``cache/`` unless ``cache_dir`` says otherwise), so that ``geomvision match`` / ``map``
    can rerun a stage alone. ``cache_dir`` keeps features and matches keyed by image content and
    options, so a rerun (or ``--resume``) reuses them. The same images, options and seed give
    the same models. Raises ``ValueError`` / ``FileNotFoundError`` when nothing can be done
    (missing or empty folder, fewer than two readable images).
    """
    options = sfm_options(options)
    if options.camera.K is not None:
        parse_K(options.camera.K)  # a malformed --K fails before any work (sizes are checked per camera)
    t_start = time.perf_counter()
    if cache_dir is None and project is not None:
        cache_dir = project_cache(project)
    with cluster_client(options.scheduler, options.workers) as client:  # one cluster for both stages
        features = extract_features(image_dir, project, options, cache=cache_dir, progress=progress, client=client)
        verified = match_and_verify(project, options, features=features, cache=cache_dir, progress=progress,
                                    client=client)
    result = map_project(project, options, features=features, verified=verified, progress=progress)
    result.report["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    return result
