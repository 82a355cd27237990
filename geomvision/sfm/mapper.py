"""Incremental mapping: the verbs of COLMAP's mapper over the structure-of-arrays state.

    find_initial_pair -> initialize -> repeat { next_images -> register_image -> triangulate_image
    -> adjust_local_bundle -> filter_points; adjust_global_bundle when the model has grown }
    -> retry failed images -> finish (global BA, track completion, retriangulation, filtering)

Images that do not connect to the first model seed further models. The mapper does no file I/O;
what it did and why (rejected initial pairs, images that failed to register) goes into
``self.log`` for the report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..geometry._triangulation_kernels import triangulate_tracks
from ..geometry.rigid import Rigid3
from ..optim import BAConfig, BAOptions, solve_bundle
from ..robust import estimate_absolute_pose, estimate_relative_pose
from .options import CameraOptions, MapperOptions
from .state import MapperState
from .verification import TwoViewGeometry, median_triangulation_angle_deg

MAX_TRIANGULATION_PAIRS = 200
log = logging.getLogger(__name__)


@dataclass
class MapperLog:
    initial_pairs: list[dict] = field(default_factory=list)  # tried pairs and why rejected
    registration: dict[int, str] = field(default_factory=dict)  # image -> last outcome
    models: list[dict] = field(default_factory=list)
    bundle_adjustments: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add_time(self, key: str, dt: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + dt


class IncrementalMapper:
    def __init__(self, state: MapperState, geometries: dict[tuple[int, int], TwoViewGeometry],
                 options: MapperOptions, camera_options: CameraOptions, seed: int = 0, progress=None) -> None:
        self.s = state
        self.geoms = {k: g for k, g in geometries.items() if g.verified}
        self.opt = options
        self.cam_opt = camera_options
        self.seed = int(seed)
        self.progress = progress
        self.log = MapperLog()
        self.trials = np.zeros(state.n_images, dtype=np.int64)
        self.model = -1
        self._last_global_size = 0
        # images connected by a verified pair
        self.num_pairs = np.zeros(state.n_images, dtype=np.int64)
        for i, j in self.geoms:
            self.num_pairs[i] += 1
            self.num_pairs[j] += 1

    # ------------------------------------------------------------------------------------------
    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def _timed(self, key: str):
        mapper = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                mapper.log.add_time(key, time.perf_counter() - self.t0)

        return _T()

    @property
    def model_images(self) -> np.ndarray:
        return np.flatnonzero(self.s.image_model == self.model)

    # --- the main loop ------------------------------------------------------------------------
    def run(self) -> list[np.ndarray]:
        """Build models until no initial pair is left; returns one image mask per model."""
        masks = []
        while True:
            if not self._start_model():
                break
            self._grow()
            self._finish()
            mask = self.s.image_model == self.model
            n = int(mask.sum())
            self.log.models.append({"model": self.model, "num_images": n,
                                    "num_points": int((self.s.point_model == self.model).sum())})
            if n >= self.opt.min_model_size:
                masks.append(mask)
            if not np.any((self.s.image_model < 0) & (self.num_pairs > 0)):
                break
        # largest model first
        masks.sort(key=lambda m: -int(m.sum()))
        return masks

    # --- initial pair -------------------------------------------------------------------------
    def _initial_candidates(self, min_inliers: int, allow_planar: bool) -> list[tuple[int, int]]:
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

    def _pair_pose(self, i: int, j: int) -> tuple[Rigid3 | None, float]:
        """cam_j_from_cam_i and the median triangulation angle of the pair's inliers."""
        g = self.geoms[(i, j)]
        s = self.s
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

    def _start_model(self) -> bool:
        """Find and reconstruct an initial pair among unregistered images, relaxing the
        requirements in stages; every pair tried is logged with the reason it was rejected."""
        o = self.opt
        stages = [
            (o.init_min_num_inliers, o.init_min_tri_angle_deg, False),
            (o.init_min_num_inliers, o.init_min_tri_angle_deg / 2, False),
            (max(o.init_min_num_inliers // 2, 15), o.init_min_tri_angle_deg / 4, False),
            (max(o.init_min_num_inliers // 4, 15), o.init_min_tri_angle_deg / 8, True),
        ]
        poses: dict[tuple[int, int], tuple[Rigid3 | None, float]] = {}
        rejected: dict[tuple[int, int], dict] = {}
        done: set[tuple[int, int]] = set()  # reconstruction attempted (or impossible): not retried
        names = self.s.images.names
        with self._timed("initial_pair"):
            for stage, (min_inl, min_angle, planar) in enumerate(stages):
                for pair in self._initial_candidates(min_inl, planar):
                    if pair in done:
                        continue
                    if pair not in poses:
                        poses[pair] = self._pair_pose(*pair)
                    pose, angle = poses[pair]
                    entry = {"pair": list(pair), "stage": stage, "num_inliers": self.geoms[pair].num_inliers,
                             "tri_angle_deg": round(float(angle), 3)}
                    if pose is None:
                        done.add(pair)
                        rejected[pair] = {**entry, "rejected": "no relative pose"}
                        continue
                    if angle < min_angle:
                        rejected[pair] = {**entry, "rejected": f"median triangulation angle {angle:.2f} deg < "
                                                              f"{min_angle:.2f}"}
                        continue
                    done.add(pair)
                    why = self._initialize(*pair, pose, min_inl)
                    if why is None:
                        self.log.initial_pairs.extend(rejected.values())
                        self.log.initial_pairs.append({**entry, "accepted": True})
                        log.info("model %d: initial pair %s, %s (%d inliers, %.1f deg)", self.model,
                                 names[pair[0]], names[pair[1]], entry["num_inliers"], angle)
                        return True
                    rejected[pair] = {**entry, "rejected": why}
                    log.info("initial pair %s, %s rejected: %s", names[pair[0]], names[pair[1]], why)
        self.log.initial_pairs.extend(rejected.values())
        return False

    def _initialize(self, i: int, j: int, cam_j_from_cam_i: Rigid3, min_points: int) -> str | None:
        s = self.s
        self.model += 1
        s.register(i, Rigid3(), self.model)
        s.register(j, cam_j_from_cam_i, self.model)
        tracks = np.unique(s.obs_track[np.r_[s.observations_of_image(i), s.observations_of_image(j)]])
        self._triangulate(tracks)
        n_pts = int(np.sum(self.s.point_model == self.model))
        if n_pts >= max(min_points // 2, 15):
            self.adjust_global_bundle()
            n_pts = int(np.sum(self.s.point_model == self.model))
        if n_pts >= max(min_points // 2, 15):
            self.log.registration[i] = self.log.registration[j] = "registered (initial pair)"
            self._report_progress()
            return None
        # undo
        s.invalidate_points(np.flatnonzero(s.point_model == self.model))
        s.deregister([i, j])
        self.model -= 1
        return f"only {n_pts} points triangulated from the pair"

    # --- growth -------------------------------------------------------------------------------
    def _visible_counts(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per image: number of its keypoints whose track has a point of the current model, and
        a visibility-pyramid score of their spread (COLMAP: occupied cells at 3 grid levels)."""
        s = self.s
        counts = np.zeros(len(images), dtype=np.int64)
        scores = np.zeros(len(images))
        for k, i in enumerate(images):
            obs = s.observations_of_image(i)
            obs = obs[s.point_valid[s.obs_track[obs]] & (self.s.point_model[s.obs_track[obs]] == self.model)]
            counts[k] = len(obs)
            if len(obs) == 0:
                continue
            w, h = s.images.sizes[i]
            uv = s.obs_uv[obs]
            for level in range(1, 4):
                n = 2**level
                cells = np.clip((uv[:, 0] / w * n).astype(np.int64), 0, n - 1) * n + np.clip(
                    (uv[:, 1] / h * n).astype(np.int64), 0, n - 1)
                scores[k] += len(np.unique(cells)) * n * n
        return counts, scores

    def _next_images(self) -> list[int]:
        cand = np.flatnonzero((self.s.image_model < 0) & (self.trials < self.opt.max_register_trials))
        if len(cand) == 0:
            return []
        counts, scores = self._visible_counts(cand)
        ok = counts >= self.opt.abs_pose_min_num_inliers
        order = np.lexsort((cand, -scores))
        return [int(cand[k]) for k in order if ok[k]]

    def register_image(self, i: int) -> bool:
        """Absolute pose of image i from its 2D-3D correspondences; activates the inliers."""
        s, o = self.s, self.opt
        self.trials[i] += 1
        obs = s.observations_of_image(i)
        obs = obs[s.point_valid[s.obs_track[obs]] & (self.s.point_model[s.obs_track[obs]] == self.model)]
        if len(obs) < o.abs_pose_min_num_inliers:
            self.log.registration[i] = f"not registered: {len(obs)} 2D-3D correspondences < {o.abs_pose_min_num_inliers}"
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        cam = s.cameras[s.img_cam[i]]
        with self._timed("absolute_pose"):
            res = estimate_absolute_pose(s.obs_uv[obs], s.X[s.obs_track[obs]], cam,
                                         max_error=o.abs_pose_max_error_px, rng=self._rng(2, i, int(self.trials[i])))
        n_in = int(res.inliers.sum()) if res.model is not None else 0
        if res.model is None or n_in < o.abs_pose_min_num_inliers or n_in < o.abs_pose_min_inlier_ratio * len(obs):
            self.log.registration[i] = (f"not registered: absolute pose had {n_in} inliers of {len(obs)} "
                                        f"correspondences (min {o.abs_pose_min_num_inliers}, ratio "
                                        f"{o.abs_pose_min_inlier_ratio})")
            log.info("%s: %s", s.images.names[i], self.log.registration[i])
            return False
        s.register(i, res.model, self.model)
        s.activate_observations(obs[res.inliers])
        self.log.registration[i] = f"registered ({n_in} of {len(obs)} 2D-3D inliers)"
        log.info("model %d: registered %s (%d of %d 2D-3D inliers)", self.model, s.images.names[i], n_in, len(obs))
        return True

    def _grow(self) -> None:
        while True:
            progressed = False
            for i in self._next_images():
                if not self.register_image(i):
                    continue
                progressed = True
                self.triangulate_image(i)
                self.adjust_local_bundle(i)
                n = len(self.model_images)
                if n >= self.opt.global_ba_growth_ratio * self._last_global_size:
                    self.adjust_global_bundle()
                    self.trials[self.s.image_model < 0] = 0  # the model changed: failed images may now work
                self._report_progress()
                break
            if not progressed:
                break

    # --- triangulation ------------------------------------------------------------------------
    def _triangulate(self, tracks: np.ndarray) -> int:
        """Triangulate the given tracks (those without a point) from the observations in the
        current model's registered images; returns the number of new points."""
        s, o = self.s, self.opt
        tracks = np.asarray(tracks, dtype=np.int64)
        tracks = tracks[~s.point_valid[tracks] & (self.s.point_model[tracks] < 0)]
        if len(tracks) == 0:
            return 0
        with self._timed("triangulation"):
            in_model = self.s.image_model == self.model
            obs = np.flatnonzero(np.isin(s.obs_track, tracks))
            obs = obs[in_model[s.obs_img[obs]]]
            if len(obs) == 0:
                return 0
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
            X, inlier, widest_cos = triangulate_tracks(s.R, s.t, ptr, obs, s.obs_img, s.obs_xy, thr_sq,
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
        """New points for the tracks of image i that have none yet."""
        s = self.s
        return self._triangulate(np.unique(s.obs_track[s.observations_of_image(i)]))

    def complete_tracks(self) -> int:
        """Activate inactive observations (in the model's registered images) of the model's
        points that reproject within ``tri_max_error_px``: COLMAP's track completion."""
        s = self.s
        in_model = self.s.image_model == self.model
        cand = np.flatnonzero(~s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track]
                              & (self.s.point_model[s.obs_track] == self.model))
        if len(cand) == 0:
            return 0
        # one observation per (image, track): a track never holds two keypoints of one image
        good = s.sq_errors(cand) <= self.opt.tri_max_error_px**2
        s.activate_observations(cand[good])
        return int(good.sum())

    def retriangulate(self) -> int:
        """Try again the tracks without a point that have >= 2 observations in the model."""
        s = self.s
        in_model = self.s.image_model == self.model
        obs = np.flatnonzero(in_model[s.obs_img] & ~s.point_valid[s.obs_track] & (self.s.point_model[s.obs_track] < 0))
        return self._triangulate(np.unique(s.obs_track[obs]))

    # --- filtering ----------------------------------------------------------------------------
    def filter_points(self, tracks: np.ndarray | None = None) -> int:
        """Deactivate observations with a large error or behind the camera; drop points left
        with < 2 observations or with a too small triangulation angle. Returns points removed."""
        s, o = self.s, self.opt
        pts = np.flatnonzero(self.s.point_model == self.model) if tracks is None else np.asarray(tracks)
        pts = pts[s.point_valid[pts]]
        if len(pts) == 0:
            return 0
        obs = np.flatnonzero(s.obs_active & np.isin(s.obs_track, pts))
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
        narrow = trk[(max_half * 2.0 < o.filter_min_tri_angle_deg) | (cnt < 2)]
        removed_before = int(s.point_valid[pts].sum())
        if len(narrow):
            s.invalidate_points(narrow)
        s.drop_weak_points(2)
        return removed_before - int(s.point_valid[pts].sum())

    # --- bundle adjustment --------------------------------------------------------------------
    def _ba_config(self, cams: np.ndarray, fixed_images: np.ndarray, refine_intrinsics: bool) -> BAConfig:
        s, co = self.s, self.cam_opt
        known = s.camera_known[cams] & ~co.refine_known_intrinsics
        fixed_cams = np.flatnonzero(known) if refine_intrinsics else np.arange(len(cams))
        return BAConfig(
            refine_focal_length=co.refine_focal_length,
            refine_principal_point=co.refine_principal_point,
            refine_extra_params=co.refine_extra_params,
            fixed_images=fixed_images.tolist(),
            fixed_cameras=fixed_cams.tolist(),
            gauge="two_cameras",
        )

    def _solve(self, obs: np.ndarray, local: np.ndarray | None, refine_intrinsics: bool, kind: str,
               max_iterations: int, function_tolerance: float) -> None:
        s = self.s
        if len(obs) == 0:
            return
        problem, imgs, trks = s.ba_problem(obs)
        cams = np.unique(s.img_cam[imgs])
        fixed = np.flatnonzero(~np.isin(imgs, local)) if local is not None else np.zeros(0, np.int64)
        config = self._ba_config(cams, fixed, refine_intrinsics)
        options = BAOptions(loss=self.opt.ba_loss, loss_scale=self.opt.ba_loss_scale,
                            max_iterations=max_iterations, function_tolerance=function_tolerance)
        with self._timed(f"{kind}_ba"):
            report = solve_bundle(problem, options, config)
        s.write_back(problem, imgs, trks)
        log.info("%s BA: %d images, %d points, %d iterations, rms %.3f -> %.3f px (%.2f s)", kind, len(imgs),
                 len(trks), report.iterations, report.initial_rms_px, report.final_rms_px, report.solve_s)
        self.log.bundle_adjustments.append({
            "kind": kind, "images": len(imgs), "points": len(trks), "observations": len(obs),
            "iterations": report.iterations, "initial_rms_px": report.initial_rms_px,
            "final_rms_px": report.final_rms_px, "solve_s": round(report.solve_s, 4),
        })

    def adjust_local_bundle(self, i: int) -> None:
        """BA over image i and the images sharing most points with it; others held fixed."""
        s, o = self.s, self.opt
        in_model = self.s.image_model == self.model
        act = s.obs_active & in_model[s.obs_img]
        pts_i = np.unique(s.obs_track[s.observations_of_image(i)[act[s.observations_of_image(i)]]])
        if len(pts_i) == 0:
            return
        obs_pts = np.flatnonzero(act & np.isin(s.obs_track, pts_i))
        shared = np.bincount(s.obs_img[obs_pts], minlength=s.n_images)
        shared[i] = np.iinfo(np.int64).max
        local = np.argsort(-shared, kind="stable")[: o.local_ba_num_images]
        local = local[shared[local] > 0]
        pts = np.unique(s.obs_track[np.flatnonzero(act & np.isin(s.obs_img, local))])
        obs = np.flatnonzero(act & np.isin(s.obs_track, pts))
        self._solve(obs, local, False, "local", 25, 1e-5)
        self.filter_points(pts)

    def adjust_global_bundle(self, max_iterations: int | None = None, function_tolerance: float = 1e-6) -> None:
        s = self.s
        in_model = self.s.image_model == self.model
        obs = np.flatnonzero(s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track])
        self._solve(obs, None, True, "global", max_iterations or self.opt.ba_max_iterations, function_tolerance)
        self.filter_points()
        self._last_global_size = len(self.model_images)

    # --- finishing ----------------------------------------------------------------------------
    def _finish(self) -> None:
        # give failed images another chance against the grown model
        self.trials[self.s.image_model < 0] = 0
        self._grow()
        for _ in range(2):
            self.complete_tracks()
            self.retriangulate()
            self.adjust_global_bundle(max_iterations=100, function_tolerance=1e-8)

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(int(np.sum(self.s.image_model >= 0)))
