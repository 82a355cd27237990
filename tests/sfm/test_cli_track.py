"""``geomvision track``: a rendered walk in, a TUM trajectory (checked against the truth), a map
that loads, per-frame statuses; rejected and unreadable frames, bad output, Ctrl-C, --map."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal

import cv2
import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.cli.track import frame_timestamps
from geomvision.io import read_tum
from geomvision.scene.align import umeyama
from geomvision.sfm import OnlineMapper
from geomvision.sfm.online import STATUSES
from geomvision.synthetic import render_walk

N_FRAMES = 40
BAD_SIZE = "frame_000020b.png"  # sorts right after frame_000020.png


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """40 frames (320x240) of a 40 degree walk, a frame of another size and a text file."""
    views = render_walk(N_FRAMES, width=320, height=240, arc_deg=40)
    folder = tmp_path_factory.mktemp("walk") / "frames"
    folder.mkdir()
    for image, name in zip(views.images, views.names):
        cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / BAD_SIZE), cv2.cvtColor(views.images[20][:200, :300], cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not a frame")
    return views, folder


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tracked(walk, tmp_path_factory):
    views, folder = walk
    out = tmp_path_factory.mktemp("track") / "out"
    cam = views.camera
    K = ",".join(repr(float(v)) for v in cam.params)  # exact PINHOLE fx, fy, cx, cy
    code, stdout, stderr = _run(["track", str(folder), "-o", str(out), "--K", K, "--fps", "10"])
    return code, stdout, stderr, out


def test_track_walk_outputs(walk, tracked):
    views, _ = walk
    code, stdout, stderr, out = tracked
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    # one line per file: 41 frames given to the mapper and the skipped text file
    assert len(lines) == N_FRAMES + 1 + 1 + 1
    assert any(line.startswith(BAD_SIZE) and "rejected" in line and "320x240" in line for line in lines)
    assert any(line.startswith("notes.txt") and "skipped" in line for line in lines)
    assert summary["frames"] == N_FRAMES + 1 and summary["rejected"] == 1 and summary["skipped_files"] == 1
    assert summary["posed"] == N_FRAMES and summary["lost"] == 0 and summary["interrupted"] is False
    assert summary["keyframes"] >= 3 and summary["points"] > 500 and summary["camera_source"] == "K"
    assert summary["tracking_median_ms"] > 0 and summary["keyframe_p95_ms"] >= summary["keyframe_median_ms"]

    doc = json.loads((out / "frames.json").read_text())
    frames = doc["frames"]
    assert [f["name"] for f in frames] == [*views.names[:21], BAD_SIZE, *views.names[21:]]
    assert {f["status"] for f in frames} <= set(STATUSES)
    assert frames[0]["status"] == "initialising"
    assert sum(f["status"] == "keyframe" for f in frames) == summary["new_keyframes"] == summary["keyframes"] - 1
    bad = frames[21]
    assert bad["status"] == "rejected" and not bad["has_pose"] and "the camera 320x240" in bad["reason"]
    assert all(f["has_pose"] for f in frames if f["name"] != BAD_SIZE)  # initialising frames too, later
    assert doc["skipped"][0]["name"] == "notes.txt"
    np.testing.assert_allclose([f["timestamp"] for f in frames], np.arange(N_FRAMES + 1) / 10.0)


def test_trajectory_matches_the_truth(walk, tracked):
    views, _ = walk
    _, _, _, out = tracked
    timestamps, poses = read_tum(out / "trajectory.txt")
    frames = json.loads((out / "frames.json").read_text())["frames"]
    name_of = {f["timestamp"]: f["name"] for f in frames}
    names = [name_of[t] for t in timestamps]
    assert len(poses) == N_FRAMES and names == views.names
    truth = [views.cams_from_world[views.names.index(n)] for n in names]
    C_est = np.array([T.inverse().t for T in poses])
    C_true = np.array([T.inverse().t for T in truth])
    s, T = umeyama(C_est, C_true)
    aligned = s * (C_est @ T.R.T + T.t)
    length = np.linalg.norm(np.diff(C_true, axis=0), axis=1).sum()
    err = np.linalg.norm(aligned - C_true, axis=1)
    assert err.max() < 0.01 * length, (err.max(), length)
    # rotations in the truth's frame: cam_from_true = cam_from_est @ est_from_true
    ang = [np.degrees(np.arccos(np.clip((np.trace(Tt.R.T @ Te.R @ T.R.T) - 1) / 2, -1, 1)))
           for Te, Tt in zip(poses, truth)]
    assert max(ang) < 0.5


def test_saved_map_loads(tracked):
    _, stdout, _, out = tracked
    summary = json.loads(stdout.strip().splitlines()[-1])
    mapper = OnlineMapper.load(out / "map")
    assert mapper.num_keyframes == summary["keyframes"]
    assert len(mapper.reconstruction().points3D) == summary["points"]
    ts, poses = mapper.trajectory()
    ts_file, poses_file = read_tum(out / "trajectory.txt")
    kept = [k for k, T in enumerate(poses) if T is not None]
    np.testing.assert_array_equal(ts[kept], ts_file)
    assert all(poses[k].allclose(P, atol=1e-9) for k, P in zip(kept, poses_file))


def test_continue_from_map(walk, tracked, tmp_path):
    views, folder = walk
    _, _, _, out = tracked
    frames = tmp_path / "more"
    frames.mkdir()
    for name in views.names[25:29]:
        shutil.copy(folder / name, frames)
    code, stdout, stderr = _run(["track", str(frames), "-o", str(tmp_path / "out2"), "--map", str(out / "map"), "-q"])
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert len(lines) == 1  # --quiet: the summary only
    assert summary["posed"] == 4 and summary["first_frame_index"] == N_FRAMES + 1 and summary["camera_source"] == "map"
    statuses = [f["status"] for f in json.loads((tmp_path / "out2" / "frames.json").read_text())["frames"]]
    assert statuses[0] == "relocalised"
    ts, _ = read_tum(tmp_path / "out2" / "trajectory.txt")
    assert len(ts) == N_FRAMES + 4  # the map's frames, then these
    np.testing.assert_array_equal(ts[-4:], np.arange(N_FRAMES + 1, N_FRAMES + 5))


def test_ctrl_c_stops_after_the_frame_and_writes(walk, tmp_path, monkeypatch):
    _, folder = walk
    original = OnlineMapper.add_frame

    def add_frame(self, image, timestamp=None):
        result = original(self, image, timestamp)
        if result.index == 5:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during frame 5
        return result

    monkeypatch.setattr(OnlineMapper, "add_frame", add_frame)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    code, stdout, stderr = _run(["track", str(folder), "-o", str(out), "-q"])
    assert code == 130 and "interrupted" in stderr
    assert "warning: no --K" in stderr and "accuracy depends on it" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["frames"] == 6 and summary["camera_source"] == "prior"
    assert len(json.loads((out / "frames.json").read_text())["frames"]) == 6
    ts, poses = read_tum(out / "trajectory.txt")
    assert len(poses) == summary["posed"] >= 3
    assert OnlineMapper.load(out / "map").num_keyframes == summary["keyframes"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


@pytest.mark.parametrize("case", ["file", "under_file"])
def test_bad_output_is_refused_before_any_work(walk, tmp_path, monkeypatch, case):
    _, folder = walk
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker if case == "file" else blocker / "out"

    def no_work(*a, **k):
        raise AssertionError("a frame was read")

    monkeypatch.setattr("geomvision.imageio.read_image", no_work)
    code, stdout, stderr = _run(["track", str(folder), "-o", str(out)])
    err = stderr.strip().splitlines()
    assert code == 2 and len(err) == 1 and stdout == ""
    expected = "exists and is not a folder" if case == "file" else "cannot write to output folder"
    assert err[0].startswith("geomvision track: error:") and expected in err[0]
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("argv, message", [
    (["--K", "1,2,3"], "--K: cannot read"),
    (["--map", "MAP", "--K", "300,300,160,120"], "do not apply with --map"),
    (["--map", "MISSING"], "holds no online map"),
    (["--min-inliers", "3"], "min_inliers must be >= 6"),
    (["--timestamps", "names", "--fps", "10"], "no number in the file name 'notes.txt'"),
])
def test_argument_errors(walk, tracked, tmp_path, argv, message):
    _, folder = walk
    argv = [a.replace("MAP", str(tracked[3] / "map")).replace("MISSING", str(tmp_path / "none")) for a in argv]
    code, _, stderr = _run(["track", str(folder), "-o", str(tmp_path / "out"), *argv])
    assert code == 2 and message in stderr, stderr


def test_frame_timestamps():
    names = ["1305031102.175304.png", "frame_12.jpg", "img-3.5x.png"]
    np.testing.assert_array_equal(frame_timestamps(names, "names", None), [1305031102.175304, 12.0, 3.5])
    np.testing.assert_array_equal(frame_timestamps(names, "index", 4.0, offset=2), [0.5, 0.75, 1.0])
    with pytest.raises(ValueError, match="no number in the file name 'a.png'"):
        frame_timestamps(["a.png", "b1.png"], "names", None)
