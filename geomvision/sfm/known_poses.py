"""Points from known camera poses (COLMAP's ``point_triangulator``).

:func:`triangulate_model` takes a model whose images have poses (e.g. from a motion-capture
system, a robot's odometry, or another SfM run, read with :func:`geomvision.io.read_model`), the
project's features and verified pairs, and triangulates tracks with the poses and intrinsics held
fixed: the mapper's robust triangulation, track completion and filtering, and (``refine_points``)
a bundle adjustment that moves the points only. The model's own 3-D points, if any, are replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features.batch import ExtractionResult
from ..features.patch_alignment import refine_track_keypoints
from ..imageio import read_image
from ..optim import BAConfig, BAOptions, solve_bundle
from ..scene.reconstruction import Reconstruction
from .mapper import IncrementalMapper
from .options import SfmOptions, sfm_options
from .project import VerifiedPairs, check_fresh
from .stage_extract import require_images
from .state import MapperState
from .tracks import build_tracks

__all__ = ["TriangulationReport", "triangulate_model"]


@dataclass
class TriangulationReport:
    """What :func:`triangulate_model` did: ``num_points``, ``num_observations``,
    ``mean_reprojection_error_px`` (per observation), ``num_tracks`` tried."""

    num_points: int
    num_observations: int
    mean_reprojection_error_px: float
    num_tracks: int


def model_images_in_project(reconstruction: Reconstruction, features: ExtractionResult) -> tuple[list[int], list[str]]:
    """(image ids, names) of the model's posed images, in id order, after checking that the
    project has features of each and that the model's camera has the image's size."""
    ids = sorted(i for i, im in reconstruction.images.items() if im.cam_from_world is not None)
    if not ids:
        raise ValueError("the model has no image with a pose")
    names = [reconstruction.images[i].name for i in ids]
    missing = [n for n in names if n not in features.features]
    if missing:
        raise ValueError(f"{len(missing)} images of the model have no features in the project (e.g. {missing[0]!r}): "
                         "extract them (the names must be the model's, relative to the image folder)")
    for i, n in zip(ids, names):
        cam = reconstruction.cameras[reconstruction.images[i].camera_id]
        if (cam.width, cam.height) != tuple(features.image_sizes[n]):
            raise ValueError(f"image {n!r} is {features.image_sizes[n][0]} x {features.image_sizes[n][1]} pixels, but "
                             f"its camera in the model is {cam.width} x {cam.height}: the model belongs to other "
                             "images")
    return ids, names


def pair_matches_between(verified: VerifiedPairs, index: dict[str, int]) -> tuple[dict, dict]:
    """The verified pairs' inlier matches among the images of ``index`` (name -> new index):
    ({(a, b): (K,2)} with a < b, {(a, b): weight})."""
    matches, weights = {}, {}
    for (i, j), g in verified.geometries.items():
        a, b = index.get(verified.names[i]), index.get(verified.names[j])
        if not g.verified or a is None or b is None:
            continue
        m = g.inlier_matches
        if a > b:
            a, b, m = b, a, m[:, ::-1]
        matches[(a, b)] = np.ascontiguousarray(m)
        weights[(a, b)] = float(g.num_inliers)
    return matches, weights


def state_with_project_keypoints(reconstruction: Reconstruction, features: ExtractionResult, ids: list[int],
                                 options: SfmOptions, scales: list[np.ndarray] | None = None) -> MapperState:
    """The mapper state of a model (poses, points, intrinsics held fixed) whose images ``ids``
    carry the project's keypoint scales (or ``scales``, per image) and colours (the weights and
    colours of observations; an image the project lacks gets scale 1 and black)."""
    images = [reconstruction.images[i] for i in ids]
    feats = [features.features.get(im.name) for im in images]
    if scales is None:
        scales = [np.ones(len(im.keypoints)) if f is None else f.scales for im, f in zip(images, feats)]
    return MapperState.from_reconstruction(
        reconstruction, camera_known=True, scale_exponent=options.mapper.scale_weight_exponent,
        keypoint_scales=scales,
        keypoint_colors=[np.zeros((len(im.keypoints), 3), np.uint8) if f is None else f.colors
                         for im, f in zip(images, feats)])


def refined_keypoints(features: ExtractionResult, names: list[str], tracks,
                      options: SfmOptions) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The keypoints of images ``names`` with each track's observations aligned to one patch
    (``features.patch_alignment``, as ``map`` does) and their scales (1 where aligned: the error
    of an aligned keypoint no longer grows with its detection scale)."""
    require_images(features, names, "turn it off (--no-refine-keypoints)")
    feats = [features.features[n] for n in names]
    keypoints, aligned, _ = refine_track_keypoints(
        lambda i: read_image(features.paths[names[i]]), [f.keypoints for f in feats], [f.scales for f in feats],
        [f.orientations_rad for f in feats], tracks.ptr, tracks.image_idx, tracks.keypoint_idx,
        options.keypoint_refinement)
    return keypoints, [np.where(a, 1.0, f.scales) for a, f in zip(aligned, feats)]


