"""numba kernels of SO(3) used inside other kernels (bundle adjustment, solver refinement).

The numpy versions for Python callers are in ``rotation.py``; this is the same Rodrigues
formula, written once for code that runs inside numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def so3_exp_into(wx, wy, wz, out):
    """out (3,3) = exp([w]_x) for the rotation vector w = (wx, wy, wz) (radians);
    series coefficients below 1e-4 rad, exact to double precision there."""
    th2 = wx * wx + wy * wy + wz * wz
    if th2 < 1e-8:
        a = 1.0 - th2 / 6.0 + th2 * th2 / 120.0
        b = 0.5 - th2 / 24.0 + th2 * th2 / 720.0
    else:
        th = np.sqrt(th2)
        a = np.sin(th) / th
        b = (1.0 - np.cos(th)) / th2
    out[0, 0] = 1.0 - b * (wy * wy + wz * wz)
    out[1, 1] = 1.0 - b * (wx * wx + wz * wz)
    out[2, 2] = 1.0 - b * (wx * wx + wy * wy)
    out[0, 1] = -a * wz + b * wx * wy
    out[1, 0] = a * wz + b * wx * wy
    out[0, 2] = a * wy + b * wx * wz
    out[2, 0] = -a * wy + b * wx * wz
    out[1, 2] = -a * wx + b * wy * wz
    out[2, 1] = a * wx + b * wy * wz


@njit(cache=True)
def so3_exp(wx, wy, wz):
    """A new (3,3) rotation matrix exp([w]_x)."""
    R = np.empty((3, 3))
    so3_exp_into(wx, wy, wz, R)
    return R
