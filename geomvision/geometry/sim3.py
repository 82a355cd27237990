"""Similarity transforms ``Sim3``: ``x_b = s * R @ x_a + t``, named ``b_from_a``.

Compose right to left like :class:`Rigid3` (``c_from_a = c_from_b @ b_from_a``); a ``Rigid3`` on
either side of ``@`` is taken as a similarity of scale 1, so ``Sim3 @ Rigid3`` and
``Rigid3 @ Sim3`` are both ``Sim3``. Monocular loop closure needs the scale: it drifts along a
sequence seen by one camera.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_array, as_points
from .rigid import Rigid3
from .rotation import is_rotation, so3_exp, so3_log


class Sim3:
    """A similarity ``b_from_a``: ``x_b = scale * R @ x_a + t`` (scale > 0, R (3,3), t (3,)).

    Instances are values; ``check=False`` skips the rotation / scale checks for trusted values.
    """

    __slots__ = ("scale", "R", "t")

    def __init__(self, scale: float = 1.0, R: np.ndarray | None = None, t: np.ndarray | None = None, *,
                 check: bool = True):
        self.scale = float(scale)
        if not check:
            self.R = np.eye(3) if R is None else np.array(R, dtype=np.float64)
            self.t = np.zeros(3) if t is None else np.array(t, dtype=np.float64)
            if self.R.shape != (3, 3) or self.t.shape != (3,):
                raise ValueError(f"R must have shape (3, 3) and t (3,), got {self.R.shape} and {self.t.shape}")
            return
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be finite and positive, got {scale!r}")
        self.R = np.eye(3) if R is None else as_array(R, "R", (3, 3)).copy()
        self.t = np.zeros(3) if t is None else as_array(t, "t", (3,)).copy()
        if not is_rotation(self.R, atol=1e-6):
            raise ValueError("R is not a rotation matrix; orthonormalise it first "
                             "(geomvision.geometry.rotation.project_to_rotation)")

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Sim3:
        return cls()

    @classmethod
    def from_rigid(cls, T: Rigid3, scale: float = 1.0) -> Sim3:
        """``x_b = scale * R x_a + t`` from a rigid ``T = (R, t)``."""
        if not isinstance(T, Rigid3):
            raise ValueError(f"T must be a Rigid3, got {type(T).__name__}")
        return cls(scale, T.R, T.t)

    @classmethod
    def from_rotvec(cls, scale: float, rotvec: np.ndarray, t: np.ndarray | None = None) -> Sim3:
        return cls(scale, so3_exp(as_array(rotvec, "rotvec", (3,))), t)

    @classmethod
    def from_matrix(cls, M: np.ndarray) -> Sim3:
        """From a 4x4 ``[[s R, t], [0, 1]]`` (or its top 3x4)."""
        M = np.asarray(M, dtype=np.float64)
        if M.shape not in ((3, 4), (4, 4)):
            raise ValueError(f"M must have shape (3, 4) or (4, 4), got {M.shape}")
        sR = M[:3, :3]
        det = np.linalg.det(sR)
        if not det > 0:
            raise ValueError(f"M: the 3x3 block s R must have a positive determinant, got {det:.6g}")
        s = det ** (1.0 / 3.0)
        return cls(s, sR / s, M[:3, 3])

    # --- algebra ------------------------------------------------------------------------------
    def inverse(self) -> Sim3:
        """``a_from_b``: ``x_a = (1/s) R^T x_b - (1/s) R^T t``."""
        inv_s = 1.0 / self.scale
        return Sim3(inv_s, self.R.T, -inv_s * (self.R.T @ self.t), check=False)

    def __matmul__(self, other: Sim3 | Rigid3) -> Sim3:
        """``c_from_a = c_from_b @ b_from_a``."""
        if isinstance(other, Rigid3):
            other = Sim3(1.0, other.R, other.t, check=False)
        if not isinstance(other, Sim3):
            return NotImplemented
        return Sim3(self.scale * other.scale, self.R @ other.R, self.scale * (self.R @ other.t) + self.t,
                    check=False)

    def __rmatmul__(self, other: Rigid3) -> Sim3:
        if isinstance(other, Rigid3):
            return Sim3(1.0, other.R, other.t, check=False) @ self
        return NotImplemented

    def apply(self, X_a: np.ndarray) -> np.ndarray:
        """Map points (N,3) (or one (3,)) from frame a to frame b."""
        X = np.asarray(X_a, dtype=np.float64)
        if X.ndim == 1:
            return self.scale * (self.R @ as_array(X, "X_a", (3,), finite=False)) + self.t
        X = as_points(X, "X_a", 3, finite=False)
        return self.scale * (X @ self.R.T) + self.t

    def rigid(self) -> Rigid3:
        """The rotation and translation as a ``Rigid3`` (the scale dropped)."""
        return Rigid3(self.R, self.t, check=False)

    # --- views --------------------------------------------------------------------------------
    @property
    def matrix4x4(self) -> np.ndarray:
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = self.scale * self.R, self.t
        return M

    @property
    def rotvec(self) -> np.ndarray:
        return so3_log(self.R)

    def allclose(self, other: Sim3, atol: float = 1e-9) -> bool:
        return bool(abs(self.scale - other.scale) <= atol and np.allclose(self.R, other.R, atol=atol)
                    and np.allclose(self.t, other.t, atol=atol))

    def copy(self) -> Sim3:
        return Sim3(self.scale, self.R, self.t, check=False)

    def __repr__(self) -> str:
        rv = np.array2string(self.rotvec, precision=4, suppress_small=True)
        t = np.array2string(self.t, precision=4, suppress_small=True)
        return f"Sim3(scale={self.scale:.6g}, rotvec={rv}, t={t})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, Sim3) and self.scale == other.scale and np.array_equal(self.R, other.R)
                and np.array_equal(self.t, other.t))

    __hash__ = None
