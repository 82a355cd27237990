"""Geometric verification of matched image pairs with geomvision's own robust estimators.

Per pair: the relative pose (essential matrix) when the intrinsics are trusted, else the
fundamental matrix; a homography as well, to recognise planar scenes and pure rotation (COLMAP's
two-view configurations). The inlier matches of the E / F model are what tracks are built from.

A pure rotation is recognised with or without calibration: with trusted intrinsics, a rotation
must move its inliers to their matches (``_is_rotation``); without, the focal length is unknown,
so the rotation and a focal length are fitted together (:func:`fit_rotation_focal`: the
homography of a rotation is ``H = K2 R K1^-1``, principal points known, square pixels). A pair
that a rotation explains is "panoramic", never "planar": a planar pair may seed a model, and a
rotation seen with a wrong focal length would seed one with an invented translation. With
trusted intrinsics a pair that a homography explains is panoramic only when every decomposition
of the homography has (almost) no baseline: an essential matrix fitted to points on a plane is
either of its two decompositions, at random, and the wrong one may have almost none.

With ``VerificationOptions.guided_matching``, a verified pair's descriptors are matched again
under its geometry (:func:`guided_rematch`): the ratio test then runs among the few keypoints
near each epipolar line, which recovers matches on repeated structure (identical windows) that
the global ratio test discards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from ..features.guided import coherent_with_anchors, match_guided, model_sq_errors
from ..features.options import MatchOptions
from ..geometry.camera import Camera
from ..geometry.epipolar import essential_from_pose, fundamental_from_essential
from ..geometry.rigid import Rigid3
from ..geometry.triangulation import triangulate_two_view, triangulation_angles_deg
from ..robust import estimate_fundamental, estimate_homography, estimate_relative_pose
from ..robust.relative_pose import MIN_PARALLAX_INLIERS, count_parallax_points
from ..solvers.homography import homography_dlt, relative_poses_from_homography
from .options import VerificationOptions

CONFIGS = ("calibrated", "uncalibrated", "planar", "panoramic", "failed")
PANORAMIC_MAX_ANGLE_DEG = 1.0  # median triangulation angle below this: a (near) pure rotation
# focal lengths the uncalibrated rotation fit searches, x max(width, height) of image 1: from a
# 150-degree fisheye-like field of view to a 6-degree telephoto one
ROTATION_FOCAL_RANGE = (0.1, 10.0)
ROTATION_FOCAL_GRID = 81  # log-spaced focal lengths tried before the 1-D refinement (6 % apart)
# an uncalibrated pair is panoramic when a rotation (at the fitted focal length) leaves fewer than
# max(MIN_PARALLAX_INLIERS, this fraction) of the homography inliers more than 2 * max_error px
# from their match: more slack than the calibrated test (MIN_PARALLAX_INLIERS alone), since a
# fitted focal length and an unknown lens distortion leave a few more points off
ROTATION_MAX_MOVED_FRACTION = 0.05
# guided matching: a new match must land within 2 * max_error + COHERENCE_SLACK * r of where the
# COHERENCE_NEIGHBORS nearest RANSAC inliers (the farthest r px away) say it should (courtyard,
# 103 verified pairs, ratio 0.8: about 5,500 -> 1,040 wrong new matches, 15,600 -> 15,250 true ones)
COHERENCE_NEIGHBORS = 8
COHERENCE_SLACK = 0.5


@dataclass
class TwoViewGeometry:
    """Verified geometry of one image pair.

    config : "calibrated" (E), "uncalibrated" (F), "planar" / "panoramic" (H explains most
        matches), or "failed" (too few inliers; ``message`` says why).
    inlier_matches : (K,2) keypoint indices of the E / F inliers, or of the H inliers when only a
        homography explains the matches (a plane, or a pure rotation, where E / F is not
        determined: ``message`` says why); empty when failed.
    cam2_from_cam1 : relative pose (|t| = 1) when it was estimated (calibrated pairs).
    F : fundamental matrix in pixels (x2^T F x1 = 0) or None; H : homography or None.
    tri_angle_deg : median triangulation angle of the inliers (calibrated pairs; else NaN).
    rotation_focal_px : for a panoramic pair of uncalibrated cameras, the focal length (pixels,
        camera 1) at which a rotation explains the matches; else NaN.
    explained_by_shift : uncalibrated cameras only: a shift (and roll) of the whole image, i.e. a
        rotation seen through an endless focal length, explains the homography inliers. A pan
        with a long lens and a translation over a plane that faces the camera are not told apart
        from one pair: the pair stays "planar", and ``run_sfm`` weighs it with the other pairs.
    """

    config: str
    inlier_matches: np.ndarray
    num_matches: int
    cam2_from_cam1: Rigid3 | None = None
    F: np.ndarray | None = None
    H: np.ndarray | None = None
    num_h_inliers: int = 0
    tri_angle_deg: float = float("nan")
    message: str = ""
    rotation_focal_px: float = float("nan")
    explained_by_shift: bool = False

    @property
    def num_inliers(self) -> int:
        return len(self.inlier_matches)

    @property
    def verified(self) -> bool:
        return self.config != "failed"


def _failed(n: int, why: str) -> TwoViewGeometry:
    return TwoViewGeometry("failed", np.zeros((0, 2), np.int64), n, message=why)


MIN_FRONT_FRACTION = 0.5  # a pose must put at least this fraction of its inliers in front of both cameras


def two_view_structure(cam2_from_cam1: Rigid3, rays1: np.ndarray, rays2: np.ndarray,
                       min_angle_deg: float = 0.0) -> tuple[float, float]:
    """(median triangulation angle in degrees, fraction in front of both cameras) of matched
    rays (z = 1 plane) under a relative pose. The fraction counts only the points triangulated at
    more than ``min_angle_deg`` (for nearly parallel rays, i.e. distant points, noise decides the
    side); 1 when none is. (nan, 0) without matches."""
    if len(rays1) == 0:
        return float("nan"), 0.0
    X = triangulate_two_view(Rigid3(), cam2_from_cam1, rays1[:, :2], rays2[:, :2])
    ok = np.isfinite(X).all(axis=1)
    if not ok.any():
        return 0.0, 0.0
    X = X[ok]
    n = len(X)
    obs_img = np.r_[np.zeros(n, np.int64), np.ones(n, np.int64)]
    obs_pt = np.r_[np.arange(n), np.arange(n)]
    ang = triangulation_angles_deg(X, [Rigid3(), cam2_from_cam1], obs_img, obs_pt)
    front = (X[:, 2] > 0) & (cam2_from_cam1.apply(X)[:, 2] > 0)
    decided = ang > min_angle_deg
    fraction = float(np.mean(front[decided])) if decided.any() else 1.0
    return float(np.median(ang)), fraction


def _unit_rays_in_first_frame(cam2_from_cam1: Rigid3, rays1: np.ndarray, rays2: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (N,3) of matched rays (N,2 or N,3, z = 1 plane), both in camera 1's frame."""
    d1 = np.column_stack([np.asarray(rays1, np.float64)[:, :2], np.ones(len(rays1))])
    d2 = np.column_stack([np.asarray(rays2, np.float64)[:, :2], np.ones(len(rays2))]) @ cam2_from_cam1.R
    return (d1 / np.linalg.norm(d1, axis=1, keepdims=True), d2 / np.linalg.norm(d2, axis=1, keepdims=True))


