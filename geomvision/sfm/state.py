"""The incremental mapper's state as structure-of-arrays.

Tracks are fixed once built (:mod:`geomvision.sfm.tracks`); each track can carry one 3-D point.
The state holds, with ``I`` images, ``C`` cameras, ``T`` tracks and ``M`` track observations:

- poses ``R`` (I,3,3), ``t`` (I,3) (cam_from_world), ``registered`` (I,) and ``image_model``
  (I,) (the model an image is registered in, -1: none);
- cameras as ``Camera`` objects plus kernel arrays ``cam_model`` (C,), ``cam_params`` (C,P);
- per track: ``X`` (T,3), ``point_valid`` (T,) and ``point_model`` (T,) (-1: no point);
- per observation, in track order: ``obs_track``, ``obs_img``, ``obs_kp``, ``obs_uv`` (pixels),
  ``obs_xy`` (normalised coordinates under the current intrinsics) and ``obs_active`` — the
  observation belongs to its track's point (what bundle adjustment sees).

The state owns its invariants; every write goes through a method (:meth:`register`,
:meth:`deregister`, :meth:`set_points`, :meth:`activate_observations`,
:meth:`deactivate_observations`, :meth:`invalidate_points`, :meth:`write_back`, :meth:`set_camera`):

- an image is registered iff it belongs to a model (``registered == (image_model >= 0)``);
- a point is valid iff it belongs to a model (``point_valid == (point_model >= 0)``);
- an active observation belongs to a valid point and a registered image of the same model.

The mapper's verbs (``mapper.py``) read the arrays freely and change them only through these
methods; :meth:`check_invariants` verifies all three. :meth:`to_reconstruction` builds the
linked-by-id scene at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from ..optim import BAProblem, reprojection_sq_errors
from ..scene.reconstruction import Reconstruction
from .tracks import Tracks


@dataclass
class ImageData:
    names: list[str]
    keypoints: list[np.ndarray]  # per image (N_i,2) pixels
    colors: list[np.ndarray]  # per image (N_i,3) uint8
    sizes: np.ndarray  # (I,2) width, height
    scales: list[np.ndarray] | None = None  # per image (N_i,) detection scale sigma in pixels


def sigma_from_scale(scales: np.ndarray, exponent: float) -> np.ndarray:
    """Relative localisation standard deviation of keypoints detected at scale ``scales`` (pixels):
    ``max(scale, 1) ** exponent``. SIFT keypoints found at coarse scales are less precise: on the
    three Strecha scenes the median reprojection residual grows from 0.10 px at scale 1 to 0.64 px
    at scale 15 (an exponent of 0.5-0.8); bundle adjustment divides each residual by this sigma.
    """
    return np.maximum(scales, 1.0) ** exponent


class MapperState:
    def __init__(self, images: ImageData, cameras: list[Camera], img_cam: np.ndarray, camera_known: np.ndarray,
                 tracks: Tracks, scale_exponent: float = 0.5) -> None:
        self.images = images
        self.n_images = len(images.names)
        self.cameras = list(cameras)
        self.img_cam = np.asarray(img_cam, dtype=np.int64)
        self.camera_known = np.asarray(camera_known, dtype=bool)
        self.tracks = tracks
        self.R = np.tile(np.eye(3), (self.n_images, 1, 1))
        self.t = np.zeros((self.n_images, 3))
        self.registered = np.zeros(self.n_images, dtype=bool)
        self.image_model = np.full(self.n_images, -1, dtype=np.int64)
        T = tracks.num_tracks
        self.X = np.zeros((T, 3))
        self.point_valid = np.zeros(T, dtype=bool)
        self.point_model = np.full(T, -1, dtype=np.int64)
        lengths = tracks.lengths()
        self.obs_track = np.repeat(np.arange(T, dtype=np.int64), lengths)
        self.obs_img = tracks.image_idx.copy()
        self.obs_kp = tracks.keypoint_idx.copy()
        kp_all = np.concatenate(images.keypoints) if images.keypoints else np.zeros((0, 2))
        self.obs_uv = np.ascontiguousarray(kp_all[tracks.offsets[self.obs_img] + self.obs_kp])
        self.obs_active = np.zeros(len(self.obs_img), dtype=bool)
        if images.scales is not None:
            scales = np.concatenate(images.scales)[tracks.offsets[self.obs_img] + self.obs_kp]
            self.obs_sigma = sigma_from_scale(scales, scale_exponent)
        else:
            self.obs_sigma = np.ones(len(self.obs_img))
        # observations of each image (CSR over images)
        order = np.argsort(self.obs_img, kind="stable")
        self.img_obs = order
        self.img_obs_ptr = np.zeros(self.n_images + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.obs_img, minlength=self.n_images), out=self.img_obs_ptr[1:])
        self.obs_xy = np.zeros((len(self.obs_img), 2))
        self._sync_camera_arrays()
        for c in range(len(self.cameras)):
            self.update_normalised(c)

    # --- cameras ------------------------------------------------------------------------------
    def _sync_camera_arrays(self) -> None:
        P = max(len(c.params) for c in self.cameras)
        self.cam_model = np.array([c.model_id for c in self.cameras], dtype=np.int64)
        self.cam_nparams = np.array([len(c.params) for c in self.cameras], dtype=np.int64)
        self.cam_params = np.zeros((len(self.cameras), P))
        for k, c in enumerate(self.cameras):
            self.cam_params[k, : len(c.params)] = c.params

    def set_camera(self, c: int, camera: Camera) -> None:
        self.cameras[c] = camera
        self._sync_camera_arrays()
        self.update_normalised(c)

    def update_normalised(self, c: int) -> None:
        """Recompute ``obs_xy`` of the observations seen through camera ``c``."""
        m = self.img_cam[self.obs_img] == c
        if m.any():
            self.obs_xy[m] = self.cameras[c].cam_from_img(self.obs_uv[m])[:, :2]

    # --- poses --------------------------------------------------------------------------------
    def pose(self, i: int) -> Rigid3:
        return Rigid3(self.R[i], self.t[i], check=False)

    def register(self, i: int, cam_from_world: Rigid3, model: int = 0) -> None:
        """Give image ``i`` the pose ``cam_from_world`` in model ``model`` (>= 0)."""
        if model < 0:
            raise ValueError(f"model must be >= 0, got {model}")
        if self.registered[i] and self.image_model[i] != model:
            raise ValueError(f"image {i} is registered in model {self.image_model[i]}, not {model}")
        self.R[i] = cam_from_world.R
        self.t[i] = cam_from_world.t
        self.registered[i] = True
        self.image_model[i] = model

    def deregister(self, images) -> None:
        """Remove images from their model; their observations are deactivated."""
        images = np.atleast_1d(np.asarray(images, dtype=np.int64))
        self.registered[images] = False
        self.image_model[images] = -1
        gone = np.zeros(self.n_images, dtype=bool)
        gone[images] = True
        self.obs_active[gone[self.obs_img]] = False

    def centers(self) -> np.ndarray:
        return -np.einsum("nji,nj->ni", self.R, self.t)

    # --- observations -------------------------------------------------------------------------
    def observations_of_image(self, i: int) -> np.ndarray:
        """Indices (into the observation arrays) of image i's track observations."""
        return self.img_obs[self.img_obs_ptr[i] : self.img_obs_ptr[i + 1]]

    def sq_errors(self, obs: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Squared reprojection errors (K,) of observations ``obs`` (indices) against their
        track's point (or the given per-observation points ``X`` (K,3)); inf behind the camera."""
        obs = np.asarray(obs, dtype=np.int64)
        if X is None:
            X = self.X[self.obs_track[obs]]
        e = reprojection_sq_errors(
            self.R, self.t, self.cam_model, self.cam_params, self.cam_nparams, self.img_cam,
            np.ascontiguousarray(X), self.obs_img[obs], np.arange(len(obs), dtype=np.int64),
            np.ascontiguousarray(self.obs_uv[obs]),
        )
        return np.where(np.isfinite(e), e, np.inf)

    def active_count(self) -> np.ndarray:
        """(T,) active observations per track."""
        return np.bincount(self.obs_track[self.obs_active], minlength=self.tracks.num_tracks)

    def set_points(self, tracks: np.ndarray, X_world: np.ndarray, model: int = 0) -> None:
        """New points ``X_world`` (K,3) for ``tracks`` (K,) (which must have none) in model ``model``.
        No observation is active yet: see :meth:`activate_observations`."""
        tracks = np.asarray(tracks, dtype=np.int64)
        if model < 0:
            raise ValueError(f"model must be >= 0, got {model}")
        if self.point_valid[tracks].any():
            raise ValueError("set_points: some tracks already have a point (invalidate them first)")
        self.X[tracks] = X_world
        self.point_valid[tracks] = True
        self.point_model[tracks] = model

    def activate_observations(self, obs: np.ndarray) -> None:
        """Make observations ``obs`` (indices) part of their track's point. Each must belong to a
        valid point and a registered image of the same model."""
        obs = np.asarray(obs, dtype=np.int64)
        trk, img = self.obs_track[obs], self.obs_img[obs]
        if not (self.point_valid[trk].all() and self.registered[img].all()
                and np.array_equal(self.point_model[trk], self.image_model[img])):
            raise ValueError("activate_observations: an observation's point is invalid, its image unregistered, "
                             "or they belong to different models")
        self.obs_active[obs] = True

    def deactivate_observations(self, obs: np.ndarray) -> None:
        self.obs_active[np.asarray(obs, dtype=np.int64)] = False

    def invalidate_points(self, tracks: np.ndarray) -> None:
        """Remove the points of ``tracks`` from their model, with all their observations."""
        tracks = np.asarray(tracks, dtype=np.int64)
        self.point_valid[tracks] = False
        self.point_model[tracks] = -1
        self.obs_active[np.isin(self.obs_track, tracks)] = False

    def drop_weak_points(self, min_obs: int = 2) -> int:
        """Invalidate valid points with fewer than ``min_obs`` active observations."""
        weak = np.flatnonzero(self.point_valid & (self.active_count() < min_obs))
        if len(weak):
            self.invalidate_points(weak)
        return len(weak)

    def check_invariants(self) -> None:
        """Raise AssertionError when the state breaks one of its invariants (see the module doc)."""
        assert np.array_equal(self.registered, self.image_model >= 0), "registered != (image_model >= 0)"
        assert np.array_equal(self.point_valid, self.point_model >= 0), "point_valid != (point_model >= 0)"
        act = np.flatnonzero(self.obs_active)
        trk, img = self.obs_track[act], self.obs_img[act]
        assert self.point_valid[trk].all(), "an active observation of an invalid point"
        assert self.registered[img].all(), "an active observation in an unregistered image"
        assert np.array_equal(self.point_model[trk], self.image_model[img]), "an active observation across models"

    # --- bundle-adjustment problem ------------------------------------------------------------
    def ba_problem(self, obs: np.ndarray) -> tuple[BAProblem, np.ndarray, np.ndarray]:
        """A BAProblem over observations ``obs`` (indices, active, registered images, valid points).
        Returns (problem, image indices (I',), track indices (N',)) mapping its rows back."""
        obs = np.asarray(obs, dtype=np.int64)
        imgs, obs_i = np.unique(self.obs_img[obs], return_inverse=True)
        trks, obs_p = np.unique(self.obs_track[obs], return_inverse=True)
        cams, img_c = np.unique(self.img_cam[imgs], return_inverse=True)
        problem = BAProblem.from_arrays(
            self.R[imgs], self.t[imgs], img_c, self.cam_model[cams],
            [self.cam_params[c, : self.cam_nparams[c]] for c in cams], self.X[trks],
            obs_i, obs_p, self.obs_uv[obs], obs_sigma=self.obs_sigma[obs],
        )
        return problem, imgs, trks

    def write_back(self, problem: BAProblem, imgs: np.ndarray, trks: np.ndarray) -> None:
        """Copy a solved problem's poses, points and intrinsics back into the state."""
        self.R[imgs] = problem.R
        self.t[imgs] = problem.t
        self.X[trks] = problem.X
        cams = np.unique(self.img_cam[imgs])
        changed = []
        for k, c in enumerate(cams):
            new = problem.cam_params[k, : problem.cam_nparams[k]]
            if not np.array_equal(new, self.cameras[c].params):
                self.cameras[c] = self.cameras[c].with_params(new)
                changed.append(int(c))
        if changed:
            self._sync_camera_arrays()
            for c in changed:
                self.update_normalised(c)

    # --- output -------------------------------------------------------------------------------
    def to_reconstruction(self, image_mask: np.ndarray | None = None) -> Reconstruction:
        """The registered images (all of them, or those in ``image_mask``), their cameras and the
        valid points with their active observations, as a Reconstruction (ids start at 1)."""
        mask = self.registered.copy() if image_mask is None else (self.registered & image_mask)
        rec = Reconstruction()
        cam_ids = {}
        for c in np.unique(self.img_cam[mask]):
            cam_ids[int(c)] = rec.add_camera(self.cameras[int(c)], camera_id=int(c) + 1)
        for i in range(self.n_images):
            if not mask[i]:
                continue
            rec.add_image(self.images.names[i], cam_ids[int(self.img_cam[i])], self.images.keypoints[i],
                          self.pose(i), image_id=i + 1)
        obs = np.flatnonzero(self.obs_active & mask[self.obs_img] & self.point_valid[self.obs_track])
        count = np.bincount(self.obs_track[obs], minlength=self.tracks.num_tracks)
        obs = obs[count[self.obs_track[obs]] >= 2]
        if len(obs) == 0:
            return rec
        err = np.sqrt(self.sq_errors(obs))
        order = np.argsort(self.obs_track[obs], kind="stable")
        obs, err = obs[order], err[order]
        trk, start = np.unique(self.obs_track[obs], return_index=True)
        kp_colors = np.concatenate(self.images.colors)
        col = kp_colors[self.tracks.offsets[self.obs_img[obs]] + self.obs_kp[obs]].astype(np.float64)
        col_mean = np.add.reduceat(col, start, axis=0) / np.diff(np.r_[start, len(obs)])[:, None]
        err_mean = np.add.reduceat(err, start) / np.diff(np.r_[start, len(obs)])
        tracks_2d = np.stack([self.obs_img[obs] + 1, self.obs_kp[obs]], axis=1)
        for k, (t_id, s) in enumerate(zip(trk, start)):
            e = start[k + 1] if k + 1 < len(start) else len(obs)
            rec.add_point3D(self.X[t_id], tracks_2d[s:e], np.round(col_mean[k]).astype(np.uint8), float(err_mean[k]),
                            point3D_id=int(t_id) + 1)
        return rec
