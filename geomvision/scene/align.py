"""Similarity alignment (Umeyama) and camera-error metrics against ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_points, check_same_length
from ..geometry.rigid import Rigid3, camera_center
from ..geometry.rotation import rotation_error_deg


def umeyama(src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True) -> tuple[float, Rigid3]:
    """Least-squares similarity with ``dst ~ scale * (R @ src + t)`` for (N,3) point sets, N >= 3.

    Returns ``(scale, dst_from_src)`` where ``dst_from_src = (R, t)`` and the full map is
    ``x -> scale * (R x + t)`` (the form :meth:`Reconstruction.transform` takes).
    """
    src = as_points(src, "src", 3)
    dst = as_points(dst, "dst", 3)
    n = check_same_length(src=src, dst=dst)
    if n < 3:
        raise ValueError(f"umeyama needs at least 3 point pairs, got {n}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    S, D = src - mu_s, dst - mu_d
    var_s = np.sum(S**2) / n
    if var_s < 1e-300:
        raise ValueError("src points coincide: the similarity is undetermined")
    U, sig, Vt = np.linalg.svd(D.T @ S / n)
    d = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        d[2] = -1.0
    R = (U * d) @ Vt
    scale = float(np.sum(sig * d) / var_s) if with_scale else 1.0
    # dst = scale * R src + (mu_d - scale R mu_s) = scale * (R src + t)
    t = (mu_d - scale * R @ mu_s) / scale
    return scale, Rigid3(R, t, check=False)


@dataclass
class CameraErrors:
    """Camera errors after similarity alignment of estimated centres to ground truth."""

    center_errors: np.ndarray  # (N,) in ground-truth units
    rotation_errors_deg: np.ndarray  # (N,)
    scale: float
    gt_from_est: Rigid3

    @property
    def mean_center_error(self) -> float:
        return float(np.mean(self.center_errors))

    @property
    def max_center_error(self) -> float:
        return float(np.max(self.center_errors))

    @property
    def mean_rotation_error_deg(self) -> float:
        return float(np.mean(self.rotation_errors_deg))

    def as_dict(self) -> dict:
        return {
            "mean_center_error": self.mean_center_error,
            "max_center_error": self.max_center_error,
            "mean_rotation_error_deg": self.mean_rotation_error_deg,
            "max_rotation_error_deg": float(np.max(self.rotation_errors_deg)),
            "num_cameras": int(len(self.center_errors)),
        }


def camera_errors(est_cams_from_world: list[Rigid3], gt_cams_from_world: list[Rigid3]) -> CameraErrors:
    """Align estimated camera centres to ground truth (7-dof) and measure centre and rotation errors.

    Both lists are in the same order (one entry per camera; at least 3 cameras).
    """
    if len(est_cams_from_world) != len(gt_cams_from_world):
        raise ValueError("est_cams_from_world and gt_cams_from_world must have the same length")
    C_est = np.array([camera_center(T) for T in est_cams_from_world])
    C_gt = np.array([camera_center(T) for T in gt_cams_from_world])
    s, T = umeyama(C_est, C_gt)
    C_al = s * (C_est @ T.R.T + T.t)
    # aligned rotation: cam_from_world_new = R_c R^T
    R_est = np.array([E.R @ T.R.T for E in est_cams_from_world])
    R_gt = np.array([G.R for G in gt_cams_from_world])
    rot = np.atleast_1d(rotation_error_deg(R_est, R_gt))
    return CameraErrors(np.linalg.norm(C_al - C_gt, axis=1), rot, s, T)
