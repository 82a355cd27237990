"""Degenerate input must end in a clear refusal or a warning, never in a confident wrong model
(issue 18, items 1, 3, 4): a camera that only rotated, with or without K; registration on too
few points; a K that cannot belong to the images or that the images contradict."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.geometry.camera import Camera
from geomvision.geometry.epipolar import essential_from_pose, fundamental_from_essential
from geomvision.geometry.rigid import Rigid3
from geomvision.sfm import SfmOptions, SfmWarning, run_sfm
from geomvision.sfm.intrinsics import check_K_for_image, focal_from_fundamental_profile, guess_intrinsics
from geomvision.sfm.mapper import IncrementalMapper
from geomvision.sfm.options import CameraOptions, MapperOptions, VerificationOptions
from geomvision.sfm.pipeline import ROTATION_ONLY, _rotation_only
from geomvision.sfm.state import ImageData, MapperState
from geomvision.sfm.tracks import build_tracks
from geomvision.sfm.verification import TwoViewGeometry, verify_pair
from geomvision.synthetic import forward_scene, orbit_scene, planar_scene, render_walk, rotation_scene
from geomvision.synthetic.demo_scene import orbit_cameras
from geomvision.synthetic.point_scenes import _observe
from geomvision.synthetic.rendered_datasets import rotation_sequence

# what geomvision guesses without K or EXIF for a 640 x 480 image: 1.2 * 640 = 768 px (true: 500)
PRIOR_640 = Camera.from_focal(768.0, 640, 480, "SIMPLE_RADIAL")


def _all_matches(scene):
    x1, x2, _, _ = scene.pair(0, 1)
    return x1, x2, np.column_stack([np.arange(len(x1))] * 2)


def _write_images(folder, images):
    folder.mkdir(parents=True)
    for k, img in enumerate(images):
        cv2.imwrite(str(folder / f"{k:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


# --- item 1: pure rotation ---------------------------------------------------------------------

@pytest.mark.parametrize("rng", [7, 8, 9])
def test_rotation_without_K_is_panoramic_at_the_true_focal_length(rng):
    # a rotation's homography is K R K^-1: recognised without K, at the focal length it implies
    sc = rotation_scene(n_images=2, n_points=400, noise_px=0.5, rng=rng)
    x1, x2, m = _all_matches(sc)
    g = verify_pair(x1, x2, m, PRIOR_640, PRIOR_640, calibrated=False, options=VerificationOptions(), rng=0)
    assert g.config == "panoramic", g.message
    assert g.num_inliers == g.num_h_inliers > 0.9 * len(m)
    assert abs(g.rotation_focal_px - 500.0) < 0.02 * 500.0, g.rotation_focal_px


def _fronto_parallel_scan(shift_m: float):
    # a camera 5 m above a plane, looking straight down and sliding sideways: every view is a
    # shifted copy of the first, which a pan with an endless focal length would give as well
    gen = np.random.default_rng(0)
    X = np.column_stack([gen.uniform(-4, 4, (600, 2)), np.zeros(600)])
    cams = [Rigid3.look_at(np.array([x, 0.0, 5.0]), np.array([x, 0.01, 0.0]), up=(0, 1, 0)) for x in (0.0, shift_m)]
    return _observe(Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5]), cams, X, 0.5, 0.0, gen)


@pytest.mark.parametrize("make, config", [
    (lambda r: orbit_scene(n_images=2, n_points=400, noise_px=0.5, arc_deg=10.0, rng=r), "uncalibrated"),
    (lambda r: forward_scene(n_images=2, n_points=400, noise_px=0.5, rng=r), "uncalibrated"),
    (lambda r: planar_scene(n_images=2, n_points=400, noise_px=0.5, rng=r), "planar"),
    (lambda r: _fronto_parallel_scan(0.3 + 0.2 * r), "planar"),
])
def test_pairs_with_translation_are_not_panoramic(make, config):
    for r in range(3):
        x1, x2, m = _all_matches(make(r))
        g = verify_pair(x1, x2, m, PRIOR_640, PRIOR_640, calibrated=False, options=VerificationOptions(), rng=0)
        assert g.config == config, g.message
        assert np.isnan(g.rotation_focal_px)


@pytest.fixture(scope="module")
def rotation_images(tmp_path_factory):
    """The issue's case: 5 views from one centre turning over 50 degrees (480 x 360, f = 420)."""
    seq = rotation_sequence(5, width=480, height=360, pan_deg=50.0)
    root = tmp_path_factory.mktemp("rotation")
    np.savetxt(root / "K.txt", seq.K)
    return _write_images(root / "images", seq.images), root / "K.txt"


