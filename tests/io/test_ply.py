"""PLY: exact round trips, Open3D and COLMAP interop, ASCII / big-endian / extra elements, errors."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from colmap_helpers import multi_model_reconstruction, require_module, to_pycolmap

from geomvision.io import read_ply, write_ply


@pytest.fixture
def cloud(rng):
    xyz = rng.normal(size=(500, 3)) * 1e3 + [512345.678, 5e6, 100.0]  # geo-referenced magnitudes
    colors = rng.integers(0, 256, size=(500, 3)).astype(np.uint8)
    return xyz, colors


def test_round_trip_is_exact(cloud, tmp_path):
    xyz, colors = cloud
    write_ply(xyz, tmp_path / "a.ply", colors)
    xyz2, colors2 = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(colors2, colors)
    assert xyz2.dtype == np.float64 and colors2.dtype == np.uint8


def test_float32_option(cloud, tmp_path):
    xyz, colors = cloud
    write_ply(xyz, tmp_path / "a.ply", colors, dtype="float32")
    xyz2, colors2 = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(xyz2, xyz.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(colors2, colors)
    assert (tmp_path / "a.ply").stat().st_size < 500 * 16 + 300


def test_without_colors(cloud, tmp_path):
    write_ply(cloud[0], tmp_path / "a.ply")
    xyz, colors = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(xyz, cloud[0])
    assert colors is None


def test_float_colors_are_scaled(tmp_path):
    write_ply(np.zeros((3, 3)), tmp_path / "a.ply", np.array([[0.0, 0.5, 1.0]] * 3))
    np.testing.assert_array_equal(read_ply(tmp_path / "a.ply")[1], [[0, 128, 255]] * 3)
    with pytest.raises(ValueError, match=r"float colours must lie in \[0, 1\]"):
        write_ply(np.zeros((3, 3)), tmp_path / "b.ply", np.full((3, 3), 200.0))
    with pytest.raises(ValueError, match="shape"):
        write_ply(np.zeros((3, 3)), tmp_path / "b.ply", np.zeros((2, 3), np.uint8))


def test_reconstruction_points_in_id_order(rng, tmp_path):
    rec = multi_model_reconstruction(rng)
    write_ply(rec, tmp_path / "r.ply")
    xyz, colors = read_ply(tmp_path / "r.ply")
    ids = sorted(rec.points3D)
    np.testing.assert_array_equal(xyz, [rec.points3D[i].xyz for i in ids])
    np.testing.assert_array_equal(colors, [rec.points3D[i].color for i in ids])


def test_open3d_reads_ours(cloud, tmp_path):
    o3d = require_module("open3d")
    xyz, colors = cloud
    write_ply(xyz, tmp_path / "a.ply", colors)
    pc = o3d.io.read_point_cloud(str(tmp_path / "a.ply"))
    np.testing.assert_array_equal(np.asarray(pc.points), xyz)
    np.testing.assert_array_equal(np.round(np.asarray(pc.colors) * 255).astype(np.uint8), colors)


@pytest.mark.parametrize("ascii_", [False, True], ids=["binary", "ascii"])
def test_we_read_open3d_files(cloud, tmp_path, ascii_):
    o3d = require_module("open3d")
    xyz, colors = cloud
    pc = o3d.geometry.PointCloud()
    pc.points = o3d.utility.Vector3dVector(xyz)
    pc.colors = o3d.utility.Vector3dVector(colors / 255.0)
    pc.normals = o3d.utility.Vector3dVector(np.tile([0.0, 0.0, 1.0], (len(xyz), 1)))  # an extra property
    o3d.io.write_point_cloud(str(tmp_path / "o.ply"), pc, write_ascii=ascii_)
    xyz2, colors2 = read_ply(tmp_path / "o.ply")
    back = o3d.io.read_point_cloud(str(tmp_path / "o.ply"))
    np.testing.assert_array_equal(xyz2, np.asarray(back.points))  # ascii prints ~6 digits: compare to what it holds
    np.testing.assert_allclose(xyz2, xyz, rtol=1e-5 if ascii_ else 0)
    np.testing.assert_array_equal(colors2, colors)


def test_we_read_colmap_export(rng, tmp_path):
    """COLMAP's export_PLY: float xyz (and normals in some versions), uchar rgb."""
    require_module("pycolmap")
    rec = multi_model_reconstruction(rng)
    prec = to_pycolmap(rec)
    prec.export_PLY(str(tmp_path / "c.ply"))
    xyz, colors = read_ply(tmp_path / "c.ply")
    pts = prec.points3D
    want_xyz = np.array([pts[i].xyz for i in pts])
    order = np.lexsort(xyz.T)
    np.testing.assert_allclose(xyz[order], want_xyz[np.lexsort(want_xyz.astype(np.float32).T)], rtol=1e-6)
    assert sorted(map(tuple, colors.tolist())) == sorted(tuple(pts[i].color.tolist()) for i in pts)