def median_triangulation_angle_deg(cam2_from_cam1: Rigid3, rays1: np.ndarray, rays2: np.ndarray) -> float:
    """Median triangulation angle (degrees) of matched rays (z = 1 plane) under a relative pose:
    the angle between the two viewing rays, that at their point where they meet (for inliers,
    within the noise of triangulating first, at a fraction of the cost: the initial-pair search
    asks it of every candidate pair). nan without matches."""
    if len(rays1) == 0:
        return float("nan")
    d1, d2 = _unit_rays_in_first_frame(cam2_from_cam1, rays1, rays2)
    cos = np.einsum("ij,ij->i", d1, d2)
    return float(np.median(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))


def baseline_sign_votes(cam2_from_cam1: Rigid3, rays1: np.ndarray, rays2: np.ndarray,
                        min_angle_deg: float) -> tuple[int, int]:
    """(in front, reversed): of matched rays (N,2 or N,3, z = 1 plane) that meet at
    ``min_angle_deg`` or more, how many meet in front of both cameras of ``cam2_from_cam1`` and
    how many behind both, that is in front of both under the pose with its baseline reversed
    ((R, -t): the same essential matrix). Mid-point depths; rays meeting at a smaller angle do
    not tell the two apart and are not counted."""
    d1, d2 = _unit_rays_in_first_frame(cam2_from_cam1, rays1, rays2)
    c = -cam2_from_cam1.R.T @ cam2_from_cam1.t  # camera 2's centre in camera 1's frame
    # depths (l1, l2) minimise |l1 d1 - (c + l2 d2)|^2
    cos = np.einsum("ij,ij->i", d1, d2)
    c1, c2 = d1 @ c, d2 @ c
    sin2 = np.maximum(1.0 - cos**2, 1e-300)
    l1, l2 = (c1 - cos * c2) / sin2, (cos * c1 - c2) / sin2
    seen = cos < np.cos(np.radians(min_angle_deg))
    return int(np.sum(seen & (l1 > 0) & (l2 > 0))), int(np.sum(seen & (l1 < 0) & (l2 < 0)))


