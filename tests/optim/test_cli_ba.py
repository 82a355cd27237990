"""``geomvision ba``: table, final JSON line, output file, errors."""

from __future__ import annotations

import json

import numpy as np

from geomvision.cli.main import main
from geomvision.geometry.rotation import so3_exp
from geomvision.io.bal import bal_to_problem, read_bal, write_bal


def _bal_file(tmp_path, rng):
    n_cams, n_pts = 5, 60
    cameras = np.zeros((n_cams, 9))
    cameras[:, :3] = rng.normal(scale=0.1, size=(n_cams, 3))
    cameras[:, 3:6] = [0, 0, -5.0]
    cameras[:, 6] = 500.0
    points = rng.uniform(-1, 1, (n_pts, 3))
    cam_idx = np.repeat(np.arange(n_cams), n_pts)
    pt_idx = np.tile(np.arange(n_pts), n_cams)
    P = np.einsum("nij,nj->ni", so3_exp(cameras[cam_idx, :3]), points[pt_idx]) + cameras[cam_idx, 3:6]
    xy = 500.0 * -P[:, :2] / P[:, 2:3] + rng.normal(scale=0.3, size=(len(P), 2))
    problem = bal_to_problem(cameras, points + rng.normal(scale=0.03, size=points.shape), cam_idx, pt_idx, xy)
    path = tmp_path / "p.bal.txt"
    write_bal(problem, path)
    return path


def test_cli_prints_table_then_json(tmp_path, rng, capsys):
    path = _bal_file(tmp_path, rng)
    out = tmp_path / "solved.bal.txt"
    assert main(["ba", str(path), "-o", str(out), "--max-iterations", "30", "--loss", "huber", "--loss-scale", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["iter", "cost", "cost_change"]
    info = json.loads(lines[-1])
    for key in ("initial_rms_px", "final_rms_px", "iterations", "successful_iterations", "solve_s", "peak_memory_mb"):
        assert key in info
    assert len(lines) == info["iterations"] + 3  # header, iteration 0, one per iteration, JSON
    assert info["final_rms_px"] < 0.5 < info["initial_rms_px"]
    assert abs(read_bal(out).rms_px() - info["final_rms_px"]) < 1e-9


def test_cli_reports_a_malformed_file(tmp_path, capsys):
    bad = tmp_path / "bad.bal.txt"
    bad.write_text("1 1 1\n0 3 1.0 2.0\n" + "0\n" * 9 + "0\n0\n0\n")
    assert main(["ba", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "point index 3" in err


def test_cli_refuses_a_problem_without_observations(tmp_path, capsys):
    empty = tmp_path / "empty.bal.txt"
    empty.write_text("0 0 0\n")
    assert main(["ba", str(empty)]) == 2
    assert "no observations" in capsys.readouterr().err
