"""Synthetic images with known feature positions for the feature tests."""

from __future__ import annotations

import numpy as np


def blob_image(centres_uv: np.ndarray, sigma: float, size_wh: tuple[int, int]) -> np.ndarray:
    """uint8 grey image with bright Gaussian blobs centred at ``centres_uv`` ((0,0) = centre of pixel 0)."""
    w, h = size_wh
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    img = np.zeros((h, w))
    for cu, cv in centres_uv:
        img += np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2.0 * sigma**2))
    return np.round(40.0 + 180.0 * np.clip(img, 0.0, 1.0)).astype(np.uint8)


def blob_grid(rng: np.random.Generator, nx: int, ny: int, spacing: float, margin: float) -> np.ndarray:
    """Blob centres on a grid with random sub-pixel offsets, (nx * ny, 2)."""
    gu, gv = np.meshgrid(margin + spacing * np.arange(nx), margin + spacing * np.arange(ny))
    base = np.column_stack([gu.ravel(), gv.ravel()])
    return base + rng.uniform(-0.5, 0.5, size=base.shape)
