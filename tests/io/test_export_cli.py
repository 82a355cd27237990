"""``geomvision undistort`` and ``geomvision export`` (issue 17): files where the help says, read
back by their consumers where those install here (pycolmap for COLMAP folders), one-line errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from geomvision import Camera
from geomvision.cli.main import main
from geomvision.io import read_model, read_ply, write_model, write_ply
from geomvision.synthetic import orbit_scene

from colmap_helpers import require_module


@pytest.fixture
def model_dir(tmp_path, rng):
    camera = Camera("SIMPLE_RADIAL", 320, 240, [260.0, 159.5, 119.5, -0.05])
    rec = orbit_scene(n_images=3, n_points=60, camera=camera, noise_px=0.0, rng=rng).to_reconstruction()
    write_model(rec, tmp_path / "sparse" / "0")
    images = tmp_path / "images"
    images.mkdir()
    for img in rec.images.values():
        cv2.imwrite(str(images / img.name), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    return tmp_path


def test_undistort_command_writes_a_pinhole_workspace(model_dir, capsys):
    pycolmap = require_module("pycolmap")
    out = model_dir / "undistorted"
    # an sfm output folder is accepted: its sparse/0 is read
    assert main(["undistort", str(model_dir), str(model_dir / "images"), "-o", str(out), "--sparse-subdir", "0",
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "camera 1: SIMPLE_RADIAL 320x240 -> PINHOLE" in text and "wrote 3 undistorted and 0 copied images" in text
    prec = pycolmap.Reconstruction(str(out / "sparse" / "0"))
    cam = prec.cameras[1]
    assert cam.model.name == "PINHOLE"
    for img in prec.images.values():
        assert cv2.imread(str(out / "images" / img.name)).shape[:2] == (cam.height, cam.width)
    assert (out / "stereo" / "patch-match.cfg").is_file()


def test_undistort_command_refuses_a_point_cloud(model_dir, capsys):
    write_ply(np.zeros((4, 3)), model_dir / "points.ply")
    assert main(["undistort", str(model_dir / "points.ply"), str(model_dir / "images"), "-o",
                 str(model_dir / "o")]) == 2
    assert "geomvision undistort: error:" in (err := capsys.readouterr().err)
    assert "a point cloud without cameras; pass a COLMAP model folder or an sfm output folder" in err


@pytest.mark.parametrize("fmt, files", [
    ("nerfstudio", ["transforms.json", "sparse_pc.ply"]),
    ("ngp", ["transforms.json"]),
    ("nvm", ["model.nvm"]),
    ("bundler", ["bundle.out", "list.txt"]),
    ("ply", ["points3D.ply"]),
    ("colmap-text", ["cameras.txt", "images.txt", "points3D.txt", "rigs.txt", "frames.txt"]),
])
def test_export_command_writes_each_format(model_dir, fmt, files, capsys):
    out = model_dir / "export"
    assert main(["export", str(model_dir / "sparse" / "0"), "--format", fmt, "-o", str(out),
                 "--images", str(model_dir / "images")]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    assert "3 cameras, 60 points" in capsys.readouterr().out or fmt == "ply"
    if fmt in ("nerfstudio", "ngp"):
        meta = json.loads((out / "transforms.json").read_text())
        assert all((out / fr["file_path"]).is_file() for fr in meta["frames"])  # paths relative to the json
    if fmt == "colmap-text":
        pycolmap = require_module("pycolmap")
        assert pycolmap.Reconstruction(str(out)).num_reg_images() == 3
        back = read_model(out)
        assert back.images[1].cam_from_world.allclose(read_model(model_dir / "sparse" / "0").images[1].cam_from_world)
    if fmt == "ply":
        assert len(read_ply(out / "points3D.ply")[0]) == 60


def test_export_command_takes_a_file_name_and_refuses_what_the_format_cannot_hold(model_dir, tmp_path, capsys):
    assert main(["export", str(model_dir / "sparse" / "0"), "--format", "nvm", "-o", str(tmp_path / "a" / "s.nvm")]) == 0
    assert (tmp_path / "a" / "s.nvm").read_text().startswith("NVM_V3")
    rec = read_model(model_dir / "sparse" / "0")
    rec.cameras[1] = Camera("OPENCV", 320, 240, [260.0, 270.0, 165.0, 119.5, -0.05, 0.0, 0.01, 0.0])
    write_model(rec, tmp_path / "opencv")
    assert main(["export", str(tmp_path / "opencv"), "--format", "bundler", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geomvision export: error: camera 1 (OPENCV, 320x240) differs from the nearest Bundler")
    assert "--max-error" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "bundle.out").exists()
