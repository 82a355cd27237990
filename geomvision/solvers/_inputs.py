"""Input validation shared by the solver wrappers (the numba cores trust their inputs)."""

from __future__ import annotations

import numpy as np

from .._validation import as_array, check_same_length


def point_pair(
    x1, x2, dim: int, *, exact: int | None = None, minimum: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Check two (N, dim) float arrays of corresponding points (finite, same N, N == exact or N >= minimum)."""
    a = as_array(x1, "x1" if dim == 2 else "rays1", (exact, dim))
    b = as_array(x2, "x2" if dim == 2 else "rays2", (exact, dim))
    check_same_length(**({"x1": a, "x2": b} if dim == 2 else {"rays1": a, "rays2": b}))
    if minimum is not None and len(a) < minimum:
        name = "x1" if dim == 2 else "rays1"
        raise ValueError(f"{name}: need at least {minimum} correspondences, got {len(a)}")
    return a, b


def check_rays(rays: np.ndarray, name: str) -> None:
    """Raise unless every ray (row) has a non-zero length."""
    norms = np.linalg.norm(rays, axis=1)
    if rays.size and not (norms > 0).all():
        raise ValueError(f"{name} has {int(np.count_nonzero(norms == 0))} zero-length ray(s); rays must be directions")


def weights_of(weights, n: int) -> np.ndarray:
    """(N,) non-negative finite weights, ones when ``weights`` is None."""
    if weights is None:
        return np.ones(n)
    w = as_array(weights, "weights", (n,))
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    return w
