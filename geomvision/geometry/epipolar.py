"""Two-view epipolar geometry: E, F, epipoles, epipolar lines and the standard error measures.

Conventions: ``x2^T F x1 = 0`` for corresponding pixels x1 (image 1) and x2 (image 2);
``E = [t]_x R`` for ``cam2_from_cam1 = (R, t)``; homographies map image 1 to image 2,
``x2 ~ H x1``. Lines are (a, b, c) with a^2 + b^2 = 1, so ``line . (u, v, 1)`` is a signed
distance in pixels. Error functions return squared errors (``sq_errors``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validation import as_array, as_points, check_same_length
from .camera import Camera
from .rigid import Rigid3
from .rotation import hat


def _K_of(cam_or_K, name: str) -> np.ndarray:
    if isinstance(cam_or_K, Camera):
        if cam_or_K.has_distortion:
            raise ValueError(f"{name} has lens distortion; F relates undistorted pixels only (undistort first)")
        return cam_or_K.K
    return as_array(cam_or_K, name, (3, 3))


def essential_from_pose(cam2_from_cam1: Rigid3) -> np.ndarray:
    """E = [t]_x R of the relative pose ``cam2_from_cam1``; ``x2n^T E x1n = 0`` on the z = 1 plane."""
    if not isinstance(cam2_from_cam1, Rigid3):
        raise ValueError("cam2_from_cam1 must be a Rigid3")
    return hat(cam2_from_cam1.t) @ cam2_from_cam1.R


def fundamental_from_essential(E: np.ndarray, camera1: Camera | np.ndarray, camera2: Camera | np.ndarray) -> np.ndarray:
    """F = K2^-T E K1^-1 (cameras or 3x3 K matrices), scaled to unit Frobenius norm."""
    E = as_array(E, "E", (3, 3))
    K1, K2 = _K_of(camera1, "camera1"), _K_of(camera2, "camera2")
    F = np.linalg.solve(K2.T, E) @ np.linalg.inv(K1)
    return F / np.linalg.norm(F)


def essential_from_fundamental(F: np.ndarray, camera1: Camera | np.ndarray, camera2: Camera | np.ndarray) -> np.ndarray:
    """E = K2^T F K1, scaled to unit Frobenius norm (not projected onto the essential manifold)."""
    F = as_array(F, "F", (3, 3))
    E = _K_of(camera2, "camera2").T @ F @ _K_of(camera1, "camera1")
    return E / np.linalg.norm(E)


def fundamental_from_pose(cam2_from_cam1: Rigid3, camera1: Camera | np.ndarray, camera2: Camera | np.ndarray) -> np.ndarray:
    """F of two cameras with relative pose ``cam2_from_cam1``."""
    return fundamental_from_essential(essential_from_pose(cam2_from_cam1), camera1, camera2)


def epipoles(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epipoles (e1, e2) as unit homogeneous 3-vectors: F e1 = 0 and F^T e2 = 0.

    e1 is the image of camera 2's centre in image 1 (and e2 of camera 1's in image 2);
    divide by the last coordinate for pixels when it is not ~0 (epipole at infinity).
    """
    F = as_array(F, "F", (3, 3))
    U, _, Vt = np.linalg.svd(F)
    e1, e2 = Vt[2], U[:, 2]
    # deterministic sign: last coordinate non-negative
    e1 = e1 if e1[2] >= 0 else -e1
    e2 = e2 if e2[2] >= 0 else -e2
    return e1, e2


