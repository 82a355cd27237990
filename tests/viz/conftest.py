"""Fixtures for the viz tests: a small real model of fountain-P11 and an sfm-style folder."""

from __future__ import annotations

import json
import os

import pytest

from geomvision.io import write_model, write_ply

from .real_model import IMAGES, build_fountain_model


@pytest.fixture(scope="session")
def o3d():
    """open3d (the viz extra): skipped locally when missing, a failure in CI."""
    try:
        import open3d
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("open3d is required in CI (install the 'viz' extra)")
        pytest.skip("open3d not installed")
    return open3d


@pytest.fixture(scope="session")
def fountain_model(fountain):
    """(Reconstruction of three fountain-P11 images, {"grey": ..., "rgb": ...} images by name)."""
    return build_fountain_model(fountain, IMAGES)


@pytest.fixture(scope="session")
def fountain_sfm_dir(fountain_model, fountain, tmp_path_factory):
    """An sfm output folder: sparse/0 (the model), sparse/1 (a smaller one), points.ply, report.json."""
    rec, _ = fountain_model
    root = tmp_path_factory.mktemp("sfm_out")
    write_model(rec, root / "sparse" / "0")
    small = build_small_copy(rec)
    write_model(small, root / "sparse" / "1")
    write_ply(rec, root / "points.ply")
    report = {"num_registered_images": rec.num_registered_images, "total_s": 12.5,
              "mapper": {"num_models": 2, "refinements": [1, 2]}, "image_dir": str(fountain.image_dir)}
    (root / "report.json").write_text(json.dumps(report))
    return root


def build_small_copy(rec):
    """The first two images of ``rec`` with the points they both see (a second, smaller model)."""
    from geomvision.scene import Reconstruction

    out = Reconstruction()
    for cid, cam in rec.cameras.items():
        out.add_camera(cam, camera_id=cid)
    keep = rec.registered_image_ids[:2]
    for iid in keep:
        im = rec.images[iid]
        out.add_image(im.name, im.camera_id, im.keypoints, im.cam_from_world, image_id=iid)
    for pid, pt in rec.points3D.items():
        track = pt.track[[int(i) in keep for i in pt.track[:, 0]]]
        if len(track) >= 2:
            out.add_point3D(pt.xyz, track, pt.color, point3D_id=pid)
    return out
