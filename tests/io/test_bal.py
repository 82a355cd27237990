"""BAL files: reading, writing, the exact BAL <-> RADIAL mapping, malformed input, and the
reference solves of ../shared/datasets/bal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomvision.geometry.rotation import so3_exp
from geomvision.io.bal import bal_to_problem, problem_to_bal, read_bal, write_bal
from geomvision.optim import BAOptions, solve_bundle


def bal_project(cameras: np.ndarray, points: np.ndarray, cam_idx: np.ndarray, pt_idx: np.ndarray) -> np.ndarray:
    """The BAL camera model written out directly (Snavely's convention)."""
    c = cameras[cam_idx]
    P = np.einsum("nij,nj->ni", so3_exp(c[:, :3]), points[pt_idx]) + c[:, 3:6]
    p = -P[:, :2] / P[:, 2:3]
    r2 = np.sum(p**2, axis=1)
    return (c[:, 6] * (1 + c[:, 7] * r2 + c[:, 8] * r2**2))[:, None] * p


def random_bal(rng, n_cams=4, n_pts=30):
    cameras = np.zeros((n_cams, 9))
    cameras[:, :3] = rng.normal(scale=0.2, size=(n_cams, 3))
    cameras[:, 3:6] = rng.normal(scale=0.3, size=(n_cams, 3)) + [0, 0, -5.0]  # points at -z (in front)
    cameras[:, 6] = rng.uniform(400, 600, n_cams)
    cameras[:, 7] = rng.normal(scale=0.05, size=n_cams)
    cameras[:, 8] = rng.normal(scale=0.01, size=n_cams)
    points = rng.uniform(-1, 1, (n_pts, 3))
    cam_idx = np.repeat(np.arange(n_cams), n_pts)
    pt_idx = np.tile(np.arange(n_pts), n_cams)
    xy = bal_project(cameras, points, cam_idx, pt_idx) + rng.normal(scale=0.5, size=(len(cam_idx), 2))
    return cameras, points, cam_idx, pt_idx, xy


def test_radial_mapping_gives_the_bal_residuals_exactly(rng):
    cameras, points, cam_idx, pt_idx, xy = random_bal(rng)
    direct = np.sum((bal_project(cameras, points, cam_idx, pt_idx) - xy) ** 2, axis=1)
    problem = bal_to_problem(cameras, points, cam_idx, pt_idx, xy)
    assert np.all(problem.depths() > 0)
    np.testing.assert_allclose(problem.sq_errors(), direct, rtol=1e-10, atol=1e-12)
    back = problem_to_bal(problem)
    np.testing.assert_allclose(back[0], cameras, atol=1e-12)
    np.testing.assert_array_equal(back[4], xy)


def test_write_read_round_trip_and_atomic(tmp_path, rng):
    problem = bal_to_problem(*random_bal(rng))
    path = tmp_path / "p.bal.txt"
    write_bal(problem, path)
    assert [p.name for p in tmp_path.iterdir()] == ["p.bal.txt"]  # no temp file left
    again = read_bal(path)
    for name in ("R", "t", "cam_params", "X", "obs_uv"):
        np.testing.assert_allclose(getattr(again, name), getattr(problem, name), rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(again.obs_pt, problem.obs_pt)
    assert again.rms_px() == pytest.approx(problem.rms_px(), rel=1e-12)


def test_solve_recovers_a_synthetic_bal_problem(rng):
    cameras, points, cam_idx, pt_idx, xy = random_bal(rng, n_cams=6, n_pts=80)
    problem = bal_to_problem(cameras, points + rng.normal(scale=0.02, size=points.shape), cam_idx, pt_idx, xy)
    rep = solve_bundle(problem, BAOptions())
    assert rep.final_rms_px < 0.75  # noise 0.5 px per coordinate
    np.testing.assert_array_equal(problem.cam_params[:, 1:3], 0.0)  # principal point stays at 0


def _write(tmp_path, text):
    p = tmp_path / "bad.bal.txt"
    p.write_text(text)
    return p


GOOD = "2 2 3\n0 0 1.0 2.0\n1 0 3.0 4.0\n1 1 5.0 6.0\n" + "0\n0\n0\n0\n0\n-5\n500\n0\n0\n" * 2 + "0.1\n0.2\n0.3\n" * 2


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "line 1"),
        ("2 2\n", "line 1: expected"),
        ("2 x 3\n", "line 1: the counts must be integers"),
        (GOOD.replace("1 0 3.0 4.0", "1 0 3.0 abc"), "line 3: observation 'abc' is not a number"),
        (GOOD.replace("1 1 5.0 6.0", "1 5 5.0 6.0"), "line 4: point index 5 is not an integer in \\[0, 2\\)"),
        (GOOD.replace("1 0 3.0 4.0", "2 0 3.0 4.0"), "line 3: camera index 2"),
        (GOOD.replace("1 0 3.0 4.0", "1 0 3.0"), "line 3: an observation line needs"),
        (GOOD.rsplit("0.3\n", 1)[0], "file ends early, in the point coordinates"),
        (GOOD + "7\n", "unexpected extra value '7'"),
        (GOOD.replace("500\n", "nan\n", 1), "camera parameter is nan"),
    ],
)
def test_malformed_files_name_the_file_line_and_problem(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as exc:
        read_bal(path)
    assert str(path) in str(exc.value)


def test_good_small_file_reads(tmp_path):
    p = read_bal(_write(tmp_path, GOOD))
    assert (p.num_images, p.num_points, p.num_observations) == (2, 2, 3)
    np.testing.assert_array_equal(p.obs_uv[:, 1], [-2.0, -4.0, -6.0])  # y up -> v down


def test_write_refuses_a_moved_principal_point(tmp_path, rng):
    problem = bal_to_problem(*random_bal(rng))
    problem.cam_params[0, 1] = 0.5
    with pytest.raises(ValueError, match="cx and cy"):
        write_bal(problem, tmp_path / "x.bal.txt")


REFERENCE_RMS = {"fountain-P11": 0.38311, "Herz-Jesus-P8": 0.43060, "entry-P10": 0.43557}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(REFERENCE_RMS))
def test_reference_solves_of_the_shared_bal_problems(shared_data, name):
    path = shared_data / "bal" / f"{name}.bal.txt"
    meta = json.loads((shared_data / "bal" / f"{name}.bal.json").read_text())
    problem = read_bal(path)
    assert problem.rms_px() == pytest.approx(meta["start_rms_px"], rel=1e-6)
    rep = solve_bundle(problem, BAOptions(function_tolerance=1e-6, parameter_tolerance=1e-8, gradient_tolerance=1e-10))
    assert rep.converged
    assert f"{rep.final_rms_px:.5f}" == f"{REFERENCE_RMS[name]:.5f}"  # 5 significant digits
    assert rep.final_rms_px <= meta["colmap_solution_rms_px"]


def test_writer_argument_order_is_object_then_path(tmp_path, rng):
    problem = bal_to_problem(*random_bal(rng))
    with pytest.raises(ValueError, match="takes \\(problem, path\\).*swapped"):
        write_bal(tmp_path / "x.bal.txt", problem)
