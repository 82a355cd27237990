"""Stage 3 of SfM, ``geomvision map``: tracks, sub-pixel keypoint refinement and incremental
mapping over the verified pairs (COLMAP's ``mapper``).

:func:`map_project` reads the features and the verified pairs (in memory, or from a project
folder, so a rerun with other mapper options redoes neither), builds tracks, aligns each track's
patches to sub-pixel accuracy, resolves a planar scene's focal length from its views, runs the
batch controller (``incremental.IncrementalController``) over the mapper's verbs and returns the
models with the report. It writes nothing: the CLI writes the models (:mod:`geomvision.cli.sfm_outputs`).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

import numpy as np

from .._progress import Progress
from ..features.batch import ExtractionResult
from ..features.patch_alignment import refine_track_keypoints
from ..imageio import read_image
from ..scene.reconstruction import Reconstruction
from .incremental import IncrementalController
from .mapper import IncrementalMapper
from .options import SfmOptions, sfm_options
from .planar import PLANE_MAX_DISTANCE_RATIO, camera_with_focal, focal_from_plane, plane_support, planar_scene_pairs
from .project import VerifiedPairs, check_fresh, read_verified
from .report import PLANE_UNCALIBRATED, SfmResult, SfmWarning, build_report
from .stage_extract import load_features, require_images
from .stage_match import _rotation_only
from .state import ImageData, MapperState
from .tracks import build_tracks

__all__ = ["map_project"]


def map_project(project: str | os.PathLike | None = None, options: SfmOptions | None = None, *,
                features: ExtractionResult | None = None, verified: VerifiedPairs | None = None,
                progress: bool = True) -> SfmResult:
    """Reconstruct from verified pairs; returns the models (largest first) and the report.

    project : the project folder whose features and ``verified.npz`` are read (those given as
        ``features`` / ``verified`` are used as they are). Verified pairs of features that were
        re-extracted since are refused (``ValueError``: rerun ``match``).
    options : ``mapper``, ``camera`` (what BA refines), ``refine_keypoints`` /
        ``keypoint_refinement`` (reads the images), ``seed``. The intrinsics are those the pairs
        were verified with (``verified.cameras``, self-calibrated).
    """
    options = sfm_options(options)
    if features is None or verified is None:
        if project is None:
            raise ValueError("map_project needs a project folder, or both the features and the verified pairs")
        features = load_features(project) if features is None else features
        verified = read_verified(project) if verified is None else verified
    ex = features
    names = list(ex.features)
    check_fresh(verified, ex.digest, names)
    if options.refine_keypoints:
        require_images(ex, names, "give the image folder when importing features (--images), or pass "
                       "--no-refine-keypoints")
    # the stage may change the intrinsics' sources and calibration (plane): on copies
    verified = dataclasses.replace(verified, sources=list(verified.sources),
                                   self_calibration=dict(verified.self_calibration))
    geoms, sources, self_calibration = verified.geometries, verified.sources, verified.self_calibration
    cameras, img_cam, known = list(verified.cameras), verified.img_cam, verified.camera_known
    timings = {**ex.timings, **verified.timings}
    planar_pairs = planar_scene_pairs(geoms)
    failure = _rotation_only(geoms)

    # --- tracks
    t0 = time.perf_counter()
    inliers = {k: g.inlier_matches for k, g in geoms.items() if g.verified}
    weights = {k: float(g.num_inliers) for k, g in geoms.items() if g.verified}
    num_kp = np.array([len(ex.features[n].keypoints) for n in names])
    tracks, n_refused = build_tracks(num_kp, inliers, weights)
    timings["tracks"] = time.perf_counter() - t0

    # --- keypoint refinement
    t0 = time.perf_counter()
    keypoints = [ex.features[n].keypoints for n in names]
    scales = [ex.features[n].scales for n in names]
    refinement = None
    if options.refine_keypoints and failure is None:
        with Progress(len(tracks.image_idx), "keypoint refinement", unit="obs", enabled=progress) as bar:
            keypoints, aligned, refinement = refine_track_keypoints(
                lambda i: read_image(ex.paths[names[i]]), keypoints, scales,
                [ex.features[n].orientations_rad for n in names], tracks.ptr, tracks.image_idx, tracks.keypoint_idx,
                options.keypoint_refinement, progress=bar.update)
        # an aligned keypoint's error no longer grows with its detection scale: weigh it as scale 1
        scales = [np.where(a, 1.0, s) for a, s in zip(aligned, scales)]
    timings["keypoint_refinement"] = time.perf_counter() - t0

    # --- mapping
    t0 = time.perf_counter()
    sizes = np.array([[cameras[img_cam[k]].width, cameras[img_cam[k]].height] for k in range(len(names))])
    data = ImageData(names, keypoints, [ex.features[n].colors for n in names], sizes, scales)
    state = MapperState(data, cameras, img_cam, known, tracks, options.mapper.scale_weight_exponent)
    with Progress(len(names), "mapping", unit="img", enabled=progress) as bar:
        done = [0]

        def on_progress(n_registered: int) -> None:
            if n_registered > done[0]:
                bar.update(n_registered - done[0])
                done[0] = n_registered

        camera_options = options.camera
        if planar_pairs["planar_scene"] and failure is None and "prior" in sources:
            # a plane fixes no lens distortion worth the name and the focal length only through
            # several views: calibrated from them (or refused) before mapping, distortion held at 0
            failure = _calibrate_from_plane(state, geoms, sources, self_calibration, options)
            camera_options = dataclasses.replace(options.camera, refine_extra_params=False)
        mapper = IncrementalMapper(state, geoms, options.mapper, camera_options, seed=options.seed,
                                   num_threads=options.num_threads,
                                   pair_max_error_px=options.verification.max_error_px)
        # a rotation-only run has no structure: no model at all, rather than one built on noise
        controller = IncrementalController(mapper, progress=on_progress)
        masks = controller.run() if failure is None else []
    timings["mapping"] = time.perf_counter() - t0
    reconstructions = controller.reconstructions(masks)
    planar = {**planar_pairs, "models": [_plane_of_model(m, rec, sources) for m, rec in enumerate(reconstructions)]}
    for entry in planar["models"]:
        if "warning" in entry:
            warnings.warn(entry["warning"], SfmWarning, stacklevel=2)
    timings["total"] = sum(timings.values())
    report = build_report(ex.image_dir, names, ex, geoms, tracks, n_refused, mapper, masks, reconstructions, options,
                          verified, refinement, timings, failure)
    report["planar"] = planar
    return SfmResult(reconstructions, report)


def _calibrate_from_plane(state: MapperState, geoms, sources, self_calibration: dict,
                          options: SfmOptions) -> str | None:
    """Focal lengths of the prior-only cameras of a planar scene from the views of the plane
    (:func:`planar.focal_from_plane`), set on the state (no distortion); the reason no model can
    be built when one is not determined (``PLANE_UNCALIBRATED``), else None."""
    mo = options.mapper
    for c, src in enumerate(sources):
        if src != "prior":
            continue
        cam = state.cameras[c]
        found = focal_from_plane(state, geoms, c, max_error=mo.init_max_error_px,
                                 abs_pose_max_error=mo.abs_pose_max_error_px,
                                 min_view_correspondences=mo.abs_pose_min_num_inliers, seed=options.seed)
        self_calibration[c] = {"prior_px": cam.mean_focal_length, "source": "plane", **found.as_dict()}
        if not found.determined:
            why = (f"{PLANE_UNCALIBRATED} (camera {c + 1}: {found.reason}; a fundamental matrix cannot give it "
                   "from a plane)")
            warnings.warn(why, SfmWarning, stacklevel=3)
            return why
        state.set_camera(c, camera_with_focal(cam, found.focal_px))
        sources[c] = "plane"
        warnings.warn(f"camera {c + 1}: the scene is a plane: focal length {found.focal_px:.0f} px from the views of "
                      f"the plane (supported from {found.interval_px[0]:.0f} to {found.interval_px[1]:.0f} px), lens "
                      "distortion held at 0; give --K for best accuracy", SfmWarning, stacklevel=3)
    return None


def _plane_of_model(m: int, rec: Reconstruction, sources) -> dict:
    """Whether model ``m`` rests on a plane (:func:`planar.plane_support`), with the warning."""
    X = np.array([p.xyz for p in rec.points3D.values()]).reshape(-1, 3)
    support = plane_support(X)
    if support is None:
        return {"model": m, "planar": False}
    entry = {"model": m, **support.as_dict()}
    if support.planar:
        known = all(sources[c - 1] in ("K", "exif") for c in rec.cameras)  # camera ids are indices + 1
        entry["warning"] = (
            f"model {m} rests on a plane ({100 * support.inlier_ratio:.0f} % of its {len(X)} points within "
            f"{100 * PLANE_MAX_DISTANCE_RATIO:g} % of the scene size of one plane): a plane leaves poses two-fold "
            "ambiguous (resolved by the further views) and "
            + ("the intrinsics were given" if known else
               "fixes the focal length only through several views and no lens distortion: give --K to be sure"))
    return entry

