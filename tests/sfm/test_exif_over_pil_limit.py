"""Images over PIL's decompression-bomb limit (issue 18, item 8): their size and EXIF focal length
are read from the header like any other image's, and ``geomvision sfm`` reconstructs them (it
crashed in the EXIF lookup with PIL's DecompressionBombError after extraction had succeeded).
The limit is lowered in these tests instead of writing 200-megapixel files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from geomvision.cli.main import main
from geomvision.imageio import exif_focal_px, image_size


def _with_focal_35mm(src, dst, f35: float) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = f35  # FocalLengthIn35mmFilm
    with Image.open(src) as im:
        im.convert("RGB").save(dst, exif=exif.tobytes(), **({"quality": 95} if dst.suffix == ".jpg" else {}))


@pytest.mark.parametrize("limit", [40_000, 1_000])  # 300 x 200 = 60 000 px: PIL's warning, then its error
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_size_and_exif_focal_are_read_over_the_limit(tmp_path, monkeypatch, limit, ext):
    src = tmp_path / "src.png"
    Image.new("RGB", (300, 200), (90, 100, 110)).save(src)
    path = tmp_path / f"big{ext}"
    _with_focal_35mm(src, path, 28)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        assert image_size(path) == (300, 200)
        assert exif_focal_px(path) == pytest.approx(28 / 36 * 300)
    assert Image.MAX_IMAGE_PIXELS == limit  # lifted only while the header was read
    with pytest.raises(Image.DecompressionBombError if limit == 1_000 else Image.DecompressionBombWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Image.open(path)  # other PIL users keep the limit


def test_exif_lookup_never_decodes_a_png_without_exif(tmp_path, monkeypatch):
    Image.new("RGB", (300, 200)).save(tmp_path / "plain.png")

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    assert exif_focal_px(tmp_path / "plain.png") is None


def test_sfm_reconstructs_images_over_the_limit_with_their_exif_focal(small_scene, tmp_path, monkeypatch, capsys):
    K = np.loadtxt(small_scene / "K.txt")
    images = tmp_path / "images"
    images.mkdir()
    for src in sorted((small_scene / "images").glob("*.png")):  # 480 x 360, true f = K[0, 0]
        _with_focal_35mm(src, images / f"{src.stem}.jpg", K[0, 0] * 36 / 480)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # every image is 170x over: PIL refuses to open them
    out = tmp_path / "out"
    assert main(["sfm", str(images), "-o", str(out), "-q", "--no-plots"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["num_registered_images"] == 6
    assert set(report["intrinsics_source"]) == {"exif"}
    focal = report["models"][0]["cameras"]["1"]["params"][0]
    assert focal == pytest.approx(K[0, 0], rel=0.01)
