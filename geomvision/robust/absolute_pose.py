"""Robust absolute pose ``cam_from_world`` from 2D-3D matches (pixels in, threshold in pixels).

Pixels are unprojected with the camera's ``cam_from_img`` (lens distortion handled) and the error
is the reprojection error on the z = 1 plane scaled by the focal lengths,
``fx^2 (x - X_c/Z_c)^2 + fy^2 (y - Y_c/Z_c)^2`` — exactly the pixel reprojection error of a
pinhole camera, and its linearisation with distortion; points behind the camera never count.
Minimal solver: P3P (Lambda Twist); LO refit: EPnP on the inliers; refinement: weighted LM on the pixel reprojection error (through the camera model when it
has distortion or skew, else on the rays, where it is the same error at a third of the cost).
Models are [R | t] row-major (12 numbers).

Points on a plane leave a pose two-fold ambiguous (two minima of the reprojection error, the
plane normal reflected about the line of sight; close in cost when the plane is small or far):
RANSAC returns one of them. :func:`resolve_pose_ambiguity` computes both (IPPE), refines both on
the correspondences, keeps the better and says whether the evidence tells them apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._validation import RngLike, as_points, check_positive, check_same_length
from ..geometry.camera import Camera
from ..geometry.rotation import rotation_error_deg
from ..solvers.absolute import epnp_nb, p3p_nb, planar_pose_ippe
from ..solvers.refine import refine_absolute_pose_nb, refine_absolute_pose_rays_nb
from . import _core as core
from ._degeneracy import LM_FTOL, LM_GTOL, LM_XTOL, any_collinear_triple_3d, any_parallel_rays, gather_rows
from .engine import PoseEstimator, RansacResult, ransac
from .options import RansacOptions, resolve_options
from .relative_pose import pose_to_vec


@njit(cache=True)
def reprojection_sq_errors(model, rays, X, f2, start, stop, out):
    """Squared reprojection errors (pixels^2) of points start..stop-1 under ``model`` ([R|t]
    row-major) for z = 1 rays; ``f2 = (fx^2, fy^2)``; inf behind the camera and for a zero ray
    (a pixel beyond the lens model's invertible region)."""
    for i in range(start, stop):
        x, y, z = X[i, 0], X[i, 1], X[i, 2]
        zc = model[6] * x + model[7] * y + model[8] * z + model[11]
        if not (zc > 0.0 and rays[i, 2] != 0.0):
            out[i] = np.inf
            continue
        xc = model[0] * x + model[1] * y + model[2] * z + model[9]
        yc = model[3] * x + model[4] * y + model[5] * z + model[10]
        du = xc / zc - rays[i, 0]
        dv = yc / zc - rays[i, 1]
        out[i] = f2[0] * du * du + f2[1] * dv * dv


@njit(cache=True)
def _sq_errors(data, model, start, stop, out):
    reprojection_sq_errors(model, data[0], data[1], data[2], start, stop, out)


@njit(cache=True)
def _degenerate(data, sample):
    return any_collinear_triple_3d(data[1], sample) or any_parallel_rays(data[0], sample)


@njit(cache=True)
def _fit_minimal(data, sample, models):
    Rs, ts, n = p3p_nb(gather_rows(data[0], sample), gather_rows(data[1], sample))
    for k in range(n):
        pose_to_vec(Rs[k], ts[k], models[k])
    return n


@njit(cache=True)
def _fit_nonminimal(data, idx, weights, models):
    R, t, ok = epnp_nb(gather_rows(data[0], idx), gather_rows(data[1], idx))
    if not ok:
        return 0
    pose_to_vec(R, t, models[0])
    return 1


@njit(cache=True)
def _refine(data, model, idx, weights, max_iters):
    R = model[:9].reshape(3, 3).copy()
    t = model[9:].copy()
    if data[6][0]:  # pinhole without skew: the ray error is the pixel error, and 3-4x cheaper
        R, t, _it, _c0, c1 = refine_absolute_pose_rays_nb(R, t, gather_rows(data[0], idx), gather_rows(data[1], idx),
                                                        data[2], weights, max_iters, LM_FTOL, LM_XTOL, LM_GTOL)
    else:
        R, t, _it, _c0, c1 = refine_absolute_pose_nb(R, t, gather_rows(data[3], idx), gather_rows(data[1], idx),
                                                   data[5][0], data[4], weights, max_iters, LM_FTOL, LM_XTOL,
                                                   LM_GTOL)
    if not np.isfinite(c1):
        return model.copy()
    out = np.empty(12)
    pose_to_vec(R, t, out)
    return out


@njit(cache=True)
def _run(data, order, groups, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, groups, params_i, params_f, seed)


class AbsolutePoseEstimator(PoseEstimator):
    """Camera pose ``cam_from_world`` from pixels uv (N,2) of world points X_world (N,3)."""

    name = "absolute pose"
    sample_size = 3
    pose_name = "cam_from_world"
    max_models = 4
    k_fit_minimal = staticmethod(_fit_minimal)
    k_fit_nonminimal = staticmethod(_fit_nonminimal)
    k_refine = staticmethod(_refine)
    k_sq_errors = staticmethod(_sq_errors)
    k_degenerate_sample = staticmethod(_degenerate)
    k_run = staticmethod(_run)

    def __init__(self, uv: np.ndarray, X_world: np.ndarray, camera: Camera) -> None:
        uv = as_points(uv, "uv", 2)
        X = as_points(X_world, "X_world", 3)
        check_same_length(uv=uv, X_world=X)
        if not isinstance(camera, Camera):
            raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
        rays = camera.cam_from_img(uv)
        bad = ~np.isfinite(rays).all(axis=1)
        if bad.any():  # outside the lens model's invertible region: never an inlier
            rays[bad] = 0.0
        f2 = np.array([camera.focal_length_x, camera.focal_length_y]) ** 2
        model_id = np.array([camera.model_id], dtype=np.int64)
        on_rays = np.array([not camera.has_distortion and camera.skew == 0.0])
        super().__init__((np.ascontiguousarray(rays), X, f2, uv, camera.params.copy(), model_id, on_rays), len(uv))


def estimate_absolute_pose(
    uv: np.ndarray,
    X_world: np.ndarray,
    camera: Camera,
    *,
    max_error: float,
    rng: RngLike = None,
    options: RansacOptions | None = None,
    quality: np.ndarray | None = None,
    **option_overrides,
) -> RansacResult:
    """Robust camera pose from pixels uv (N,2) of world points X_world (N,3), N >= 3.

    ``max_error``: inlier threshold on the reprojection error in pixels. Other keywords are
    :class:`RansacOptions` fields. Returns ``(cam_from_world (Rigid3), inliers, stats)``.
    """
    opts = resolve_options(options, option_overrides)
    t = check_positive(max_error, "max_error")
    return ransac(AbsolutePoseEstimator(uv, X_world, camera), t * t, opts, rng=rng, quality=quality)


# the pose kept must be at least this many times as likely as the other minimum (Gaussian
# pixel noise of the variance the kept pose's inliers show): the two costs must differ by
# 2 ln(ratio) noise variances. A ratio, not a pixel threshold: it holds at any noise level
AMBIGUITY_LIKELIHOOD_RATIO = 1000.0
_MEDIAN_CHI2_2DOF = 2.0 * math.log(2.0)  # median of e^2 / sigma^2 for a 2-D Gaussian error


@dataclass(frozen=True)
class PoseAmbiguity:
    """What :func:`resolve_pose_ambiguity` found.

    cost : MSAC cost (sum of min(e^2, max_error^2), pixels^2) of the pose returned.
    alternative : the other minimum (refined), or None when every candidate converged to the
        returned pose (within the image resolution: ``max_error`` pixels) or none was found.
    alternative_cost : its MSAC cost (inf without an alternative).
    noise_sq_px : the per-coordinate noise variance (pixels^2) the returned pose's inliers show.
    switched : the returned pose is not the one RANSAC found (its other minimum explains more).
    """

    cost: float
    alternative: Rigid3 | None = None
    alternative_cost: float = math.inf
    noise_sq_px: float = float("nan")
    switched: bool = False

    @property
    def resolved(self) -> bool:
        """Whether the returned pose is at least ``AMBIGUITY_LIKELIHOOD_RATIO`` times as likely
        as the other minimum (always, without another minimum)."""
        if self.alternative is None:
            return True
        return self.alternative_cost - self.cost > 2.0 * math.log(AMBIGUITY_LIKELIHOOD_RATIO) * self.noise_sq_px

    @property
    def message(self) -> str:
        if self.resolved:
            return ""
        return (f"two poses explain the 2D-3D correspondences about equally well (MSAC cost {self.cost:.3g} vs "
                f"{self.alternative_cost:.3g} px^2 at a noise of {math.sqrt(self.noise_sq_px):.2g} px): the points lie "
                "on a plane seen too small or too far to tell its two-fold pose ambiguity apart")


def _same_pose(a: Rigid3, b: Rigid3, tol_rad: float, depth: float) -> bool:
    """Whether two poses differ by less than the image resolution: rotations by less than
    ``tol_rad`` and centres by less than ``tol_rad * depth``."""
    if np.radians(rotation_error_deg(a.R, b.R)) > tol_rad:
        return False
    return float(np.linalg.norm(a.inverse().t - b.inverse().t)) <= tol_rad * depth


def resolve_pose_ambiguity(
    uv: np.ndarray,
    X_world: np.ndarray,
    camera: Camera,
    result: RansacResult,
    *,
    max_error: float,
    refine_rounds: int = 3,
) -> tuple[RansacResult, PoseAmbiguity]:
    """Resolve the planar two-fold ambiguity of an absolute pose found by
    :func:`estimate_absolute_pose` on pixels uv (N,2) of X_world (N,3).

    Both IPPE poses of the RANSAC inliers (:func:`geomvision.solvers.absolute.planar_pose_ippe`,
    the points projected onto their best plane) and the RANSAC pose are refined on the points
    within ``max_error`` (``refine_rounds`` rounds of inlier selection and LM); the one with the
    lowest MSAC cost over all N correspondences is returned with its inliers (``result`` itself,
    unchanged, when that is the RANSAC pose's minimum), and the best pose distinct from it
    (beyond the image resolution) is reported as the alternative. For points off any plane the
    IPPE poses fall into the RANSAC pose's basin or a far worse one: nothing changes. Returns
    ``(result, PoseAmbiguity)``; a failed ``result`` passes through.
    """
    if result.model is None:
        return result, PoseAmbiguity(cost=math.inf)
    t2 = check_positive(max_error, "max_error") ** 2
    est = AbsolutePoseEstimator(uv, X_world, camera)
    rays, X = est.data[0], est.data[1]
    inl = np.asarray(result.inliers, dtype=bool)

    def polish(pose: Rigid3) -> tuple[Rigid3, np.ndarray, float]:
        for _ in range(refine_rounds):
            mask = est.sq_errors(pose) <= t2
            if mask.sum() < AbsolutePoseEstimator.sample_size + 1:
                break
            pose = est.refine(pose, mask, max_iters=50)
        e = est.sq_errors(pose)
        return pose, e, float(np.sum(np.minimum(e, t2)))

    found = [polish(result.model)]
    if inl.sum() >= 4:
        for cand in planar_pose_ippe(rays[inl], X[inl]):
            found.append(polish(cand))
    order = sorted(range(len(found)), key=lambda k: found[k][2])
    best_pose, best_e, best_cost = found[order[0]]
    in_best = best_e <= t2
    depth = float(np.median(best_pose.apply(X[in_best])[:, 2])) if in_best.any() else 1.0
    tol = max_error / max(camera.focal_length_x, camera.focal_length_y)
    alt = next((found[k] for k in order[1:] if not _same_pose(found[k][0], best_pose, tol, depth)), None)
    noise = float(np.median(best_e[in_best])) / _MEDIAN_CHI2_2DOF if in_best.any() else float("nan")
    switched = not _same_pose(best_pose, result.model, tol, depth)
    info = PoseAmbiguity(cost=best_cost, alternative=None if alt is None else alt[0],
                         alternative_cost=math.inf if alt is None else alt[2], noise_sq_px=noise, switched=switched)
    if not switched:  # RANSAC found the better minimum: its result stands as it was
        return result, info
    n_in = int(in_best.sum())
    stats = dataclasses.replace(result.stats, num_inliers=n_in, inlier_ratio=n_in / max(len(in_best), 1),
                                score=best_cost)
    return RansacResult(best_pose, in_best, stats), info
