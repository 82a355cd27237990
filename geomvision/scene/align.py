"""Similarity alignment (Umeyama) and camera-error metrics against ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_points, check_same_length
from ..geometry.rigid import Rigid3, camera_center
from ..geometry.rotation import rotation_error_deg
from ..solvers.similarity import sim3_from_points


def umeyama(src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True) -> tuple[float, Rigid3]:
    """Least-squares similarity with ``dst ~ scale * (R @ src + t)`` for (N,3) point sets, N >= 3.

    Returns ``(scale, dst_from_src)`` where ``dst_from_src = (R, t)`` and the full map is
    ``x -> scale * (R x + t)`` (the form :meth:`Reconstruction.transform` takes). The solver is
    :func:`geomvision.solvers.similarity.sim3_from_points` (which returns the ``Sim3``
    ``x -> scale * R x + t'``, ``t' = scale * t``).
    """
    src = as_points(src, "src", 3)
    dst = as_points(dst, "dst", 3)
    n = check_same_length(src=src, dst=dst)
    if n < 3:
        raise ValueError(f"umeyama needs at least 3 point pairs, got {n}")
    sim = sim3_from_points(src, dst, with_scale=with_scale)
    if sim is None:
        raise ValueError("src (or dst) points coincide: the similarity is undetermined")
    return sim.scale, Rigid3(sim.R, sim.t / sim.scale, check=False)


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
