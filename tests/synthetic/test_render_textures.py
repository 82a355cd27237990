"""Procedural textures: deterministic, rich in detail at every scale, no repeats; mip-maps."""

import cv2
import numpy as np
import pytest

from geomvision.synthetic import fractal_noise, procedural_texture
from geomvision.synthetic.textures import PALETTES, mipmaps


def test_same_seed_same_texture_and_seeds_differ():
    a = procedural_texture(300, 200, rng=5, palette="wood")
    b = procedural_texture(300, 200, rng=np.random.default_rng(5), palette="wood")
    c = procedural_texture(300, 200, rng=6, palette="wood")
    assert a.shape == (200, 300, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.mean(np.abs(a.astype(int) - c.astype(int))) > 10


@pytest.mark.parametrize("palette", sorted(PALETTES))
def test_detail_at_every_scale(palette):
    """Band-pass (difference of Gaussians) luminance energy is substantial in every octave
    from 1 to 16 texels and no octave dominates: the detail is scale-stable."""
    gray = cv2.cvtColor(procedural_texture(512, 512, rng=1, palette=palette), cv2.COLOR_RGB2GRAY).astype(np.float64)
    energies = []
    for sigma in (1.0, 2.0, 4.0, 8.0, 16.0):
        band = cv2.GaussianBlur(gray, (0, 0), sigma) - cv2.GaussianBlur(gray, (0, 0), 2 * sigma)
        energies.append(band.std())
    energies = np.array(energies)
    assert energies.min() > 4.0, energies  # grey levels
    assert energies.max() < 4.0 * energies.min(), energies


def test_texture_does_not_repeat():
    """No patch reappears elsewhere: normalised cross-correlation of patches against the rest
    of the texture stays well below a match."""
    gray = cv2.cvtColor(procedural_texture(400, 400, rng=2), cv2.COLOR_RGB2GRAY).astype(np.float32)
    for y, x in [(40, 50), (200, 300), (320, 120)]:
        patch = gray[y : y + 24, x : x + 24]
        ncc = cv2.matchTemplate(gray, patch, cv2.TM_CCOEFF_NORMED)
        ncc[max(0, y - 12) : y + 13, max(0, x - 12) : x + 13] = -1.0  # exclude the patch itself
        assert ncc.max() < 0.7


def test_fractal_noise_statistics():
    n = fractal_noise(600, 400, rng=3)
    assert n.shape == (400, 600) and n.dtype == np.float32
    assert abs(float(n.mean())) < 0.3
    assert 0.5 < float(n.std()) < 1.5
    np.testing.assert_array_equal(n, fractal_noise(600, 400, rng=3))


def test_mipmaps_halve_down_to_one_texel_and_average():
    img = procedural_texture(37, 20, rng=4)
    levels = mipmaps(img)
    sizes = [lv.shape[:2] for lv in levels]
    assert sizes == [(20, 37), (10, 19), (5, 10), (3, 5), (2, 3), (1, 2), (1, 1)]
    even = procedural_texture(16, 8, rng=4)
    lv1 = mipmaps(even)[1].astype(np.float64)
    blocks = even.astype(np.float64).reshape(4, 2, 8, 2, 3).mean(axis=(1, 3))
    assert np.abs(lv1 - blocks).max() <= 0.5 + 1e-9


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"width": 0, "height": 10}, "width"),
        ({"width": 10, "height": -3}, "height"),
        ({"width": 10.5, "height": 10}, "width"),
        ({"width": 10, "height": 10, "palette": "neon"}, "palette"),
        ({"width": 10, "height": 10, "coverage": 0}, "coverage"),
        ({"width": 10, "height": 10, "min_radius": -1}, "min_radius"),
        ({"width": 10, "height": 10, "min_radius": 5, "max_radius": 2}, "max_radius"),
        ({"width": 10, "height": 10, "rng": "seed"}, "rng"),
    ],
)
def test_bad_texture_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        procedural_texture(**kwargs)
