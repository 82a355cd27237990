"""Analytic Jacobians of the BA kernels against central finite differences, per camera model and
parameter block (rotation increment dw, translation, camera parameters, point)."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry.camera import CAMERA_MODELS
from geomvision.geometry.rotation import so3_exp
from geomvision.optim import BAProblem
from geomvision.optim import _ba_kernels as kern

PARAMS = {
    "SIMPLE_PINHOLE": [480.0, 320.0, 240.0],
    "PINHOLE": [480.0, 470.0, 320.0, 240.0],
    "SIMPLE_RADIAL": [480.0, 320.0, 240.0, -0.08],
    "RADIAL": [480.0, 320.0, 240.0, -0.08, 0.02],
    "OPENCV": [480.0, 470.0, 320.0, 240.0, -0.08, 0.02, 0.001, -0.002],
    "OPENCV_FISHEYE": [480.0, 470.0, 320.0, 240.0, 0.05, -0.01, 0.002, -0.001],
    "PINHOLE_SKEW": [480.0, 470.0, 1.5, 320.0, 240.0],
}


def _problem(model: str, rng) -> BAProblem:
    n = 6
    X = rng.uniform(-1, 1, (n, 3))
    R = so3_exp(rng.normal(scale=0.3, size=3))[None]
    t = np.array([[0.1, -0.2, 5.0]])
    uv = rng.uniform(0, 640, (n, 2))
    return BAProblem.from_arrays(R, t, [0], [model], [PARAMS[model]], X, np.zeros(n, int), np.arange(n), uv)


def _residuals(p: BAProblem) -> np.ndarray:
    M = p.num_observations
    r = np.empty((M, 2))
    Jc = np.empty((M, 2, 6 + p.cam_params.shape[1]))
    Jp = np.empty((M, 2, 3))
    kern.linearize(p.R, p.t, p.cam_model, p.cam_params, p.cam_nparams, p.img_cam, p.X, p.obs_img, p.obs_pt,
                   p.obs_uv, p.obs_inv_sigma, 0, 1.0, r, Jc, Jp)
    return r, Jc, Jp


def _perturbed(p: BAProblem, block: str, k: int, h: float) -> BAProblem:
    q = p.copy()
    if block == "rotation":
        w = np.zeros(3)
        w[k] = h
        q.R = np.ascontiguousarray(q.R[0] @ so3_exp(w))[None]  # R <- R @ exp(dw)
    elif block == "translation":
        q.t[0, k] += h
    elif block == "params":
        q.cam_params[0, k] += h
    else:
        q.X[:, k] += h
    return q


@pytest.mark.parametrize("model", list(CAMERA_MODELS))
def test_jacobians_match_central_differences(model, rng):
    p = _problem(model, rng)
    _, Jc, Jp = _residuals(p)
    n_params = len(CAMERA_MODELS[model].param_names)
    blocks = [("rotation", 3, 0, 1e-6), ("translation", 3, 3, 1e-6), ("params", n_params, 6, None), ("point", 3, None, 1e-6)]
    for block, size, col0, step in blocks:
        for k in range(size):
            h = step if step is not None else 1e-6 * max(1.0, abs(p.cam_params[0, k]))
            rp, _, _ = _residuals(_perturbed(p, block, k, h))
            rm, _, _ = _residuals(_perturbed(p, block, k, -h))
            fd = (rp - rm) / (2 * h)
            analytic = Jp[:, :, k] if block == "point" else Jc[:, :, col0 + k]
            scale = max(1.0, np.abs(fd).max())
            np.testing.assert_allclose(analytic, fd, atol=2e-6 * scale, rtol=1e-5, err_msg=f"{model} {block}[{k}]")
    # columns past the model's parameters are zero
    assert np.all(Jc[:, :, 6 + n_params:] == 0.0)


def test_point_behind_camera_zeroes_its_rows_and_counts_it(rng):
    p = _problem("PINHOLE", rng)
    p.X[2] = [0.0, 0.0, -10.0]  # behind the camera (t_z = 5)
    M = p.num_observations
    r, Jc, Jp = np.empty((M, 2)), np.empty((M, 2, 10)), np.empty((M, 2, 3))
    _, _, bad = kern.linearize(p.R, p.t, p.cam_model, p.cam_params, p.cam_nparams, p.img_cam, p.X, p.obs_img,
                               p.obs_pt, p.obs_uv, p.obs_inv_sigma, 0, 1.0, r, Jc, Jp)
    assert bad == 1
    assert np.all(r[2] == 0) and np.all(Jc[2] == 0) and np.all(Jp[2] == 0)
    assert np.all(np.isfinite(r)) and np.all(np.isfinite(Jc))


@pytest.mark.parametrize("loss", ["huber", "cauchy", "soft_l1"])
def test_robust_weighting_is_sqrt_of_rho_prime(loss, rng):
    from geomvision.optim import Loss

    p = _problem("PINHOLE", rng)
    M = p.num_observations
    r0, Jc0, Jp0 = _residuals(p)
    lo = Loss(loss, 2.0)
    r, Jc, Jp = np.empty((M, 2)), np.empty_like(Jc0), np.empty_like(Jp0)
    cost, sq, _ = kern.linearize(p.R, p.t, p.cam_model, p.cam_params, p.cam_nparams, p.img_cam, p.X, p.obs_img,
                                 p.obs_pt, p.obs_uv, p.obs_inv_sigma, lo.loss_id, lo.scale, r, Jc, Jp)
    s = np.sum(r0**2, axis=1)
    rho, d1 = lo(s)
    w = np.sqrt(d1)
    np.testing.assert_allclose(r, w[:, None] * r0, rtol=1e-12)
    np.testing.assert_allclose(Jc, w[:, None, None] * Jc0, rtol=1e-12)
    np.testing.assert_allclose(cost, 0.5 * rho.sum(), rtol=1e-12)
    np.testing.assert_allclose(sq, s.sum(), rtol=1e-12)
