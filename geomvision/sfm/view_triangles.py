"""Loop consistency of verified pairs: does a pair's relative rotation close its triangles?

On repeated structure (a grid of identical windows) a pair can verify on matches shifted by one
period: a consistent epipolar geometry with a wrong relative pose. Such a pair rarely closes the
triangles it forms with other verified pairs: for images i, j and a third image k with pairs
(i, k) and (k, j), ``R_kj R_ik`` should equal ``R_ij``. :class:`TriangleSupport` weighs, for one
pair, the triangles that close (within ``MAX_TRIANGLE_ERROR_DEG``) against those that do not
and in which it is the weakest leg (the likeliest wrong one), each by the inliers of its weaker
other leg. The mapper does not drop contradicted pairs (their
matches may still be right and 2D-3D registration rejects the wrong ones); it only refuses to
seed a model or place an image from their relative pose alone.
"""

from __future__ import annotations

import numpy as np

from ..geometry.rotation import rotation_error_deg
from .verification import TwoViewGeometry

MAX_TRIANGLE_ERROR_DEG = 5.0  # a triangle closes when its composed rotation is within this of identity


class TriangleSupport:
    """Triangle evidence for the verified pairs of ``geoms`` ((i, j) with i < j) that have a
    relative pose (``cam2_from_cam1``); built once, queried per pair (cached)."""

    def __init__(self, geoms: dict[tuple[int, int], TwoViewGeometry]) -> None:
        self._R: dict[tuple[int, int], np.ndarray] = {}
        self._n: dict[tuple[int, int], int] = {}
        self._adj: dict[int, set[int]] = {}
        for (i, j), g in geoms.items():
            if g.verified and g.cam2_from_cam1 is not None and g.config in ("calibrated", "uncalibrated", "planar"):
                self._R[(i, j)] = g.cam2_from_cam1.R
                self._n[(i, j)] = int(g.num_inliers)
                self._adj.setdefault(i, set()).add(j)
                self._adj.setdefault(j, set()).add(i)
        self._cache: dict[tuple[int, int], tuple[float, float]] = {}

    def _rot(self, a: int, b: int) -> np.ndarray:
        """cam_b_from_cam_a rotation of a pair with a pose."""
        return self._R[(a, b)] if a < b else self._R[(b, a)].T

    def _inliers(self, a: int, b: int) -> int:
        return self._n[(min(a, b), max(a, b))]

    def support(self, i: int, j: int) -> tuple[float, float]:
        """(weight of the triangles through (i, j) that close, weight of those that do not);
        (0, 0) when the pair has no pose or no triangle."""
        key = (min(i, j), max(i, j))
        if key in self._cache:
            return self._cache[key]
        out = (0.0, 0.0)
        if key in self._R:
            a, b = key
            ks = sorted(self._adj.get(a, set()) & self._adj.get(b, set()))
            if ks:
                composed = np.array([self._rot(k, b) @ self._rot(a, k) for k in ks])
                err = rotation_error_deg(composed, np.broadcast_to(self._R[key], composed.shape))
                w = np.array([min(self._inliers(a, k), self._inliers(k, b)) for k in ks], dtype=np.float64)
                close = err <= MAX_TRIANGLE_ERROR_DEG
                # a triangle that does not close has a wrong leg, most likely its weakest: it
                # counts against this pair only when this pair is that leg
                weakest = self._n[key] <= w
                out = (float(w[close].sum()), float(w[~close & weakest].sum()))
        self._cache[key] = out
        return out

    def contradicted(self, i: int, j: int) -> bool:
        """Whether more triangle weight contradicts the pair's rotation than confirms it."""
        agree, disagree = self.support(i, j)
        return disagree > agree
