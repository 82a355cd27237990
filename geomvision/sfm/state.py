"""The incremental mapper's state as structure-of-arrays, growable.

Each track (:mod:`geomvision.sfm.tracks`) can carry one 3-D point. The state holds, with ``I``
images, ``C`` cameras, ``T`` tracks and ``M`` track observations:

- poses ``R`` (I,3,3), ``t`` (I,3) (cam_from_world), ``registered`` (I,) and ``image_model``
  (I,) (the model an image is registered in, -1: none);
- cameras as ``Camera`` objects plus kernel arrays ``cam_model`` (C,), ``cam_params`` (C,P);
- per track: ``X`` (T,3), ``point_valid`` (T,) and ``point_model`` (T,) (-1: no point);
- per observation: ``obs_track``, ``obs_img``, ``obs_kp``, ``obs_uv`` (pixels), ``obs_xy``
  (normalised coordinates under the current intrinsics), ``obs_sigma`` and ``obs_active`` — the
  observation belongs to its track's point (what bundle adjustment sees). The observations of
  the tracks given at construction are grouped by track; later ones are appended.

It grows: :meth:`add_image` (keypoints and a camera), :meth:`add_tracks` (new tracks over images
already added), :meth:`add_observations` (existing tracks seen by more images), and
:meth:`from_reconstruction` builds a state from a saved model. Every array is a view of the
first ``I`` / ``T`` / ``M`` rows of a larger buffer whose capacity doubles when full, so adding
costs amortised O(1) per row; do not keep references to the arrays across additions.

The state owns its invariants; every write goes through a method (:meth:`register`,
:meth:`deregister`, :meth:`set_points`, :meth:`move_points`, :meth:`merge_tracks`,
:meth:`activate_observations`, :meth:`deactivate_observations`, :meth:`invalidate_points`,
:meth:`write_back`, :meth:`set_camera`):

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
from ..geometry.sim3 import Sim3
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


class _Rows:
    """A state array: the first ``len`` rows (images, tracks or observations) of a buffer."""

    def __init__(self, group: str) -> None:
        self.group = group

    def __set_name__(self, owner, name: str) -> None:
        self.buf = "_buf_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.buf)[: obj._len[self.group]]

    def __set__(self, obj, value) -> None:
        raise AttributeError(f"{self.buf[5:]} is owned by the state: change it through its methods")


_FILL = {"R": np.eye(3), "image_model": -1, "point_model": -1, "img_cam": -1}


class MapperState:
    # per image
    R = _Rows("images")
    t = _Rows("images")
    registered = _Rows("images")
    image_model = _Rows("images")
    img_cam = _Rows("images")
    image_ids = _Rows("images")  # output ids (to_reconstruction); i + 1 unless given
    image_sizes = _Rows("images")  # (I,2) width, height
    # per track
    X = _Rows("tracks")
    point_valid = _Rows("tracks")
    point_model = _Rows("tracks")
    point_ids = _Rows("tracks")  # output ids; t + 1 unless given
    # per observation
    obs_track = _Rows("obs")
    obs_img = _Rows("obs")
    obs_kp = _Rows("obs")
    obs_uv = _Rows("obs")
    obs_xy = _Rows("obs")
    obs_sigma = _Rows("obs")
    obs_active = _Rows("obs")

    _GROUPS = {
        "images": ("R", "t", "registered", "image_model", "img_cam", "image_ids", "image_sizes"),
        "tracks": ("X", "point_valid", "point_model", "point_ids"),
        "obs": ("obs_track", "obs_img", "obs_kp", "obs_uv", "obs_xy", "obs_sigma", "obs_active"),
    }

    def __init__(self, images: ImageData, cameras: list[Camera], img_cam: np.ndarray, camera_known: np.ndarray,
                 tracks: Tracks, scale_exponent: float = 0.5) -> None:
        self.images = images
        self.scale_exponent = float(scale_exponent)
        n_images = len(images.names)
        self._len = {"images": n_images, "tracks": tracks.num_tracks, "obs": len(tracks.image_idx)}
        self.cameras = list(cameras)
        self.camera_known = np.asarray(camera_known, dtype=bool)
        self.camera_ids = [c + 1 for c in range(len(self.cameras))]
        self._buf_R = np.tile(np.eye(3), (n_images, 1, 1))
        self._buf_t = np.zeros((n_images, 3))
        self._buf_registered = np.zeros(n_images, dtype=bool)
        self._buf_image_model = np.full(n_images, -1, dtype=np.int64)
        self._buf_img_cam = np.array(img_cam, dtype=np.int64).reshape(n_images)
        self._buf_image_ids = np.arange(1, n_images + 1, dtype=np.int64)
        T = tracks.num_tracks
        self._buf_X = np.zeros((T, 3))
        self._buf_point_valid = np.zeros(T, dtype=bool)
        self._buf_point_model = np.full(T, -1, dtype=np.int64)
        self._buf_point_ids = np.arange(1, T + 1, dtype=np.int64)
        lengths = tracks.lengths()
        self._buf_obs_track = np.repeat(np.arange(T, dtype=np.int64), lengths)
        self._buf_obs_img = tracks.image_idx.copy()
        self._buf_obs_kp = tracks.keypoint_idx.copy()
        kp_all = np.concatenate(images.keypoints) if images.keypoints else np.zeros((0, 2))
        self._buf_obs_uv = np.ascontiguousarray(kp_all[tracks.offsets[self.obs_img] + self.obs_kp])
        self._buf_obs_active = np.zeros(len(self.obs_img), dtype=bool)
        if images.scales:
            scales = np.concatenate(images.scales)[tracks.offsets[self.obs_img] + self.obs_kp]
            self._buf_obs_sigma = sigma_from_scale(scales, scale_exponent)
        else:
            self._buf_obs_sigma = np.ones(len(self.obs_img))
        self._buf_obs_xy = np.zeros((len(self.obs_img), 2))
        self._buf_image_sizes = np.array(images.sizes).reshape(n_images, 2)
        self.images.sizes = self.image_sizes
        # the track of each keypoint (-1: none), per image
        self.kp_track = [np.array(tracks.track_of[tracks.offsets[i]: tracks.offsets[i + 1]], dtype=np.int64)
                         for i in range(n_images)]
        self._track_edits = 0  # bumped when observations move between tracks (merge_tracks)
        self._uv_edits = 0  # bumped when observations move in their image (move_observations)
        self._tracks_indexed = None
        self._index_images()
        self._sync_camera_arrays()
        for c in range(len(self.cameras)):
            self.update_normalised(c)

    # --- sizes and growth ---------------------------------------------------------------------
    @property
    def n_images(self) -> int:
        return self._len["images"]

    @property
    def num_tracks(self) -> int:
        return self._len["tracks"]

    @property
    def num_observations(self) -> int:
        return self._len["obs"]

    def _reserve(self, group: str, n_new: int) -> tuple[int, int]:
        """Room for ``n_new`` more rows of ``group`` (buffers doubled when full, new rows at their
        defaults); returns the new rows' range."""
        a = self._len[group]
        b = a + int(n_new)
        for name in self._GROUPS[group]:
            buf = getattr(self, "_buf_" + name)
            if b > len(buf):
                new = np.zeros((max(b, 2 * len(buf), 8),) + buf.shape[1:], dtype=buf.dtype)
                new[:a] = buf[:a]
                setattr(self, "_buf_" + name, new)
                buf = new
            buf[a:b] = _FILL.get(name, 0)
        self._len[group] = b
        return a, b

    def _index_images(self) -> None:
        """Observations of each image (CSR over images: ``img_obs``, ``img_obs_ptr``)."""
        obs_img = self.obs_img
        self.img_obs = np.argsort(obs_img, kind="stable")
        self.img_obs_ptr = np.zeros(self.n_images + 1, dtype=np.int64)
        np.cumsum(np.bincount(obs_img, minlength=self.n_images), out=self.img_obs_ptr[1:])
        self._indexed = (self.n_images, self.num_observations)

    def _index_tracks(self) -> None:
        """Observations of each track (CSR over tracks: ``trk_obs``, ``trk_obs_ptr``)."""
        obs_track = self.obs_track
        self.trk_obs = np.argsort(obs_track, kind="stable")
        self.trk_obs_ptr = np.zeros(self.num_tracks + 1, dtype=np.int64)
        np.cumsum(np.bincount(obs_track, minlength=self.num_tracks), out=self.trk_obs_ptr[1:])
        self._tracks_indexed = (self.num_tracks, self.num_observations, self._track_edits)

    # --- cameras ------------------------------------------------------------------------------
    def _sync_camera_arrays(self) -> None:
        P = max((len(c.params) for c in self.cameras), default=1)
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
        if self._indexed != (self.n_images, self.num_observations):
            self._index_images()
        return self.img_obs[self.img_obs_ptr[i] : self.img_obs_ptr[i + 1]]

    def observations_of_tracks(self, tracks: np.ndarray) -> np.ndarray:
        """Indices of the observations of ``tracks`` (K,) (distinct), grouped by track in the
        order given, each track's in increasing index: the cost is that of the answer, not of
        all observations (``np.isin(obs_track, tracks)`` made every per-image step O(model))."""
        if self._tracks_indexed != (self.num_tracks, self.num_observations, self._track_edits):
            self._index_tracks()
        tracks = np.asarray(tracks, dtype=np.int64)
        start = self.trk_obs_ptr[tracks]
        cnt = self.trk_obs_ptr[tracks + 1] - start
        ends = np.cumsum(cnt)
        return self.trk_obs[np.repeat(start - ends + cnt, cnt) + np.arange(int(ends[-1]) if len(ends) else 0)]

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
        return np.bincount(self.obs_track[self.obs_active], minlength=self.num_tracks)

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

    def move_observations(self, obs: np.ndarray, uv: np.ndarray) -> None:
        """Observations ``obs`` (K,) now at pixels ``uv`` (K,2) (e.g. refined sub-pixel): their
        keypoints, ``obs_uv`` and ``obs_xy`` change together."""
        obs = np.asarray(obs, dtype=np.int64)
        uv = np.asarray(uv, dtype=np.float64).reshape(len(obs), 2)
        self._uv_edits += 1
        self.obs_uv[obs] = uv
        img, kp = self.obs_img[obs], self.obs_kp[obs]
        for i in np.unique(img):  # per image (few), vectorised over its keypoints
            m = img == i
            self.images.keypoints[i][kp[m]] = uv[m]
        cams = self.img_cam[img]
        for c in np.unique(cams):
            m = cams == c
            self.obs_xy[obs[m]] = self.cameras[int(c)].cam_from_img(uv[m])[:, :2]

    def invalidate_points(self, tracks: np.ndarray) -> None:
        """Remove the points of ``tracks`` from their model, with all their observations."""
        tracks = np.asarray(tracks, dtype=np.int64)
        self.point_valid[tracks] = False
        self.point_model[tracks] = -1
        self.obs_active[self.observations_of_tracks(np.unique(tracks))] = False

    def move_points(self, tracks: np.ndarray, X_world: np.ndarray) -> None:
        """New positions ``X_world`` (K,3) for the valid points of ``tracks`` (K,)."""
        tracks = np.asarray(tracks, dtype=np.int64)
        if not self.point_valid[tracks].all():
            raise ValueError("move_points: some tracks have no point (set_points gives them one)")
        self.X[tracks] = X_world

    _SNAPSHOT = ("R", "t", "registered", "image_model", "X", "point_valid", "point_model", "obs_active")

    def snapshot(self) -> dict:
        """A copy of the poses, points, model memberships, active observations and cameras, for
        :meth:`restore` (to try a change and take it back; the state must not grow meanwhile)."""
        return {"sizes": dict(self._len), "cameras": list(self.cameras),
                **{k: getattr(self, k).copy() for k in self._SNAPSHOT}}

    def restore(self, snap: dict) -> None:
        """Go back to a :meth:`snapshot`."""
        if snap["sizes"] != self._len:
            raise ValueError("restore: the state grew since the snapshot")
        for k in self._SNAPSHOT:
            getattr(self, k)[...] = snap[k]
        for c, cam in enumerate(snap["cameras"]):
            if self.cameras[c] is not cam:
                self.set_camera(c, cam)

    def transform_model(self, model: int, dst_from_src: Sim3, into: int) -> None:
        """Move model ``model`` into model ``into`` (``into`` may equal ``model``): its poses and
        points are mapped by the similarity ``dst_from_src`` (``x_dst = s R x_src + t``), and its
        images and points then belong to ``into``."""
        imgs = np.flatnonzero(self.image_model == model)
        trks = np.flatnonzero(self.point_model == model)
        S = dst_from_src
        # cam_from_dst = scale-s copy of cam_from_src composed with src_from_dst
        R_new = self.R[imgs] @ S.R.T
        self.t[imgs] = S.scale * self.t[imgs] - np.einsum("nij,j->ni", R_new, S.t)
        self.R[imgs] = R_new
        self.X[trks] = S.apply(self.X[trks]) if len(trks) else self.X[trks]
        self.image_model[imgs] = into
        self.point_model[trks] = into

    def merge_tracks(self, keep: np.ndarray, drop: np.ndarray) -> int:
        """Fuse duplicated points: the observations of track ``drop[k]`` join track ``keep[k]``
        (both with valid points of one model; each track once). An observation in an image that
        ``keep[k]`` already sees stays with ``drop[k]``, inactive; the dropped points become
        invalid. Returns the number of observations moved."""
        keep = np.asarray(keep, dtype=np.int64).ravel()
        drop = np.asarray(drop, dtype=np.int64).ravel()
        if len(keep) != len(drop) or len(np.unique(np.r_[keep, drop])) < 2 * len(keep):
            raise ValueError("merge_tracks: keep and drop must pair distinct tracks, each once")
        if len(keep) == 0:
            return 0
        if not (self.point_valid[keep].all() and self.point_valid[drop].all()
                and np.array_equal(self.point_model[keep], self.point_model[drop])):
            raise ValueError("merge_tracks: every track needs a valid point, pairs in one model")
        target_of = np.full(self.num_tracks, -1, np.int64)
        target_of[drop] = keep
        o = np.flatnonzero(target_of[self.obs_track] >= 0)
        target = target_of[self.obs_track[o]]
        n = np.int64(self.n_images)
        have = np.flatnonzero(np.isin(self.obs_track, keep))
        key_old = self.obs_track[have] * n + self.obs_img[have]
        key_new = target * n + self.obs_img[o]
        _, first = np.unique(key_new, return_index=True)
        dup = np.ones(len(o), bool)
        dup[first] = False
        conflict = np.isin(key_new, key_old) | dup
        move, tgt = o[~conflict], target[~conflict]
        self._buf_obs_track[move] = tgt
        self._track_edits += 1
        for i in np.unique(self.obs_img[move]):
            m = self.obs_img[move] == i
            self.kp_track[int(i)][self.obs_kp[move[m]]] = tgt[m]
        self.obs_active[o[conflict]] = False
        self.point_valid[drop] = False
        self.point_model[drop] = -1
        return len(move)

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

    # --- growth -------------------------------------------------------------------------------
    def add_camera(self, camera: Camera, known: bool = False, camera_id: int | None = None) -> int:
        """A new camera (``known``: its intrinsics stay fixed); returns its index."""
        if not isinstance(camera, Camera):
            raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
        self.cameras.append(camera)
        self.camera_known = np.r_[self.camera_known, bool(known)]
        self.camera_ids.append(max(self.camera_ids, default=0) + 1 if camera_id is None else int(camera_id))
        self._sync_camera_arrays()
        return len(self.cameras) - 1

    def add_image(self, name: str, keypoints: np.ndarray, camera: Camera | int, *, colors: np.ndarray | None = None,
                  scales: np.ndarray | None = None, camera_known: bool = False, image_id: int | None = None) -> int:
        """A new, unregistered image with ``keypoints`` (N,2) pixels, seen through ``camera`` (an
        index into ``cameras``, or a new :class:`Camera`, ``camera_known`` saying whether its
        intrinsics are fixed). ``colors`` (N,3) uint8 and detection ``scales`` (N,) are optional.
        Returns the image's index. Its keypoints join tracks through :meth:`add_tracks` /
        :meth:`add_observations`."""
        kp = np.ascontiguousarray(keypoints, dtype=np.float64).reshape(-1, 2)
        n = len(kp)
        if isinstance(camera, Camera):
            c = self.add_camera(camera, camera_known)
        else:
            c = int(camera)
            if not 0 <= c < len(self.cameras):
                raise ValueError(f"camera index {c} out of range (there are {len(self.cameras)} cameras)")
        col = np.zeros((n, 3), np.uint8) if colors is None else np.asarray(colors, dtype=np.uint8).reshape(n, 3)
        if scales is not None:
            scales = np.asarray(scales, dtype=np.float64).reshape(n)
        if self.images.scales is None and scales is not None:
            # the images so far had no scales: sigma 1, as scale 1
            self.images.scales = [np.ones(len(k)) for k in self.images.keypoints]
        i, _ = self._reserve("images", 1)
        self._buf_img_cam[i] = c
        self._buf_image_ids[i] = (int(self.image_ids[:i].max(initial=0)) + 1) if image_id is None else int(image_id)
        cam = self.cameras[c]
        self._buf_image_sizes[i] = (cam.width, cam.height)
        self.images.names.append(str(name))
        self.images.keypoints.append(kp)
        self.images.colors.append(col)
        if self.images.scales is not None:
            self.images.scales.append(np.ones(n) if scales is None else scales)
        self.images.sizes = self.image_sizes
        self.kp_track.append(np.full(n, -1, dtype=np.int64))
        return i

    def _append_observations(self, trk: np.ndarray, img: np.ndarray, kp: np.ndarray) -> np.ndarray:
        if len(img) and (img.min() < 0 or img.max() >= self.n_images):
            raise ValueError(f"image indices must lie in [0, {self.n_images})")
        images = np.unique(img)
        for i in images:  # checks per image (few), vectorised over its keypoints
            q = kp[img == i]
            n_kp = len(self.images.keypoints[i])
            if len(q) and (q.min() < 0 or q.max() >= n_kp):
                raise ValueError(f"keypoint {int(q[(q < 0) | (q >= n_kp)][0])} of image {int(i)} does not exist")
            taken = self.kp_track[i][q] >= 0
            if taken.any():
                k = int(q[taken][0])
                raise ValueError(f"keypoint {k} of image {int(i)} already belongs to track {self.kp_track[i][k]}")
            if len(np.unique(q)) < len(q):
                raise ValueError(f"a keypoint of image {int(i)} is given twice")
        pairs = np.stack([trk, img], axis=1)
        old = np.isin(self.obs_track, trk)
        existing = np.stack([self.obs_track[old], self.obs_img[old]], axis=1)
        both = np.concatenate([existing, pairs])
        if len(np.unique(both, axis=0)) < len(both):
            raise ValueError("a track would see one image twice")
        a, b = self._reserve("obs", len(img))
        self._buf_obs_track[a:b] = trk
        self._buf_obs_img[a:b] = img
        self._buf_obs_kp[a:b] = kp
        for i in images:
            m = img == i
            q = kp[m]
            self.kp_track[i][q] = trk[m]
            self._buf_obs_uv[a:b][m] = self.images.keypoints[i][q]
            if self.images.scales is not None:
                self._buf_obs_sigma[a:b][m] = sigma_from_scale(self.images.scales[i][q], self.scale_exponent)
            else:
                self._buf_obs_sigma[a:b][m] = 1.0
        cams = self.img_cam[img]
        for c in np.unique(cams):
            m = cams == c
            self._buf_obs_xy[a:b][m] = self.cameras[int(c)].cam_from_img(self.obs_uv[a:b][m])[:, :2]
        return np.arange(a, b)

    def add_tracks(self, ptr: np.ndarray, image_idx: np.ndarray, keypoint_idx: np.ndarray) -> np.ndarray:
        """New tracks, in CSR form: track k sees ``keypoint_idx[ptr[k]:ptr[k+1]]`` of images
        ``image_idx[...]`` (images already added; a keypoint in at most one track, an image at
        most once per track). The tracks have no point yet. Returns their indices (K,)."""
        ptr = np.asarray(ptr, dtype=np.int64).ravel()
        img = np.asarray(image_idx, dtype=np.int64).ravel()
        kp = np.asarray(keypoint_idx, dtype=np.int64).ravel()
        if len(ptr) == 0 or ptr[0] != 0 or ptr[-1] != len(img) or len(kp) != len(img) or np.any(np.diff(ptr) < 0):
            raise ValueError("add_tracks: ptr must run from 0 to len(image_idx), non-decreasing")
        K = len(ptr) - 1
        t0 = self.num_tracks
        trk = t0 + np.repeat(np.arange(K, dtype=np.int64), np.diff(ptr))
        self._append_observations(trk, img, kp)  # validates before the tracks exist
        a, b = self._reserve("tracks", K)
        self._buf_point_ids[a:b] = int(self.point_ids[:a].max(initial=0)) + 1 + np.arange(K)
        return np.arange(a, b)

    def add_observations(self, tracks: np.ndarray, image_idx: np.ndarray, keypoint_idx: np.ndarray) -> np.ndarray:
        """Existing ``tracks`` (K,) seen by keypoints ``keypoint_idx`` (K,) of images ``image_idx``
        (K,); the new observations are inactive. Returns their indices (K,)."""
        trk = np.asarray(tracks, dtype=np.int64).ravel()
        if len(trk) and (trk.min() < 0 or trk.max() >= self.num_tracks):
            raise ValueError(f"tracks must lie in [0, {self.num_tracks})")
        return self._append_observations(trk, np.asarray(image_idx, dtype=np.int64).ravel(),
                                         np.asarray(keypoint_idx, dtype=np.int64).ravel())

    @classmethod
    def empty(cls, scale_exponent: float = 0.5) -> MapperState:
        """A state without cameras, images or tracks, to grow with :meth:`add_camera`,
        :meth:`add_image`, :meth:`add_tracks` and :meth:`add_observations`."""
        data = ImageData([], [], [], np.zeros((0, 2), np.int64), [])
        z = np.zeros(0, np.int64)
        tracks = Tracks(np.zeros(1, np.int64), z, z.copy(), z.copy(), np.zeros(1, np.int64))
        return cls(data, [], z.copy(), np.zeros(0, bool), tracks, scale_exponent)

    @classmethod
    def from_reconstruction(cls, reconstruction: Reconstruction, *, camera_known: bool = False,
                            scale_exponent: float = 0.5, keypoint_scales: list[np.ndarray] | None = None,
                            keypoint_colors: list[np.ndarray] | None = None) -> MapperState:
        """A state holding a saved model: its cameras, images (registered ones with their poses),
        and one track per 3-D point with its point and all its observations active (model 0).
        Keypoint colours are the colours of their points (black elsewhere); the ids are kept, so
        ``from_reconstruction(r).to_reconstruction()`` gives back ``r``'s registered images,
        cameras, points and tracks (point errors recomputed). ``camera_known``: hold the
        intrinsics fixed in later bundle adjustments. ``keypoint_scales`` / ``keypoint_colors``
        (per image in id order, (N_i,) / (N_i,3)) restore what a model file lacks: the
        detection scales that weigh observations, and the keypoints' own colours."""
        rec = reconstruction
        cam_ids = sorted(rec.cameras)
        cam_idx = {cid: k for k, cid in enumerate(cam_ids)}
        img_ids = sorted(rec.images)
        img_idx = {iid: k for k, iid in enumerate(img_ids)}
        pt_ids = sorted(rec.points3D)
        imgs = [rec.images[i] for i in img_ids]
        kps = [np.asarray(im.keypoints, dtype=np.float64).reshape(-1, 2) for im in imgs]
        colors = [np.zeros((len(k), 3), np.uint8) for k in kps]
        offsets = np.r_[0, np.cumsum([len(k) for k in kps])].astype(np.int64)
        track_of = np.full(int(offsets[-1]), -1, dtype=np.int64)
        ptr, image_idx, keypoint_idx = [0], [], []
        for t, pid in enumerate(pt_ids):
            p = rec.points3D[pid]
            tr = np.asarray(p.track, dtype=np.int64).reshape(-1, 2)
            ii = np.array([img_idx[int(i)] for i in tr[:, 0]], dtype=np.int64)
            order = np.argsort(ii, kind="stable")
            ii, kk = ii[order], tr[order, 1]
            image_idx.append(ii)
            keypoint_idx.append(kk)
            ptr.append(ptr[-1] + len(ii))
            track_of[offsets[ii] + kk] = t
            for i, k in zip(ii, kk):
                colors[i][k] = p.color
        cat = (lambda a: np.concatenate(a) if a else np.zeros(0, np.int64))
        tracks = Tracks(np.array(ptr, dtype=np.int64), cat(image_idx), cat(keypoint_idx), track_of, offsets)
        cams = [rec.cameras[c] for c in cam_ids]
        img_cam = np.array([cam_idx[im.camera_id] for im in imgs], dtype=np.int64)
        sizes = np.array([[cams[c].width, cams[c].height] for c in img_cam], dtype=np.int64).reshape(-1, 2)
        if keypoint_colors is not None:
            colors = [np.asarray(c, np.uint8).reshape(len(k), 3) for c, k in zip(keypoint_colors, kps, strict=True)]
        if keypoint_scales is not None:
            keypoint_scales = [np.asarray(c, np.float64).reshape(len(k)) for c, k in zip(keypoint_scales, kps, strict=True)]
        data = ImageData([im.name for im in imgs], kps, colors, sizes, keypoint_scales)
        state = cls(data, cams, img_cam, np.full(len(cams), bool(camera_known)), tracks, scale_exponent)
        state.camera_ids = list(cam_ids)
        state._buf_image_ids[: len(img_ids)] = img_ids
        state._buf_point_ids[: len(pt_ids)] = pt_ids
        for k, im in enumerate(imgs):
            if im.cam_from_world is not None:
                state.register(k, im.cam_from_world, 0)
        if pt_ids:
            state.set_points(np.arange(len(pt_ids)), np.array([rec.points3D[p].xyz for p in pt_ids]), 0)
            state.activate_observations(np.arange(state.num_observations))
        return state

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
        valid points with their active observations, as a Reconstruction (ids: ``image_ids``,
        ``camera_ids``, ``point_ids``; index + 1 unless the state came from a reconstruction)."""
        mask = self.registered.copy() if image_mask is None else (self.registered & image_mask)
        rec = Reconstruction()
        cam_ids = {}
        for c in np.unique(self.img_cam[mask]):
            cam_ids[int(c)] = rec.add_camera(self.cameras[int(c)], camera_id=self.camera_ids[int(c)])
        for i in range(self.n_images):
            if not mask[i]:
                continue
            rec.add_image(self.images.names[i], cam_ids[int(self.img_cam[i])], self.images.keypoints[i],
                          self.pose(i), image_id=int(self.image_ids[i]))
        obs = np.flatnonzero(self.obs_active & mask[self.obs_img] & self.point_valid[self.obs_track])
        count = np.bincount(self.obs_track[obs], minlength=self.num_tracks)
        obs = obs[count[self.obs_track[obs]] >= 2]
        if len(obs) == 0:
            return rec
        err = np.sqrt(self.sq_errors(obs))
        order = np.argsort(self.obs_track[obs], kind="stable")
        obs, err = obs[order], err[order]
        trk, start = np.unique(self.obs_track[obs], return_index=True)
        kp_colors = np.concatenate(self.images.colors)
        offsets = np.r_[0, np.cumsum([len(c) for c in self.images.colors])].astype(np.int64)
        col = kp_colors[offsets[self.obs_img[obs]] + self.obs_kp[obs]].astype(np.float64)
        col_mean = np.add.reduceat(col, start, axis=0) / np.diff(np.r_[start, len(obs)])[:, None]
        err_mean = np.add.reduceat(err, start) / np.diff(np.r_[start, len(obs)])
        tracks_2d = np.stack([self.image_ids[self.obs_img[obs]], self.obs_kp[obs]], axis=1)
        for k, (t_id, s) in enumerate(zip(trk, start)):
            e = start[k + 1] if k + 1 < len(start) else len(obs)
            rec.add_point3D(self.X[t_id], tracks_2d[s:e], np.round(col_mean[k]).astype(np.uint8), float(err_mean[k]),
                            point3D_id=int(self.point_ids[t_id]))
        return rec