def verify_pair(
    x1: np.ndarray,
    x2: np.ndarray,
    matches: np.ndarray,
    camera1: Camera,
    camera2: Camera,
    *,
    calibrated: bool,
    options: VerificationOptions,
    rng: np.random.Generator | int | None,
    descriptors: tuple[np.ndarray, np.ndarray] | None = None,
    match_options: MatchOptions | None = None,
) -> TwoViewGeometry:
    """Verify the matches (K,2) between keypoints x1 (N1,2) and x2 (N2,2) of two images.

    With ``options.guided_matching`` and the images' ``descriptors`` (N1,D), (N2,D), a verified
    pair's matches are found again under its geometry (:func:`guided_rematch`, with the ratio test
    ``options.guided_ratio`` and the distance and mutual tests of ``match_options``); without
    descriptors the RANSAC inliers stay.
    """
    geometry, h_inliers = _verify_pair(x1, x2, matches, camera1, camera2, calibrated=calibrated, options=options,
                                       rng=rng)
    if options.guided_matching and descriptors is not None and geometry.verified:
        mo = MatchOptions() if match_options is None else match_options
        geometry = guided_rematch(geometry, x1, x2, descriptors[0], descriptors[1], camera1, camera2,
                                  max_error=options.max_error_px, ratio=options.guided_ratio,
                                  max_distance=mo.max_distance, mutual=mo.mutual, use_homography=h_inliers)
    return geometry


