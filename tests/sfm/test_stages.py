"""``geomvision extract`` / ``match`` / ``map`` over one project folder, against ``geomvision sfm``."""

import json
import shutil

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.io import read_model
from geomvision.sfm import CameraOptions, SfmOptions, load_features, map_project, match_and_verify
from geomvision.sfm.project import read_verified


def _poses(model_dir):
    rec = read_model(model_dir)
    return {im.name: im.cam_from_world for im in rec.images.values()}, rec


@pytest.fixture(scope="module")
def runs(small_scene, tmp_path_factory):
    """``sfm`` into one folder, and extract + match + map into another (same images, same K)."""
    root = tmp_path_factory.mktemp("stages")
    images, K = str(small_scene / "images"), str(small_scene / "K.txt")
    assert main(["sfm", images, "-o", str(root / "sfm"), "-q", "--K", K, "--no-plots"]) == 0
    project = root / "project"
    assert main(["extract", images, "-o", str(project), "-q"]) == 0
    assert main(["match", str(project), "-q", "--K", K]) == 0
    assert main(["map", str(project), "-q", "--no-plots"]) == 0
    return root, project


def test_extract_match_map_give_the_model_of_sfm(runs):
    root, project = runs
    a, rec_a = _poses(root / "sfm" / "sparse" / "0")
    b, rec_b = _poses(project / "sparse" / "0")
    assert sorted(a) == sorted(b) and len(a) == 6
    assert len(rec_a.points3D) == len(rec_b.points3D) > 1000
    for name in a:
        np.testing.assert_allclose(b[name].R, a[name].R, atol=1e-9)
        np.testing.assert_allclose(b[name].t, a[name].t, atol=1e-9)
    report = json.loads((project / "report.json").read_text())
    assert report["matcher"] == "exhaustive" and report["num_registered_images"] == 6
    # sfm's folder is a project too: it holds the stages' records
    assert (root / "sfm" / "features.json").is_file() and (root / "sfm" / "verified.npz").is_file()


def test_rerunning_match_with_another_matcher_does_not_extract(runs, small_scene, monkeypatch):
    _, project = runs
    import geomvision.features.batch as batch

    def no_extraction(*a, **kw):
        raise AssertionError("match extracted features")

    monkeypatch.setattr(batch, "extract_features", no_extraction)
    before = (project / "features.json").read_bytes()
    options = SfmOptions(camera=CameraOptions(K=str(small_scene / "K.txt")), matcher="sequential", sequential_window=1,
                         loop_detection=False)
    verified = match_and_verify(project, options, progress=False)
    assert verified.matcher == "sequential"
    assert sorted(verified.geometries) == [(k, k + 1) for k in range(5)]
    assert read_verified(project).matcher == "sequential"
    assert (project / "features.json").read_bytes() == before
    # map reuses the features and these verified pairs: a chain of 5 pairs still registers all 6 images
    result = map_project(project, options, progress=False)
    assert result.report["matcher"] == "sequential"
    assert result.report["num_pairs_matched"] == 5 and result.report["num_registered_images"] == 6


def test_extract_again_reuses_the_features_and_keeps_the_verified_pairs(runs, small_scene, capsys):
    _, project = runs
    assert main(["extract", str(small_scene / "images"), "-o", str(project)]) == 0
    assert "features of 6 images (6 from the cache, 0 extracted" in capsys.readouterr().out
    # the same features: their verified pairs still hold (a rerun after an interrupt costs nothing)
    assert map_project(project, SfmOptions(), progress=False).report["num_registered_images"] == 6


def test_pairs_file(runs, small_scene, tmp_path):
    _, project = runs
    work = tmp_path / "p"
    shutil.copytree(project, work, symlinks=True)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# every image with the next two\n0000.png 0001.png\n0002.png 0001.png\n0000.png 0002.png\n"
                     "0002.png 0003.png\n0003.png 0004.png\n0004.png 0005.png\n0003.png 0005.png\n\n")
    assert main(["match", str(work), "-q", "--K", str(small_scene / "K.txt"), "--matcher", "pairs-file",
                 "--pairs", str(pairs)]) == 0
    verified = read_verified(work)
    assert verified.matcher == "pairs-file"
    assert sorted(verified.geometries) == [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (4, 5)]
    assert main(["map", str(work), "-q", "--no-plots"]) == 0
    assert read_model(work / "sparse" / "0").num_registered_images == 6


def test_pairs_file_naming_an_unknown_image(runs, tmp_path, capsys):
    _, project = runs
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("0000.png 0001.png\n0000.png missing.png\n")
    code = main(["match", str(project), "-q", "--matcher", "pairs-file", "--pairs", str(pairs)])
    err = capsys.readouterr().err
    assert code == 2 and "pairs.txt:2: no image named 'missing.png'" in err


def test_map_refuses_pairs_of_features_extracted_since(runs, small_scene, tmp_path):
    _, project = runs
    work = tmp_path / "p"
    shutil.copytree(project, work, symlinks=True)
    assert main(["extract", str(small_scene / "images"), "-o", str(work), "-q", "--max-num-features", "800"]) == 0
    assert len(load_features(work).features["0000.png"]) <= 800
    with pytest.raises(ValueError, match="changed since they were matched: rerun `geomvision match PROJECT`"):
        map_project(work, SfmOptions(), progress=False)


def test_map_refuses_intrinsics_flags_and_a_project_without_features(runs, tmp_path, capsys):
    _, project = runs
    assert main(["map", str(project), "-q", "--K", "500,500,240,180"]) == 2
    assert "--K is an option of `geomvision match`" in capsys.readouterr().err
    assert main(["map", str(project), "-q", "--max-num-features", "100"]) == 2
    assert "--max-num-features is an option of `geomvision extract`" in capsys.readouterr().err
    assert main(["match", str(project), "-q", "--init-min-tri-angle-deg", "4"]) == 2
    assert "--init-min-tri-angle-deg is an option of `geomvision map`" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["map", str(tmp_path / "empty"), "-q"]) == 2
    assert "run `geomvision extract IMAGES -o` on" in capsys.readouterr().err
    assert main(["match", str(tmp_path / "nowhere"), "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err
