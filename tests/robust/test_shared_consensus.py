"""LO from a consensus set that shares part of its inliers with the best model's (issue 15).

On the real wide pair below (Strecha fountain-P11, views 1 and 10, nine views apart: 109 SIFT
ratio-test matches, 22 of them within a pixel of the true epipolar geometry) a wrong optimum
11 degrees off holds 21 inliers, about half of them true matches. An all-inlier sample of the
true set comes once in 5,000-15,000 draws, and its minimal model shares half of its inliers with
that wrong best: counted as the same basin, it never started an LO, and 2 of 20 runs ended 11
degrees off (score 91.8 against 89.3 for the true optimum). A minimal model now counts as the
best's basin only when four in five of its inliers are the best's.
"""

from __future__ import annotations

import numpy as np
import pytest
from _pair_helpers import pose_error_deg, strecha_pair

import geomvision as gv


@pytest.fixture(scope="module")
def wide_pair(shared_data):
    return strecha_pair(shared_data / "strecha", "fountain-P11", 1, 10, decoder_grey=True)


def test_lo_from_a_true_consensus_that_shares_inliers_with_a_wrong_best(wide_pair):
    x1, x2, cam1, cam2, gt = wide_pair
    runs = [gv.estimate_relative_pose(x1, x2, cam1, cam2, max_error=1.0, rng=s) for s in range(20)]
    errors = np.array([pose_error_deg(r.model, gt) for r in runs])
    assert np.all(errors < 1.5), np.round(errors, 2)
    # every run ends on the same optimum: the lowest score any run finds
    scores = np.array([r.stats.score for r in runs])
    assert np.ptp(scores) < 0.5, np.round(scores, 2)
