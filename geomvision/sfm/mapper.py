"""Incremental mapping: the verbs of COLMAP's mapper over the structure-of-arrays state.

:class:`IncrementalMapper` holds the verbs, each usable on its own; a controller decides when to
call which. The batch controller (:mod:`geomvision.sfm.incremental`, used by ``run_sfm``) runs

    find_initial_pairs -> initial_pair_pose -> register_initial_pair -> repeat { find_next_images
    -> register_image -> triangulate_image -> adjust_local_bundle; adjust_global_bundle when the
    model has grown } -> finish (complete_tracks, retriangulate, adjust_global_bundle)

Conventions: images are indices into the state (``0 <= i < state.n_images``), points are track
indices, observations are indices into the state's ``obs_*`` arrays. The verbs act on the
*current model* (``mapper.model``, a model id as in ``state.image_model``); seeding a model with
:meth:`IncrementalMapper.register_initial_pair` makes the new model current. Poses are
``cam_from_world`` (:class:`Rigid3`); thresholds are pixels (``MapperOptions``). The verbs change
the state only through its methods (``MapperState.register``, ``set_points``,
``activate_observations`` ...), do no file I/O, and record what they did and why (images that
failed to register, bundle adjustments, time per step) in ``mapper.log``. The same seed gives the
same results: every random choice draws from a generator keyed by (seed, step, images).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..geometry._triangulation_kernels import triangulate_tracks as _robust_triangulation_kernel
from ..geometry.epipolar import essential_from_pose, sampson_sq_errors
from ..geometry.projection import reprojection_sq_errors
from ..geometry.rigid import Rigid3
from ..geometry.rotation import project_to_rotation, rotation_error_deg
from ..geometry.sim3 import Sim3
from ..optim import BAConfig, BAOptions, solve_bundle
from ..robust import estimate_absolute_pose, estimate_relative_pose, resolve_pose_ambiguity
from .hub_scale import scale_from_hub_depths
from .options import CameraOptions, MapperOptions, VerificationOptions
from .planar import PlanarPairPose, planar_pair_pose
from .state import MapperState
from .verification import TwoViewGeometry, baseline_sign_votes, median_triangulation_angle_deg
from .view_rotations import RotationConsistency

MAX_TRIANGULATION_PAIRS = 200
# verified pairs whose rotations of a new image differ by more are not combined (a relative
# rotation from a verified pair is good to a fraction of a degree; a wrong one is off by far more)
MAX_PAIR_ROTATION_DISAGREEMENT_DEG = 5.0
# a 2D-3D registration keeps its pairs' inliers within the verification's threshold times this
# when the intrinsics are still being estimated: the pairs' F fitted the pixels, the poses' E goes
# through the current K (walls walks with an EXIF focal length 3 % off: right registrations keep
# 42-97 % of their pairs' inliers within 2 px, 55-97 % within 4 px; 6 deg off, 23-28 % within 4)
ESTIMATED_K_PAIR_ERROR_FACTOR = 2.0
# an image whose median reprojection error is more than this many times its model's is removed
# (``drop_loose_images``)
IMAGE_NOISE_FACTOR = 4.0
log = logging.getLogger(__name__)


def _group_medians(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys (G,) ascending, the median of the values of each (G,)) for ``keys``,
    ``values`` (N,), N > 0: one sort, no loop over the groups."""
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    uniq, start, count = np.unique(k, return_index=True, return_counts=True)
    return uniq, 0.5 * (v[start + (count - 1) // 2] + v[start + count // 2])


def _rotation_consensus(Rs: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The set of rotations (P,3,3) within ``MAX_PAIR_ROTATION_DISAGREEMENT_DEG`` of one of them
    with the most weight (each tried; ties to the first) and their weighted chordal mean:
    (indices, R). By weight, not count: on repeated structure several weak pairs can agree on
    one wrong rotation (the same shift of a window grid) against one strong right pair."""
    P = len(Rs)
    diff = rotation_error_deg(np.repeat(Rs, P, axis=0), np.tile(Rs, (P, 1, 1))).reshape(P, P)
    agree = diff <= MAX_PAIR_ROTATION_DISAGREEMENT_DEG
    sel = np.flatnonzero(agree[int(np.argmax(agree @ weights))])
    return sel, project_to_rotation(np.einsum("k,kij->ij", weights[sel], Rs[sel]))


def _gives_pose(g: TwoViewGeometry, min_inliers: int = 0) -> bool:
    """A verified pair whose relative pose may register or merge images: an E, F or H with at
    least ``min_inliers`` inliers (a homography's two-fold ambiguity is resolved, or the pair
    refused, by :func:`planar.planar_pair_pose`; a rotation gives no direction)."""
    return g.config in ("calibrated", "uncalibrated", "planar") and g.num_inliers >= min_inliers


class ModelsContradict(str):
    """The reason :meth:`IncrementalMapper.merge_into` refused a merge when the verified pairs
    between the two models contradict each other's poses (one of the models is wrong), rather
    than merely failing to tie them together."""


@dataclass
class MapperLog:
    initial_pairs: list[dict] = field(default_factory=list)  # tried pairs and why rejected (controller)
    registration: dict[int, str] = field(default_factory=dict)  # image -> last outcome
    models: list[dict] = field(default_factory=list)  # one entry per finished model (controller)
    bundle_adjustments: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    merges: list[dict] = field(default_factory=list)  # models moved into another (merge_into)
    merge_refusals: list[dict] = field(default_factory=list)  # merges tried and why refused (controller)

    def add_time(self, key: str, dt: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + dt

    def timed(self, key: str):
        """Context manager adding the time spent inside to ``timings[key]``."""
        return _Timer(self, key)


class _Timer:
    def __init__(self, log: MapperLog, key: str) -> None:
        self.log, self.key = log, key

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.log.add_time(self.key, time.perf_counter() - self.t0)


# the visibility pyramid (COLMAP): (first cell code, grid side) of the 2x2, 4x4 and 8x8 levels
_PYRAMID = ((0, 2), (4, 4), (20, 8))
_PYRAMID_CELLS = sum(n * n for _, n in _PYRAMID)  # 84


class IncrementalMapper:
    """The mapper's verbs over a :class:`MapperState`.

    ``geometries``: the two-view geometry of each matched pair ``(i, j)``, i < j (only verified
    pairs are used); ``seed``: every random choice is keyed by it. ``trials`` (I,) counts the
    registration attempts of each image (``find_next_images`` skips images at
    ``max_register_trials``; :meth:`reset_trials` gives failed images another chance).
    ``num_threads``: numba threads of the bundle adjustments (``BAOptions.num_threads``: problems
    of ``parallel_min_observations`` observations or more run the parallel kernels).
    """

    def __init__(self, state: MapperState, geometries: dict[tuple[int, int], TwoViewGeometry],
                 options: MapperOptions, camera_options: CameraOptions, seed: int = 0,
                 num_threads: int | None = None, pair_max_error_px: float | None = None) -> None:
        self.s = state
        # the threshold the pairs' inliers were verified at: a 2D-3D registration must keep half
        # of its pairs' inliers within it (None: VerificationOptions' default)
        self.pair_max_error_px = (VerificationOptions().max_error_px if pair_max_error_px is None
                                  else float(pair_max_error_px))
        self.num_threads = num_threads  # of bundle adjustment (BAOptions.num_threads)
        self.geoms = {k: g for k, g in geometries.items() if g.verified}
        # the pairs' rotations against their average (a planar pair's as its own matches decide it)
        self.rotations = RotationConsistency(self.geoms, planar_rotation=self._planar_rotation)
        self.opt = options
        self.cam_opt = camera_options
        self.seed = int(seed)
        self.log = MapperLog()
        self.trials = np.zeros(state.n_images, dtype=np.int64)
        self.model = -1
        # visibility counts and pyramid cells per image, and what they were counted for (_visibility)
        self._vis_key = None
        self._vis_visible = self._vis_counts = self._vis_cells = None
        # images connected by a verified pair
        self.num_pairs = np.zeros(state.n_images, dtype=np.int64)
        for i, j in self.geoms:
            self.num_pairs[i] += 1
            self.num_pairs[j] += 1

    @property
    def state(self) -> MapperState:
        return self.s

    # ------------------------------------------------------------------------------------------
    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def _timed(self, key: str):
        return self.log.timed(key)

    @property
    def model_images(self) -> np.ndarray:
        """(K,) the images of the current model."""
        return np.flatnonzero(self.s.image_model == self.model)

    @property
    def model_points(self) -> np.ndarray:
        """(N,) the tracks with a point in the current model."""
        return np.flatnonzero(self.s.point_model == self.model)

    def reset_trials(self) -> None:
        """Give every unregistered image its registration attempts back (the model changed)."""
        self.trials[self.s.image_model < 0] = 0

    # --- initial pair -------------------------------------------------------------------------
    def find_initial_pairs(self, min_num_inliers: int, allow_planar: bool = False) -> list[tuple[int, int]]:
        """Candidate initial pairs ``(i, j)`` among unregistered images, in the order to try them:
        verified pairs with >= ``min_num_inliers`` inliers, not panoramic (nor planar unless
        ``allow_planar``), most inliers first, ties by the images' connectivity, then by index."""
        min_inliers = min_num_inliers
        free = self.s.image_model < 0
        cands = []
        for (i, j), g in self.geoms.items():
            if not (free[i] and free[j]) or g.num_inliers < min_inliers:
                continue
            if g.config in ("panoramic",) or (g.config == "planar" and not allow_planar):
                continue
            cands.append((i, j))
        # most inliers first; ties by the images' connectivity, then by index (deterministic)
        cands.sort(key=lambda p: (-self.geoms[p].num_inliers, -(self.num_pairs[p[0]] + self.num_pairs[p[1]]), p))
        return cands

    def initial_pair_pose(self, i: int, j: int) -> tuple[Rigid3 | None, float]:
        """Relative pose ``cam_j_from_cam_i`` of a verified pair (its verified E when the camera
        is calibrated, else re-estimated with the current intrinsics; None when that fails) and
        the median triangulation angle (degrees) of its inliers. A planar pair's pose is the
        decomposition of its homography that all the evidence supports, the other pairs'
        averaged rotations included (:func:`planar.planar_pair_pose`; None when the plane's
        two-fold ambiguity stays)."""
        g = self.geoms[(i, j)]
        s = self.s
        if g.config == "planar":
            choice = self._planar_choice(
                i, j, rotation_residual_deg=lambda R: self.rotations.residual_without_pair_deg(i, j, R))
            if choice.pose is None:
                log.info("planar pair %s, %s: %s", s.images.names[i], s.images.names[j], choice.reason)
            elif choice.decided_by == "rotations":
                self.rotations.add_planar_decision(i, j, choice.pose.R)
            return choice.pose, choice.tri_angle_deg
        ci, cj = s.cameras[s.img_cam[i]], s.cameras[s.img_cam[j]]
        x1 = s.images.keypoints[i][g.inlier_matches[:, 0]]
        x2 = s.images.keypoints[j][g.inlier_matches[:, 1]]
        pose = g.cam2_from_cam1
        if pose is None or not s.camera_known[s.img_cam[i]]:
            res = estimate_relative_pose(x1, x2, ci, cj, max_error=self.opt.init_max_error_px, rng=self._rng(1, i, j))
            if res.model is None:
                return None, 0.0
            pose = res.model
            x1, x2 = x1[res.inliers], x2[res.inliers]
        return pose, median_triangulation_angle_deg(pose, ci.cam_from_img(x1), cj.cam_from_img(x2))

    def baseline_sign_votes(self, i: int, j: int, pose: Rigid3) -> tuple[int, int]:
        """(in front, reversed) of the verified pair (i, j)'s two-view inliers under ``pose``
        (cam_j_from_cam_i): :func:`verification.baseline_sign_votes` at ``tri_min_angle_deg``,
        under the current intrinsics (keypoints without a ray not counted)."""
        ri, rj = self._pair_inlier_rays(i, j)
        ok = np.isfinite(ri[:, 0]) & np.isfinite(rj[:, 0])
        return baseline_sign_votes(pose, ri[ok], rj[ok], self.opt.tri_min_angle_deg)

    def _planar_choice(self, i: int, j: int, **kwargs) -> PlanarPairPose:
        """:func:`planar.planar_pair_pose` of planar pair (i, j) with the mapper's thresholds."""
        o = self.opt
        return planar_pair_pose(self.s, self.geoms[(i, j)], i, j, max_error=o.init_max_error_px,
                                abs_pose_max_error=o.abs_pose_max_error_px,
                                min_view_correspondences=o.abs_pose_min_num_inliers, rng=self._rng(1, i, j), **kwargs)

    def _planar_rotation(self, key: tuple[int, int]) -> np.ndarray | None:
        """The rotation (cam_j_from_cam_i) of planar pair ``key`` when its own matches decide
        between its homography's decompositions, else None."""
        choice = self._planar_choice(*key, pair_only=True)
        return None if choice.pose is None else choice.pose.R

    def register_initial_pair(self, i: int, j: int, cam_j_from_cam_i: Rigid3, min_points: int) -> str | None:
        """Seed a new model: image i at the origin, image j at ``cam_j_from_cam_i`` (the scale
        is the pair's), triangulate their common tracks and adjust the bundle. The new model
        becomes current. Returns None on success; else the reason, with the state as before (the
        pair needs ``max(min_points // 2, 15)`` points before and after the adjustment)."""
        s = self.s
        self.model += 1
        s.register(i, Rigid3(), self.model)
        s.register(j, cam_j_from_cam_i, self.model)
        tracks = np.unique(s.obs_track[np.r_[s.observations_of_image(i), s.observations_of_image(j)]])
        self.triangulate_tracks(tracks)
        n_pts = int(np.sum(s.point_model == self.model))
        if n_pts >= max(min_points // 2, 15):
            self.adjust_global_bundle()
            n_pts = int(np.sum(s.point_model == self.model))
        if n_pts >= max(min_points // 2, 15):
            self.log.registration[i] = self.log.registration[j] = "registered (initial pair)"
            return None
        self.dissolve_model()  # undo
        self.model -= 1
        return f"only {n_pts} points triangulated from the pair"

    def dissolve_model(self, model: int | None = None) -> np.ndarray:
        """Remove a model (the current one by default): its points, and its images from
        registration (they are free for other models). Returns those images."""
        s = self.s
        model = self.model if model is None else model
        imgs = np.flatnonzero(s.image_model == model)
        s.invalidate_points(np.flatnonzero(s.point_model == model))
        s.deregister(imgs)
        return imgs

    # --- growth -------------------------------------------------------------------------------
    def visible_counts(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per image: number of its keypoints whose track has a point of the current model, and
        a visibility-pyramid score of their spread (COLMAP: occupied cells at 3 grid levels).
        ``images`` (K,) distinct -> counts (K,) int, scores (K,).

        Kept up to date as COLMAP does: per image, the number of visible observations in each
        cell of the 2x2, 4x4 and 8x8 grids; each call updates them from the tracks whose point
        came or went since the last call (all recounted when the model, the tracks or the
        observations' pixels changed), so a call costs O(tracks + changes), not O(observations)."""
        images = np.asarray(images, dtype=np.int64)
        counts, cells = self._visibility()
        counts = counts[images]
        occupied = cells[images] > 0
        scores = np.zeros(len(images))
        for lo, n in _PYRAMID:
            scores += occupied[:, lo:lo + n * n].sum(axis=1) * n * n
        return counts, scores

    def _visibility_cells(self, obs: np.ndarray) -> np.ndarray:
        """(K, 3) pyramid cell of each observation at levels 2x2, 4x4, 8x8 (codes 0-3, 4-19, 20-83)."""
        s = self.s
        wh = s.image_sizes[s.obs_img[obs]].astype(np.float64)
        uv = s.obs_uv[obs]
        out = np.empty((len(obs), 3), np.int64)
        for k, (lo, n) in enumerate(_PYRAMID):
            out[:, k] = lo + (np.clip((uv[:, 0] / wh[:, 0] * n).astype(np.int64), 0, n - 1) * n
                              + np.clip((uv[:, 1] / wh[:, 1] * n).astype(np.int64), 0, n - 1))
        return out

    def _visibility(self) -> tuple[np.ndarray, np.ndarray]:
        """(visible observations per image (I,), per image and pyramid cell (I, 84)), updated."""
        s = self.s
        visible = s.point_valid & (s.point_model == self.model)
        key = (self.model, s.n_images, s.num_tracks, s.num_observations, s._track_edits, s._uv_edits)
        if self._vis_key != key:
            obs = np.flatnonzero(visible[s.obs_track])
            sign = np.ones(len(obs), np.int64)
            self._vis_counts = np.zeros(s.n_images, np.int64)
            self._vis_cells = np.zeros((s.n_images, _PYRAMID_CELLS), np.int64)
        else:
            changed = np.flatnonzero(visible != self._vis_visible)
            obs = s.observations_of_tracks(changed)
            sign = np.where(visible[s.obs_track[obs]], 1, -1)
        if len(obs):
            img = s.obs_img[obs]
            self._vis_counts += np.bincount(img, weights=sign, minlength=s.n_images).astype(np.int64)
            codes = (img[:, None] * _PYRAMID_CELLS + self._visibility_cells(obs)).ravel()
            cells = np.bincount(codes, weights=np.repeat(sign, 3), minlength=s.n_images * _PYRAMID_CELLS)
            self._vis_cells += cells.astype(np.int64).reshape(s.n_images, _PYRAMID_CELLS)
        self._vis_key, self._vis_visible = key, visible
        return self._vis_counts, self._vis_cells

    def find_next_images(self) -> list[int]:
        """Unregistered images to try next, best first: those with at least
        ``abs_pose_min_num_inliers`` 2D-3D correspondences in the current model and fewer than
        ``max_register_trials`` attempts, by visibility score (ties by index)."""
        cand = np.flatnonzero((self.s.image_model < 0) & (self.trials < self.opt.max_register_trials))
        if len(cand) == 0:
            return []
        counts, scores = self.visible_counts(cand)
        ok = counts >= self.opt.abs_pose_min_num_inliers
        order = np.lexsort((cand, -scores))
        return [int(cand[k]) for k in order if ok[k]]

    def register_image(self, i: int) -> bool:
        """Register image i in the current model: absolute pose (RANSAC + refinement, threshold
        ``abs_pose_max_error_px``) from its observations of the model's points; on success (enough
        inliers, absolute and as a ratio) the pose is set and the inlier observations activated.
        Counts a trial either way; the outcome is in ``log.registration[i]``.

        Enough inliers means ``abs_pose_min_num_inliers`` and never fewer than
        ``MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR`` (6), whatever the options say: RANSAC
        draws the pose from 3 points (P3P), which agree with it by construction, so an image
        registered on one or two 3D points has no evidence for its pose at all; 6 leaves 3
        correspondences that confirm it independently."""
        s, o = self.s, self.opt
        min_inliers = max(int(o.abs_pose_min_num_inliers), MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR)
        self.trials[i] += 1
        obs = s.observations_of_image(i)
        obs = obs[s.point_valid[s.obs_track[obs]] & (s.point_model[s.obs_track[obs]] == self.model)]
        if len(obs) < min_inliers:
            self.log.registration[i] = f"not registered: {len(obs)} 2D-3D correspondences < {min_inliers}"
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        cam = s.cameras[s.img_cam[i]]
        with self._timed("absolute_pose"):
            res = estimate_absolute_pose(s.obs_uv[obs], s.X[s.obs_track[obs]], cam,
                                         max_error=o.abs_pose_max_error_px, rng=self._rng(2, i, int(self.trials[i])))
            # points on a plane: two poses fit; keep the better, refuse when they cannot be told apart
            res, ambiguity = resolve_pose_ambiguity(s.obs_uv[obs], s.X[s.obs_track[obs]], cam, res,
                                                    max_error=o.abs_pose_max_error_px)
        if not ambiguity.resolved:
            self.log.registration[i] = f"not registered: {ambiguity.message}"
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        n_in = int(res.inliers.sum()) if res.model is not None else 0
        if res.model is None or n_in < min_inliers or n_in < o.abs_pose_min_inlier_ratio * len(obs):
            self.log.registration[i] = (f"not registered: absolute pose had {n_in} inliers of {len(obs)} "
                                        f"correspondences (min {min_inliers}, ratio "
                                        f"{o.abs_pose_min_inlier_ratio})")
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        # 2D-3D correspondences through matches shifted by one window of a repeated facade can fit
        # a pose rotated with the shift; the image's verified pairs with the model then disagree
        pair_error = self.pair_max_error_px * (1.0 if s.camera_known[s.img_cam[i]] else ESTIMATED_K_PAIR_ERROR_FACTOR)
        kept, total = self._pairs_kept(i, res.model, pair_error)
        if kept < 0.5 * total:
            self.log.registration[i] = (f"not registered: the absolute pose ({n_in} of {len(obs)} inliers) keeps "
                                        f"{kept} of the {total} two-view inliers of its verified pairs with the "
                                        f"model within {pair_error:g} px")
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        s.register(i, res.model, self.model)
        s.activate_observations(obs[res.inliers])
        self.log.registration[i] = f"registered ({n_in} of {len(obs)} 2D-3D inliers)"
        log.info("model %d: registered %s (%d of %d 2D-3D inliers)", self.model, s.images.names[i], n_in, len(obs))
        return True

    def find_pair_registrations(self) -> list[int]:
        """Unregistered images (with attempts left) that verified pairs link to images of the
        current model: one of at least ``abs_pose_min_num_inliers`` inliers, or two or more;
        strongest pair first: the candidates of :meth:`register_image_from_pair`."""
        s, o = self.s, self.opt
        free = (s.image_model < 0) & (self.trials < o.max_register_trials)
        best: dict[int, int] = {}
        count: dict[int, int] = {}
        for (a, b), g in self.geoms.items():
            if not _gives_pose(g):
                continue
            for i, r in ((a, b), (b, a)):
                if free[i] and s.image_model[r] == self.model:
                    best[i] = max(best.get(i, 0), g.num_inliers)
                    count[i] = count.get(i, 0) + 1
        cands = [i for i in best if best[i] >= o.abs_pose_min_num_inliers or count[i] >= 2]
        return sorted(cands, key=lambda i: (-best[i], i))

    def register_image_from_pair(self, i: int) -> bool:
        """Relaxed but verified registration of image i, for images whose 2D-3D
        correspondences are too few for :meth:`register_image` (weak overlaps). Its rotation and
        the direction of its centre come from verified pairs (r, i) with images r of the model
        and at least ``abs_pose_min_num_inliers`` two-view inliers; what fixes the distance:

        1. the 2D-3D correspondences along one pair's direction (one unknown), which must agree
           with it: at least ``ABS_POSE_MIN_NUM_INLIERS_FLOOR`` (6) inliers and half of the
           correspondences (the three strongest pairs are tried); else
        2. the directions of two or more pairs from model images at different places meet at
           the centre (no 2D-3D correspondence needed): the pairs' rotations must agree, the
           directions meet at ``tri_min_angle_deg`` or more, and every pair used keeps half of
           its two-view inliers within ``abs_pose_max_error_px`` of the epipolar lines of the
           resulting poses.

        Pairs (E, F, or H with its ambiguity resolved) whose rotations are off the rotations
        averaged over all verified pairs are not used (:mod:`.view_rotations`), and the pose
        found must keep half of the two-view inliers of all of i's verified pairs with the model
        (:meth:`_pairs_agree`). Counts a trial; the outcome is in ``log.registration``."""
        s = self.s
        floor = MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR
        self.trials[i] += 1
        pairs = self._model_pairs(i)
        obs = s.observations_of_image(i)
        obs = obs[s.point_valid[s.obs_track[obs]] & (s.point_model[s.obs_track[obs]] == self.model)]
        tried: list[int] = []
        if len(obs) >= floor:
            strong = [p for p in pairs if p[0] >= self.opt.abs_pose_min_num_inliers]
            found = self._baseline_from_points(i, strong[:3], obs, tried)
            if found is not None and not self._pairs_agree(i, found[0]):
                tried.append(0)
                found = None
            if found is not None:
                pose, inl, r, n_pair = found
                other = self._points_fit_another_pose(i, obs, pose, inl)
                if other is not None:
                    self.log.registration[i] = f"not registered from pair with {s.images.names[r]}: {other}"
                    log.info("%s: %s", s.images.names[i], self.log.registration[i])
                    return False
                s.register(i, pose, self.model)
                s.activate_observations(obs[inl])
                self.log.registration[i] = (f"registered from pair with {s.images.names[r]} ({n_pair} two-view "
                                            f"inliers; {int(inl.sum())} of {len(obs)} 2D-3D inliers fix the baseline)")
                log.info("model %d: %s %s", self.model, s.images.names[i], self.log.registration[i])
                return True
        found = self._centre_from_pairs(i, pairs)
        if found is not None and not self._pairs_agree(i, found[0]):
            found = None
        if found is not None:
            pose, used = found
            s.register(i, pose, self.model)
            self.log.registration[i] = ("registered from pairs with " + ", ".join(
                f"{s.images.names[r]} ({n} of {m} two-view inliers kept)" for r, n, m in used)
                + ": their directions meet at its centre")
            log.info("model %d: %s %s", self.model, s.images.names[i], self.log.registration[i])
            return True
        why = f"not registered: {len(obs)} 2D-3D correspondences"
        if tried:
            why += f"; from its strongest verified pairs the baseline was confirmed by {tried} of them (min {floor} and half)"
        why += f"; {len(pairs)} verified pairs with the model, whose directions did not fix its centre"
        self.log.registration[i] = why
        log.info("%s: %s", s.images.names[i], why)
        return False

    def _pairs_of(self, i: int):
        """The verified pairs (E, F or H) of image i: (other image, geometry, (a, b) key)."""
        for (a, b), g in self.geoms.items():
            if i in (a, b) and _gives_pose(g):
                yield (b if a == i else a), g, (a, b)

    def _model_pairs(self, i: int) -> list[tuple[int, int, Rigid3]]:
        """Verified pairs (E, F or H) of image i with images r of the current model whose
        rotations agree with the averaged ones, strongest first, with a pose (a planar pair's
        ambiguity resolved): (inliers, r, cam_i_from_cam_r with unit translation)."""
        s = self.s
        pairs = []
        strongest = 0
        for r, g, (a, b) in self._pairs_of(i):
            strongest = max(strongest, g.num_inliers)
            if s.image_model[r] == self.model and not self.rotations.contradicted(a, b):
                pairs.append((g.num_inliers, r, (a, b)))
        # only pairs of at least half the inliers of i's strongest pair (with any image): while
        # the views of its strong pairs are not mapped, a weak pair alone must not place it
        pairs = [p for p in pairs if 2 * p[0] >= strongest]
        pairs.sort(key=lambda p: (-p[0], p[1]))
        out = []
        for n, r, (a, b) in pairs:
            rel, _ = self.initial_pair_pose(a, b)  # cam_b_from_cam_a
            if rel is not None and not self.rotations.contradicted(a, b, rel.R):
                out.append((n, r, rel if a == r else rel.inverse()))
        return out

    def _baseline_from_points(self, i: int, pairs: list, obs: np.ndarray, tried: list[int]):
        """Branch 1 of :meth:`register_image_from_pair`: (pose, inlier mask over obs, r, pair
        inliers) or None; appends each pair's best inlier count to ``tried``."""
        s, o = self.s, self.opt
        floor = MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR
        cam = s.cameras[s.img_cam[i]]
        uv = s.obs_uv[obs]
        rays = cam.cam_from_img(uv)
        X = s.X[s.obs_track[obs]]
        thr2 = o.abs_pose_max_error_px**2
        for n_pair, r, rel in pairs:
            d = rel.t / np.linalg.norm(rel.t)  # i's centre moves along this direction (in i's frame)
            T_r = s.pose(r)
            R = rel.R @ T_r.R
            base = rel.R @ T_r.t
            # x_cam = R X + base + lam d must lie on each ray: cross(ray, R X + base) + lam cross(ray, d) = 0
            u = np.cross(rays, X @ R.T + base)
            v = np.cross(rays, np.broadcast_to(d, rays.shape))
            lam = -np.einsum("ij,ij->i", u, v) / np.maximum(np.einsum("ij,ij->i", v, v), 1e-300)
            # along the pair's direction, not its opposite (the epipolar geometry cannot tell them apart)
            cand = np.unique(lam[np.isfinite(lam) & (lam > 0)])
            if len(cand) > 200:
                cand = cand[np.linspace(0, len(cand) - 1, 200).astype(np.int64)]

            def inliers(lm: float) -> np.ndarray:
                return reprojection_sq_errors(uv, X, cam, Rigid3(R, base + lm * d, check=False)) <= thr2

            best_n, best_in = 0, None
            for lm in cand:
                inl = inliers(lm)
                if inl.sum() > best_n:
                    best_n, best_in = int(inl.sum()), inl
            tried.append(best_n)
            if best_n < max(floor, 0.5 * len(obs)):
                continue
            lm = -np.sum(u[best_in] * v[best_in]) / max(np.sum(v[best_in] * v[best_in]), 1e-300)
            inl = inliers(lm)
            if lm > 0 and inl.sum() >= max(floor, 0.5 * len(obs)):
                return Rigid3(R, base + lm * d, check=False), inl, r, n_pair
        return None

    def _points_fit_another_pose(self, i: int, obs: np.ndarray, pose: Rigid3, inl: np.ndarray) -> str | None:
        """Why the 2D-3D correspondences ``obs`` of image i do not confirm ``pose``, taken from a
        pair's rotation and direction with ``inl`` of them (mask over obs) fixing its distance,
        or None: an absolute pose from the correspondences alone fits as many of them with a
        rotation more than ``MAX_PAIR_ROTATION_DISAGREEMENT_DEG`` from the pair's. Correspondences
        bunched on a few windows of one wall fit a rotation and a sideways shift alike, so they do
        not tell a pair verified 8 degrees off on a window grid (shifted by a window) from the
        true pose; the pair's rotation is then all that the pose rests on."""
        s, o = self.s, self.opt
        res = estimate_absolute_pose(s.obs_uv[obs], s.X[s.obs_track[obs]], s.cameras[s.img_cam[i]],
                                     max_error=o.abs_pose_max_error_px, rng=self._rng(3, i, int(self.trials[i])))
        if res.model is None or int(res.inliers.sum()) < int(inl.sum()):
            return None
        angle = float(rotation_error_deg(res.model.R[None], pose.R[None])[0])
        if angle <= MAX_PAIR_ROTATION_DISAGREEMENT_DEG:
            return None
        return (f"its 2D-3D correspondences fit as well ({int(res.inliers.sum())} inliers against "
                f"{int(inl.sum())}) a pose whose rotation is {angle:.1f} deg from the pair's")

    def _centre_from_pairs(self, i: int, pairs: list):
        """Branch 2 of :meth:`register_image_from_pair`: (pose, [(r, kept, inliers)]) or None."""
        s, o = self.s, self.opt
        if len(pairs) < 2:
            return None
        R_i = np.array([rel.R @ s.pose(r).R for _, r, rel in pairs])  # (P,3,3) world -> cam_i
        # the largest set of pairs whose rotations agree (each pair tried as the reference)
        sel, R = _rotation_consensus(R_i, np.array([p[0] for p in pairs], dtype=np.float64))
        if len(sel) < 2:
            return None
        weights = np.array([pairs[k][0] for k in sel], dtype=np.float64)
        centres = s.centers()[[pairs[k][1] for k in sel]]
        # direction from r's centre to i's centre, in the world: -R_i^T t (t = cam_i_from_cam_r)
        w = np.array([-(R_i[k].T @ pairs[k][2].t) for k in sel])
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        P = np.eye(3)[None] - w[:, :, None] * w[:, None, :]  # projectors orthogonal to each direction
        A = np.einsum("k,kij->ij", weights, P)
        b = np.einsum("k,kij,kj->i", weights, P, centres)
        if np.linalg.cond(A) > 1e12:
            return None
        c = np.linalg.solve(A, b)
        to_c = c - centres
        dist = np.linalg.norm(to_c, axis=1)
        if np.any(np.einsum("ij,ij->i", to_c, w) <= 0) or np.any(dist <= 0):
            return None  # behind one of the pairs' directions
        rays = to_c / dist[:, None]
        cos_max = np.cos(np.radians(o.tri_min_angle_deg))
        if np.min(rays @ rays.T) > cos_max:
            return None  # the directions do not meet at an angle: the distance is not fixed
        pose = Rigid3(R, -R @ c, check=False)
        # every pair used must keep half of its two-view inliers on the epipolar lines of the poses
        used = []
        for k in sel:
            r = pairs[k][1]
            kept, total = self._pair_inliers_kept(i, r, pose, s.pose(r))
            if kept < max(MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR, 0.5 * total):
                return None
            used.append((r, kept, total))
        return pose, used

    def _pairs_agree(self, i: int, pose: Rigid3) -> bool:
        """Whether ``pose`` for image i keeps half of the two-view inliers of all its verified
        pairs (E, F or H) with images of the current model, the pairs it was not computed from
        included: a registration from a few weak pairs (e.g. agreeing on one wrong shift of a
        repeated window grid) must not contradict the stronger evidence of the others."""
        kept, total = self._pairs_kept(i, pose)
        return kept >= 0.5 * total

    def _pairs_kept(self, i: int, pose: Rigid3, max_error: float | None = None) -> tuple[int, int]:
        """How many two-view inliers of image i's verified pairs (E, F or H) with images of the
        current model ``pose`` keeps within ``max_error`` px (None: ``abs_pose_max_error_px``;
        :meth:`_pair_inliers_kept`), and how many they have."""
        s = self.s
        kept = total = 0
        for r, _, _ in self._pairs_of(i):
            if s.image_model[r] == self.model:
                k, n = self._pair_inliers_kept(i, r, pose, s.pose(r), max_error)
                kept, total = kept + k, total + n
        return kept, total

    def _pair_inlier_rays(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Rays (N,3) in cameras a and b of the verified pair (a, b)'s two-view inliers (either
        order), under the current intrinsics; NaN for a keypoint beyond a lens's invertible region."""
        s = self.s
        g = self.geoms[(min(a, b), max(a, b))]
        ia, ib = (0, 1) if a < b else (1, 0)
        return (s.cameras[s.img_cam[a]].cam_from_img(s.images.keypoints[a][g.inlier_matches[:, ia]]),
                s.cameras[s.img_cam[b]].cam_from_img(s.images.keypoints[b][g.inlier_matches[:, ib]]))

    def _pair_inliers_kept(self, a: int, b: int, pose_a: Rigid3, pose_b: Rigid3,
                           max_error: float | None = None) -> tuple[int, int]:
        """How many of the verified pair (a, b)'s two-view inliers lie within ``max_error`` px
        (None: ``abs_pose_max_error_px``; Sampson error) of the epipolar lines of the poses
        given, and how many it has."""
        s = self.s
        cam_a, cam_b = s.cameras[s.img_cam[a]], s.cameras[s.img_cam[b]]
        ra, rb = self._pair_inlier_rays(a, b)
        xa, xb = ra[:, :2], rb[:, :2]
        E = essential_from_pose(pose_a @ pose_b.inverse())  # cam_a_from_cam_b
        focal2 = cam_a.mean_focal_length * cam_b.mean_focal_length
        ok = np.isfinite(xa[:, 0]) & np.isfinite(xb[:, 0])  # beyond a lens's invertible region: not kept
        t = self.opt.abs_pose_max_error_px if max_error is None else max_error
        kept = int(np.sum(sampson_sq_errors(E, xb[ok], xa[ok]) * focal2 <= t**2))
        return kept, len(xa)

    def drop_contradicted_images(self) -> list[int]:
        """Remove from the current model the images whose poses keep less than half of the
        two-view inliers of their verified pairs (E, F or H) with the model's other images: a
        view placed by wrong evidence (a weak pair verified on a window grid shifted by one
        window, with a right rotation and a wrong baseline) contradicts its stronger pairs. The
        worst image goes first and the others are judged again without its pairs (its wrong pose
        also costs its right neighbours inliers). Points left with fewer than two observations
        are dropped; the images removed keep no registration attempts in this model. Returns
        them."""
        s = self.s
        imgs = set(self.model_images.tolist())
        pairs = []  # (a, b, kept, total) of the verified pairs inside the model
        for (a, b), g in self.geoms.items():
            if a in imgs and b in imgs and _gives_pose(g):
                pairs.append((a, b, *self._pair_inliers_kept(a, b, s.pose(a), s.pose(b))))
        dropped: list[int] = []
        while True:
            kept: dict[int, int] = {}
            total: dict[int, int] = {}
            for a, b, k, n in pairs:
                for i in (a, b):
                    kept[i], total[i] = kept.get(i, 0) + k, total.get(i, 0) + n
            ratio = {i: kept[i] / total[i] for i in total if total[i] > 0}
            worst = min(ratio, key=lambda i: (ratio[i], i), default=None)
            if worst is None or ratio[worst] >= 0.5:
                break
            dropped.append(worst)
            self.log.registration[worst] = (f"removed from model {self.model}: its pose keeps {kept[worst]} of the "
                                            f"{total[worst]} two-view inliers of its verified pairs in the model")
            log.info("model %d: %s %s", self.model, s.images.names[worst], self.log.registration[worst])
            pairs = [p for p in pairs if worst not in p[:2]]
        self._remove_images(dropped)
        return dropped

    def _remove_images(self, images: list[int]) -> None:
        """Deregister ``images`` from the current model, drop the points left with fewer than two
        observations, and give the images no further registration attempts in this model."""
        if images:
            self.s.deregister(images)
            self.s.drop_weak_points()
            self.trials[images] = self.opt.max_register_trials

    def _model_errors(self, model: int) -> tuple[np.ndarray, np.ndarray]:
        """(images (M,), reprojection errors (M,)) of ``model``'s active observations of its
        points, each error in units of its observation's sigma, under the state's current
        cameras; observations behind their camera left out."""
        s = self.s
        obs = np.flatnonzero(s.obs_active & (s.image_model[s.obs_img] == model))
        obs = obs[s.point_valid[s.obs_track[obs]] & (s.point_model[s.obs_track[obs]] == model)]
        e = np.sqrt(s.sq_errors(obs)) / s.obs_sigma[obs]
        ok = np.isfinite(e)
        return s.obs_img[obs[ok]], e[ok]

    def model_noise(self, model: int) -> tuple[float, int]:
        """(median reprojection error of ``model``'s observations in units of each observation's
        sigma, their number); (NaN, 0) for a model without observations."""
        _, e = self._model_errors(model)
        return (float(np.median(e)), len(e)) if len(e) else (float("nan"), 0)

    def drop_loose_images(self) -> list[int]:
        """Remove from the current model the images whose median reprojection error is more than
        ``IMAGE_NOISE_FACTOR`` times the model's (both in units of the observations' sigmas): one
        camera and detector give every rightly placed view about the model's noise (up to 1.8
        times it on the Strecha scenes, dino-ring, desk-loop and rendered walks), while a view
        registered by matches shifted by a window of a repeated facade fits them 5-19 times more
        loosely and bends the model round it (0.7-4 m off). Points left with fewer than two
        observations are dropped; the images removed keep no registration attempts in this model.
        Returns them."""
        s = self.s
        img, e = self._model_errors(self.model)
        if len(e) == 0:
            return []
        ref = float(np.median(e))
        images, medians = _group_medians(img, e)
        dropped = []
        for i, med in zip(images[medians > IMAGE_NOISE_FACTOR * ref].tolist(),
                          medians[medians > IMAGE_NOISE_FACTOR * ref].tolist()):
            dropped.append(i)
            self.log.registration[i] = (
                f"removed from model {self.model}: its median reprojection error is {med / ref:.1f} times the "
                f"model's (more than {IMAGE_NOISE_FACTOR:g}): its pose fits its matches only loosely")
            log.info("model %d: %s %s", self.model, s.images.names[i], self.log.registration[i])
        self._remove_images(dropped)
        return dropped

    # --- merging models -----------------------------------------------------------------------
    def merge_into(self, target: int) -> str | None:
        """Move the current model into model ``target`` (an earlier one) when verified pairs
        between their images fix the similarity between them; ``target`` becomes current.
        Returns None on success, else the reason (nothing changed).

        The evidence: each verified pair (a, b) of an image a of this model and b of ``target``
        (at least ``abs_pose_min_num_inliers`` inliers) gives a's rotation in ``target``'s frame and
        the direction from b's centre to a's; the pairs whose rotations agree give the rotation
        of the similarity, and their directions constrain its scale and translation linearly.
        Pairs whose rotations are off the rotations averaged over all verified pairs
        (:mod:`.view_rotations`: repeated structure) are not used. When the directions leave
        one unknown (all pairs meet at one image, or the directions are parallel), it is fixed,
        within the range where every pair's image lies ahead along its direction, by the 2D-3D
        correspondences across the two models (points of one seen in images of the other), as
        :meth:`register_image_from_pair` does: at least ``ABS_POSE_MIN_NUM_INLIERS_FLOOR`` (6)
        must agree, and no other scale may have half as much support; or else by the depths seen
        from the image where they meet. The merged model's tracks are completed and its bundle adjusted;
        every pair used must then keep half of its two-view inliers within
        ``abs_pose_max_error_px`` of the epipolar lines of the adjusted poses, or the merge is
        undone; and so must every other pair between the models as strong as the weakest one
        used, or the merge is undone and the reason is a :class:`ModelsContradict`."""
        s = self.s
        floor = MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR
        src = self.model
        # cross pairs: (inliers, a in src, b in target, cam_a_from_cam_b)
        cross = []
        for (i, j), g in self.geoms.items():
            if not _gives_pose(g) or self.rotations.contradicted(i, j):
                continue
            for a, b in ((i, j), (j, i)):
                if s.image_model[a] == src and s.image_model[b] == target:
                    rel, _ = self.initial_pair_pose(i, j)  # cam_j_from_cam_i
                    if rel is not None and not self.rotations.contradicted(i, j, rel.R):
                        cross.append((g.num_inliers, a, b, rel if b == i else rel.inverse()))
        if len(cross) < 2:
            return f"{len(cross)} verified pairs between the models (need 2)"
        cross.sort(key=lambda p: (-p[0], p[1], p[2]))
        # rotation of the similarity: Q = R_a'^T R_a with R_a' = R_ab R_b (a's rotation in target)
        Ra_dst = np.array([rel.R @ s.R[b] for _, _, b, rel in cross])
        Qs = np.swapaxes(Ra_dst, 1, 2) @ s.R[[a for _, a, _, _ in cross]]
        sel, Q = _rotation_consensus(Qs, np.array([c[0] for c in cross], dtype=np.float64))
        if len(sel) < 2:
            return "the verified pairs between the models disagree on their relative rotation"
        cross, Ra_dst = [cross[k] for k in sel], Ra_dst[sel]
        while True:  # a weak pair may point wrong (repeated structure): without it, if need be
            found = self._merge_similarity(src, target, cross, Ra_dst, Q)
            if not isinstance(found, str) or len(cross) <= 2:
                break
            cross, Ra_dst = cross[:-1], Ra_dst[:-1]
        if isinstance(found, str):
            return found
        scale, tau, cross_obs, depths = found
        S = Sim3(scale, Q, tau, check=False)
        snap = s.snapshot()
        merged = s.image_model == src
        joined = merged | (s.image_model == target)
        n_src = int(np.sum(merged))
        s.transform_model(src, S, target)
        self.model = target
        # the merged model is adjusted as a whole, then every pair used must keep half of its
        # two-view inliers on the epipolar lines of the adjusted poses; else the merge is undone
        self.complete_tracks()
        self.adjust_global_bundle()
        used = []
        for _, a, b, _ in cross:
            kept, total = self._pair_inliers_kept(a, b, s.pose(a), s.pose(b))
            if kept < max(floor, 0.5 * total):
                s.restore(snap)
                self.model = src
                return (f"the merged and adjusted poses keep {kept} of the {total} two-view inliers of "
                        f"{s.images.names[a]}, {s.images.names[b]}")
            used.append(f"{s.images.names[a]}-{s.images.names[b]} ({kept}/{total})")
        clash = self._stronger_pair_against_merge(merged, joined, cross)
        if clash is not None:
            s.restore(snap)
            self.model = src
            return clash
        self.log.merges.append({"model": src, "into": target, "num_images": n_src, "scale": scale,
                                "images": [s.images.names[k] for k in np.flatnonzero(merged)],
                                "pairs": used, "cross_2d3d_inliers": cross_obs, "scale_from_depths": depths})
        log.info("model %d merged into model %d (%d images) through pairs %s", src, target, n_src, ", ".join(used))
        return None

    def _stronger_pair_against_merge(self, merged: np.ndarray, joined: np.ndarray, cross: list) -> str | None:
        """After a merge (``merged``: the images moved, ``joined``: all of the merged model's),
        a verified pair across the two models that is at least as strong as the weakest pair the
        merge used (``cross``), and whose rotation agrees with the averaged rotations, must keep
        half of its two-view inliers too: the merge may pass over weaker pairs (repeated structure
        verifies weak pairs with a wrong baseline), not over evidence as strong as its own. A
        model grown from a pair with its baseline reversed on shifted repeated structure is
        consistent in itself; merged through pairs at one end of it, its strong pairs with the
        other model at the other end disagree. Returns the reason to undo the merge, or None."""
        s = self.s
        weakest = min(c[0] for c in cross)
        used = {(min(a, b), max(a, b)) for _, a, b, _ in cross}
        for (a, b), g in sorted(self.geoms.items(), key=lambda kv: -kv[1].num_inliers):
            if g.num_inliers < weakest:
                break
            if ((a, b) in used or not (joined[a] and joined[b]) or merged[a] == merged[b] or not _gives_pose(g)
                    or self.rotations.contradicted(a, b)):
                continue
            kept, total = self._pair_inliers_kept(a, b, s.pose(a), s.pose(b))
            if kept < 0.5 * total:
                return ModelsContradict(f"the merged and adjusted poses keep {kept} of the {total} two-view inliers "
                                        f"of {s.images.names[a]}, {s.images.names[b]} (a pair between the models as "
                                        f"strong as one the merge used)")
        return None

    def _merge_similarity(self, src: int, target: int, cross: list, Ra_dst: np.ndarray, Q: np.ndarray):
        """Scale and translation of ``target_from_src`` (rotation ``Q``) from the directions of
        the ``cross`` pairs (:meth:`merge_into`): (scale, tau, 2D-3D inliers or None, depth
        evidence or None), or the reason it is not fixed."""
        s, o = self.s, self.opt
        w8 = np.sqrt(np.array([c[0] for c in cross], dtype=np.float64))
        centres = s.centers()
        # unknowns x = (scale, tau) of target_from_src, solved as (scale * d, tau + scale Q m) with
        # src's centres taken about their mean m in units of their spread d: dimensionless rows
        src_imgs = np.unique([c[1] for c in cross])
        m0 = centres[src_imgs].mean(axis=0)
        d = float(np.sqrt(np.mean(np.sum((centres[src_imgs] - m0) ** 2, axis=1)))) or 1.0
        L = np.zeros((4, 4))
        L[0, 0] = 1.0 / d
        L[1:, 0] = -(Q @ m0) / d
        L[1:, 1:] = np.eye(3)
        # direction b -> a in target's frame: -R_a'^T t_ab; constraint P_w (scale Q c_a + tau - c_b) = 0
        # and how far each a lies ahead of its b along it: A_ahead x - c_ahead (must be > 0; the
        # epipolar checks cannot tell a baseline from its opposite)
        rows, rhs = [], []
        A_ahead, c_ahead = np.zeros((len(cross), 4)), np.zeros(len(cross))
        for k, (_, a, b, rel) in enumerate(cross):
            w = -(Ra_dst[k].T @ rel.t)
            w /= np.linalg.norm(w)
            A_ahead[k] = np.r_[(Q @ centres[a]) @ w, w]
            c_ahead[k] = centres[b] @ w
            P = np.eye(3) - np.outer(w, w)
            rows.append(w8[k] * (P @ np.c_[Q @ (centres[a] - m0) / d, np.eye(3)]))
            rhs.append(w8[k] * (P @ centres[b]))
        A, y = np.vstack(rows), np.concatenate(rhs)
        U, sv, Vt = np.linalg.svd(A, full_matrices=False)
        # the directions fix a combination of the unknowns when they meet at an angle of at least
        # tri_min_angle_deg (the singular values of the dimensionless rows are sines of angles)
        rank = int(np.sum(sv >= sv[0] * np.sin(np.radians(o.tri_min_angle_deg))))
        x0 = L @ (Vt[:rank].T @ ((U[:, :rank].T @ y) / sv[:rank]))
        cross_obs = depths = None
        if rank == 3:  # the directions fix all but the scale about one place: 2D-3D correspondences do,
            # or else the depths seen from the image where the pairs meet
            v = L @ Vt[3]
            # each a must lie ahead of its b along the pair's direction: a range of the unknown
            a_k, b_k = A_ahead @ x0 - c_ahead, A_ahead @ v
            with np.errstate(divide="ignore", invalid="ignore"):
                bound = -a_k / b_k
            ahead = (max(bound[b_k > 0], default=-np.inf), min(bound[b_k < 0], default=np.inf))
            x, cross_obs = self._merge_scale_from_points(src, target, Q, x0, v, ahead)
            if x is None:
                x, depths = self._merge_scale_from_depths(src, target, Q, x0, v, cross)
                if x is None:
                    return f"{cross_obs}; {depths}"
                cross_obs = None
            x0 = x
        elif rank < 3:
            return "the verified pairs between the models do not fix their relative position"
        scale, tau = float(x0[0]), x0[1:]
        if not scale > 0:
            return "the verified pairs between the models give a negative scale"
        if np.min(A_ahead @ x0 - c_ahead) <= 0:  # the lines are met, but behind a pair's direction
            return "the merged position lies behind the direction of a verified pair between the models"
        return scale, tau, cross_obs, depths

    def _merge_scale_from_points(self, src: int, target: int, Q: np.ndarray, x0: np.ndarray, v: np.ndarray,
                                 ahead: tuple[float, float] = (-np.inf, np.inf)):
        """The one unknown left by pairs whose directions are one line (they meet at one image,
        or are parallel): x = x0 + lam v with x = (scale, tau) of ``target_from_src``, lam within
        ``ahead`` (where every pair's image lies ahead along its direction), from the 2D-3D
        correspondences across the models. Returns (x, number of inliers) or (None, reason)."""
        s, o = self.s, self.opt
        floor = MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR
        obs = np.flatnonzero(s.point_valid[s.obs_track])
        img_m, pt_m = s.image_model[s.obs_img[obs]], s.point_model[s.obs_track[obs]]
        fwd = obs[(img_m == src) & (pt_m == target)]  # target's points in src's images
        bwd = obs[(img_m == target) & (pt_m == src)]  # src's points in target's images
        n = len(fwd) + len(bwd)
        if n < floor:
            return None, (f"the directions of the verified pairs between the models leave one unknown and only "
                          f"{n} 2D-3D correspondences across them fix the scale (need {floor})")
        # each correspondence: cross(ray, M x + m) = 0 with x = (scale, tau) of target_from_src
        M = np.zeros((n, 3, 4))
        m = np.zeros((n, 3))
        img = np.r_[s.obs_img[fwd], s.obs_img[bwd]]
        X = s.X[np.r_[s.obs_track[fwd], s.obs_track[bwd]]]
        R_img = s.R[img]
        nf = len(fwd)
        # fwd: camera of src in target: R' = R Q^T, x_cam = R' X_dst + scale t - R' tau
        Rp = R_img[:nf] @ Q.T
        M[:nf, :, 0] = s.t[img[:nf]]
        M[:nf, :, 1:] = -Rp
        m[:nf] = np.einsum("nij,nj->ni", Rp, X[:nf])
        # bwd: a src point in target: X' = scale Q X + tau, x_cam = R_b X' + t_b
        M[nf:, :, 0] = np.einsum("nij,nj->ni", R_img[nf:], X[nf:] @ Q.T)
        M[nf:, :, 1:] = R_img[nf:]
        m[nf:] = s.t[img[nf:]]
        uv = np.r_[s.obs_uv[fwd], s.obs_uv[bwd]]
        rays = np.empty((n, 3))
        for c in np.unique(s.img_cam[img]):
            k = s.img_cam[img] == c
            rays[k] = s.cameras[c].cam_from_img(uv[k])
        base = np.einsum("nij,j->ni", M, x0) + m
        dirv = np.einsum("nij,j->ni", M, v)
        u1, v1 = np.cross(rays, base), np.cross(rays, dirv)
        lam = -np.einsum("ij,ij->i", u1, v1) / np.maximum(np.einsum("ij,ij->i", v1, v1), 1e-300)
        focal = np.array([s.cameras[c].mean_focal_length for c in s.img_cam[img]])
        thr2 = (o.abs_pose_max_error_px / focal) ** 2

        def inliers(lm: float) -> np.ndarray:
            x_cam = base + lm * dirv
            ok = x_cam[:, 2] > 0
            e = np.sum((x_cam[:, :2] / np.where(ok, x_cam[:, 2], 1.0)[:, None] - rays[:, :2]) ** 2, axis=1)
            return ok & (e <= thr2) & (x0[0] + lm * v[0] > 0) & (ahead[0] < lm < ahead[1])

        cand = np.unique(lam[np.isfinite(lam) & (lam > ahead[0]) & (lam < ahead[1])])
        if len(cand) > 400:
            cand = cand[np.linspace(0, len(cand) - 1, 400).astype(np.int64)]
        counts = np.array([int(inliers(lm).sum()) for lm in cand] or [0])
        best = int(np.argmax(counts))
        best_n = int(counts[best])
        # long tracks across many views carry wrong observations, so not half of them need to
        # agree; but the agreement must be unambiguous: no scale 10 % or more away from the best
        # has half as much support
        scales = x0[0] + cand * v[0]
        far = np.abs(scales / scales[best] - 1.0) >= 0.1 if len(cand) else np.zeros(0, bool)
        rival = int(counts[far].max()) if far.any() else 0
        if best_n < floor or 2 * rival > best_n:
            return None, (f"the directions of the verified pairs between the models leave one unknown and the 2D-3D "
                          f"correspondences across them do not fix the scale: {best_n} of {n} agree on one "
                          f"(need {floor}), {rival} on another")
        best_in = inliers(cand[best])
        lm = -np.sum(u1[best_in] * v1[best_in]) / max(np.sum(v1[best_in] * v1[best_in]), 1e-300)
        return x0 + lm * v, int(inliers(lm).sum())

    def _merge_scale_from_depths(self, src: int, target: int, Q: np.ndarray, x0: np.ndarray, v: np.ndarray,
                                 cross: list):
        """The one unknown left by pairs that all meet at one image (the hub), from the depths of
        both models' points seen there (:func:`hub_scale.scale_from_hub_depths`): x = x0 + lam v
        with x = (scale, tau) of ``target_from_src``. Returns (x, evidence) or (None, reason)."""
        s = self.s
        floor = MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR
        in_target, in_src = {c[2] for c in cross}, {c[1] for c in cross}
        hubs = in_target if len(in_target) == 1 else in_src
        if len(hubs) != 1:
            return None, "the pairs between the models do not meet at one image"
        hub = hubs.pop()
        name = s.images.names[hub]
        obs = s.observations_of_image(hub)
        obs = obs[s.point_valid[s.obs_track[obs]]]
        pm = s.point_model[s.obs_track[obs]]
        own = obs[(pm == s.image_model[hub]) & s.obs_active[obs]]
        other = obs[pm == (target if s.image_model[hub] == src else src)]
        r3, t3 = s.R[hub][2], s.t[hub][2]
        X_own, X_other = s.X[s.obs_track[own]], s.X[s.obs_track[other]]
        # depths in the hub's frame as linear forms in x (rows: coefficients of scale, tau; constant)
        if s.image_model[hub] == target:  # own depth fixed; a src point becomes scale Q X + tau
            own_a = np.zeros((len(own), 4))
            own_c = X_own @ r3 + t3
            other_a = np.column_stack([X_other @ (Q.T @ r3), np.tile(r3, (len(other), 1))])
            other_c = np.full(len(other), t3)
        else:  # the hub is src's: its own depths scale; a target point seen from its camera in target
            q = Q @ r3
            own_a = np.zeros((len(own), 4))
            own_a[:, 0] = X_own @ r3 + t3
            own_c = np.zeros(len(own))
            other_a = np.column_stack([np.full(len(other), t3), np.tile(-q, (len(other), 1))])
            other_c = X_other @ q
        own_d = np.column_stack([own_a @ x0 + own_c, own_a @ v])
        other_d = np.column_stack([other_a @ x0 + other_c, other_a @ v])
        cam = s.cameras[s.img_cam[hub]]
        lam, support, n, rival = scale_from_hub_depths(s.obs_uv[own], own_d, s.obs_uv[other], other_d,
                                                       float(np.hypot(cam.width, cam.height)), 2 * floor)
        if lam is None:
            return None, (f"nor do the depths seen from {name}: {support} of {n} neighbouring points of the two "
                          f"models agree at one scale (need {2 * floor} and half), {rival} at another")
        log.info("models %d and %d: the scale about %s from depths seen there (%d of %d neighbouring points agree)",
                 src, target, name, support, n)
        return x0 + lam * v, {"hub": name, "agreeing": support, "pairs": n}

    # --- triangulation ------------------------------------------------------------------------
    def triangulate_tracks(self, tracks: np.ndarray) -> int:
        """Triangulate the given tracks (those without a point) from their observations in the
        current model's images: robust per track (``geometry.triangulation``: RANSAC over pairs
        of rays at >= ``tri_min_angle_deg``, DLT on the inliers), then every inlier checked in
        pixels with the full lens model (``tri_max_error_px``). A point needs two inliers; its
        inliers become active. Returns the number of new points."""
        s, o = self.s, self.opt
        tracks = np.asarray(tracks, dtype=np.int64)
        tracks = tracks[~s.point_valid[tracks] & (s.point_model[tracks] < 0)]
        if len(tracks) == 0:
            return 0
        with self._timed("triangulation"):
            in_model = s.image_model == self.model
            obs = np.sort(s.observations_of_tracks(np.unique(tracks)))
            obs = obs[in_model[s.obs_img[obs]]]
            if len(obs) == 0:
                return 0
            # grouped by track (observations added after construction are appended at the end)
            obs = obs[np.argsort(s.obs_track[obs], kind="stable")]
            trk, start, cnt = np.unique(s.obs_track[obs], return_index=True, return_counts=True)
            keep = cnt >= 2
            if not keep.any():
                return 0
            sel = np.repeat(keep, cnt)
            obs = obs[sel]
            trk = trk[keep]
            ptr = np.zeros(len(trk) + 1, dtype=np.int64)
            np.cumsum(cnt[keep], out=ptr[1:])
            focal = np.array([c.mean_focal_length for c in s.cameras])
            thr_sq = np.zeros(len(s.obs_img))
            thr_sq[obs] = (o.tri_max_error_px / focal[s.img_cam[s.obs_img[obs]]]) ** 2
            X, inlier, widest_cos = _robust_triangulation_kernel(s.R, s.t, ptr, obs, s.obs_img, s.obs_xy, thr_sq,
                                                                 np.cos(np.radians(o.tri_min_angle_deg)),
                                                                 MAX_TRIANGULATION_PAIRS)
            # exact pixel check of the inliers with the full lens model
            ok_pt = np.isfinite(X).all(axis=1) & (widest_cos <= np.cos(np.radians(o.tri_min_angle_deg)))
            obs_pt = np.repeat(np.arange(len(trk)), np.diff(ptr))
            inlier &= ok_pt[obs_pt]
            if inlier.any():
                e = s.sq_errors(obs[inlier], X[obs_pt[inlier]])
                good = e <= o.tri_max_error_px**2
                idx = np.flatnonzero(inlier)
                inlier[idx[~good]] = False
            n_in = np.bincount(obs_pt[inlier], minlength=len(trk))
            new = n_in >= 2
            s.set_points(trk[new], X[new], self.model)
            s.activate_observations(obs[inlier & new[obs_pt]])
        return int(new.sum())

    def triangulate_image(self, i: int) -> int:
        """New points for the tracks of image i that have none yet (see :meth:`triangulate_tracks`)."""
        s = self.s
        return self.triangulate_tracks(np.unique(s.obs_track[s.observations_of_image(i)]))

    def complete_tracks(self) -> int:
        """Activate inactive observations (in the model's registered images) of the model's
        points that reproject within ``tri_max_error_px``: COLMAP's track completion."""
        s = self.s
        in_model = s.image_model == self.model
        cand = np.flatnonzero(~s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track]
                              & (s.point_model[s.obs_track] == self.model))
        if len(cand) == 0:
            return 0
        # one observation per (image, track): a track never holds two keypoints of one image
        good = s.sq_errors(cand) <= self.opt.tri_max_error_px**2
        s.activate_observations(cand[good])
        return int(good.sum())

    def retriangulate(self) -> int:
        """Try again the tracks without a point that have >= 2 observations in the current model's
        images (after the poses moved); returns the number of new points."""
        s = self.s
        in_model = s.image_model == self.model
        obs = np.flatnonzero(in_model[s.obs_img] & ~s.point_valid[s.obs_track] & (s.point_model[s.obs_track] < 0))
        return self.triangulate_tracks(np.unique(s.obs_track[obs]))

    # --- filtering ----------------------------------------------------------------------------
    def filter_points(self, tracks: np.ndarray | None = None) -> int:
        """Over the current model's points (or the given tracks): deactivate observations with an
        error above ``filter_max_error_px`` or behind the camera; drop points left with < 2
        observations or a triangulation angle below ``filter_min_tri_angle_deg``. Returns the
        number of points removed."""
        s, o = self.s, self.opt
        pts = np.flatnonzero(s.point_model == self.model) if tracks is None else np.asarray(tracks)
        pts = pts[s.point_valid[pts]]
        if len(pts) == 0:
            return 0
        obs = s.observations_of_tracks(np.unique(pts))  # grouped by track (the order used below)
        obs = obs[s.obs_active[obs]]
        bad = s.sq_errors(obs) > o.filter_max_error_px**2
        s.deactivate_observations(obs[bad])
        # triangulation angle of each point over its active observations
        obs = obs[~bad]
        C = s.centers()
        v = C[s.obs_img[obs]] - s.X[s.obs_track[obs]]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        order = np.argsort(s.obs_track[obs], kind="stable")
        trk, start, cnt = np.unique(s.obs_track[obs][order], return_index=True, return_counts=True)
        # widest angle ~ angle between the two most different rays: use the angle to the mean ray
        mean = np.add.reduceat(v[order], start, axis=0)
        norm = np.linalg.norm(mean, axis=1, keepdims=True)
        mean /= np.where(norm > 0, norm, 1.0)
        cosang = np.einsum("ij,ij->i", v[order], np.repeat(mean, cnt, axis=0))
        max_half = np.degrees(np.arccos(np.clip(np.minimum.reduceat(cosang, start), -1, 1)))
        keep = trk[~(max_half * 2.0 < o.filter_min_tri_angle_deg) & (cnt >= 2)]
        # only observations of these points were deactivated: the points left with fewer than 2
        # are among them (no scan of every track)
        drop = np.setdiff1d(pts, keep)
        if len(drop):
            s.invalidate_points(drop)
        return len(drop)

    # --- bundle adjustment --------------------------------------------------------------------
    def _ba_config(self, cams: np.ndarray, fixed_images: np.ndarray, refine_intrinsics: bool,
                   fixed_points: np.ndarray) -> BAConfig:
        s, co = self.s, self.cam_opt
        known = s.camera_known[cams] & ~co.refine_known_intrinsics
        fixed_cams = np.flatnonzero(known) if refine_intrinsics else np.arange(len(cams))
        return BAConfig(
            refine_focal_length=co.refine_focal_length,
            refine_principal_point=co.refine_principal_point,
            refine_extra_params=co.refine_extra_params,
            fixed_images=fixed_images.tolist(),
            fixed_cameras=fixed_cams.tolist(),
            fixed_points=fixed_points.tolist(),
            # three or more fixed points fix the similarity gauge themselves (two_cameras would
            # hold a moving image when fewer than two fixed images remain in the problem)
            gauge="none" if len(fixed_points) >= 3 else "two_cameras",
        )

    def _solve(self, obs: np.ndarray, local: np.ndarray | None, refine_intrinsics: bool, kind: str,
               max_iterations: int, function_tolerance: float, held_tracks: np.ndarray | None = None) -> None:
        s = self.s
        # an observation whose point is behind its camera (a merge's similarity or a pose moved one
        # against the other; seen merging self-calibrated models) cannot enter the adjustment:
        # deactivated, as filter_points would after it
        behind = ~np.isfinite(s.sq_errors(obs)) if len(obs) else np.zeros(0, bool)
        if behind.any():
            s.deactivate_observations(obs[behind])
            obs = obs[~behind]
        if len(obs) == 0:
            return
        problem, imgs, trks = s.ba_problem(obs)
        cams = np.unique(s.img_cam[imgs])
        fixed = np.flatnonzero(~np.isin(imgs, local)) if local is not None else np.zeros(0, np.int64)
        held = np.zeros(0, np.int64) if held_tracks is None else np.searchsorted(trks, held_tracks)
        config = self._ba_config(cams, fixed, refine_intrinsics, held)
        scale = self.opt.loss_scale(problem.noise_sigma())
        options = BAOptions(loss=self.opt.ba_loss, loss_scale=scale,
                            max_iterations=max_iterations, function_tolerance=function_tolerance,
                            num_threads=self.num_threads)
        with self._timed(f"{kind}_ba"):
            report = solve_bundle(problem, options, config)
        s.write_back(problem, imgs, trks)
        log.info("%s BA: %d images, %d points, %d iterations, loss scale %.3g, rms %.3f -> %.3f px (%.2f s)", kind,
                 len(imgs), len(trks), report.iterations, scale, report.initial_rms_px, report.final_rms_px,
                 report.solve_s)
        self.log.bundle_adjustments.append({
            "kind": kind, "images": len(imgs), "points": len(trks), "held_points": len(held), "loss_scale": scale,
            "observations": len(obs), "iterations": report.iterations, "initial_rms_px": report.initial_rms_px,
            "final_rms_px": report.final_rms_px, "solve_s": round(report.solve_s, 4),
        })

    def local_bundle(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The local bundle around image i: (images that move (K,), its points (N,), the
        observations adjusted (M,), the points held fixed (H,) among them).

        The images that move are i and the ``local_ba_num_images - 1`` images sharing most points
        with it; the points are all those these images see. A point seen by at least
        ``local_ba_hold_min_fixed_views`` images that do not move is pinned by them: it is held
        fixed and only its observations in the moving images are adjusted. Every other point
        keeps all its active observations (the images outside hold still). So a point that moves
        has fewer than ``local_ba_num_images + local_ba_hold_min_fixed_views`` observations in
        the problem, whatever the tracks' length: without it, a denser set of the same scene (tracks of 10,
        20, ... views) made every local adjustment grow with the model, and the mapping
        O(images^2)."""
        s, o = self.s, self.opt
        in_model = s.image_model == self.model

        def active(obs: np.ndarray) -> np.ndarray:
            return obs[s.obs_active[obs] & in_model[s.obs_img[obs]]]

        pts_i = np.unique(s.obs_track[active(s.observations_of_image(i))])
        if len(pts_i) == 0:
            z = np.zeros(0, np.int64)
            return z, z, z, z
        obs_pts = active(s.observations_of_tracks(pts_i))
        shared = np.bincount(s.obs_img[obs_pts], minlength=s.n_images)
        shared[i] = np.iinfo(np.int64).max
        local = np.argsort(-shared, kind="stable")[: o.local_ba_num_images]
        local = local[shared[local] > 0]
        pts = np.unique(s.obs_track[active(np.concatenate([s.observations_of_image(j) for j in local]))])
        obs = np.sort(active(s.observations_of_tracks(pts)))
        moving = np.zeros(s.n_images, dtype=bool)
        moving[local] = True
        outside = ~moving[s.obs_img[obs]]
        slot = np.searchsorted(pts, s.obs_track[obs])
        held_mask = np.bincount(slot[outside], minlength=len(pts)) >= o.local_ba_hold_min_fixed_views
        obs = obs[~(held_mask[slot] & outside)]
        return local, pts, obs, pts[held_mask]

    def adjust_local_bundle(self, i: int) -> None:
        """Bundle adjustment of the local bundle around image i (:meth:`local_bundle`); the other
        images that see its points are held fixed; intrinsics fixed. Then :meth:`filter_points`
        on the points involved (all their observations)."""
        local, pts, obs, held = self.local_bundle(i)
        if len(pts) == 0:
            return
        self._solve(obs, local, False, "local", 25, 1e-5, held_tracks=held)
        self.filter_points(pts)

    def adjust_global_bundle(self, max_iterations: int | None = None, function_tolerance: float = 1e-6,
                             refine_intrinsics: bool = True) -> None:
        """Bundle adjustment of the whole current model (poses, points and, with
        ``refine_intrinsics``, the intrinsics that ``CameraOptions`` lets move; gauge: two
        cameras), then :meth:`filter_points`."""
        s = self.s
        in_model = s.image_model == self.model
        obs = np.flatnonzero(s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track])
        self._solve(obs, None, refine_intrinsics, "global", max_iterations or self.opt.ba_max_iterations,
                    function_tolerance)
        self.filter_points()
