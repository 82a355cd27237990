"""hloc's features.h5 / matches.h5 into a project (``geomvision import-features``), then match and map."""

import h5py
import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.features import exhaustive_pairs, extract_all, match_all
from geomvision.io import read_model
from geomvision.io.datasets import load_strecha_scene
from geomvision.io.hloc import (HlocFeatures, hloc_pair_name, read_hloc_features, read_hloc_matches,
                                write_hloc_features, write_hloc_matches)
from geomvision.scene import camera_errors
from geomvision.sfm import load_features
from geomvision.sfm.project import read_verified


@pytest.fixture(scope="module")
def sift(small_scene):
    """geomvision's SIFT features and exhaustive matches of the rendered scene."""
    paths = sorted((small_scene / "images").iterdir())
    ex = extract_all(paths, progress=False)
    names = list(ex.features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    return ex, match_all(pairs, ex.features, progress=False)


def _hloc(ex, *, descriptors=True):
    return {n: HlocFeatures(f.keypoints, f.descriptors.astype(np.float32) if descriptors else None, None, f.scales,
                            f.orientations_rad, ex.image_sizes[n]) for n, f in ex.features.items()}


def _errors(model_dir, gt):
    rec = read_model(model_dir)
    ims = sorted(rec.images.values(), key=lambda im: im.name)
    return camera_errors([im.cam_from_world for im in ims], [gt.cams_from_world[im.name] for im in ims]), rec


def test_imported_sift_in_hloc_layout_maps_to_ground_truth(small_scene, sift, tmp_path, capsys):
    ex, matches = sift
    fpath, mpath = tmp_path / "features.h5", tmp_path / "matches.h5"
    write_hloc_features(_hloc(ex), fpath)
    write_hloc_matches(matches, {n: len(f) for n, f in ex.features.items()}, mpath)
    with h5py.File(mpath) as f:  # hloc's layout: pair "a/b" is a nested group with matches0, -1 for none
        m0 = f["0000.png"]["0001.png"]["matches0"][()]
        assert m0.shape == (len(ex.features["0000.png"]),) and (m0 == -1).any()
    project = tmp_path / "project"
    assert main(["import-features", str(project), "--features", str(fpath), "--matches", str(mpath),
                 "--images", str(small_scene / "images")]) == 0
    assert "with descriptors) and the matches of 15 pairs" in capsys.readouterr().out
    imported = load_features(project)
    for n, f in ex.features.items():  # no pixel shift: hloc and geomvision share the pixel origin
        np.testing.assert_allclose(imported.features[n].keypoints, f.keypoints, atol=1e-3)
        np.testing.assert_array_equal(imported.features[n].colors, f.colors)
    assert main(["match", str(project), "-q", "--K", str(small_scene / "K.txt")]) == 0
    verified = read_verified(project)
    assert verified.matcher == "imported" and len(verified.geometries) == 15
    assert all(g.num_matches == len(matches[(verified.names[i], verified.names[j])])
               for (i, j), g in verified.geometries.items())
    assert main(["map", str(project), "-q", "--no-plots"]) == 0
    err, rec = _errors(project / "sparse" / "0", load_strecha_scene(small_scene))
    assert rec.num_registered_images == 6
    gt_C = np.array([-g.R.T @ g.t for g in load_strecha_scene(small_scene).cams_from_world.values()])
    spread = np.linalg.norm(gt_C - gt_C.mean(axis=0), axis=1).mean()
    assert err.mean_rotation_error_deg < 0.02 and err.max_center_error < 1e-3 * spread


def test_keypoints_without_descriptors_use_the_imported_matches(small_scene, sift, tmp_path, capsys):
    ex, matches = sift
    fpath, mpath = tmp_path / "features.h5", tmp_path / "matches.h5"
    write_hloc_features(_hloc(ex, descriptors=False), fpath)
    # hloc's older flat pair names, and pairs stored in either order
    flipped = {(b, a) if k % 2 else (a, b): (m[:, ::-1] if k % 2 else m)
               for k, ((a, b), m) in enumerate(matches.items())}
    write_hloc_matches(flipped, {n: len(f) for n, f in ex.features.items()}, mpath, old_pair_names=True)
    with h5py.File(mpath) as f:
        assert hloc_pair_name("0002.png", "0000.png", "_") in f and "0000.png_0001.png" in f
    project = tmp_path / "project"
    assert main(["import-features", str(project), "--features", str(fpath), "--matches", str(mpath)]) == 0
    assert main(["match", str(project), "-q", "--matcher", "exhaustive"]) == 2
    assert "imported without descriptors" in capsys.readouterr().err
    assert main(["match", str(project), "-q", "--K", str(small_scene / "K.txt")]) == 0
    verified = read_verified(project)
    assert sorted(verified.geometries) == [tuple(p) for p in exhaustive_pairs(6)]
    # the images are not at hand: map says how to do without them
    assert main(["map", str(project), "-q"]) == 2
    assert "--no-refine-keypoints" in capsys.readouterr().err
    assert main(["map", str(project), "-q", "--no-plots", "--no-refine-keypoints"]) == 0
    err, rec = _errors(project / "sparse" / "0", load_strecha_scene(small_scene))
    assert rec.num_registered_images == 6 and err.mean_rotation_error_deg < 0.05


def test_malformed_hloc_files_are_refused(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_group("a.png").create_dataset("keypoints", data=np.zeros((5, 2)))
        f["a.png"].create_dataset("descriptors", data=np.zeros((5, 128)))  # (N,D) instead of hloc's (D,N)
    with pytest.raises(ValueError, match=r"descriptors must be \(D,N\) with N = 5"):
        read_hloc_features(path)
    with h5py.File(path, "w") as f:
        f.create_group("x").create_dataset("scores", data=np.zeros(3))
    with pytest.raises(ValueError, match="no image features"):
        read_hloc_features(path)
    mpath = tmp_path / "m.h5"
    with h5py.File(mpath, "w") as f:
        f.create_group("a.png/c.png").create_dataset("matches0", data=np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="does not name two of the 2 images"):
        read_hloc_matches(mpath, ["a.png", "b.png"])
    with pytest.raises(ValueError, match="does not fit the 3 and 2 keypoints"):
        read_hloc_matches(mpath, ["a.png", "c.png"], {"a.png": 3, "c.png": 2})
    assert read_hloc_matches(mpath, ["a.png", "c.png"])[("a.png", "c.png")].tolist() == [[0, 0], [2, 2]]
