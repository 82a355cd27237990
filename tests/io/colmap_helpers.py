"""Helpers of the file-format tests: a reconstruction using every COLMAP camera model,
comparison helpers (geomvision vs geomvision, geomvision vs pycolmap) and ``require_module``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from geomvision import Camera
from geomvision.scene import Reconstruction
from geomvision.synthetic import orbit_scene

MODEL_PARAMS = {
    "SIMPLE_PINHOLE": [500.0, 319.5, 239.5],
    "PINHOLE": [500.0, 510.0, 320.25, 241.75],
    "SIMPLE_RADIAL": [480.0, 318.0, 242.0, -0.05],
    "RADIAL": [520.0, 321.0, 238.0, -0.05, 0.01],
    "OPENCV": [500.0, 505.0, 321.1, 238.3, -0.1, 0.02, 0.001, -0.0005],
    "OPENCV_FISHEYE": [300.0, 301.0, 320.7, 240.2, 0.05, -0.01, 0.002, -0.0003],
}


def make_camera(model: str) -> Camera:
    return Camera(model, 640, 480, MODEL_PARAMS[model])


def multi_model_reconstruction(rng: np.random.Generator, n_extra_keypoints: int = 5) -> Reconstruction:
    """One small orbit scene per COLMAP camera model merged into one Reconstruction, with id
    gaps, random colours and errors, keypoints that observe no point and one unregistered image."""
    rec = Reconstruction()
    for m, model in enumerate(MODEL_PARAMS):
        scene = orbit_scene(n_images=3, n_points=40, camera=make_camera(model), noise_px=0.3, rng=rng)
        part = scene.to_reconstruction()
        cid = rec.add_camera(part.cameras[1], camera_id=10 + 7 * m)
        id_of = {}
        for iid, img in part.images.items():
            extra = rng.uniform([0, 0], [639, 479], size=(n_extra_keypoints, 2))
            new_id = 100 * (m + 1) + 3 * iid
            rec.add_image(img.name.replace("image", model.lower()), cid, np.vstack([img.keypoints, extra]),
                          img.cam_from_world, image_id=new_id)  # fmt: skip
            id_of[iid] = new_id
        for pid, pt in part.points3D.items():
            track = np.column_stack([[id_of[int(i)] for i in pt.track[:, 0]], pt.track[:, 1]])
            rec.add_point3D(pt.xyz, track, color=rng.integers(0, 256, 3), error=float(rng.uniform(0, 2)),
                            point3D_id=1000 * (m + 1) + 2 * pid)  # fmt: skip
    rec.add_image("never_registered.png", 10, rng.uniform(0, 400, size=(7, 2)), None, image_id=99)
    rec.check()
    return rec


def require_module(name: str):
    """``require_module`` of tests/conftest.py (skip locally, fail in CI when ``name`` is missing).

    Loaded by path: every folder's conftest.py is a module named ``conftest``, so
    ``from conftest import ...`` depends on which folder pytest collected last."""
    spec = importlib.util.spec_from_file_location(
        "_geomvision_root_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.require_module(name)


def assert_same_reconstruction(a: Reconstruction, b: Reconstruction, atol: float = 1e-12) -> None:
    """Registered images, their cameras and all points of ``a`` equal those of ``b``."""
    used = {a.images[i].camera_id for i in a.registered_image_ids}
    assert used <= set(b.cameras)
    for cid in used:
        ca, cb = a.cameras[cid], b.cameras[cid]
        assert (ca.model, ca.width, ca.height) == (cb.model, cb.width, cb.height)
        np.testing.assert_allclose(cb.params, ca.params, rtol=0, atol=atol)
    assert a.registered_image_ids == b.registered_image_ids
    for iid in a.registered_image_ids:
        ia, ib = a.images[iid], b.images[iid]
        assert (ia.name, ia.camera_id) == (ib.name, ib.camera_id)
        np.testing.assert_allclose(ib.keypoints, ia.keypoints, rtol=0, atol=atol)
        np.testing.assert_array_equal(ib.point3D_ids, ia.point3D_ids)
        np.testing.assert_allclose(ib.cam_from_world.R, ia.cam_from_world.R, rtol=0, atol=atol)
        np.testing.assert_allclose(ib.cam_from_world.t, ia.cam_from_world.t, rtol=0, atol=atol)
    assert sorted(a.points3D) == sorted(b.points3D)
    ids = sorted(a.points3D)
    pa, pb = [a.points3D[i] for i in ids], [b.points3D[i] for i in ids]
    for field in ("xyz", "color", "error"):
        np.testing.assert_array_equal([getattr(p, field) for p in pb], [getattr(p, field) for p in pa], err_msg=field)
    assert [len(p.track) for p in pa] == [len(p.track) for p in pb]
    if ids:
        np.testing.assert_array_equal(np.concatenate([p.track for p in pb]), np.concatenate([p.track for p in pa]))


def _cx_cy_index(cam: Camera) -> list[int]:
    return [cam.param_names.index("cx"), cam.param_names.index("cy")]


def to_pycolmap(rec: Reconstruction):
    """Build the pycolmap equivalent of ``rec`` through pycolmap's API (not through files),
    converting the pixel convention by hand: COLMAP = geomvision + 0.5."""
    import pycolmap

    out = pycolmap.Reconstruction()
    for cid, cam in rec.cameras.items():
        params = cam.params.copy()
        params[_cx_cy_index(cam)] += 0.5
        out.add_camera_with_trivial_rig(
            pycolmap.Camera(model=cam.model, width=cam.width, height=cam.height, params=params, camera_id=cid)
        )
    for iid in rec.registered_image_ids:
        img = rec.images[iid]
        pim = pycolmap.Image(name=img.name, keypoints=img.keypoints + 0.5, camera_id=img.camera_id, image_id=iid)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(img.cam_from_world.R), img.cam_from_world.t)
        out.add_image_with_trivial_frame(pim, pose)
    for pid, pt in rec.points3D.items():
        track = pycolmap.Track([pycolmap.TrackElement(int(i), int(k)) for i, k in pt.track])
        out.add_point3D_with_id(pid, pycolmap.Point3D(xyz=pt.xyz, color=pt.color, error=pt.error, track=track))
    return out


def assert_matches_pycolmap(rec: Reconstruction, prec, atol: float = 1e-12) -> None:
    """``rec`` (geomvision conventions) describes the same model as pycolmap's ``prec``."""
    assert sorted(prec.cameras) == sorted(rec.cameras)
    for cid, pcam in prec.cameras.items():
        cam = rec.cameras[cid]
        assert (pcam.model.name, pcam.width, pcam.height) == (cam.model, cam.width, cam.height)
        expected = cam.params.copy()
        expected[_cx_cy_index(cam)] += 0.5
        np.testing.assert_allclose(pcam.params, expected, rtol=0, atol=atol)
    assert sorted(prec.reg_image_ids()) == rec.registered_image_ids
    for iid in rec.registered_image_ids:
        pim, img = prec.images[iid], rec.images[iid]
        assert (pim.name, pim.camera_id) == (img.name, img.camera_id)
        np.testing.assert_allclose(pim.cam_from_world().matrix(), img.cam_from_world.matrix3x4, rtol=0, atol=atol)
        xy = np.array([p.xy for p in pim.points2D]).reshape(-1, 2)
        np.testing.assert_allclose(xy - 0.5, img.keypoints, rtol=0, atol=atol)
        ids = np.array([p.point3D_id if p.has_point3D() else -1 for p in pim.points2D], dtype=np.int64)
        np.testing.assert_array_equal(ids, img.point3D_ids)
    assert sorted(prec.points3D) == sorted(rec.points3D)
    for pid, ppt in prec.points3D.items():
        pt = rec.points3D[pid]
        np.testing.assert_array_equal(ppt.xyz, pt.xyz)
        np.testing.assert_array_equal(ppt.color, pt.color)
        assert ppt.error == pt.error
        ptrack = sorted((e.image_id, e.point2D_idx) for e in ppt.track.elements)
        assert ptrack == sorted(map(tuple, pt.track.tolist()))