def guided_rematch(geometry: TwoViewGeometry, x1: np.ndarray, x2: np.ndarray, desc1: np.ndarray,
                   desc2: np.ndarray, camera1: Camera, camera2: Camera, *, max_error: float, ratio: float = 0.6,
                   max_distance: float = 0.7, mutual: bool = True,
                   use_homography: bool = False) -> TwoViewGeometry:
    """``geometry`` with its inlier matches found again under its model (COLMAP's guided matching).

    The descriptors (N1,D) / (N2,D) of keypoints x1 (N1,2) / x2 (N2,2) are matched among the
    candidates the pair's model admits (:func:`~geomvision.features.guided.match_guided`: within
    ``max_error`` pixels of the epipolar lines of F, or of the transfer of H with
    ``use_homography``, for pairs whose inliers are a homography's: a plane or a pure rotation),
    with the ratio test ``ratio``, the distance test ``max_distance`` and (``mutual``) the mutual
    check among those candidates only, and kept when their Sampson (transfer) error is below
    ``max_error``. A calibrated pair with lens distortion is matched in
    undistorted pixels. A match the inliers did not have must also move as the inliers around it
    do (:func:`~geomvision.features.guided.coherent_with_anchors`): on repeated structure along
    the epipolar lines, a twin whose true match is unseen passes every test above but lies one
    period off. The previous inliers whose keypoints no guided match uses are kept too.
    Returns a new geometry (config, models and angles unchanged).
    """
    inl = geometry.inlier_matches
    p1, p2 = np.asarray(x1, float), np.asarray(x2, float)
    if use_homography:
        if geometry.H is None:
            return geometry
        model = {"H": geometry.H}
    elif geometry.F is not None:
        model = {"F": geometry.F}
    elif geometry.cam2_from_cam1 is None:
        return geometry
    else:  # calibrated with distortion: the epipolar geometry holds in undistorted pixels
        p1 = _undistorted_px(camera1, p1)
        p2 = _undistorted_px(camera2, p2)
        model = {"F": fundamental_from_essential(essential_from_pose(geometry.cam2_from_cam1), camera1, camera2)}
    ok1, ok2 = np.isfinite(p1).all(axis=1), np.isfinite(p2).all(axis=1)
    i1, i2 = np.flatnonzero(ok1), np.flatnonzero(ok2)
    m = match_guided(p1[i1], p2[i2], np.asarray(desc1)[i1], np.asarray(desc2)[i2], max_error=max_error,
                     ratio=ratio, max_distance=max_distance, mutual=mutual, **model)
    m = np.column_stack([i1[m[:, 0]], i2[m[:, 1]]]).reshape(-1, 2)
    m = m[model_sq_errors(p1[m[:, 0]], p2[m[:, 1]], **model) <= max_error**2]
    # a match the RANSAC inliers did not have must move as the inliers around it do: on repeated
    # structure along the epipolar lines, a twin whose true match is unseen is one period off
    known = np.zeros(len(m), bool)
    if len(inl) and len(m):
        code = lambda a: a[:, 0] * (len(p2) + 1) + a[:, 1]  # noqa: E731
        known = np.isin(code(m), code(inl))
    anchors = inl[np.isfinite(p1[inl[:, 0]]).all(axis=1) & np.isfinite(p2[inl[:, 1]]).all(axis=1)]
    incoherent = np.zeros(len(m), bool)
    incoherent[~known] = ~coherent_with_anchors(p1[m[~known, 0]], p2[m[~known, 1]], p1[anchors[:, 0]],
                                                p2[anchors[:, 1]], num_neighbors=COHERENCE_NEIGHBORS,
                                                slack=COHERENCE_SLACK, min_tolerance=2.0 * max_error)
    m = m[~incoherent]
    used1 = np.zeros(len(p1), bool)
    used2 = np.zeros(len(p2), bool)
    used1[m[:, 0]] = True
    used2[m[:, 1]] = True
    old = inl[~used1[inl[:, 0]] & ~used2[inl[:, 1]]]
    merged = np.concatenate([m, old])
    merged = merged[np.argsort(merged[:, 0], kind="stable")]
    return dataclasses.replace(geometry, inlier_matches=merged.astype(np.int64))


