"""Opening models: COLMAP folders (binary and text), sfm output folders, PLY files, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.io import write_model, write_ply
from geomvision.synthetic import orbit_scene
from geomvision.viz.loading import load_model


@pytest.fixture
def rec(rng):
    rec = orbit_scene(5, 120, rng=rng).to_reconstruction()
    for pid, pt in rec.points3D.items():
        pt.color = np.array([pid % 256, 7, 200], dtype=np.uint8)
    return rec


def _same_points(loaded, rec):
    _, xyz, col = rec.point_arrays()
    np.testing.assert_allclose(loaded.xyz, xyz, atol=1e-12)
    np.testing.assert_array_equal(loaded.colors, col)


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_folder_and_model_file(rec, tmp_path, binary):
    write_model(rec, tmp_path / "m", binary=binary)
    loaded = load_model(tmp_path / "m")
    assert loaded.kind == "colmap" and loaded.model_dir == tmp_path / "m"
    assert loaded.reconstruction.registered_image_ids == rec.registered_image_ids
    _same_points(loaded, rec)
    ext = "bin" if binary else "txt"
    via_file = load_model(tmp_path / "m" / f"images.{ext}")
    assert via_file.model_dir == tmp_path / "m" and len(via_file.xyz) == len(rec.points3D)


def test_sfm_folder_reads_sparse_0_and_report(rec, tmp_path):
    big, small = rec, orbit_scene(3, 40, rng=1).to_reconstruction()
    write_model(small, tmp_path / "sparse" / "1")
    write_model(big, tmp_path / "sparse" / "0")
    write_ply(big, tmp_path / "points.ply")
    (tmp_path / "report.json").write_text(json.dumps({"num_models": 2, "timings": {"total_s": 3.5}}))
    loaded = load_model(tmp_path)
    assert loaded.kind == "sfm" and loaded.model_dir == tmp_path / "sparse" / "0"
    assert loaded.other_models == [tmp_path / "sparse" / "1"]
    assert loaded.report == {"num_models": 2, "timings": {"total_s": 3.5}}
    _same_points(loaded, big)


def test_sfm_folder_falls_back_to_lowest_model_then_points_ply(rec, tmp_path):
    write_model(rec, tmp_path / "sparse" / "3")
    write_model(orbit_scene(3, 40, rng=1).to_reconstruction(), tmp_path / "sparse" / "10")
    assert load_model(tmp_path).model_dir == tmp_path / "sparse" / "3"  # numeric, not text order
    only_ply = tmp_path / "only_ply"
    only_ply.mkdir()
    write_ply(rec, only_ply / "points.ply")
    loaded = load_model(only_ply)
    assert loaded.kind == "sfm" and loaded.reconstruction is None
    _same_points(loaded, rec)


def test_ply_file(rec, tmp_path):
    write_ply(rec, tmp_path / "cloud.PLY")
    loaded = load_model(tmp_path / "cloud.PLY")
    assert loaded.kind == "ply" and loaded.reconstruction is None and loaded.name == "cloud.PLY"
    _same_points(loaded, rec)


def test_missing_and_unusable_paths_give_clear_errors(rec, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_model(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="neither a COLMAP model"):
        load_model(tmp_path)
    (tmp_path / "sfm" / "sparse").mkdir(parents=True)
    with pytest.raises(ValueError, match="sfm output folder without a model"):
        load_model(tmp_path / "sfm")
    (tmp_path / "sfm" / "report.json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed report.json"):
        load_model(tmp_path / "sfm")


def test_malformed_model_names_the_file(rec, tmp_path):
    write_model(rec, tmp_path / "m")
    data = (tmp_path / "m" / "points3D.bin").read_bytes()
    (tmp_path / "m" / "points3D.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="points3D.bin"):
        load_model(tmp_path / "m")
    (tmp_path / "bad.ply").write_bytes(b"not a ply file at all")
    with pytest.raises(ValueError, match="bad.ply"):
        load_model(tmp_path / "bad.ply")


def test_cli_reports_bad_models_in_one_line(rec, tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing"), "--screenshot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geomvision view: error:") and "no such file or folder" in err
    write_model(rec, tmp_path / "m")
    (tmp_path / "m" / "cameras.bin").write_bytes(b"\x01")
    assert main(["report", str(tmp_path / "m"), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geomvision report: error:") and "cameras.bin" in err
    assert not (tmp_path / "r" / "report.html").exists()
    assert main(["view", str(tmp_path / "m"), "--hide", "mesh"]) == 2
    assert "--hide: unknown layer" in capsys.readouterr().err