@pytest.mark.parametrize("with_K", [False, True])
def test_rotation_only_sequence_is_refused_with_or_without_K(rotation_images, with_K, tmp_path, capsys):
    # before: without K every pair was "planar" and a fake model came out (5 of 5 images, centres
    # spread over 1.8 units, focal 559 px for 420), exit 0
    images, K = rotation_images
    out = tmp_path / "out"
    code = main(["sfm", str(images), "-o", str(out), "-q"] + (["--K", str(K)] if with_K else []))
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {ROTATION_ONLY}" in err and err.count(ROTATION_ONLY) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["failure"].startswith(ROTATION_ONLY)
    assert report["pair_configs"]["panoramic"] == report["num_pairs_verified"] == 10
    assert report["num_registered_images"] == 0 and not (out / "sparse").exists()
    assert all(v["reason"] == ROTATION_ONLY for v in report["images"].values())
    if not with_K:  # the rotation fit found the true focal length (420 px) on every pair
        focals = [p["rotation_focal_px"] for p in report["pairs"].values()]
        assert len(focals) == 10 and max(abs(f - 420.0) for f in focals) < 0.02 * 420.0


def _geometry(config: str, shift: bool = False, focal: float = float("nan")) -> TwoViewGeometry:
    return TwoViewGeometry(config, np.zeros((0 if config == "failed" else 30, 2), np.int64), 40,
                           rotation_focal_px=focal, explained_by_shift=shift)


def test_the_run_is_rotation_only_when_no_pair_shows_a_translation():
    pano = _geometry("panoramic", focal=420.0)
    shift = _geometry("planar", shift=True)  # a tiny pan (or a slide over a wall): no evidence either way
    why = _rotation_only({(0, 1): pano, (1, 2): pano, (0, 2): _geometry("failed")})
    assert why.startswith(ROTATION_ONLY) and "all 2 verified pairs; focal length about 420 px" in why
    why = _rotation_only({(0, 1): pano, (1, 2): shift})
    assert why.startswith(ROTATION_ONLY) and "1 of the 2 verified pairs, and a shift" in why
    assert _rotation_only({(0, 1): pano, (1, 2): _geometry("planar")}) is None  # a plane seen from two places
    assert _rotation_only({(0, 1): pano, (1, 2): _geometry("uncalibrated")}) is None
    assert _rotation_only({(0, 1): shift, (1, 2): shift}) is None  # no rotation seen: a planar scan
    assert _rotation_only({(0, 1): _geometry("failed")}) is None


# --- item 3: registration on too little evidence -------------------------------------------------

def _seeded_mapper(options: MapperOptions) -> IncrementalMapper:
    """A mapper over 4 views of a synthetic orbit, seeded with images 0 and 1."""
    sc = orbit_scene(n_images=4, n_points=300, noise_px=0.3, arc_deg=40.0, rng=4)
    n = sc.num_images
    kps = [sc.obs_uv[sc.obs_image_idx == i] for i in range(n)]
    kp_of = [dict(zip(sc.obs_point_idx[sc.obs_image_idx == i].tolist(), range(len(kps[i])))) for i in range(n)]
    geoms = {}
    for i in range(n):
        for j in range(i + 1, n):
            common = sorted(set(kp_of[i]) & set(kp_of[j]))
            m = np.array([[kp_of[i][p], kp_of[j][p]] for p in common], dtype=np.int64)
            geoms[(i, j)] = verify_pair(kps[i], kps[j], m, sc.camera, sc.camera, calibrated=True,
                                        options=VerificationOptions(), rng=0)
    tracks, _ = build_tracks([len(k) for k in kps], {k: g.inlier_matches for k, g in geoms.items()})
    data = ImageData([f"{i}" for i in range(n)], kps, [np.zeros((len(k), 3), np.uint8) for k in kps],
                     np.tile([sc.camera.width, sc.camera.height], (n, 1)))
    state = MapperState(data, [sc.camera], np.zeros(n, np.int64), np.array([True]), tracks)
    mapper = IncrementalMapper(state, geoms, options, CameraOptions(), seed=0)
    pose, _ = mapper.initial_pair_pose(0, 1)
    assert mapper.register_initial_pair(0, 1, pose, 50) is None
    return mapper


def test_min_inliers_of_a_registration_cannot_be_set_below_the_floor():
    assert MapperOptions.ABS_POSE_MIN_NUM_INLIERS_FLOOR == 6
    for bad in (1, 2, 5):
        with pytest.raises(ValueError, match=r"abs_pose_min_num_inliers must be >= 6.*3 points"):
            MapperOptions(abs_pose_min_num_inliers=bad)
    MapperOptions(abs_pose_min_num_inliers=6)


def test_an_image_is_never_registered_on_fewer_than_six_points():
    # even with options forced below the floor (no validation), register_image keeps it
    opts = MapperOptions()
    object.__setattr__(opts, "abs_pose_min_num_inliers", 1)
    mapper = _seeded_mapper(opts)
    assert mapper.register_image(2), mapper.log.registration[2]  # on all the points it sees: registered
    mapper = _seeded_mapper(opts)
    s = mapper.state
    seen = np.unique(s.obs_track[s.observations_of_image(2)])
    seen = seen[s.point_valid[seen]]
    assert len(seen) > 50
    s.invalidate_points(seen[5:])  # image 2 now sees 5 (exact) points of the model
    assert not mapper.register_image(2)
    assert "5 2D-3D correspondences < 6" in mapper.log.registration[2]
    assert not s.registered[2]


# --- item 4: impossible or contradicted intrinsics ----------------------------------------------

