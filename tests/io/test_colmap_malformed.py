"""Malformed COLMAP models: every kind of error is a ValueError naming the file, the line (text)
or record and byte offset (binary), and what is wrong."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from geomvision import Camera, Rigid3
from geomvision.io import colmap_binary as cb
from geomvision.io import colmap_text as ct
from geomvision.io import read_model, write_model
from geomvision.scene import Reconstruction


def tiny_reconstruction() -> Reconstruction:
    """Camera 1; images 1 and 2 with 3 keypoints each; point 1 = (1,0)+(2,0), point 2 = (1,1)+(2,2)."""
    rec = Reconstruction()
    rec.add_camera(Camera("PINHOLE", 640, 480, [500, 500, 319.5, 239.5]), camera_id=1)
    for iid in (1, 2):
        kp = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]) + iid
        rec.add_image(f"im{iid}.png", 1, kp, Rigid3.from_rotvec([0.0, 0.1 * iid, 0.0], [iid, 0.0, 0.0]), image_id=iid)
    rec.add_point3D([0.0, 0.0, 5.0], [[1, 0], [2, 0]], point3D_id=1)
    rec.add_point3D([1.0, 0.0, 5.0], [[1, 1], [2, 2]], point3D_id=2)
    return rec


@pytest.fixture
def text_model(tmp_path) -> Path:
    folder = tmp_path / "txt"
    write_model(tiny_reconstruction(), folder, binary=False)
    return folder


def edit_line(path: Path, line_no: int, new: str) -> None:
    lines = path.read_text().split("\n")
    lines[line_no - 1] = new
    path.write_text("\n".join(lines))


def get_line(path: Path, line_no: int) -> str:
    return path.read_text().split("\n")[line_no - 1]


def to_binary(text_folder: Path, out: Path) -> Path:
    """Re-encode a (possibly inconsistent) text model as binary with the raw, non-validating codecs."""
    out.mkdir()
    (out / "cameras.bin").write_bytes(cb.cameras_binary_bytes(ct.read_cameras_text(text_folder / "cameras.txt")))
    (out / "images.bin").write_bytes(cb.images_binary_bytes(ct.read_images_text(text_folder / "images.txt")))
    (out / "points3D.bin").write_bytes(cb.points3D_binary_bytes(ct.read_points3D_text(text_folder / "points3D.txt")))
    (out / "rigs.bin").write_bytes(cb.rigs_binary_bytes(ct.read_rigs_text(text_folder / "rigs.txt")))
    (out / "frames.bin").write_bytes(cb.frames_binary_bytes(ct.read_frames_text(text_folder / "frames.txt")))
    return out


def expect_error(folder: Path, file: str, where: str, what: str) -> None:
    with pytest.raises(ValueError) as info:
        read_model(folder)
    msg = str(info.value)
    assert re.search(re.escape(str(folder / file)) + ": " + where + ": .*" + what, msg), msg


def test_tiny_model_is_valid(text_model, tmp_path):
    rec = read_model(text_model)
    assert sorted(rec.points3D) == [1, 2]
    assert read_model(to_binary(text_model, tmp_path / "bin")).images[2].point3D_ids.tolist() == [1, -1, 2]


# --- dangling ids and broken links: text and binary --------------------------------------------
# (file, text line, edit of that line, message); images.txt: image k header on 5+2k, points 6+2k;
# points3D.txt: point k on line 4+k.
LINK_ERRORS = {
    "image_missing_camera": ("images.txt", 5, lambda s: s.replace(" 1 im1.png", " 5 im1.png"), "uses camera 5"),
    "track_missing_image": ("points3D.txt", 4, lambda s: s[: s.rindex(" 2 0")] + " 77 0", "image 77, which is not"),
    "track_keypoint_out_of_range": ("points3D.txt", 5, lambda s: s[: s.rindex(" 2 2")] + " 2 50", "point2D 50"),
    "keypoint_missing_point": ("images.txt", 8, lambda s: s[: s.rindex(" 2")] + " 999", "point3D 999, which is not"),
    "keypoint_disagrees_with_track": ("images.txt", 8, lambda s: s[: s.rindex(" 2")] + " 1", "point3D 1, but"),
    "keypoint_claimed_twice": ("points3D.txt", 5, lambda s: s.replace(" 2 2", " 2 0"), "already claims"),
    "duplicate_image_id": ("images.txt", 7, lambda s: "1" + s[1:], "duplicate image id 1"),
    "duplicate_point_id": ("points3D.txt", 5, lambda s: "1" + s[1:], "duplicate point3D id 1"),
    "nonfinite_point": ("points3D.txt", 4, lambda s: s.replace(" 5.0 ", " nan ", 1), "non-finite"),
}


@pytest.mark.parametrize("case", sorted(LINK_ERRORS))
@pytest.mark.parametrize("binary", [False, True], ids=["txt", "bin"])
def test_dangling_ids_and_broken_links(text_model, tmp_path, case, binary):
    """The error names the record holding the bad reference (an image's header line for images)."""
    file, line, edit, what = LINK_ERRORS[case]
    edit_line(text_model / file, line, edit(get_line(text_model / file, line)))
    name = file.split(".")[0]
    if name == "images":
        line -= line % 2 == 0  # a POINTS2D line belongs to the image header above it
    if binary:
        record = (line - 5) // 2 if name == "images" else line - 4
        expect_error(to_binary(text_model, tmp_path / "bin"), f"{name}.bin", rf"record {record} \(byte \d+\)", what)
    else:
        expect_error(text_model, file, f"line {line}", what)


# --- text syntax ---------------------------------------------------------------------------------
TEXT_ERRORS = {
    "camera_param_count": ("cameras.txt", 4, "1 PINHOLE 640 480 500 500 320", "PINHOLE takes 4 parameters, the line has 3"),
    "camera_not_a_number": ("cameras.txt", 4, "1 PINHOLE 640 480 500 abc 320 240", "'abc' is not a number"),
    "camera_unknown_model": ("cameras.txt", 4, "1 FOO 640 480 500", "unknown camera model 'FOO'"),
    "camera_unsupported_model": (
        "cameras.txt", 4, "1 FULL_OPENCV 640 480 500 500 320 240 0 0 0 0 0 0 0 0", "camera 1 uses COLMAP model FULL_OPENCV"
    ),
    "camera_bad_size": ("cameras.txt", 4, "1 PINHOLE 640.5 480 500 500 320 240", "'640.5' is not an integer"),
    "image_header_fields": ("images.txt", 5, "1 1 0 0 0 0 0 0 1", "got 9 fields"),
    "image_id_not_integer": ("images.txt", 5, "1.5 1 0 0 0 0 0 0 1 im1.png", "image id '1.5' is not an integer"),
    "image_zero_quaternion": ("images.txt", 5, "1 0 0 0 0 0 0 0 1 im1.png", "invalid pose"),
    "points2D_not_triples": ("images.txt", 6, "1 2 -1 3 4", "triples"),
    "points2D_not_a_number": ("images.txt", 6, "1 2 -1 3 x -1 5 6 -1", "'x' is not a number"),
    "point3D_odd_track": ("points3D.txt", 4, "1 0 0 5 0 0 0 -1 1 0 2", "got 11 fields"),
    "point3D_color_range": ("points3D.txt", 4, "1 0 0 5 300 0 0 -1 1 0 2 0", "outside 0..255"),
    "point3D_negative_track": ("points3D.txt", 4, "1 0 0 5 0 0 0 -1 1 0 2 -3", "negative"),
    "frames_field_count": ("frames.txt", 4, "1 1 1 0 0 0 0 0 0 2 CAMERA 1 1", "need 16 fields"),
    "frames_sensor_type": ("frames.txt", 4, "1 1 1 0 0 0 0 0 0 1 LIDAR 1 1", "unknown sensor type 'LIDAR'"),
    "rigs_truncated": ("rigs.txt", 4, "1 2 CAMERA 1 CAMERA", "ends before"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TEXT_ERRORS))
def test_text_syntax_errors(text_model, case):
    file, line, new, what = TEXT_ERRORS[case]
    edit_line(text_model / file, line, new)
    expect_error(text_model, file, f"line {line}", re.escape(what))


def test_images_text_missing_points_line(text_model):
    path = text_model / "images.txt"
    path.write_text("\n".join(path.read_text().split("\n")[:7]))  # ends with image 2's header
    expect_error(text_model, "images.txt", "line 7", "no POINTS2D line")


# --- binary structure ----------------------------------------------------------------------------
@pytest.fixture
def binary_model(tmp_path) -> Path:
    folder = tmp_path / "bin"
    write_model(tiny_reconstruction(), folder, binary=True)
    return folder


@pytest.mark.parametrize("file", ["cameras", "images", "points3D", "rigs", "frames"])
def test_truncated_binary(binary_model, file):
    path = binary_model / f"{file}.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    expect_error(binary_model, f"{file}.bin", r"(record \d+ \(byte \d+\)|header \(byte 0\))", "truncated")


@pytest.mark.parametrize("file", ["cameras", "images", "points3D", "rigs", "frames"])
def test_trailing_bytes_in_binary(binary_model, file):
    path = binary_model / f"{file}.bin"
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    expect_error(binary_model, f"{file}.bin", r"byte \d+", "2 unexpected bytes after the last record")


def test_binary_count_larger_than_file(binary_model):
    path = binary_model / "points3D.bin"
    path.write_bytes(struct.pack("<Q", 10**12) + path.read_bytes()[8:])
    expect_error(binary_model, "points3D.bin", r"header \(byte 0\)", "declares 1000000000000 points")


def test_binary_unknown_and_unsupported_models(binary_model):
    path = binary_model / "cameras.bin"
    path.write_bytes(struct.pack("<QIiQQ", 1, 1, 99, 640, 480))
    expect_error(binary_model, "cameras.bin", r"record 0 \(byte 8\)", "unknown COLMAP camera model id 99")
    path.write_bytes(struct.pack("<QIiQQ12d", 1, 1, 6, 640, 480, 500, 500, 320, 240, *[0.0] * 8))
    expect_error(binary_model, "cameras.bin", r"record 0 \(byte 8\)", "FULL_OPENCV .id 6., which geomvision does not")


def test_binary_invalid_camera_params(binary_model):
    (binary_model / "cameras.bin").write_bytes(struct.pack("<QIiQQ4d", 1, 1, 1, 640, 480, -500, 500, 320, 240))
    expect_error(binary_model, "cameras.bin", r"record 0 \(byte 8\)", "camera 1: .*focal lengths must be positive")


def test_binary_name_without_terminator(binary_model):
    path = binary_model / "images.bin"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 1) + data[8 : data.index(b"im1.png") + 7] + b"x" * 20)  # name never ends
    expect_error(binary_model, "images.bin", r"record 0 \(byte \d+\)", "no NUL terminator")


