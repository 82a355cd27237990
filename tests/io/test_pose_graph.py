"""PoseGraph (geomvision.scene.pose_graph): exact errors on constructed graphs, the vectorised cost
against a per-edge Rigid3 computation, and check()."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision import Rigid3
from geomvision.geometry.rotation import so3_exp, so3_log
from geomvision.scene.pose_graph import PoseGraph


def consistent_graph(rng: np.random.Generator, n: int = 30, n_loops: int = 20) -> PoseGraph:
    """Random node poses; odometry and random loop edges measured exactly (i_from_j = T_i^-1 T_j)."""
    graph = PoseGraph()
    ids = rng.permutation(1000)[:n]
    for node_id in ids:
        graph.add_node(int(node_id), Rigid3.random(rng, t_scale=5.0))
    pairs = [(ids[k], ids[k + 1]) for k in range(n - 1)]
    pairs += [tuple(rng.choice(ids, 2, replace=False)) for _ in range(n_loops)]
    for i, j in pairs:
        A = rng.normal(size=(6, 6))
        graph.add_edge(int(i), int(j), graph.nodes[int(i)].inverse() @ graph.nodes[int(j)], A @ A.T + np.eye(6))
    return graph


def test_consistent_graph_has_zero_cost(rng):
    graph = consistent_graph(rng)
    graph.check()
    np.testing.assert_allclose(graph.edge_errors(), 0.0, atol=1e-12)
    assert graph.chi2() < 1e-20


def test_error_is_translation_then_rotation_vector(rng):
    """Identity node i and measurement: e = [t_j, rotvec(R_j)] exactly."""
    w, t = np.array([0.1, -0.2, 0.05]), np.array([1.0, 2.0, -3.0])
    graph = PoseGraph()
    graph.add_node(0, Rigid3())
    graph.add_node(1, Rigid3(so3_exp(w), t))
    info = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    graph.add_edge(0, 1, Rigid3(), info)
    np.testing.assert_allclose(graph.edge_errors()[0], np.concatenate([t, w]), atol=1e-15)
    assert graph.chi2() == pytest.approx(np.concatenate([t, w]) @ info @ np.concatenate([t, w]), rel=1e-14)


def test_vectorised_cost_matches_per_edge_rigid3(rng):
    graph = consistent_graph(rng)
    for node_id in list(graph.nodes)[::3]:  # perturb a third of the nodes
        graph.nodes[node_id] = (
            Rigid3.from_rotvec(rng.normal(scale=0.1, size=3), rng.normal(size=3)) @ graph.nodes[node_id]
        )
    expected = []
    for k in range(graph.num_edges):
        Ti, Tj = graph.nodes[int(graph.i_ids[k])], graph.nodes[int(graph.j_ids[k])]
        D = graph.i_from_j(k).inverse() @ Ti.inverse() @ Tj
        e = np.concatenate([D.t, so3_log(D.R)])
        expected.append(e @ graph.information[k] @ e)
    np.testing.assert_allclose(graph.edge_chi2(), expected, rtol=1e-10, atol=1e-12)
    assert graph.chi2() == pytest.approx(sum(expected), rel=1e-12)
    assert graph.chi2() > 1.0


def test_node_arrays_round_trip(rng):
    graph = consistent_graph(rng, n=5, n_loops=0)
    ids, R, t = graph.node_arrays()
    assert ids.tolist() == list(graph.nodes)
    graph.set_node_arrays(ids[::-1], R[::-1], t[::-1] + 1.0)
    np.testing.assert_array_equal(graph.nodes[int(ids[0])].t, t[0] + 1.0)
    with pytest.raises(ValueError, match="do not exist"):
        graph.set_node_arrays([12345], R[:1], t[:1])


def test_check_lists_every_problem(rng):
    graph = consistent_graph(rng, n=6, n_loops=0)
    graph.information[0, 0, 1] += 1.0  # not symmetric
    graph.i_from_j_R[1] *= 2.0  # not a rotation
    graph.j_ids[2] = 777_777  # missing node
    graph.i_ids[3] = graph.j_ids[3]  # self loop
    graph.fixed = {999_999}
    with pytest.raises(ValueError) as info:
        graph.check()
    msg = str(info.value)
    for part in ("not symmetric", "not rigid transforms", "missing j node (first: edge 2, node 777777)",
                 "link a node to itself", "fixed nodes [999999] do not exist"):  # fmt: skip
        assert part in msg, msg


def test_indefinite_information_is_rejected(rng):
    graph = consistent_graph(rng, n=3, n_loops=0)
    graph.information[1] = np.diag([1.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="not positive semi-definite .first: edge 1"):
        graph.check()


def test_add_edge_validates():
    graph = PoseGraph()
    graph.add_node(0, Rigid3())
    with pytest.raises(ValueError, match="node 5 does not exist"):
        graph.add_edge(0, 5, Rigid3())
    with pytest.raises(ValueError, match="already exists"):
        graph.add_node(0, Rigid3())
