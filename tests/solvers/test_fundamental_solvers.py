"""Fundamental-matrix solvers against exact two-view geometry."""

from __future__ import annotations

import numpy as np
import pytest
from solver_cases import CAMERA, fundamental_case, scale_sign_error

from geomvision.geometry import Camera, sampson_sq_errors
from geomvision.solvers import fundamental_7pt, fundamental_8pt
from geomvision.synthetic import planar_scene


def _relative_epipolar_residuals(F, x1, x2):
    """|x2^T F x1| / (|F| |x1| |x2|) of homogeneous pixels."""
    h1 = np.c_[x1, np.ones(len(x1))]
    h2 = np.c_[x2, np.ones(len(x2))]
    r = np.einsum("ij,jk,ik->i", h2, F / np.linalg.norm(F), h1)
    return np.abs(r) / (np.linalg.norm(h1, axis=1) * np.linalg.norm(h2, axis=1))


def test_7pt_recovers_ground_truth(rng):
    counts = []
    for _ in range(300):
        F, x1, x2, _ = fundamental_case(rng, 7)
        Fs = fundamental_7pt(x1, x2)
        counts.append(len(Fs))
        assert len(Fs) in (1, 2, 3)  # a double real root may be reported once
        assert min(scale_sign_error(G, F) for G in Fs) < 1e-8
        for G in Fs:
            s = np.linalg.svd(G, compute_uv=False)
            assert s[2] < 1e-10 * s[0]  # rank 2
            assert np.isclose(np.linalg.norm(G), 1.0)
            assert _relative_epipolar_residuals(G, x1, x2).max() < 1e-12
    assert 3 in counts and 1 in counts


def test_7pt_near_degenerate_valid(rng):
    # short baseline (1 % of the depth) still determines F exactly on exact data
    for _ in range(50):
        F, x1, x2, _ = fundamental_case(rng, 7, baseline=0.05)
        Fs = fundamental_7pt(x1, x2)
        assert min(scale_sign_error(G, F) for G in Fs) < 1e-8


def test_8pt_exact_rank2_and_weights(rng):
    F, x1, x2, _ = fundamental_case(rng, 80)
    G = fundamental_8pt(x1, x2)
    assert scale_sign_error(G, F) < 1e-9
    s = np.linalg.svd(G, compute_uv=False)
    assert s[2] < 1e-12 * s[0]
    y1 = np.vstack([x1, rng.uniform(0, 640, size=(30, 2))])
    y2 = np.vstack([x2, rng.uniform(0, 480, size=(30, 2))])
    w = np.r_[rng.uniform(0.5, 2.0, 80), np.zeros(30)]
    assert scale_sign_error(fundamental_8pt(y1, y2, w), F) < 1e-9
    assert scale_sign_error(fundamental_8pt(y1, y2), F) > 1e-3


def test_8pt_different_cameras(rng):
    cam2 = Camera("SIMPLE_PINHOLE", 1000, 800, [900.0, 480.0, 410.0])
    F, x1, x2, _ = fundamental_case(rng, 30, CAMERA, cam2)
    assert scale_sign_error(fundamental_8pt(x1, x2), F) < 1e-9


def test_8pt_noisy_sampson_close_to_noise(rng):
    _F, x1, x2, _ = fundamental_case(rng, 500)
    sigma = 0.5
    n1 = x1 + rng.normal(scale=sigma, size=x1.shape)
    n2 = x2 + rng.normal(scale=sigma, size=x2.shape)
    G = fundamental_8pt(n1, n2)
    # Sampson error of the noisy data: about sigma^2 per point (one dof of 4 noise components)
    mean_sq = sampson_sq_errors(G, n1, n2).mean()
    assert 0.5 * sigma**2 < mean_sq < 1.5 * sigma**2
    assert np.sqrt(sampson_sq_errors(G, x1, x2).mean()) < 0.5 * sigma


def test_degenerate_inputs_give_no_model(rng):
    sc = planar_scene(2, 100, rng=rng)
    x1, x2, _, _ = sc.pair(0, 1)
    assert fundamental_8pt(x1, x2) is None  # a plane does not determine F
    _F, x1, x2, _ = fundamental_case(rng, 7)
    rep1, rep2 = x1.copy(), x2.copy()
    rep1[3], rep2[3] = rep1[2], rep2[2]
    assert fundamental_7pt(rep1, rep2) == []
    assert fundamental_7pt(np.ones((7, 2)), np.ones((7, 2))) == []
    assert fundamental_8pt(np.tile(x1[:4], (3, 1)), np.tile(x2[:4], (3, 1))) is None


def test_bad_input(rng):
    x = rng.uniform(size=(9, 2))
    with pytest.raises(ValueError, match="x1"):
        fundamental_7pt(x[:6], x[:6])
    with pytest.raises(ValueError, match="x2"):
        fundamental_7pt(x[:7], np.full((7, 2), np.nan))
    with pytest.raises(ValueError, match="x1"):
        fundamental_8pt(x[:7], x[:7])
    with pytest.raises(ValueError, match="x1"):
        fundamental_8pt(x[:, :1], x)
    with pytest.raises(ValueError, match="weights"):
        fundamental_8pt(x, x, np.ones((9, 1)))
