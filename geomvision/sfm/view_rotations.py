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
merge models from their relative pose. :meth:`RotationConsistency.residual_without_pair_deg`
judges a rotation that a pair cannot decide alone (a plane's two decompositions) by the other
pairs only: averaged again without the pair, from the average of all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..geometry.rotation import rotation_error_deg
from ..optim.pose_graph_init import average_rotations, graph_components
from .verification import TwoViewGeometry

# a pair contradicts the averaged rotations when off by more than this (a verified pair's rotation
# is good to a fraction of a degree; one verified on shifted repeated structure is off by far more)
MAX_ROTATION_RESIDUAL_DEG = 5.0
ROBUST_SCALE_DEG = 2.0  # Cauchy scale of the averaging's last round


class RotationConsistency:
    """Residuals of the verified pairs of ``geoms`` ((i, j) with i < j) against robustly averaged
    camera rotations. Pairs with a relative pose (``cam2_from_cam1``: E, F or a planar pair's
    chosen decomposition) enter the averaging, weighted by inliers; it runs once, on first use."""

    def __init__(self, geoms: dict[tuple[int, int], TwoViewGeometry],
                 planar_rotation: Callable[[tuple[int, int]], np.ndarray | None] | None = None) -> None:
        self._R = {k: g.cam2_from_cam1.R for k, g in geoms.items()
                   if g.verified and g.cam2_from_cam1 is not None and g.num_inliers > 0
                   and g.config in ("calibrated", "uncalibrated", "planar")}
        self._inliers = {k: g.num_inliers for k, g in geoms.items() if g.verified}
        self._planar = {k for k, g in geoms.items() if g.verified and g.num_inliers > 0 and g.config == "planar"}
        self._planar_rotation = planar_rotation
        self._world_from_cam: dict[int, np.ndarray] | None = None
        self._decided: dict[tuple[int, int], np.ndarray] | None = None
        self._without: dict[tuple[int, int], dict[int, np.ndarray] | None] = {}

    def _average(self, rotations: dict[tuple[int, int], np.ndarray], start: dict[int, np.ndarray] | None = None
                 ) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        """World-from-camera rotations averaged over the pairs' ``rotations`` (cam_j_from_cam_i
        of each (i, j); one gauge per connected set of views; from ``start``, rotations averaged
        over more pairs, when given for every view) and each view's component label."""
        keys = sorted(rotations)
        nodes = sorted({i for k in keys for i in k})
        row = {n: r for r, n in enumerate(nodes)}
        ri = np.array([row[i] for i, _ in keys], np.int64)
        rj = np.array([row[j] for _, j in keys], np.int64)
        # world_from_cam_j = world_from_cam_i @ cam_i_from_cam_j
        R_rel = np.array([rotations[k].T for k in keys]).reshape(-1, 3, 3)
        w = np.array([self._inliers[k] for k in keys], np.float64)
        R0 = np.array([start[n] for n in nodes]) if start is not None and all(n in start for n in nodes) else None
        R, _ = average_rotations(len(nodes), ri, rj, R_rel, w, robust_scale_deg=ROBUST_SCALE_DEG, start=R0)
        _, label = graph_components(len(nodes), ri, rj)
        return {n: R[r] for n, r in row.items()}, {n: label[r] for n, r in row.items()}

    def _averaged(self) -> dict[int, np.ndarray]:
        if self._world_from_cam is None:
            self._world_from_cam, _ = self._average(self._R)
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
        return _angle_to(Rw, key, R)

    def contradicted(self, i: int, j: int, R: np.ndarray | None = None) -> bool:
        """Whether the pair's rotation (or ``R``, cam_j_from_cam_i for i < j, e.g. a planar
        pair's other decomposition) is more than ``MAX_ROTATION_RESIDUAL_DEG`` off the averaged
        rotations. A pair that alone joins its views to the others cannot be judged (its residual
        is 0)."""
        return self.residual_deg(i, j, R) > MAX_ROTATION_RESIDUAL_DEG

    def _planar_decided(self) -> dict[tuple[int, int], np.ndarray]:
        if self._decided is None:
            decide = self._planar_rotation or (lambda k: None)
            self._decided = {k: R_k for k in self._planar if (R_k := decide(k)) is not None}
        return self._decided

    def add_planar_decision(self, i: int, j: int, R: np.ndarray) -> None:
        """Let planar pair (i, j) vote with ``R`` (cam_j_from_cam_i, i < j) from now on: its
        decomposition decided by the other pairs' rotations (it closes their loop for the next
        such pair)."""
        key = (min(i, j), max(i, j))
        decided = self._planar_decided()
        if key not in decided:
            decided[key] = np.asarray(R, np.float64)
            self._without.clear()

    def residual_without_pair_deg(self, i: int, j: int, R: np.ndarray) -> float | None:
        """Angle between ``R`` (cam_j_from_cam_i for i < j) and the relative rotation of views i
        and j averaged over the other verified pairs (the pair's own rotation left out, so that
        it does not vote for itself): what the rest of the view graph says of a rotation the
        pair alone cannot decide (a plane's two decompositions). A planar pair votes only with
        the decomposition its own matches decide (``planar_rotation``; an essential matrix fitted
        to a plane is either, at random) or the one these residuals decided before
        (:meth:`add_planar_decision`). None when no other pairs join i and j."""
        key = (min(i, j), max(i, j))
        if key not in self._without:
            rotations = {k: R_k for k, R_k in self._R.items() if k not in self._planar} | self._planar_decided()
            rotations.pop(key, None)
            Rw, label = self._average(rotations, start=self._averaged()) if rotations else ({}, {})
            joined = key[0] in Rw and key[1] in Rw and label[key[0]] == label[key[1]]
            self._without[key] = Rw if joined else None
        Rw = self._without[key]
        return None if Rw is None else _angle_to(Rw, key, R)


def _angle_to(world_from_cam: dict[int, np.ndarray], key: tuple[int, int], R: np.ndarray) -> float:
    """Degrees between ``R`` (cam_j_from_cam_i of key (i, j)) and the relative rotation of the views
    in ``world_from_cam``."""
    i, j = key
    return float(rotation_error_deg(np.asarray(R, np.float64), world_from_cam[j].T @ world_from_cam[i]))
