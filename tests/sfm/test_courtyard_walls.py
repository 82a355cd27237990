"""A courtyard walked round facing its walls (issue 15, item 2): most pairs see one facade (a
plane), views overlap only their neighbours' and the walk turns at the corners; the windows
repeat. Rendered with exact cameras (`render_courtyard(facing="walls")`)."""

import numpy as np
import pytest

from geomvision.scene.align import camera_errors
from geomvision.sfm import CameraOptions, SfmOptions, run_sfm
from geomvision.synthetic import write_strecha_layout
from geomvision.synthetic.courtyard import render_courtyard


def _map(tmp_path_factory, unique_fraction: float, rng: int = 0, n: int = 19, seed: int = 0,
         exif_factor: float | None = None):
    """(views, mean and max centre error (m)) of each model of 3 views or more. With
    ``exif_factor`` the images are JPEGs whose EXIF gives the focal length times it (no K)."""
    views = render_courtyard(n, size_m=(40.0, 30.0), margin_m=12.0, look_up_deg=10.0, facing="walls",
                             unique_fraction=unique_fraction, rng=rng)
    d = write_strecha_layout(views, tmp_path_factory.mktemp(f"walls{n}_{unique_fraction}_{rng}"), source="test")
    options = SfmOptions(camera=CameraOptions(K=str(d / "K.txt")), seed=seed)
    images = d / "images"
    if exif_factor is not None:
        images = _exif_jpegs(views, d / "jpeg", exif_factor)
        options = SfmOptions(seed=seed)
    res = run_sfm(images, options, cache_dir=d / "cache", progress=False)
    gt = dict(zip(views.names, views.cams_from_world))
    errors = []
    for rec in res.reconstructions:
        ims = sorted(rec.images.values(), key=lambda im: im.name)
        if len(ims) >= 3:
            names = [im.name.replace(".jpg", ".png") for im in ims]
            err = camera_errors([im.cam_from_world for im in ims], [gt[k] for k in names])
            errors.append((len(ims), err.mean_center_error, err.max_center_error))
    return errors


def _assert_right(errors, *, min_views: int, max_mean: float) -> None:
    """At least ``min_views`` views in models of 3 or more, every one within ``max_mean`` (m)."""
    assert sum(n for n, _, _ in errors) >= min_views, errors
    assert all(mean < max_mean for _, mean, _ in errors), errors


def _exif_jpegs(views, d, factor: float):
    """The views as JPEGs (quality 95) whose EXIF gives the focal length x ``factor`` (FocalLength
    4 mm, FocalPlaneXResolution in pixels per cm)."""
    from PIL import Image

    d.mkdir()
    for name, img in zip(views.names, views.images):
        exif = Image.Exif()
        sub = exif.get_ifd(0x8769)
        sub[0x920A] = 4.0
        sub[0xA20E] = factor * views.camera.mean_focal_length / 4.0 * 10.0
        sub[0xA210] = 3
        Image.fromarray(np.asarray(img)).convert("RGB").save(d / name.replace(".png", ".jpg"), quality=95, exif=exif)
    return d


@pytest.mark.slow
@pytest.mark.parametrize(("unique_fraction", "rng"), [(1.0, 0), (0.5, 0), (0.15, 0), (0.3, 1), (0.5, 8), (0.15, 1),
                                                     (0.3, 6)])
def test_the_walk_maps_into_one_right_model(tmp_path_factory, unique_fraction, rng):
    # every window its own (1.0): each half of the walk maps, and the two only meet in planar
    # pairs (views of one wall) at the corners; those pairs now register and merge (before: 2
    # models). With repeated windows, pairs two or three views apart verify on the window grid
    # shifted by a window (rotations 5-70 degrees off, or a right rotation and a wrong baseline)
    # and agree with each other (one view shifted by a window explains all of its weak pairs),
    # so loop tests on triangles blamed the right strong pairs between them and the walk split
    # (15 %, seed 0: 9 + 9 views); the rotations averaged over all pairs, weighted by inliers,
    # find every wrong rotation and no right one there. Before the pair checks, models were
    # metres off at 0.04 px (50 %: 11 views 3.64 m off; 15 %: 16 views 3.57 m off; 30 %, seed 1:
    # 11 views 2.89 m off). With the loss at a fixed 1 px scale, wrong window matches that
    # reproject within 0.4-4 px pulled as hard as the true ones and bent the walk: 6.3 / 29.6 /
    # 14.3 / 16.0 mm mean (max 15-84 mm); with the scale at 8 x the residuals' noise: 2.0 / 2.9 /
    # 3.0 / 3.9 mm (max 4-15 mm). 50 %, seed 8: the planar pair 16-17 took its plane's wrong
    # decomposition (8.6 deg off) where its own matches off the plane chose the true one (MSAC 12
    # against 295 px^2) and three further views outvoted them: 10 + 7 views; now 19 (4.0 mm).
    # 15 %, seed 1: the planar pair at a corner (12-13: its matches all on the wall, its costs
    # equal) took the decomposition 10 degrees off that one further view preferred, views 13-14
    # were not placed and the walk split (10 + 7 views); the rotations averaged over the other
    # pairs (its own left out) are 7.5 degrees from the true decomposition and 17.5 from the
    # other: now 19 views (2.5 mm). 30 %, seed 6: two such corner pairs (12-13, 15-16), each
    # leaving the other pairs' loop open at the other; once 15-16 is decided (3.6 against 14.8
    # degrees) it votes for 12-13 (1.4 against 9.5; 10 + 7 views before, now 19 at 4.2 mm).
    errors = _map(tmp_path_factory, unique_fraction, rng)
    assert len(errors) == 1 and errors[0][0] == 19, errors
    assert errors[0][1] < 0.006 and errors[0][2] < 0.02, errors  # metres, on a 35 m walk


