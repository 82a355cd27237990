"""The one-focal, centred, radial cameras of NVM (VisualSFM) and Bundler, fitted to any camera.

Both formats have one focal length, the principal point at the image centre and a radial term or
two; neither has fx != fy, skew, tangential or fisheye distortion. A geomvision camera is written
as the nearest such camera: the focal length is the camera's mean focal length (as COLMAP's
exporters write it) and the radial coefficients are fitted by linear least squares over a grid of
pixels covering the image. Where the camera is exactly of that form (SIMPLE_PINHOLE, PINHOLE with
fx = fy, SIMPLE_RADIAL and RADIAL for Bundler; pinhole cameras for NVM) the coefficients are
the camera's own. The fit's worst error over the image, in pixels, includes the offset of the
principal point from the image centre; the writers refuse a camera whose error exceeds their
``max_error``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Camera

_GRID = (41, 31)  # pixels sampled across the image (corners and borders included)


@dataclass(frozen=True)
class CentredLens:
    """``focal`` (pixels), radial ``coeffs`` and the worst error of the approximation (pixels)."""

    focal: float
    coeffs: tuple[float, ...]
    max_error_px: float


def image_centre(camera: Camera) -> np.ndarray:
    """The centre of the image in geomvision pixels (0, 0 = centre of the top-left pixel)."""
    return np.array([(camera.width - 1) / 2.0, (camera.height - 1) / 2.0])


def _samples(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N,2) relative to the image centre, their rays' z = 1 coordinates (N,2))."""
    us = np.linspace(0.0, camera.width - 1.0, _GRID[0])
    vs = np.linspace(0.0, camera.height - 1.0, _GRID[1])
    uu, vv = np.meshgrid(us, vs)
    uv = np.column_stack([uu.ravel(), vv.ravel()])
    xy = camera.cam_from_img(uv)[:, :2]
    ok = np.isfinite(xy).all(axis=1)
    if ok.sum() < 10:
        raise ValueError(f"camera {camera!r}: its lens model cannot be inverted over the image")
    return uv[ok] - image_centre(camera), xy[ok]


def _exact_radial(camera: Camera) -> tuple[float, ...] | None:
    if camera.model in ("SIMPLE_PINHOLE",) or (camera.model == "PINHOLE" and camera.params[0] == camera.params[1]):
        return ()
    if camera.model == "SIMPLE_RADIAL":
        return (camera.param("k"),)
    if camera.model == "RADIAL":
        return camera.param("k1"), camera.param("k2")
    return None


def fit_projection_radial(camera: Camera, num_coeffs: int) -> CentredLens:
    """Bundler's model: ``pixel - centre = f (1 + k1 r^2 + k2 r^4) (x, y)`` with (x, y) the
    z = 1 coordinates of the ray and r^2 = x^2 + y^2 (``num_coeffs`` = 2: k1, k2)."""
    f = camera.mean_focal_length
    m, xy = _samples(camera)
    exact = _exact_radial(camera)
    if exact is not None:
        k = np.zeros(num_coeffs)
        k[: len(exact)] = exact[:num_coeffs]
    else:
        r2 = np.sum(xy**2, axis=1, keepdims=True)
        # m - f xy = f k1 r^2 xy + f k2 r^4 xy: linear in k
        A = np.stack([(f * xy * r2 ** (j + 1)).ravel() for j in range(num_coeffs)], axis=1)
        k = np.linalg.lstsq(A, (m - f * xy).ravel(), rcond=None)[0]
    r2 = np.sum(xy**2, axis=1, keepdims=True)
    radial = 1.0 + sum(k[j] * r2 ** (j + 1) for j in range(num_coeffs))
    err = np.linalg.norm(f * radial * xy - m, axis=1)
    return CentredLens(float(f), tuple(float(c) for c in k), float(err.max()))


def fit_measurement_radial(camera: Camera) -> CentredLens:
    """NVM's model (VisualSFM, PBA's "measurement distortion"): the measurement m (pixels from the
    image centre) is undistorted as ``(x, y) = (m / f) (1 + r |m / f|^2)``; fits r."""
    f = camera.mean_focal_length
    m, xy = _samples(camera)
    n = m / f
    s2 = np.sum(n**2, axis=1, keepdims=True)
    if camera.model in ("SIMPLE_PINHOLE", "PINHOLE") and camera.params[0] == camera.params[1]:
        r = 0.0
    else:
        A = (n * s2).ravel()[:, None]
        r = float(np.linalg.lstsq(A, (xy - n).ravel(), rcond=None)[0][0])
    err = f * np.linalg.norm(n * (1.0 + r * s2) - xy, axis=1)
    return CentredLens(float(f), (r,), float(err.max()))


def check_error(lens: CentredLens, camera_id: int, camera: Camera, fmt: str, max_error: float) -> None:
    """Raise ValueError naming the camera and the fixes when the fit is worse than ``max_error`` pixels."""
    if lens.max_error_px <= max_error:
        return
    offset = float(np.linalg.norm(camera.principal_point - image_centre(camera)))
    fx, fy = camera.focal_length_x, camera.focal_length_y
    reasons = [f"the principal point is {offset:.3g} px from the image centre"] if offset > 1e-9 else []
    if fx != fy:
        reasons.append(f"fx = {fx:.6g} and fy = {fy:.6g} differ")
    if camera.model in ("OPENCV", "OPENCV_FISHEYE", "PINHOLE_SKEW") and camera.has_distortion or camera.skew:
        reasons.append(f"its {camera.model} lens is not radial-only")
    elif camera.has_distortion:
        reasons.append("its radial distortion is not of the format's form")
    fix = ("undistort the model first (geomvision undistort: removes distortion and skew) or accept the error"
           if camera.has_distortion or camera.skew else
           f"{fmt} cannot hold this camera closer (a model with fx = fy and the principal point at the image centre "
           "fits exactly); accept the error")
    raise ValueError(
        f"camera {camera_id} ({camera.model}, {camera.width}x{camera.height}) differs from the nearest {fmt} camera "
        f"by up to {lens.max_error_px:.3g} px, more than max_error = {max_error:g} px: {fmt} has one focal length, "
        f"the principal point at the image centre and radial distortion only, and {'; '.join(reasons) or 'it differs'}. "
        f"{fix[0].upper() + fix[1:]} with a larger max_error (--max-error)"
    )
