"""Pose-graph optimisation (geomvision.optim.pose_graph): Jacobians against finite differences for
every edge type, exact recovery of noise-free graphs from perturbed starts, the chordal start,
robust losses against wrong loop edges, the gauge, and option checks."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rigid2 import Rigid2
from geomvision.geometry.rotation import random_rotation, rotation_error_deg, so3_exp
from geomvision.geometry.sim3 import Sim3
from geomvision.optim import _pose_graph_kernels as pk
from geomvision.optim.pose_graph import PoseGraphOptions, optimize_pose_graph
from geomvision.optim.pose_graph_init import chordal_initialization
from geomvision.scene.pose_graph import PoseGraph
from geomvision.synthetic.pose_graphs import grid_world_pose_graph

KIND_IDS = {"se3": pk.SE3, "se2": pk.SE2, "sim3": pk.SIM3}
DOF = {"se3": 6, "se2": 3, "sim3": 7}


def _random_state(rng, kind, n=2):
    m = 2 if kind == "se2" else 3
    if m == 2:
        th = rng.uniform(-np.pi, np.pi, size=n)
        R = np.stack([np.stack([np.cos(th), -np.sin(th)], -1), np.stack([np.sin(th), np.cos(th)], -1)], -2)
    else:
        R = random_rotation(rng, n)
    t = rng.normal(scale=2.0, size=(n, m))
    s = np.exp(rng.normal(scale=0.3, size=n)) if kind == "sim3" else np.ones(n)
    return R, t, s


@pytest.mark.parametrize("kind", ["se3", "se2", "sim3"])
def test_edge_jacobians_match_finite_differences(rng, kind):
    d = DOF[kind]
    for _ in range(5):
        R, t, s = _random_state(rng, kind, 2)
        Rz, tz, sz = _random_state(rng, kind, 1)
        e = np.empty(d)
        Ai, Aj = np.empty((d, d)), np.empty((d, d))
        pk.edge_error_jacobians(KIND_IDS[kind], R, t, s, 0, 1, Rz[0], tz[0], sz[0], e, Ai, Aj, True)
        free_row = np.array([0, 1])
        eps = 1e-6
        num = np.zeros((d, 2 * d))
        for c in range(2 * d):
            vals = []
            for sign in (1.0, -1.0):
                h = np.zeros(2 * d)
                h[c] = sign * eps
                R2, t2, s2 = R.copy(), t.copy(), s.copy()
                pk.retract(KIND_IDS[kind], R, t, s, free_row, h, R2, t2, s2)
                e2 = np.empty(d)
                pk.edge_error_jacobians(KIND_IDS[kind], R2, t2, s2, 0, 1, Rz[0], tz[0], sz[0], e2, Ai.copy(),
                                        Aj.copy(), False)
                vals.append(e2)
            num[:, c] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(np.hstack([Ai, Aj]), num, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", ["se3", "se2", "sim3"])
def test_kernel_error_equals_pose_graph_error(rng, kind):
    """The numba error of each edge is PoseGraph.edge_errors (the documented definition)."""
    sg = grid_world_pose_graph(kind, 60, rng=rng, sigma_r_deg=5.0, sigma_t=0.2)
    graph = sg.graph
    ids, R, t = graph.node_arrays()
    s = graph.node_scales()
    ri, rj = graph.edge_node_rows()
    d = DOF[kind]
    e = np.empty(d)
    A = np.empty((d, d))
    for k in range(graph.num_edges):
        pk.edge_error_jacobians(KIND_IDS[kind], R, t, s, ri[k], rj[k], graph.i_from_j_R[k], graph.i_from_j_t[k],
                                graph.i_from_j_scale[k], e, A, A.copy(), False)
        np.testing.assert_allclose(e, graph.edge_errors()[k], atol=1e-10)


def _position_error(graph: PoseGraph, truth) -> float:
    return max(float(np.abs(graph.nodes[k].t - truth[k].t).max()) for k in truth)


@pytest.mark.parametrize("kind", ["se3", "se2", "sim3"])
@pytest.mark.parametrize("init", ["file", "chordal"])
def test_noise_free_graph_is_recovered_exactly(rng, kind, init):
    sg = grid_world_pose_graph(kind, 300, rng=rng, noise_scale=0.0)
    graph = sg.graph.copy()
    # perturb every node but the first (the gauge) well away from the truth
    ids, R, t = graph.node_arrays()
    s = graph.node_scales()
    m = t.shape[1]
    if m == 3:
        R[1:] = R[1:] @ so3_exp(rng.normal(scale=0.1, size=(len(ids) - 1, 3)))
    else:
        a = rng.normal(scale=0.1, size=len(ids) - 1)
        R[1:] = R[1:] @ np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)], -2)
    t[1:] += rng.normal(scale=0.3, size=(len(ids) - 1, m))
    s[1:] *= np.exp(rng.normal(scale=0.05, size=len(ids) - 1)) if kind == "sim3" else 1.0
    graph.set_node_arrays(ids, R, t, s)
    assert _position_error(graph, sg.truth) > 0.1
    out, report = optimize_pose_graph(graph, PoseGraphOptions(init=init))
    assert report.converged and report.init == init
    assert report.final_chi2 < 1e-12 * graph.num_edges
    assert _position_error(out, sg.truth) < 1e-7
    for k in sg.truth:
        if kind == "se2":
            assert abs(out.nodes[k].theta - sg.truth[k].theta) < 1e-8 or abs(
                abs(out.nodes[k].theta - sg.truth[k].theta) - 2 * np.pi) < 1e-8
        else:
            assert rotation_error_deg(out.nodes[k].R, sg.truth[k].R) < 1e-6
        if kind == "sim3":
            assert out.nodes[k].scale == pytest.approx(sg.truth[k].scale, rel=1e-8)
    # the input graph is untouched
    assert _position_error(graph, sg.truth) > 0.1


@pytest.mark.parametrize("kind", ["se3", "se2", "sim3"])
def test_chordal_start_is_exact_on_noise_free_graphs(rng, kind):
    """With exact measurements the relaxation is tight: the start is already the truth."""
    sg = grid_world_pose_graph(kind, 200, rng=rng, noise_scale=0.0)
    g = sg.graph
    ids, R, t = g.node_arrays()
    s = g.node_scales()
    ri, rj = g.edge_node_rows()
    free_row = np.arange(-1, len(ids) - 1)
    Rc, tc, sc = chordal_initialization(g.kind, R, t, s, ri, rj, g.i_from_j_R, g.i_from_j_t, g.i_from_j_scale,
                                        g.information, free_row)
    Rt, tt, st = sg.truth_arrays()
    np.testing.assert_allclose(Rc, Rt, atol=1e-8)
    np.testing.assert_allclose(tc, tt, atol=1e-7)
    np.testing.assert_allclose(sc, st, rtol=1e-8)


def test_chordal_start_escapes_where_odometry_start_is_trapped():
    """Large rotation noise (30 deg per edge): LM from the chained odometry often ends in a local
    minimum; ``auto`` starts from the chordal relaxation, and is never worse and mostly far better."""
    ratios = []
    for seed in (1, 2, 3):
        sg = grid_world_pose_graph("se2", 400, rng=seed, sigma_r_deg=30.0, sigma_t=0.1, turn_prob=0.4)
        _, rep_file = optimize_pose_graph(sg.graph, PoseGraphOptions(init="file", max_iterations=300))
        _, rep_auto = optimize_pose_graph(sg.graph, PoseGraphOptions(init="auto", max_iterations=300))
        assert rep_auto.init == "chordal" and rep_auto.converged
        ratios.append(rep_auto.final_chi2 / rep_file.final_chi2)
    assert max(ratios) <= 1.0 + 1e-9
    assert sorted(ratios)[1] < 0.9, ratios


@pytest.mark.parametrize("kind", ["se3", "se2"])
def test_wrong_loop_edges_are_rejected_with_a_robust_loss(rng, kind):
    sg = grid_world_pose_graph(kind, 400, rng=rng, sigma_t=0.02, sigma_r_deg=0.5, num_outliers=8, loop_radius=1.5,
                               max_loops_per_node=4)
    clean = sg.graph.copy()
    keep = np.setdiff1d(np.arange(clean.num_edges), sg.outlier_edges)
    for name in ("i_ids", "j_ids", "i_from_j_R", "i_from_j_t", "information", "i_from_j_scale"):
        setattr(clean, name, getattr(clean, name)[keep])
    robust_options = PoseGraphOptions(loss="cauchy", loss_scale=3.0, max_edge_chi2=100.0)
    reference, _ = optimize_pose_graph(clean, robust_options)
    extent = np.ptp(np.array([T.t for T in sg.truth.values()]), axis=0).max()
    plain, _ = optimize_pose_graph(sg.graph)
    robust, rep = optimize_pose_graph(sg.graph, robust_options)
    dev_plain = _position_error(plain, reference.nodes) / extent
    dev_robust = _position_error(robust, reference.nodes) / extent
    assert dev_plain > 0.02  # the wrong edges bend the plain solution
    assert dev_robust < 1e-5  # switched off: the same optimum as without them
    assert set(rep.outlier_edges.tolist()) == set(sg.outlier_edges.tolist())
    assert "switched off 8 outlier edge(s)" in rep.summary()


def test_fixed_nodes_and_components(rng):
    sg = grid_world_pose_graph("se3", 100, rng=rng)
    graph = sg.graph.copy()
    graph.fixed = {5}
    out, rep = optimize_pose_graph(graph)
    assert rep.fixed_nodes == [5]
    assert out.nodes[5] == graph.nodes[5]
    assert out.nodes[0] != graph.nodes[0]
    # two components: each gets its own gauge node
    g2 = PoseGraph()
    for k in range(4):
        g2.add_node(k, Rigid3.from_rotvec([0, 0, 0.1 * k], [k, 0.0, 0.0]))
    g2.add_edge(0, 1, Rigid3(t=[1.0, 0, 0]))
    g2.add_edge(2, 3, Rigid3(t=[2.0, 0, 0]))
    out2, rep2 = optimize_pose_graph(g2)
    assert rep2.num_components == 2 and rep2.fixed_nodes == [0, 2]
    np.testing.assert_allclose((out2.nodes[2].inverse() @ out2.nodes[3]).t, [2.0, 0, 0], atol=1e-9)


def test_sim3_graph_corrects_scale_drift(rng):
    """A loop whose scale drifted: the Sim(3) optimum spreads the correction and recovers the
    true scales within the noise."""
    sg = grid_world_pose_graph("sim3", 300, rng=rng, scale_drift=0.02, sigma_log_scale=0.002, sigma_t=0.01,
                               sigma_r_deg=0.2)
    out, rep = optimize_pose_graph(sg.graph)
    assert rep.converged
    _, _, s_true = sg.truth_arrays()
    s_out = out.node_scales()
    s_start = sg.graph.node_scales()
    err_out = np.abs(np.log(s_out / s_true)).max()
    err_start = np.abs(np.log(s_start / s_true)).max()
    assert err_out < 0.05 and err_out < err_start


def test_linear_solvers_agree(rng):
    sg = grid_world_pose_graph("se3", 300, rng=rng)
    results = {}
    for solver in ("dense", "superlu", "cholmod"):
        if solver == "cholmod":
            from geomvision.optim.sparse_cholesky import cholmod_available

            if not cholmod_available():
                continue
        out, rep = optimize_pose_graph(sg.graph, PoseGraphOptions(linear_solver=solver))
        assert rep.linear_solver == solver
        results[solver] = np.array([out.nodes[k].t for k in sorted(out.nodes)])
    ref = results.pop("dense")
    for arr in results.values():
        np.testing.assert_allclose(arr, ref, atol=1e-8)


def test_graph_without_poses_needs_a_chordal_start(rng):
    sg = grid_world_pose_graph("se2", 50, rng=rng)
    graph = sg.graph.copy()
    graph.set_node_arrays(*graph.node_arrays())
    graph.poses_given = False
    with pytest.raises(ValueError, match="no node poses of its own.*chordal"):
        optimize_pose_graph(graph, PoseGraphOptions(init="file"))
    _, rep = optimize_pose_graph(graph)
    assert rep.init == "chordal" and np.isnan(rep.initial_chi2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"init": "odometryy"}, "init must be one of"),
        ({"loss": "l1"}, "loss must be one of"),
        ({"loss_scale": 0.0}, "loss_scale must be a finite number > 0"),
        ({"max_edge_chi2": -1.0}, "max_edge_chi2 must be None or a finite number > 0"),
        ({"linear_solver": "qr"}, "linear_solver must be one of"),
        ({"max_iterations": 1.5}, "max_iterations must be an integer"),
    ],
)
def test_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoseGraphOptions(**kwargs)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="graph must be a PoseGraph"):
        optimize_pose_graph({"nodes": {}})
    g = PoseGraph(kind="se2")
    with pytest.raises(ValueError, match="must be a Rigid2 in a se2 graph"):
        g.add_node(0, Rigid3())
    g.add_node(0, Rigid2(0.1, [1.0, 2.0]))
    g.add_node(1, Rigid2(0.2, [2.0, 2.0]))
    with pytest.raises(ValueError, match=r"information must have shape \(3, 3\)"):
        g.add_edge(0, 1, Rigid2(), np.eye(6))
    gs = PoseGraph(kind="sim3")
    gs.add_node(0, Sim3())
    gs.add_node(1, Sim3(2.0))
    gs.add_edge(0, 1, Sim3(2.0))
    assert gs.chi2() == pytest.approx(0.0, abs=1e-20)
    out, rep = optimize_pose_graph(gs)
    assert rep.final_chi2 < 1e-20
