"""``geomvision sfm`` from the command line: flags, bad input, outputs, resume."""

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest

from geomvision.cli._dataclass_args import _walk
from geomvision.cli.main import main
from geomvision.io import read_model, read_ply
from model_helpers import assert_same_model
from geomvision.sfm import SfmOptions
from geomvision.sfm.options import MapperOptions


def test_every_option_is_a_flag_and_flags_apply(capsys):
    from geomvision.cli.main import build_parser

    parser = build_parser("sfm")
    help_text = parser._subparsers._group_actions[0].choices["sfm"].format_help()
    for path, _, _ in _walk(SfmOptions):
        flag = "--" + (path[-1] if path[-1].isupper() else path[-1].replace("_", "-"))
        assert flag in help_text, flag
    from geomvision.cli._dataclass_args import dataclass_from_args

    args = parser.parse_args(["sfm", "imgs", "-o", "out", "--max-num-features", "500", "--no-root-sift",
                              "--camera-model", "PINHOLE", "--K", "500,501,320,240", "--matcher", "sequential",
                              "--max-error-px", "1.5", "--init-min-tri-angle-deg", "8", "--max-image-size", "none",
                              "--seed", "7"])
    opts = dataclass_from_args(SfmOptions, args)
    assert opts.features.max_num_features == 500 and opts.features.root_sift is False
    assert opts.features.max_image_size is None
    assert opts.camera.camera_model == "PINHOLE" and opts.camera.K == "500,501,320,240"
    assert opts.matcher == "sequential" and opts.seed == 7
    assert opts.verification.max_error_px == 1.5 and opts.mapper.init_min_tri_angle_deg == 8.0
    # untouched fields keep the dataclass defaults
    assert opts.mapper.abs_pose_max_error_px == MapperOptions().abs_pose_max_error_px
    assert dataclasses.replace(opts, seed=0) != SfmOptions()


def test_invalid_option_value_is_a_one_line_error(tmp_path, small_scene, capsys):
    code = main(["sfm", str(small_scene / "images"), "-o", str(tmp_path / "o"), "--matcher", "nearest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "matcher must be one of" in err[0]


@pytest.mark.parametrize("case", ["missing", "empty", "file"])
def test_bad_image_folder(tmp_path, capsys, case):
    images = tmp_path / "images"
    if case == "empty":
        images.mkdir()
    elif case == "file":
        images.write_text("not a folder")
    out = tmp_path / "out"
    code = main(["sfm", str(images), "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert {"missing": "does not exist", "empty": "is empty", "file": "is not a folder"}[case] in err[0]
    assert not out.exists()  # nothing written


def test_single_image_is_an_error(tmp_path, small_scene, capsys):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(small_scene / "images" / "0000.png", images)
    (images / "notes.txt").write_text("hello")
    code = main(["sfm", str(images), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "need at least 2 readable images" in err[-1] and "1 skipped" in err[-1]
    assert not (tmp_path / "out" / "report.json").exists()


def test_unwritable_output_folder(small_scene, capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(["sfm", str(small_scene / "images"), "-o", str(blocker / "out"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot write to output folder" in err[0]


def test_images_without_overlap_build_no_model(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):  # unrelated random-noise images: features, but no geometry in common
        img = cv2.GaussianBlur(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), (5, 5), 1.5)
        cv2.imwrite(str(images / f"{k}.png"), img)
    out = tmp_path / "out"
    code = main(["sfm", str(images), "-o", str(out), "-q"])
    assert code == 1
    assert "no model could be built" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["num_registered_images"] == 0
    assert all(not v["registered"] and v["reason"] for v in report["images"].values())
    assert not (out / "sparse").exists() and not (out / "points.ply").exists()


@pytest.fixture(scope="module")
def finished_run(small_scene, tmp_path_factory):
    """One uninterrupted run on the small scene, with a corrupt file and a non-image added."""
    images = tmp_path_factory.mktemp("imgs") / "images"
    shutil.copytree(small_scene / "images", images)
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (images / "readme.txt").write_text("not an image")
    out = tmp_path_factory.mktemp("run") / "out"
    code = main(["sfm", str(images), "-o", str(out), "-q", "--K", str(small_scene / "K.txt"), "--text"])
    assert code == 0
    return images, out


def test_outputs_are_complete_and_consistent(finished_run):
    images, out = finished_run
    report = json.loads((out / "report.json").read_text())
    assert set(report["skipped_files"]) == {"corrupt.jpg", "readme.txt"}
    assert report["num_registered_images"] == 6
    rec = read_model(out / "sparse" / "0")
    rec_text = read_model(out / "sparse" / "0" / "text")
    assert rec.num_registered_images == 6 and len(rec.points3D) == report["models"][0]["num_points3D"]
    for iid in rec.images:
        np.testing.assert_allclose(rec.images[iid].cam_from_world.R, rec_text.images[iid].cam_from_world.R, atol=1e-12)
    xyz, colors = read_ply(out / "points.ply")
    assert len(xyz) == len(rec.points3D) and colors is not None
    assert report["models"][0]["mean_reprojection_error_px"] < 0.5
    for name in report["outputs"]["plots"]:
        assert (out / name).stat().st_size > 1000
    assert not list(out.glob(".staging-*")) and not list(out.glob(".old-*"))


def test_rerun_needs_resume_or_overwrite(finished_run, capsys):
    images, out = finished_run
    code = main(["sfm", str(images), "-o", str(out), "-q"])
    assert code == 2 and "already holds a geomvision run" in capsys.readouterr().err


def test_interrupted_run_resumed_gives_the_same_model(finished_run, small_scene, tmp_path, monkeypatch):
    images, out_full = finished_run
    out = tmp_path / "out"
    import geomvision.sfm.stage_match as pipeline  # the match stage of run_sfm

    real_match_all = pipeline.match_all

    def interrupted(pairs, *a, **kw):  # matching is cut off after a few pairs
        real_match_all(list(pairs)[:3], *a, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "match_all", interrupted)
    argv = ["sfm", str(images), "-o", str(out), "-q", "--K", str(small_scene / "K.txt")]
    assert main(argv) == 130
    assert not (out / "report.json").exists() and not (out / "sparse").exists()  # nothing half-written
    assert list((out / "cache").rglob("*.npz"))  # but the work done so far is kept
    monkeypatch.setattr(pipeline, "match_all", real_match_all)
    assert main(argv + ["--resume"]) == 0
    assert_same_model(read_model(out / "sparse" / "0"), read_model(out_full / "sparse" / "0"))
