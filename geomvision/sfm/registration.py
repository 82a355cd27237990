"""New images into an existing model without rebuilding it (COLMAP's ``image_registrator``, plus
the triangulation and bundle adjustment its mapper would do around each new image).

:func:`register_images` starts from the model as it is (:meth:`MapperState.from_reconstruction`:
its poses, intrinsics, points and tracks), adds the new images with the project's features and
joins their keypoints to the model's tracks through the project's verified pairs (a keypoint
matched to a keypoint of a model point observes that point). Then, best image first (the
mapper's ``find_next_images``): absolute pose RANSAC against the model's points
(``register_image``), triangulation of the new tracks (``triangulate_image``) and a bundle
adjustment of the new image's pose and the points it sees, the existing images held fixed (so
the model's poses stay as they were), then filtering. Images that cannot be registered are
reported with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..features.batch import ExtractionResult
from ..scene.reconstruction import Reconstruction
from .known_poses import adjust_with_fixed_poses, model_images_in_project, state_with_project_keypoints
from .mapper import IncrementalMapper
from .options import SfmOptions, sfm_options
from .project import VerifiedPairs, check_fresh
from .state import MapperState

__all__ = ["RegistrationReport", "register_images"]

# the model's keypoints of an image may differ from the project's by the sub-pixel refinement of
# ``map``; beyond this (pixels, median) they are not the same keypoints
MAX_KEYPOINT_SHIFT_PX = 1.0


@dataclass
class RegistrationReport:
    """Per new image: ``registered`` (names) and ``failed`` (name -> reason)."""

    registered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _check_same_keypoints(rec: Reconstruction, ids: list[int], features: ExtractionResult) -> None:
    for i in ids:
        im = rec.images[i]
        kp = features.features[im.name].keypoints
        if len(im.keypoints) != len(kp) or (len(kp) and np.median(np.abs(im.keypoints - kp)) > MAX_KEYPOINT_SHIFT_PX):
            raise ValueError(f"the model's keypoints of {im.name!r} are not the project's features "
                             f"({len(im.keypoints)} vs {len(kp)}): register into a model built from this project (geomvision map), or "
                             "rebuild the model's points with geomvision triangulate first")


def _join_tracks(state: MapperState, a: int, b: int, m: np.ndarray) -> None:
    """Matches ``m`` (K,2) between images a and b (state indices): a keypoint matched to one in a
    track joins that track (unless the track already sees its image), two free keypoints start a
    track, two keypoints of different tracks stay apart."""
    for (x, y, mx, my) in ((a, b, m[:, 0], m[:, 1]), (b, a, m[:, 1], m[:, 0])):
        tx, ty = state.kp_track[x][mx], state.kp_track[y][my]
        join = (tx >= 0) & (ty < 0)
        seen = state.obs_track[state.observations_of_image(y)]
        join &= ~np.isin(tx, seen)
        if join.any():
            state.add_observations(tx[join], np.full(int(join.sum()), y), my[join])
    tx, ty = state.kp_track[a][m[:, 0]], state.kp_track[b][m[:, 1]]
    new = (tx < 0) & (ty < 0)
    if new.any():
        k = int(new.sum())
        img = np.column_stack([np.full(k, a), np.full(k, b)]).ravel()
        kp = np.column_stack([m[new, 0], m[new, 1]]).ravel()
        state.add_tracks(np.arange(0, 2 * k + 1, 2), img, kp)


def register_images(reconstruction: Reconstruction, features: ExtractionResult, verified: VerifiedPairs,
                    options: SfmOptions | None = None, *,
                    names: list[str] | None = None) -> tuple[Reconstruction, RegistrationReport]:
    """The model with the images ``names`` (default: every project image it lacks) registered.

    reconstruction : a model built from this project (``geomvision map``: the same keypoints;
        poses ``cam_from_world``); it is not changed. features, verified : the project's
        (``load_features`` / ``read_verified``; ``geomvision match`` run over the old and the new
        images). A new image gets the intrinsics of the model's camera its images share in the
        project, else the project's own for it (held fixed). options.mapper : the absolute-pose
        thresholds, triangulation and filtering. Returns the grown model and what happened.
    """
    options = sfm_options(options)
    rec = reconstruction
    check_fresh(verified, features.digest, list(features.features))
    ids, model_names = model_images_in_project(rec, features)
    _check_same_keypoints(rec, ids, features)
    state = state_with_project_keypoints(rec, features, sorted(rec.images), options)
    project_idx = {n: k for k, n in enumerate(verified.names)}
    new = [n for n in features.features if n not in set(model_names)] if names is None else list(names)
    unknown = [n for n in new if n not in features.features]
    if unknown:
        raise ValueError(f"no features of {unknown[0]!r} in the project: extract and match it first")
    # the state's camera of each project camera, where the model uses it
    cam_of = {}
    for k, i in enumerate(sorted(rec.images)):
        if rec.images[i].name in project_idx:
            cam_of[int(verified.img_cam[project_idx[rec.images[i].name]])] = int(state.img_cam[k])
    index = {state.images.names[k]: k for k in range(state.n_images)}
    for n in new:
        c = int(verified.img_cam[project_idx[n]])
        if c not in cam_of:
            cam_of[c] = state.add_camera(verified.cameras[c], known=True)
        f = features.features[n]
        index[n] = state.add_image(n, f.keypoints, cam_of[c], colors=f.colors, scales=f.scales)
    pairs = sorted(((-g.num_inliers, i, j) for (i, j), g in verified.geometries.items() if g.verified
                    and (verified.names[i] in new or verified.names[j] in new)
                    and verified.names[i] in index and verified.names[j] in index))
    for _, i, j in pairs:  # strongest pair first
        g = verified.geometries[(i, j)]
        _join_tracks(state, index[verified.names[i]], index[verified.names[j]], g.inlier_matches)

    mapper = IncrementalMapper(state, {}, options.mapper, options.camera, seed=options.seed,
                               num_threads=options.num_threads)
    mapper.model = 0
    old = np.flatnonzero(state.registered)
    todo = np.array([index[n] for n in new], np.int64)
    report = RegistrationReport()
    mapper.trials[:] = options.mapper.max_register_trials
    mapper.trials[todo] = 0
    while True:
        i = next((i for i in mapper.find_next_images() if mapper.register_image(i)), None)
        if i is None:
            break
        mapper.triangulate_image(i)
        pts = np.unique(state.obs_track[state.observations_of_image(i)])
        pts = pts[state.point_valid[pts]]
        obs = np.flatnonzero(state.obs_active & np.isin(state.obs_track, pts))
        adjust_with_fixed_poses(state, obs, old, options, max_iterations=25)
        mapper.filter_points(pts)
        mapper.trials[todo[~state.registered[todo]]] = 0  # the model grew: failed images get another chance
    for n in new:
        k = index[n]
        if state.registered[k]:
            report.registered.append(n)
        else:
            report.failed[n] = mapper.log.registration.get(k, "not registered: no 2D-3D correspondences with the "
                                                              "model (no verified pair with its images)")
    return state.to_reconstruction(), report
