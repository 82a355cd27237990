"""Loop consistency of verified pairs: does a pair's relative rotation close its triangles?

On repeated structure (a grid of identical windows) a pair can verify on matches shifted by one
period: a consistent epipolar geometry with a wrong relative pose. Such a pair rarely closes the
triangles it forms with other verified pairs: for images i, j and a third image k with pairs
(i, k) and (k, j), ``R_kj R_ik`` should equal ``R_ij``. :class:`TriangleSupport` weighs, for one
pair, the triangles that close (within ``MAX_TRIANGLE_ERROR_DEG``) against those that do not
and blame it, each by the inliers of its weaker other leg. A triangle that does not close blames
the leg whose own triangles close least (a wrong pair's rarely do, whatever its inliers), the
weakest of those equally doubtful. The mapper does not drop contradicted pairs (their
matches may still be right and 2D-3D registration rejects the wrong ones); it only refuses to
seed a model or place an image from their relative pose alone.
"""

from __future__ import annotations

import numpy as np

from ..geometry.rotation import rotation_error_deg
from .verification import TwoViewGeometry

MAX_TRIANGLE_ERROR_DEG = 5.0  # a triangle closes when its composed rotation is within this of identity
MAX_TREE_PATH = 4  # longest chain of the strongest pairs compared with a pair (rotation error adds up)


