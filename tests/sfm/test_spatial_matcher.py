"""The spatial matcher (issue 16): a rendered walk round the demo scene saved as JPEGs under random
names, each geotagged with its true camera centre (a local ENU offset about a point in Zurich).
Pairs by GPS position recall the overlapping views, auto chooses them above the exhaustive limit
and says why, and run_sfm registers every view from them."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from gps_helpers import gps_ifd, lat_lon_alt_from_enu, write_jpeg_with_gps
from PIL.TiffImagePlugin import IFDRational

from geomvision.cli.main import main
from geomvision.features.pairs import spatial_pairs
from geomvision.geometry import camera_center
from geomvision.imageio import exif_gps
from geomvision.scene.align import camera_errors
from geomvision.sfm import SfmOptions, SfmWarning, run_sfm
from geomvision.sfm.gps import read_image_positions
from geomvision.sfm.pipeline import select_pairs
from geomvision.sfm.stage_extract import extract_features
from geomvision.synthetic import demo_camera, demo_scene, render_depth, render_walk

N_VIEWS = 16
ORIGIN = np.array([47.3769, 8.5417, 408.0])  # latitude, longitude (degrees), altitude (m)


def _pairs(p) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in p}


@pytest.fixture(scope="module")
def geotagged(tmp_path_factory):
    """16 views 22.5 degrees apart on a closed walk (320 x 240), as JPEGs named by random hex
    strings (no numbered sequence: the file order is not the walk's), GPS from the true centres."""
    walk = render_walk(N_VIEWS, width=320, height=240, arc_deg=360.0)
    folder = tmp_path_factory.mktemp("geotagged") / "images"
    folder.mkdir()
    rng = np.random.default_rng(16)
    names = [f"{v:06x}.jpg" for v in rng.choice(16 ** 6, N_VIEWS, replace=False)]
    C = np.array([camera_center(T) for T in walk.cams_from_world])
    written = {}
    for name, image, g in zip(names, walk.images, lat_lon_alt_from_enu(C, ORIGIN)):
        tags, written[name] = gps_ifd(*g)
        write_jpeg_with_gps(folder / name, image, tags)
    order = sorted(range(N_VIEWS), key=lambda k: names[k])  # the pipeline's (natural) name order
    return {"folder": folder, "names": [names[k] for k in order], "walk_index": order, "C": C[order],
            "cams_from_world": [walk.cams_from_world[k] for k in order], "written": written}


@pytest.fixture(scope="module")
def overlap(geotagged):
    """(N,N) shared surface of each pair, exact from rendered depth (64 x 48): the fraction of the
    pixels of view i whose surface point view j sees (in its frame, not hidden); min of both ways."""
    scene, cam = demo_scene(0), demo_camera(64, 48)
    v, u = np.mgrid[0:48, 0:64]
    uv = np.column_stack([u.ravel(), v.ravel()]).astype(float)
    depths, X_world = [], []
    for T in geotagged["cams_from_world"]:
        d, _ = render_depth(scene, cam, T)
        ok = np.isfinite(d.ravel())
        depths.append(d)
        X_world.append(T.inverse().apply(cam.cam_from_img(uv[ok]) * d.ravel()[ok, None]))
    n = len(depths)
    ov = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                X = geotagged["cams_from_world"][j].apply(X_world[i])
                X = X[X[:, 2] > 0.1]
                q = np.round(cam.img_from_cam(X)).astype(int)
                inside = (q[:, 0] >= 0) & (q[:, 0] < 64) & (q[:, 1] >= 0) & (q[:, 1] < 48)
                dj = depths[j][q[inside, 1], q[inside, 0]]
                ov[i, j] = np.sum(np.abs(dj - X[inside, 2]) < 0.02 * dj) / len(X_world[i])
    return np.minimum(ov, ov.T)


@pytest.fixture(scope="module")
def walk_features(geotagged):
    return extract_features(geotagged["folder"], None, SfmOptions(num_threads=1), progress=False)


def test_gps_read_back_is_what_was_written_and_the_true_centres(geotagged):
    for name, pos in geotagged["written"].items():
        got = exif_gps(geotagged["folder"] / name)
        assert got.latitude_deg == pytest.approx(pos.latitude_deg, abs=1e-12)
        assert got.longitude_deg == pytest.approx(pos.longitude_deg, abs=1e-12)
        assert got.altitude_m == pos.altitude_m
    names = geotagged["names"]
    positions = read_image_positions(names, {n: geotagged["folder"] / n for n in names})
    C = geotagged["C"]
    # ENU about the mean = the true centres about their mean, to the rationals' 3 mm (the tangent
    # plane at the mean and at ORIGIN differ by 1e-6 rad over these 10 m)
    err = np.linalg.norm(positions.X_enu - (C - C.mean(axis=0)), axis=1)
    assert err.max() < 3e-3
    assert positions.has_altitude and positions.missing == {}


def test_spatial_pairs_recall_the_overlapping_views(geotagged, overlap):
    names, C = geotagged["names"], geotagged["C"]
    positions = read_image_positions(names, {n: geotagged["folder"] / n for n in names})
    X = positions.X_enu[:, :2]
    n = len(names)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    # the pairs whose true centres are nearest (brute force), found from the GPS tags
    D = np.linalg.norm(C[:, None, :2] - C[None, :, :2], axis=2)
    np.fill_diagonal(D, np.inf)
    for k in (2, 4):  # (one neighbour would be a tie: the walk's views are evenly spaced)
        nearest = {(min(i, int(j)), max(i, int(j))) for i in range(n) for j in np.argsort(D[i])[:k]}
        assert _pairs(spatial_pairs(X, k)) == nearest
    # k = 2: the closed walk's ring of neighbours (its first and last frames too, which a window
    # over names would never pair), and every one of them truly overlaps (measured: >= 40.4 %)
    walk = np.asarray(geotagged["walk_index"])
    ring = {tuple(sorted((i, j))) for i, j in pairs if (walk[i] - walk[j]) % n in (1, n - 1)}
    two = _pairs(spatial_pairs(X, 2))
    assert two == ring
    assert min(overlap[p] for p in two) > 0.38
    # recall of the views that truly overlap (rendered depth), measured: with 4 neighbours per image
    # (32 of the 120 pairs) all 9 pairs sharing >= 50 % of their view and 18 of the 19 sharing
    # >= 40 %; with 5 (42 pairs) all 31 sharing >= 30 %
    four = _pairs(spatial_pairs(X, 4))
    strong = {p for p in pairs if overlap[p] >= 0.5}
    assert len(strong) == 9 and strong <= four
    shared = {p for p in pairs if overlap[p] >= 0.4}
    assert len(shared & four) >= 0.9 * len(shared)
    assert {p for p in pairs if overlap[p] >= 0.3} <= _pairs(spatial_pairs(X, 5))
    # and what is left out overlaps little: the far side of the walk (median 5.5 %)
    assert np.median([overlap[p] for p in set(pairs) - four]) < 0.1


def test_auto_above_the_exhaustive_limit_chooses_spatial_and_says_why(geotagged, walk_features):
    ex, names = walk_features, geotagged["names"]
    feats = [ex.features[n] for n in names]
    opts = SfmOptions(exhaustive_max_images=8, spatial_num_neighbors=2, spatial_retrieval_neighbors=2)
    sel = select_pairs(names, feats, opts, paths=ex.paths)
    assert sel.matcher == "spatial+retrieval"
    assert sel.reason == "auto: 16 images > --exhaustive-max-images 8, 16 of 16 images have a GPS position"
    spatial = _pairs(spatial_pairs(read_image_positions(names, ex.paths).X_enu[:, :2], 2))
    assert spatial <= _pairs(sel.pairs) and set(sel.retrieved) == _pairs(sel.pairs) - spatial
    assert sel.gps["num_with_position"] == 16 and sel.gps["num_spatial_pairs"] == 16
    assert sel.gps["distance"] == "east-north"
    # numbered frames (a drone's DJI_0001.JPG ...) with GPS still get spatial pairs, not a window
    dji = [f"DJI_{k:04d}.JPG" for k in range(1, 17)]
    sel_dji = select_pairs(dji, feats, opts, paths={d: ex.paths[n] for d, n in zip(dji, names)})
    assert sel_dji.matcher == "spatial+retrieval"
    np.testing.assert_array_equal(sel_dji.pairs, sel.pairs)
    # at or below the limit: exhaustive, the GPS tags unread
    small = select_pairs(names, feats, SfmOptions(exhaustive_max_images=16), paths=ex.paths)
    assert small.matcher == "exhaustive" and small.gps == {}
    # without retrieval neighbours: the spatial pairs alone
    alone = select_pairs(names, feats, SfmOptions(matcher="spatial", spatial_num_neighbors=2,
                                                  spatial_retrieval_neighbors=0), paths=ex.paths)
    assert alone.matcher == "spatial" and _pairs(alone.pairs) == spatial and alone.reason == "given by --matcher"
    # 3-D distance when asked (the walk's heights vary by +-0.1 m: the same nearest images here)
    three = select_pairs(names, feats, SfmOptions(matcher="spatial", spatial_num_neighbors=2,
                                                  spatial_retrieval_neighbors=0, spatial_ignore_altitude=False),
                         paths=ex.paths)
    assert three.gps["distance"] == "east-north-up" and _pairs(three.pairs) == spatial
    # a distance limit below the 2.03 m between neighbours leaves no pair
    none = select_pairs(names, feats, SfmOptions(matcher="spatial", spatial_max_distance=1.5,
                                                 spatial_retrieval_neighbors=0), paths=ex.paths)
    assert len(none.pairs) == 0


def _copy_without_gps(geotagged, tmp_path, strip: int = 0, corrupt: int = 0):
    """The geotagged folder with the GPS tags of ``strip`` images removed and of ``corrupt``
    images broken (a zero denominator); returns the folder and the affected names."""
    folder = tmp_path / "images"
    shutil.copytree(geotagged["folder"], folder)
    names = geotagged["names"]
    from PIL import Image

    affected = names[3:3 + strip + corrupt]
    for k, name in enumerate(affected):
        img = np.asarray(Image.open(folder / name).convert("RGB"))
        if k < strip:
            write_jpeg_with_gps(folder / name, img, None)
        else:
            pos = geotagged["written"][name]
            tags, _ = gps_ifd(pos.latitude_deg, pos.longitude_deg, pos.altitude_m)
            tags[4] = (IFDRational(8), IFDRational(0, 0), IFDRational(0))
            write_jpeg_with_gps(folder / name, img, tags)
    return folder, affected


def test_images_without_gps_are_paired_by_retrieval_and_said(geotagged, walk_features, tmp_path, overlap):
    folder, (lost,) = _copy_without_gps(geotagged, tmp_path, strip=1)
    ex, names = walk_features, geotagged["names"]
    feats = [ex.features[n] for n in names]
    paths = {n: folder / n for n in names}
    opts = SfmOptions(exhaustive_max_images=8, spatial_num_neighbors=2, spatial_retrieval_neighbors=0,
                      retrieval_num_neighbors=3)
    with pytest.warns(SfmWarning, match=f"1 of 16 images have no GPS position \\({lost}"):
        sel = select_pairs(names, feats, opts, paths=paths)
    # 15 of 16 (94 %) is nearly all: still spatial, the 16th paired by its most similar images
    assert sel.matcher == "spatial+retrieval"
    assert sel.reason == (f"auto: 16 images > --exhaustive-max-images 8, 15 of 16 images have a GPS position; "
                          f"1 image(s) without a GPS position ({lost}) paired by retrieval (3 most similar each)")
    assert sel.gps["without_position"] == {lost: "no GPS position in its EXIF tags"}
    k = names.index(lost)
    partners = {j for p in sel.pairs for j in p if k in p} - {k}
    assert len(partners) >= 3
    # retrieval found the lost image's walk neighbours (its two most overlapping views)
    best = set(np.argsort(overlap[k])[::-1][:2].tolist())
    assert best <= partners
    # the other images keep their spatial pairs, none with the lost image
    spatial = _pairs(spatial_pairs(read_image_positions(names, paths).X_enu[:, :2], 2))
    assert spatial <= _pairs(sel.pairs) and all(k not in p for p in spatial)


def test_too_few_positions_fall_back_and_say_so(geotagged, walk_features, tmp_path):
    folder, affected = _copy_without_gps(geotagged, tmp_path, strip=1, corrupt=1)
    ex, names = walk_features, geotagged["names"]
    feats = [ex.features[n] for n in names]
    paths = {n: folder / n for n in names}
    sel = select_pairs(names, feats, SfmOptions(exhaustive_max_images=8), paths=paths)
    assert sel.matcher == "retrieval"  # 14 of 16 (88 %) is not nearly all; random names: no sequence
    assert sel.reason == ("auto: 16 images > --exhaustive-max-images 8, the names are not a numbered sequence; "
                          "14 of 16 images have a GPS position (spatial needs 90%)")
    assert "GPSLongitude" in sel.gps["without_position"][affected[1]]  # the corrupt tag, named
    # asked for explicitly, spatial runs on the 14 and pairs the other two by retrieval
    with pytest.warns(SfmWarning, match="2 of 16 images have no GPS position"):
        sp = select_pairs(names, feats, SfmOptions(matcher="spatial"), paths=paths)
    assert sp.matcher == "spatial+retrieval" and sp.reason.startswith("given by --matcher; 2 image(s) without")
    # fewer than two positions: spatial is impossible, and the error says what to do
    with pytest.raises(ValueError, match="0 of the 16 images have an EXIF GPS position.*--matcher retrieval"):
        select_pairs(names, feats, SfmOptions(matcher="spatial"), paths={})
    # every image at one place (copied tags): auto does not take spatial pairs
    same = tmp_path / "same"
    same.mkdir()
    tags, _ = gps_ifd(*ORIGIN)
    for n in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_jpeg_with_gps(same / n, np.zeros((8, 8, 3), np.uint8), tags)
    one = select_pairs(names, feats, SfmOptions(exhaustive_max_images=8), paths={n: same / n for n in names})
    assert one.matcher == "retrieval" and one.reason.endswith("16 of 16 images have a GPS position, all at one place")


def test_run_sfm_with_spatial_pairs_registers_every_view(geotagged):
    opts = SfmOptions(matcher="spatial", spatial_num_neighbors=2, spatial_retrieval_neighbors=0, num_threads=1)
    with pytest.warns(SfmWarning, match="no EXIF focal length"):  # the JPEGs carry GPS tags only
        result = run_sfm(geotagged["folder"], opts, progress=False)
    rep = result.report
    assert rep["matcher"] == "spatial" and rep["matcher_reason"] == "given by --matcher"
    assert rep["num_pairs_matched"] == 16 and rep["num_pairs_verified"] == 16  # the ring, every pair verified
    assert rep["gps"]["num_with_position"] == 16 and rep["gps"]["num_spatial_pairs"] == 16
    assert len(result.reconstructions) == 1 and rep["num_registered_images"] == 16
    rec = result.reconstructions[0]
    by_name = {im.name: im.cam_from_world for im in rec.images.values() if im.cam_from_world is not None}
    names = geotagged["names"]
    errs = camera_errors([by_name[n] for n in names], geotagged["cams_from_world"])
    # measured: 3.7 mm (median 1.7 mm) / 0.022 degrees at most, on a walk of 5.2 m radius
    assert errs.center_errors.max() < 0.02
    assert errs.rotation_errors_deg.max() < 0.2


def test_cli_summary_and_report_say_spatial_and_why(geotagged, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["sfm", str(geotagged["folder"]), "-o", str(out), "-q", "--exhaustive-max-images", "8",
                 "--spatial-num-neighbors", "2", "--spatial-retrieval-neighbors", "1", "--num-threads", "1",
                 "--no-plots"])
    assert code == 0
    stdout = capsys.readouterr().out
    reason = "auto: 16 images > --exhaustive-max-images 8, 16 of 16 images have a GPS position"
    assert f"matcher spatial+retrieval ({reason})" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["matcher"] == "spatial+retrieval" and report["matcher_reason"] == reason
    assert report["gps"]["origin_lat_lon_alt"][:2] == pytest.approx(ORIGIN[:2], abs=1e-4)
    assert report["num_registered_images"] == 16
