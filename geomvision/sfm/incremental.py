"""The batch controller: incremental mapping of a whole image set, one model after another.

:class:`IncrementalController` decides when to call which verb of :class:`IncrementalMapper`
(``mapper.py``) and calls nothing else; ``run_sfm`` uses it. Per model:

1. initial pair, relaxing the requirements in four stages (inliers, median triangulation angle,
   planar pairs allowed last), never a pair whose rotation is off the rotations averaged over
   all verified pairs (``view_rotations``: repeated structure) nor one whose inliers do not
   decide the sign of its baseline (``BASELINE_SIGN_TEST_LEVEL``); every pair tried is logged
   with the reason it was rejected;
2. grow: register the best next image, triangulate its new tracks, adjust the local bundle, and
   adjust the global bundle whenever the model has grown by ``global_ba_growth_ratio``; when no
   image has enough 2D-3D correspondences, register one through a strong verified pair
   (``register_image_from_pair``: weak overlaps);
3. finish: give failed images another chance, remove the images whose poses contradict their
   verified pairs in the model (``drop_contradicted_images``), then twice (complete tracks,
   retriangulate, global bundle adjustment, up to 100 iterations); then remove the images whose
   reprojection errors are several times the model's (``drop_loose_images``) and adjust again.

Images that do not connect to a model seed further models, until no initial pair is left; a
model that does not grow past ``min_model_size`` images gives them back (``discard_model``), and so
does the smaller of two models whose verified pairs contradict each other's poses (``merge``). At
the end, a model whose reprojection errors are several times the largest model's is dissolved
(``drop_noisy_models``): its poses fit its matches only loosely. The controller keeps the
multi-model bookkeeping (``mapper.log.models``, ``log.initial_pairs``), progress reporting and the
time of the initial-pair search; it does no file I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from .._stats import sign_test_pvalue
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from ..scene.reconstruction import Reconstruction
from .mapper import IncrementalMapper, MapperLog, ModelsContradict
from .view_rotations import MAX_ROTATION_RESIDUAL_DEG

# an initial pair's inliers must decide the sign of its baseline: a one-sided sign test (in front
# of both cameras against in front with the baseline reversed) below this level
BASELINE_SIGN_TEST_LEVEL = 0.05
# a model whose median reprojection error is more than this many times the largest model's is
# dissolved (``drop_noisy_models``)
MODEL_NOISE_FACTOR = 4.0

log = logging.getLogger(__name__)


class IncrementalController:
    """Batch incremental mapping over the verbs of ``mapper``.

    ``progress(n_registered)`` (optional) is called whenever an image has been registered, with
    the number of images registered in all models so far.
    """

    def __init__(self, mapper: IncrementalMapper, progress: Callable[[int], None] | None = None) -> None:
        self.mapper = mapper
        self.opt = mapper.opt
        self.progress = progress
        self._last_global_size = 0  # model size at the last global bundle adjustment
        # each model owns its cameras: a new model starts from the initial intrinsics, and the
        # intrinsics a finished model's adjustments left are kept for its reconstruction
        self._initial_cameras = list(mapper.state.cameras)
        self._model_cameras: dict[int, list[Camera]] = {}
        self._seeds: dict[int, tuple[int, int]] = {}  # initial pair of each model
        self._failed_seeds: set[tuple[int, int]] = set()  # initial pairs whose models did not grow

    @property
    def log(self) -> MapperLog:
        return self.mapper.log

    def run(self) -> list[np.ndarray]:
        """Build models until no initial pair is left; returns one image mask (I,) per model of at
        least ``min_model_size`` images, largest first. A finished model that verified pairs tie
        to an earlier one is merged into it (``merge_into``) and grown on from there."""
        m, s = self.mapper, self.mapper.state
        while True:
            if not self.start_model():
                break
            self.grow()
            self.finish()
            while self.merge():
                self.grow()
                self.finish()
            if len(m.model_images) < self.opt.min_model_size:
                self.discard_model()
            if not np.any((s.image_model < 0) & (m.num_pairs > 0)):
                break
        self.drop_noisy_models()
        masks = []
        for model in np.unique(s.image_model[s.image_model >= 0]):
            mask = s.image_model == model
            n = int(mask.sum())
            self.log.models.append({"model": int(model), "num_images": n,
                                    "num_points": int(np.sum(s.point_model == model))})
            if n >= self.opt.min_model_size:
                masks.append(mask)
        # largest model first
        masks.sort(key=lambda k: -int(k.sum()))
        return masks

    def reconstructions(self, masks: list[np.ndarray]) -> list[Reconstruction]:
        """The models of ``masks`` (from :meth:`run`), each with the cameras its own bundle
        adjustments left (models built one after another share the state's cameras, and each
        model's adjustment refines them afresh)."""
        s = self.mapper.state
        recs = []
        for mask in masks:
            model = int(s.image_model[np.flatnonzero(mask)[0]])
            self._use_cameras(self._model_cameras.get(model, s.cameras))
            recs.append(s.to_reconstruction(mask))
        return recs

    def merge(self) -> bool:
        """Merge the current model into the largest earlier model that verified pairs tie it to.
        When the pairs between two models contradict their poses (``ModelsContradict``: one of
        them is wrong, e.g. grown from a pair verified with its baseline reversed on repeated
        structure), the smaller model (the current one when of equal size) is dissolved and the
        larger one becomes current, to register those images afresh. Returns whether the
        current model changed (and should grow on)."""
        m, s = self.mapper, self.mapper.state
        src = m.model
        others = [k for k in np.unique(s.image_model[s.image_model >= 0]) if k != src]
        others.sort(key=lambda k: (-int(np.sum(s.image_model == k)), k))
        for target in others:
            why = m.merge_into(int(target))
            if why is None:
                self._model_cameras.pop(src, None)
                self._last_global_size = 0  # adjust the merged model as a whole
                m.reset_trials()
                return True
            log.info("model %d not merged into model %d: %s", src, target, why)
            m.log.merge_refusals.append({"model": src, "into": target, "reason": why})
            if isinstance(why, ModelsContradict):
                n_src, n_target = int(np.sum(s.image_model == src)), int(np.sum(s.image_model == target))
                loser, keep = (src, int(target)) if n_src <= n_target else (int(target), src)
                self._give_back(loser, f"its model (initial pair {self._seed_names(loser)}) was dissolved: the "
                                       f"verified pairs between it and a larger model contradict their poses ({why})")
                m.model = keep
                self._use_cameras(self._model_cameras.get(keep, s.cameras))
                self._last_global_size = 0
                return True
        return False

    def drop_noisy_models(self) -> list[int]:
        """Dissolve every model whose median reprojection error (in units of the observations'
        sigmas) is more than ``MODEL_NOISE_FACTOR`` times that of the model with the most
        observations. The models share the cameras and the feature detector, so a right model
        fits as tightly as the others; one grown from pairs verified on repeated structure holds
        matches shifted by a window that fit its wrong poses only loosely (rendered courtyard
        walks: wrong 3-view models 0.5 m off at 11-25 times the noise of the right models, which
        agree within a factor 1.4). Returns the dissolved models."""
        m, s = self.mapper, self.mapper.state
        models = [int(k) for k in np.unique(s.image_model[s.image_model >= 0])]
        if len(models) < 2:
            return []
        noise = {}
        for k in models:
            self._use_cameras(self._model_cameras.get(k, s.cameras))
            noise[k] = m.model_noise(k)
        ref = max(models, key=lambda k: (noise[k][1], -k))
        ref_noise = noise[ref][0]
        dropped = []
        for k in models:
            if k != ref and np.isfinite(ref_noise) and noise[k][0] > MODEL_NOISE_FACTOR * ref_noise:
                self._give_back(k, f"its model (initial pair {self._seed_names(k)}) was dissolved: its median "
                                   f"reprojection error is {noise[k][0] / ref_noise:.1f} times that of the largest "
                                   f"model (more than {MODEL_NOISE_FACTOR:g}): its poses fit its matches only "
                                   f"loosely, as pairs verified on repeated structure do")
                dropped.append(k)
        return dropped

    def discard_model(self) -> None:
        """Give the images of a model that did not grow past ``min_model_size`` back to the
        others (as COLMAP does): its initial pair may be wrong (on repeated structure a pair can
        verify with a wrong baseline) and would otherwise hold both images. The pair is not
        tried again."""
        m = self.mapper
        self._give_back(m.model, f"its model was too small (fewer than min_model_size images): its initial pair "
                                 f"{self._seed_names(m.model)} did not grow past {len(m.model_images)} images")

    def _give_back(self, model: int, reason: str) -> None:
        """Dissolve ``model``: its images go back to the others (``reason`` logged for each) and
        its initial pair is not tried again."""
        m = self.mapper
        imgs = m.dissolve_model(model)
        for i in imgs:
            m.log.registration[int(i)] = reason
        log.info("model %d dissolved (%d images), its images go back to the others: %s", model, len(imgs), reason)
        self._model_cameras.pop(model, None)
        self._failed_seeds.add(self._seeds[model])
        m.reset_trials()

    def _seed_names(self, model: int) -> str:
        names = self.mapper.state.images.names
        return ", ".join(names[i] for i in self._seeds[model])

    # --- stages -------------------------------------------------------------------------------
    def start_model(self) -> bool:
        """Find and reconstruct an initial pair among unregistered images, relaxing the
        requirements in stages; every pair tried is logged with the reason it was rejected."""
        m, o = self.mapper, self.opt
        stages = [
            (o.init_min_num_inliers, o.init_min_tri_angle_deg, False),
            (o.init_min_num_inliers, o.init_min_tri_angle_deg / 2, False),
            (max(o.init_min_num_inliers // 2, 15), o.init_min_tri_angle_deg / 4, False),
            (max(o.init_min_num_inliers // 4, 15), o.init_min_tri_angle_deg / 8, True),
        ]
        poses: dict[tuple[int, int], tuple[Rigid3 | None, float]] = {}
        rejected: dict[tuple[int, int], dict] = {}
        # reconstruction attempted (or impossible), or a model that did not grow: not retried
        done: set[tuple[int, int]] = set(self._failed_seeds)
        names = m.state.images.names
        with self.log.timed("initial_pair"):
            for stage, (min_inl, min_angle, planar) in enumerate(stages):
                for pair in m.find_initial_pairs(min_inl, planar):
                    if pair in done:
                        continue
                    if pair not in poses:
                        poses[pair] = m.initial_pair_pose(*pair)
                    pose, angle = poses[pair]
                    entry = {"pair": list(pair), "stage": stage, "num_inliers": m.geoms[pair].num_inliers,
                             "tri_angle_deg": round(float(angle), 3)}
                    if pose is None:
                        done.add(pair)
                        rejected[pair] = {**entry, "rejected": "no relative pose"}
                        continue
                    # the pose the model would start from (re-estimated under the current
                    # intrinsics when they are not known) is the one judged; a planar pair's
                    # decomposition by the other pairs only (planar ones as their matches decide)
                    on_plane = m.geoms[pair].config == "planar"
                    off = (m.rotations.residual_without_pair_deg(*pair, pose.R) or 0.0
                           if on_plane else m.rotations.residual_deg(*pair, pose.R))
                    if off > MAX_ROTATION_RESIDUAL_DEG:
                        done.add(pair)
                        rejected[pair] = {**entry, "rejected": (
                            f"its rotation is {off:.1f} deg off the rotations averaged over "
                            f"{'the other' if on_plane else 'all'} verified pairs: repeated structure?")}
                        continue
                    # the sign of its baseline must be decided by its inliers: matches shifted by
                    # one window of a repeated grid can put as many in front with it reversed
                    front, reverse = m.baseline_sign_votes(*pair, pose)
                    if sign_test_pvalue(front, front + reverse) >= BASELINE_SIGN_TEST_LEVEL:
                        done.add(pair)
                        rejected[pair] = {**entry, "rejected": (
                            f"its inliers do not decide the sign of its baseline: {front} meet in front of "
                            f"both cameras, {reverse} with the baseline reversed: repeated structure?")}
                        continue
                    if angle < min_angle:
                        rejected[pair] = {**entry, "rejected": f"median triangulation angle {angle:.2f} deg < "
                                                              f"{min_angle:.2f}"}
                        continue
                    done.add(pair)
                    self._use_cameras(self._initial_cameras)
                    why = m.register_initial_pair(*pair, pose, min_inl)
                    if why is None:
                        self._seeds[m.model] = pair
                        self._last_global_size = len(m.model_images)  # the seed ends with a global BA
                        self._report_progress()
                        self.log.initial_pairs.extend(rejected.values())
                        self.log.initial_pairs.append({**entry, "accepted": True})
                        log.info("model %d: initial pair %s, %s (%d inliers, %.1f deg)", m.model,
                                 names[pair[0]], names[pair[1]], entry["num_inliers"], angle)
                        return True
                    rejected[pair] = {**entry, "rejected": why}
                    log.info("initial pair %s, %s rejected: %s", names[pair[0]], names[pair[1]], why)
        self.log.initial_pairs.extend(rejected.values())
        return False

    def grow(self) -> None:
        """Register images into the current model, best first, until none more can be; when no
        image has enough 2D-3D correspondences, one through a strong verified pair (weak overlaps)."""
        m = self.mapper
        while True:
            i = next((i for i in m.find_next_images() if m.register_image(i)), None)
            if i is None:
                i = next((i for i in m.find_pair_registrations() if m.register_image_from_pair(i)), None)
            if i is None:
                break
            m.triangulate_image(i)
            m.adjust_local_bundle(i)
            if len(m.model_images) >= self.opt.global_ba_growth_ratio * self._last_global_size:
                m.adjust_global_bundle(function_tolerance=self.opt.ba_growth_function_tolerance)
                self._last_global_size = len(m.model_images)
                m.reset_trials()  # the model changed: failed images may now work
            self._report_progress()

    def finish(self) -> None:
        """Give failed images another chance against the grown model, then complete the tracks,
        retriangulate and adjust the whole model (twice), then remove the images that fit their
        matches loosely (``drop_loose_images``) and adjust again while any were."""
        m = self.mapper
        m.reset_trials()
        self.grow()
        m.drop_contradicted_images()
        for _ in range(2):
            self._complete_and_adjust()
        # images that fit their matches loosely are removed, and the model adjusted without them
        # (and judged again)
        while m.drop_loose_images():
            self._complete_and_adjust()
        self._model_cameras[m.model] = list(m.state.cameras)

    def _complete_and_adjust(self) -> None:
        """Complete the tracks, retriangulate and adjust the whole current model."""
        m = self.mapper
        m.complete_tracks()
        m.retriangulate()
        # stop at a relative cost change of 1e-6 (Ceres's default, that of every global
        # adjustment): a tighter 1e-8 took 41 iterations instead of 10 at 300 images (half the
        # mapping time there), and those moved the cameras by 2e-7 of the scene's size while
        # points of weak depth crept along their rays
        m.adjust_global_bundle(max_iterations=100)
        self._last_global_size = len(m.model_images)

    def _use_cameras(self, cameras: list[Camera]) -> None:
        s = self.mapper.state
        for c, cam in enumerate(cameras):
            if s.cameras[c] is not cam:
                s.set_camera(c, cam)

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(int(np.sum(self.mapper.state.image_model >= 0)))