def _header(fmt: str, n: int, extra_before: str = "", extra_after: str = "") -> bytes:
    lines = ["ply", f"format {fmt} 1.0", "comment made by hand", "obj_info test", extra_before,
             f"element vertex {n}", "property float x", "property float y", "property float z",
             "property uchar red", "property uchar green", "property uchar blue", extra_after, "end_header"]  # fmt: skip
    return ("\n".join(line for line in lines if line) + "\n").encode()


def test_big_endian_with_face_element_before_vertices(tmp_path):
    xyz = np.array([[1.5, -2.0, 3.25], [0.0, 1.0, 2.0]])
    faces = struct.pack(">B3i", 3, 0, 1, 1) + struct.pack(">B4i", 4, 1, 1, 0, 0)
    verts = b"".join(struct.pack(">3f3B", *p, 10 * k, 20, 30) for k, p in enumerate(xyz))
    header = _header("binary_big_endian", 2, extra_before="element face 2\nproperty list uchar int vertex_indices")
    (tmp_path / "be.ply").write_bytes(header + faces + verts)
    xyz2, colors = read_ply(tmp_path / "be.ply")
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(colors, [[0, 20, 30], [10, 20, 30]])


def test_ascii_with_faces_after_vertices(tmp_path):
    body = "1 2 3 4 5 6\n-1.5 0 1e3 255 0 7\n3 0 1 1\n"
    header = _header("ascii", 2, extra_after="element face 1\nproperty list uchar int vertex_indices")
    (tmp_path / "a.ply").write_bytes(header + body.encode())
    xyz, colors = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(xyz, [[1, 2, 3], [-1.5, 0, 1000]])
    np.testing.assert_array_equal(colors, [[4, 5, 6], [255, 0, 7]])


MALFORMED = {
    "not_ply": (b"hello\n", "line 1", "not a PLY file"),
    "unknown_format": (b"ply\nformat binary_middle_endian 1.0\nelement vertex 0\nend_header\n", "line 2", "unknown format"),
    "no_vertex": (b"ply\nformat ascii 1.0\nelement face 0\nend_header\n", "header", "no 'element vertex'"),
    "no_z": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n",
             "header", "no 'z' property"),
    "bad_type": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n", "line 4",
                 "unknown property type 'float128'"),
    "ascii_field_count": (_header("ascii", 2) + b"1 2 3 4 5 6\n1 2 3 4 5\n", "line 14", "expected 6 vertex values, got 5"),
    "ascii_not_number": (_header("ascii", 2) + b"1 2 3 4 5 6\n1 2 zz 4 5 6\n", "line 14", "'zz' is not a number"),
    "ascii_truncated": (_header("ascii", 3) + b"1 2 3 4 5 6\n", "line 14", "3 vertex lines expected, 1 found"),
    "ascii_color_range": (_header("ascii", 1) + b"1 2 3 4 5 256\n", "vertex colours", "outside 0..255"),
    "binary_truncated": (_header("binary_little_endian", 3) + b"\0" * 40, r"vertex record 2 \(byte \d+\)", "truncated"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_name_file_and_place(tmp_path, case):
    data, where, what = MALFORMED[case]
    path = tmp_path / f"{case}.ply"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        read_ply(path)
    msg = str(info.value)
    assert re.search(re.escape(str(path)) + ": " + where + ": .*" + re.escape(what), msg), msg


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_ply(tmp_path / "nope.ply")
