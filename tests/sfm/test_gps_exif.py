"""EXIF GPS positions (issue 16): read back exactly what was written, malformed tags named, images
without a position said, and the positions of a set in local ENU metres."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gps_helpers import gps_ifd, lat_lon_alt_from_enu, write_jpeg_with_gps
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geomvision.imageio import GpsPosition, exif_focal_px, exif_gps
from geomvision.sfm.gps import read_image_positions

IMG = np.full((24, 32, 3), 128, np.uint8)


def _close(a: GpsPosition, b: GpsPosition) -> None:
    # the reader sums degrees + minutes / 60 + seconds / 3600 in floating point: equal to 1e-12 deg (0.1 um)
    assert a.latitude_deg == pytest.approx(b.latitude_deg, abs=1e-12)
    assert a.longitude_deg == pytest.approx(b.longitude_deg, abs=1e-12)
    assert a.altitude_m == b.altitude_m


def test_the_position_written_is_read_back(tmp_path, rng):
    for k in range(40):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-179.9, 179.9)
        alt = None if k % 5 == 0 else float(rng.uniform(-400, 9000))
        tags, written = gps_ifd(lat, lon, alt)
        path = tmp_path / f"{k}.jpg"
        write_jpeg_with_gps(path, IMG, tags)
        got = exif_gps(path)
        _close(got, written)
        # what was written is the position to the EXIF rationals' precision (1e-4 arc-second, 1 mm)
        assert abs(got.latitude_deg - lat) * 3600 <= 0.5e-4 + 1e-9
        assert abs(got.longitude_deg - lon) * 3600 <= 0.5e-4 + 1e-9
        assert (got.altitude_m is None) == (alt is None)
        if alt is not None:
            assert got.altitude_m == pytest.approx(alt, abs=0.5e-3)
            assert (got.altitude_m < 0) == (alt < 0)  # GPSAltitudeRef 1: below sea level


def test_images_without_a_position_give_none(tmp_path):
    write_jpeg_with_gps(tmp_path / "plain.jpg", IMG, None)
    Image.fromarray(IMG).save(tmp_path / "noexif.png")
    Image.fromarray(IMG).save(tmp_path / "noexif.jpg")
    tags, _ = gps_ifd(47.0, 8.0, 400.0)
    write_jpeg_with_gps(tmp_path / "void.jpg", IMG, {**tags, 9: "V"})  # GPSStatus: no fix
    tags0, _ = gps_ifd(0.0, 0.0, 0.0)
    write_jpeg_with_gps(tmp_path / "null_island.jpg", IMG, tags0)
    write_jpeg_with_gps(tmp_path / "only_version.jpg", IMG, {0: b"\x02\x03\x00\x00"})
    Image.fromarray(IMG).save(tmp_path / "garbage.jpg", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fjunk")
    for name in ("plain.jpg", "noexif.png", "noexif.jpg", "void.jpg", "null_island.jpg", "only_version.jpg",
                 "garbage.jpg"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # PIL: "Corrupt EXIF data" of garbage.jpg
            assert exif_gps(tmp_path / name) is None, name
    # an image whose receiver says "A" (valid) keeps its position; TIFF carries GPS tags too
    write_jpeg_with_gps(tmp_path / "valid.jpg", IMG, {**tags, 9: "A"})
    assert exif_gps(tmp_path / "valid.jpg").latitude_deg == pytest.approx(47.0)
    exif = Image.Exif()
    exif[0x8825] = tags
    Image.fromarray(IMG).save(tmp_path / "g.tif", exif=exif.tobytes())
    assert exif_gps(tmp_path / "g.tif") == exif_gps(tmp_path / "valid.jpg")
    assert exif_focal_px(tmp_path / "valid.jpg") is None  # the focal-length reader is not confused by GPS tags


@pytest.mark.parametrize("change, message", [
    ({2: (IFDRational(47), IFDRational(1, 0), IFDRational(0))}, "GPSLatitude .*not a number"),
    ({2: (IFDRational(47), IFDRational(61), IFDRational(0))}, r"minutes and seconds in \[0, 60\)"),
    ({2: (IFDRational(95), IFDRational(0), IFDRational(0))}, "exceeds 90"),
    ({4: (IFDRational(181), IFDRational(0), IFDRational(0))}, "exceeds 180"),
    ({4: (IFDRational(8), IFDRational(0), IFDRational(0), IFDRational(0))}, "expected .degrees, minutes, seconds"),
    ({1: "X"}, "GPSLatitudeRef is 'X', not 'N' or 'S'"),
    ({3: None}, "GPSLongitudeRef .*hemisphere"),
    ({4: None, 3: None}, "GPSLatitude without GPSLongitude"),
    ({6: IFDRational(5, 0)}, "GPSAltitude .*not a number"),
])
def test_malformed_gps_tags_are_named(tmp_path, change, message):
    tags, _ = gps_ifd(47.3769, 8.5417, 408.0)
    tags = {k: v for k, v in {**tags, **change}.items() if v is not None}
    path = tmp_path / "bad.jpg"
    write_jpeg_with_gps(path, IMG, tags)
    with pytest.raises(ValueError, match=message) as info:
        exif_gps(path)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_an_image(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        exif_gps(tmp_path / "x.jpg")


def test_positions_of_a_set_in_local_metres(tmp_path):
    origin = np.array([47.3769, 8.5417, 408.0])
    X_true = np.array([[0.0, 0.0, 0.0], [30.0, 0.0, 1.0], [0.0, 40.0, -1.0], [30.0, 40.0, 0.5]])
    lla = lat_lon_alt_from_enu(X_true, origin)
    paths = {}
    for k, g in enumerate(lla):
        tags, _ = gps_ifd(*g)
        paths[f"{k}.jpg"] = tmp_path / f"{k}.jpg"
        write_jpeg_with_gps(paths[f"{k}.jpg"], IMG, tags)
    bad, _ = gps_ifd(*lla[0])
    bad[2] = (IFDRational(47), IFDRational(1, 0), IFDRational(0))
    write_jpeg_with_gps(tmp_path / "bad.jpg", IMG, bad)
    write_jpeg_with_gps(tmp_path / "none.jpg", IMG, None)
    paths.update({"bad.jpg": tmp_path / "bad.jpg", "none.jpg": tmp_path / "none.jpg", "gone.jpg": tmp_path / "gone"})
    names = ["bad.jpg", *[f"{k}.jpg" for k in range(4)], "none.jpg", "gone.jpg"]
    pos = read_image_positions(names, paths)
    np.testing.assert_array_equal(pos.has_position, [False, True, True, True, True, False, False])
    assert set(pos.missing) == {"bad.jpg", "none.jpg", "gone.jpg"}
    assert "GPSLatitude" in pos.missing["bad.jpg"] and pos.missing["gone.jpg"] == "image file not at hand"
    assert pos.missing["none.jpg"] == "no GPS position in its EXIF tags"
    assert pos.has_altitude
    X = pos.X_enu[1:5]
    # about the mean: the true layout shifted by its mean, to the rationals' 3 mm and the curvature's < 1 mm
    np.testing.assert_allclose(X, X_true - X_true.mean(axis=0), atol=4e-3)
    np.testing.assert_allclose(pos.origin_lat_lon_alt[2], 408.0 + X_true[:, 2].mean(), atol=1e-3)
    s = pos.summary()
    assert s["num_with_position"] == 4 and s["num_images"] == 7 and set(s["without_position"]) == set(pos.missing)
    assert s["extent_enu_m"] == pytest.approx([30, 40, 2], abs=0.01)
    # one positioned image without an altitude: the frame is horizontal only
    tags, _ = gps_ifd(*lla[3][:2], None)
    write_jpeg_with_gps(tmp_path / "3.jpg", IMG, tags)
    flat = read_image_positions(names, paths)
    assert not flat.has_altitude and np.all(flat.X_enu[1:5, 2] == 0)
    np.testing.assert_allclose(flat.X_enu[1:5, :2], X_true[:, :2] - X_true[:, :2].mean(axis=0), atol=4e-3)
