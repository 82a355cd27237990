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
  in pixels, with the cameras' full lens models.

Checks (:func:`check_points`): triangulation angle (largest angle between two viewing rays),
positive depth in every view, reprojection error in pixels; each returned as a per-point
boolean so a caller sees which points pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._validation import as_points, check_same_length
from ._camera_kernels import project_one
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


def _observations(obs_img, obs_pt, xy, n_images: int, num_points: int | None, dim: int = 2):
    obs_img = np.ascontiguousarray(obs_img, dtype=np.int64).ravel()
    obs_pt = np.ascontiguousarray(obs_pt, dtype=np.int64).ravel()
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
# kernels
@njit(cache=True)
def _dlt_kernel(R, t, obs_img, xy, order, ptr, X):
    A = np.empty((4, 4))
    row = np.empty(4)
    for j in range(ptr.shape[0] - 1):
        if ptr[j + 1] - ptr[j] < 2:
            X[j, :] = np.nan
            continue
        A[:, :] = 0.0
        for e in range(ptr[j], ptr[j + 1]):
            o = order[e]
            i = obs_img[o]
            for r in range(2):
                c = xy[o, r]
                for k in range(3):
                    row[k] = c * R[i, 2, k] - R[i, r, k]
                row[3] = c * t[i, 2] - t[i, r]
                s = 1.0 / np.sqrt(row[0] ** 2 + row[1] ** 2 + row[2] ** 2 + row[3] ** 2)
                for a in range(4):
                    for b in range(4):
                        A[a, b] += row[a] * row[b] * s * s
        _, V = np.linalg.eigh(A)
        v = V[:, 0]
        if abs(v[3]) < 1e-14 * (abs(v[0]) + abs(v[1]) + abs(v[2])):
            X[j, :] = np.nan  # at infinity
        else:
            X[j, 0] = v[0] / v[3]
            X[j, 1] = v[1] / v[3]
            X[j, 2] = v[2] / v[3]


@njit(cache=True)
def _midpoint_kernel(R, t, obs_img, xy, order, ptr, X):
    A = np.empty((3, 3))
    b = np.empty(3)
    for j in range(ptr.shape[0] - 1):
        if ptr[j + 1] - ptr[j] < 2:
            X[j, :] = np.nan
            continue
        A[:, :] = 0.0
        b[:] = 0.0
        for e in range(ptr[j], ptr[j + 1]):
            o = order[e]
            i = obs_img[o]
            d = np.empty(3)
            C = np.empty(3)
            for k in range(3):  # d = R^T (x, y, 1), C = -R^T t
                d[k] = R[i, 0, k] * xy[o, 0] + R[i, 1, k] * xy[o, 1] + R[i, 2, k]
                C[k] = -(R[i, 0, k] * t[i, 0] + R[i, 1, k] * t[i, 1] + R[i, 2, k] * t[i, 2])
            d /= np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
            for a in range(3):
                for c in range(3):
                    m = (1.0 if a == c else 0.0) - d[a] * d[c]
                    A[a, c] += m
                    b[a] += m * C[c]
        if abs(np.linalg.det(A)) < 1e-12:
            X[j, :] = np.nan  # parallel rays
        else:
            X[j, :] = np.linalg.solve(A, b)


@njit(cache=True)
def _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, obs_pt, uv, want_jac, J_out, r_out):
    """Squared pixel error per observation (NaN when the point does not project); with
    ``want_jac`` also the residual (projection - uv) into r_out (M,2) and d uv / d X_world into
    J_out (M,2,3)."""
    m = obs_img.shape[0]
    out = np.empty(m)
    JX = np.empty((2, 3))
    Jp = np.empty((2, cam_params.shape[1]))
    for o in range(m):
        i = obs_img[o]
        j = obs_pt[o]
        c = img_cam[i]
        Xc = R[i, 0, 0] * X[j, 0] + R[i, 0, 1] * X[j, 1] + R[i, 0, 2] * X[j, 2] + t[i, 0]
        Yc = R[i, 1, 0] * X[j, 0] + R[i, 1, 1] * X[j, 1] + R[i, 1, 2] * X[j, 2] + t[i, 1]
        Zc = R[i, 2, 0] * X[j, 0] + R[i, 2, 1] * X[j, 1] + R[i, 2, 2] * X[j, 2] + t[i, 2]
        u, v = project_one(cam_model[c], cam_params[c, : cam_nparams[c]], Xc, Yc, Zc, want_jac, JX,
                           Jp[:, : cam_nparams[c]])
        ru = u - uv[o, 0]
        rv = v - uv[o, 1]
        out[o] = ru * ru + rv * rv
        if want_jac:
            r_out[o, 0] = ru
            r_out[o, 1] = rv
            for a in range(2):
                for b in range(3):
                    J_out[o, a, b] = JX[a, 0] * R[i, 0, b] + JX[a, 1] * R[i, 1, b] + JX[a, 2] * R[i, 2, b]
    return out


