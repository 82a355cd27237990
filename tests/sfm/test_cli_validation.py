"""``geomvision sfm`` / ``demo`` check their arguments before any work and say what went wrong
(issue 18, item 11): every error names the argument, a mistake leaves no folder or cache behind
that blocks the corrected rerun, skipped files are listed with their reason, and a run that
builds no model says why. (``view --screenshot`` extensions: tests/viz/test_view_size_limits.py;
``stitch -o``: tests/test_stitch.py.)"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.cli.sfm import no_model_reason


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("spec, words", [
    # was a 3-line numpy matrix
    ("nan,500,239.5,179.5", "--K must be a finite 3x3 matrix, got [[  nan,   0. , 239.5], [  0. , 500."),
    ("0,500,239.5,179.5", "--K must be upper triangular with positive focal lengths"),
    ("empty.txt", "--K file empty.txt is empty"),  # was numpy's UserWarning and 'shape (0, 1)'
    ("binary.txt", "--K file binary.txt: not a 3x3 matrix of numbers"),  # was a UnicodeDecodeError traceback
])
def test_a_bad_K_is_a_one_line_error_before_any_output(small_scene, tmp_path, monkeypatch, capsys, spec, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x01")
    assert main(["sfm", str(small_scene / "images"), "-o", "out", "-q", "--K", spec]) == 2
    assert words in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_camera_model_colmap_cannot_store_is_refused_before_any_work(small_scene, tmp_path, capsys):
    # before: the whole reconstruction ran, then writing failed ("rec: camera 1 is PINHOLE_SKEW ...")
    # and left OUT/cache, so the corrected rerun was refused ("already holds a geomvision run")
    out = tmp_path / "out"
    assert main(["sfm", str(small_scene / "images"), "-o", str(out), "-q", "--camera-model", "pinhole_skew"]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("geomvision sfm: error: --camera-model pinhole_skew:") and "COLMAP" in err
    assert "choose one of SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, OPENCV_FISHEYE" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--num-images", "2"], "--num-images must be 3 to 500, got 2"),  # was a full run, then 'no model'
    (["--num-images", "-3"], "--num-images must be 3 to 500, got -3"),  # was 'n_images must be >= 1'
    (["--width", "100000"], "--width must be 64 to 4096, got 100000"),  # was a 28 GiB allocation error
    (["--height", "10"], "--height must be 64 to 4096, got 10"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),  # was numpy's 'expected non-negative integer'
])
def test_demo_arguments_are_checked_before_rendering(tmp_path, capsys, argv, words):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q", *argv]) == 2
    assert _one_line_error(capsys) == f"geomvision demo: error: {words}"
    assert not out.exists()


def _unreadable_files(folder) -> None:
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "notes.txt").write_text("hello")


def test_too_few_readable_images_lists_each_skipped_file_and_leaves_nothing_behind(small_scene, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(small_scene / "images" / "0000.png", images)
    _unreadable_files(images)
    out = tmp_path / "out"
    assert main(["sfm", str(images), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # before: only the count ("2 skipped"); the per-file reasons were swallowed with the warnings
    assert any(line.startswith("warning: skipped bad.jpg: not a readable image") for line in err)
    assert any(line.startswith("warning: skipped notes.txt: not a readable image") for line in err)
    assert "need at least 2 readable images" in err[-1] and "2 skipped" in err[-1]
    assert not out.exists()  # before: OUT/cache, which refused the corrected rerun


def test_a_cache_left_by_a_failed_run_does_not_block_the_corrected_rerun(small_scene, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(small_scene / "images" / "0000.png", images)
    out = tmp_path / "out"
    out.mkdir()  # an existing folder is left as it was found: with the cache of the failed run
    argv = ["sfm", str(images), "-o", str(out), "-q", "--K", str(small_scene / "K.txt"), "--no-plots"]
    assert main(argv) == 2
    assert list((out / "cache").rglob("*.npz")) and not (out / "report.json").exists()
    for src in sorted((small_scene / "images").glob("*.png")):
        shutil.copy(src, images)
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err  # before: "already holds a geomvision run"
    assert json.loads((out / "report.json").read_text())["num_registered_images"] == 6
    assert main(argv) == 2  # but results are never replaced without --resume / --overwrite
    assert "already holds a geomvision run" in _one_line_error(capsys)


def test_two_images_and_min_model_size_are_refused_up_front_with_the_fix(small_scene, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("0000.png", "0001.png"):
        shutil.copy(small_scene / "images" / name, images)
    out = tmp_path / "out"
    # before: a full run, then "no model could be built from images" (exit 1)
    assert main(["sfm", str(images), "-o", str(out), "-q"]) == 2
    err = _one_line_error(capsys)
    assert "holds 2 images, but a model needs --min-model-size 3" in err and "--min-model-size 2" in err
    assert not out.exists()


def test_a_run_without_a_model_says_why_in_the_terminal(small_scene, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("0000.png", "0001.png"):
        shutil.copy(small_scene / "images" / name, images)
    noise = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8), (5, 5), 1.5)
    cv2.imwrite(str(images / "0002.png"), noise)  # overlaps nothing: the model of the other two is too small
    out = tmp_path / "out"
    assert main(["sfm", str(images), "-o", str(out), "-q", "--K", str(small_scene / "K.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    # before: "no model could be built from images (details in out/report.json)"
    assert "2 images were registered, but only in models smaller than --min-model-size 3 images" in err
    assert "--min-model-size 2" in err and f"details in {out}/report.json" in err


def test_the_reason_suggests_stitch_when_pairs_are_panoramic():
    report = {"failure": None, "options": {"mapper": {"min_model_size": 3}},
              "images": {"a.jpg": {"registered": False, "reason": "no initial pair with enough triangulation angle"},
                         "b.jpg": {"registered": False, "reason": "no initial pair with enough triangulation angle"},
                         "c.jpg": {"registered": False, "reason": "no verified pair with another image"}},
              "pair_configs": {"panoramic": 1, "calibrated": 1}, "num_pairs_verified": 2, "num_pairs_matched": 3}
    why = no_model_reason(report)
    assert "2 of 3 images: no initial pair with enough triangulation angle" in why
    assert "1 of the 2 verified pairs are panoramic" in why and "use `geomvision stitch`" in why


def test_the_reason_suggests_affine_features_when_most_pairs_fail():
    """desk-loop with plain SIFT: 7 of 45 pairs verify and no model of 3 images forms."""
    images = {f"{k:02d}.png": {"registered": k < 3, "reason": "its model was too small (2 images)"} for k in range(10)}
    report = {"failure": None, "options": {"mapper": {"min_model_size": 3}, "features": {"affine_max_tilt": 0}},
              "images": images, "pair_configs": {"calibrated": 8, "failed": 37},
              "num_pairs_verified": 8, "num_pairs_matched": 45}
    why = no_model_reason(report)
    assert "only 8 of the 45 matched pairs verified" in why and "--affine-max-tilt 4" in why
    report["options"]["features"]["affine_max_tilt"] = 4  # already affine: nothing more to suggest
    assert "--affine-max-tilt" not in no_model_reason(report)
    report["num_pairs_verified"] = 30
    report["options"]["features"]["affine_max_tilt"] = 0  # most pairs verified: not the cause
    assert "--affine-max-tilt" not in no_model_reason(report)


def test_an_empty_images_argument_does_not_reconstruct_the_current_folder(small_scene, tmp_path, monkeypatch, capsys):
    for src in (small_scene / "images").glob("*.png"):
        shutil.copy(src, tmp_path)
    monkeypatch.chdir(tmp_path)  # a folder of good images: "" used to mean "." and reconstruct it
    assert main(["sfm", "", "-o", "out", "-q"]) == 2
    assert "IMAGES is an empty path" in _one_line_error(capsys)
    assert main(["sfm", ".", "-o", "", "-q"]) == 2
    assert "-o/--output is an empty path" in _one_line_error(capsys)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png"] * 6  # nothing written


@pytest.mark.parametrize("argv, words", [
    # was "VerificationOptions.max_error_px must be ..."
    (["--max-error-px", "nan"], "--max-error-px must be finite and positive, got nan"),
    (["--camera-model", "FOO"], "--camera-model: unknown model 'FOO'; choose one of SIMPLE_PINHOLE, PINHOLE, "
                                   "SIMPLE_RADIAL, RADIAL, OPENCV, OPENCV_FISHEYE"),  # camera_model: ...
    (["--min-model-size", "1"], "--min-model-size must be >= 2, got 1"),  # MapperOptions.min_model_size
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--ratio", "2"], "--ratio must lie in (0, 1], got 2.0"),  # MatchOptions.ratio
])
def test_every_option_error_names_its_flag(small_scene, tmp_path, capsys, argv, words):
    out = tmp_path / "out"
    assert main(["sfm", str(small_scene / "images"), "-o", str(out), "-q", *argv]) == 2
    assert _one_line_error(capsys) == f"geomvision sfm: error: {words}"
    assert not out.exists()


def test_run_sfm_refuses_an_empty_folder_name(tmp_path, monkeypatch):
    """The library, not only the CLI: "" is not the current folder."""
    from geomvision.sfm import run_sfm

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="image_dir is empty"):
        run_sfm("")
