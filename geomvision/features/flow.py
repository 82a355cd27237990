"""Sparse optical flow: points followed from one frame to the next (pyramidal Lucas-Kanade).

Used by the online mapper to track its map points between keyframes without extracting and
matching features on every frame. Pixel centres are at integer coordinates (as everywhere here).
"""

from __future__ import annotations

import cv2
import numpy as np


def grey_u8(image: np.ndarray) -> np.ndarray:
    """An (H,W) or (H,W,3) RGB uint8 frame as a contiguous (H,W) uint8 grey image."""
    if image.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(image)


def track_points(
    prev: np.ndarray,
    cur: np.ndarray,
    uv_prev: np.ndarray,
    uv_guess: np.ndarray | None = None,
    *,
    window: int = 21,
    levels: int = 3,
    max_round_trip_px: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Follow points from frame ``prev`` to frame ``cur`` (both (H,W) uint8 grey, same size).

    uv_prev : (N,2) pixels in ``prev``. uv_guess : (N,2) predicted pixels in ``cur`` (e.g. the
    points projected with a motion model; non-finite rows fall back to ``uv_prev``), or None.
    A point is kept when the flow converged both ways and tracking it back from ``cur`` lands
    within ``max_round_trip_px`` of where it started (forward-backward check).
    Returns (uv (N,2) float64 in ``cur``, ok (N,) bool).
    """
    if prev.shape != cur.shape or prev.dtype != np.uint8 or cur.dtype != np.uint8 or prev.ndim != 2:
        raise ValueError(f"track_points needs two (H,W) uint8 grey frames of one size, got {prev.shape} "
                         f"{prev.dtype} and {cur.shape} {cur.dtype} (convert with grey_u8)")
    n = len(uv_prev)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    p0 = np.ascontiguousarray(uv_prev, np.float32).reshape(-1, 1, 2)
    flags = 0
    p1 = None
    if uv_guess is not None:
        g = np.asarray(uv_guess, np.float32).copy()
        bad = ~np.isfinite(g).all(axis=1)
        g[bad] = p0[bad, 0]
        p1 = g.reshape(-1, 1, 2)
        flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
    win = (int(window), int(window))
    p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, p1, winSize=win, maxLevel=int(levels), criteria=crit,
                                         flags=flags)
    ok = st.ravel() == 1
    back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, p0.copy(), winSize=win, maxLevel=int(levels),
                                            criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    ok &= st2.ravel() == 1
    ok &= np.sum((back - p0)[:, 0] ** 2, axis=1) <= max_round_trip_px**2
    uv = p1[:, 0].astype(np.float64)
    h, w = cur.shape
    ok &= (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    return uv, ok
