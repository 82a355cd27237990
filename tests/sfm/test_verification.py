"""Two-view geometric verification: the configuration of a pair and the matches it keeps,
against synthetic scenes whose true matches are known."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.sfm.options import VerificationOptions
from geomvision.sfm.verification import verify_pair
from geomvision.synthetic import orbit_scene, planar_scene, rotation_scene


def _pair(scene, outlier_ratio: float, rng: np.random.Generator):
    """Keypoints of images 0 and 1 and matches (K,2) between them, a fraction of them replaced
    by wrong partners; returns (x1, x2, matches, is_true (K,))."""
    x1, x2, _, _ = scene.pair(0, 1)
    n = len(x1)
    m = np.column_stack([np.arange(n), np.arange(n)])
    wrong = rng.random(n) < outlier_ratio
    m[wrong, 1] = rng.permutation(np.flatnonzero(wrong))  # shuffled among themselves: wrong partners
    is_true = m[:, 0] == m[:, 1]
    return x1, x2, m, is_true


def _kept_true(g, is_true, matches):
    kept = np.zeros(len(matches), dtype=bool)
    rows = {tuple(r) for r in g.inlier_matches.tolist()}
    kept[[k for k, r in enumerate(matches.tolist()) if tuple(r) in rows]] = True
    precision = (kept & is_true).sum() / max(kept.sum(), 1)
    recall = (kept & is_true).sum() / is_true.sum()
    return precision, recall


@pytest.mark.parametrize("calibrated", [True, False])
def test_general_scene_is_verified_by_its_epipolar_geometry(calibrated):
    rng = np.random.default_rng(3)
    sc = orbit_scene(n_images=2, n_points=400, noise_px=0.4, arc_deg=30.0, rng=rng)
    x1, x2, m, is_true = _pair(sc, 0.3, rng)
    g = verify_pair(x1, x2, m, sc.camera, sc.camera, calibrated=calibrated, options=VerificationOptions(), rng=0)
    assert g.config == ("calibrated" if calibrated else "uncalibrated"), g.message
    assert g.F is not None and (g.cam2_from_cam1 is not None) == calibrated
    p, r = _kept_true(g, is_true, m)
    assert p > 0.97 and r > 0.95
    if calibrated:
        assert 5.0 < g.tri_angle_deg < 40.0


def test_plane_without_calibration_keeps_the_homography_inliers():
    # F is not determined by a plane: the pair is still verified (planar) by its homography,
    # whose inliers are the true matches, so the images stay linked for tracks
    rng = np.random.default_rng(5)
    sc = planar_scene(n_images=2, n_points=400, noise_px=0.4, rng=rng)
    x1, x2, m, is_true = _pair(sc, 0.3, rng)
    g = verify_pair(x1, x2, m, sc.camera, sc.camera, calibrated=False, options=VerificationOptions(), rng=0)
    assert g.config == "planar" and g.verified, g.message
    assert g.F is None and g.H is not None and "homography" in g.message
    assert g.num_inliers == g.num_h_inliers
    p, r = _kept_true(g, is_true, m)
    assert p > 0.97 and r > 0.95


def test_pure_rotation_with_calibration_is_panoramic():
    rng = np.random.default_rng(7)
    sc = rotation_scene(n_images=2, n_points=400, noise_px=0.4, rng=rng)
    x1, x2, m, is_true = _pair(sc, 0.3, rng)
    g = verify_pair(x1, x2, m, sc.camera, sc.camera, calibrated=True, options=VerificationOptions(), rng=0)
    assert g.config == "panoramic", g.message
    assert g.num_inliers == g.num_h_inliers  # a rotation is a homography: its inliers are kept
    p, r = _kept_true(g, is_true, m)
    assert p > 0.97 and r > 0.95


def test_random_matches_fail_with_a_reason():
    rng = np.random.default_rng(9)
    sc = orbit_scene(n_images=2, n_points=300, rng=rng)
    x1, x2, m, _ = _pair(sc, 1.0, rng)
    g = verify_pair(x1, x2, m, sc.camera, sc.camera, calibrated=True, options=VerificationOptions(), rng=0)
    assert g.config == "failed" and not g.verified and g.num_inliers == 0
    assert "inliers" in g.message or "matrix" in g.message or "behind" in g.message
    few = verify_pair(x1, x2, m[:10], sc.camera, sc.camera, calibrated=True, options=VerificationOptions(), rng=0)
    assert few.config == "failed" and "10 matches" in few.message


def test_median_triangulation_angle_is_that_of_the_true_points():
    """The angle between the viewing rays is the triangulation angle: exact on noise-free
    matches (against the angles at the true points), and within noise of triangulating first."""
    from geomvision.geometry.triangulation import triangulation_angles_deg
    from geomvision.sfm.verification import median_triangulation_angle_deg, two_view_structure

    for noise in (0.0, 0.5):
        sc = orbit_scene(n_images=2, n_points=300, noise_px=noise, arc_deg=25.0, rng=np.random.default_rng(5))
        x1, x2, pts, _ = sc.pair(0, 1)
        r1, r2 = sc.camera.cam_from_img(x1), sc.camera.cam_from_img(x2)
        rel = sc.relative_pose(0, 1)
        true = np.median(triangulation_angles_deg(sc.X_world[pts], sc.cams_from_world, np.r_[np.zeros(len(pts), int),
                         np.ones(len(pts), int)], np.r_[np.arange(len(pts)), np.arange(len(pts))]))
        got = median_triangulation_angle_deg(rel, r1, r2)
        assert 10.0 < true < 30.0
        if noise == 0.0:
            assert got == pytest.approx(true, abs=1e-9)
        else:
            assert got == pytest.approx(two_view_structure(rel, r1, r2)[0], abs=0.05)
            assert got == pytest.approx(true, abs=0.05)
    assert np.isnan(median_triangulation_angle_deg(rel, r1[:0], r2[:0]))


def test_baseline_sign_votes_tell_a_reversed_baseline_and_a_mix_of_both():
    """Matches in front of both cameras vote for the baseline's sign; matches that fit the same
    essential matrix with the baseline reversed (shifted repeated structure) vote against it,
    and a mix of the two leaves the sign undecided (the sign test the seeding uses)."""
    from geomvision._stats import sign_test_pvalue
    from geomvision.geometry.rigid import Rigid3
    from geomvision.sfm.verification import baseline_sign_votes

    sc = orbit_scene(n_images=2, n_points=300, noise_px=0.0, arc_deg=25.0, rng=np.random.default_rng(5))
    x1, x2, _, _ = sc.pair(0, 1)
    r1, r2 = sc.camera.cam_from_img(x1), sc.camera.cam_from_img(x2)
    rel = sc.relative_pose(0, 1)
    rev = Rigid3(rel.R, -rel.t)
    front, back = baseline_sign_votes(rel, r1, r2, 1.5)
    assert front > 250 and back == 0
    assert baseline_sign_votes(rev, r1, r2, 1.5) == (back, front)
    # points in front of both cameras of the reversed pose: the same epipolar geometry
    rng = np.random.default_rng(1)
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (150, 3))  # camera 1's frame
    y1 = X / X[:, 2:]
    X2 = X @ rev.R.T + rev.t
    keep = X2[:, 2] > 0
    y2 = X2[keep] / X2[keep, 2:]
    f2, b2 = baseline_sign_votes(rel, y1[keep], y2, 1.5)
    assert f2 == 0 and b2 > 100
    f, b = baseline_sign_votes(rel, np.r_[r1[:b2], y1[keep]], np.r_[r2[:b2], y2], 1.5)
    assert abs(f - b) < 0.2 * (f + b) and sign_test_pvalue(f, f + b) > 0.05
    assert sign_test_pvalue(front, front + back) < 1e-6
    # rays that meet at less than the angle do not vote
    assert baseline_sign_votes(rel, r1, r2, 89.0) == (0, 0)
