"""Robust absolute pose ``cam_from_world`` from 2D-3D matches (pixels in, threshold in pixels).

Pixels are unprojected with the camera's ``cam_from_img`` (lens distortion handled) and the error
is the reprojection error on the z = 1 plane scaled by the focal lengths,
``fx^2 (x - X_c/Z_c)^2 + fy^2 (y - Y_c/Z_c)^2`` — exactly the pixel reprojection error of a
pinhole camera, and its linearisation with distortion; points behind the camera never count.
Minimal solver: P3P (Lambda Twist); LO refit: EPnP on the inliers; refinement: weighted LM on the pixel reprojection error (through the camera model when it
has distortion or skew, else on the rays, where it is the same error at a third of the cost).
Models are [R | t] row-major (12 numbers).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import RngLike, as_points, check_positive, check_same_length
from ..geometry.camera import Camera
from ..solvers.absolute import epnp_nb, p3p_nb
from ..solvers.refine import refine_absolute_pose_nb, refine_absolute_pose_rays_nb
from . import _core as core
from ._degeneracy import LM_FTOL, LM_GTOL, LM_XTOL, any_collinear_triple_3d, any_parallel_rays, gather_rows
from .engine import PoseEstimator, RansacResult, ransac
from .options import RansacOptions, resolve_options
from .relative_pose import pose_to_vec


@njit(cache=True)
def reprojection_sq_errors(model, rays, X, f2, start, stop, out):
    """Squared reprojection errors (pixels^2) of points start..stop-1 under ``model`` ([R|t]
    row-major) for z = 1 rays; ``f2 = (fx^2, fy^2)``; inf behind the camera."""
    for i in range(start, stop):
        x, y, z = X[i, 0], X[i, 1], X[i, 2]
        zc = model[6] * x + model[7] * y + model[8] * z + model[11]
        if not zc > 0.0:
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
def _run(data, order, params_i, params_f, seed):
    return core.ransac_core(_fit_minimal, _fit_nonminimal, _refine, _sq_errors, _degenerate, core.no_repair,
                            data, order, params_i, params_f, seed)


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