@pytest.mark.slow
def test_repeated_windows_give_no_wrong_model(tmp_path_factory):
    # 15 % unique windows, seed 5: the walk splits at two corners (8 + 7 views), but no model is
    # wrong (at a fixed loss scale 9.6 and 2.9 mm; now 3.3 and 1.3 mm); a model seeded by a
    # weak pair (13-16) does not grow and gives its views back. (Until a corner's planar pair was
    # judged by the other pairs' rotations, this test ran seed 1, 10 + 7 views, where a wrong
    # initial pair with the opposite baseline, 8-11, had held its two views: 9 -> 17 registered
    # once such models gave them back.)
    errors = _map(tmp_path_factory, 0.15, 5)
    assert sum(n for n, _, _ in errors) >= 15
    assert all(mean < 0.006 for _, mean, _ in errors), errors


@pytest.mark.slow
def test_a_pair_whose_inliers_do_not_decide_its_baseline_sign_seeds_no_model(tmp_path_factory):
    # 25 views, 15 % unique windows, walk seed 2, SfM seed 1 (bench_walls' walk 5): the pair 11-14
    # verified with a right rotation and its baseline reversed (179.9 deg) on matches shifted by a
    # window and seeded a model consistent in itself, into which the others merged: one model
    # metres off (here 18 views 4.7 m off), unless a strong pair across the two contradicted the
    # merge (on some CPUs the models form in an order where one does). Of its inliers whose rays
    # meet at 1.5 deg or more, 82 meet in front of both cameras under its verified pose and 71
    # with its baseline reversed (a right pair of the walk: 667 against 44); a coin does as well
    # 21 % of the time, so the seeding refuses it (sign test at 5 %) and no model is grown from
    # it: 22 + 3 views, every model right (with the EXIF focal length instead of K the walk had
    # been wrong at every seed)
    _assert_right(_map(tmp_path_factory, 0.15, 2, n=25, seed=1), min_views=24, max_mean=0.03)


@pytest.mark.slow
def test_a_model_that_fits_its_matches_loosely_is_dissolved(tmp_path_factory):
    # 15 % unique windows, walk seed 10, SfM seed 1 (bench_walls' walk 14): views 1-3 seeded a
    # third model from the pair 2-3 verified on matches shifted by a window (225 inliers, 2.2
    # deg) and registered view 1 by them: 3 views 0.49 m off, consistent in themselves, tied to
    # the other models by no verified pair that could contradict them. Its median reprojection
    # error was 15 times that of the right models (0.23 against 0.015 px; right models agree
    # within a factor 1.4), so it is dissolved: 10 + 5 right views instead of 10 + 5 + 3 wrong
    _assert_right(_map(tmp_path_factory, 0.15, 10, seed=1), min_views=15, max_mean=0.03)


@pytest.mark.slow
def test_a_view_that_fits_its_matches_loosely_is_removed_from_its_model(tmp_path_factory):
    # 15 % unique windows, walk seed 5, SfM seed 0, the focal length from EXIF 3 % off (bench_walls'
    # walk 9 with --exif 1.03): view 18 registered into the model of views 0-5 by 31 of 41 2D-3D
    # inliers through window-shifted matches, 1.5 m off, and the model bent round it (7 views
    # 0.47 m off; 18 mm without it). Its median reprojection error was 17 times the model's (the
    # other views 0.9-1.3 times), so it is removed and the model adjusted without it: 8 + 6 + 4
    # right views
    _assert_right(_map(tmp_path_factory, 0.15, 5, seed=0, exif_factor=1.03), min_views=16, max_mean=0.05)
