"""Geometric verification of matched image pairs with geomvision's own robust estimators.

Per pair: the relative pose (essential matrix) when the intrinsics are trusted, else the
fundamental matrix; a homography as well, to recognise planar scenes and pure rotation (COLMAP's
two-view configurations). The inlier matches of the E / F model are what tracks are built from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Camera
from ..geometry.epipolar import essential_from_pose, fundamental_from_essential
from ..geometry.rigid import Rigid3
from ..geometry.triangulation import triangulate_two_view, triangulation_angles_deg
from ..robust import estimate_fundamental, estimate_homography, estimate_relative_pose
from ..robust.relative_pose import MIN_PARALLAX_INLIERS, count_parallax_points
from .options import VerificationOptions

CONFIGS = ("calibrated", "uncalibrated", "planar", "panoramic", "failed")
PANORAMIC_MAX_ANGLE_DEG = 1.0  # median triangulation angle below this: a (near) pure rotation


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


def median_triangulation_angle_deg(cam2_from_cam1: Rigid3, rays1: np.ndarray, rays2: np.ndarray) -> float:
    """Median triangulation angle (degrees) of matched rays (z = 1 plane) under a relative pose."""
    return two_view_structure(cam2_from_cam1, rays1, rays2)[0]


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
) -> TwoViewGeometry:
    """Verify the matches (K,2) between keypoints x1 (N1,2) and x2 (N2,2) of two images."""
    n = len(matches)
    if n < options.min_num_inliers:
        return _failed(n, f"{n} matches < min_num_inliers={options.min_num_inliers}")
    p1 = x1[matches[:, 0]]
    p2 = x2[matches[:, 1]]
    gen = np.random.default_rng(rng)
    ransac_kw = dict(confidence=options.confidence, max_iterations=options.max_iterations)
    pose = None
    F = None
    if calibrated:
        res = estimate_relative_pose(p1, p2, camera1, camera2, max_error=options.max_error_px, rng=gen, **ransac_kw)
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
    if why:
        # a plane or a pure rotation leaves E / F undetermined, but the homography's inliers are
        # still true matches for tracks (COLMAP's planar / panoramic two-view configurations)
        if not h_ok:
            return _failed(n, why)
        config = "planar"
        if calibrated and _is_rotation(camera1, camera2, p1[h.inliers], p2[h.inliers], options.max_error_px):
            config = "panoramic"
        return TwoViewGeometry(config=config, inlier_matches=matches[h.inliers], num_matches=n, H=h.model,
                               num_h_inliers=n_h, message=f"{why}; kept the {n_h} homography inliers")
    config = "calibrated" if calibrated else "uncalibrated"
    if n_h > options.max_h_inlier_ratio * n_inl:
        config = "panoramic" if (pose is not None and angle < PANORAMIC_MAX_ANGLE_DEG) else "planar"
    if config == "panoramic" and h_ok:
        # a rotation is a homography; the epipolar constraint is degenerate there and lets
        # wrong matches through, so the homography's inliers are the pair's matches
        inl = h.inliers
    return TwoViewGeometry(
        config=config,
        inlier_matches=matches[inl],
        num_matches=n,
        cam2_from_cam1=pose,
        F=F,
        H=h.model,
        num_h_inliers=n_h,
        tri_angle_deg=angle,
    )


def _is_rotation(camera1: Camera, camera2: Camera, x1: np.ndarray, x2: np.ndarray, max_error: float) -> bool:
    """Whether a pure rotation of the camera explains the matched pixels x1, x2 (K,2)."""
    focal2 = (camera2.focal_length_x, camera2.focal_length_y)
    moving = count_parallax_points(camera1.cam_from_img(x1), camera2.cam_from_img(x2), focal2, max_error)
    return moving < MIN_PARALLAX_INLIERS
