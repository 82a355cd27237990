"""Planar rigid transforms ``Rigid2``: ``x_b = R(theta) @ x_a + t`` in 2-D, named ``b_from_a``.

The poses of ground robots (g2o ``VERTEX_SE2 x y theta``). Composed right to left like
:class:`Rigid3`; ``theta`` is in radians, wrapped to (-pi, pi].
"""

from __future__ import annotations

import numpy as np

from .._validation import as_array, as_points


def wrap_angle(theta):
    """Angles (radians, scalar or array) wrapped to (-pi, pi]; angles already there are unchanged
    (bit for bit)."""
    th = np.asarray(theta, dtype=np.float64)
    wrapped = -np.remainder(np.pi - th, 2.0 * np.pi) + np.pi
    return np.where((th > -np.pi) & (th <= np.pi), th, wrapped)


def rot2(theta) -> np.ndarray:
    """2x2 rotation matrices of angles: scalar -> (2,2), (N,) -> (N,2,2)."""
    th = np.asarray(theta, dtype=np.float64)
    c, s = np.cos(th), np.sin(th)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


class Rigid2:
    """A planar rigid transform ``b_from_a``: ``x_b = R(theta) @ x_a + t``, t (2,)."""

    __slots__ = ("theta", "t")

    def __init__(self, theta: float = 0.0, t: np.ndarray | None = None):
        theta = float(theta)
        if not np.isfinite(theta):
            raise ValueError(f"theta must be finite (radians), got {theta!r}")
        self.theta = float(wrap_angle(theta))
        self.t = np.zeros(2) if t is None else as_array(t, "t", (2,)).copy()

    @property
    def R(self) -> np.ndarray:
        return rot2(self.theta)

    def inverse(self) -> Rigid2:
        return Rigid2(-self.theta, -(self.R.T @ self.t))

    def __matmul__(self, other: Rigid2) -> Rigid2:
        if not isinstance(other, Rigid2):
            return NotImplemented
        return Rigid2(self.theta + other.theta, self.R @ other.t + self.t)

    def apply(self, X_a: np.ndarray) -> np.ndarray:
        """Map points (N,2) (or one (2,)) from frame a to frame b."""
        X = np.asarray(X_a, dtype=np.float64)
        if X.ndim == 1:
            return self.R @ as_array(X, "X_a", (2,), finite=False) + self.t
        return as_points(X, "X_a", 2, finite=False) @ self.R.T + self.t

    @property
    def matrix3x3(self) -> np.ndarray:
        M = np.eye(3)
        M[:2, :2], M[:2, 2] = self.R, self.t
        return M

    def allclose(self, other: Rigid2, atol: float = 1e-9) -> bool:
        return bool(abs(wrap_angle(self.theta - other.theta)) <= atol and np.allclose(self.t, other.t, atol=atol))

    def copy(self) -> Rigid2:
        return Rigid2(self.theta, self.t)

    def __repr__(self) -> str:
        return f"Rigid2(theta={self.theta:.6g}, t={np.array2string(self.t, precision=4, suppress_small=True)})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Rigid2) and self.theta == other.theta and np.array_equal(self.t, other.t)

    __hash__ = None