def _normalise_lines(lines: np.ndarray) -> np.ndarray:
    n = np.hypot(lines[:, 0], lines[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return lines / n[:, None]


def epipolar_lines2(F: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Lines l2 = F x1 (N,3) in image 2 of pixels x1 (N,2) in image 1; x2 lies on l2."""
    F = as_array(F, "F", (3, 3))
    x1 = as_points(x1, "x1", 2)
    return _normalise_lines(np.hstack([x1, np.ones((len(x1), 1))]) @ F.T)


def epipolar_lines1(F: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Lines l1 = F^T x2 (N,3) in image 1 of pixels x2 (N,2) in image 2; x1 lies on l1."""
    F = as_array(F, "F", (3, 3))
    x2 = as_points(x2, "x2", 2)
    return _normalise_lines(np.hstack([x2, np.ones((len(x2), 1))]) @ F)


@njit(cache=True)
def _sampson_kernel(F, x1, x2):
    n = x1.shape[0]
    out = np.empty(n)
    for i in range(n):
        u1, v1, u2, v2 = x1[i, 0], x1[i, 1], x2[i, 0], x2[i, 1]
        a0 = F[0, 0] * u1 + F[0, 1] * v1 + F[0, 2]  # F x1
        a1 = F[1, 0] * u1 + F[1, 1] * v1 + F[1, 2]
        a2 = F[2, 0] * u1 + F[2, 1] * v1 + F[2, 2]
        b0 = F[0, 0] * u2 + F[1, 0] * v2 + F[2, 0]  # F^T x2
        b1 = F[0, 1] * u2 + F[1, 1] * v2 + F[2, 1]
        c = u2 * a0 + v2 * a1 + a2
        den = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
        out[i] = c * c / den if den > 0.0 else np.inf
    return out


@njit(cache=True)
def _symmetric_epipolar_kernel(F, x1, x2):
    n = x1.shape[0]
    out = np.empty(n)
    for i in range(n):
        u1, v1, u2, v2 = x1[i, 0], x1[i, 1], x2[i, 0], x2[i, 1]
        a0 = F[0, 0] * u1 + F[0, 1] * v1 + F[0, 2]
        a1 = F[1, 0] * u1 + F[1, 1] * v1 + F[1, 2]
        a2 = F[2, 0] * u1 + F[2, 1] * v1 + F[2, 2]
        b0 = F[0, 0] * u2 + F[1, 0] * v2 + F[2, 0]
        b1 = F[0, 1] * u2 + F[1, 1] * v2 + F[2, 1]
        c = u2 * a0 + v2 * a1 + a2
        d2 = a0 * a0 + a1 * a1
        d1 = b0 * b0 + b1 * b1
        out[i] = c * c * (1.0 / d2 + 1.0 / d1) if d1 > 0.0 and d2 > 0.0 else np.inf
    return out


@njit(cache=True)
def _transfer_kernel(H, x1, x2):
    n = x1.shape[0]
    out = np.empty(n)
    for i in range(n):
        u1, v1 = x1[i, 0], x1[i, 1]
        w = H[2, 0] * u1 + H[2, 1] * v1 + H[2, 2]
        if abs(w) < 1e-15:
            out[i] = np.inf
            continue
        du = (H[0, 0] * u1 + H[0, 1] * v1 + H[0, 2]) / w - x2[i, 0]
        dv = (H[1, 0] * u1 + H[1, 1] * v1 + H[1, 2]) / w - x2[i, 1]
        out[i] = du * du + dv * dv
    return out


def _pair(M, name, x1, x2):
    M = as_array(M, name, (3, 3))
    x1 = as_points(x1, "x1", 2)
    x2 = as_points(x2, "x2", 2)
    check_same_length(x1=x1, x2=x2)
    return M, x1, x2


def sampson_sq_errors(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Squared Sampson distances (N,): the first-order geometric error of x2^T F x1 = 0
    (pixels^2 for a pixel F; also valid for E on normalised coordinates)."""
    return _sampson_kernel(*_pair(F, "F", x1, x2))


def symmetric_epipolar_sq_errors(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """d(x2, F x1)^2 + d(x1, F^T x2)^2 (N,): squared point-to-epipolar-line distances in both images."""
    return _symmetric_epipolar_kernel(*_pair(F, "F", x1, x2))


def homography_transfer_sq_errors(H: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """|x2 - H(x1)|^2 (N,): squared one-sided transfer error in image 2 (inf at infinity)."""
    return _transfer_kernel(*_pair(H, "H", x1, x2))


def symmetric_transfer_sq_errors(H: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """|x2 - H(x1)|^2 + |x1 - H^-1(x2)|^2 (N,)."""
    H, x1, x2 = _pair(H, "H", x1, x2)
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        raise ValueError("H is singular: it has no inverse transfer") from None
    return _transfer_kernel(H, x1, x2) + _transfer_kernel(Hinv, x2, x1)
