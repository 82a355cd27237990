"""Synthetic pose graphs with exact ground truth: a robot walking a grid world (2-D or 3-D).

:func:`grid_world_pose_graph` walks ``num_nodes`` poses along a grid (unit steps, turns of 90
degrees; in 3-D also climbs), measures odometry between consecutive poses and loop closures
between poses that come back within ``loop_radius`` of an earlier one, adds Gaussian noise and
optionally wrong loop edges. Node poses in the returned graph are the odometry chained from the
first (as g2o files ship them); the truth is returned beside it. Sim(3) graphs also drift in
scale along the walk (as a monocular camera's map does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.spatial

from .._validation import RngLike, as_rng
from ..geometry.rigid import Rigid3
from ..geometry.rigid2 import Rigid2, rot2
from ..geometry.rotation import so3_exp
from ..geometry.sim3 import Sim3
from ..scene.pose_graph import KINDS, PoseGraph


@dataclass
class SyntheticPoseGraph:
    """A noisy graph (node poses = chained odometry), its true node poses, and which edges are
    injected outliers."""

    graph: PoseGraph
    truth: dict[int, Rigid3 | Rigid2 | Sim3]
    outlier_edges: np.ndarray  # (K,) edge indices

    def truth_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, t, scale) of the truth in ``graph.nodes`` order."""
        g = PoseGraph(dict(self.truth), kind=self.graph.kind)
        _, R, t = g.node_arrays()
        return R, t, g.node_scales()


def _walk(num_nodes: int, dim: int, gen: np.random.Generator, turn_prob: float):
    """Grid walk: headings (N,) in multiples of 90 deg, positions (N, dim) (3-D: z steps too)."""
    heading = np.zeros(num_nodes)
    pos = np.zeros((num_nodes, dim))
    h = 0.0
    p = np.zeros(dim)
    for k in range(1, num_nodes):
        u = gen.random()
        if u < turn_prob:
            h += np.pi / 2 * (1 if gen.random() < 0.5 else -1)
        step = np.zeros(dim)
        if dim == 3 and gen.random() < 0.1:
            step[2] = 1.0 if gen.random() < 0.5 else -1.0
        else:
            step[0], step[1] = np.cos(h), np.sin(h)
        p = p + np.round(step)
        heading[k] = h
        pos[k] = p
    return heading, pos


