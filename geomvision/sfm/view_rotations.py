"""Do the verified pairs' relative rotations agree with one set of camera rotations?

On repeated structure (a grid of identical windows) a pair can verify on matches shifted by one
period: a consistent epipolar geometry with a wrong relative pose. Such wrong pairs can agree
with each other (one view shifted by a window explains all of its weak pairs at once), so
neither a pair's triangles nor a vote among a view's pairs finds them. :class:`RotationConsistency`
averages the rotations of all verified pairs at once (robustly, weighted by inliers:
:func:`geomvision.optim.pose_graph_init.average_rotations`) and judges each pair by its residual
against the averaged rotations: a pair off by more than ``MAX_ROTATION_RESIDUAL_DEG`` is
contradicted. The mapper does not drop contradicted pairs (their matches may still be right and
2D-3D registration rejects the wrong ones); it only refuses to seed a model, place an image or
merge models from their relative pose.
"""

from __future__ import annotations

import numpy as np

from ..geometry.rotation import rotation_error_deg
from ..optim.pose_graph_init import average_rotations
from .verification import TwoViewGeometry

# a pair contradicts the averaged rotations when off by more than this (a verified pair's rotation
# is good to a fraction of a degree; one verified on shifted repeated structure is off by far more)
MAX_ROTATION_RESIDUAL_DEG = 5.0
ROBUST_SCALE_DEG = 2.0  # Cauchy scale of the averaging's last round


class RotationConsistency:
    """Residuals of the verified pairs of ``geoms`` ((i, j) with i < j) against robustly averaged
    camera rotations. Pairs with a relative pose (``cam2_from_cam1``: E, F or a planar pair's
    chosen decomposition) enter the averaging, weighted by inliers; it runs once, on first use."""

    def __init__(self, geoms: dict[tuple[int, int], TwoViewGeometry]) -> None:
        self._R = {k: g.cam2_from_cam1.R for k, g in geoms.items()
                   if g.verified and g.cam2_from_cam1 is not None and g.num_inliers > 0
                   and g.config in ("calibrated", "uncalibrated", "planar")}
        self._inliers = {k: geoms[k].num_inliers for k in self._R}
        self._world_from_cam: dict[int, np.ndarray] | None = None

    def _averaged(self) -> dict[int, np.ndarray]:
        if self._world_from_cam is None:
            keys = sorted(self._R)
            nodes = sorted({i for k in keys for i in k})
            row = {n: r for r, n in enumerate(nodes)}
            ri = np.array([row[i] for i, _ in keys], np.int64)
            rj = np.array([row[j] for _, j in keys], np.int64)
            # world_from_cam_j = world_from_cam_i @ cam_i_from_cam_j
            R_rel = np.array([self._R[k].T for k in keys]).reshape(-1, 3, 3)
            w = np.array([self._inliers[k] for k in keys], np.float64)
            R, _ = average_rotations(len(nodes), ri, rj, R_rel, w, robust_scale_deg=ROBUST_SCALE_DEG)
            self._world_from_cam = {n: R[r] for n, r in row.items()}
        return self._world_from_cam

    def residual_deg(self, i: int, j: int, R: np.ndarray | None = None) -> float:
        """Angle between the pair's rotation (the verified one, or ``R``: cam_j_from_cam_i for
        i < j) and the one of the averaged rotations; 0 when the pair has no rotation to judge."""
        key = (min(i, j), max(i, j))
        if R is None:
            if key not in self._R:
                return 0.0
            R = self._R[key]
        Rw = self._averaged()
        if key[0] not in Rw or key[1] not in Rw:
            return 0.0
        return float(rotation_error_deg(np.asarray(R, np.float64), Rw[key[1]].T @ Rw[key[0]]))

    def contradicted(self, i: int, j: int, R: np.ndarray | None = None) -> bool:
        """Whether the pair's rotation (or ``R``, cam_j_from_cam_i for i < j, e.g. a planar
        pair's other decomposition) is more than ``MAX_ROTATION_RESIDUAL_DEG`` off the averaged
        rotations. A pair that alone joins its views to the others cannot be judged (its residual
        is 0)."""
        return self.residual_deg(i, j, R) > MAX_ROTATION_RESIDUAL_DEG