def adjust_with_fixed_poses(state: MapperState, obs: np.ndarray, fixed_images: np.ndarray, options: SfmOptions,
                            max_iterations: int = 50) -> None:
    """Bundle adjustment of the observations ``obs`` (indices, active) with the intrinsics and the
    poses of ``fixed_images`` (state indices; all images: points only) held fixed."""
    if len(obs) == 0:
        return
    problem, imgs, trks = state.ba_problem(obs)
    mo = options.mapper
    config = BAConfig(refine_poses=not np.isin(imgs, fixed_images).all(),
                      fixed_images=np.flatnonzero(np.isin(imgs, fixed_images)).tolist(),
                      fixed_cameras=list(range(problem.num_cameras)))
    solve_bundle(problem, BAOptions(loss=mo.ba_loss, loss_scale=mo.loss_scale(problem.noise_sigma()),
                                    max_iterations=max_iterations), config)
    state.write_back(problem, imgs, trks)


def triangulate_model(reconstruction: Reconstruction, features: ExtractionResult, verified: VerifiedPairs,
                      options: SfmOptions | None = None, *,
                      refine_points: bool = True) -> tuple[Reconstruction, TriangulationReport]:
    """A model with the poses and cameras of ``reconstruction`` and points triangulated from the
    project's verified pairs (poses ``cam_from_world`` and intrinsics fixed).

    features, verified : the project's (``load_features``, ``read_verified``); the model's images
        are found by name, their keypoints are the project's (the model's own keypoints and points
        are not used). options.mapper : triangulation and filter thresholds (pixels), BA loss.
    refine_points : a bundle adjustment that moves only the points, then filtering again.
    options.refine_keypoints : align each track's patches to sub-pixel accuracy first, as ``map``
        does (reads the images; ``ValueError`` when they are not at hand).
    Raises ``ValueError`` when an image of the model has no features or another size.
    """
    options = sfm_options(options)
    rec = reconstruction
    check_fresh(verified, features.digest, list(features.features))
    ids, names = model_images_in_project(rec, features)
    feats = [features.features[n] for n in names]
    matches, weights = pair_matches_between(verified, {n: k for k, n in enumerate(names)})
    tracks, _ = build_tracks(np.array([len(f) for f in feats]), matches, weights)
    keypoints, scales = [f.keypoints for f in feats], [f.scales for f in feats]
    if options.refine_keypoints:
        keypoints, scales = refined_keypoints(features, names, tracks, options)
    posed = Reconstruction()
    for c in sorted({rec.images[i].camera_id for i in ids}):
        posed.add_camera(rec.cameras[c], camera_id=c)
    for i, n, kp in zip(ids, names, keypoints):
        posed.add_image(n, rec.images[i].camera_id, kp, rec.images[i].cam_from_world, image_id=i)
    state = state_with_project_keypoints(posed, features, ids, options, scales)
    state.add_tracks(tracks.ptr, tracks.image_idx, tracks.keypoint_idx)
    mapper = IncrementalMapper(state, {}, options.mapper, options.camera, seed=options.seed,
                               num_threads=options.num_threads)
    mapper.model = 0
    mapper.triangulate_tracks(np.arange(state.num_tracks))
    mapper.complete_tracks()
    mapper.filter_points()
    if refine_points:
        all_images = np.arange(state.n_images)
        for _ in range(2):
            obs = np.flatnonzero(state.obs_active & state.point_valid[state.obs_track])
            adjust_with_fixed_poses(state, obs, all_images, options)
            mapper.complete_tracks()
            mapper.retriangulate()
            mapper.filter_points()
    out = state.to_reconstruction()
    obs = np.flatnonzero(state.obs_active & state.point_valid[state.obs_track])
    err = np.sqrt(state.sq_errors(obs)) if len(obs) else np.zeros(0)
    report = TriangulationReport(len(out.points3D), len(obs), float(err.mean()) if len(err) else float("nan"),
                                 state.num_tracks)
    return out, report
