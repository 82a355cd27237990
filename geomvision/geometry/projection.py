"""World-level projection: world points to pixels and pixels to world rays."""

from __future__ import annotations

import numpy as np

from .._validation import as_points, check_same_length
from .camera import Camera
from .rigid import Rigid3, camera_center


def _check_pose(camera: Camera, cam_from_world: Rigid3) -> None:
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
    if not isinstance(cam_from_world, Rigid3):
        raise ValueError(f"cam_from_world must be a geomvision.Rigid3, got {type(cam_from_world).__name__}")


def project_points(X_world: np.ndarray, camera: Camera, cam_from_world: Rigid3) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N,2) and depths (N,) (camera-frame z) of world points (N,3).

    Points with depth <= 0 are behind the camera: their pixels are NaN.
    """
    _check_pose(camera, cam_from_world)
    X_cam = cam_from_world.apply(as_points(X_world, "X_world", 3))
    return camera.img_from_cam(X_cam), X_cam[:, 2].copy()


def reprojection_sq_errors(uv: np.ndarray, X_world: np.ndarray, camera: Camera, cam_from_world: Rigid3) -> np.ndarray:
    """Squared pixel distance (N,) between observations ``uv`` and projected ``X_world``;
    +inf for points behind the camera."""
    uv = as_points(uv, "uv", 2)
    X_world = as_points(X_world, "X_world", 3)
    check_same_length(uv=uv, X_world=X_world)
    proj, depth = project_points(X_world, camera, cam_from_world)
    err = np.sum((proj - uv) ** 2, axis=1)
    err[~(depth > 0)] = np.inf
    return err


def rays_from_pixels(uv: np.ndarray, camera: Camera, cam_from_world: Rigid3) -> tuple[np.ndarray, np.ndarray]:
    """World rays through pixels (N,2): origins (N,3) (the camera centre) and unit directions
    (N,3), ``direction ~ R^T cam_from_img(uv)`` (= R^T K^-1 [u, v, 1] without distortion)."""
    _check_pose(camera, cam_from_world)
    rays_cam = camera.cam_from_img(uv)
    d = rays_cam @ cam_from_world.R  # rows: R^T r
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    origins = np.broadcast_to(camera_center(cam_from_world), d.shape).copy()
    return origins, d


def unproject_points(uv: np.ndarray, depths: np.ndarray, camera: Camera, cam_from_world: Rigid3) -> np.ndarray:
    """World points (N,3) seen at pixels (N,2) with camera-frame depths (N,) (z, not range)."""
    _check_pose(camera, cam_from_world)
    rays_cam = camera.cam_from_img(uv)
    z = np.asarray(depths, dtype=np.float64).reshape(-1)
    if z.shape[0] != len(rays_cam):
        raise ValueError(f"depths must have one value per pixel: {z.shape[0]} depths for {len(rays_cam)} pixels")
    return cam_from_world.inverse().apply(rays_cam * z[:, None])