class TriangleSupport:
    """Triangle and spanning-tree evidence for the verified pairs of ``geoms`` ((i, j) with
    i < j); the pairs with a relative pose (``cam2_from_cam1``) form the triangles and the tree.
    Built once, queried per pair: the verified rotation (cached), or another candidate ``R``
    (``cam_j_from_cam_i`` for i < j, e.g. a planar pair's chosen decomposition)."""

    def __init__(self, geoms: dict[tuple[int, int], TwoViewGeometry]) -> None:
        self._R: dict[tuple[int, int], np.ndarray] = {}
        self._n = {k: int(g.num_inliers) for k, g in geoms.items() if g.verified}
        self._adj: dict[int, set[int]] = {}
        for (i, j), g in geoms.items():
            if g.verified and g.cam2_from_cam1 is not None and g.config in ("calibrated", "uncalibrated", "planar"):
                self._R[(i, j)] = g.cam2_from_cam1.R
                self._adj.setdefault(i, set()).add(j)
                self._adj.setdefault(j, set()).add(i)
        self._cache: dict[tuple[int, int], bool] = {}
        self._tree: dict[int, list[int]] | None = None
        self._ratio: dict[tuple[int, int], float] = {}
        self._parents: dict[int, dict[int, int]] = {}

    def _rot(self, a: int, b: int) -> np.ndarray:
        """cam_b_from_cam_a rotation of a pair with a pose."""
        return self._R[(a, b)] if a < b else self._R[(b, a)].T

    def _inliers(self, a: int, b: int) -> int:
        return self._n[(min(a, b), max(a, b))]

    def _judged(self, key: tuple[int, int], R: np.ndarray | None) -> np.ndarray | None:
        return self._R.get(key) if R is None else np.asarray(R, dtype=np.float64)

    def _triangles(self, key: tuple[int, int], Rk: np.ndarray):
        """Third images k of the triangles through pair ``key`` (rotation ``Rk``), whether each
        closes, and its weight (the inliers of its weaker other leg)."""
        a, b = key
        ks = sorted(self._adj.get(a, set()) & self._adj.get(b, set()))
        if not ks:
            return ks, np.zeros(0, bool), np.zeros(0)
        composed = np.array([self._rot(k, b) @ self._rot(a, k) for k in ks])
        close = rotation_error_deg(composed, np.broadcast_to(Rk, composed.shape)) <= MAX_TRIANGLE_ERROR_DEG
        w = np.array([min(self._inliers(a, k), self._inliers(k, b)) for k in ks], dtype=np.float64)
        return ks, close, w

    def _closing_ratio(self, key: tuple[int, int]) -> float:
        """Share of the weight of a verified pair's triangles that close (0.5 without any)."""
        if key not in self._ratio:
            _, close, w = self._triangles(key, self._R[key])
            self._ratio[key] = float(w[close].sum() / w.sum()) if w.sum() > 0 else 0.5
        return self._ratio[key]

    def support(self, i: int, j: int, R: np.ndarray | None = None) -> tuple[float, float]:
        """(weight of the triangles through (i, j) that close, weight of those that do not and
        blame it); zeros when the pair has no rotation to judge or no triangle. A triangle that
        does not close has a wrong leg: the one whose own triangles close least (by weight),
        the weakest of those equally doubtful."""
        key = (min(i, j), max(i, j))
        Rk = self._judged(key, R)
        if Rk is None:
            return 0.0, 0.0
        ks, close, w = self._triangles(key, Rk)
        if not len(ks):
            return 0.0, 0.0
        own = (float(w[close].sum() / w.sum()), self._n[key])
        a, b = key
        blamed = np.array([not c and own <= min((self._closing_ratio(leg), self._n[leg])
                                                for leg in ((min(a, k), max(a, k)), (min(k, b), max(k, b))))
                           for k, c in zip(ks, close)], dtype=bool)
        return float(w[close].sum()), float(w[blamed].sum())

    def tree_disagreement(self, i: int, j: int, R: np.ndarray | None = None) -> tuple[float, float]:
        """(rotation difference in degrees, weakest inliers along the path) between the pair's
        rotation and the one composed along the path from i to j in the maximum spanning tree of
        the pairs (by inliers: the strongest evidence); (0, 0) when the pair is a tree edge, has no
        rotation to judge, or its ends are not connected within ``MAX_TREE_PATH`` edges."""
        key = (min(i, j), max(i, j))
        Rk = self._judged(key, R)
        if Rk is None:
            return 0.0, 0.0
        parent = self._tree_parents(key[0])
        path = [key[1]]
        while path[-1] != key[0] and len(path) <= MAX_TREE_PATH + 1:
            p = parent.get(path[-1])
            if p is None:
                return 0.0, 0.0
            path.append(p)
        if len(path) <= 2 or path[-1] != key[0]:
            return 0.0, 0.0
        path = path[::-1]  # key[0] ... key[1]
        Rc = np.eye(3)
        for a, b in zip(path[:-1], path[1:]):
            Rc = self._rot(a, b) @ Rc
        weakest = min(self._inliers(a, b) for a, b in zip(path[:-1], path[1:]))
        return float(rotation_error_deg(Rc, Rk)), float(weakest)

    def _tree_parents(self, root: int) -> dict[int, int]:
        """Parent of each image on its tree path to ``root`` (breadth-first, cached per root)."""
        if self._tree is None:
            # of the pairs whose triangles do not blame them: a strong wrong pair must not carry
            # the chain that judges the others
            self._tree = _max_spanning_tree({k: self._n[k] for k in self._R}, self._triangles_accept)
        if root not in self._parents:
            parent, frontier = {root: root}, [root]
            while frontier:
                nxt = []
                for a in frontier:
                    for b in self._tree.get(a, ()):
                        if b not in parent:
                            parent[b] = a
                            nxt.append(b)
                frontier = nxt
            self._parents[root] = parent
        return self._parents[root]

    def _triangles_accept(self, key: tuple[int, int]) -> bool:
        agree, disagree = self.support(*key)
        return disagree <= agree

    def contradicted(self, i: int, j: int, R: np.ndarray | None = None) -> bool:
        """Whether more triangle weight contradicts the pair's rotation (the verified one, or
        ``R``: cam_j_from_cam_i for i < j) than confirms it, or the strongest pairs' chain between
        its images (a short path of the maximum spanning tree, every pair on it stronger than
        this one) turns by more than ``MAX_TRIANGLE_ERROR_DEG`` otherwise. An ``R`` that differs
        from the verified rotation by more than that is contradicted when fewer triangles close
        with it than with the verified one."""
        key = (min(i, j), max(i, j))
        if R is None and key in self._cache:
            return self._cache[key]
        agree, disagree = self.support(i, j, R)
        if R is not None and key in self._R and rotation_error_deg(R, self._R[key]) > MAX_TRIANGLE_ERROR_DEG:
            # two candidates for one pair (e.g. a plane's two decompositions): the triangles choose
            if agree < self.support(i, j)[0]:
                return True
        err, weakest = self.tree_disagreement(i, j, R)
        out = disagree > agree or (err > MAX_TRIANGLE_ERROR_DEG and weakest >= self._inliers(*key))
        if R is None:
            self._cache[key] = out
        return out


def _max_spanning_tree(inliers: dict[tuple[int, int], int], usable) -> dict[int, list[int]]:
    """Adjacency of the maximum spanning forest of the pairs weighted by inliers (Kruskal), of
    the pairs for which ``usable(pair)`` holds (asked only of pairs that would join the tree)."""
    root: dict[int, int] = {}

    def find(a: int) -> int:
        while root.setdefault(a, a) != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    adj: dict[int, list[int]] = {}
    for (a, b), _ in sorted(inliers.items(), key=lambda kv: (-kv[1], kv[0])):
        ra, rb = find(a), find(b)
        if ra != rb and usable((a, b)):
            root[ra] = rb
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
    return adj
