"""COLMAP models: pycolmap 4.2 interop both ways (text and binary), round trips for every camera
model, the 0.5-pixel shift, COLMAP 4 rigs/frames, unregistered images and format detection."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomvision import Camera, Rigid3
from geomvision.io import read_model, write_model
from geomvision.io.colmap import model_format
from geomvision.scene import Reconstruction

from colmap_helpers import (
    MODEL_PARAMS,
    assert_matches_pycolmap,
    assert_same_reconstruction,
    make_camera,
    multi_model_reconstruction,
    require_module,
    to_pycolmap,
)

FORMATS = [pytest.param(True, id="bin"), pytest.param(False, id="txt")]


@pytest.fixture
def multi_rec(rng) -> Reconstruction:
    return multi_model_reconstruction(rng)


def _registered_only(rec: Reconstruction) -> set[int]:
    return set(rec.images) - set(rec.registered_image_ids)


@pytest.mark.parametrize("binary", FORMATS)
def test_geomvision_round_trip_every_camera_model(multi_rec, tmp_path, binary):
    write_model(multi_rec, tmp_path, binary=binary)
    back = read_model(tmp_path)
    assert {c.model for c in back.cameras.values()} == set(MODEL_PARAMS)
    assert_same_reconstruction(multi_rec, back)
    assert sorted(back.cameras) == sorted(multi_rec.cameras)  # also the unregistered image's camera
    assert 99 not in back.images and 99 in multi_rec.images  # the unregistered image is left out


@pytest.mark.parametrize("binary", FORMATS)
def test_pycolmap_reads_what_geomvision_writes(multi_rec, tmp_path, binary):
    pycolmap = require_module("pycolmap")
    write_model(multi_rec, tmp_path, binary=binary)
    prec = pycolmap.Reconstruction(str(tmp_path))
    assert_matches_pycolmap(multi_rec, prec)
    # COLMAP 4 view: one trivial rig per camera, one registered frame per registered image
    assert prec.num_rigs() == len(multi_rec.cameras)
    assert prec.num_reg_frames() == multi_rec.num_registered_images
    for iid in multi_rec.registered_image_ids:
        frame = prec.frames[iid]
        assert frame.rig_id == multi_rec.images[iid].camera_id


@pytest.mark.parametrize("binary", FORMATS)
def test_geomvision_reads_what_pycolmap_writes(multi_rec, tmp_path, binary):
    require_module("pycolmap")
    prec = to_pycolmap(multi_rec)
    (prec.write_binary if binary else prec.write_text)(str(tmp_path))
    assert model_format(tmp_path) == ("bin" if binary else "txt")
    rec = read_model(tmp_path)
    assert_matches_pycolmap(rec, prec)
    assert_same_reconstruction(multi_rec, rec)


@pytest.mark.parametrize("binary", FORMATS)
def test_half_pixel_shift_is_explicit(tmp_path, binary):
    """A COLMAP point2D at (0.5, 0.5) is geomvision's (0, 0); likewise the principal point."""
    pycolmap = require_module("pycolmap")
    prec = pycolmap.Reconstruction()
    prec.add_camera_with_trivial_rig(
        pycolmap.Camera(model="PINHOLE", width=4, height=3, params=[10.0, 10.0, 2.0, 1.5], camera_id=1)
    )
    image = pycolmap.Image(name="a.png", keypoints=np.array([[0.5, 0.5], [4.0, 3.0]]), camera_id=1, image_id=1)
    prec.add_image_with_trivial_frame(image, pycolmap.Rigid3d())
    (prec.write_binary if binary else prec.write_text)(str(tmp_path))
    rec = read_model(tmp_path)
    np.testing.assert_array_equal(rec.images[1].keypoints, [[0.0, 0.0], [3.5, 2.5]])
    np.testing.assert_array_equal(rec.cameras[1].principal_point, [1.5, 1.0])  # image centre (w-1)/2, (h-1)/2
    out = tmp_path / "back"
    write_model(rec, out, binary=binary)
    back = pycolmap.Reconstruction(str(out))
    np.testing.assert_array_equal([p.xy for p in back.images[1].points2D], [[0.5, 0.5], [4.0, 3.0]])
    np.testing.assert_array_equal(back.cameras[1].params, [10.0, 10.0, 2.0, 1.5])


def test_pycolmap_multi_camera_rig_model(tmp_path):
    """A COLMAP 4 model with real rigs (sensor_from_rig != identity): image poses come out as
    pycolmap computes them, the frames are checked against them, and our rewrite (trivial rigs)
    keeps every image pose."""
    pycolmap = require_module("pycolmap")
    options = pycolmap.SyntheticDatasetOptions(
        num_rigs=2, num_cameras_per_rig=2, num_frames_per_rig=3, num_points3D=60, num_points2D_without_point3D=4
    )
    prec = pycolmap.synthesize_dataset(options)
    assert any(len(rig.non_ref_sensors) for rig in prec.rigs.values())
    for binary, sub in ((True, "bin"), (False, "txt")):
        (tmp_path / sub).mkdir()
        (prec.write_binary if binary else prec.write_text)(str(tmp_path / sub))
        rec = read_model(tmp_path / sub)
        assert_matches_pycolmap(rec, prec)
        write_model(rec, tmp_path / f"{sub}_out", binary=binary)
        assert_matches_pycolmap(rec, pycolmap.Reconstruction(str(tmp_path / f"{sub}_out")))


