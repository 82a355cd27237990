"""Robust estimators on a real Strecha pair (fountain-P11, images 0004 and 0005) against the
ground-truth cameras: this runs in CI (the shared data must be present there)."""

from __future__ import annotations

import numpy as np
import pytest

import geomvision as gv
from geomvision.features import FeatureOptions, MatchOptions, extract_features, match_descriptors
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.imageio import read_image
from geomvision.solvers import decompose_essential


@pytest.fixture(scope="module")
def real_pair(fountain):
    a, b = fountain.image_names[4], fountain.image_names[5]
    opts = FeatureOptions(max_num_features=4000)
    f1 = extract_features(read_image(fountain.image_dir / a), opts)
    f2 = extract_features(read_image(fountain.image_dir / b), opts)
    m = match_descriptors(f1.descriptors, f2.descriptors, MatchOptions(ratio=0.8))
    x1, x2 = f1.keypoints[m[:, 0]], f2.keypoints[m[:, 1]]
    gt = fountain.cams_from_world[b] @ fountain.cams_from_world[a].inverse()
    return x1, x2, fountain.cameras[a], fountain.cameras[b], gt


def _t_angle_deg(t, t_gt):
    c = np.dot(t, t_gt) / (np.linalg.norm(t) * np.linalg.norm(t_gt))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def test_relative_pose_matches_ground_truth(real_pair):
    x1, x2, cam1, cam2, gt = real_pair
    assert len(x1) > 500
    res = gv.estimate_relative_pose(x1, x2, cam1, cam2, max_error=1.0, rng=0)
    assert res.stats.success
    assert res.stats.inlier_ratio > 0.5
    assert rotation_error_deg(res.model.R, gt.R) < 0.2
    assert _t_angle_deg(res.model.t, gt.t) < 1.0
    # the inliers agree with the true epipolar geometry to well under the threshold
    F = gv.fundamental_from_pose(gt, cam1, cam2)
    d = np.sqrt(gv.sampson_sq_errors(F, x1[res.inliers], x2[res.inliers]))
    assert np.median(d) < 0.5


def test_fundamental_matches_ground_truth(real_pair):
    x1, x2, cam1, cam2, gt = real_pair
    res = gv.estimate_fundamental(x1, x2, max_error=1.0, rng=0)
    assert res.stats.success
    F_gt = gv.fundamental_from_pose(gt, cam1, cam2)
    # the true epipolar geometry explains what RANSAC called inliers, and vice versa
    d_gt = np.sqrt(gv.sampson_sq_errors(F_gt, x1[res.inliers], x2[res.inliers]))
    assert np.median(d_gt) < 0.6
    gt_inliers = gv.sampson_sq_errors(F_gt, x1, x2) < 1.0
    assert np.count_nonzero(res.inliers & gt_inliers) > 0.9 * np.count_nonzero(gt_inliers)
    # the essential matrix implied by the estimated F gives the true relative rotation
    E = cam2.K.T @ res.model @ cam1.K
    poses = decompose_essential(E)
    assert min(rotation_error_deg(p.R, gt.R) for p in poses) < 1.0
