"""The online controller: frames in one by one, poses out, a map that grows (visual odometry + mapping).

:class:`OnlineMapper` is the second client of the mapper's verbs (``mapper.py``), beside the
batch controller (``incremental.py``). Per frame (:meth:`OnlineMapper.add_frame`):

1. between keyframes (``OnlineOptions.tracking="flow"``): the previous frame's 2D-3D inliers
   are followed by optical flow (:mod:`~geomvision.features.flow`) and the pose comes from them
   (absolute pose, RANSAC + refinement); features are extracted only when the frame becomes a
   keyframe or the flow fails, and then steps 2-5 run as for ``tracking="features"``;
   otherwise SIFT features (or the caller's :class:`Features`);
2. *initialising*: match with a reference frame, verify (E, RANSAC) and wait for enough
   parallax; then the two frames become the first keyframes (the batch verb
   ``register_initial_pair``: triangulation and bundle adjustment; the world frame is the first
   keyframe's camera, the scale the first baseline) and the frames in between get their poses;
3. *tracking*: predict the pose with a constant-velocity model, match the local map's points by
   projection (:func:`~geomvision.features.match_by_projection`, wider windows and then plain
   descriptor matching as fall-backs), absolute pose (RANSAC + refinement), then match again
   around the estimated pose and refine on all inliers;
4. *keyframe* when the frame tracks too few of the last keyframe's points (or too many frames
   passed): it joins the state with its tracked observations, new tracks are matched with its
   most covisible keyframes (epipolar check with the known poses) and triangulated (batch verb),
   and a windowed bundle adjustment moves the last keyframes (batch verb ``adjust_local_bundle``);
5. *lost* when tracking fails; every following frame then tries to *relocalise* against all
   keyframes (VLAD retrieval of the most similar keyframes, descriptor matching with their
   points, absolute pose).

Only keyframes are stored in the map; every other frame's pose is kept relative to its
reference keyframe, so :meth:`OnlineMapper.trajectory` follows the map as bundle adjustment
moves it. :meth:`OnlineMapper.localize` gives the pose of an image against the map without
changing it (also :func:`localize` on a saved map). Bad frames (wrong size, blank, featureless)
come back with status ``rejected`` or ``lost`` and a reason; ``add_frame`` does not raise for them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..features.flow import grey_u8, track_points
from ..features.guided import match_by_projection
from ..features.matching import match_descriptors, unit_descriptors
from ..features.options import FeatureOptions, MatchOptions
from ..features.patch_alignment import PatchAlignmentOptions, _gray, align_patches, sample_patches
from ..features.retrieval import train_vocabulary, vlad_descriptors
from ..features.sift import extract_features
from ..features.types import Features
from ..geometry.camera import Camera
from ..geometry.projection import project_points, reprojection_sq_errors
from ..geometry.rigid import Rigid3
from ..geometry.rotation import so3_exp
from ..robust import estimate_absolute_pose
from ..robust.sim3 import estimate_sim3
from ..scene.reconstruction import Reconstruction
from ..optim import BAOptions
from ..optim.refine import refine_pose
from ..solvers.refine import refine_absolute_pose
from .loop_closure import LoopCorrection, correct_loop, covisibility
from .mapper import IncrementalMapper
from .options import CameraOptions, LoopClosureOptions, OnlineOptions, VerificationOptions
from .state import MapperState
from .verification import two_view_structure, verify_pair

log = logging.getLogger(__name__)

# A pose needs its inliers to be this fraction of the putative 2D-3D matches (RANSAC stage), and
# of the matches found again by projection around it (refined stage). On the rendered walks a
# right pose had 60-75 % of either; a wrong one seen after a jump had 19 % and 32 %.
MIN_INLIER_RATIO = 0.25
MIN_REFINED_RATIO = 0.5
# A loop needs this fraction of the points seen on both of its sides to fit one similarity
# within 2 % of their depth. Wrong loops accepted on the rendered 360-degree walk before this
# check (poses 0.2 and 0.87 m off with 86 and 101 2D-3D inliers) rested on far points.
MIN_LOOP_AGREEMENT = 0.7
LOOP_MAX_RELATIVE_ERROR = 0.02  # 3-D agreement of the two sides: 2 % of the points' median depth
LOOP_MAX_VIEW_ANGLE_DEG = 45.0  # a loop candidate's optical axis within this of the keyframe's
# The images of this many latest keyframes are held (1.2 MB each at 640x480) so that a new point's
# observation in the keyframe it was matched with can be aligned onto its reference patch.
KEYFRAME_IMAGES_HELD = 12

STATUSES = ("initialising", "tracking", "keyframe", "lost", "relocalised", "rejected")


@dataclass
class FrameResult:
    """What :meth:`OnlineMapper.add_frame` found for one frame.

    ``cam_from_world`` is None while initialising, when lost or rejected (``reason`` says why);
    ``status`` is one of ``STATUSES``; ``num_inliers`` counts the 2D-3D inliers of the pose (or
    the verified matches while initialising); ``keyframe`` is the frame's image index in the map
    when it became a keyframe; ``time_s`` is the wall time of the call (features included)."""

    index: int
    timestamp: float
    status: str
    cam_from_world: Rigid3 | None
    num_inliers: int = 0
    num_matches: int = 0
    time_s: float = 0.0
    reason: str = ""
    keyframe: int | None = None
    loop: LoopCorrection | None = None  # the loop this keyframe closed

    @property
    def has_pose(self) -> bool:
        return self.cam_from_world is not None


@dataclass
class _Frame:
    timestamp: float
    ref_kf: int = -1  # state image the pose is relative to (-1: no pose)
    cam_from_ref: Rigid3 | None = None
    # a tracking frame's 2D-3D inliers, kept until its pose is settled on the adjusted map
    obs_uv: np.ndarray | None = None  # (K,2)
    obs_tracks: np.ndarray | None = None  # (K,)


@dataclass
class _Pose:
    cam_from_world: Rigid3
    tracks: np.ndarray  # (K,) inlier tracks
    keypoints: np.ndarray  # (K,) their keypoints in the frame
    num_matches: int
    how: str = ""


@dataclass
class _Flow:
    grey: np.ndarray  # (H,W) uint8: the frame the points were last seen in
    uv: np.ndarray  # (K,2) their pixels there
    tracks: np.ndarray  # (K,) their map points
    started: int  # points the flow started from at the last keyframe (the keyframe rule's reference)


@dataclass
class _Init:
    index: int
    features: Features
    grey: np.ndarray | None = None  # the frame for patch alignment (float, None: given as Features)
    pending: list[tuple[int, Features]] = field(default_factory=list)


def _spread(uv: np.ndarray, n: int, width: int, height: int, cells: tuple[int, int] = (8, 6)) -> np.ndarray:
    """Indices of at most ``n`` of the points ``uv`` (K,2) spread over the image: taken in turn
    from each cell of a ``cells`` grid (the first points of every cell, then the second, ...)."""
    if len(uv) <= n:
        return np.arange(len(uv))
    cx = np.clip((uv[:, 0] * cells[0] / width).astype(np.int64), 0, cells[0] - 1)
    cy = np.clip((uv[:, 1] * cells[1] / height).astype(np.int64), 0, cells[1] - 1)
    cell = cy * cells[0] + cx
    order = np.argsort(cell, kind="stable")
    first = np.searchsorted(cell[order], cell[order])  # where each point's cell starts in ``order``
    rank = np.empty(len(uv), np.int64)
    rank[order] = np.arange(len(uv)) - first
    return np.sort(np.argsort(rank, kind="stable")[:n])


def _frame_pixels(image: np.ndarray) -> np.ndarray:
    """A checked frame as (H,W,3) RGB or (H,W) grey uint8: the alpha channel is dropped, HxWx1 is grey."""
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., :3]
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _check_frame(image, camera: Camera) -> str:
    """Why ``image`` cannot be a frame of ``camera`` ('' when it can)."""
    if isinstance(image, Features):
        return ""
    if not isinstance(image, np.ndarray):
        return f"a frame must be a uint8 numpy array or Features, got {type(image).__name__}"
    if image.dtype != np.uint8:
        return f"a frame must be uint8, got {image.dtype} (scale to 0-255 and convert with .astype(np.uint8))"
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        return f"a frame must be HxW or HxWx3, got shape {image.shape}"
    h, w = image.shape[:2]
    if (w, h) != (camera.width, camera.height):
        return f"the frame is {w}x{h} pixels, the camera {camera.width}x{camera.height}"
    return ""


class OnlineMapper:
    """Online incremental mapping: ``result = mapper.add_frame(image)`` for each frame in order.

    ``camera``: the frames' camera (its intrinsics are held fixed; ``camera_known=False`` marks
    them as a prior that :meth:`adjust_global` may refine). ``options``: :class:`OnlineOptions`.
    The map is :attr:`state` (keyframes are its images, poses ``cam_from_world``);
    :meth:`reconstruction` returns it as a :class:`Reconstruction` at any time.
    """

    def __init__(self, camera: Camera, options: OnlineOptions | None = None, *, camera_known: bool = True) -> None:
        if not isinstance(camera, Camera):
            raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
        options = OnlineOptions() if options is None else options
        if not isinstance(options, OnlineOptions):
            raise ValueError(f"options must be an OnlineOptions, got {type(options).__name__}")
        self.camera = camera
        self.opt = options.resolved()
        self.state = MapperState.empty(options.scale_weight_exponent)
        self._cam = self.state.add_camera(camera, known=bool(camera_known))
        self.mapper = IncrementalMapper(self.state, {}, options.mapper_options(),
                                        CameraOptions(refine_known_intrinsics=False), seed=options.seed)
        self.keyframe_features: list[Features] = []  # per state image
        self.keyframe_frame: list[int] = []  # frame index of each state image
        self._unsettled: list[int] = []  # frames holding their 2D-3D inliers (_settle_frames)
        self.frames: list[_Frame] = []
        self._point_desc = np.zeros((0, 128), np.float32)  # per track, unit rows (tracks with a point)
        self._vocab: np.ndarray | None = None
        self._kf_vlad = np.zeros((0, 1))
        self._init: _Init | None = None
        self._last: Rigid3 | None = None  # pose of the previous frame (None: not tracked)
        self._velocity: Rigid3 | None = None
        self._ref_kf = -1
        self._since_kf = 0
        self._local_tracks = np.zeros(0, np.int64)
        self._ref_points = 0
        self.loops: list[LoopCorrection] = []
        # sub-pixel observations: each point's reference patch (from the keyframe that created it);
        # its other observations (keyframes' and tracking frames') are aligned onto it, the warp
        # predicted from the poses (as batch SfM refines its tracks)
        self._patch_opt = PatchAlignmentOptions()
        r = self._patch_opt.patch_radius
        self._patch = np.zeros((0, 2 * r + 1, 2 * r + 1), np.float32)
        self._has_patch = np.zeros(0, bool)
        self._patch_kf = np.zeros(0, np.int64)  # the keyframe each reference patch comes from
        self._kf_grey: dict[int, np.ndarray] = {}  # the recent keyframes' images, to align their observations
        self._gray: np.ndarray | None = None  # the current frame (None: given as Features)
        self._flow: _Flow | None = None  # points followed by optical flow (tracking="flow")

    # --- public ----------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return self.state.n_images > 0

    @property
    def num_keyframes(self) -> int:
        return int(self.state.registered.sum())

    def add_frame(self, image: np.ndarray | Features, timestamp: float | None = None) -> FrameResult:
        """Process the next frame: ``image`` (H,W) or (H,W,3) uint8 of the camera's size, or its
        :class:`Features`. Returns its :class:`FrameResult`; never raises for a bad frame."""
        t0 = time.perf_counter()
        index = len(self.frames)
        ts = float(index) if timestamp is None else float(timestamp)
        self.frames.append(_Frame(ts))
        why = _check_frame(image, self.camera)
        if why:
            return self._done(FrameResult(index, ts, "rejected", None, reason=why), t0)
        if isinstance(image, np.ndarray):
            image = _frame_pixels(image)
            grey = grey_u8(image)
            if self._flow is not None and self._last is not None:
                res = self._flow_frame(index, ts, image, grey)
                if res is not None:
                    return self._done(res, t0)
        else:
            grey = None
        feats, self._gray = self._features(image)
        self._flow = None
        if len(feats) < self.opt.min_inliers:
            self._last = self._velocity = None
            status = "initialising" if not self.initialised else "lost"
            return self._done(FrameResult(index, ts, status, None, reason=(
                f"only {len(feats)} features (blank, dark or blurred frame?)")), t0)
        if not self.initialised:
            res = self._initialise(index, ts, feats)
            self._start_flow(grey, res)
            return self._done(res, t0)
        res = self._track_frame(index, ts, feats)
        self._start_flow(grey, res)
        return self._done(res, t0)

    def trajectory(self) -> tuple[np.ndarray, list[Rigid3 | None]]:
        """Timestamps (F,) and each frame's current ``cam_from_world`` (None: no pose), following
        the map's latest adjustment (each pose is kept relative to a keyframe)."""
        poses: list[Rigid3 | None] = []
        for f in self.frames:
            if f.ref_kf < 0 or not self.state.registered[f.ref_kf]:
                poses.append(None)
            else:
                poses.append(f.cam_from_ref @ self.state.pose(f.ref_kf))
        return np.array([f.timestamp for f in self.frames]), poses

    def reconstruction(self) -> Reconstruction:
        """The map (keyframes, their camera and the points) as a COLMAP-writable Reconstruction."""
        return self.state.to_reconstruction()

    def adjust_global(self, refine_intrinsics: bool = False) -> None:
        """Bundle adjustment of the whole map (all keyframes and points); with
        ``refine_intrinsics`` and ``camera_known=False`` the focal length and distortion move
        (known intrinsics never do)."""
        if self.num_keyframes < 2:
            return
        self.mapper.adjust_global_bundle(refine_intrinsics=refine_intrinsics)
        self.camera = self.state.cameras[self._cam]
        self._refresh_local_map()
        self._settle_frames()

    def localize(self, image: np.ndarray | Features) -> FrameResult:
        """The pose of ``image`` against the map, which is not changed (status ``relocalised``
        on success, ``lost`` with the reason otherwise; ``index`` is -1)."""
        t0 = time.perf_counter()
        why = _check_frame(image, self.camera)
        if why:
            return self._done(FrameResult(-1, float("nan"), "rejected", None, reason=why), t0, record=False)
        if not self.initialised:
            return self._done(FrameResult(-1, float("nan"), "lost", None, reason="the map is empty"), t0, record=False)
        feats, _ = self._features(image)
        found, why = self._relocalise(feats, key=0)
        if found is None:
            return self._done(FrameResult(-1, float("nan"), "lost", None, reason=why), t0, record=False)
        return self._done(FrameResult(-1, float("nan"), "relocalised", found.cam_from_world, len(found.tracks),
                                      found.num_matches), t0, record=False)

    # --- persistence -----------------------------------------------------------------------------
    MAP_FORMAT = "geomvision-online-map-1"

    def save(self, path: str | os.PathLike) -> None:
        """Write the map into folder ``path``: a COLMAP model (``model/``) and ``map.npz`` (the
        keyframes' descriptors, the points' descriptors, the vocabulary, the trajectory and the
        options); see :mod:`geomvision.io.online_map`. Each file is written atomically."""
        from ..io.online_map import write_online_map  # io sits above sfm: imported on use only

        write_online_map(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, options: OnlineOptions | None = None) -> OnlineMapper:
        """A mapper continuing from the map saved in ``path`` (the next frame relocalises).
        ``options`` replace the saved ones."""
        from ..io.online_map import read_online_map

        return read_online_map(path, options)

    def to_arrays(self) -> tuple[Reconstruction, dict[str, np.ndarray]]:
        """The map as a Reconstruction plus the arrays it lacks (what :meth:`save` writes)."""
        s = self.state
        rec = self.reconstruction()
        kfs = np.flatnonzero(s.registered)
        kfs = kfs[np.argsort(s.image_ids[kfs])]
        feats = [self.keyframe_features[i] for i in kfs]
        pt_ids = np.array(sorted(rec.points3D), np.int64)
        trk = np.flatnonzero(s.point_valid & np.isin(s.point_ids, pt_ids))
        trk = trk[np.argsort(s.point_ids[trk])]
        F = len(self.frames)
        ref_id = np.array([s.image_ids[f.ref_kf] if f.ref_kf >= 0 and s.registered[f.ref_kf] else -1
                           for f in self.frames], np.int64)
        rel = np.full((F, 3, 4), np.nan)
        for k, f in enumerate(self.frames):
            if ref_id[k] >= 0:
                rel[k] = f.cam_from_ref.matrix3x4
        cat = (lambda name, shape, dtype: np.concatenate([getattr(f, name) for f in feats])
               if feats else np.zeros(shape, dtype))
        arrays = {
            "format": np.array(self.MAP_FORMAT),
            "options": np.array(json.dumps(dataclasses.asdict(self.opt))),
            "camera_known": np.array(bool(s.camera_known[self._cam])),
            "kf_image_ids": s.image_ids[kfs].astype(np.int64),
            "kf_frame": np.array(self.keyframe_frame, np.int64)[kfs],
            "kf_ptr": np.r_[0, np.cumsum([len(f) for f in feats])].astype(np.int64),
            "kf_scales": cat("scales", (0,), np.float64),
            "kf_orientations": cat("orientations_rad", (0,), np.float64),
            "kf_descriptors": cat("descriptors", (0, 128), np.uint8),
            "kf_colors": cat("colors", (0, 3), np.uint8),
            "point_ids": s.point_ids[trk].astype(np.int64),
            "point_descriptors": self._point_desc[trk].astype(np.float16),
            "vocabulary": np.zeros((0, 128), np.float32) if self._vocab is None else self._vocab,
            "frame_timestamps": np.array([f.timestamp for f in self.frames], np.float64),
            "frame_ref_image_id": ref_id,
            "frame_cam_from_ref": rel,
        }
        return rec, arrays

    @classmethod
    def from_arrays(cls, reconstruction: Reconstruction, arrays: dict[str, np.ndarray],
                    options: OnlineOptions | None = None) -> OnlineMapper:
        """Inverse of :meth:`to_arrays` (``ValueError`` when they do not fit together)."""
        rec, a = reconstruction, arrays
        if str(a.get("format", "")) != cls.MAP_FORMAT:
            raise ValueError(f"not an online map (format {str(a.get('format', 'missing'))!r}, expected "
                             f"{cls.MAP_FORMAT!r})")
        if options is None:
            d = json.loads(str(a["options"]))
            options = OnlineOptions(**{**d, "features": FeatureOptions(**d["features"]),
                                       "loop_closure": LoopClosureOptions(**d.get("loop_closure", {}))})
        if len(rec.cameras) != 1:
            raise ValueError(f"an online map has one camera, this model has {len(rec.cameras)}")
        ids = np.array(sorted(rec.images), np.int64)
        if not np.array_equal(np.sort(a["kf_image_ids"]), ids):
            raise ValueError("map.npz and the model disagree on the keyframes (a file from another map?)")
        camera = next(iter(rec.cameras.values()))
        m = cls(camera, options, camera_known=bool(a["camera_known"]))
        order = np.argsort(a["kf_image_ids"])  # state images are in id order
        ptr = a["kf_ptr"]
        sl = [slice(int(ptr[k]), int(ptr[k + 1])) for k in order]
        kps = [np.asarray(rec.images[int(i)].keypoints, np.float64).reshape(-1, 2) for i in ids]
        if any(len(k) != s_.stop - s_.start for k, s_ in zip(kps, sl)):
            raise ValueError("map.npz and the model disagree on the keypoints of a keyframe")
        m.state = MapperState.from_reconstruction(rec, camera_known=bool(a["camera_known"]),
                                                  scale_exponent=options.scale_weight_exponent,
                                                  keypoint_scales=[a["kf_scales"][s_] for s_ in sl],
                                                  keypoint_colors=[a["kf_colors"][s_] for s_ in sl])
        m._cam = 0
        m.mapper = IncrementalMapper(m.state, {}, options.mapper_options(), CameraOptions(refine_known_intrinsics=False),
                                     seed=options.seed)
        m.mapper.model = 0
        m.keyframe_features = [Features(k, a["kf_scales"][s_], a["kf_orientations"][s_], a["kf_descriptors"][s_],
                                        a["kf_colors"][s_]) for k, s_ in zip(kps, sl)]
        m.keyframe_frame = [int(f) for f in a["kf_frame"][order]]
        pts = np.array(sorted(rec.points3D), np.int64)
        if not np.array_equal(np.sort(a["point_ids"]), pts):
            raise ValueError("map.npz and the model disagree on the points")
        m._grow_point_desc()
        m._point_desc[np.searchsorted(pts, a["point_ids"])] = a["point_descriptors"].astype(np.float32)
        m._vocab = np.asarray(a["vocabulary"], np.float32) if len(a["vocabulary"]) else None
        if m._vocab is not None and m.keyframe_features:
            m._kf_vlad = vlad_descriptors(m.keyframe_features, m._vocab)
        img_index = {int(i): k for k, i in enumerate(ids)}
        for k, ts in enumerate(a["frame_timestamps"]):
            f = _Frame(float(ts))
            rid = int(a["frame_ref_image_id"][k])
            if rid >= 0:
                f.ref_kf = img_index[rid]
                M = a["frame_cam_from_ref"][k]
                f.cam_from_ref = Rigid3(M[:, :3], M[:, 3])
            m.frames.append(f)
        if len(ids):
            m._ref_kf = int(np.argmax(m.keyframe_frame))
            m._refresh_local_map()
        return m

    # --- bookkeeping -----------------------------------------------------------------------------
    def _features(self, image: np.ndarray | Features) -> tuple[Features, np.ndarray | None]:
        """A checked frame's features and its (H,W) float32 grey image (None when given as Features)."""
        if isinstance(image, Features):
            return image, None
        image = _frame_pixels(image)
        return extract_features(image, self.opt.features), _gray(image)

    def _done(self, res: FrameResult, t0: float, record: bool = True) -> FrameResult:
        res.time_s = time.perf_counter() - t0
        if record and res.status != "initialising":
            log.debug("frame %d: %s %s", res.index, res.status, res.reason)
        return res

    def _set_pose(self, index: int, cam_from_world: Rigid3, ref_kf: int) -> None:
        f = self.frames[index]
        f.ref_kf = int(ref_kf)
        f.cam_from_ref = cam_from_world @ self.state.pose(ref_kf).inverse()

    def _grow_point_desc(self) -> None:
        T = self.state.num_tracks
        if len(self._point_desc) < T:
            new = np.zeros((max(T, 2 * len(self._point_desc), 1024), 128), np.float32)
            new[: len(self._point_desc)] = self._point_desc
            self._point_desc = new

    def _set_point_desc(self, tracks: np.ndarray, feats: Features, keypoints: np.ndarray) -> None:
        self._grow_point_desc()
        if len(tracks):
            self._point_desc[tracks] = unit_descriptors(feats.descriptors[keypoints])

    def _set_new_point_desc(self, tracks: np.ndarray, i: int, feats: Features) -> None:
        """Descriptors of new points ``tracks``: their keypoints in keyframe ``i``."""
        s = self.state
        obs = s.observations_of_image(i)
        obs = obs[np.isin(s.obs_track[obs], tracks)]
        self._set_point_desc(s.obs_track[obs], feats, s.obs_kp[obs])

    def _set_vlad(self, i: int, feats: Features) -> None:
        g = vlad_descriptors([feats], self._vocab)
        if len(self._kf_vlad) < self.state.n_images:
            new = np.zeros((max(self.state.n_images, 2 * len(self._kf_vlad)), g.shape[1]))
            new[: len(self._kf_vlad)] = self._kf_vlad
            self._kf_vlad = new
        self._kf_vlad[i] = g[0]

    def _grow_patches(self) -> None:
        T = self.state.num_tracks
        if len(self._has_patch) < T:
            n = max(T, 2 * len(self._has_patch), 1024)
            grow = (lambda a: np.concatenate([a, np.zeros((n - len(a),) + a.shape[1:], a.dtype)]))
            self._patch, self._has_patch, self._patch_kf = grow(self._patch), grow(self._has_patch), grow(self._patch_kf)

    def _aligned_keypoints(self, feats: Features, tracks: np.ndarray, kps: np.ndarray, pose: Rigid3
                           ) -> tuple[np.ndarray, np.ndarray]:
        """The frame's keypoints (a copy) with those observing ``tracks`` (at ``kps`` (K,)) moved
        onto their points' reference patches (sub-pixel, affine-photometric alignment, the warp
        predicted from ``pose``), and (K,) which of them failed (a point with a patch not found
        again: its patch looks different here, NCC below ``min_patch_ncc``, or it did not converge)."""
        out = feats.keypoints.copy()
        if self._gray is None or len(tracks) == 0:
            return out, np.zeros(len(tracks), bool)
        uv, ok = self._aligned_by_pose(self._gray, pose, out[kps], tracks)  # grows the patch arrays
        out[kps[ok]] = uv[ok]
        return out, self._has_patch[tracks] & ~ok

    def _align_earlier_observations(self, tracks: np.ndarray) -> None:
        """Observations of new points ``tracks`` in keyframes before the one that gave their
        reference patch (the other side of the match that created them: raw keypoints until now)
        aligned onto that patch, in the keyframes whose image is still held."""
        s = self.state
        if not self._kf_grey:
            return
        self._grow_patches()
        tracks = tracks[self._has_patch[tracks]]
        obs = s.observations_of_tracks(tracks)
        obs = obs[s.obs_img[obs] != self._patch_kf[s.obs_track[obs]]]
        img = s.obs_img[obs]
        for j in np.unique(img):
            grey = self._kf_grey.get(int(j))
            if grey is None:
                continue
            o = obs[img == j]
            uv, ok = self._aligned_by_pose(grey, s.pose(int(j)), s.obs_uv[o], s.obs_track[o])
            s.move_observations(o[ok], uv[ok])

    def _store_patches(self, i: int) -> None:
        """Reference patches, from keyframe i (the current frame), of its points that have none."""
        if self._gray is None:
            return
        s = self.state
        self._grow_patches()
        obs = s.observations_of_image(i)
        obs = obs[s.obs_active[obs] & s.point_valid[s.obs_track[obs]]]
        obs = obs[~self._has_patch[s.obs_track[obs]]]
        if len(obs) == 0:
            return
        P = sample_patches(self._gray, s.obs_uv[obs], self._patch_opt.patch_radius)
        ok = np.isfinite(P).all(axis=(1, 2))
        t = s.obs_track[obs[ok]]
        self._patch[t] = P[ok]
        self._has_patch[t] = True
        self._patch_kf[t] = i

    # --- initialisation --------------------------------------------------------------------------
    def _initialise(self, index: int, ts: float, feats: Features) -> FrameResult:
        o = self.opt
        if self._init is None or index - self._init.index > o.init_max_frames:
            self._init = _Init(index, feats, self._gray)
            return FrameResult(index, ts, "initialising", None, reason="reference frame for initialisation")
        ref = self._init
        m = match_descriptors(ref.features.descriptors, feats.descriptors, num_threads=1)
        vopt = VerificationOptions(max_error_px=o.max_error_px, min_num_inliers=min(o.init_min_inliers, 15))
        g = verify_pair(ref.features.keypoints, feats.keypoints, m, self.camera, self.camera, calibrated=True,
                        options=vopt, rng=np.random.default_rng([o.seed, 1, index]))
        n_in = g.num_inliers if g.verified else 0
        if n_in < o.init_min_inliers or g.cam2_from_cam1 is None:
            if n_in < 0.25 * o.init_min_inliers or len(m) < o.init_min_inliers:  # the reference is no use any more
                self._init = _Init(index, feats, self._gray)
            else:
                ref.pending.append((index, feats))
            why = (f"{n_in} verified matches with the reference frame < {o.init_min_inliers}" if n_in < o.init_min_inliers
                   else f"no relative pose from the reference frame ({g.config}: too little parallax)")
            return FrameResult(index, ts, "initialising", None, n_in, len(m), reason=why)
        pose = g.cam2_from_cam1
        x1 = ref.features.keypoints[g.inlier_matches[:, 0]]
        x2 = feats.keypoints[g.inlier_matches[:, 1]]
        angle, front = two_view_structure(pose, self.camera.cam_from_img(x1), self.camera.cam_from_img(x2))
        if not angle >= o.init_min_tri_angle_deg or front < 0.9:
            ref.pending.append((index, feats))
            return FrameResult(index, ts, "initialising", None, n_in, len(m),
                               reason=f"median triangulation angle {angle:.2f} deg < {o.init_min_tri_angle_deg}")
        s = self.state
        i0 = self._add_keyframe_image(ref.index, ref.features, grey=ref.grey)
        i1 = self._add_keyframe_image(index, feats, grey=self._gray)
        K = len(g.inlier_matches)
        tracks = s.add_tracks(np.arange(0, 2 * K + 1, 2), np.tile([i0, i1], K), g.inlier_matches.ravel())
        why = self.mapper.register_initial_pair(i0, i1, pose, o.init_min_inliers)
        if why is not None:
            # leave both images unregistered (they stay in the state, unused) and start again from this frame
            self._init = _Init(index, feats, self._gray)
            return FrameResult(index, ts, "initialising", None, n_in, len(m), reason=f"initialisation failed: {why}")
        valid = tracks[s.point_valid[tracks]]
        self._set_new_point_desc(valid, i1, feats)
        self._store_patches(i1)
        self._align_earlier_observations(valid)
        self._vocab = train_vocabulary([ref.features, feats], self.opt.vocabulary_size, rng=o.seed)
        self._set_vlad(i0, ref.features)
        self._set_vlad(i1, feats)
        self._set_pose(ref.index, s.pose(i0), i0)
        self._set_pose(index, s.pose(i1), i1)
        self._ref_kf = i1
        self._refresh_local_map()
        for k, f in ref.pending:  # the frames in between, now that there is a map
            found, _ = self._relocalise(f, key=k)
            if found is not None:
                self._set_pose(k, found.cam_from_world, i1)
        self._init = None
        self._last, self._velocity, self._since_kf = s.pose(i1), None, 0
        log.info("initialised from frames %d and %d: %d points", ref.index, index, len(valid))
        return FrameResult(index, ts, "keyframe", s.pose(i1), len(valid), len(m), keyframe=i1)

    def _add_keyframe_image(self, index: int, feats: Features, keypoints: np.ndarray | None = None,
                            grey: np.ndarray | None = None) -> int:
        kp = feats.keypoints if keypoints is None else keypoints
        i = self.state.add_image(f"frame_{index:06d}", kp, self._cam, colors=feats.colors,
                                 scales=feats.scales, camera_known=True)
        self.keyframe_features.append(feats)
        self.keyframe_frame.append(index)
        if grey is not None:  # held for the latest keyframes only (new points' matches are among them)
            self._kf_grey[i] = grey
            for j in sorted(self._kf_grey)[: -KEYFRAME_IMAGES_HELD]:
                del self._kf_grey[j]
        return i

    # --- tracking --------------------------------------------------------------------------------
    def _local_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        trk = self._local_tracks[self.state.point_valid[self._local_tracks]]
        return trk, self.state.X[trk], self._point_desc[trk]

    def _refresh_local_map(self) -> None:
        """The local map: points seen by the reference keyframe and its most covisible keyframes."""
        s, r = self.state, self._ref_kf
        act = s.obs_active
        obs_r = s.observations_of_image(r)
        pts_r = np.unique(s.obs_track[obs_r[act[obs_r]]])
        self._ref_points = len(pts_r)
        obs = np.flatnonzero(act & np.isin(s.obs_track, pts_r))
        shared = np.bincount(s.obs_img[obs], minlength=s.n_images)
        shared[r] = np.iinfo(np.int64).max
        recent = np.flatnonzero(s.registered)[-3:]
        shared[recent] = np.maximum(shared[recent], 1)
        kfs = np.argsort(-shared, kind="stable")[: self.opt.local_map_keyframes + 1]
        kfs = kfs[shared[kfs] > 0]
        in_kf = np.zeros(s.n_images, bool)
        in_kf[kfs] = True
        self._local_tracks = np.unique(s.obs_track[act & in_kf[s.obs_img]])

    def _pnp(self, uv: np.ndarray, X: np.ndarray, key: tuple[int, ...]) -> tuple[Rigid3 | None, np.ndarray]:
        res = estimate_absolute_pose(uv, X, self.camera, max_error=self.opt.max_error_px,
                                     rng=np.random.default_rng([self.opt.seed, *key]))
        if res.model is None:
            return None, np.zeros(len(uv), bool)
        return res.model, res.inliers

    def _project(self, pose: Rigid3, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N,2) of points X (N,3) and whether each lands in the image in front of the camera."""
        uv, depth = project_points(X, self.camera, pose)
        w, h = self.camera.width, self.camera.height
        ok = (depth > 0) & np.isfinite(uv).all(axis=1)
        ok &= (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
        return uv, ok

    def _refine(self, pose: Rigid3, feats: Features, trk: np.ndarray, X: np.ndarray, D: np.ndarray,
                num_matches: int, how: str) -> _Pose | None:
        """Match the local map around ``pose`` and refine on every inlier."""
        o = self.opt
        uv, ok = self._project(pose, X)
        m = match_by_projection(uv, D, feats.keypoints, feats.descriptors, radius=max(2.0 * o.max_error_px, 4.0),
                                image_size=(self.camera.width, self.camera.height), ratio=o.match_ratio, valid=ok)
        if len(m) < o.min_inliers:
            return None
        got = self._refine_on_inliers(pose, feats.keypoints[m[:, 1]], X[m[:, 0]], rounds=2)
        if got is None:
            return None
        pose, inl = got
        return _Pose(pose, trk[m[inl, 0]], m[inl, 1], max(num_matches, len(m)), how)

    def _refine_on_inliers(self, pose: Rigid3, uv: np.ndarray, X: np.ndarray, rounds: int,
                           inliers: np.ndarray | None = None) -> tuple[Rigid3, np.ndarray] | None:
        """Refine ``pose`` ``rounds`` times on the 2D-3D matches (uv (K,2), X (K,3)) within
        ``max_error_px`` of it (``inliers`` (K,) bool the first time, when given). Returns the
        pose and its inliers, or None when fewer than ``min_inliers`` remain, or in the end fewer
        than ``MIN_REFINED_RATIO`` of the matches: around a right pose most of the map's nearby
        matches agree with it, around a wrong one (a consensus of wrong matches) few do."""
        o = self.opt
        for r in range(rounds):
            inl = inliers if r == 0 and inliers is not None else \
                reprojection_sq_errors(uv, X, self.camera, pose) <= o.max_error_px**2
            if inl.sum() < o.min_inliers:
                return None
            pose, _ = refine_absolute_pose(pose, uv[inl], X[inl], self.camera, max_iterations=20)
        inl = reprojection_sq_errors(uv, X, self.camera, pose) <= o.max_error_px**2
        if inl.sum() < max(o.min_inliers, MIN_REFINED_RATIO * len(uv)):
            return None
        return pose, inl

    def _needs_keyframe(self, num_tracked: int, frames_since: int, of: int | None = None) -> bool:
        """A tracked frame becomes a keyframe (``keyframe_*`` options): ``frames_since`` the last
        one including this frame, ``num_tracked`` its 2D-3D inliers of the ``of`` it could have
        tracked (default: the last keyframe's map points)."""
        o = self.opt
        of = self._ref_points if of is None else of
        return (frames_since >= o.keyframe_max_interval or num_tracked < o.keyframe_min_inliers
                or num_tracked < o.keyframe_tracked_ratio * of)

    def _hold_inliers(self, index: int, uv: np.ndarray, tracks: np.ndarray) -> None:
        """Keep a tracking frame's 2D-3D inliers until its pose is settled (:meth:`_settle_frames`)."""
        f = self.frames[index]
        f.obs_uv, f.obs_tracks = uv.astype(np.float32), tracks.astype(np.int32)
        self._unsettled.append(index)

    def _centre_std(self, pose: Rigid3, X: np.ndarray) -> float:
        """Largest standard deviation (world units) of the camera centre of ``pose`` estimated
        from points ``X`` (K,3) with 1-pixel noise: from the Gauss-Newton covariance of the six
        pose parameters (finite-difference Jacobian of the projections)."""
        Xc = X @ pose.R.T + pose.t
        p0 = self.camera.img_from_cam(Xc)
        J = np.empty((2 * len(X), 6))
        h = 1e-6
        for k in range(6):
            d = np.zeros(6)
            d[k] = h
            Xk = Xc @ so3_exp(d[:3]).T + d[3:]
            J[:, k] = ((self.camera.img_from_cam(Xk) - p0) / h).ravel()
        ok = np.isfinite(J).all(axis=1)
        H = J[ok].T @ J[ok]
        try:
            cov = np.linalg.inv(H)
        except np.linalg.LinAlgError:
            return float("inf")
        ev = np.linalg.eigvalsh(pose.R.T @ cov[3:, 3:] @ pose.R)
        return float(np.sqrt(max(ev[-1], 0.0)))

    def _track(self, index: int, feats: Features, pred: Rigid3 | None = None) -> tuple[_Pose | None, str]:
        """Track the frame against the local map (around ``pred``, or the motion model's prediction, first)."""
        o = self.opt
        trk, X, D = self._local_map()
        if len(trk) < o.min_inliers:
            return None, f"the local map has only {len(trk)} points"
        size = (self.camera.width, self.camera.height)
        last_n = 0
        if pred is None and self._last is not None:
            pred = self._last if self._velocity is None else self._velocity @ self._last
        if pred is not None:
            uv, ok = self._project(pred, X)
            for k, radius in enumerate((o.search_radius_px, 3.0 * o.search_radius_px)):
                m = match_by_projection(uv, D, feats.keypoints, feats.descriptors, radius=radius, image_size=size,
                                        ratio=o.match_ratio, valid=ok)
                last_n = len(m)
                if len(m) < o.min_inliers:
                    continue
                pose, inl = self._pnp(feats.keypoints[m[:, 1]], X[m[:, 0]], (2, index, k))
                if pose is not None and inl.sum() >= max(o.min_inliers, MIN_INLIER_RATIO * len(m)):
                    found = self._refine(pose, feats, trk, X, D, len(m), f"motion model r={radius} {inl.sum()}/{len(m)}")
                    if found is not None:
                        return found, ""
        # no usable prediction: match with the whole local map
        m = match_descriptors(D, feats.descriptors, MatchOptions(mutual=False), num_threads=1)
        if len(m) >= o.min_inliers:
            pose, inl = self._pnp(feats.keypoints[m[:, 1]], X[m[:, 0]], (3, index))
            if pose is not None and inl.sum() >= max(o.min_inliers, MIN_INLIER_RATIO * len(m)):
                found = self._refine(pose, feats, trk, X, D, len(m), f"local map {inl.sum()}/{len(m)}")
                if found is not None:
                    return found, ""
        return None, f"{max(last_n, len(m))} matches with the local map's {len(trk)} points gave no pose with " \
                     f">= {o.min_inliers} inliers"

    def _relocalise(self, feats: Features, key: int) -> tuple[_Pose | None, str]:
        """Pose against the points of the keyframes most similar to the frame (VLAD)."""
        o, s = self.opt, self.state
        kfs = np.flatnonzero(s.registered)
        if len(kfs) == 0 or self._vocab is None:
            return None, "no keyframes"
        g = vlad_descriptors([feats], self._vocab)[0]
        sim = self._kf_vlad[kfs] @ g
        best = kfs[np.argsort(-sim, kind="stable")[: o.relocalize_candidates]]
        tried = []
        for kf in best:
            obs = s.observations_of_image(int(kf))
            obs = obs[s.obs_active[obs]]
            trk = np.unique(s.obs_track[obs])
            trk = trk[s.point_valid[trk]]
            if len(trk) < o.relocalize_min_inliers:
                continue
            X, D = s.X[trk], self._point_desc[trk]
            m = match_descriptors(D, feats.descriptors, MatchOptions(mutual=False), num_threads=1)
            tried.append(len(m))
            if len(m) < o.relocalize_min_inliers:
                continue
            pose, inl = self._pnp(feats.keypoints[m[:, 1]], X[m[:, 0]], (4, key, int(kf)))
            if pose is None or inl.sum() < max(o.relocalize_min_inliers, MIN_INLIER_RATIO * len(m)):
                continue
            # grow the evidence with the keyframe's neighbourhood
            saved = (self._ref_kf, self._local_tracks, self._ref_points)
            self._ref_kf = int(kf)
            self._refresh_local_map()
            ltrk, LX, LD = self._local_map()
            self._ref_kf, self._local_tracks, self._ref_points = saved
            found = self._refine(pose, feats, ltrk, LX, LD, len(m), f"relocalised on keyframe {int(kf)}")
            if found is not None and len(found.tracks) >= o.relocalize_min_inliers:
                found.how = str(int(kf))
                return found, ""
        return None, (f"relocalisation failed: {len(best)} most similar keyframes gave {tried} matches, "
                      f"no pose with >= {o.relocalize_min_inliers} inliers")

    def _flow_frame(self, index: int, ts: float, image: np.ndarray, grey: np.ndarray) -> FrameResult | None:
        """Track the frame by following the previous frame's inlier points with optical flow
        (``tracking="flow"``), absolute pose (RANSAC + refinement) on them. A frame that needs to
        become a keyframe gets its features then (the flow's pose predicts where to match the local
        map). None when the flow gave no pose (the caller tracks the frame by its features)."""
        o, s = self.opt, self.state
        fl, self._flow = self._flow, None
        keep = s.point_valid[fl.tracks]
        trk, uv0 = fl.tracks[keep], fl.uv[keep]
        if len(trk) < o.min_inliers:
            return None
        X = s.X[trk]
        pred = self._last if self._velocity is None else self._velocity @ self._last
        guess, vis = self._project(pred, X)
        guess[~vis] = np.nan  # track_points starts those where they were
        uv, good = track_points(fl.grey, grey, uv0, guess)
        if good.sum() < o.min_inliers:
            return None
        idx = np.flatnonzero(good)
        pose, inl = self._pnp(uv[idx], X[idx], (5, index))
        if pose is None or inl.sum() < max(o.min_inliers, MIN_INLIER_RATIO * len(idx)):
            return None
        got = self._refine_on_inliers(pose, uv[idx], X[idx], rounds=1, inliers=inl)
        if got is None:
            return None
        pose, inl = got
        idx = idx[inl]
        n = len(idx)
        if self._needs_keyframe(n, self._since_kf + 1, of=fl.started):
            feats, self._gray = self._features(image)
            if len(feats) < o.min_inliers:
                return None
            res = self._track_frame(index, ts, feats, pred=pose, make_keyframe=True)
            self._start_flow(grey, res)
            return res
        n_put = len(trk)
        uv, trk, X = uv[idx], trk[idx], X[idx]
        held = np.ones(n, bool)
        uv, ok = self._aligned_by_pose(_gray(image), pose, uv, trk)
        if ok.sum() >= o.min_inliers:  # the pose on the sub-pixel points alone
            pose, _ = refine_absolute_pose(pose, uv[ok], X[ok], self.camera, max_iterations=10)
            held = ok
        self._velocity = pose @ self._last.inverse()
        self._last = pose
        self._since_kf += 1
        self._set_pose(index, pose, self._ref_kf)
        self._hold_inliers(index, uv[held], trk[held])
        self._flow = _Flow(grey, uv, trk, fl.started)
        return FrameResult(index, ts, "tracking", pose, n, n_put)

    def _aligned_by_pose(self, grey: np.ndarray, pose: Rigid3, uv: np.ndarray, tracks: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``uv`` (K,2) of points ``tracks`` (K,) in an image (``grey``, float, seen from
        ``pose``) aligned onto the points' reference patches, each patch's start warp predicted
        from ``pose`` and its keyframe's (the patch taken as fronto-parallel there): (uv (K,2),
        ok (K,) aligned; the others keep their pixels, points without a patch are not ok)."""
        s = self.state
        self._grow_patches()
        out, ok = uv.copy(), np.zeros(len(uv), bool)
        sel = np.flatnonzero(self._has_patch[tracks])
        if len(sel) == 0:
            return out, ok
        t = tracks[sel]
        kf = self._patch_kf[t]
        R, tr, X = s.R[kf], s.t[kf], s.X[t]
        P = np.einsum("kij,kj->ki", R, X) + tr  # in the reference keyframe
        d = P[:, 2:3] / self.camera.mean_focal_length  # one reference pixel at the point's depth
        ref_from_world = lambda Q: np.einsum("kji,kj->ki", R, Q - tr)  # noqa: E731 (R^T (Q - t))
        x0 = project_points(X, self.camera, pose)[0]
        x1 = project_points(ref_from_world(P + d * np.array([1.0, 0, 0])), self.camera, pose)[0]
        x2 = project_points(ref_from_world(P + d * np.array([0, 1.0, 0])), self.camera, pose)[0]
        A0 = np.stack([x1 - x0, x2 - x0], axis=-1)  # (K,2,2): reference patch offsets -> this frame
        good = np.isfinite(A0).all(axis=(1, 2))
        sel, t, A0 = sel[good], t[good], A0[good]
        al, _, a_ok = align_patches(grey, self._patch[t], uv[sel], A0, self._patch_opt)
        out[sel[a_ok]] = al[a_ok]
        ok[sel[a_ok]] = True
        return out, ok

    def _start_flow(self, grey: np.ndarray | None, res: FrameResult) -> None:
        """Points for the optical flow to follow from this frame: a keyframe's observed map
        points, a tracked frame's 2D-3D inliers (``tracking="flow"`` and an image frame only)."""
        self._flow = None
        if grey is None or self.opt.tracking != "flow" or not res.has_pose:
            return
        s = self.state
        if res.keyframe is not None:
            obs = s.observations_of_image(res.keyframe)
            obs = obs[s.obs_active[obs] & s.point_valid[s.obs_track[obs]]]
            uv, trk = s.obs_uv[obs], s.obs_track[obs]
        else:
            f = self.frames[res.index]
            if f.obs_uv is None:
                return
            uv, trk = f.obs_uv, f.obs_tracks
        keep = _spread(uv, self.opt.flow_max_points, self.camera.width, self.camera.height)
        self._flow = _Flow(grey, np.asarray(uv[keep], np.float64), np.asarray(trk[keep], np.int64), len(keep))

    def _track_frame(self, index: int, ts: float, feats: Features, pred: Rigid3 | None = None,
                     make_keyframe: bool = False) -> FrameResult:
        """Track the frame by its features (``pred``: the predicted pose instead of the motion
        model's); ``make_keyframe``: it becomes a keyframe when tracked."""
        s = self.state
        was_lost = self._last is None
        found, why = (None, "lost") if was_lost else self._track(index, feats, pred)
        status = "tracking"
        if found is None:
            found, why2 = self._relocalise(feats, key=index)
            if found is None:
                self._last = self._velocity = None
                return FrameResult(index, ts, "lost", None, reason=why2 if was_lost else f"{why}; {why2}")
            self._ref_kf = int(found.how)
            self._refresh_local_map()
            status = "relocalised"
            self._velocity = None
        if status == "tracking":
            self._velocity = None if self._last is None else found.cam_from_world @ self._last.inverse()
        pose = found.cam_from_world
        self._last = pose
        self._since_kf += 1
        n = len(found.tracks)
        keyframe = None
        self._loop_now = None
        if status == "tracking" and (make_keyframe or self._needs_keyframe(n, self._since_kf)):
            keyframe = self._insert_keyframe(index, feats, found)
            status = "keyframe"
            pose = s.pose(keyframe)
            self._last = pose
            if self._loop_now is not None:
                self._velocity = None  # the map moved under the motion model
        self._set_pose(index, pose, self._ref_kf)
        if keyframe is None:
            self._hold_inliers(index, feats.keypoints[found.keypoints], found.tracks)
        return FrameResult(index, ts, status, pose, n, found.num_matches, keyframe=keyframe, loop=self._loop_now)

    # --- mapping ---------------------------------------------------------------------------------
    def _insert_keyframe(self, index: int, feats: Features, found: _Pose) -> int:
        o, s, mp = self.opt, self.state, self.mapper
        # a keyframe's tracked keypoints are aligned to their points' reference patches (sub-pixel,
        # as batch SfM refines its tracks)
        aligned, failed = self._aligned_keypoints(feats, found.tracks, found.keypoints, found.cam_from_world)
        # a point whose patch is not found again is a wrong match, or looks too different here to be
        # located sub-pixel: the keyframe does not observe it (on rendered walks those observations
        # were 0.4 px off the truth at the median, the aligned ones 0.04 px; keeping them doubled
        # the trajectory error)
        found.tracks, found.keypoints = found.tracks[~failed], found.keypoints[~failed]
        if self._gray is not None:
            found.cam_from_world, _ = refine_absolute_pose(found.cam_from_world, aligned[found.keypoints],
                                                           s.X[found.tracks], self.camera, max_iterations=10)
        i = self._add_keyframe_image(index, feats, aligned, grey=self._gray)
        s.register(i, found.cam_from_world, 0)
        obs = s.add_observations(found.tracks, np.full(len(found.tracks), i), found.keypoints)
        s.activate_observations(obs)
        self._set_point_desc(found.tracks, feats, found.keypoints)
        # covisible keyframes: those sharing most of the frame's tracked points, then the latest
        act_obs = np.flatnonzero(s.obs_active & np.isin(s.obs_track, found.tracks))
        shared = np.bincount(s.obs_img[act_obs], minlength=s.n_images)
        shared[i] = 0
        prev = np.flatnonzero(s.registered)
        prev = prev[prev != i]
        shared[prev[-1:]] += 1
        neigh = np.argsort(-shared, kind="stable")[: o.keyframe_match_neighbours]
        neigh = neigh[shared[neigh] > 0]
        new_tracks = [self._match_new_tracks(i, int(j), feats) for j in neigh]
        cand = np.unique(np.concatenate(new_tracks)) if new_tracks else np.zeros(0, np.int64)
        n_new = mp.triangulate_tracks(cand)
        self._set_new_point_desc(cand[s.point_valid[cand]], i, feats)
        self._store_patches(i)
        self._align_earlier_observations(cand[s.point_valid[cand]])
        mp.adjust_local_bundle(i)
        self._set_vlad(i, feats)
        self._ref_kf = i
        self._since_kf = 0
        if o.loop_closure.enabled:
            loop = self._close_loop(i, feats)
            if loop is not None:
                self.loops.append(loop)
                self._loop_now = loop
        self._refresh_local_map()
        self._settle_frames(recent=o.local_ba_keyframes)
        log.info("keyframe %d (frame %d): %d tracked, %d new points", i, index, len(found.tracks), n_new)
        return i

    def _settle_frames(self, recent: int = 0) -> None:
        """Refine the pose of tracking frames on their 2D-3D inliers against the adjusted map
        (robust, Huber at 1 px): during tracking (``recent`` > 0) once the map around a frame has
        settled (its keyframe is no longer among the ``recent`` latest, which local bundle
        adjustment still moves); with ``recent=0`` (after a global adjustment) every frame not
        refined yet. The inliers are then forgotten (memory stays bounded by the recent frames)
        and the frame follows its keyframe rigidly."""
        s, o = self.state, self.opt
        todo = self._unsettled
        if recent:
            kfs = np.flatnonzero(s.registered)
            moving = set(kfs[np.argsort(np.asarray(self.keyframe_frame)[kfs])][-recent:].tolist())
            todo = [k for k in self._unsettled if self.frames[k].ref_kf not in moving]
        done = set(todo)
        self._unsettled = [k for k in self._unsettled if k not in done]
        for index in todo:
            f = self.frames[index]
            trk, uv = f.obs_tracks.astype(np.int64), f.obs_uv.astype(np.float64)
            f.obs_uv = f.obs_tracks = None
            if f.ref_kf < 0 or not s.registered[f.ref_kf]:
                continue
            pose = f.cam_from_ref @ s.pose(f.ref_kf)
            ok = s.point_valid[trk]
            uv, X = uv[ok], s.X[trk[ok]]
            inl = (X @ pose.R.T + pose.t)[:, 2] > 0
            inl[inl] = reprojection_sq_errors(uv[inl], X[inl], self.camera, pose) <= o.max_error_px**2
            if inl.sum() >= o.min_inliers:
                pose, _, _ = refine_pose(uv[inl], X[inl], self.camera, pose, BAOptions(loss="huber", loss_scale=1.0))
                self._set_pose(index, pose, f.ref_kf)

    def _close_loop(self, i: int, feats: Features) -> LoopCorrection | None:
        """Look for a keyframe far back that keyframe ``i`` revisits; verify and correct it."""
        lc, s = self.opt.loop_closure, self.state
        kfs = np.flatnonzero(s.registered)
        pairs, _ = covisibility(s, kfs)
        near = np.unique(np.r_[i, pairs[pairs[:, 0] == i, 1], pairs[pairs[:, 1] == i, 0],
                               kfs[kfs < i][-lc.min_keyframe_gap:]])
        cand = kfs[~np.isin(kfs, near)]
        if len(cand) == 0:
            return None
        # a revisit looks the same way (drift turns the map by far less than this): views that
        # only share far points from other directions give loops weaker than the drift they fix
        axis = s.R[:, 2, :]  # optical axes in the world
        cand = cand[axis[cand] @ axis[i] >= np.cos(np.radians(LOOP_MAX_VIEW_ANGLE_DEG))]
        if len(cand) == 0:
            return None
        sims = self._kf_vlad[cand] @ self._kf_vlad[i]
        for j in cand[np.argsort(-sims, kind="stable")[: lc.num_candidates]]:
            found = self._verify_loop(i, int(j), feats, near, pairs)
            if found is not None:
                T, rho, fuse, new_obs, n, uncertainty = found
                return correct_loop(self.mapper, i, int(j), T, rho, fuse, new_obs, n, uncertainty, lc)
        return None

    def _verify_loop(self, i: int, j: int, feats: Features, near: np.ndarray, pairs: np.ndarray):
        """Keyframe i against the points of keyframe j's neighbourhood (those i's own
        neighbourhood does not see): absolute pose, then the scale from the depths of the points
        seen on both sides. Returns (cam_i_from_world on j's side, scale, fuse pairs, new
        observations, inliers, uncertainty of i's position) or None."""
        lc, s, o = self.opt.loop_closure, self.state, self.opt
        side = np.unique(np.r_[j, pairs[pairs[:, 0] == j, 1], pairs[pairs[:, 1] == j, 0]])
        side = side[~np.isin(side, near)]
        in_side = np.zeros(s.n_images, bool)
        in_side[side] = True
        in_near = np.zeros(s.n_images, bool)
        in_near[near] = True
        act = s.obs_active & s.point_valid[s.obs_track]
        trk = np.setdiff1d(np.unique(s.obs_track[act & in_side[s.obs_img]]),
                           s.obs_track[act & in_near[s.obs_img]])
        if len(trk) < lc.min_inliers:
            return None
        X, D = s.X[trk], self._point_desc[trk]
        m = match_descriptors(D, feats.descriptors, MatchOptions(mutual=False), num_threads=1)
        if len(m) < lc.min_inliers:
            return None
        pose, inl = self._pnp(feats.keypoints[m[:, 1]], X[m[:, 0]], (5, i, j))
        if pose is None or inl.sum() < max(lc.min_inliers, MIN_INLIER_RATIO * len(m)):
            return None
        found = self._refine(pose, feats, trk, X, D, len(m), "loop")
        if found is None or len(found.tracks) < lc.min_inliers:
            return None
        # i's own points (active observations) at the keypoints that matched j's side
        obs_i = s.observations_of_image(i)
        obs_i = obs_i[s.obs_active[obs_i]]
        own = np.full(len(feats), -1, np.int64)
        own[s.obs_kp[obs_i]] = s.obs_track[obs_i]
        cur = own[found.keypoints]
        both = cur >= 0
        if both.sum() < 10:
            log.info("loop %d -> %d: %d inliers but only %d points on both sides (scale unknown)", i, j,
                     len(found.tracks), int(both.sum()))
            return None
        # the correction from the points seen on both sides (3-D to 3-D, Sim(3) RANSAC): a pose
        # from 2D-3D matches alone can rest on far points that do not pin down its translation
        Tl = found.cam_from_world
        Xc, Xl = s.X[cur[both]], s.X[found.tracks[both]]
        depth = (Xl @ Tl.R.T + Tl.t)[:, 2]
        if not (depth > 0).sum() >= 10:
            return None
        res = estimate_sim3(Xc, Xl, max_error=LOOP_MAX_RELATIVE_ERROR * float(np.median(depth[depth > 0])),
                            rng=np.random.default_rng([o.seed, 6, i, j]))
        n_agree = int(res.inliers.sum()) if res.model is not None else 0
        if n_agree < max(10, MIN_LOOP_AGREEMENT * len(Xc)):
            # the two sides' points do not fit one similarity: not a revisit (or one too weak to trust)
            log.info("loop %d -> %d refused: %d inliers, but only %d of %d points on both sides fit one Sim(3)",
                     i, j, len(found.tracks), n_agree, len(Xc))
            return None
        G = res.model  # j's side from i's side
        Ti = s.pose(i)
        R_wc = G.R @ Ti.R.T
        C = G.apply((-Ti.R.T @ Ti.t)[None])[0]
        T_loop = Rigid3(R_wc.T, -R_wc.T @ C, check=False)
        rho = G.scale
        fuse = np.column_stack([cur[both][res.inliers], found.tracks[both][res.inliers]])
        new_obs = np.column_stack([found.tracks[~both], found.keypoints[~both]])
        # the two estimates of i's pose on j's side (2D-3D over all inliers, 3D-3D over the shared
        # points) must agree: when the old side's points are off (far, weakly triangulated) they don't
        Tr = found.cam_from_world
        std = self._centre_std(Tr, s.X[found.tracks])
        med = float(np.median((s.X[found.tracks] @ Tr.R.T + Tr.t)[:, 2]))
        gap = float(np.linalg.norm(Tr.R.T @ Tr.t - T_loop.R.T @ T_loop.t))
        if gap > 3.0 * std + LOOP_MAX_RELATIVE_ERROR * med / 2.0:
            log.info("loop %d -> %d refused: the 2D-3D and 3D-3D poses differ by %.4f (std %.4f, median depth %.3f)",
                     i, j, gap, std, med)
            return None
        log.info("loop %d -> %d verified: %d inliers, %d of %d points on both sides fit a Sim(3) of scale %.4f; "
                 "the two poses agree within %.4f", i, j, len(found.tracks), n_agree, len(Xc), rho, gap)
        return T_loop, rho, fuse, new_obs, len(found.tracks), gap + 3.0 * std

    def _match_new_tracks(self, i: int, j: int, feats_i: Features) -> np.ndarray:
        """Tracks between free keypoints of keyframe i and keyframe j (descriptor matches that
        satisfy the epipolar constraint of their poses): new tracks, or j's tracks without a
        point extended to i. Returns the track indices to triangulate."""
        s, o = self.state, self.opt
        ti, tj = s.kp_track[i], s.kp_track[j]
        free_i = np.flatnonzero(ti < 0)
        free_j = np.flatnonzero((tj < 0) | ~s.point_valid[np.maximum(tj, 0)])
        if len(free_i) == 0 or len(free_j) == 0:
            return np.zeros(0, np.int64)
        fj = self.keyframe_features[j]
        m = match_descriptors(feats_i.descriptors[free_i], fj.descriptors[free_j], num_threads=1)
        if len(m) == 0:
            return np.zeros(0, np.int64)
        ki, kj = free_i[m[:, 0]], free_j[m[:, 1]]
        # epipolar check with the known poses (Sampson distance in pixels)
        rel = s.pose(i) @ s.pose(j).inverse()  # cam_i_from_cam_j
        xj = s.cameras[s.img_cam[j]].cam_from_img(s.images.keypoints[j][kj])
        xi = s.cameras[s.img_cam[i]].cam_from_img(s.images.keypoints[i][ki])
        tx = np.array([[0, -rel.t[2], rel.t[1]], [rel.t[2], 0, -rel.t[0]], [-rel.t[1], rel.t[0], 0]])
        E = tx @ rel.R
        Ex = xj @ E.T
        Etx = xi @ E
        num = np.einsum("ij,ij->i", xi, Ex) ** 2
        den = Ex[:, 0] ** 2 + Ex[:, 1] ** 2 + Etx[:, 0] ** 2 + Etx[:, 1] ** 2
        f = self.camera.mean_focal_length
        ok = num <= (o.max_error_px / f) ** 2 * np.maximum(den, 1e-300)
        ki, kj = ki[ok], kj[ok]
        if len(ki) == 0:
            return np.zeros(0, np.int64)
        old = tj[kj]
        ext = old >= 0
        if ext.any():  # a track already extended to i through another keyframe
            ext_ok = ~np.isin(old, s.obs_track[s.observations_of_image(i)])
            keep = ~ext | ext_ok
            ki, kj, old, ext = ki[keep], kj[keep], old[keep], ext[keep]
        out = []
        if ext.any():
            s.add_observations(old[ext], np.full(int(ext.sum()), i), ki[ext])
            out.append(old[ext])
        n = int((~ext).sum())
        if n:
            img = np.column_stack([np.full(n, j), np.full(n, i)]).ravel()
            kp = np.column_stack([kj[~ext], ki[~ext]]).ravel()
            out.append(s.add_tracks(np.arange(0, 2 * n + 1, 2), img, kp))
        return np.concatenate(out)


def localize(image: np.ndarray | Features, map: OnlineMapper | str | os.PathLike) -> FrameResult:
    """The pose of ``image`` against a map (an :class:`OnlineMapper` or a folder written by
    :meth:`OnlineMapper.save`) without changing it; see :meth:`OnlineMapper.localize`."""
    mapper = map if isinstance(map, OnlineMapper) else OnlineMapper.load(map)
    return mapper.localize(image)
