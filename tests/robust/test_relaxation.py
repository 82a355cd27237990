"""The relaxation of local optima (``RansacOptions.relax_radius``; issue 15).

On the real pair below (Strecha fountain-P11, images 5 and 10, 151 SIFT matches, half of them
inliers) two optima 0.4 degrees apart share most of their inliers, and each is a minimum of the
refinement at the threshold: a run whose LO lands in the worse one (higher score, 0.5-0.65
degrees off) stays there. Re-estimating with the Cauchy loss on the points within five
thresholds, which has one minimum there, and keeping it when it scores lower, ends every run in
the better one.
"""

from __future__ import annotations

import numpy as np
import pytest
from _pair_helpers import pose_error_deg, strecha_pair

import geomvision as gv

SEEDS = range(100)


@pytest.fixture(scope="module")
def fountain_pair(shared_data):
    return strecha_pair(shared_data / "strecha", "fountain-P11", 5, 10)


def _errors(pair, **options) -> np.ndarray:
    x1, x2, cam1, cam2, gt = pair
    return np.array([pose_error_deg(gv.estimate_relative_pose(x1, x2, cam1, cam2, max_error=1.0, rng=s,
                                                              **options).model, gt) for s in SEEDS])


def test_relaxation_leaves_the_worse_optimum(fountain_pair):
    stuck = _errors(fountain_pair, relax_radius=0.0)
    relaxed = _errors(fountain_pair)  # the relative pose's default radius, 5 thresholds
    assert np.count_nonzero(stuck > 0.4) >= 3, np.sort(stuck)[-8:]  # runs left in the worse optimum
    assert np.count_nonzero(relaxed > 0.4) == 0, np.sort(relaxed)[-8:]
    assert np.median(relaxed) < 0.25


def test_relax_radius_is_validated():
    with pytest.raises(ValueError, match="relax_radius"):
        gv.RansacOptions(relax_radius=-1.0)
    assert gv.RansacOptions(relax_radius=0.0).relax_radius == 0.0