def test_colmap3_model_without_rigs_and_frames(multi_rec, tmp_path):
    """COLMAP 3 folders have only cameras, images and points3D: both pycolmap and we read them."""
    pycolmap = require_module("pycolmap")
    write_model(multi_rec, tmp_path)
    (tmp_path / "rigs.bin").unlink()
    (tmp_path / "frames.bin").unlink()
    assert_same_reconstruction(multi_rec, read_model(tmp_path))
    assert_matches_pycolmap(multi_rec, pycolmap.Reconstruction(str(tmp_path)))


def test_images_bin_has_the_colmap3_layout(tmp_path):
    """images.bin: u64 count, then u32 id, 7 f64 pose (qw qx qy qz tx ty tz), u32 camera, name NUL,
    u64 count, (f64 x, f64 y, u64 point3D_id or 2**64-1) -- byte for byte."""
    rec = Reconstruction()
    rec.add_camera(make_camera("PINHOLE"), camera_id=3)
    pose = Rigid3.from_rotvec([0.1, -0.2, 0.3], [1.0, 2.0, 3.0])
    rec.add_image("x.jpg", 3, np.array([[1.0, 2.0], [3.0, 4.0]]), pose, image_id=7)
    write_model(rec, tmp_path)
    data = (tmp_path / "images.bin").read_bytes()
    head_dtype = np.dtype([("n", "<u8"), ("id", "<u4"), ("pose", "<f8", 7), ("cam", "<u4")])  # 72 bytes
    head = np.frombuffer(data, dtype=head_dtype, count=1)[0]
    assert (head["n"], head["id"], head["cam"]) == (1, 7, 3)
    np.testing.assert_allclose(head["pose"][:4], pose.quat_wxyz, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(head["pose"][4:], pose.t)
    assert data[72:78] == b"x.jpg\0"
    assert np.frombuffer(data, dtype="<u8", count=1, offset=78)[0] == 2
    pts = np.frombuffer(data, dtype=np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<u8")]), count=2, offset=86)
    np.testing.assert_array_equal(pts["x"], [1.5, 3.5])
    np.testing.assert_array_equal(pts["y"], [2.5, 4.5])
    np.testing.assert_array_equal(pts["id"], [2**64 - 1] * 2)
    assert len(data) == 86 + 2 * 24


def test_pinhole_skew_cannot_be_written(tmp_path):
    rec = Reconstruction()
    rec.add_camera(Camera("PINHOLE_SKEW", 640, 480, [500, 500, 0.5, 320, 240]), camera_id=1)
    rec.add_image("a.png", 1, np.zeros((0, 2)), Rigid3(), image_id=1)
    with pytest.raises(ValueError, match="PINHOLE_SKEW.*COLMAP has no camera model.*Fix"):
        write_model(rec, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_write_model_creates_folder_and_replaces_other_format(multi_rec, tmp_path):
    folder = tmp_path / "a" / "b"
    write_model(multi_rec, folder, binary=True)
    assert model_format(folder) == "bin"
    write_model(multi_rec, folder, binary=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{n}.txt" for n in ("cameras", "images", "points3D", "rigs", "frames")
    )
    assert model_format(folder) == "txt"
    assert_same_reconstruction(multi_rec, read_model(folder))


def test_binary_preferred_when_both_formats_exist(multi_rec, tmp_path):
    write_model(multi_rec, tmp_path / "t", binary=False)
    write_model(multi_rec, tmp_path / "b", binary=True)
    for name in ("cameras", "images", "points3D"):
        (tmp_path / "b" / f"{name}.txt").write_bytes((tmp_path / "t" / f"{name}.txt").read_bytes())
    assert model_format(tmp_path / "b") == "bin"


def test_missing_model_is_a_clear_error(tmp_path):
    (tmp_path / "cameras.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="no COLMAP model.*cameras.bin"):
        read_model(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        read_model(tmp_path / "nope")


def test_names_that_text_cannot_store(tmp_path):
    rec = Reconstruction()
    rec.add_camera(make_camera("SIMPLE_PINHOLE"), camera_id=1)
    rec.add_image("my photo ü.jpg", 1, np.zeros((0, 2)), Rigid3(), image_id=1)
    with pytest.raises(ValueError, match="whitespace.*binary=True"):
        write_model(rec, tmp_path / "t", binary=False)
    write_model(rec, tmp_path / "b", binary=True)
    assert read_model(tmp_path / "b").images[1].name == "my photo ü.jpg"


def test_empty_reconstruction_round_trips(tmp_path):
    for binary in (True, False):
        write_model(Reconstruction(), tmp_path / str(binary), binary=binary)
        back = read_model(tmp_path / str(binary))
        assert (len(back.cameras), len(back.images), len(back.points3D)) == (0, 0, 0)


def test_new_points_get_fresh_ids_after_reading(multi_rec, tmp_path):
    write_model(multi_rec, tmp_path)
    back = read_model(tmp_path)
    new = back.add_point3D(np.zeros(3))
    assert new > max(multi_rec.points3D)


# --- property test -----------------------------------------------------------------------------
@st.composite
def reconstructions(draw):
    """Random small reconstructions: arbitrary ids, any COLMAP model, tracks over random keypoints,
    images without keypoints, unregistered images."""
    seed = draw(st.integers(0, 2**32 - 1))
    gen = np.random.default_rng(seed)
    rec = Reconstruction()
    cam_ids = draw(st.lists(st.integers(0, 2**32 - 2), min_size=1, max_size=3, unique=True))
    for cid in cam_ids:
        rec.add_camera(make_camera(draw(st.sampled_from(sorted(MODEL_PARAMS)))), camera_id=cid)
    img_ids = draw(st.lists(st.integers(0, 2**32 - 2), min_size=1, max_size=5, unique=True))
    for iid in img_ids:
        n_kp = draw(st.integers(0, 12))
        registered = draw(st.booleans())
        pose = Rigid3.random(gen, t_scale=draw(st.sampled_from([1e-3, 1.0, 1e4]))) if registered else None
        kp = gen.uniform(-0.5, 700.0, size=(n_kp, 2)) * draw(st.sampled_from([1.0, 1e-3]))
        rec.add_image(f"im_{iid}.png", draw(st.sampled_from(cam_ids)), kp, pose, image_id=iid)
    free = [(i, k) for i in rec.registered_image_ids for k in range(len(rec.images[i].keypoints))]
    gen.shuffle(free)
    n_points = draw(st.integers(0, 8))
    pids = draw(st.lists(st.integers(0, 2**62), min_size=n_points, max_size=n_points, unique=True))
    for pid in pids:
        length = min(draw(st.integers(0, 4)), len(free))
        track, free = free[:length], free[length:]
        xyz = gen.normal(size=3) * draw(st.sampled_from([1e-6, 1.0, 1e6]))
        rec.add_point3D(xyz, np.array(track, dtype=np.int64).reshape(-1, 2), color=gen.integers(0, 256, 3),
                        error=draw(st.sampled_from([-1.0, 0.0, float(gen.uniform(0, 5))])), point3D_id=pid)  # fmt: skip
    return rec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=reconstructions(), binary=st.booleans())
def test_round_trip_property(rec, binary):
    with tempfile.TemporaryDirectory() as tmp:
        write_model(rec, tmp, binary=binary)
        back = read_model(Path(tmp))
    assert_same_reconstruction(rec, back, atol=1e-9 * max(1.0, _largest_value(rec)))
    assert set(back.images) == set(rec.registered_image_ids)


def _largest_value(rec: Reconstruction) -> float:
    vals = [np.abs(im.cam_from_world.t).max() for im in rec.images.values() if im.registered]
    vals += [np.abs(im.keypoints).max() for im in rec.images.values() if len(im.keypoints)]
    return float(max(vals, default=1.0)) * 1e-3


def test_large_model_round_trip(rng, tmp_path):
    """A fountain-sized model (11 images, 15k points) survives both formats unchanged."""
    from geomvision.synthetic import orbit_scene

    rec = orbit_scene(11, 15000, rng=rng, noise_px=0.5).to_reconstruction()
    for binary in (True, False):
        write_model(rec, tmp_path / str(binary), binary=binary)
        assert_same_reconstruction(rec, read_model(tmp_path / str(binary), check=False))


def test_multi_model_fixture_is_not_degenerate(rng):
    rec = multi_model_reconstruction(rng)
    assert rec.num_registered_images == 18 and len(rec.points3D) > 100
    assert any(np.any(im.point3D_ids < 0) for im in rec.images.values())
    assert _registered_only(rec) == {99}


@pytest.mark.parametrize("binary", FORMATS)
def test_pycolmap_reads_empty_images_and_trackless_points(tmp_path, binary):
    pycolmap = require_module("pycolmap")
    rec = Reconstruction()
    rec.add_camera(Camera("PINHOLE", 10, 10, [5.0, 5.0, 4.5, 4.5]), camera_id=1)
    rec.add_image("a.png", 1, np.zeros((0, 2)), Rigid3(), image_id=1)
    rec.add_image("b.png", 1, np.ones((2, 2)), Rigid3.from_rotvec([0.0, 0.1, 0.0], [1.0, 0.0, 0.0]), image_id=2)
    rec.add_point3D([0.0, 0.0, 1.0], None, point3D_id=5)
    write_model(rec, tmp_path, binary=binary)
    assert_matches_pycolmap(rec, pycolmap.Reconstruction(str(tmp_path)))
    assert_same_reconstruction(rec, read_model(tmp_path))


def test_text_with_byte_order_mark_and_crlf(multi_rec, tmp_path):
    write_model(multi_rec, tmp_path, binary=False)
    for name in ("cameras", "images", "points3D", "rigs", "frames"):
        path = tmp_path / f"{name}.txt"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert_same_reconstruction(multi_rec, read_model(tmp_path))
