"""Rigid transforms ``Rigid3``: ``x_b = R @ x_a + t``, named ``b_from_a``.

Compose right to left like the names read: ``c_from_a = c_from_b @ b_from_a``.
A camera pose is ``cam_from_world``; its centre in world is ``cam_from_world.inverse().t``.
"""

from __future__ import annotations

import numpy as np

from .._validation import RngLike, as_array, as_points, as_rng
from .rotation import is_rotation, quat_wxyz_from_rotmat, random_rotation, rotmat_from_quat_wxyz, so3_exp, so3_log


class Rigid3:
    """A rigid transform ``b_from_a``: ``x_b = R @ x_a + t`` with R (3,3) a rotation and t (3,).

    ``R`` is checked to be a rotation (orthonormal, det +1, to 1e-6) and both arrays to be finite;
    ``check=False`` is for values that are rotations by construction (it only checks shapes).
    Instances are values: the arrays are copied on construction and should not be mutated.
    """

    __slots__ = ("R", "t")

    def __init__(self, R: np.ndarray | None = None, t: np.ndarray | None = None, *, check: bool = True):
        if not check:
            # trusted values from geomvision's own code: copy, keep only the shape check
            self.R = np.eye(3) if R is None else np.array(R, dtype=np.float64)
            self.t = np.zeros(3) if t is None else np.array(t, dtype=np.float64)
            if self.R.shape != (3, 3) or self.t.shape != (3,):
                raise ValueError(f"R must have shape (3, 3) and t (3,), got {self.R.shape} and {self.t.shape}")
            return
        self.R = np.eye(3) if R is None else as_array(R, "R", (3, 3)).copy()
        self.t = np.zeros(3) if t is None else as_array(t, "t", (3,)).copy()
        if not is_rotation(self.R, atol=1e-6):
            det = np.linalg.det(self.R)
            raise ValueError(
                f"R is not a rotation matrix (det={det:.6g}, |R^T R - I|max="
                f"{np.abs(self.R.T @ self.R - np.eye(3)).max():.3g}); orthonormalise it first, "
                "e.g. with geomvision.geometry.rotation.project_to_rotation"
            )

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Rigid3:
        return cls()

    @classmethod
    def from_matrix(cls, M: np.ndarray) -> Rigid3:
        """From a 3x4 ``[R | t]`` or a 4x4 homogeneous matrix (last row must be [0, 0, 0, 1])."""
        M = np.asarray(M, dtype=np.float64)
        if M.shape == (4, 4):
            if not np.allclose(M[3], [0, 0, 0, 1], atol=1e-9):
                raise ValueError(f"M: the last row of a 4x4 rigid transform must be [0, 0, 0, 1], got {M[3]}")
        elif M.shape != (3, 4):
            raise ValueError(f"M must have shape (3, 4) or (4, 4), got {M.shape}")
        return cls(M[:3, :3], M[:3, 3])

    @classmethod
    def from_rotvec(cls, rotvec: np.ndarray, t: np.ndarray | None = None) -> Rigid3:
        """From a rotation vector (axis * angle, radians) and a translation."""
        return cls(so3_exp(as_array(rotvec, "rotvec", (3,))), t, check=False)

    @classmethod
    def from_quat_wxyz(cls, quat_wxyz: np.ndarray, t: np.ndarray | None = None) -> Rigid3:
        """From a quaternion in (w, x, y, z) order (normalised here) and a translation."""
        return cls(rotmat_from_quat_wxyz(as_array(quat_wxyz, "quat_wxyz", (4,))), t, check=False)

    @classmethod
    def from_camera_axes_center(cls, R_axes_in_world: np.ndarray, center: np.ndarray) -> Rigid3:
        """``cam_from_world`` of a camera whose axes in world are the columns of ``R_axes_in_world``
        and whose centre in world is ``center``: R = R_c^T, t = -R_c^T C."""
        Rc = as_array(R_axes_in_world, "R_axes_in_world", (3, 3))
        C = as_array(center, "center", (3,))
        if not is_rotation(Rc, atol=1e-6):
            raise ValueError("R_axes_in_world must be a rotation (its columns the camera's x, y, z axes in world)")
        return cls(Rc.T, -Rc.T @ C, check=False)

    @classmethod
    def look_at(cls, center: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> Rigid3:
        """``cam_from_world`` of a camera at ``center`` looking at ``target`` (camera z forward,
        y down, x right, as in OpenCV/COLMAP) with world ``up`` pointing up in the image."""
        C = as_array(center, "center", (3,))
        z = as_array(target, "target", (3,)) - C
        if np.linalg.norm(z) < 1e-12:
            raise ValueError("look_at: target coincides with center")
        z /= np.linalg.norm(z)
        up_ = as_array(up, "up", (3,))
        x = np.cross(z, up_)  # right = forward x up: image x to the right when y is down
        if np.linalg.norm(x) < 1e-9:
            raise ValueError("look_at: the viewing direction is parallel to up; choose another up vector")
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        return cls.from_camera_axes_center(np.stack([x, y, z], axis=1), C)

    @classmethod
    def random(cls, rng: RngLike = None, t_scale: float = 1.0) -> Rigid3:
        """A random rotation (uniform on SO(3)) with t ~ N(0, t_scale^2 I)."""
        gen = as_rng(rng)
        return cls(random_rotation(gen), gen.normal(scale=t_scale, size=3), check=False)

    # --- algebra ------------------------------------------------------------------------------
    def inverse(self) -> Rigid3:
        """``a_from_b`` of this ``b_from_a``."""
        return Rigid3(self.R.T, -self.R.T @ self.t, check=False)

    def __matmul__(self, other: Rigid3) -> Rigid3:
        """``c_from_a = c_from_b @ b_from_a``."""
        if not isinstance(other, Rigid3):
            return NotImplemented
        return Rigid3(self.R @ other.R, self.R @ other.t + self.t, check=False)

    def apply(self, X_a: np.ndarray) -> np.ndarray:
        """Map points (N,3) (or one (3,)) from frame a to frame b."""
        X = np.asarray(X_a, dtype=np.float64)
        if X.ndim == 1:
            return self.R @ as_array(X, "X_a", (3,), finite=False) + self.t
        X = as_points(X, "X_a", 3, finite=False)
        return X @ self.R.T + self.t

    def apply_rotation(self, v_a: np.ndarray) -> np.ndarray:
        """Rotate directions (N,3) or (3,) from frame a to frame b (no translation)."""
        v = np.asarray(v_a, dtype=np.float64)
        return v @ self.R.T if v.ndim == 2 else self.R @ v

    # --- views --------------------------------------------------------------------------------
    @property
    def matrix3x4(self) -> np.ndarray:
        return np.hstack([self.R, self.t[:, None]])

    @property
    def matrix4x4(self) -> np.ndarray:
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = self.R, self.t
        return M

    @property
    def rotvec(self) -> np.ndarray:
        return so3_log(self.R)

    @property
    def quat_wxyz(self) -> np.ndarray:
        return quat_wxyz_from_rotmat(self.R)

    def allclose(self, other: Rigid3, atol: float = 1e-9) -> bool:
        return bool(np.allclose(self.R, other.R, atol=atol) and np.allclose(self.t, other.t, atol=atol))

    def copy(self) -> Rigid3:
        return Rigid3(self.R, self.t, check=False)

    def __repr__(self) -> str:
        rv = np.array2string(self.rotvec, precision=4, suppress_small=True)
        t = np.array2string(self.t, precision=4, suppress_small=True)
        return f"Rigid3(rotvec={rv}, t={t})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Rigid3) and np.array_equal(self.R, other.R) and np.array_equal(self.t, other.t)

    __hash__ = None


def camera_center(cam_from_world: Rigid3) -> np.ndarray:
    """Centre of a camera in world coordinates, ``-R^T t``."""
    return -cam_from_world.R.T @ cam_from_world.t
