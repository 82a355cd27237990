"""Panorama stitching on rendered views of a camera turning about its centre (exact homographies known)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geomvision.cli.main import main as cli_main
from geomvision.stitching import StitchOptions, stitch
from geomvision.synthetic.rendered_datasets import rotation_sequence

W, H = 400, 300


@pytest.fixture(scope="module")
def views():
    return rotation_sequence(3, width=W, height=H, pan_deg=40.0, rng=3)


@pytest.fixture(scope="module")
def pano(views):
    return stitch(views.images, rng=0)


def _corner_error(A, B):
    c = np.array([[0, 0, 1], [W - 1, 0, 1], [0, H - 1, 1], [W - 1, H - 1, 1]], dtype=float)
    a, b = c @ A.T, c @ B.T
    return np.max(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1))


def _overlap_error(A, B):
    """Largest transfer difference over a grid of image points that B maps inside the image."""
    u, v = np.meshgrid(np.linspace(0, W - 1, 21), np.linspace(0, H - 1, 16))
    p = np.column_stack([u.ravel(), v.ravel(), np.ones(u.size)])
    a, b = p @ A.T, p @ B.T
    a, b = a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:]
    inside = (b[:, 0] >= 0) & (b[:, 0] <= W - 1) & (b[:, 1] >= 0) & (b[:, 1] <= H - 1)
    assert inside.sum() > 20
    return np.max(np.linalg.norm(a[inside] - b[inside], axis=1))


def test_homographies_match_the_true_rotation(views, pano):
    assert pano.skipped == []
    ref = pano.reference_idx
    assert ref == 1  # the middle view overlaps both others most
    T = pano.mosaic_from_image[ref]
    for k in range(3):
        ref_from_k = np.linalg.inv(T) @ pano.mosaic_from_image[k]
        assert _corner_error(ref_from_k, views.homography(k, ref)) < 1.0
    for link in pano.links:  # where the two views overlap, the homography is sub-pixel exact
        assert _overlap_error(link.H, views.homography(link.i, link.j)) < 1.0
        assert link.num_inliers > 0.9 * link.num_matches


def test_mosaic_reproduces_the_reference_view(views, pano):
    # the reference image sits unwarped (a pure translation) inside the mosaic
    T = pano.mosaic_from_image[pano.reference_idx]
    assert np.allclose(T[:2, :2], np.eye(2)) and np.allclose(T[2], [0, 0, 1])
    u0, v0 = round(T[0, 2]), round(T[1, 2])
    crop = pano.image[v0 : v0 + H, u0 : u0 + W].astype(float)
    diff = np.abs(crop - views.images[pano.reference_idx].astype(float))
    assert np.median(diff) < 4.0  # feathering mixes in the neighbours, which agree to within interpolation
    # the mosaic is wider than one view and its coverage matches the warped footprints
    assert pano.image.shape[1] > 1.5 * W and 0.6 < pano.mask.mean() < 1.0


def test_an_unrelated_image_is_skipped(views):
    noise = np.random.default_rng(5).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    res = stitch([views.images[0], noise, views.images[1]], rng=0)
    assert res.skipped == [1] and res.mosaic_from_image[1] is None


def test_cli_writes_the_mosaic(views, pano, tmp_path, capsys):
    paths = []
    for k, img in enumerate(views.images):
        p = tmp_path / f"view{k}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(p))
    out = tmp_path / "mosaic.png"
    assert cli_main(["stitch", *paths, "-o", str(out), "--seed", "0"]) == 0
    written = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert written.shape == pano.image.shape
    assert np.abs(written.astype(int) - pano.image.astype(int)).max() <= 1
    assert "3 images" in capsys.readouterr().out


def test_bad_input(views, tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        stitch([views.images[0]])
    with pytest.raises(ValueError, match="images\\[1\\]"):
        stitch([views.images[0], views.images[1].astype(float)])
    with pytest.raises(ValueError, match="max_error"):
        StitchOptions(max_error=0.0)
    noise = np.random.default_rng(1).integers(0, 256, size=(2, H, W, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="nothing to stitch"):
        stitch(list(noise))
    assert cli_main(["stitch", str(tmp_path / "missing.png"), str(tmp_path / "m2.png"), "-o", "x.png"]) == 2


def test_cli_refuses_a_bad_output_before_any_work(views, tmp_path, capsys):
    paths = []
    for k, img in enumerate(views.images[:2]):
        p = tmp_path / f"view{k}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(p))
    before = (tmp_path / "view0.png").read_bytes()
    assert cli_main(["stitch", *paths, "-o", paths[0]]) == 2  # would overwrite the photo
    assert "is one of the input images" in capsys.readouterr().err
    assert (tmp_path / "view0.png").read_bytes() == before
    assert cli_main(["stitch", *paths, "-o", str(tmp_path / "mosaic.xyz")]) == 2
    err = capsys.readouterr()
    assert "cannot write an image as '.xyz'" in err.err and "inliers" not in err.out  # refused before matching
