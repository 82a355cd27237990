"""A courtyard walked round facing its walls (issue 15, item 2): most pairs see one facade (a
plane), views overlap only their neighbours' and the walk turns at the corners; the windows
repeat. Rendered with exact cameras (`render_courtyard(facing="walls")`)."""

import numpy as np
import pytest

from geomvision.scene.align import camera_errors
from geomvision.sfm import CameraOptions, SfmOptions, run_sfm
from geomvision.synthetic import write_strecha_layout
from geomvision.synthetic.courtyard import render_courtyard


def _map(tmp_path_factory, unique_fraction: float, rng: int = 0):
    views = render_courtyard(19, size_m=(40.0, 30.0), margin_m=12.0, look_up_deg=10.0, facing="walls",
                             unique_fraction=unique_fraction, rng=rng)
    d = write_strecha_layout(views, tmp_path_factory.mktemp(f"walls{unique_fraction}_{rng}"), source="test")
    res = run_sfm(d / "images", SfmOptions(camera=CameraOptions(K=str(d / "K.txt"))), cache_dir=d / "cache",
                  progress=False)
    gt = dict(zip(views.names, views.cams_from_world))
    errors = []
    for rec in res.reconstructions:
        ims = sorted(rec.images.values(), key=lambda im: im.name)
        if len(ims) >= 3:
            err = camera_errors([im.cam_from_world for im in ims], [gt[im.name] for im in ims])
            errors.append((len(ims), err.mean_center_error, err.max_center_error))
    return errors


@pytest.mark.slow
def test_planar_pairs_join_the_walk_into_one_model(tmp_path_factory):
    # every window its own: each half of the walk maps, and the two only meet in planar pairs
    # (views of one wall) at the corners; those pairs now register and merge (before: 2 models)
    errors = _map(tmp_path_factory, 1.0)
    assert len(errors) == 1 and errors[0][0] == 19
    assert errors[0][1] < 0.02 and errors[0][2] < 0.05  # metres, on a 35 m walk (measured 6.3 / 15 mm)


@pytest.mark.slow
@pytest.mark.parametrize(("unique_fraction", "rng"), [(0.5, 0), (0.15, 0), (0.3, 1), (0.15, 1)])
def test_repeated_windows_give_no_wrong_model(tmp_path_factory, unique_fraction, rng):
    # pairs two or three views apart verify on a window grid shifted by a window (rotations
    # 8-45 degrees off, or a right rotation and a wrong baseline), and now and then a strong
    # neighbouring pair too. Before, such pairs seeded or placed views of models metres off
    # everywhere with reprojection errors of 0.04 px (11, 16 and 11 views 3.5-3.6 m off). Now a
    # pair that its triangles blame (none closes, the other legs close elsewhere), or that the
    # chain of the strongest unblamed pairs between its views contradicts, seeds, places and
    # merges nothing; a weak pair alone places no view whose strong pairs' views are not mapped;
    # and a view whose pose contradicts its verified pairs in the model leaves it. With 15 %
    # unique windows and seed 1 a wrong initial pair (8-11: right rotation, wrong baseline) held
    # its two views in a model that did not grow; such a model now gives them back (9 -> 16 views
    # registered). Now: 19 views at 30 mm; 9 + 9 at 11 / 16 mm; 19 at 16 mm; 9 + 7 at 13 / 8 mm
    errors = _map(tmp_path_factory, unique_fraction, rng)
    assert sum(n for n, _, _ in errors) >= 15
    assert all(mean < 0.05 for _, mean, _ in errors), errors
