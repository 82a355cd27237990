"""A planar pair's decomposition chosen by the rest of the view graph's rotations when its own
matches cannot tell the two apart (sfm/planar.py, ``rotation_residual_deg``)."""

from types import SimpleNamespace

import numpy as np

from geomvision.geometry.camera import Camera
from geomvision.geometry.rigid import Rigid3
from geomvision.geometry.rotation import rotation_error_deg
from geomvision.sfm.planar import planar_pair_pose
from geomvision.sfm.verification import TwoViewGeometry
from geomvision.solvers.homography import homography_dlt, relative_poses_from_homography


def _wall_pair(seed: int = 0):
    """Two views of points on one wall (no relief: the pair cannot choose): the state, the
    pair's geometry, the camera, the true cam2_from_cam1 and the other decomposition's rotation."""
    rng = np.random.default_rng(seed)
    cam = Camera("PINHOLE", 800, 600, [700.0, 700.0, 399.5, 299.5])
    X = np.c_[rng.uniform(-4, 4, 300), rng.uniform(-3, 3, 300), np.full(300, 8.0)]
    pose = Rigid3.from_rotvec(np.radians([2.0, -14.0, 1.0]), np.array([-1.2, 0.1, 0.3]))
    x1 = cam.img_from_cam(X)
    x2 = cam.img_from_cam(X @ pose.R.T + pose.t)
    H = homography_dlt(x1, x2)
    r1, r2 = cam.cam_from_img(x1), cam.cam_from_img(x2)
    cands = [p for p, _n, _f in relative_poses_from_homography(homography_dlt(r1[:, :2], r2[:, :2]), r1, r2)]
    assert len(cands) == 2
    other = max(cands, key=lambda p: rotation_error_deg(p.R, pose.R)).R
    assert rotation_error_deg(other, pose.R) > 5.0
    state = SimpleNamespace(images=SimpleNamespace(keypoints=[x1, x2]))
    geom = TwoViewGeometry("planar", np.c_[np.arange(300), np.arange(300)], 300, H=H, num_h_inliers=300)
    return state, geom, cam, pose, other


def _choose(state, geom, cam, residual):
    return planar_pair_pose(state, geom, 0, 1, max_error=1.0, abs_pose_max_error=4.0, min_view_correspondences=15,
                            rng=0, camera_of=lambda k: cam, rotation_residual_deg=residual)


def test_the_other_pairs_rotations_choose_a_walls_decomposition():
    state, geom, cam, pose, other = _wall_pair()
    # the rest of the graph 3 degrees off the truth (a long loop): the truth is still far nearer
    off = Rigid3.from_rotvec(np.radians([0.0, 0.0, 3.0]), np.zeros(3)).R
    got = _choose(state, geom, cam, lambda R: rotation_error_deg(R, off @ pose.R))
    assert got.pose is not None and rotation_error_deg(got.pose.R, pose.R) < 1e-6 and got.decided_by == "rotations"
    assert np.linalg.norm(got.pose.t / np.linalg.norm(got.pose.t) - pose.t / np.linalg.norm(pose.t)) < 1e-6
    # and they, not chance, decided: averaged rotations near the other decomposition choose it
    got = _choose(state, geom, cam, lambda R: rotation_error_deg(R, other))
    assert got.pose is not None and rotation_error_deg(got.pose.R, other) < 1e-6
    assert all("rotation_residual_deg" in c for c in got.candidates)


def test_a_pure_wall_pair_alone_decides_nothing():
    state, geom, cam, pose, other = _wall_pair(1)
    got = planar_pair_pose(state, geom, 0, 1, max_error=1.0, abs_pose_max_error=4.0, min_view_correspondences=15,
                           rng=0, camera_of=lambda k: cam, pair_only=True)
    assert got.pose is None and "do not tell" in got.reason