@pytest.mark.parametrize("K, words", [
    ([[420.0, 0, 900.0], [0, 420.0, 179.5], [0, 0, 1]], r"principal point \(900, 179.5\) lies outside the 480 x 360"),
    ([[420.0, 0, 239.5], [0, 420.0, -3.0], [0, 0, 1]], "principal point"),
    ([[1e-9, 0, 239.5], [0, 1e-9, 179.5], [0, 0, 1]], r"fx = 1e-09 px is implausible .* 24 to 9600 px"),
    ([[420.0, 0, 239.5], [0, 42000.0, 179.5], [0, 0, 1]], "fy = 42000 px is implausible"),
])
def test_K_that_cannot_belong_to_the_image_is_refused(K, words):
    with pytest.raises(ValueError, match=words) as info:
        check_K_for_image(np.array(K), 480, 360)
    assert "pixels of these images" in str(info.value) and "scaled" in str(info.value)
    with pytest.raises(ValueError, match=words):
        guess_intrinsics(480, 360, "PINHOLE", K=np.array(K))
    check_K_for_image(np.array([[420.0, 0, 239.5], [0, 420.0, 179.5], [0, 0, 1]]), 480, 360)


@pytest.mark.parametrize("spec, words", [("1e-9,1e-9,239.5,179.5", "implausible"),
                                         ("420,420,900,179.5", "outside the 480 x 360 image")])
def test_cli_refuses_an_impossible_K_before_any_work(rotation_images, spec, words, tmp_path, capsys):
    images, _ = rotation_images
    out = tmp_path / "out"
    assert main(["sfm", str(images), "-o", str(out), "-q", "--K", spec]) == 2
    err = capsys.readouterr().err
    assert words in err and "--K" in err
    assert not out.exists()  # nothing written, no cache that blocks the corrected rerun


def test_focal_from_F_is_found_where_the_motion_determines_it():
    cam = Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5])
    # general motion: the optical axes do not meet
    rel = Rigid3.look_at(np.array([1.0, 0.3, 0.2]), np.array([0.6, -0.4, 5.0]), up=(0, 1, 0))
    F = fundamental_from_essential(essential_from_pose(rel), cam, cam)
    f, determined = focal_from_fundamental_profile(F, cam.principal_point, 640)
    assert determined and abs(f - 500.0) < 0.05 * 500.0
    # an orbit around a point: the optical axes meet there and F leaves the focal length free
    a, b = orbit_cameras(2, arc_deg=20.0)
    F = fundamental_from_essential(essential_from_pose(b @ a.inverse()), cam, cam)
    assert not focal_from_fundamental_profile(F, cam.principal_point, 640)[1]


@pytest.fixture(scope="module")
def walk_images(tmp_path_factory):
    """5 frames (480 x 360, f = 420) of a walk whose view direction sways: F determines f."""
    views = render_walk(5, width=480, height=360, arc_deg=40.0, sway_m=1.5, supersample=2)
    return _write_images(tmp_path_factory.mktemp("walk") / "images", views.images), tmp_path_factory.mktemp("cache")


def test_a_K_the_images_contradict_is_warned_about_and_reported(walk_images, tmp_path, capsys):
    images, cache = walk_images
    # a focal length 4x too long (e.g. a K of a 4x larger image): before, accepted silently
    out = tmp_path / "out"
    code = main(["sfm", str(images), "-o", str(out), "-q", "--no-plots", "--K", "1680,1680,239.5,179.5"])
    err = capsys.readouterr().err
    assert "warning: --K disagrees with the images: its focal length is 1680.0 px" in err, err
    check = json.loads((out / "report.json").read_text())["K_check"]["0"]
    assert code in (0, 1) and check["agrees"] is False and check["num_pairs"] >= 3
    assert abs(check["fundamental_focal_px"] - 420.0) < 0.02 * 420.0 and check["ratio"] < 0.5
    assert "disagrees" in check["warning"]
    # the true K agrees: no warning
    options = SfmOptions(camera=CameraOptions(K="420,420,239.5,179.5"), refine_keypoints=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SfmWarning)
        res = run_sfm(images, options, cache_dir=cache, progress=False)
    assert not [w for w in caught if "disagree" in str(w.message)]
    check = res.report["K_check"]["0"]
    assert check["agrees"] is True and abs(check["ratio"] - 1.0) < 0.02
    assert len(res.reconstructions) == 1 and res.reconstructions[0].num_registered_images == 5


def test_a_walk_without_K_is_reconstructed_not_refused(walk_images):
    # real parallax without K: no pair panoramic, no failure, nothing to check K against
    images, cache = walk_images
    with pytest.warns(SfmWarning, match="no calibration"):
        res = run_sfm(images, SfmOptions(refine_keypoints=False), cache_dir=cache, progress=False)
    assert res.report["failure"] is None and res.report["K_check"] == {}
    assert res.report["pair_configs"]["panoramic"] == 0 and res.report["pair_configs"]["uncalibrated"] >= 8
    assert len(res.reconstructions) == 1 and res.reconstructions[0].num_registered_images == 5
