"""BAL files whose points are behind a camera (issue 17): BAL's model p = -P / P.z never tests the
sign of P.z, so such an observation is an ordinary residual (Ceres's BAL examples solve the file
with it). ``read_bal`` returns a problem with ``cheirality=False``; the kernels then project a
point through the centre whatever the sign of its depth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.geometry.rotation import so3_exp
from geomvision.io.bal import bal_to_problem, problem_to_bal, read_bal, write_bal
from geomvision.optim import BAOptions, BAProblem, problem_without_observations, solve_bundle
from geomvision.optim import _ba_kernels as kern


def _bal_residuals(cameras, points, cam_idx, pt_idx, xy):
    """BAL's formula written out (Snavely's model, as Ceres's examples): no test of P.z's sign."""
    P = np.einsum("nij,nj->ni", so3_exp(cameras[cam_idx, :3]).reshape(-1, 3, 3), points[pt_idx]) + cameras[cam_idx, 3:6]
    p = -P[:, :2] / P[:, 2:3]
    r2 = np.sum(p * p, axis=1)
    c = cameras[cam_idx]
    return (c[:, 6] * (1 + c[:, 7] * r2 + c[:, 8] * r2 * r2))[:, None] * p - xy


def _exact_bal(rng, n_cams=6, n_pts=80):
    """Cameras 1.. on a line at Z = 4 looking down BAL's -z at points with Z in [-2, 2]; camera 0
    at the same place turned by 180 degrees about y: every point is behind it (P.z > 0), and BAL
    projects it through the centre. Camera 0 observes the first 10 % of the points, the others
    every point. Observations are exact (BAL's projection of the true parameters).
    Returns (cameras, points, cam_idx, pt_idx, xy, behind (M,) bool)."""
    cameras = np.zeros((n_cams, 9))
    cameras[:, :3] = rng.normal(scale=0.05, size=(n_cams, 3))
    cameras[0, :3] += [0.0, np.pi, 0.0]
    cameras[:, 3] = -np.linspace(-1.0, 1.0, n_cams)
    cameras[:, 5] = -4.0
    cameras[0, 5] = 4.0
    cameras[:, 6] = 500.0 + rng.normal(scale=5.0, size=n_cams)
    cameras[:, 7] = -0.05
    cameras[:, 8] = 0.01
    points = np.column_stack([rng.uniform(-1.5, 1.5, n_pts), rng.uniform(-1.0, 1.0, n_pts),
                              rng.uniform(-2.0, 2.0, n_pts)])
    cam_idx = np.repeat(np.arange(n_cams), n_pts)
    pt_idx = np.tile(np.arange(n_pts), n_cams)
    keep = (cam_idx > 0) | (pt_idx < n_pts // 10)
    cam_idx, pt_idx = cam_idx[keep], pt_idx[keep]
    xy = _bal_residuals(cameras, points, cam_idx, pt_idx, np.zeros((len(cam_idx), 2)))  # exact: r = proj - 0
    return cameras, points, cam_idx, pt_idx, xy, cam_idx == 0


def test_read_bal_keeps_points_behind_and_follows_the_bal_projection(tmp_path, rng):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    xy = xy + rng.normal(scale=0.5, size=xy.shape)
    points = points + rng.normal(scale=0.01, size=points.shape)
    path = tmp_path / "behind.bal.txt"
    write_bal(bal_to_problem(cameras, points, cam_idx, pt_idx, xy), path)
    p = read_bal(path)
    assert p.cheirality is False
    behind = p.depths() < 0
    assert np.array_equal(behind, flip)  # exactly camera 0's observations
    e = p.sq_errors()
    np.testing.assert_allclose(e, np.sum(_bal_residuals(cameras, points, cam_idx, pt_idx, xy) ** 2, axis=1),
                               rtol=1e-9, atol=1e-9)
    # the same arrays under geomvision's own convention: those observations do not project
    q = p.copy()
    q.cheirality = True
    assert np.array_equal(np.isnan(q.sq_errors()), behind)


def test_jacobians_of_a_point_behind_match_central_differences(rng):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    p = bal_to_problem(cameras, points, cam_idx, pt_idx, xy + 1.0)
    rows = np.flatnonzero(p.depths() < 0)
    assert len(rows) > 3
    keep = np.zeros(p.num_observations, bool)
    keep[rows] = True
    p = problem_without_observations(p, ~keep)  # only the behind observations, all in camera 0

    def lin(q):
        M, L = q.num_observations, 6 + q.cam_params.shape[1]
        r, Jc, Jp = np.empty((M, 2)), np.empty((M, 2, L)), np.empty((M, 2, 3))
        _, _, bad = kern.linearize(q.R, q.t, q.cam_model, q.cam_params, q.cam_nparams, q.img_cam, q.X, q.obs_img,
                                   q.obs_pt, q.obs_uv, q.obs_inv_sigma, 0, 1.0, r, Jc, Jp, q.cheirality)
        assert bad == 0
        return r, Jc, Jp

    r, Jc, Jp = lin(p)
    np.testing.assert_allclose(np.sum(r**2, axis=1), p.sq_errors(), rtol=1e-12)
    h = 1e-6
    for block, size in (("rotation", 3), ("translation", 3), ("params", 5), ("point", 3)):
        for k in range(size):
            if block == "params" and k in (1, 2):
                continue  # cx, cy: BAL has none
            qs = []
            for sgn in (1.0, -1.0):
                q = p.copy()
                if block == "rotation":
                    w = np.zeros(3)
                    w[k] = sgn * h
                    q.R[0] = q.R[0] @ so3_exp(w)
                elif block == "translation":
                    q.t[0, k] += sgn * h
                elif block == "params":
                    q.cam_params[0, k] += sgn * h * max(1.0, abs(p.cam_params[0, k]))
                else:
                    q.X[:, k] += sgn * h
                qs.append(lin(q)[0])
            step = 2 * h * (max(1.0, abs(p.cam_params[0, k])) if block == "params" else 1.0)
            fd = (qs[0] - qs[1]) / step
            col = {"rotation": k, "translation": 3 + k, "params": 6 + k}.get(block)
            analytic = Jp[:, :, k] if block == "point" else Jc[:, :, col]
            np.testing.assert_allclose(analytic, fd, atol=1e-5 * max(1.0, np.abs(fd).max()), rtol=1e-5,
                                       err_msg=f"{block}[{k}]")


@pytest.mark.parametrize("num_threads", [1, 2])
def test_solve_recovers_an_exact_bal_problem_with_points_behind(rng, num_threads):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    start_cams = cameras.copy()
    start_cams[:, 6] *= 1.01
    start_cams[:, 7:9] = 0.0
    p = bal_to_problem(start_cams, points + rng.normal(scale=0.02, size=points.shape), cam_idx, pt_idx, xy)
    n_behind = int((p.depths() < 0).sum())
    assert n_behind == flip.sum()
    assert p.rms_px() > 1.0
    rep = solve_bundle(p, BAOptions(num_threads=num_threads, parallel_min_observations=0, function_tolerance=1e-12,
                                    max_iterations=100))
    assert rep.converged, rep.termination
    assert rep.final_rms_px < 1e-4  # exact data: zero cost, the behind observations included
    assert int((p.depths() < 0).sum()) == n_behind  # still behind camera 0 at the optimum
    cams, pts, ci, pi, xy_out = problem_to_bal(p)
    assert np.abs(_bal_residuals(cams, pts, ci, pi, xy_out)).max() < 1e-3


def test_the_geomvision_convention_still_refuses_points_behind(rng):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    p = bal_to_problem(cameras, points, cam_idx, pt_idx, xy)
    p.cheirality = True
    with pytest.raises(ValueError, match="behind its camera"):
        solve_bundle(p)


def test_cheirality_is_checked_and_survives_copies(rng):
    cameras, points, cam_idx, pt_idx, xy, _ = _exact_bal(rng)
    p = bal_to_problem(cameras, points, cam_idx, pt_idx, xy)
    assert p.copy().cheirality is False
    assert problem_without_observations(p, np.zeros(p.num_observations, bool)).cheirality is False
    with pytest.raises(ValueError, match="cheirality"):
        BAProblem(**{**p.__dict__, "cheirality": "no"})
    q = BAProblem.from_arrays(p.R, p.t, p.img_cam, p.cam_model, p.cam_params, p.X, p.obs_img, p.obs_pt, p.obs_uv)
    assert q.cheirality is True


def test_cli_keeps_points_behind_and_says_how_many(tmp_path, rng, capsys):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    n_behind = int(flip.sum())
    path = tmp_path / "behind.bal.txt"
    write_bal(bal_to_problem(cameras, points + rng.normal(scale=0.01, size=points.shape), cam_idx, pt_idx,
                             xy + rng.normal(scale=0.3, size=xy.shape)), path)
    out = tmp_path / "solved.bal.txt"
    assert main(["ba", str(path), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert lines[0].startswith(f"note: {n_behind} of {len(cam_idx)} observations have their point behind")
    info = json.loads(lines[-1])
    assert info["behind_at_start"] == n_behind and info["dropped_observations"] == 0
    assert info["num_observations"] == len(cam_idx)
    assert info["termination"] in ("function_tolerance", "parameter_tolerance", "gradient_tolerance")
    assert 0.2 < info["final_rms_px"] < 0.4  # the 0.3 px noise, every observation counted
    assert abs(read_bal(out).rms_px() - info["final_rms_px"]) < 1e-9


def test_cli_drop_behind_drops_them_with_a_warning(tmp_path, rng, capsys):
    cameras, points, cam_idx, pt_idx, xy, flip = _exact_bal(rng)
    n_behind = int(flip.sum())
    path = tmp_path / "behind.bal.txt"
    write_bal(bal_to_problem(cameras, points, cam_idx, pt_idx, xy + rng.normal(scale=0.3, size=xy.shape)), path)
    out = tmp_path / "solved.bal.txt"
    assert main(["ba", str(path), "--drop-behind", "--quiet", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"warning: dropped {n_behind} of {len(cam_idx)} observations" in captured.err
    info = json.loads(captured.out.strip().splitlines()[-1])
    assert info["behind_at_start"] == n_behind and info["dropped_observations"] == n_behind
    assert info["num_observations"] == len(cam_idx) - n_behind
    solved = read_bal(out)
    assert solved.num_observations == len(cam_idx) - n_behind
    assert np.all(solved.depths() > 0)
