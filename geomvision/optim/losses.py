"""Robust losses rho(s) of a squared residual norm s = |r|^2, with a scale a (pixels).

Conventions follow Ceres: the cost of one residual is ``0.5 * rho(s)`` and rho(s) ~ s for
small s, so every loss agrees with the squared loss on inliers.

    squared  rho = s
    huber    rho = s                      for s <= a^2,  2 a sqrt(s) - a^2 beyond
    cauchy   rho = a^2 log(1 + s / a^2)
    soft_l1  rho = 2 a^2 (sqrt(1 + s / a^2) - 1)

All four have rho'' <= 0 (or 0), so Ceres's Triggs correction reduces to iteratively
reweighted least squares: residual and Jacobian are scaled by sqrt(rho'(s)). The numba
kernels below take ``(loss_id, scale)``; :class:`Loss` is the validated public handle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

SQUARED = 0
HUBER = 1
CAUCHY = 2
SOFT_L1 = 3

LOSS_IDS: dict[str, int] = {"squared": SQUARED, "huber": HUBER, "cauchy": CAUCHY, "soft_l1": SOFT_L1}


@njit(cache=True, inline="always")
def loss_rho(loss_id, a, s):
    """(rho(s), rho'(s)) of a squared norm s >= 0."""
    if loss_id == SQUARED:
        return s, 1.0
    a2 = a * a
    if loss_id == HUBER:
        if s <= a2:
            return s, 1.0
        r = np.sqrt(s)
        return 2.0 * a * r - a2, a / r
    if loss_id == CAUCHY:
        return a2 * np.log1p(s / a2), 1.0 / (1.0 + s / a2)
    # SOFT_L1
    q = np.sqrt(1.0 + s / a2)
    return 2.0 * a2 * (q - 1.0), 1.0 / q


@njit(cache=True)
def loss_values(loss_id, a, s):
    """Vectorised rho and rho' over an array of squared norms (for tests and reports)."""
    rho = np.empty_like(s)
    d1 = np.empty_like(s)
    for i in range(s.shape[0]):
        rho[i], d1[i] = loss_rho(loss_id, a, s[i])
    return rho, d1


@dataclass(frozen=True)
class Loss:
    """A robust loss: ``Loss("huber", scale=1.0)``; ``scale`` is in pixels (the inlier radius)."""

    name: str = "squared"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name.lower() not in LOSS_IDS:
            raise ValueError(f"loss name must be one of {', '.join(LOSS_IDS)}, got {self.name!r}")
        object.__setattr__(self, "name", self.name.lower())
        s = float(self.scale)
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"loss scale must be finite and positive (pixels), got {self.scale!r}")
        object.__setattr__(self, "scale", s)

    @property
    def loss_id(self) -> int:
        return LOSS_IDS[self.name]

    def __call__(self, sq_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rho(s), rho'(s)) for squared norms s (N,)."""
        s = np.ascontiguousarray(sq_norms, dtype=np.float64).ravel()
        return loss_values(self.loss_id, self.scale, s)
