"""A 3-D pose graph: node poses ``world_from_node`` and relative-pose edges with information.

Edge ``k`` links nodes ``i_ids[k]`` and ``j_ids[k]`` with the measurement
``i_from_j`` (the pose of node j in the frame of node i: ``i_from_j = T_i^-1 T_j`` when the
node poses ``T = world_from_node`` agree with it), stored as ``i_from_j_R[k]`` (3,3) and
``i_from_j_t[k]`` (3,), and a 6x6 information matrix ``information[k]`` on the error
``[translation, rotation]`` (translation first, as in g2o files).

The error of edge k is the relative pose left over after removing the measurement,

    D_k = i_from_j_k^-1 @ T_i^-1 @ T_j,        e_k = [t(D_k), log_SO3(R(D_k))]   (6,)

(translation of D and its rotation vector: the SO(3) x R^3 error of Ceres' ``pose_graph_3d``;
g2o's EdgeSE3 uses the quaternion vector part, about half the rotation vector, instead), and the
cost is ``chi2 = sum_k e_k^T information_k e_k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry.rigid import Rigid3
from ..geometry.rotation import so3_log


def _empty_edges() -> dict:
    return {
        "i_ids": np.zeros(0, dtype=np.int64),
        "j_ids": np.zeros(0, dtype=np.int64),
        "i_from_j_R": np.zeros((0, 3, 3)),
        "i_from_j_t": np.zeros((0, 3)),
        "information": np.zeros((0, 6, 6)),
    }


@dataclass
class PoseGraph:
    """Nodes ``world_from_node`` by id, edges as parallel arrays (see module docstring)."""

    nodes: dict[int, Rigid3] = field(default_factory=dict)
    i_ids: np.ndarray = field(default_factory=lambda: _empty_edges()["i_ids"])  # (E,) int64
    j_ids: np.ndarray = field(default_factory=lambda: _empty_edges()["j_ids"])  # (E,) int64
    i_from_j_R: np.ndarray = field(default_factory=lambda: _empty_edges()["i_from_j_R"])  # (E,3,3)
    i_from_j_t: np.ndarray = field(default_factory=lambda: _empty_edges()["i_from_j_t"])  # (E,3)
    information: np.ndarray = field(default_factory=lambda: _empty_edges()["information"])  # (E,6,6)
    fixed: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.i_ids = np.asarray(self.i_ids, dtype=np.int64).reshape(-1)
        self.j_ids = np.asarray(self.j_ids, dtype=np.int64).reshape(-1)
        self.i_from_j_R = np.asarray(self.i_from_j_R, dtype=np.float64)
        self.i_from_j_t = np.asarray(self.i_from_j_t, dtype=np.float64)
        self.information = np.asarray(self.information, dtype=np.float64)
        self.fixed = {int(i) for i in self.fixed}

    # --- sizes and building -------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.i_ids)

    def add_node(self, node_id: int, world_from_node: Rigid3) -> None:
        if not isinstance(world_from_node, Rigid3):
            raise ValueError(f"world_from_node must be a Rigid3, got {type(world_from_node).__name__}")
        node_id = int(node_id)
        if node_id in self.nodes:
            raise ValueError(f"node_id {node_id} already exists")
        self.nodes[node_id] = world_from_node

    def add_edge(self, i: int, j: int, i_from_j: Rigid3, information: np.ndarray | None = None) -> int:
        """Append one edge (O(E) copy: build large graphs by passing the arrays to the
        constructor instead); ``information`` (6,6) defaults to the identity. Returns its index."""
        if not isinstance(i_from_j, Rigid3):
            raise ValueError(f"i_from_j must be a Rigid3, got {type(i_from_j).__name__}")
        for name, node in (("i", i), ("j", j)):
            if int(node) not in self.nodes:
                raise ValueError(f"{name}: node {node} does not exist; add_node it first")
        info = np.eye(6) if information is None else np.asarray(information, dtype=np.float64)
        if info.shape != (6, 6):
            raise ValueError(f"information must have shape (6, 6), got {info.shape}")
        self.i_ids = np.append(self.i_ids, np.int64(i))
        self.j_ids = np.append(self.j_ids, np.int64(j))
        self.i_from_j_R = np.concatenate([self.i_from_j_R, i_from_j.R[None]])
        self.i_from_j_t = np.concatenate([self.i_from_j_t, i_from_j.t[None]])
        self.information = np.concatenate([self.information, info[None]])
        return self.num_edges - 1

    def i_from_j(self, k: int) -> Rigid3:
        """The measurement of edge ``k`` as a Rigid3."""
        return Rigid3(self.i_from_j_R[k], self.i_from_j_t[k], check=False)

    # --- node arrays --------------------------------------------------------------------------
    def node_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (N,), R (N,3,3), t (N,3)) of ``world_from_node``, in ``nodes`` order."""
        ids = np.fromiter(self.nodes, dtype=np.int64, count=len(self.nodes))
        poses = list(self.nodes.values())
        R = np.array([T.R for T in poses]).reshape(-1, 3, 3)
        t = np.array([T.t for T in poses]).reshape(-1, 3)
        return ids, R, t

    def set_node_arrays(self, ids: np.ndarray, R: np.ndarray, t: np.ndarray) -> None:
        """Replace the poses of existing nodes ``ids`` (N,) by ``world_from_node = (R (N,3,3), t (N,3))``."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        R = np.asarray(R, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if R.shape != (len(ids), 3, 3) or t.shape != (len(ids), 3):
            raise ValueError(f"R must be ({len(ids)}, 3, 3) and t ({len(ids)}, 3), got {R.shape} and {t.shape}")
        missing = [int(i) for i in ids if int(i) not in self.nodes]
        if missing:
            raise ValueError(f"ids: nodes {missing[:5]} do not exist")
        for k, node_id in enumerate(ids.tolist()):
            self.nodes[node_id] = Rigid3(R[k], t[k], check=False)

    def _edge_node_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ids, R, t = self.node_arrays()
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

        return rows(self.i_ids, "i"), rows(self.j_ids, "j"), R, t

    # --- cost ---------------------------------------------------------------------------------
    def edge_errors(self) -> np.ndarray:
        """Errors ``e_k = [t(D_k), rotvec(D_k)]`` (E,6) of all edges (module docstring)."""
        if self.num_edges == 0:
            return np.zeros((0, 6))
        ri, rj, R, t = self._edge_node_rows()
        Ri, Rj, ti, tj = R[ri], R[rj], t[ri], t[rj]
        RiT = np.swapaxes(Ri, 1, 2)
        R_est = RiT @ Rj  # i_from_j estimated = T_i^-1 T_j
        t_est = np.einsum("eab,eb->ea", RiT, tj - ti)
        RmT = np.swapaxes(self.i_from_j_R, 1, 2)
        R_D = RmT @ R_est
        t_D = np.einsum("eab,eb->ea", RmT, t_est - self.i_from_j_t)
        return np.concatenate([t_D, so3_log(R_D)], axis=1)

    def edge_chi2(self) -> np.ndarray:
        """``e_k^T information_k e_k`` per edge (E,)."""
        e = self.edge_errors()
        return np.einsum("ea,eab,eb->e", e, self.information, e)

    def chi2(self) -> float:
        """Total cost ``sum_k e_k^T information_k e_k``."""
        return float(self.edge_chi2().sum())

    # --- consistency --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``ValueError`` listing every problem: array shapes, edges or fixed ids naming
        missing nodes, self-loops, non-rotations, non-symmetric or indefinite information."""
        problems: list[str] = []
        E = len(self.i_ids)
        shapes = {
            "j_ids": (self.j_ids.shape, (E,)),
            "i_from_j_R": (self.i_from_j_R.shape, (E, 3, 3)),
            "i_from_j_t": (self.i_from_j_t.shape, (E, 3)),
            "information": (self.information.shape, (E, 6, 6)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                problems.append(f"{name} has shape {got}, expected {want} for {E} edges")
        if problems:
            raise ValueError("invalid pose graph: " + "; ".join(problems))
        not_rigid = [node_id for node_id, T in self.nodes.items() if not isinstance(T, Rigid3)]
        if not_rigid:
            raise ValueError(f"invalid pose graph: nodes {not_rigid[:5]} are not Rigid3 poses")
        node_ids, R_nodes, t_nodes = self.node_arrays()
        bad = np.flatnonzero(~np.isfinite(R_nodes).all(axis=(1, 2)) | ~np.isfinite(t_nodes).all(axis=1))
        if len(bad):
            problems.append(f"{len(bad)} nodes have a non-finite pose (first: node {node_ids[bad[0]]})")
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
            ortho = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max(axis=(1, 2))
            bad = np.flatnonzero(~(ortho < 1e-6) | ~(np.linalg.det(R) > 0) | ~np.isfinite(self.i_from_j_t).all(1))
            if len(bad):
                problems.append(f"{len(bad)} edge measurements are not rigid transforms (first: edge {bad[0]})")
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
        return f"PoseGraph({self.num_nodes} nodes, {self.num_edges} edges, {len(self.fixed)} fixed)"
