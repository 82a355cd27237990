"""Procedural textures for the renderer, made here from a seed (no downloaded data).

A texture is a "dead leaves" image -- anti-aliased ellipses, rectangles, strokes and rings with
radii drawn from the scale-invariant law p(r) ~ r^-3 and painted over each other in random
order -- whose brightness is modulated by fractal (1/f) value noise. Both layers have detail at
every scale from about one texel up, so SIFT finds many distinctive blobs and corners whether a
surface is seen close up or far away, and no pattern repeats (matches are unambiguous).

:func:`mipmaps` builds the box-filtered pyramid the renderer samples trilinearly.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit, prange

from .._validation import RngLike, as_rng, check_int, check_positive

# Anchor colours (RGB) of each palette; a shape's colour mixes two anchors and a brightness.
PALETTES: dict[str, np.ndarray] = {
    name: np.array(colours, dtype=np.float64)
    for name, colours in {
        "stone": [(150, 142, 130), (112, 106, 100), (182, 176, 165), (96, 88, 78), (140, 126, 104)],
        "earth": [(120, 98, 70), (92, 84, 60), (150, 132, 100), (84, 96, 62), (168, 150, 120)],
        "brick": [(160, 72, 52), (128, 60, 46), (190, 120, 90), (96, 52, 44), (200, 170, 150)],
        "wood": [(150, 104, 60), (120, 80, 44), (186, 146, 96), (92, 62, 36), (206, 170, 120)],
        "moss": [(84, 120, 60), (60, 92, 48), (130, 150, 86), (96, 100, 64), (160, 170, 120)],
        "slate": [(88, 100, 118), (62, 72, 88), (130, 142, 160), (104, 110, 120), (170, 176, 186)],
        "paint": [(200, 50, 40), (40, 90, 190), (230, 200, 60), (40, 150, 80), (235, 235, 230), (30, 30, 36)],
    }.items()
}

# shape kinds of the painter
_ELLIPSE, _RECTANGLE, _STROKE, _RING = 0, 1, 2, 3
_KIND_WEIGHTS = np.array([0.45, 0.25, 0.2, 0.1])


def procedural_texture(
    width: int,
    height: int,
    *,
    rng: RngLike = None,
    palette: str = "stone",
    coverage: float = 2.5,
    min_radius: float = 1.5,
    max_radius: float | None = None,
    noise_strength: float = 0.3,
) -> np.ndarray:
    """An RGB texture (height, width, 3) uint8 of dead-leaves shapes over fractal noise.

    ``palette`` names an entry of :data:`PALETTES`; ``coverage`` is the mean number of shapes
    over a texel; shape radii (texels) follow p(r) ~ r^-3 between ``min_radius`` and
    ``max_radius`` (default a sixth of the larger side); ``noise_strength`` is the standard
    deviation of the multiplicative fractal-noise brightness. Deterministic for a given ``rng``.
    """
    width = check_int(width, "width", minimum=1)
    height = check_int(height, "height", minimum=1)
    if not isinstance(palette, str) or palette not in PALETTES:
        raise ValueError(f"palette: unknown palette {palette!r}; choose one of {', '.join(PALETTES)}")
    coverage = check_positive(coverage, "coverage")
    r_min = check_positive(min_radius, "min_radius")
    r_max = (
        max(max(width, height) / 6.0, 2.0 * r_min) if max_radius is None else check_positive(max_radius, "max_radius")
    )
    if r_max <= r_min:
        raise ValueError(f"max_radius must exceed min_radius, got {r_max} <= {r_min}")
    noise_strength = check_positive(noise_strength, "noise_strength", allow_zero=True)
    gen = as_rng(rng)
    anchors = PALETTES[palette]

    # p(r) ~ r^-3 on [r_min, r_max]: inverse CDF of u in [0, 1)
    z = r_min**-2 - r_max**-2
    mean_area = math.pi * 2.0 * math.log(r_max / r_min) / z  # pi E[r^2]
    n = max(1, round(coverage * width * height / mean_area))
    radius = (r_min**-2 - gen.random(n) * z) ** -0.5
    kind = gen.choice(4, size=n, p=_KIND_WEIGHTS).astype(np.float64)
    aspect = gen.uniform(0.25, 1.0, n)
    angle = gen.uniform(0.0, math.pi, n)
    # pad the domain by the radius so edges are covered like the interior
    cx = gen.uniform(-radius, width - 1 + radius)
    cy = gen.uniform(-radius, height - 1 + radius)
    pick = gen.integers(0, len(anchors), size=(n, 2))
    mix = gen.random((n, 1))
    brightness = gen.uniform(0.35, 1.25, (n, 1))
    colour = (anchors[pick[:, 0]] * mix + anchors[pick[:, 1]] * (1.0 - mix)) * brightness
    # strokes are long and thin; rings have a width of a fraction of the radius
    a = radius
    b = np.where(kind == _STROKE, np.maximum(0.6, 0.18 * radius * aspect), radius * aspect)
    b = np.where(kind == _RING, np.maximum(0.6, 0.25 * radius * aspect), b)
    shapes = np.column_stack([kind, cx, cy, a, b, np.cos(angle), np.sin(angle), np.clip(colour, 0.0, 255.0)])

    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = np.clip(anchors.mean(axis=0), 0, 255).astype(np.uint8)
    _paint_shapes(image, shapes)
    if noise_strength > 0:
        _modulate(image, fractal_noise(width, height, rng=gen), np.float32(noise_strength))
    return image


def fractal_noise(
    width: int, height: int, *, rng: RngLike = None, min_wavelength: float = 3.0, beta: float = 0.5
) -> np.ndarray:
    """Zero-mean fractal value noise (height, width) float32 of standard deviation about 1.

    Octaves of Gaussian lattices with wavelengths halving from the larger side down to
    ``min_wavelength`` texels, amplitude ~ wavelength^``beta``; summed coarse to fine like a
    Laplacian pyramid (each partial sum is upsampled bicubically by two, the next lattice added),
    so only the last step works at full resolution.
    """
    width = check_int(width, "width", minimum=1)
    height = check_int(height, "height", minimum=1)
    min_wavelength = check_positive(min_wavelength, "min_wavelength")
    gen = as_rng(rng)
    size = float(max(width, height))
    wavelengths = [size]
    while wavelengths[-1] / 2.0 >= min_wavelength:
        wavelengths.append(wavelengths[-1] / 2.0)
    acc = None
    total = 0.0
    for wavelength in wavelengths:
        shape = (math.ceil(height / wavelength) + 1, math.ceil(width / wavelength) + 1)
        amplitude = (wavelength / size) ** beta
        lattice = (amplitude * gen.standard_normal(shape)).astype(np.float32)
        acc = lattice if acc is None else cv2.resize(acc, shape[::-1], interpolation=cv2.INTER_CUBIC) + lattice
        total += amplitude**2
    acc = cv2.resize(acc, (width, height), interpolation=cv2.INTER_CUBIC)
    acc *= np.float32(1.0 / math.sqrt(total))
    return acc


def mipmaps(image: np.ndarray) -> list[np.ndarray]:
    """Box-filtered pyramid of an (H, W, 3) uint8 image: level l+1 has ceil(W_l / 2) x
    ceil(H_l / 2) texels, down to a level of 1 x 1. Level 0 is ``image`` itself."""
    levels = [np.ascontiguousarray(image)]
    while max(levels[-1].shape[:2]) > 1:
        h, w = levels[-1].shape[:2]
        size = ((w + 1) // 2, (h + 1) // 2)
        levels.append(cv2.resize(levels[-1], size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], 3))
    return levels


@njit(cache=True)
def _signed_distance(kind, x, y, a, b):
    """Approximate signed distance (texels, negative inside) of a point in the shape's frame."""
    if kind == _ELLIPSE:
        f = (x / a) ** 2 + (y / b) ** 2 - 1.0
        g = 2.0 * math.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2)
        return f / g if g > 1e-12 else -b
    if kind == _RECTANGLE:
        return max(abs(x) - a, abs(y) - b)
    if kind == _STROKE:  # capsule: segment from -a to a on x, half-thickness b
        cx = min(max(x, -a + b), a - b) if a > b else 0.0
        return math.sqrt((x - cx) ** 2 + y * y) - b
    return abs(math.sqrt(x * x + y * y) - (a - b)) - b  # ring of outer radius a, width 2b


