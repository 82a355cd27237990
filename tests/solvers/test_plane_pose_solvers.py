"""The two-fold ambiguities of a plane (issue 18, item 2): the decompositions of a homography,
the two poses of a plane seen by one camera (IPPE), and their resolution on the evidence."""

from __future__ import annotations

import numpy as np

from geomvision.geometry import Camera, Rigid3, so3_exp
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.robust import estimate_absolute_pose, resolve_pose_ambiguity
from geomvision.robust.engine import RansacResult, RansacStats
from geomvision.solvers.absolute import planar_pose_ippe
from geomvision.solvers.homography import decompose_homography, relative_poses_from_homography

CAMERA = Camera("PINHOLE", 640, 480, [700.0, 700.0, 319.5, 239.5])


def _plane_two_views(rng, n=200):
    """(cam2_from_cam1, normal, distance, rays1, rays2) of points on a plane in front of both."""
    while True:
        T = Rigid3(so3_exp(rng.normal(scale=0.3, size=3)), rng.normal(scale=0.5, size=3))
        nrm = rng.normal(size=3)
        nrm[2] = abs(nrm[2]) + 1.0
        nrm /= np.linalg.norm(nrm)
        d = rng.uniform(2.0, 6.0)
        r1 = np.c_[rng.uniform(-0.5, 0.5, (n, 2)), np.ones(n)]
        X1 = r1 * (d / (r1 @ nrm))[:, None]
        X2 = T.apply(X1)
        if (X1[:, 2] > 0.5).all() and (X2[:, 2] > 0.5).all():
            return T, nrm, d, r1, X2 / X2[:, 2:]


def test_homography_decomposition_contains_the_true_motion(rng):
    for _ in range(200):
        T, nrm, d, r1, r2 = _plane_two_views(rng)
        H = (T.R + np.outer(T.t, nrm) / d) * rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 10.0)
        if np.linalg.det(H) < 0:
            H = -H  # decompose_homography takes H signed for positive depths
        sols = decompose_homography(H)
        assert len(sols) == 4
        for pose, n in sols:
            assert np.isclose(np.linalg.det(pose.R), 1.0) and np.isclose(np.linalg.norm(n), 1.0)
            # each solution reproduces H up to scale: R + t n^T
            M = pose.R + np.outer(pose.t, n)
            assert np.abs(M / np.linalg.norm(M) - H / np.linalg.norm(H)).max() < 1e-9
        err = min(rotation_error_deg(p.R, T.R) + np.linalg.norm(p.t - T.t / d) + np.linalg.norm(n - nrm)
                  for p, n in sols)
        assert err < 1e-6
        # cheirality keeps the truth and at most its twin, with unit translation
        kept = relative_poses_from_homography(H * rng.choice([-1.0, 1.0]), r1, r2)
        assert 1 <= len(kept) <= 2
        assert min(rotation_error_deg(p.R, T.R) + np.linalg.norm(p.t - T.t / np.linalg.norm(T.t))
                   for p, _n, _f in kept) < 1e-5


def test_a_rotation_homography_has_no_baseline(rng):
    R = so3_exp(rng.normal(scale=0.3, size=3))
    sols = decompose_homography(2.5 * R)
    assert len(sols) == 1 and rotation_error_deg(sols[0][0].R, R) < 1e-6 and np.allclose(sols[0][0].t, 0.0)
    r1 = np.c_[rng.uniform(-0.5, 0.5, (50, 2)), np.ones(50)]
    assert relative_poses_from_homography(R, r1, r1 @ R.T) == []  # no motion with a baseline


def _plane_view(rng, distance, half_size, n=300, noise_px=0.0):
    """(cam_from_world, uv, X_world): a camera ``distance`` from a square plane of half-size."""
    X = np.c_[rng.uniform(-half_size, half_size, (n, 2)), np.zeros(n)]
    C = np.array([*rng.normal(scale=0.3 * distance, size=2), distance])
    T = Rigid3.look_at(C, np.r_[rng.normal(scale=0.2, size=2), 0.0], up=(0.0, 1.0, 0.0))
    uv = CAMERA.img_from_cam(T.apply(X)) + rng.normal(scale=noise_px, size=(n, 2))
    return T, uv, X