@njit(cache=True)
def _refine_kernel(R, t, cam_model, cam_params, cam_nparams, img_cam, X, obs_img, uv, order, ptr, max_iterations):
    """Per point LM on its reprojection error; X updated in place; returns the RMS per point."""
    n = ptr.shape[0] - 1
    rms = np.full(n, np.nan)
    for j in range(n):
        k = ptr[j + 1] - ptr[j]
        if k == 0 or not np.isfinite(X[j, 0] + X[j, 1] + X[j, 2]):
            continue
        idx = order[ptr[j] : ptr[j + 1]]
        oi = obs_img[idx]
        ouv = uv[idx]
        zeros = np.zeros(k, np.int64)
        J = np.empty((k, 2, 3))
        r = np.empty((k, 2))
        Jn = np.empty((k, 2, 3))
        rn = np.empty((k, 2))
        Xp = X[j : j + 1].copy()
        Xn = np.empty((1, 3))
        cost = _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, Xp, oi, zeros, ouv, True, J, r).sum()
        if not np.isfinite(cost):
            continue
        lam = 1e-3
        H = np.empty((3, 3))
        g = np.empty(3)
        for _ in range(max_iterations):
            H[:, :] = 0.0
            g[:] = 0.0
            for q in range(k):
                for a in range(3):
                    g[a] += J[q, 0, a] * r[q, 0] + J[q, 1, a] * r[q, 1]
                    for b in range(3):
                        H[a, b] += J[q, 0, a] * J[q, 0, b] + J[q, 1, a] * J[q, 1, b]
            improved = False
            for _try in range(10):
                Hd = H.copy()
                for a in range(3):
                    Hd[a, a] += lam * max(H[a, a], 1e-12)
                if abs(np.linalg.det(Hd)) < 1e-300:
                    lam *= 10.0
                    continue
                h = np.linalg.solve(Hd, -g)
                Xn[0, :] = Xp[0, :] + h
                cn = _project_flat(R, t, cam_model, cam_params, cam_nparams, img_cam, Xn, oi, zeros, ouv, True, Jn,
                                   rn).sum()
                if np.isfinite(cn) and cn < cost:
                    small = cost - cn <= 1e-14 * cost or np.sqrt(h @ h) <= 1e-12 * np.sqrt(Xp[0] @ Xp[0])
                    Xp[0, :] = Xn[0, :]
                    J[:, :, :] = Jn
                    r[:, :] = rn
                    cost = cn
                    lam = max(lam / 10.0, 1e-12)
                    improved = not small
                    break
                lam *= 10.0
            if not improved:
                break
        X[j, :] = Xp[0, :]
        rms[j] = np.sqrt(cost / k)
    return rms


@njit(cache=True)
def _angles_kernel(R, t, X, obs_img, order, ptr):
    n = ptr.shape[0] - 1
    out = np.zeros(n)
    for j in range(n):
        k = ptr[j + 1] - ptr[j]
        D = np.empty((k, 3))
        for q in range(k):
            i = obs_img[order[ptr[j] + q]]
            for a in range(3):  # X - C with C = -R^T t
                D[q, a] = X[j, a] + (R[i, 0, a] * t[i, 0] + R[i, 1, a] * t[i, 1] + R[i, 2, a] * t[i, 2])
            D[q] /= np.sqrt(D[q, 0] ** 2 + D[q, 1] ** 2 + D[q, 2] ** 2)
        best = 1.0
        for a in range(k):
            for b in range(a + 1, k):
                c = D[a, 0] * D[b, 0] + D[a, 1] * D[b, 1] + D[a, 2] * D[b, 2]
                best = min(best, c)
        out[j] = np.degrees(np.arccos(max(-1.0, min(1.0, best)))) if k >= 2 else 0.0
    return out


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