@njit(cache=True)
def _half_extents(kind, a, b, c, s):
    """Half-widths (x, y) of the axis-aligned box around a shape turned by (cos, sin) = (c, s)."""
    c, s = abs(c), abs(s)
    if kind == _ELLIPSE:
        return math.sqrt((a * c) ** 2 + (b * s) ** 2), math.sqrt((a * s) ** 2 + (b * c) ** 2)
    if kind == _RECTANGLE:
        return a * c + b * s, a * s + b * c
    if kind == _STROKE:
        half = max(a - b, 0.0)
        return half * c + b, half * s + b
    return a, a


@njit(parallel=True, cache=True)
def _paint_shapes(image, shapes):
    """Paint the shapes in order with coverage alpha = clip(0.5 - distance, 0, 1).

    Bands of rows are painted in parallel; within a band every shape is applied in order, so
    the result does not depend on the number of threads."""
    h, w = image.shape[0], image.shape[1]
    band = 32
    n = shapes.shape[0]
    x_lo, x_hi = np.empty(n, np.int64), np.empty(n, np.int64)
    y_lo, y_hi = np.empty(n, np.int64), np.empty(n, np.int64)
    for k in range(n):
        ex, ey = _half_extents(int(shapes[k, 0]), shapes[k, 3], shapes[k, 4], shapes[k, 5], shapes[k, 6])
        x_lo[k], x_hi[k] = math.floor(shapes[k, 1] - ex - 1.0), math.ceil(shapes[k, 1] + ex + 1.0)
        y_lo[k], y_hi[k] = math.floor(shapes[k, 2] - ey - 1.0), math.ceil(shapes[k, 2] + ey + 1.0)
    for bi in prange((h + band - 1) // band):
        b0, b1 = bi * band, min(h, (bi + 1) * band) - 1
        for k in range(n):
            y0, y1 = max(b0, y_lo[k]), min(b1, y_hi[k])
            x0, x1 = max(0, x_lo[k]), min(w - 1, x_hi[k])
            if y0 > y1 or x0 > x1:
                continue
            kind = int(shapes[k, 0])
            cx, cy, a, b, c, s = shapes[k, 1], shapes[k, 2], shapes[k, 3], shapes[k, 4], shapes[k, 5], shapes[k, 6]
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    dx, dy = x - cx, y - cy
                    alpha = 0.5 - _signed_distance(kind, c * dx + s * dy, -s * dx + c * dy, a, b)
                    if alpha <= 0.0:
                        continue
                    alpha = min(alpha, 1.0)
                    for ch in range(3):
                        v = image[y, x, ch] * (1.0 - alpha) + shapes[k, 7 + ch] * alpha
                        image[y, x, ch] = np.uint8(min(255.0, v + 0.5))


@njit(cache=True)
def _modulate(image, noise, strength):
    """image *= clip(1 + strength * noise, 0.2, 2), rounded and saturated, in place."""
    h, w = image.shape[0], image.shape[1]
    for y in range(h):
        for x in range(w):
            f = min(2.0, max(0.2, 1.0 + strength * noise[y, x]))
            for ch in range(3):
                image[y, x, ch] = np.uint8(min(255.0, image[y, x, ch] * f + 0.5))