def test_ippe_returns_the_true_pose_and_its_mirror(rng):
    for _ in range(100):
        T, uv, X = _plane_view(rng, rng.uniform(3.0, 8.0), 1.5)
        poses = planar_pose_ippe(CAMERA.cam_from_img(uv), X)
        assert len(poses) == 2
        errs = sorted(rotation_error_deg(p.R, T.R) + np.linalg.norm(p.t - T.t) for p in poses)
        assert errs[0] < 1e-8 and errs[1] > 1e-3  # the truth, and a distinct second pose
    assert planar_pose_ippe(CAMERA.cam_from_img(uv[:4]), np.zeros((4, 3))) == []  # coincident points


def test_the_better_planar_pose_is_kept_even_when_ransac_returned_the_other(rng):
    for seed in range(10):
        g = np.random.default_rng(seed)
        T, uv, X = _plane_view(g, 6.0, 1.5, noise_px=0.5)
        twin = max(planar_pose_ippe(CAMERA.cam_from_img(uv), X), key=lambda p: rotation_error_deg(p.R, T.R))
        assert rotation_error_deg(twin.R, T.R) > 5.0
        # a RANSAC result that landed on the twin (both minima fit within the threshold here)
        res = estimate_absolute_pose(uv, X, CAMERA, max_error=4.0, rng=seed)
        wrong = RansacResult(twin, np.ones(len(uv), bool), res.stats)
        out, amb = resolve_pose_ambiguity(uv, X, CAMERA, wrong, max_error=4.0)
        assert amb.resolved and amb.switched
        assert rotation_error_deg(out.model.R, T.R) < 1.0 and amb.alternative_cost > amb.cost
        assert out.inliers.sum() == out.stats.num_inliers
        # RANSAC's own answer is the right one: it is returned as it was
        out, amb = resolve_pose_ambiguity(uv, X, CAMERA, res, max_error=4.0)
        assert out is res and amb.resolved and not amb.switched


def test_a_small_far_plane_leaves_the_pose_ambiguous():
    # a 2 m plane 40 m away (35 px wide) at 0.5 px noise: both poses fit within the noise
    refused = 0
    for seed in range(10):
        g = np.random.default_rng(seed)
        T, uv, X = _plane_view(g, 40.0, 1.0, noise_px=0.5)
        res = estimate_absolute_pose(uv, X, CAMERA, max_error=4.0, rng=seed)
        out, amb = resolve_pose_ambiguity(uv, X, CAMERA, res, max_error=4.0)
        if not amb.resolved:
            refused += 1
            assert "two poses" in amb.message and "plane" in amb.message
        else:
            assert rotation_error_deg(out.model.R, T.R) < 3.0  # only noise, never the other minimum
    assert refused >= 3


def test_points_off_a_plane_have_no_second_pose(rng):
    X = rng.uniform([-1.5, -1.5, 4.0], [1.5, 1.5, 7.0], (300, 3))
    T = Rigid3(so3_exp(rng.normal(scale=0.1, size=3)), rng.normal(scale=0.3, size=3))
    uv = CAMERA.img_from_cam(T.apply(X)) + rng.normal(scale=0.5, size=(300, 2))
    res = estimate_absolute_pose(uv, X, CAMERA, max_error=4.0, rng=1)
    out, amb = resolve_pose_ambiguity(uv, X, CAMERA, res, max_error=4.0)
    assert out is res and amb.resolved
    assert amb.alternative is None or amb.alternative_cost > 10 * amb.cost  # far worse, not a rival


def test_a_failed_ransac_result_passes_through():
    res = RansacResult(None, np.zeros(5, bool), RansacStats(False, 10, 0, 0.0, np.inf, 0, 0, "no model"))
    out, amb = resolve_pose_ambiguity(np.zeros((5, 2)), np.zeros((5, 3)), CAMERA, res, max_error=4.0)
    assert out is res and amb.resolved
