"""Triangulation of 3-D points from two or more views, its refinement and its checks.

Inputs are *normalised image coordinates* ``xy`` (x = X_cam / Z_cam, y = Y_cam / Z_cam), i.e.
``camera.cam_from_img(uv)[:, :2]``: lens distortion and K are removed first, which is also the
normalisation a DLT needs for calibrated cameras (coordinates of order 1). Poses are
``cam_from_world`` (:class:`Rigid3`). Multi-view functions take flat observation arrays
``obs_img`` (M,) (index into the pose list), ``obs_pt`` (M,) (index of the point), ``xy`` (M,2).

Methods
- ``dlt``: linear, the null vector of the stacked rows x P3 - P1, y P3 - P2 (each row scaled
  to unit norm);
- ``midpoint``: the point closest (least squares) to all viewing rays;
- ``optimal`` (two views): Lindstrom's niter2 correction of the two observations onto the
  epipolar constraint with the least squared displacement (Hartley-Sturm's optimum, found
  without the degree-6 polynomial; "Triangulation made easy", CVPR 2010), then DLT, which is
  exact for consistent observations;
- :func:`refine_points_reprojection`: Levenberg-Marquardt on each point's reprojection error
  in pixels, with the cameras' full lens models;
- :func:`triangulate_multiview_robust`: per point, RANSAC over pairs of its observations
  (midpoint candidates, most inliers wins, DLT on the inliers) for tracks that may hold a wrong
  observation. The incremental mapper runs the same kernel on its flat arrays.

This is the one triangulation stack: the numba kernels are in ``_triangulation_kernels.py``.

Checks (:func:`check_points`): triangulation angle (largest angle between two viewing rays),
positive depth in every view, reprojection error in pixels; each returned as a per-point
boolean so a caller sees which points pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import as_points, check_same_length
from ._triangulation_kernels import (
    _angles_kernel,
    _dlt_kernel,
    _midpoint_kernel,
    _project_flat,
    _refine_kernel,
    triangulate_tracks,
)
from .camera import Camera
from .epipolar import essential_from_pose
from .rigid import Rigid3

METHODS = ("dlt", "midpoint", "optimal")


# --------------------------------------------------------------------------------------------------
# input helpers
def _poses(cams_from_world: Sequence[Rigid3], name: str = "cams_from_world") -> tuple[np.ndarray, np.ndarray]:
    if isinstance(cams_from_world, Rigid3) or not all(isinstance(T, Rigid3) for T in cams_from_world):
        raise ValueError(f"{name} must be a sequence of Rigid3 (cam_from_world of each image)")
    R = np.array([T.R for T in cams_from_world], dtype=np.float64).reshape(-1, 3, 3)
    t = np.array([T.t for T in cams_from_world], dtype=np.float64).reshape(-1, 3)
    return R, t


def _indices(a, name: str) -> np.ndarray:
    """An integer index array (M,); floats are accepted only when they hold whole numbers
    (casting 1.7 to 1 would silently pick another image)."""
    arr = np.asarray(a).ravel()
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf" and arr.size:
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.size and not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
        bad = arr[~np.isfinite(arr) | (arr != np.round(arr))][0]
        raise ValueError(f"{name} must hold integer indices, got {float(bad)!r}; round or cast them deliberately")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _observations(obs_img, obs_pt, xy, n_images: int, num_points: int | None, dim: int = 2):
    obs_img = _indices(obs_img, "obs_img")
    obs_pt = _indices(obs_pt, "obs_pt")
    xy = as_points(xy, "xy" if dim == 2 else "uv", dim)
    check_same_length(obs_img=obs_img, obs_pt=obs_pt, xy=xy)
    if len(obs_img) and (obs_img.min() < 0 or obs_img.max() >= n_images):
        raise ValueError(f"obs_img must index the {n_images} poses, got values in [{obs_img.min()}, {obs_img.max()}]")
    n = int(obs_pt.max()) + 1 if num_points is None and len(obs_pt) else (num_points or 0)
    if len(obs_pt) and (obs_pt.min() < 0 or obs_pt.max() >= n):
        raise ValueError(f"obs_pt must lie in [0, {n}), got values in [{obs_pt.min()}, {obs_pt.max()}]")
    order = np.argsort(obs_pt, kind="stable").astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(obs_pt, minlength=n))]).astype(np.int64)
    return obs_img, obs_pt, xy, order, ptr, n


def _pack_cameras(cameras: Sequence[Camera], image_cameras, n_images: int):
    if isinstance(cameras, Camera):
        cameras = [cameras]
    if not all(isinstance(c, Camera) for c in cameras):
        raise ValueError("cameras must be a sequence of geomvision.Camera")
    if image_cameras is None:
        if len(cameras) == 1:
            image_cameras = np.zeros(n_images, np.int64)
        elif len(cameras) == n_images:
            image_cameras = np.arange(n_images)
        else:
            raise ValueError(f"cameras: give one camera, one per image ({n_images}), or image_cameras")
    img_cam = np.ascontiguousarray(image_cameras, dtype=np.int64).ravel()
    if img_cam.shape != (n_images,) or img_cam.min(initial=0) < 0 or img_cam.max(initial=0) >= len(cameras):
        raise ValueError(f"image_cameras must give a camera index in [0, {len(cameras)}) for each of {n_images} images")
    P = max(len(c.params) for c in cameras)
    params = np.zeros((len(cameras), P))
    for k, c in enumerate(cameras):
        params[k, : len(c.params)] = c.params
    model = np.array([c.model_id for c in cameras], dtype=np.int64)
    nparams = np.array([len(c.params) for c in cameras], dtype=np.int64)
    return model, params, nparams, img_cam


# --------------------------------------------------------------------------------------------------
# public API
def optimal_correction(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move x1, x2 (N,2) by the least total squared distance onto ``x2^T F x1 = 0``.

    Works in whatever coordinates F maps: pixels with a fundamental matrix (the optimal
    correction of Hartley-Sturm in pixels) or normalised coordinates with an essential matrix.
    Lindstrom's niter2 (two Newton-like steps, exact to rounding for practical data).
    """
    F = np.asarray(F, dtype=np.float64)
    if F.shape != (3, 3) or not np.isfinite(F).all():
        raise ValueError(f"F must be a finite 3x3 matrix, got shape {F.shape}")
    x1 = as_points(x1, "x1", 2)
    x2 = as_points(x2, "x2", 2)
    check_same_length(x1=x1, x2=x2)
    # Lindstrom's notation: x^T E x' = 0 with x = x2, x' = x1
    E = F / np.linalg.norm(F)
    Et = E[:2, :2]
    h2 = np.column_stack([x2, np.ones(len(x2))])
    h1 = np.column_stack([x1, np.ones(len(x1))])
    n = h1 @ E[:2, :].T  # S E x'
    n_ = h2 @ E[:, :2]  # S E^T x
    a = np.einsum("ni,ij,nj->n", n, Et, n_)
    b = 0.5 * (np.sum(n * n, axis=1) + np.sum(n_ * n_, axis=1))
    c = np.einsum("ni,ij,nj->n", h2, E, h1)
    d = np.sqrt(np.maximum(b * b - a * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(b + d > 0, c / (b + d), 0.0)
        dx = lam[:, None] * n
        dx_ = lam[:, None] * n_
        n = n - dx_ @ Et.T
        n_ = n_ - dx @ Et
        den = np.sum(n * n, axis=1) + np.sum(n_ * n_, axis=1)
        lam = np.where(den > 0, lam * 2.0 * d / den, 0.0)
    return x1 - lam[:, None] * n_, x2 - lam[:, None] * n


def triangulate_two_view(cam1_from_world: Rigid3, cam2_from_world: Rigid3, xy1: np.ndarray, xy2: np.ndarray,
                         method: str = "dlt") -> np.ndarray:
    """Points X_world (N,3) from normalised coordinates xy1, xy2 (N,2) of two views.

    ``method``: "dlt", "midpoint" or "optimal" (niter2 correction in normalised coordinates,
    then DLT). Rays that do not meet in front or at all (parallel) give NaN rows only when the
    linear system is degenerate; use :func:`check_points` to reject the rest.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    xy1 = as_points(xy1, "xy1", 2)
    xy2 = as_points(xy2, "xy2", 2)
    n = check_same_length(xy1=xy1, xy2=xy2)
    if method == "optimal":
        E = essential_from_pose(cam2_from_world @ cam1_from_world.inverse())
        if np.linalg.norm(E) > 0:
            xy1, xy2 = optimal_correction(E, xy1, xy2)
        method = "dlt"
    obs_img = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    obs_pt = np.concatenate([np.arange(n), np.arange(n)])
    X, _ = triangulate_multiview([cam1_from_world, cam2_from_world], obs_img, obs_pt, np.vstack([xy1, xy2]), n,
                                 method=method)
    return X


def triangulate_multiview(cams_from_world: Sequence[Rigid3], obs_img: np.ndarray, obs_pt: np.ndarray,
                          xy: np.ndarray, num_points: int | None = None, method: str = "dlt"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Points X_world (N,3) from flat observations (normalised coordinates xy (M,2));
    returns (X_world, num_views (N,)); points seen fewer than twice are NaN.
    ``method``: "dlt" or "midpoint"."""
    if method not in ("dlt", "midpoint"):
        raise ValueError(f"method must be 'dlt' or 'midpoint' for several views, got {method!r}")
    R, t = _poses(cams_from_world)
    obs_img, obs_pt, xy, order, ptr, n = _observations(obs_img, obs_pt, xy, len(R), num_points)
    X = np.empty((n, 3))
    (_dlt_kernel if method == "dlt" else _midpoint_kernel)(R, t, obs_img, xy, order, ptr, X)
    return X, np.diff(ptr)


def refine_points_reprojection(X_world: np.ndarray, cameras: Sequence[Camera] | Camera,
                               cams_from_world: Sequence[Rigid3], obs_img: np.ndarray, obs_pt: np.ndarray,
                               uv: np.ndarray, *, image_cameras=None, max_iterations: int = 20
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Refine each point independently on its reprojection error in pixels (LM, full lens models).

    ``uv`` (M,2) are pixels; ``image_cameras`` (I,) maps images to ``cameras`` (default: one
    shared camera, or one per image). Returns (refined X_world (N,3), RMS pixel error per point;
    NaN for points without observations or that do not project)."""
    R, t = _poses(cams_from_world)
    X = as_points(X_world, "X_world", 3, finite=False).copy()
    obs_img, _, uv, order, ptr, _ = _observations(obs_img, obs_pt, uv, len(R), len(X), dim=2)
    model, params, nparams, img_cam = _pack_cameras(cameras, image_cameras, len(R))
    rms = _refine_kernel(R, t, model, params, nparams, img_cam, X, obs_img, uv, order, ptr, int(max_iterations))
    return X, rms


@dataclass
class RobustTriangulation:
    """Result of :func:`triangulate_multiview_robust`: per point (N,) ``X_world`` (NaN rows where
    no two observations agree) and ``tri_angle_deg`` (widest angle between two inlier rays, 0
    without a point); per observation (M,) ``inlier``."""

    X_world: np.ndarray
    tri_angle_deg: np.ndarray
    inlier: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.X_world).all(axis=1)


def triangulate_multiview_robust(cams_from_world: Sequence[Rigid3], obs_img: np.ndarray, obs_pt: np.ndarray,
                                 xy: np.ndarray, max_error_xy: float | np.ndarray, num_points: int | None = None,
                                 *, min_tri_angle_deg: float = 1.5, max_pairs: int = 200) -> RobustTriangulation:
    """Points from flat observations (normalised coordinates ``xy`` (M,2)) that may hold outliers.

    For each point, every pair of its observations whose rays make at least ``min_tri_angle_deg``
    (up to ``max_pairs`` pairs, in observation order) gives a midpoint candidate; the candidate
    with the most inliers (error on the z = 1 plane below ``max_error_xy``, a scalar or one value
    per observation, e.g. pixels / focal length; positive depth) wins and is re-estimated by DLT
    from its inliers. A point needs two inliers whose widest angle reaches ``min_tri_angle_deg``.
    """
    R, t = _poses(cams_from_world)
    obs_img, obs_pt, xy, order, ptr, n = _observations(obs_img, obs_pt, xy, len(R), num_points)
    thr = np.broadcast_to(np.asarray(max_error_xy, dtype=np.float64), obs_img.shape)
    if not (np.isfinite(thr).all() and (thr > 0).all()):
        raise ValueError("max_error_xy must be positive and finite")
    if not 0.0 < min_tri_angle_deg < 180.0:
        raise ValueError(f"min_tri_angle_deg must lie in (0, 180), got {min_tri_angle_deg!r}")
    min_cos = float(np.cos(np.radians(min_tri_angle_deg)))
    X, inlier_sorted, widest_cos = triangulate_tracks(R, t, ptr, order, obs_img, xy, np.ascontiguousarray(thr**2),
                                                      min_cos, int(max_pairs))
    ok = np.isfinite(X).all(axis=1) & (widest_cos <= min_cos)
    X[~ok] = np.nan
    inlier = np.zeros(len(obs_img), dtype=bool)
    inlier[order] = inlier_sorted & ok[obs_pt[order]]
    angle = np.where(ok, np.degrees(np.arccos(np.clip(widest_cos, -1.0, 1.0))), 0.0)
    return RobustTriangulation(X, angle, inlier)


@dataclass
class PointChecks:
    """Per point (N,): values and which checks pass (``ok`` = all three)."""

    tri_angle_deg: np.ndarray
    min_depth: np.ndarray
    max_error_px: np.ndarray
    angle_ok: np.ndarray
    depth_ok: np.ndarray
    error_ok: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.angle_ok & self.depth_ok & self.error_ok


def triangulation_angles_deg(X_world: np.ndarray, cams_from_world: Sequence[Rigid3], obs_img: np.ndarray,
                             obs_pt: np.ndarray) -> np.ndarray:
    """Largest angle (degrees) between two viewing rays of each point (N,); 0 with one view."""
    R, t = _poses(cams_from_world)
    X = as_points(X_world, "X_world", 3, finite=False)
    obs_img, obs_pt, _, order, ptr, _ = _observations(obs_img, obs_pt, np.zeros((len(obs_pt), 2)), len(R), len(X))
    return _angles_kernel(R, t, X, obs_img, order, ptr)


def check_points(X_world: np.ndarray, cameras: Sequence[Camera] | Camera, cams_from_world: Sequence[Rigid3],
                 obs_img: np.ndarray, obs_pt: np.ndarray, uv: np.ndarray, *, image_cameras=None,
                 min_tri_angle_deg: float = 1.5, max_error: float = 4.0) -> PointChecks:
    """Which points pass: triangulation angle >= ``min_tri_angle_deg``, positive depth in every
    view that observes them, and every reprojection error <= ``max_error`` pixels."""
    R, t = _poses(cams_from_world)
    X = as_points(X_world, "X_world", 3, finite=False)
    obs_img, obs_pt, uv, order, ptr, n = _observations(obs_img, obs_pt, uv, len(R), len(X))
    model, params, nparams, img_cam = _pack_cameras(cameras, image_cameras, len(R))
    depth = np.einsum("mj,mj->m", R[obs_img, 2, :], X[obs_pt]) + t[obs_img, 2]
    sq = _project_flat(R, t, model, params, nparams, img_cam, X, obs_img, obs_pt, uv, False, np.empty((0, 2, 3)),
                      np.empty((0, 2)))
    min_depth = np.full(n, np.inf)
    np.minimum.at(min_depth, obs_pt, np.where(np.isfinite(depth), depth, -np.inf))
    max_err = np.zeros(n)
    np.maximum.at(max_err, obs_pt, np.where(np.isfinite(sq), np.sqrt(np.abs(sq)), np.inf))
    angles = _angles_kernel(R, t, X, obs_img, order, ptr)
    finite = np.isfinite(X).all(axis=1)
    seen = np.diff(ptr) > 0
    return PointChecks(
        tri_angle_deg=angles,
        min_depth=np.where(seen, min_depth, np.nan),
        max_error_px=np.where(seen, max_err, np.nan),
        angle_ok=finite & (angles >= min_tri_angle_deg),
        depth_ok=finite & seen & (min_depth > 0),
        error_ok=finite & seen & (max_err <= max_error),
    )