def grid_world_pose_graph(kind: str = "se3", num_nodes: int = 1000, *, rng: RngLike = None, turn_prob: float = 0.3,
                          loop_radius: float = 1.01, max_loops_per_node: int = 2, min_index_gap: int = 10,
                          sigma_t: float = 0.05, sigma_r_deg: float = 1.0, sigma_log_scale: float = 0.01,
                          scale_drift: float = 0.01, num_outliers: int = 0, noise_scale: float = 1.0
                          ) -> SyntheticPoseGraph:
    """A grid-world pose graph (module docstring). Noise: translation ``sigma_t`` (grid units),
    rotation ``sigma_r_deg`` (per axis), log-scale ``sigma_log_scale`` (Sim(3)); the information
    matrices are the inverse noise covariances; ``noise_scale`` scales the noise actually added
    (0: exact measurements, information unchanged). ``num_outliers`` wrong loop edges join random
    far-apart nodes with a random measurement (their indices in ``outlier_edges``)."""
    d, m, _ = KINDS[kind] if kind in KINDS else (None, None, None)
    if d is None:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if num_nodes < 2:
        raise ValueError(f"num_nodes must be >= 2, got {num_nodes}")
    gen = as_rng(rng)
    heading, pos = _walk(num_nodes, m, gen, turn_prob)
    # true poses: world_from_node; in 3-D yaw about z
    if m == 2:
        R = rot2(heading)
    else:
        R = so3_exp(np.stack([np.zeros(num_nodes), np.zeros(num_nodes), heading], 1)).reshape(-1, 3, 3)
    t = pos.astype(np.float64)
    s = np.exp(np.cumsum(gen.normal(scale=scale_drift, size=num_nodes))) if kind == "sim3" else np.ones(num_nodes)
    if kind == "sim3":
        s /= s[0]
    # edges: odometry, then loops between nearby far-in-index nodes
    ii = [np.arange(num_nodes - 1)]
    jj = [np.arange(1, num_nodes)]
    tree = scipy.spatial.cKDTree(pos)
    pairs = tree.query_pairs(loop_radius, output_type="ndarray")
    if len(pairs):
        pairs = np.sort(pairs, axis=1)
        pairs = pairs[pairs[:, 1] - pairs[:, 0] >= min_index_gap]
        pairs = pairs[gen.permutation(len(pairs))]
        count = np.zeros(num_nodes, np.int64)
        keep = []
        for a, b in pairs.tolist():
            if count[b] < max_loops_per_node:
                keep.append((a, b))
                count[b] += 1
        if keep:
            keep = np.array(sorted(keep))
            ii.append(keep[:, 0])
            jj.append(keep[:, 1])
    i_idx = np.concatenate(ii)
    j_idx = np.concatenate(jj)
    E = len(i_idx)
    # exact measurements i_from_j = T_i^-1 T_j
    RiT = np.swapaxes(R[i_idx], 1, 2)
    Rm = RiT @ R[j_idx]
    tm = np.einsum("eab,eb->ea", RiT, t[j_idx] - t[i_idx]) / s[i_idx, None]
    sm = s[j_idx] / s[i_idx]
    # noise on the right: Z <- Z (+) noise
    sig_r = np.radians(sigma_r_deg)
    if m == 2:
        dth = gen.normal(scale=sig_r, size=E) * noise_scale
        dt = gen.normal(scale=sigma_t, size=(E, 2)) * noise_scale
        tm = tm + np.einsum("eab,eb->ea", Rm, dt)
        Rm = Rm @ rot2(dth)
        info = np.broadcast_to(np.diag([1 / sigma_t**2] * 2 + [1 / sig_r**2]), (E, 3, 3)).copy()
    else:
        dw = gen.normal(scale=sig_r, size=(E, 3)) * noise_scale
        dt = gen.normal(scale=sigma_t, size=(E, 3)) * noise_scale
        tm = tm + np.einsum("eab,eb->ea", Rm, dt)
        Rm = Rm @ so3_exp(dw).reshape(-1, 3, 3)
        diag = [1 / sigma_t**2] * 3 + [1 / sig_r**2] * 3
        if kind == "sim3":
            sm = sm * np.exp(gen.normal(scale=sigma_log_scale, size=E) * noise_scale)
            diag.append(1 / sigma_log_scale**2)
        info = np.broadcast_to(np.diag(diag), (E, d, d)).copy()
    outliers = np.zeros(0, np.int64)
    if num_outliers:
        a = gen.integers(0, num_nodes, size=4 * num_outliers)
        b = gen.integers(0, num_nodes, size=4 * num_outliers)
        ok = np.abs(a - b) > min_index_gap
        a, b = a[ok][:num_outliers], b[ok][:num_outliers]
        k = len(a)
        if m == 2:
            Ro = rot2(gen.uniform(-np.pi, np.pi, size=k))
            to = gen.uniform(-5, 5, size=(k, 2))
        else:
            Ro = so3_exp(gen.normal(size=(k, 3))).reshape(-1, 3, 3)
            to = gen.uniform(-5, 5, size=(k, 3))
        outliers = np.arange(E, E + k)
        i_idx, j_idx = np.concatenate([i_idx, a]), np.concatenate([j_idx, b])
        Rm, tm = np.concatenate([Rm, Ro]), np.concatenate([tm, to])
        sm = np.concatenate([sm, np.ones(k)])
        info = np.concatenate([info, info[:k]])
    # node estimates: the noisy odometry chained from the true first pose
    Rc, tc, sc = R.copy(), t.copy(), s.copy()
    for k in range(1, num_nodes):  # odometry edge k-1 links k-1 -> k
        Rc[k] = Rc[k - 1] @ Rm[k - 1]
        tc[k] = tc[k - 1] + sc[k - 1] * (Rc[k - 1] @ tm[k - 1])
        sc[k] = sc[k - 1] * sm[k - 1]
    graph = PoseGraph(kind=kind, i_ids=i_idx, j_ids=j_idx, i_from_j_R=Rm, i_from_j_t=tm, information=info,
                      i_from_j_scale=sm)
    truth_graph = PoseGraph(kind=kind)
    ids = np.arange(num_nodes)
    graph.nodes = {k: None for k in range(num_nodes)}
    truth_graph.nodes = {k: None for k in range(num_nodes)}
    graph.set_node_arrays(ids, Rc, tc, sc)
    truth_graph.set_node_arrays(ids, R, t, s)
    return SyntheticPoseGraph(graph, truth_graph.nodes, outliers)
