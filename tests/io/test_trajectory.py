"""TUM trajectories: exact round trip, the world_from_camera convention, skipped frames, bad lines."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision import Rigid3
from geomvision.geometry.rotation import rotmat_from_quat_xyzw
from geomvision.io import read_tum, write_tum


def _random_trajectory(rng, n):
    timestamps = np.cumsum(rng.uniform(0.01, 0.1, n)) + 1305031102.175304
    return timestamps, [Rigid3.random(rng, t_scale=3.0) for _ in range(n)]


def test_round_trip_is_exact(tmp_path, rng):
    ts, poses = _random_trajectory(rng, 50)
    write_tum((ts, poses), tmp_path / "t.txt")
    ts2, poses2 = read_tum(tmp_path / "t.txt")
    np.testing.assert_array_equal(ts2, ts)  # shortest repr: timestamps come back bit for bit
    assert len(poses2) == 50
    for a, b in zip(poses, poses2):
        assert np.abs(a.R - b.R).max() < 1e-12 and np.abs(a.t - b.t).max() < 1e-12
        assert np.abs(a.inverse().t - b.inverse().t).max() < 1e-12


def test_written_pose_is_world_from_camera(tmp_path):
    # a camera at C looking at a target: TUM's tx ty tz is C, the quaternion rotates camera axes to world
    C = np.array([1.5, -2.0, 0.75])
    cam_from_world = Rigid3.look_at(C, target=[0.0, 3.0, 1.0])
    write_tum(([12.5], [cam_from_world]), tmp_path / "t.txt")
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert lines[0] == "# timestamp tx ty tz qx qy qz qw" and len(lines) == 2
    vals = np.array(lines[1].split(), float)
    assert vals[0] == 12.5
    np.testing.assert_allclose(vals[1:4], C, atol=1e-12)
    R_wc = rotmat_from_quat_xyzw(vals[4:])
    # the camera's optical axis (z) in world points from C to the target
    forward = np.array([0.0, 3.0, 1.0]) - C
    np.testing.assert_allclose(R_wc[:, 2], forward / np.linalg.norm(forward), atol=1e-12)
    np.testing.assert_allclose(R_wc, cam_from_world.R.T, atol=1e-12)
    assert vals[7] >= 0  # qw last, the non-negative representative


def test_hand_made_quaternion_order(tmp_path):
    # a 90 degree turn about world z: (x y z w) = (0, 0, sin 45, cos 45)
    s = float(np.sqrt(0.5))
    (tmp_path / "t.txt").write_text(f"0.0 1 2 3 0 0 {s!r} {s!r}\n")
    _, (cam_from_world,) = read_tum(tmp_path / "t.txt")
    world_from_cam = cam_from_world.inverse()
    np.testing.assert_allclose(world_from_cam.R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(world_from_cam.t, [1, 2, 3], atol=1e-12)


def test_frames_without_pose_are_skipped(tmp_path, rng):
    ts, poses = _random_trajectory(rng, 5)
    poses[0] = poses[3] = None
    write_tum((ts, poses), tmp_path / "t.txt")
    ts2, poses2 = read_tum(tmp_path / "t.txt")
    np.testing.assert_array_equal(ts2, ts[[1, 2, 4]])
    assert all(a.allclose(b, atol=1e-12) for a, b in zip([poses[1], poses[2], poses[4]], poses2))


def test_empty_trajectory(tmp_path):
    write_tum((np.zeros(0), []), tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text() == "# timestamp tx ty tz qx qy qz qw\n"
    ts, poses = read_tum(tmp_path / "t.txt")
    assert ts.shape == (0,) and poses == []


def test_writer_argument_errors(tmp_path):
    T = Rigid3.identity()
    with pytest.raises(ValueError, match="arguments are swapped"):
        write_tum(tmp_path / "t.txt", ([0.0], [T]))
    with pytest.raises(ValueError, match="1 timestamps but 2 poses"):
        write_tum(([0.0], [T, T]), tmp_path / "t.txt")
    with pytest.raises(ValueError, match="pose 1 must be a Rigid3"):
        write_tum(([0.0, 1.0], [T, np.eye(4)]), tmp_path / "t.txt")
    with pytest.raises(ValueError, match="timestamp of pose 0 is nan"):
        write_tum(([np.nan], [T]), tmp_path / "t.txt")
    assert not (tmp_path / "t.txt").exists()


@pytest.mark.parametrize("bad, message", [
    ("1.0 0 0 0 0 0 0", "line 3: expected 8 numbers"),
    ("1.0 0 0 0 0 0 0 1 7", "line 3: expected 8 numbers"),
    ("1.0 0 0 zero 0 0 0 1", "line 3: number 'zero' is not a number"),
    ("1.0 0 0 0 0 0 0 0", "line 3: the quaternion qx qy qz qw has norm 0"),
    ("1.0 0 0 0 1 1 1 1", "line 3: the quaternion qx qy qz qw has norm 2"),
    ("1.0 0 nan 0 0 0 0 1", "line 3: non-finite value"),
])
def test_malformed_lines_name_the_line(tmp_path, bad, message):
    path = tmp_path / "t.txt"
    path.write_text(f"# timestamp tx ty tz qx qy qz qw\n0.5 1 2 3 0 0 0 1\n{bad}\n2.0 0 0 0 0 0 0 1\n")
    with pytest.raises(ValueError, match=message) as info:
        read_tum(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_tum(tmp_path / "nope.txt")