def _undistorted_px(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """Pixels (N,2) moved to where a pinhole camera with ``camera``'s K would see them."""
    rays = camera.cam_from_img(uv)
    K = camera.K
    return rays[:, :2] / rays[:, 2:3] @ K[:2, :2].T + K[:2, 2]


def _verify_pair(x1, x2, matches, camera1, camera2, *, calibrated, options, rng) -> tuple[TwoViewGeometry, bool]:
    """:func:`verify_pair` without guided matching; also whether the inliers are a homography's."""
    n = len(matches)
    if n < options.min_num_inliers:
        return _failed(n, f"{n} matches < min_num_inliers={options.min_num_inliers}"), False
    p1 = x1[matches[:, 0]]
    p2 = x2[matches[:, 1]]
    gen = np.random.default_rng(rng)
    ransac_kw = dict(confidence=options.confidence, max_iterations=options.max_iterations)
    pose = None
    F = None
    if calibrated:
        # the epipolar MSAC of COLMAP's verification, not estimate_relative_pose's defaults: the
        # pair's configuration compares E's inlier count with H's (planar pairs), and the
        # cheirality and Geman-McClure-shaped scores that make the pose itself more accurate on
        # repeated facades move that comparison and the pairs' rotations there (rendered walls
        # walks: a wrong initial pair seeded a 4-view model 0.7 m off; benchmarks/RESULTS.md);
        # the relaxation of the pose's local optima is left out with them (not measured in SfM)
        res = estimate_relative_pose(p1, p2, camera1, camera2, max_error=options.max_error_px, rng=gen,
                                     in_front=False, score_scale=0.0, relax_radius=0.0, **ransac_kw)
        if res.model is not None and not camera1.has_distortion and not camera2.has_distortion:
            F = fundamental_from_essential(essential_from_pose(res.model), camera1, camera2)
        pose = res.model
    else:
        res = estimate_fundamental(p1, p2, max_error=options.max_error_px, rng=gen, **ransac_kw)
        F = res.model
    why = ""
    angle = float("nan")
    if res.model is None:
        why = f"no {'essential' if calibrated else 'fundamental'} matrix: {res.stats.message}"
    else:
        inl = res.inliers
        n_inl = int(inl.sum())
        if n_inl < options.min_num_inliers or n_inl < options.min_inlier_ratio * n:
            why = f"{n_inl} inliers of {n} matches (min {options.min_num_inliers}, ratio {options.min_inlier_ratio})"
        elif pose is not None:
            noise_deg = np.degrees(2.0 * options.max_error_px / max(camera1.focal_length_x, camera2.focal_length_x))
            angle, front = two_view_structure(pose, camera1.cam_from_img(p1[inl]), camera2.cam_from_img(p2[inl]),
                                              noise_deg)
            if front < MIN_FRONT_FRACTION:
                # an epipolar model fitted to wrong matches: half of them or more land behind a camera
                why = (f"the relative pose puts {100 * (1 - front):.0f} % of its {n_inl} inliers behind a camera "
                       "(wrong matches)")
    h = estimate_homography(p1, p2, max_error=options.max_error_px, rng=gen, **ransac_kw)
    n_h = int(h.inliers.sum()) if h.model is not None else 0
    h_ok = n_h >= options.min_num_inliers and n_h >= options.min_inlier_ratio * n
    rotation_focal = float("nan")
    shift = False
    if why:
        # a plane or a pure rotation leaves E / F undetermined, but the homography's inliers are
        # still true matches for tracks (COLMAP's planar / panoramic two-view configurations)
        if not h_ok:
            return _failed(n, why), False
        config = "planar"
        if calibrated:
            if _is_rotation(camera1, camera2, p1[h.inliers], p2[h.inliers], options.max_error_px):
                config = "panoramic"
        else:
            rotation_focal, shift = _uncalibrated_rotation(camera1, camera2, p1[h.inliers], p2[h.inliers],
                                                           options.max_error_px)
            if np.isfinite(rotation_focal):
                config = "panoramic"
                why += f"; a rotation explains the matches at a focal length of {rotation_focal:.0f} px"
            elif shift:
                why += ("; a shift of the whole image explains the matches (a pan with a long lens, or a "
                        "translation over a plane facing the camera)")
        return TwoViewGeometry(config=config, inlier_matches=matches[h.inliers], num_matches=n, H=h.model,
                               num_h_inliers=n_h, message=f"{why}; kept the {n_h} homography inliers",
                               rotation_focal_px=rotation_focal, explained_by_shift=shift), True
    config = "calibrated" if calibrated else "uncalibrated"
    if n_h > options.max_h_inlier_ratio * n_inl:
        if pose is not None:
            # E fitted to points on a plane is either decomposition of its homography, at random,
            # and the wrong one may have a small baseline: panoramic only when every one does
            if angle < PANORAMIC_MAX_ANGLE_DEG and h_ok:
                angle_h = _widest_plane_angle_deg(camera1, camera2, p1[h.inliers], p2[h.inliers])
                config = "panoramic" if angle_h < PANORAMIC_MAX_ANGLE_DEG else "planar"
            else:
                config = "panoramic" if angle < PANORAMIC_MAX_ANGLE_DEG else "planar"
        elif h_ok:
            rotation_focal, shift = _uncalibrated_rotation(camera1, camera2, p1[h.inliers], p2[h.inliers],
                                                           options.max_error_px)
            config = "panoramic" if np.isfinite(rotation_focal) else "planar"
        else:
            config = "planar"
    h_inliers = config == "panoramic" and h_ok
    if h_inliers:
        # a rotation is a homography; the epipolar constraint is degenerate there and lets
        # wrong matches through, so the homography's inliers are the pair's matches
        inl = h.inliers
    geometry = TwoViewGeometry(
        config=config,
        inlier_matches=matches[inl],
        num_matches=n,
        cam2_from_cam1=pose,
        F=F,
        H=h.model,
        num_h_inliers=n_h,
        tri_angle_deg=angle,
        rotation_focal_px=rotation_focal,
        explained_by_shift=shift,
    )
    return geometry, h_inliers


def _widest_plane_angle_deg(camera1: Camera, camera2: Camera, x1: np.ndarray, x2: np.ndarray) -> float:
    """The widest median triangulation angle (degrees) of the matched pixels x1, x2 (K,2) under
    the decompositions of their homography that put the plane in front of both cameras (0 when
    none has a baseline, as for a pure rotation)."""
    r1, r2 = camera1.cam_from_img(x1), camera2.cam_from_img(x2)
    ok = np.isfinite(r1).all(axis=1) & np.isfinite(r2).all(axis=1)
    Hc = homography_dlt(r1[ok, :2], r2[ok, :2]) if ok.sum() >= 4 else None
    if Hc is None:
        return 0.0
    angles = [median_triangulation_angle_deg(p, r1[ok], r2[ok])
              for p, _n, _f in relative_poses_from_homography(Hc, r1[ok], r2[ok])]
    return float(max(angles, default=0.0))


def _is_rotation(camera1: Camera, camera2: Camera, x1: np.ndarray, x2: np.ndarray, max_error: float) -> bool:
    """Whether a pure rotation of the camera explains the matched pixels x1, x2 (K,2)."""
    focal2 = (camera2.focal_length_x, camera2.focal_length_y)
    moving = count_parallax_points(camera1.cam_from_img(x1), camera2.cam_from_img(x2), focal2, max_error)
    return moving < MIN_PARALLAX_INLIERS


def _uncalibrated_rotation(camera1: Camera, camera2: Camera, x1: np.ndarray, x2: np.ndarray,
                           max_error: float) -> tuple[float, bool]:
    """For two cameras of unknown focal length (principal points trusted, focal lengths keeping
    their current ratio): (the focal length, pixels, camera 1, at which a pure rotation explains
    the matched pixels x1, x2 (K,2), or NaN; whether a shift and roll of the whole image, a
    rotation at the longest focal length searched, explains them as well). A rotation needs the
    fitted focal length to explain more than the shift does: with the shift, a camera
    translating over a plane that faces it is as good an explanation (the focal length is NaN)."""
    ratio = camera2.mean_focal_length / camera1.mean_focal_length
    size = max(camera1.width, camera1.height)
    pp1, pp2 = camera1.principal_point, camera2.principal_point
    focal, moved = fit_rotation_focal(x1, x2, pp1, pp2, size=size, max_error=max_error, focal_ratio=ratio)
    allowed = max(MIN_PARALLAX_INLIERS, ROTATION_MAX_MOVED_FRACTION * len(x1))
    if not moved < allowed:
        return float("nan"), False
    longest = ROTATION_FOCAL_RANGE[1] * size
    if _count_moved(x1, x2, pp1, pp2, longest, ratio * longest, max_error) < allowed:
        return float("nan"), True
    return focal, False


def _count_moved(x1: np.ndarray, x2: np.ndarray, pp1: np.ndarray, pp2: np.ndarray, focal1: float, focal2: float,
                 max_error: float) -> int:
    """:func:`count_parallax_points` for pinhole cameras of the given focal lengths."""
    rays1 = np.column_stack([(x1 - pp1) / focal1, np.ones(len(x1))])
    rays2 = np.column_stack([(x2 - pp2) / focal2, np.ones(len(x2))])
    return count_parallax_points(rays1, rays2, (focal2, focal2), max_error)


def _rotation_sq_errors(x1: np.ndarray, x2: np.ndarray, pp1: np.ndarray, pp2: np.ndarray, focal1: float,
                        focal2: float) -> np.ndarray:
    """Squared pixel errors (K,) in image 2 of the rotation that best aligns the bearings of x1
    with those of x2 (closed form, Kabsch) for pinhole cameras of the given focal lengths; inf for
    a point the rotation sends behind camera 2."""
    rays1 = np.column_stack([(x1 - pp1) / focal1, np.ones(len(x1))])
    rays2 = np.column_stack([(x2 - pp2) / focal2, np.ones(len(x2))])
    b1 = rays1 / np.linalg.norm(rays1, axis=1, keepdims=True)
    b2 = rays2 / np.linalg.norm(rays2, axis=1, keepdims=True)
    U, _, Vt = np.linalg.svd(b2.T @ b1)
    R = U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt  # cam2_from_cam1 rotation
    p = rays1 @ R.T
    front = p[:, 2] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = p[:, :2] / p[:, 2:3] * focal2 + pp2
    sq = np.sum((uv - x2) ** 2, axis=1)
    sq[~front | ~np.isfinite(sq)] = np.inf
    return sq


def fit_rotation_focal(x1: np.ndarray, x2: np.ndarray, pp1, pp2, *, size: float, max_error: float,
                       focal_ratio: float = 1.0) -> tuple[float, int]:
    """Fit a pure rotation and a focal length to matched pixels x1, x2 (K,2) of two pinhole
    cameras with square pixels, known principal points pp1, pp2 (2,) and focal lengths f and
    ``focal_ratio * f`` (one camera: 1): the homography of a rotation, ``H = K2 R K1^-1``.

    f is searched over ``ROTATION_FOCAL_RANGE * size`` (``size``: max(width, height) of image 1)
    on a log grid, then refined by a bounded 1-D minimisation; the cost is robust (Cauchy, scale
    ``max_error``) on the pixel errors in image 2, the rotation for each f in closed form
    (Kabsch on the bearings). Returns (f in pixels, number of matches the rotation leaves more
    than ``2 * max_error`` px from their match: :func:`count_parallax_points`). A small rotation
    fits at any f: the focal length is then poorly determined, the decision (few moved points)
    is not.
    """
    x1 = np.asarray(x1, dtype=float).reshape(-1, 2)
    x2 = np.asarray(x2, dtype=float).reshape(-1, 2)
    pp1 = np.asarray(pp1, dtype=float)
    pp2 = np.asarray(pp2, dtype=float)
    if len(x1) < 2:
        return float("nan"), len(x1)

    def cost(log_f: float) -> float:
        f = float(np.exp(log_f))
        sq = _rotation_sq_errors(x1, x2, pp1, pp2, f, focal_ratio * f)
        return float(np.sum(np.log1p(np.minimum(sq, 1e12) / max_error**2)))

    grid = np.linspace(np.log(ROTATION_FOCAL_RANGE[0] * size), np.log(ROTATION_FOCAL_RANGE[1] * size),
                       ROTATION_FOCAL_GRID)
    costs = [cost(g) for g in grid]
    k = int(np.argmin(costs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    log_f = float(res.x) if res.fun <= costs[k] else float(grid[k])
    f1 = float(np.exp(log_f))
    return f1, _count_moved(x1, x2, pp1, pp2, f1, focal_ratio * f1, max_error)
