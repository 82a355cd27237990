"""g2o pose graphs: the sphere benchmark round trip (number for number), FIX lines, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from geomvision import Rigid3
from geomvision.geometry.rotation import rotmat_from_quat_xyzw
from geomvision.io import read_g2o, write_g2o
from geomvision.scene.pose_graph import PoseGraph


@pytest.fixture(scope="module")
def sphere_path(shared_data):
    return shared_data / "posegraph" / "sphere.g2o"


def _last_digit_unit(token: str) -> float:
    """One unit in the last printed digit of a decimal token like '0.706662' or '-4.3325e-17'."""
    mantissa, _, exp = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exp or 0) - decimals)


def test_sphere_round_trip(sphere_path, tmp_path):
    graph = read_g2o(sphere_path)
    assert (graph.num_nodes, graph.num_edges, graph.fixed) == (2500, 9799, set())
    # odometry edges chain consecutive vertices
    assert np.array_equal(graph.i_ids[:2499], np.arange(2499)) and np.array_equal(
        graph.j_ids[:2499], np.arange(1, 2500)
    )
    write_g2o(graph, tmp_path / "s.g2o")
    back = read_g2o(tmp_path / "s.g2o")
    assert list(back.nodes) == list(graph.nodes)
    for node_id, T in graph.nodes.items():
        assert back.nodes[node_id].allclose(T, atol=1e-9)
    np.testing.assert_array_equal(back.information, graph.information)
    np.testing.assert_array_equal(back.i_from_j_t, graph.i_from_j_t)
    np.testing.assert_allclose(back.i_from_j_R, graph.i_from_j_R, rtol=0, atol=1e-15)
    assert back.chi2() == pytest.approx(graph.chi2(), rel=1e-12)


def test_sphere_rewrite_matches_original_numbers(sphere_path, tmp_path):
    """Ids, translations and information matrices read back as the very same doubles; quaternions
    equal the original up to sign within one unit of its last printed digit (they are normalised)."""
    graph = read_g2o(sphere_path)
    write_g2o(graph, tmp_path / "s.g2o")
    orig = [line.split() for line in sphere_path.read_text().splitlines() if line.strip()]
    new = [line.split() for line in (tmp_path / "s.g2o").read_text().splitlines() if line.strip()]
    assert len(orig) == len(new)
    quat_cols = {"VERTEX_SE3:QUAT": slice(5, 9), "EDGE_SE3:QUAT": slice(6, 10)}
    q_orig, q_new, q_unit = [], [], []
    for a, b in zip(orig, new):
        assert a[0] == b[0] and len(a) == len(b)
        qs = quat_cols[a[0]]
        exact = [k for k in range(1, len(a)) if not qs.start <= k < qs.stop]
        assert [float(a[k]) for k in exact] == [float(b[k]) for k in exact], a[:3]
        q_orig.append([float(x) for x in a[qs]])
        q_new.append([float(x) for x in b[qs]])
        q_unit.append([_last_digit_unit(x) for x in a[qs]])
    q_orig, q_new, q_unit = map(np.array, (q_orig, q_new, q_unit))
    sign = np.sign(np.sum(q_orig * q_new, axis=1, keepdims=True))
    assert np.all(np.abs(sign * q_new - q_orig) <= q_unit)
    # and the same rotations
    np.testing.assert_allclose(rotmat_from_quat_xyzw(q_new), rotmat_from_quat_xyzw(q_orig), atol=1e-15)


def test_sphere_cost_is_stable_and_from_the_edges(sphere_path):
    graph = read_g2o(sphere_path)
    per_edge = graph.edge_chi2()
    assert per_edge.shape == (9799,) and np.all(per_edge >= 0)
    assert graph.chi2() == pytest.approx(per_edge.sum(), rel=1e-12)
    # odometry edges were built from the initial poses' neighbourhood: their cost is far below loop closures'
    assert np.median(per_edge[:2499]) < np.median(per_edge[2499:])


def test_fix_lines_round_trip(tmp_path):
    graph = PoseGraph()
    for k in range(4):
        graph.add_node(10 + k, Rigid3.from_rotvec([0.0, 0.0, 0.3 * k], [k, 0.0, 0.0]))
    graph.add_edge(10, 11, graph.nodes[10].inverse() @ graph.nodes[11], np.eye(6) * 7.5)
    graph.fixed = {13, 10}
    write_g2o(graph, tmp_path / "g.g2o")
    assert (tmp_path / "g.g2o").read_text().splitlines()[-1] == "FIX 10 13"
    back = read_g2o(tmp_path / "g.g2o")
    assert back.fixed == {10, 13} and list(back.nodes) == [10, 11, 12, 13]
    np.testing.assert_array_equal(back.information[0], np.eye(6) * 7.5)
    (tmp_path / "h.g2o").write_text((tmp_path / "g.g2o").read_text().replace("FIX 10 13", "FIX 10\nFIX 13"))
    assert read_g2o(tmp_path / "h.g2o").fixed == {10, 13}


VERTEX = "VERTEX_SE3:QUAT 0 0 0 0 0 0 0 1"
VERTEX1 = "VERTEX_SE3:QUAT 1 1 0 0 0 0 0 1"
INFO = " ".join(
    ["1", "0", "0", "0", "0", "0", "1", "0", "0", "0", "0", "1", "0", "0", "0", "1", "0", "0", "1", "0", "1"]
)
EDGE = f"EDGE_SE3:QUAT 0 1 1 0 0 0 0 0 1 {INFO}"
MALFORMED = {
    "unknown_tag": ([VERTEX, "VERTEX_XY 1 0 0"], 2, "unsupported g2o tag 'VERTEX_XY'"),
    "mixed_kinds": ([VERTEX, "VERTEX_SE2 1 0 0 0"], 2, "VERTEX_SE2 in a se3 graph (line 1)"),
    "vertex_fields": ([VERTEX, "VERTEX_SE3:QUAT 1 0 0 0 0 0 1"], 2, "needs 9 fields, got 8"),
    "edge_fields": ([VERTEX, VERTEX1, EDGE[:-2]], 3, "needs 31 fields, got 30"),
    "not_a_number": ([VERTEX, "VERTEX_SE3:QUAT 1 0 abc 0 0 0 0 1"], 2, "'abc' is not a number"),
    "id_not_integer": ([VERTEX, "VERTEX_SE3:QUAT 1.5 0 0 0 0 0 0 1"], 2, "'1.5' is not an integer"),
    "duplicate_vertex": ([VERTEX, VERTEX], 2, "duplicate vertex id 0 (first on line 1)"),
    "edge_missing_vertex": ([VERTEX, EDGE], 2, "edge refers to vertex 1, which has no VERTEX_SE3:QUAT line"),
    "fix_missing_vertex": ([VERTEX, "FIX 4"], 2, "FIX refers to vertex 4"),
    "zero_quaternion": ([VERTEX, "VERTEX_SE3:QUAT 1 0 0 0 0 0 0 0"], 2, "zero quaternion"),
    "nan": ([VERTEX, "VERTEX_SE3:QUAT 1 nan 0 0 0 0 0 1"], 2, "NaN or inf"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files(tmp_path, case):
    lines, line_no, what = MALFORMED[case]
    path = tmp_path / f"{case}.g2o"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as info:
        read_g2o(path)
    msg = str(info.value)
    assert re.search(re.escape(f"{path}: line {line_no}: ") + ".*" + re.escape(what), msg), msg


def test_comments_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "c.g2o"
    path.write_text(f"# a comment\n\n{VERTEX}\n{VERTEX1}\n  \n{EDGE}\n")
    graph = read_g2o(path)
    assert graph.num_edges == 1 and graph.chi2() == 0.0


def test_indefinite_information_names_the_file(tmp_path):
    path = tmp_path / "i.g2o"
    path.write_text("\n".join([VERTEX, VERTEX1, EDGE.replace(" 1 0 1", " 1 0 -1")]) + "\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not positive semi-definite"):
        read_g2o(path)


def test_intel_se2_round_trip_number_for_number(shared_data, tmp_path):
    """The 2-D Intel Research Lab graph: vertices, translations, information exactly; edge angles
    (stored as rotations) within one ulp."""
    path = shared_data / "posegraph" / "intel.g2o"
    graph = read_g2o(path)
    assert graph.kind == "se2" and graph.dof == 3 and graph.poses_given
    assert (graph.num_nodes, graph.num_edges) == (1728, 2512)
    write_g2o(graph, tmp_path / "i.g2o")
    orig = [line.split() for line in path.read_text().splitlines() if line.strip()]
    new = [line.split() for line in (tmp_path / "i.g2o").read_text().splitlines() if line.strip()]
    assert len(orig) == len(new)
    for a, b in zip(orig, new):
        assert a[0] == b[0]
        if a[0] == "VERTEX_SE2":
            assert [float(x) for x in a[1:]] == [float(x) for x in b[1:]]
        else:
            angle = 5  # EDGE_SE2 i j dx dy dtheta info...
            assert [float(x) for k, x in enumerate(a) if k != angle and k > 0] == [
                float(x) for k, x in enumerate(b) if k != angle and k > 0]
            assert float(b[angle]) == pytest.approx(float(a[angle]), abs=1e-15)
    back = read_g2o(tmp_path / "i.g2o")
    assert back.chi2() == pytest.approx(graph.chi2(), rel=1e-12)


def test_se2_error_is_g2os(tmp_path):
    """EDGE_SE2 error: [R_z^T (R_i^T (t_j - t_i) - t_z), wrap(theta_j - theta_i - theta_z)]."""
    path = tmp_path / "t.g2o"
    path.write_text("VERTEX_SE2 0 1 2 0.5\nVERTEX_SE2 1 2 4 3.0\nEDGE_SE2 0 1 1 1 -2.9 1 0 0 2 0 3\n")
    g = read_g2o(path)
    Ri = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    Rz = np.array([[np.cos(-2.9), -np.sin(-2.9)], [np.sin(-2.9), np.cos(-2.9)]])
    e_t = Rz.T @ (Ri.T @ np.array([1.0, 2.0]) - np.array([1.0, 1.0]))
    e_th = (3.0 - 0.5 + 2.9 + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(g.edge_errors()[0], [e_t[0], e_t[1], e_th], atol=1e-14)
    assert g.chi2() == pytest.approx(e_t[0] ** 2 + 2 * e_t[1] ** 2 + 3 * e_th**2, rel=1e-12)


def test_sim3_round_trip(tmp_path, rng):
    from geomvision.geometry.sim3 import Sim3

    g = PoseGraph(kind="sim3")
    for k in range(4):
        g.add_node(k, Sim3(np.exp(0.1 * k), so3(rng), rng.normal(size=3)))
    info = np.diag(np.arange(1.0, 8.0))
    g.add_edge(0, 1, g.nodes[0].inverse() @ g.nodes[1], info)
    g.add_edge(1, 3, Sim3(0.5, so3(rng), [1.0, 2.0, 3.0]), info)
    g.fixed = {0}
    write_g2o(g, tmp_path / "s.g2o")
    text = (tmp_path / "s.g2o").read_text()
    assert text.startswith("VERTEX_SIM3:QUAT 0 ") and "EDGE_SIM3:QUAT 1 3 1 2 3 " in text
    back = read_g2o(tmp_path / "s.g2o")
    assert back.kind == "sim3" and back.fixed == {0}
    for k in range(4):
        assert back.nodes[k].allclose(g.nodes[k], atol=1e-12)
    np.testing.assert_array_equal(back.i_from_j_scale, g.i_from_j_scale)
    np.testing.assert_array_equal(back.information, g.information)
    assert back.chi2() == pytest.approx(g.chi2(), rel=1e-10)


def so3(rng):
    from geomvision.geometry.rotation import random_rotation

    return random_rotation(rng)


def test_edges_only_file_has_placeholder_poses(tmp_path):
    path = tmp_path / "e.g2o"
    path.write_text("EDGE_SE2 5 7 1 0 0 1 0 0 1 0 1\nEDGE_SE2 7 9 1 0 0.1 1 0 0 1 0 1\nFIX 5\n")
    g = read_g2o(path)
    assert g.kind == "se2" and not g.poses_given and list(g.nodes) == [5, 7, 9] and g.fixed == {5}
    write_g2o(g, tmp_path / "out.g2o")  # no vertices are invented on writing
    assert not any(line.startswith("VERTEX") for line in (tmp_path / "out.g2o").read_text().splitlines())


@pytest.mark.parametrize(
    "lines, what",
    [
        (["VERTEX_SE2 0 0 0", "VERTEX_SE2 1 0 0 0"], "VERTEX_SE2 needs 5 fields, got 4"),
        (["VERTEX_SE2 0 0 0 0", "EDGE_SE2 0 1 1 0 0 1 0 0 1 0 1"], "edge refers to vertex 1, which has no VERTEX_SE2"),
        (["VERTEX_SIM3:QUAT 0 0 0 0 0 0 0 1 -1"], "scale must be > 0"),
        (["EDGE_SE2 0 1 1 0 0 1 0 0 1 0"], "EDGE_SE2 needs 12 fields, got 11"),
    ],
)
def test_malformed_se2_and_sim3_files(tmp_path, lines, what):
    path = tmp_path / "m.g2o"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=re.escape(what)):
        read_g2o(path)
