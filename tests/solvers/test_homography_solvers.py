"""Homography solvers against exact plane-induced homographies."""

from __future__ import annotations

import numpy as np
import pytest
from solver_cases import plane_homography_case, scale_sign_error

from geomvision.geometry import homography_transfer_sq_errors
from geomvision.solvers import homography_4pt, homography_dlt


def test_4pt_recovers_plane_homographies(rng):
    for _ in range(300):
        H, x1, x2 = plane_homography_case(rng, 4)
        out = homography_4pt(x1, x2)
        assert len(out) == 1
        assert scale_sign_error(out[0], H) < 1e-8
        assert np.isclose(np.linalg.norm(out[0]), 1.0)
        # signed so that the sample points map with a positive scale
        assert (np.c_[x1, np.ones(4)] @ out[0][2] > 0).all()


def test_4pt_near_degenerate_but_valid(rng):
    # three of the four points almost collinear (1e-4 of the spread off the line)
    for _ in range(50):
        H, x1, x2 = plane_homography_case(rng, 4)
        x1 = x1.copy()
        x1[2] = 0.5 * (x1[0] + x1[1]) + 1e-4 * np.linalg.norm(x1[1] - x1[0]) * np.array([0.6, 0.8])
        y = np.c_[x1, np.ones(4)] @ H.T
        x2 = y[:, :2] / y[:, 2:]
        out = homography_4pt(x1, x2)
        assert len(out) == 1
        assert scale_sign_error(out[0], H) < 1e-6
        assert homography_transfer_sq_errors(out[0], x1, x2).max() < 1e-12


def test_4pt_rejects_collinear_and_coincident(rng):
    _H, x1, x2 = plane_homography_case(rng, 4)
    col = x1.copy()
    col[2] = 0.3 * col[0] + 0.7 * col[1]
    assert homography_4pt(col, x2) == []
    col2 = x2.copy()
    col2[3] = -0.5 * col2[1] + 1.5 * col2[2]
    assert homography_4pt(x1, col2) == []
    same = x1.copy()
    same[1] = same[0]
    assert homography_4pt(same, x2) == []
    assert homography_4pt(np.zeros((4, 2)), np.zeros((4, 2))) == []


def test_4pt_rejects_orientation_inconsistent(rng):
    # fold the quadrilateral: reflect point 3 across the line through points 0 and 1 while
    # point 2 stays on its side. A projective map through the four points still exists, but it
    # maps some point with a negative scale (a plane seen from both sides): no valid homography.
    tested = 0
    for _ in range(60):
        _H, x1, x2 = plane_homography_case(rng, 4)
        bad = x2.copy()
        # move point 3 across the line through points 0 and 1 (a fold: orientations disagree)
        d = bad[1] - bad[0]
        nrm = np.array([-d[1], d[0]]) / np.linalg.norm(d)
        side = np.sign((bad[3] - bad[0]) @ nrm)
        other = np.sign((bad[2] - bad[0]) @ nrm)
        if side != other:
            continue
        bad[3] = bad[3] - 2.0 * ((bad[3] - bad[0]) @ nrm) * nrm
        assert homography_4pt(x1, bad) == []
        tested += 1
    assert tested >= 10


def test_dlt_exact_and_weights(rng):
    H, x1, x2 = plane_homography_case(rng, 60)
    assert scale_sign_error(homography_dlt(x1, x2), H) < 1e-9
    # gross outliers with zero weight are ignored
    y1 = np.vstack([x1, rng.uniform(0, 640, size=(20, 2))])
    y2 = np.vstack([x2, rng.uniform(0, 640, size=(20, 2))])
    w = np.r_[np.ones(60), np.zeros(20)]
    assert scale_sign_error(homography_dlt(y1, y2, w), H) < 1e-9
    assert scale_sign_error(homography_dlt(y1, y2), H) > 1e-3  # the outliers do matter unweighted
    # four points: the DLT is the minimal solution
    assert scale_sign_error(homography_dlt(x1[:4], x2[:4]), H) < 1e-8


def test_dlt_noisy_transfer_error_close_to_noise(rng):
    _H, x1, x2 = plane_homography_case(rng, 400)
    sigma = 0.5
    n1 = x1 + rng.normal(scale=sigma, size=x1.shape)
    n2 = x2 + rng.normal(scale=sigma, size=x2.shape)
    Hd = homography_dlt(n1, n2)
    rms_true = np.sqrt(homography_transfer_sq_errors(Hd, x1, x2).mean())
    assert 0.0 < rms_true < 0.5 * sigma  # the estimate is far better than one noisy point


def test_dlt_degenerate_returns_none(rng):
    t = rng.uniform(0, 1, 30)
    line = np.c_[100 + 300 * t, 50 + 200 * t]
    other = rng.uniform(0, 640, size=(30, 2))
    assert homography_dlt(line, other) is None
    assert homography_dlt(np.tile([[10.0, 20.0]], (10, 1)), other[:10]) is None
    # three distinct points repeated: not enough constraints
    three = np.tile(rng.uniform(0, 640, size=(3, 2)), (4, 1))
    assert homography_dlt(three, three + 5.0) is None
    # zero weights leave fewer than four points
    assert homography_dlt(other, other + 1, np.r_[np.ones(3), np.zeros(27)]) is None


@pytest.mark.parametrize(
    "args, name",
    [
        ((np.zeros((3, 2)), np.zeros((3, 2))), "x1"),
        ((np.zeros((4, 2)), np.zeros((4, 3))), "x2"),
        ((np.full((4, 2), np.nan), np.zeros((4, 2))), "x1"),
    ],
)
def test_4pt_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        homography_4pt(*args)


def test_dlt_bad_input(rng):
    x = rng.uniform(size=(10, 2))
    with pytest.raises(ValueError, match="x1"):
        homography_dlt(x[:3], x[:3])
    with pytest.raises(ValueError, match="x1|x2"):
        homography_dlt(x, x[:9])
    with pytest.raises(ValueError, match="weights"):
        homography_dlt(x, x, np.ones(9))
    with pytest.raises(ValueError, match="weights"):
        homography_dlt(x, x, -np.ones(10))
    bad = x.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="x2"):
        homography_dlt(x, bad)
