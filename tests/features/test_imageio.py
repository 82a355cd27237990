"""Image loading: RGB order, grey / alpha / 16-bit, corrupt files named, header size, EXIF focal rule."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geomvision.imageio import decode_image, exif_focal_px, image_size, list_images, read_image


def test_read_png_rgb_order_and_size(tmp_path):
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[0, 0] = (255, 0, 0)
    arr[3, 5] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.dtype == np.uint8 and img.shape == (4, 6, 3)
    np.testing.assert_array_equal(img, arr)
    assert image_size(tmp_path / "a.png") == (6, 4)


def test_grey_alpha_and_16bit_become_rgb8(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, axis=2))
    rgba = np.full((3, 3, 4), 200, np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (3, 3, 3)
    deep = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    Image.fromarray(deep).save(tmp_path / "d.png")
    eight = read_image(tmp_path / "d.png")[..., 0].astype(float)
    assert np.abs(eight - deep / 257.0).max() <= 1.0  # 16-bit 0..65535 -> 8-bit 0..255


def test_real_jpeg(fountain):
    path = fountain.image_dir / fountain.image_names[0]
    img = read_image(path)
    assert img.shape == (1024, 1536, 3)
    assert image_size(path) == (1536, 1024)


def test_corrupt_and_non_image_files_name_the_file(tmp_path, fountain):
    bad = tmp_path / "text.jpg"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="text.jpg"):
        read_image(bad)
    with pytest.raises(ValueError, match="text.jpg"):
        image_size(bad)
    half = tmp_path / "half.jpg"
    half.write_bytes((fountain.image_dir / fountain.image_names[0]).read_bytes()[:30000])
    with pytest.raises(ValueError, match="half.jpg.*not a readable image"):
        read_image(half)
    with pytest.raises(ValueError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="folder"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match="blob"):
        decode_image(b"", "blob")


def _jpeg_with_exif(path, size_wh, tags):
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    for k, v in tags.items():
        sub[k] = v
    Image.new("RGB", size_wh, (90, 100, 110)).save(path, exif=exif)
    return path


def test_exif_focal_35mm_rule(tmp_path):
    p = _jpeg_with_exif(tmp_path / "a.jpg", (300, 200), {0xA405: 28, 0x920A: 4.5})
    assert exif_focal_px(p) == pytest.approx(28 / 36 * 300)
    portrait = _jpeg_with_exif(tmp_path / "p.jpg", (200, 300), {0xA405: 50})
    assert exif_focal_px(portrait) == pytest.approx(50 / 36 * 300)  # the long side spans 36 mm


def test_exif_focal_with_sensor_width_or_focal_plane_resolution(tmp_path):
    p = _jpeg_with_exif(tmp_path / "b.jpg", (300, 200), {0x920A: 4.5, 0xA20E: 1000.0, 0xA210: 4, 0xA002: 600})
    assert exif_focal_px(p, sensor_width_mm=6.0) == pytest.approx(4.5 / 6.0 * 300)
    # 1000 px/mm on a 600 px wide original, this copy is 300 px wide
    assert exif_focal_px(p) == pytest.approx(4.5 * 1000.0 * 300 / 600)
    inch = _jpeg_with_exif(tmp_path / "c.jpg", (300, 200), {0x920A: 4.5, 0xA20E: 2540.0})  # unit: inch
    assert exif_focal_px(inch) == pytest.approx(4.5 * 100.0)
    with pytest.raises(ValueError, match="sensor_width_mm"):
        exif_focal_px(p, sensor_width_mm=0)


def test_exif_without_focal_gives_none(tmp_path, fountain):
    assert exif_focal_px(_jpeg_with_exif(tmp_path / "n.jpg", (30, 20), {0x920A: 4.5})) is None  # no sensor size
    assert exif_focal_px(_jpeg_with_exif(tmp_path / "z.jpg", (30, 20), {0xA405: 0})) is None
    Image.new("RGB", (10, 10)).save(tmp_path / "plain.png")
    assert exif_focal_px(tmp_path / "plain.png") is None
    assert exif_focal_px(fountain.image_dir / fountain.image_names[0]) is None  # re-saved without EXIF


def test_list_images_natural_order(tmp_path):
    for name in ["img10.JPG", "img2.png", "img1.jpeg", "notes.txt", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "img3.tif").write_bytes(b"x")
    (tmp_path / "dir.jpg").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["img1.jpeg", "img2.png", "img10.JPG"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == [
        "img1.jpeg",
        "img2.png",
        "img10.JPG",
        "sub/img3.tif",
    ]
    with pytest.raises(ValueError, match="not a directory"):
        list_images(tmp_path / "notes.txt")
