"""``geomvision posegraph``: optimises a g2o file, writes the result atomically, prints both costs;
clear errors for malformed files and bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.io import read_g2o, write_g2o
from geomvision.synthetic.pose_graphs import grid_world_pose_graph


def _run(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main(["posegraph", *map(str, argv)])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    payload = json.loads(lines[-1]) if code == 0 and lines else None
    return code, payload, out.out + out.err


@pytest.mark.shared_data
def test_intel_se2_end_to_end(shared_data, tmp_path, capsys):
    code, res, text = _run(capsys, shared_data / "posegraph" / "intel.g2o", "-o", tmp_path / "out.g2o")
    assert code == 0
    assert res["kind"] == "se2" and res["num_nodes"] == 1728 and res["termination"] == "function_tolerance"
    assert "chi2 (geomvision error" in text and "chi2 (g2o error)" in text and "iter" in text
    out = read_g2o(tmp_path / "out.g2o")
    assert out.chi2() == pytest.approx(res["final_chi2"], rel=1e-9)
    assert res["final_chi2"] < 0.1 * res["initial_chi2"]


def test_edges_only_file_with_robust_loss(tmp_path, capsys):
    sg = grid_world_pose_graph("se3", 150, rng=3, num_outliers=3, loop_radius=1.5, max_loops_per_node=4)
    graph = sg.graph.copy()
    graph.poses_given = False  # written without VERTEX lines
    write_g2o(graph, tmp_path / "edges.g2o")
    code, res, _ = _run(capsys, tmp_path / "edges.g2o", "-o", tmp_path / "out.g2o", "--loss", "cauchy",
                        "--max-edge-chi2", "100", "--quiet")
    assert code == 0 and res["init"] == "chordal" and res["initial_chi2"] is None
    out = read_g2o(tmp_path / "out.g2o")
    assert out.poses_given and out.num_nodes == 150


@pytest.mark.parametrize(
    "text, args, message",
    [
        ("VERTEX_SE2 0 0 0\n", [], "VERTEX_SE2 needs 5 fields"),
        ("VERTEX_SE2 0 0 0 0\n", ["--init", "chordal", "-o", "out.txt"], "--output must be a .g2o file"),
        ("VERTEX_SE2 0 0 0 0\n", ["--loss-scale", "-1"], "loss_scale must be a finite number > 0"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, capsys, text, args, message):
    path = tmp_path / "bad.g2o"
    path.write_text(text)
    code, _, out = _run(capsys, path, *[str(tmp_path / a) if a.endswith(".txt") else a for a in args])
    assert code == 2
    assert "geomvision posegraph: error:" in out and message in out