# --- COLMAP 4 rigs and frames --------------------------------------------------------------------
def test_rigs_without_frames(binary_model):
    (binary_model / "frames.bin").unlink()
    with pytest.raises(ValueError, match=r"rigs\.bin exists but frames\.bin does not"):
        read_model(binary_model)


def test_image_in_no_frame(text_model):
    edit_line(text_model / "frames.txt", 5, "")
    expect_error(text_model, "images.txt", "line 7", "image 2 is in no frame")


def test_frame_lists_missing_image(text_model):
    edit_line(text_model / "frames.txt", 5, get_line(text_model / "frames.txt", 5)[:-1] + "9")
    expect_error(text_model, "frames.txt", "line 5", "lists image 9, which is not in")


def test_frame_uses_missing_rig(text_model):
    line = get_line(text_model / "frames.txt", 4).split(" ")
    line[1] = "4"
    edit_line(text_model / "frames.txt", 4, " ".join(line))
    expect_error(text_model, "frames.txt", "line 4", "uses rig 4, which is not in")


def test_rig_with_missing_camera(text_model):
    edit_line(text_model / "rigs.txt", 4, "1 1 CAMERA 3")
    expect_error(text_model, "rigs.txt", "line 4", "rig 1 has camera 3, which is not in")


def test_frame_pose_disagrees_with_image(text_model):
    line = get_line(text_model / "frames.txt", 5).split(" ")
    line[8] = "0.5"  # tz of rig_from_world
    edit_line(text_model / "frames.txt", 5, " ".join(line))
    expect_error(text_model, "images.txt", "line 7", "differs from frame 2")


def test_not_utf8_text(text_model):
    (text_model / "cameras.txt").write_bytes(b"# x\n1 PINHOLE \xff\xfe\n")
    expect_error(text_model, "cameras.txt", "line 2", "not UTF-8")


# --- writing invalid reconstructions ---------------------------------------------------------------
def test_write_rejects_inconsistent_reconstruction(tmp_path):
    rec = tiny_reconstruction()
    rec.images[1].point3D_ids[2] = 7  # keypoint points to a missing point
    with pytest.raises(ValueError, match="image 1 point2D 2 refers to point3D 7.*rec.check"):
        write_model(rec, tmp_path / "a")
    rec = tiny_reconstruction()
    rec.images[2].cam_from_world = None  # observed points in an unregistered image
    with pytest.raises(ValueError, match="point 1 has a track element in image 2, which is not in a registered image"):
        write_model(rec, tmp_path / "b")


def test_write_rejects_ids_outside_colmap_range(tmp_path):
    rec = tiny_reconstruction()
    rec.add_camera(Camera("PINHOLE", 10, 10, [1, 1, 5, 5]), camera_id=2**32)
    with pytest.raises(ValueError, match="camera id 4294967296 is outside COLMAP's range"):
        write_model(rec, tmp_path / "a")
