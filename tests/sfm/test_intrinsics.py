"""Initial intrinsics: --K parsing, the K / EXIF / prior order, and which images share a camera."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geomvision.sfm.intrinsics import FOCAL_PRIOR_FACTOR, guess_intrinsics, parse_K
from geomvision.sfm.options import CameraOptions, SfmOptions
from geomvision.sfm.pipeline import _initial_cameras

K = np.array([[500.0, 0.0, 320.0], [0.0, 501.0, 240.0], [0.0, 0.0, 1.0]])


def test_parse_K_from_a_file_a_string_and_an_array(tmp_path):
    f = tmp_path / "K.txt"
    np.savetxt(f, K)
    np.testing.assert_array_equal(parse_K(str(f)), K)
    np.testing.assert_array_equal(parse_K("500, 501, 320, 240"), K)
    np.testing.assert_array_equal(parse_K(K), K)


@pytest.mark.parametrize("spec, words", [
    ("500,501,320", "cannot read"),
    ("500,x,320,240", "not a number"),
    ("missing/K.txt", "does not exist"),
    ("-500,501,320,240", "positive focal"),
])
def test_parse_K_names_the_problem(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_K(spec)


def test_parse_K_file_of_the_wrong_shape(tmp_path):
    f = tmp_path / "K.txt"
    np.savetxt(f, np.eye(2))
    with pytest.raises(ValueError, match="3x3"):
        parse_K(str(f))


def test_guess_prefers_K_then_exif_then_the_prior():
    g = guess_intrinsics(640, 480, "PINHOLE", K=K, exif_focal_px=700.0)
    assert g.source == "K" and g.known
    np.testing.assert_allclose(g.camera.K, K)
    g = guess_intrinsics(640, 480, "SIMPLE_RADIAL", exif_focal_px=700.0)
    assert g.source == "exif" and not g.known and g.camera.mean_focal_length == 700.0
    g = guess_intrinsics(640, 480, "SIMPLE_RADIAL", exif_focal_px=float("nan"))
    assert g.source == "prior" and g.camera.mean_focal_length == FOCAL_PRIOR_FACTOR * 640
    # pixel (0, 0) is the centre of the top-left pixel: the image centre is ((W - 1) / 2, (H - 1) / 2)
    np.testing.assert_allclose(g.camera.principal_point, [319.5, 239.5])


def _jpeg(path, size_wh, focal_35mm=None):
    exif = Image.Exif()
    if focal_35mm is not None:
        exif.get_ifd(0x8769)[0xA405] = focal_35mm  # FocalLengthIn35mmFilm
    Image.new("RGB", size_wh, (90, 100, 110)).save(path, exif=exif)
    return path


def test_shared_cameras_split_by_image_size_and_exif_focal_length(tmp_path):
    # one lens at two zoom settings and a second image size: three cameras; without a shared
    # camera, one per image; a known K is one camera per image size
    specs = {"a.jpg": ((640, 480), 28), "b.jpg": ((640, 480), 28), "c.jpg": ((640, 480), 50),
             "d.jpg": ((800, 600), 28), "e.jpg": ((640, 480), None), "f.jpg": ((640, 480), None)}
    paths = {n: _jpeg(tmp_path / n, size, f35) for n, (size, f35) in specs.items()}
    names = sorted(paths)
    sizes = {n: specs[n][0] for n in names}
    cams, img_cam, known, sources = _initial_cameras(names, paths, sizes, SfmOptions())
    assert img_cam.tolist() == [0, 0, 1, 2, 3, 3]
    assert sources == ["exif", "exif", "exif", "prior"]
    np.testing.assert_allclose([c.mean_focal_length for c in cams], [28 / 36 * 640, 50 / 36 * 640, 28 / 36 * 800,
                                                                      FOCAL_PRIOR_FACTOR * 640])
    assert not known.any()
    cams, img_cam, _, _ = _initial_cameras(names, paths, sizes, SfmOptions(camera=CameraOptions(single_camera=False)))
    assert img_cam.tolist() == list(range(6))
    cams, img_cam, known, sources = _initial_cameras(names, paths, sizes,
                                                     SfmOptions(camera=CameraOptions(K="500,501,320,240")))
    assert img_cam.tolist() == [0, 0, 0, 1, 0, 0] and known.all() and sources == ["K", "K"]
