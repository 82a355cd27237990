"""Options of the SfM pipeline: nested dataclasses that validate themselves.

``SfmOptions`` holds one dataclass per stage. The CLI's flags are generated from these fields
one to one (``geomvision/cli/sfm.py``): a field ``min_num_inliers`` of ``VerificationOptions``
is the flag ``--min-num-inliers`` (field names are unique across the tree), and the field's
entry in its class docstring (``name : text``) is the flag's help, so every field has one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import ClassVar

from .._validation import check_int, check_positive, check_probability
from ..features.options import FeatureOptions, MatchOptions
from ..features.patch_alignment import PatchAlignmentOptions
from ..geometry.camera import CAMERA_MODELS

MATCHERS = ("exhaustive", "sequential", "retrieval", "spatial", "pairs-file", "imported", "auto")


def _check_bool(value, name: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class CameraOptions:
    """Intrinsics: the model, where the initial values come from and what BA refines.

    camera_model : COLMAP model name (SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, ...;
        an unknown name is refused with the list); None chooses PINHOLE when ``K`` is given, else SIMPLE_RADIAL.
    K : a known calibration: a file holding a 3x3 matrix or ``"fx,fy,cx,cy"`` (kept fixed unless
        ``refine_known_intrinsics``). Without it the EXIF focal length is used, else a prior of
        1.2 * max(width, height) refined by bundle adjustment.
    single_camera : one camera shared by all images (True) or one per image (False).
    refine_known_intrinsics : let bundle adjustment also refine intrinsics given by ``K``
        (True), or hold them fixed (False).
    refine_focal_length, refine_principal_point, refine_extra_params : which intrinsics the
        global bundle adjustments refine (True) or hold (False): the focal length(s) in pixels, the
        principal point in pixels, the model's distortion coefficients. Local adjustments always
        hold the intrinsics.
    """

    camera_model: str | None = None
    K: str | None = None
    single_camera: bool = True
    refine_known_intrinsics: bool = False
    refine_focal_length: bool = True
    refine_principal_point: bool = False
    refine_extra_params: bool = True

    def __post_init__(self) -> None:
        if self.camera_model is not None and str(self.camera_model).upper() not in CAMERA_MODELS:
            raise ValueError(
                f"camera_model: unknown model {self.camera_model!r}; choose one of {', '.join(CAMERA_MODELS)}"
            )
        for name in ("single_camera", "refine_known_intrinsics", "refine_focal_length", "refine_principal_point",
                     "refine_extra_params"):
            _check_bool(getattr(self, name), f"CameraOptions.{name}")


@dataclass(frozen=True)
class VerificationOptions:
    """Two-view geometric verification of matched pairs.

    max_error_px : RANSAC inlier threshold in pixels (Sampson error for E / F, transfer error for
        H); > 0.
    min_num_inliers : a pair with fewer inliers (or matches) is rejected; integer >= 5.
    min_inlier_ratio : a pair whose inliers are fewer than this fraction of its matches is
        rejected; in [0, 1].
    max_h_inlier_ratio : H inliers / E (or F) inliers above this marks a pair planar or panoramic
        (a degenerate initial pair, still usable for tracks); in (0, 1).
    confidence : RANSAC stops once an all-inlier sample of the pair (E / F / H) has been drawn
        with this probability; in (0, 1).
    max_iterations : RANSAC draws at most this many minimal samples per pair (E / F / H)
        (integer >= 1); not the bundle adjustments' iterations (``--ba-max-iterations``).
    guided_matching : after a pair is verified, match its descriptors again among the keypoints
        within ``max_error_px`` of each other's epipolar lines (of the homography's transfer for
        a plane or a rotation), the ratio test and mutual check run among those candidates only,
        and add the matches that also move as the pair's inliers around them do (True); or keep
        the RANSAC inliers of the global ratio test (False). Recovers matches on repeated
        structure (rows of identical windows), which the global ratio test rejects as ambiguous;
        off by default: it did not improve the Strecha scenes (benchmarks/RESULTS.md).
    guided_ratio : the ratio test of guided matching, ``d1 < guided_ratio * d2`` among a
        keypoint's admissible candidates; in (0, 1]. Stricter than the global ``ratio``: where a
        true match was not detected, a twin on its epipolar line (a window of the same row) may
        be the best candidate left.
    """

    max_error_px: float = 2.0
    min_num_inliers: int = 15
    min_inlier_ratio: float = 0.1
    max_h_inlier_ratio: float = 0.8
    confidence: float = 0.9999
    max_iterations: int = 10_000
    guided_matching: bool = False
    guided_ratio: float = 0.7

    def __post_init__(self) -> None:
        check_positive(self.max_error_px, "VerificationOptions.max_error_px")
        _check_bool(self.guided_matching, "VerificationOptions.guided_matching")
        check_probability(self.guided_ratio, "VerificationOptions.guided_ratio", open_interval=False)
        if self.guided_ratio == 0:
            raise ValueError("VerificationOptions.guided_ratio must lie in (0, 1], got 0")
        check_int(self.min_num_inliers, "VerificationOptions.min_num_inliers", minimum=5)
        check_probability(self.min_inlier_ratio, "VerificationOptions.min_inlier_ratio", open_interval=False)
        check_probability(self.max_h_inlier_ratio, "VerificationOptions.max_h_inlier_ratio")
        check_probability(self.confidence, "VerificationOptions.confidence")
        check_int(self.max_iterations, "VerificationOptions.max_iterations", minimum=1)


@dataclass(frozen=True)
class MapperOptions:
    """Incremental mapping (names and defaults follow COLMAP's mapper where it has them).

    ba_loss, ba_loss_scale : loss of every bundle adjustment, applied to each residual divided by
        its keypoint's standard deviation (``scale_weight_exponent``); the scale is in those units.
        Cauchy: the tail of 1-4 px residuals that survives filtering biased the squared loss by
        several millimetres on real scenes (entry-P10: 12.9 mm mean camera error with the squared
        loss, 5.9 mm with Cauchy). Loss: squared, huber, cauchy or soft_l1; scale > 0: the largest
        scale (see ``ba_loss_noise_multiple``).
    ba_loss_noise_multiple : each adjustment's loss scale is this multiple of the noise its
        residuals show at the start (:meth:`geomvision.optim.BAProblem.noise_sigma`), within
        [``ba_loss_scale`` / 100, ``ba_loss_scale``]; 0 keeps ``ba_loss_scale``. Refined keypoints
        are good to ~0.05 px, and wrong matches on repeated structure that reproject within
        0.4-4 px pulled as hard as the true ones at a fixed 1 px scale: walks along repeated
        facades bent by 6-30 mm (benchmarks/RESULTS.md). Noisier keypoints give a larger noise
        and the scale stays at ``ba_loss_scale``. >= 0.
    scale_weight_exponent : a keypoint detected at scale s (pixels) gets the standard deviation
        ``max(s, 1) ** exponent`` (relative units); 0 weighs all observations alike.
    abs_pose_min_num_inliers : 2D-3D inliers an image needs to be registered (COLMAP's 30 by
        default), never fewer than ``ABS_POSE_MIN_NUM_INLIERS_FLOOR`` = 6: RANSAC draws a pose (6
        degrees of freedom) from 3 points (P3P), which agree with it by construction, so an image
        "registered" on 1-3 inliers has no evidence for its pose; 6 leaves at least 3
        correspondences that confirm it independently.
    init_min_num_inliers : verified inliers the initial pair needs (integer >= 1); relaxed in steps
        down to 1/4 (not below 15) when no pair qualifies.
    init_min_tri_angle_deg : median triangulation angle (degrees) the initial pair needs; > 0,
        relaxed in steps down to 1/8 when no pair qualifies.
    init_max_error_px : inlier threshold (pixels) of the initial pair's relative pose when it is
        re-estimated (uncalibrated or planar pair); > 0.
    abs_pose_max_error_px : inlier threshold (pixels) of an image's absolute pose (2D-3D RANSAC)
        and of the mapper's epipolar checks (registration without 2D-3D matches, model merges); > 0.
    abs_pose_min_inlier_ratio : an image is only registered when its 2D-3D inliers are at least
        this fraction of its observations of the model's points; in (0, 1).
    tri_min_angle_deg : a new point needs two rays meeting at this angle (degrees) or more; > 0.
    tri_max_error_px : a new point keeps only the observations within this reprojection error
        (pixels) and needs two of them; > 0.
    filter_max_error_px : after each bundle adjustment, observations reprojecting farther than
        this (pixels) are dropped; > 0.
    filter_min_tri_angle_deg : after each bundle adjustment, points whose widest triangulation
        angle is below this (degrees) are dropped; > 0.
    local_ba_num_images : images that move in the local bundle adjustment after each
        registration (the new one and those sharing most points with it); integer >= 1.
    local_ba_hold_min_fixed_views : a point of the local bundle adjustment that at least this
        many of the images held fixed see is held fixed too, with only its observations in the
        moving images (the problem stays bounded as tracks grow longer); integer >= 1.
    global_ba_growth_ratio : a global bundle adjustment runs whenever the model has grown by this
        factor in images since the last one; > 1.
    ba_max_iterations : Levenberg-Marquardt iterations of each global bundle adjustment at most
        (integer >= 1); the local ones stop at 25.
    ba_growth_function_tolerance : the global bundle adjustments while the model grows stop at
        this relative change of the cost (> 0); the final ones, which give the model its
        accuracy, at 1e-6 (Ceres's default). On a 1,000-image walk 1e-5 took 347 iterations in
        all instead of 503 for the same final model (benchmarks/RESULTS.md).
    max_register_trials : attempts to register each image before it is given up (failed images
        get another chance when a model is finished); integer >= 1.
    min_model_size : a finished model with fewer images is discarded; integer >= 2.
    """

    ABS_POSE_MIN_NUM_INLIERS_FLOOR: ClassVar[int] = 6

    init_min_num_inliers: int = 100
    init_min_tri_angle_deg: float = 16.0
    init_max_error_px: float = 4.0
    abs_pose_max_error_px: float = 8.0
    abs_pose_min_num_inliers: int = 30
    abs_pose_min_inlier_ratio: float = 0.25
    tri_min_angle_deg: float = 1.5
    tri_max_error_px: float = 4.0
    filter_max_error_px: float = 4.0
    filter_min_tri_angle_deg: float = 1.5
    local_ba_num_images: int = 6
    local_ba_hold_min_fixed_views: int = 6
    global_ba_growth_ratio: float = 1.2
    ba_max_iterations: int = 30
    ba_growth_function_tolerance: float = 1e-5
    ba_loss: str = "cauchy"
    ba_loss_scale: float = 1.0
    ba_loss_noise_multiple: float = 8.0
    scale_weight_exponent: float = 0.5
    max_register_trials: int = 2
    min_model_size: int = 3

    def __post_init__(self) -> None:
        for name in ("init_min_num_inliers", "abs_pose_min_num_inliers", "local_ba_num_images",
                     "local_ba_hold_min_fixed_views", "ba_max_iterations", "max_register_trials"):
            check_int(getattr(self, name), f"MapperOptions.{name}", minimum=1)
        check_int(self.min_model_size, "MapperOptions.min_model_size", minimum=2)
        if self.abs_pose_min_num_inliers < self.ABS_POSE_MIN_NUM_INLIERS_FLOOR:
            raise ValueError(
                f"MapperOptions.abs_pose_min_num_inliers must be >= {self.ABS_POSE_MIN_NUM_INLIERS_FLOOR}, got "
                f"{self.abs_pose_min_num_inliers}: the 3 points a pose is drawn from always agree with it, so an "
                "image registered on fewer inliers has almost no evidence for its pose")
        for name in ("init_min_tri_angle_deg", "init_max_error_px", "abs_pose_max_error_px", "tri_min_angle_deg",
                     "tri_max_error_px", "filter_max_error_px", "filter_min_tri_angle_deg", "ba_loss_scale",
                     "ba_growth_function_tolerance"):
            check_positive(getattr(self, name), f"MapperOptions.{name}")
        check_positive(self.scale_weight_exponent, "MapperOptions.scale_weight_exponent", allow_zero=True)
        check_positive(self.ba_loss_noise_multiple, "MapperOptions.ba_loss_noise_multiple", allow_zero=True)
        check_probability(self.abs_pose_min_inlier_ratio, "MapperOptions.abs_pose_min_inlier_ratio")
        if not self.global_ba_growth_ratio > 1.0:
            raise ValueError(f"MapperOptions.global_ba_growth_ratio must be > 1, got {self.global_ba_growth_ratio!r}")
        if self.ba_loss not in ("squared", "huber", "cauchy", "soft_l1"):
            raise ValueError(f"MapperOptions.ba_loss must be squared, huber, cauchy or soft_l1, got {self.ba_loss!r}")

    def loss_scale(self, noise_sigma: float) -> float:
        """The loss scale of an adjustment whose residuals show ``noise_sigma`` (``ba_loss_noise_multiple``)."""
        if self.ba_loss_noise_multiple == 0 or not math.isfinite(noise_sigma):
            return self.ba_loss_scale
        return min(max(self.ba_loss_noise_multiple * noise_sigma, self.ba_loss_scale / 100), self.ba_loss_scale)


@dataclass(frozen=True)
class SfmOptions:
    """Everything ``run_sfm`` takes.

    matcher : which image pairs are matched.
        exhaustive: all pairs.
        sequential: a window of ``sequential_window`` neighbours over the names in natural sort
        order, plus (``loop_detection``) loop-closure candidates: for each image its
        ``loop_candidates`` most similar images (VLAD, ``features.retrieval``) beyond the window
        (reported as ``sequential+retrieval``).
        spatial: each image with its ``spatial_num_neighbors`` nearest images by EXIF GPS
        position (``features.pairs.spatial_pairs``), plus its ``spatial_retrieval_neighbors`` most
        similar images beyond those (reported as ``spatial+retrieval``) so that a GPS error does
        not cut a true neighbour off; images without a position get ``retrieval_num_neighbors``
        most similar images instead.
        auto: exhaustive up to ``exhaustive_max_images`` images; above, spatial when at least 90 %
        of the images have a GPS position (``sfm.gps.AUTO_SPATIAL_MIN_FRACTION``), else sequential
        when the names number the frames of one sequence (``features.pairs.is_numbered_sequence``),
        else retrieval: each image with its ``retrieval_num_neighbors`` most similar images.
        pairs-file: the pairs listed in the file ``pairs`` (also chosen by auto when ``pairs``
        is given). imported: the pairs of matches imported into the project (``geomvision
        import-features``; also chosen by auto when the project holds some).
    pairs : a text file of image pairs, one ``name1 name2`` per line (hloc / COLMAP pairs files).
    loop_candidates : retrieval pairs per image beyond the sequential window; their verification
        is reported (``report["retrieval_pairs"]``). A wrong candidate costs one matched pair
        when two-view verification rejects it.
    retrieval_num_neighbors : pairs per image of an unordered set above ``exhaustive_max_images``
        (at least 20 partners per image by default, more when other images choose it too, where
        exhaustive matching of a set at the limit gives 99; COLMAP's vocabulary-tree matcher takes
        100 per image, meant for much larger sets).
    refine_keypoints : align the patches of each track's observations to sub-pixel accuracy
        before mapping (``keypoint_refinement``).
    num_threads : threads of feature extraction, matching and the mapper's bundle adjustments
        (default: every core, ``os.cpu_count()``; BA runs its parallel kernels from
        ``BAOptions.parallel_min_observations`` observations on).
    sequential_window : matcher sequential: each image is matched with the images at most this
        many positions apart in natural name order; integer >= 1.
    loop_detection : matcher sequential: add the ``loop_candidates`` retrieval pairs per image
        beyond the window (True) or match the window alone (False).
    exhaustive_max_images : matcher auto: exhaustive matching up to this many images, above it
        spatial, sequential or retrieval; integer >= 2.
    spatial_num_neighbors : matcher spatial: nearest images by GPS position per image (COLMAP's
        spatial matcher takes 50); integer >= 1.
    spatial_max_distance : matcher spatial: only images at most this many metres apart are
        paired by position; None: no limit.
    spatial_ignore_altitude : matcher spatial: nearest by east-north distance only (True, as
        COLMAP by default: GPS altitude errs 1.5-3 times more than the horizontal position, and a
        survey flies at one height) or by 3-D distance with the GPS altitude (False; images
        without an altitude make it 2-D anyway).
    spatial_retrieval_neighbors : matcher spatial: most similar images (VLAD) per image added
        beyond its spatial neighbours, which catch the pairs a wrong GPS position would miss;
        integer >= 0 (0: none).
    seed : seed of every random choice (RANSAC samples, the retrieval vocabulary): the same seed
        gives the same models; integer >= 0.
    workers, scheduler : feature extraction and matching as tasks on a Dask cluster
        (``features.distributed``; needs ``pip install 'geomvision[dask]'``): ``scheduler`` the
        address of a running one (``tcp://HOST:8786``; the images and the cache on paths every
        worker reads), else ``workers`` > 0 worker processes started on this machine for the run.
        0 and None: no cluster. The models are the same as without one.
    """

    features: FeatureOptions = field(default_factory=FeatureOptions)
    matching: MatchOptions = field(default_factory=MatchOptions)
    camera: CameraOptions = field(default_factory=CameraOptions)
    verification: VerificationOptions = field(default_factory=VerificationOptions)
    mapper: MapperOptions = field(default_factory=MapperOptions)
    keypoint_refinement: PatchAlignmentOptions = field(default_factory=PatchAlignmentOptions)
    refine_keypoints: bool = True
    matcher: str = "auto"
    pairs: str | None = None
    sequential_window: int = 10
    loop_detection: bool = True
    loop_candidates: int = 5
    exhaustive_max_images: int = 100
    retrieval_num_neighbors: int = 20
    spatial_num_neighbors: int = 20
    spatial_max_distance: float | None = None
    spatial_ignore_altitude: bool = True
    spatial_retrieval_neighbors: int = 5
    seed: int = 0
    num_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    workers: int = 0
    scheduler: str | None = None

    def __post_init__(self) -> None:
        for name, cls in (("features", FeatureOptions), ("matching", MatchOptions), ("camera", CameraOptions),
                          ("verification", VerificationOptions), ("mapper", MapperOptions),
                          ("keypoint_refinement", PatchAlignmentOptions)):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"SfmOptions.{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        _check_bool(self.refine_keypoints, "refine_keypoints")
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {self.matcher!r}")
        if self.matcher == "pairs-file" and self.pairs is None:
            raise ValueError("matcher pairs-file needs the file of pairs: give --pairs FILE")
        if self.pairs is not None and self.matcher not in ("pairs-file", "auto"):
            raise ValueError(f"pairs: a pairs file is only read by matcher pairs-file, not {self.matcher}; drop --pairs "
                             "or pass --matcher pairs-file")
        check_int(self.sequential_window, "sequential_window", minimum=1)
        _check_bool(self.loop_detection, "loop_detection")
        check_int(self.loop_candidates, "loop_candidates", minimum=1)
        check_int(self.exhaustive_max_images, "exhaustive_max_images", minimum=2)
        check_int(self.retrieval_num_neighbors, "retrieval_num_neighbors", minimum=1)
        check_int(self.spatial_num_neighbors, "spatial_num_neighbors", minimum=1)
        if self.spatial_max_distance is not None:
            check_positive(self.spatial_max_distance, "spatial_max_distance")
        _check_bool(self.spatial_ignore_altitude, "spatial_ignore_altitude")
        check_int(self.spatial_retrieval_neighbors, "spatial_retrieval_neighbors", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.num_threads, "num_threads", minimum=1)
        check_int(self.workers, "workers", minimum=0)
        if self.scheduler is not None and not (isinstance(self.scheduler, str) and "://" in self.scheduler):
            raise ValueError(f"scheduler must be a Dask scheduler address such as tcp://HOST:8786, got {self.scheduler!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sfm_options(options: SfmOptions | None) -> SfmOptions:
    """``options``, or the defaults for None; ``ValueError`` for anything but an SfmOptions."""
    options = SfmOptions() if options is None else options
    if not isinstance(options, SfmOptions):
        raise ValueError(f"options must be an SfmOptions, got {type(options).__name__}")
    return options


@dataclass(frozen=True)
class LoopClosureOptions:
    """Loop detection and correction.

    enabled : look for loops (online: at every keyframe).
    min_keyframe_gap : a candidate lies at least this many keyframes back and shares no point
        with the new keyframe's neighbourhood.
    num_candidates : most similar candidates (VLAD) verified per keyframe.
    min_inliers : 2D-3D inliers of the new keyframe against the candidate's points.
    min_shared_points : images sharing this many points are linked in the pose graph.
    """

    enabled: bool = True
    min_keyframe_gap: int = 10
    num_candidates: int = 3
    min_inliers: int = 50
    min_shared_points: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"LoopClosureOptions.enabled must be True or False, got {self.enabled!r}")
        for name in ("min_keyframe_gap", "num_candidates", "min_inliers", "min_shared_points"):
            check_int(getattr(self, name), f"LoopClosureOptions.{name}", minimum=1)


@dataclass(frozen=True)
class OnlineOptions:
    """The online mapper (``OnlineMapper``): tracking, keyframes, local mapping, relocalisation.

    features : SIFT of the frames that extract features (keyframes only with ``tracking="flow"``):
        the strongest 3,000, on the frame downscaled to 640 pixels on its long side. On rendered
        640x480 walks (RESULTS.md) 2,000 at 400 px gave 1.5-2.5x the trajectory error and all
        features at 640 px about 0.6x, at 1.6x the keyframe latency.
    tracking : how a frame between keyframes finds the map: ``"flow"`` follows the previous
        frame's 2D-3D inliers with pyramidal Lucas-Kanade optical flow (forward-backward
        checked, started at the motion model's prediction) and extracts features only when the
        frame becomes a keyframe or the flow loses the map; ``"features"`` extracts and matches
        features on every frame (also the fall-back, and what frames given as ``Features`` use).
    flow_max_points : the flow follows at most this many of a keyframe's points, spread over the
        image (its cost and the sub-pixel alignment's grow with them; 600 doubled the tracking
        frames' error on rendered walks).
    max_error_px : inlier threshold of the frame's absolute pose, of triangulation and of the
        map's filters (pixels).
    min_inliers : 2D-3D inliers a frame needs to be tracked (fewer: lost).
    search_radius_px : matching by projection searches this far around each map point predicted
        by the constant-velocity motion model; a second try uses 3x, then the whole local map.
    init_min_inliers, init_min_tri_angle_deg : the first two keyframes need this many verified
        matches and this median triangulation angle (degrees); until then frames are
        ``initialising``.
    init_max_frames : after this many frames without enough parallax or matches, the reference
        frame is replaced by the current one.
    keyframe_tracked_ratio, keyframe_max_interval, keyframe_min_inliers : a tracked frame becomes
        a keyframe when it tracks fewer than ``ratio`` x the points it could (the map points of
        the last keyframe; with flow, those the flow started from), or fewer than
        ``keyframe_min_inliers`` points, or ``keyframe_max_interval`` frames passed. ``ratio``
        None: 0.9 with ``tracking="flow"`` (the flow keeps following points SIFT would no longer
        re-find, so the count falls slowly; 0.95 gave twice the keyframes and the same trajectory
        error on rendered walks), 0.7 with ``"features"``.
    local_map_keyframes : the local map is the points of the last keyframe and of this many of
        its most covisible keyframes.
    keyframe_match_neighbours : a new keyframe is matched with this many covisible keyframes to
        triangulate new points.
    local_ba_keyframes : keyframes that move in the windowed bundle adjustment (their other
        observers are held fixed).
    relocalize_candidates, relocalize_min_inliers : keyframes (most similar by VLAD) tried when
        relocalising, and the 2D-3D inliers that accept the pose.
    vocabulary_size : VLAD words, trained on the first keyframes.
    match_ratio : Lowe's ratio test of matching by projection against the map points; in (0, 1].
    tri_min_angle_deg : a new map point needs two rays meeting at this angle (degrees) or more; it
        is also the angle below which the map's filters drop a point.
    ba_loss, scale_weight_exponent : the bundle adjustments' loss (squared, huber, cauchy or
        soft_l1) and keypoint-scale weighting, as in ``MapperOptions``.
    seed : seed of every random choice (RANSAC samples, the vocabulary); integer >= 0.
    loop_closure : revisits of older keyframes are detected and corrected (:mod:`.loop_closure`).
    """

    features: FeatureOptions = field(default_factory=lambda: FeatureOptions(max_num_features=3000, max_image_size=640,
                                                                            min_num_features=0))
    tracking: str = "flow"
    flow_max_points: int = 1500
    max_error_px: float = 4.0
    min_inliers: int = 30
    search_radius_px: float = 15.0
    match_ratio: float = 0.9
    init_min_inliers: int = 100
    init_min_tri_angle_deg: float = 3.0
    init_max_frames: int = 30
    keyframe_tracked_ratio: float | None = None
    keyframe_max_interval: int = 20
    keyframe_min_inliers: int = 150
    local_map_keyframes: int = 10
    keyframe_match_neighbours: int = 2
    local_ba_keyframes: int = 4
    tri_min_angle_deg: float = 1.5
    relocalize_candidates: int = 5
    relocalize_min_inliers: int = 40
    vocabulary_size: int = 64
    ba_loss: str = "cauchy"
    scale_weight_exponent: float = 0.5
    loop_closure: LoopClosureOptions = field(default_factory=LoopClosureOptions)
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.loop_closure, LoopClosureOptions):
            raise ValueError(f"OnlineOptions.loop_closure must be a LoopClosureOptions, got "
                             f"{type(self.loop_closure).__name__}")
        if not isinstance(self.features, FeatureOptions):
            raise ValueError(f"OnlineOptions.features must be a FeatureOptions, got {type(self.features).__name__}")
        for name in ("min_inliers", "init_min_inliers", "init_max_frames", "keyframe_max_interval",
                     "keyframe_min_inliers", "local_map_keyframes", "keyframe_match_neighbours", "local_ba_keyframes",
                     "relocalize_candidates", "relocalize_min_inliers", "flow_max_points"):
            check_int(getattr(self, name), f"OnlineOptions.{name}", minimum=1)
        if self.flow_max_points < self.min_inliers:
            raise ValueError(f"OnlineOptions.flow_max_points ({self.flow_max_points}) must be at least min_inliers "
                             f"({self.min_inliers}): a frame is tracked by that many of the flow's points")
        if self.min_inliers < 6:
            raise ValueError(f"OnlineOptions.min_inliers must be >= 6 (a pose from fewer points is not evidence), "
                             f"got {self.min_inliers}")
        if self.tracking not in ("flow", "features"):
            raise ValueError(f"OnlineOptions.tracking must be 'flow' or 'features', got {self.tracking!r}")
        check_int(self.vocabulary_size, "OnlineOptions.vocabulary_size", minimum=2)
        check_int(self.seed, "OnlineOptions.seed", minimum=0)
        for name in ("max_error_px", "search_radius_px", "init_min_tri_angle_deg", "tri_min_angle_deg"):
            check_positive(getattr(self, name), f"OnlineOptions.{name}")
        if self.keyframe_tracked_ratio is not None:
            check_probability(self.keyframe_tracked_ratio, "OnlineOptions.keyframe_tracked_ratio")
        r = check_positive(self.match_ratio, "OnlineOptions.match_ratio")
        if r > 1.0:
            raise ValueError(f"OnlineOptions.match_ratio must lie in (0, 1], got {self.match_ratio!r}")
        check_positive(self.scale_weight_exponent, "OnlineOptions.scale_weight_exponent", allow_zero=True)
        if self.ba_loss not in ("squared", "huber", "cauchy", "soft_l1"):
            raise ValueError(f"OnlineOptions.ba_loss must be squared, huber, cauchy or soft_l1, got {self.ba_loss!r}")

    def resolved(self) -> OnlineOptions:
        """These options with ``keyframe_tracked_ratio`` chosen for ``tracking`` where it is None."""
        if self.keyframe_tracked_ratio is not None:
            return self
        return dataclasses.replace(self, keyframe_tracked_ratio=0.9 if self.tracking == "flow" else 0.7)

    def mapper_options(self) -> MapperOptions:
        """The batch mapper's options for the verbs the online mapper shares with it."""
        e = self.max_error_px
        return MapperOptions(init_min_num_inliers=self.init_min_inliers, init_min_tri_angle_deg=self.init_min_tri_angle_deg,
                             init_max_error_px=e, abs_pose_max_error_px=e, abs_pose_min_num_inliers=self.min_inliers,
                             tri_min_angle_deg=self.tri_min_angle_deg, tri_max_error_px=e, filter_max_error_px=e,
                             filter_min_tri_angle_deg=self.tri_min_angle_deg, local_ba_num_images=self.local_ba_keyframes,
                             ba_loss=self.ba_loss, scale_weight_exponent=self.scale_weight_exponent)
