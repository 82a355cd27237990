"""Pose graphs over SE(3), SE(2) or Sim(3): node poses ``world_from_node`` and relative-pose edges.

``kind`` says which group the graph lives in; nodes are :class:`Rigid3`, :class:`Rigid2` or
:class:`Sim3` accordingly. Edge ``k`` links nodes ``i_ids[k]`` and ``j_ids[k]`` with the
measurement ``i_from_j`` (the pose of node j in the frame of node i: ``i_from_j = T_i^-1 T_j``
when the node poses ``T = world_from_node`` agree with it), stored as ``i_from_j_R[k]`` ((3,3),
or (2,2) in SE(2)), ``i_from_j_t[k]`` ((3,) or (2,)), ``i_from_j_scale[k]`` (Sim(3) only, else 1)
and a ``d x d`` information matrix ``information[k]`` on the error (d = 6, 3, 7).

The error of edge k is what is left of the relative pose after removing the measurement,

    D_k = i_from_j_k^-1 @ T_i^-1 @ T_j
    SE(3):  e_k = [t(D), rotvec(R(D))]                    (6,)  translation first, as in g2o
    SE(2):  e_k = [t(D), wrap(theta(D))]                  (3,)  g2o's EdgeSE2 error exactly
    Sim(3): e_k = [t(D), rotvec(R(D)), log scale(D)]      (7,)

and geomvision's cost is ``chi2 = sum_k e_k^T information_k e_k``. The SE(3) error is the
SO(3) x R^3 error of Ceres' ``pose_graph_3d``; GTSAM's ``BetweenFactor<Pose3>`` uses the full
SE(3) logarithm (the same to first order) and g2o's ``EdgeSE3`` the quaternion vector part of
R(D), about half the rotation vector: :meth:`PoseGraph.g2o_chi2` gives that cost too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry.rigid import Rigid3
from ..geometry.rigid2 import Rigid2, rot2
from ..geometry.rotation import quat_wxyz_from_rotmat, so3_log
from ..geometry.sim3 import Sim3

#: group name -> (dimension of the error / tangent space, space dimension, node type)
KINDS: dict[str, tuple[int, int, type]] = {"se3": (6, 3, Rigid3), "se2": (3, 2, Rigid2), "sim3": (7, 3, Sim3)}


def _kind_info(kind: str) -> tuple[int, int, type]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return KINDS[kind]


@dataclass
class PoseGraph:
    """Nodes ``world_from_node`` by id, edges as parallel arrays (see module docstring).

    ``poses_given`` is False when the node poses are placeholders (a g2o file without VERTEX
    lines): optimisers then initialise them from the edges."""

    nodes: dict[int, Rigid3 | Rigid2 | Sim3] = field(default_factory=dict)
    i_ids: np.ndarray | None = None  # (E,) int64
    j_ids: np.ndarray | None = None  # (E,) int64
    i_from_j_R: np.ndarray | None = None  # (E,3,3) or (E,2,2)
    i_from_j_t: np.ndarray | None = None  # (E,3) or (E,2)
    information: np.ndarray | None = None  # (E,d,d)
    fixed: set[int] = field(default_factory=set)
    kind: str = "se3"
    i_from_j_scale: np.ndarray | None = None  # (E,), Sim(3) only (ones otherwise)
    poses_given: bool = True

    def __post_init__(self) -> None:
        d, m, _ = _kind_info(self.kind)
        self.i_ids = np.zeros(0, np.int64) if self.i_ids is None else np.asarray(self.i_ids, np.int64).reshape(-1)
        self.j_ids = np.zeros(0, np.int64) if self.j_ids is None else np.asarray(self.j_ids, np.int64).reshape(-1)
        E = len(self.i_ids)
        self.i_from_j_R = (np.zeros((0, m, m)) if self.i_from_j_R is None
                           else np.asarray(self.i_from_j_R, dtype=np.float64))
        self.i_from_j_t = np.zeros((0, m)) if self.i_from_j_t is None else np.asarray(self.i_from_j_t, np.float64)
        self.information = (np.zeros((0, d, d)) if self.information is None
                            else np.asarray(self.information, dtype=np.float64))
        self.i_from_j_scale = (np.ones(E) if self.i_from_j_scale is None
                               else np.asarray(self.i_from_j_scale, dtype=np.float64).reshape(-1))
        self.fixed = {int(i) for i in self.fixed}

    # --- sizes and building -------------------------------------------------------------------
    @property
    def dof(self) -> int:
        """Dimension of the error and of a node's tangent space (6, 3 or 7)."""
        return KINDS[self.kind][0]

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.i_ids)

    def add_node(self, node_id: int, world_from_node: Rigid3 | Rigid2 | Sim3) -> None:
        node_type = KINDS[self.kind][2]
        if not isinstance(world_from_node, node_type):
            raise ValueError(f"world_from_node must be a {node_type.__name__} in a {self.kind} graph, "
                             f"got {type(world_from_node).__name__}")
        node_id = int(node_id)
        if node_id in self.nodes:
            raise ValueError(f"node_id {node_id} already exists")
        self.nodes[node_id] = world_from_node

    def add_edge(self, i: int, j: int, i_from_j: Rigid3 | Rigid2 | Sim3,
                 information: np.ndarray | None = None) -> int:
        """Append one edge (O(E) copy: build large graphs by passing the arrays to the
        constructor instead); ``information`` (d,d) defaults to the identity. Returns its index."""
        d, _, node_type = KINDS[self.kind]
        if not isinstance(i_from_j, node_type):
            raise ValueError(f"i_from_j must be a {node_type.__name__} in a {self.kind} graph, "
                             f"got {type(i_from_j).__name__}")
        for name, node in (("i", i), ("j", j)):
            if int(node) not in self.nodes:
                raise ValueError(f"{name}: node {node} does not exist; add_node it first")
        info = np.eye(d) if information is None else np.asarray(information, dtype=np.float64)
        if info.shape != (d, d):
            raise ValueError(f"information must have shape ({d}, {d}) in a {self.kind} graph, got {info.shape}")
        self.i_ids = np.append(self.i_ids, np.int64(i))
        self.j_ids = np.append(self.j_ids, np.int64(j))
        self.i_from_j_R = np.concatenate([self.i_from_j_R, i_from_j.R[None]])
        self.i_from_j_t = np.concatenate([self.i_from_j_t, i_from_j.t[None]])
        self.i_from_j_scale = np.append(self.i_from_j_scale, getattr(i_from_j, "scale", 1.0))
        self.information = np.concatenate([self.information, info[None]])
        return self.num_edges - 1

    def i_from_j(self, k: int) -> Rigid3 | Rigid2 | Sim3:
        """The measurement of edge ``k`` as a node-type transform."""
        if self.kind == "se2":
            R = self.i_from_j_R[k]
            return Rigid2(np.arctan2(R[1, 0], R[0, 0]), self.i_from_j_t[k])
        if self.kind == "sim3":
            return Sim3(self.i_from_j_scale[k], self.i_from_j_R[k], self.i_from_j_t[k], check=False)
        return Rigid3(self.i_from_j_R[k], self.i_from_j_t[k], check=False)

    def copy(self) -> PoseGraph:
        """A deep copy (node poses are values and shared)."""
        return PoseGraph(dict(self.nodes), self.i_ids.copy(), self.j_ids.copy(), self.i_from_j_R.copy(),
                         self.i_from_j_t.copy(), self.information.copy(), set(self.fixed), self.kind,
                         self.i_from_j_scale.copy(), self.poses_given)

    # --- node arrays --------------------------------------------------------------------------
    def node_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (N,), R (N,m,m), t (N,m)) of ``world_from_node``, in ``nodes`` order (m = 3, or 2 in SE(2))."""
        m = KINDS[self.kind][1]
        ids = np.fromiter(self.nodes, dtype=np.int64, count=len(self.nodes))
        poses = list(self.nodes.values())
        if self.kind == "se2":
            theta = np.fromiter((T.theta for T in poses), dtype=np.float64, count=len(poses))
            R = rot2(theta).reshape(-1, 2, 2)
        else:
            R = np.array([T.R for T in poses]).reshape(-1, m, m)
        t = np.array([T.t for T in poses]).reshape(-1, m)
        return ids, R, t

    def node_scales(self) -> np.ndarray:
        """Scales (N,) of the Sim(3) nodes in ``nodes`` order (ones in SE(3) / SE(2))."""
        if self.kind != "sim3":
            return np.ones(len(self.nodes))
        return np.fromiter((T.scale for T in self.nodes.values()), dtype=np.float64, count=len(self.nodes))

    def set_node_arrays(self, ids: np.ndarray, R: np.ndarray, t: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Replace the poses of existing nodes ``ids`` (N,) by ``world_from_node = (R, t[, scale])``."""
        m = KINDS[self.kind][1]
        ids = np.asarray(ids, dtype=np.int64).ravel()
        R = np.asarray(R, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if R.shape != (len(ids), m, m) or t.shape != (len(ids), m):
            raise ValueError(f"R must be ({len(ids)}, {m}, {m}) and t ({len(ids)}, {m}), got {R.shape} and {t.shape}")
        missing = [int(i) for i in ids if int(i) not in self.nodes]
        if missing:
            raise ValueError(f"ids: nodes {missing[:5]} do not exist")
        ids_list = ids.tolist()
        if self.kind == "se2":
            theta = np.arctan2(R[:, 1, 0], R[:, 0, 0]).tolist()
            for k, node_id in enumerate(ids_list):
                self.nodes[node_id] = Rigid2(theta[k], t[k])
        elif self.kind == "sim3":
            s = np.ones(len(ids)) if scale is None else np.asarray(scale, dtype=np.float64).reshape(len(ids))
            for k, node_id in enumerate(ids_list):
                self.nodes[node_id] = Sim3(s[k], R[k], t[k], check=False)
        else:
            for k, node_id in enumerate(ids_list):
                self.nodes[node_id] = Rigid3(R[k], t[k], check=False)

    def edge_node_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of each edge's i and j nodes in ``nodes`` order ((E,), (E,)); raises on a missing node."""
        ids = np.fromiter(self.nodes, dtype=np.int64, count=len(self.nodes))
        order = np.argsort(ids)
        sorted_ids = ids[order]

        def rows(query: np.ndarray, name: str) -> np.ndarray:
            pos = np.minimum(np.searchsorted(sorted_ids, query), max(len(ids) - 1, 0))
            ok = (sorted_ids[pos] == query) if len(ids) else np.zeros(len(query), bool)
            if not np.all(ok):
                raise ValueError(
                    f"edge {int(np.flatnonzero(~ok)[0])} refers to missing node {int(query[~ok][0])} ({name})"
                )
            return order[pos]

        return rows(self.i_ids, "i"), rows(self.j_ids, "j")

    # --- cost ---------------------------------------------------------------------------------
    def _residual_poses(self):
        """(R_D (E,m,m), t_D (E,m), s_D (E,)) of D_k = i_from_j_k^-1 T_i^-1 T_j."""
        ri, rj = self.edge_node_rows()
        _, R, t = self.node_arrays()
        s = self.node_scales()
        Ri, Rj, ti, tj, si, sj = R[ri], R[rj], t[ri], t[rj], s[ri], s[rj]
        RiT = np.swapaxes(Ri, 1, 2)
        R_est = RiT @ Rj  # i_from_j estimated = T_i^-1 T_j
        t_est = np.einsum("eab,eb->ea", RiT, tj - ti) / si[:, None]
        RmT = np.swapaxes(self.i_from_j_R, 1, 2)
        sm = self.i_from_j_scale
        R_D = RmT @ R_est
        t_D = np.einsum("eab,eb->ea", RmT, t_est - self.i_from_j_t) / sm[:, None]
        return R_D, t_D, sj / (si * sm)

    def edge_errors(self) -> np.ndarray:
        """Errors ``e_k`` (E,d) of all edges (module docstring)."""
        d = self.dof
        if self.num_edges == 0:
            return np.zeros((0, d))
        R_D, t_D, s_D = self._residual_poses()
        if self.kind == "se2":
            return np.concatenate([t_D, np.arctan2(R_D[:, 1, 0], R_D[:, 0, 0])[:, None]], axis=1)
        e = [t_D, so3_log(R_D)]
        if self.kind == "sim3":
            e.append(np.log(s_D)[:, None])
        return np.concatenate(e, axis=1)

    def edge_chi2(self) -> np.ndarray:
        """``e_k^T information_k e_k`` per edge (E,)."""
        e = self.edge_errors()
        return np.einsum("ea,eab,eb->e", e, self.information, e)

    def chi2(self) -> float:
        """geomvision's cost ``sum_k e_k^T information_k e_k``."""
        return float(self.edge_chi2().sum())

    def g2o_chi2(self) -> float:
        """The cost g2o reports for this graph: in SE(3) its error ``[t(D), qvec(D)]`` (quaternion
        vector part with w >= 0); in SE(2) and Sim(3) the same as :meth:`chi2`."""
        if self.kind != "se3" or self.num_edges == 0:
            return self.chi2()
        R_D, t_D, _ = self._residual_poses()
        e = np.concatenate([t_D, quat_wxyz_from_rotmat(R_D).reshape(-1, 4)[:, 1:]], axis=1)
        return float(np.einsum("ea,eab,eb->", e, self.information, e))

    # --- consistency --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``ValueError`` listing every problem: array shapes, edges or fixed ids naming
        missing nodes, self-loops, non-rotations, non-positive scales, non-symmetric or indefinite
        information."""
        problems: list[str] = []
        d, m, node_type = _kind_info(self.kind)
        E = len(self.i_ids)
        shapes = {
            "j_ids": (self.j_ids.shape, (E,)),
            "i_from_j_R": (self.i_from_j_R.shape, (E, m, m)),
            "i_from_j_t": (self.i_from_j_t.shape, (E, m)),
            "i_from_j_scale": (self.i_from_j_scale.shape, (E,)),
            "information": (self.information.shape, (E, d, d)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                problems.append(f"{name} has shape {got}, expected {want} for {E} edges of a {self.kind} graph")
        if problems:
            raise ValueError("invalid pose graph: " + "; ".join(problems))
        wrong = [node_id for node_id, T in self.nodes.items() if not isinstance(T, node_type)]
        if wrong:
            raise ValueError(f"invalid pose graph: nodes {wrong[:5]} are not {node_type.__name__} poses "
                             f"(a {self.kind} graph)")
        node_ids, R_nodes, t_nodes = self.node_arrays()
        s_nodes = self.node_scales()
        bad = np.flatnonzero(~np.isfinite(R_nodes).all(axis=(1, 2)) | ~np.isfinite(t_nodes).all(axis=1)
                             | ~(s_nodes > 0) | ~np.isfinite(s_nodes))
        if len(bad):
            problems.append(f"{len(bad)} nodes have a non-finite pose or a non-positive scale "
                            f"(first: node {node_ids[bad[0]]})")
        for name, ids in (("i", self.i_ids), ("j", self.j_ids)):
            bad = np.flatnonzero(~np.isin(ids, node_ids))
            if len(bad):
                problems.append(
                    f"{len(bad)} edges have a missing {name} node (first: edge {bad[0]}, node {ids[bad[0]]})"
                )
        loops = np.flatnonzero(self.i_ids == self.j_ids)
        if len(loops):
            problems.append(f"{len(loops)} edges link a node to itself (first: edge {loops[0]})")
        if E:
            R = self.i_from_j_R
            ortho = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(m)).max(axis=(1, 2))
            ok_scale = np.isfinite(self.i_from_j_scale) & (self.i_from_j_scale > 0)
            bad = np.flatnonzero(~(ortho < 1e-6) | ~(np.linalg.det(R) > 0) | ~np.isfinite(self.i_from_j_t).all(1)
                                 | ~ok_scale)
            if len(bad):
                what = "similarity" if self.kind == "sim3" else "rigid"
                problems.append(f"{len(bad)} edge measurements are not {what} transforms (first: edge {bad[0]})")
            info = self.information
            scale = np.abs(info).max(axis=(1, 2)) + 1e-300
            asym = np.abs(info - np.swapaxes(info, 1, 2)).max(axis=(1, 2)) / scale
            bad = np.flatnonzero(~(asym < 1e-9))
            if len(bad):
                problems.append(f"{len(bad)} information matrices are not symmetric (first: edge {bad[0]})")
            else:
                eig_min = np.linalg.eigvalsh(info).min(axis=1)
                bad = np.flatnonzero(eig_min < -1e-9 * scale)
                if len(bad):
                    problems.append(
                        f"{len(bad)} information matrices are not positive semi-definite (first: edge {bad[0]})"
                    )
        missing_fixed = sorted(set(self.fixed) - set(self.nodes))
        if missing_fixed:
            problems.append(f"fixed nodes {missing_fixed[:5]} do not exist")
        if problems:
            raise ValueError("invalid pose graph: " + "; ".join(problems))

    def __repr__(self) -> str:
        return (f"PoseGraph({self.kind}, {self.num_nodes} nodes, {self.num_edges} edges, "
                f"{len(self.fixed)} fixed)")

