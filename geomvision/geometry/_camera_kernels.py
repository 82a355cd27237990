"""numba kernels of the camera models: projection with analytic Jacobians, and unprojection.

A camera is ``(model_id, params)``. Projection of a point X_cam = (X, Y, Z), Z > 0:

    (x, y)   = (X / Z, Y / Z)                      normalised image coordinates
    (xd, yd) = distort(x, y; k)                    model's lens distortion
    u        = fx * xd + skew * yd + cx,  v = fy * yd + cy

``project_one`` is the scalar building block that bundle adjustment kernels call per
observation; it writes d(u,v)/dX into ``J_X`` (2,3) and d(u,v)/dparams into ``J_p`` (2,P).
Points with Z <= 0 (behind or on the camera plane) project to NaN.

Parameter order follows COLMAP (``camera.py`` holds the table):
  SIMPLE_PINHOLE f, cx, cy | PINHOLE fx, fy, cx, cy | SIMPLE_RADIAL f, cx, cy, k |
  RADIAL f, cx, cy, k1, k2 | OPENCV fx, fy, cx, cy, k1, k2, p1, p2 |
  OPENCV_FISHEYE fx, fy, cx, cy, k1, k2, k3, k4 | PINHOLE_SKEW fx, fy, skew, cx, cy
"""

from __future__ import annotations

import numpy as np
from numba import njit

SIMPLE_PINHOLE = 0
PINHOLE = 1
SIMPLE_RADIAL = 2
RADIAL = 3
OPENCV = 4
OPENCV_FISHEYE = 5
PINHOLE_SKEW = 6

# distortion kinds
_NONE, _RADIAL1, _RADIAL2, _OPENCV, _FISHEYE = 0, 1, 2, 3, 4


@njit(cache=True, inline="always")
def _layout(model_id):
    """(distortion kind, index of first distortion coefficient, single focal?, has skew?)."""
    if model_id == SIMPLE_PINHOLE:
        return _NONE, 3, True, False
    if model_id == PINHOLE:
        return _NONE, 4, False, False
    if model_id == SIMPLE_RADIAL:
        return _RADIAL1, 3, True, False
    if model_id == RADIAL:
        return _RADIAL2, 3, True, False
    if model_id == OPENCV:
        return _OPENCV, 4, False, False
    if model_id == OPENCV_FISHEYE:
        return _FISHEYE, 4, False, False
    return _NONE, 5, False, True  # PINHOLE_SKEW


@njit(cache=True, inline="always")
def _affine(model_id, p):
    """(fx, fy, skew, cx, cy) of a camera."""
    if model_id == SIMPLE_PINHOLE or model_id == SIMPLE_RADIAL or model_id == RADIAL:
        return p[0], p[0], 0.0, p[1], p[2]
    if model_id == PINHOLE_SKEW:
        return p[0], p[1], p[2], p[3], p[4]
    return p[0], p[1], 0.0, p[2], p[3]


@njit(cache=True)
def distort(kind, p, k0, x, y, want_jac, J_p):
    """Distorted normalised coordinates of (x, y) and the 2x2 Jacobian d(xd,yd)/d(x,y).

    With ``want_jac`` the derivatives d(xd, yd)/d(coefficient) are written into columns
    ``k0..`` of ``J_p`` (rows 0 = xd, 1 = yd); the caller maps them to pixels.
    Returns (xd, yd, a00, a01, a10, a11) with a_ij = d(xd, yd)_i / d(x, y)_j.
    """
    if kind == _NONE:
        return x, y, 1.0, 0.0, 0.0, 1.0
    r2 = x * x + y * y
    if kind == _RADIAL1 or kind == _RADIAL2 or kind == _OPENCV:
        k1 = p[k0]
        k2 = 0.0 if kind == _RADIAL1 else p[k0 + 1]
        s = 1.0 + r2 * (k1 + k2 * r2)
        ds = k1 + 2.0 * k2 * r2  # d s / d r2
        xd = s * x
        yd = s * y
        a00 = s + 2.0 * ds * x * x
        a01 = 2.0 * ds * x * y
        a10 = a01
        a11 = s + 2.0 * ds * y * y
        if want_jac:
            J_p[0, k0] = r2 * x
            J_p[1, k0] = r2 * y
            if kind != _RADIAL1:
                J_p[0, k0 + 1] = r2 * r2 * x
                J_p[1, k0 + 1] = r2 * r2 * y
        if kind == _OPENCV:
            p1 = p[k0 + 2]
            p2 = p[k0 + 3]
            xd += 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
            yd += p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
            a00 += 2.0 * p1 * y + 6.0 * p2 * x
            a01 += 2.0 * p1 * x + 2.0 * p2 * y
            a10 += 2.0 * p1 * x + 2.0 * p2 * y
            a11 += 6.0 * p1 * y + 2.0 * p2 * x
            if want_jac:
                J_p[0, k0 + 2] = 2.0 * x * y
                J_p[1, k0 + 2] = r2 + 2.0 * y * y
                J_p[0, k0 + 3] = r2 + 2.0 * x * x
                J_p[1, k0 + 3] = 2.0 * x * y
        return xd, yd, a00, a01, a10, a11
    # OPENCV_FISHEYE (equidistant with polynomial): theta_d = theta (1 + k1 t^2 + ... + k4 t^8)
    k1 = p[k0]
    k2 = p[k0 + 1]
    k3 = p[k0 + 2]
    k4 = p[k0 + 3]
    r = np.sqrt(r2)
    if r < 1e-8:
        # scale = theta_d / r -> 1 + (k1 - 1/3) r^2; (d scale / d r) / r -> 2 (k1 - 1/3)
        c = k1 - 1.0 / 3.0
        scale = 1.0 + c * r2
        dsr = 2.0 * c
        if want_jac:
            for i in range(4):
                # theta^(2i+3) / r ~ r^(2i+2)
                J_p[0, k0 + i] = x * r2 ** (i + 1)
                J_p[1, k0 + i] = y * r2 ** (i + 1)
    else:
        th = np.arctan(r)
        t2 = th * th
        poly = 1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
        thd = th * poly
        dthd_dth = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
        dth_dr = 1.0 / (1.0 + r2)
        scale = thd / r
        dsr = (dthd_dth * dth_dr * r - thd) / (r2 * r)  # (d scale/d r) / r
        if want_jac:
            tp = th
            for i in range(4):
                tp *= t2  # theta^(2i+3)
                J_p[0, k0 + i] = tp / r * x
                J_p[1, k0 + i] = tp / r * y
    xd = scale * x
    yd = scale * y
    a00 = scale + dsr * x * x
    a01 = dsr * x * y
    a11 = scale + dsr * y * y
    return xd, yd, a00, a01, a01, a11


@njit(cache=True)
def project_one(model_id, p, X, Y, Z, want_jac, J_X, J_p):
    """Pixel (u, v) of the camera-frame point (X, Y, Z); optionally fill J_X (2,3) and J_p (2,P)."""
    if not Z > 0.0:
        if want_jac:
            J_X[:, :] = np.nan
            J_p[:, :] = np.nan
        return np.nan, np.nan
    kind, k0, single_f, has_skew = _layout(model_id)
    fx, fy, sk, cx, cy = _affine(model_id, p)
    iz = 1.0 / Z
    x = X * iz
    y = Y * iz
    xd, yd, a00, a01, a10, a11 = distort(kind, p, k0, x, y, want_jac, J_p)
    u = fx * xd + sk * yd + cx
    v = fy * yd + cy
    if want_jac:
        # distortion coefficients: map d(xd,yd)/dk to pixels
        for j in range(k0, p.shape[0]):
            dxk = J_p[0, j]
            dyk = J_p[1, j]
            J_p[0, j] = fx * dxk + sk * dyk
            J_p[1, j] = fy * dyk
        if single_f:
            J_p[0, 0] = xd
            J_p[1, 0] = yd
            J_p[0, 1] = 1.0
            J_p[1, 1] = 0.0
            J_p[0, 2] = 0.0
            J_p[1, 2] = 1.0
        else:
            J_p[0, 0] = xd
            J_p[1, 0] = 0.0
            J_p[0, 1] = 0.0
            J_p[1, 1] = yd
            c0 = 2
            if has_skew:
                J_p[0, 2] = yd
                J_p[1, 2] = 0.0
                c0 = 3
            J_p[0, c0] = 1.0
            J_p[1, c0] = 0.0
            J_p[0, c0 + 1] = 0.0
            J_p[1, c0 + 1] = 1.0
        # d(u,v)/d(x,y) = A * Jd with A = [[fx, sk], [0, fy]]
        b00 = fx * a00 + sk * a10
        b01 = fx * a01 + sk * a11
        b10 = fy * a10
        b11 = fy * a11
        # d(x,y)/dX = [[1/Z, 0, -x/Z], [0, 1/Z, -y/Z]]
        J_X[0, 0] = b00 * iz
        J_X[0, 1] = b01 * iz
        J_X[0, 2] = -(b00 * x + b01 * y) * iz
        J_X[1, 0] = b10 * iz
        J_X[1, 1] = b11 * iz
        J_X[1, 2] = -(b10 * x + b11 * y) * iz
    return u, v


@njit(cache=True)
def project_points(model_id, p, X_cam):
    """(N,3) camera-frame points -> (N,2) pixels (NaN where Z <= 0)."""
    n = X_cam.shape[0]
    uv = np.empty((n, 2))
    dummy_X = np.empty((2, 3))
    dummy_p = np.empty((2, p.shape[0]))
    for i in range(n):
        u, v = project_one(model_id, p, X_cam[i, 0], X_cam[i, 1], X_cam[i, 2], False, dummy_X, dummy_p)
        uv[i, 0] = u
        uv[i, 1] = v
    return uv


@njit(cache=True)
def project_points_jac(model_id, p, X_cam):
    """Pixels (N,2), d uv / d X_cam (N,2,3) and d uv / d params (N,2,P)."""
    n = X_cam.shape[0]
    uv = np.empty((n, 2))
    J_X = np.zeros((n, 2, 3))
    J_p = np.zeros((n, 2, p.shape[0]))
    for i in range(n):
        u, v = project_one(model_id, p, X_cam[i, 0], X_cam[i, 1], X_cam[i, 2], True, J_X[i], J_p[i])
        uv[i, 0] = u
        uv[i, 1] = v
    return uv, J_X, J_p


@njit(cache=True)
def undistort_one(kind, p, k0, xd, yd, tol):
    """Invert ``distort`` by Newton's method; returns (x, y, converged)."""
    if kind == _NONE:
        return xd, yd, True
    dummy = np.empty((2, 1))
    x = xd
    y = yd
    for _ in range(100):
        fx_, fy_, a00, a01, a10, a11 = distort(kind, p, k0, x, y, False, dummy)
        ex = fx_ - xd
        ey = fy_ - yd
        if abs(ex) < tol and abs(ey) < tol:
            return x, y, _in_invertible_region(kind, p, k0, x, y, xd, yd)
        det = a00 * a11 - a01 * a10
        if det == 0.0 or not np.isfinite(det):
            return np.nan, np.nan, False
        dx = (a11 * ex - a01 * ey) / det
        dy = (-a10 * ex + a00 * ey) / det
        x -= dx
        y -= dy
    fx_, fy_, a00, a01, a10, a11 = distort(kind, p, k0, x, y, False, dummy)
    ok = abs(fx_ - xd) < 100.0 * tol and abs(fy_ - yd) < 100.0 * tol
    return x, y, ok and _in_invertible_region(kind, p, k0, x, y, xd, yd)


@njit(cache=True)
def _in_invertible_region(kind, p, k0, x, y, xd, yd):
    """True when (x, y) lies on the lens model's first monotonic branch, the one ``distort`` maps
    one-to-one from the image centre outwards. Past the fold (e.g. k1 < 0: r_d = r (1 + k1 r^2)
    peaks at r^2 = -1 / (3 k1)) Newton's method can converge to a point of the far branch, a ray
    mirrored through the optical axis: such pixels have no ray of the model."""
    if kind == _NONE:
        return True
    if x * xd + y * yd < 0.0:  # the distorted point and the ray point in opposite directions
        return False
    r2 = x * x + y * y
    if kind == _FISHEYE:
        th = np.arctan(np.sqrt(r2))
        t2 = th * th
        k1, k2, k3, k4 = p[k0], p[k0 + 1], p[k0 + 2], p[k0 + 3]
        # d theta_d / d theta > 0 on [0, theta], checked on a grid of 16 steps
        for i in range(1, 17):
            u = t2 * (i / 16.0) ** 2
            if 1.0 + u * (3.0 * k1 + u * (5.0 * k2 + u * (7.0 * k3 + u * 9.0 * k4))) <= 0.0:
                return False
        return True
    # radial part r_d = r (1 + k1 r^2 + k2 r^4): d r_d / d r = 1 + 3 k1 u + 5 k2 u^2 (u = r^2) must
    # stay positive on [0, r^2]: no root of the quadratic in (0, r2]
    k1 = p[k0]
    k2 = 0.0 if kind == _RADIAL1 else p[k0 + 1]
    a = 5.0 * k2
    b = 3.0 * k1
    if a == 0.0:
        return not (b < 0.0 and -1.0 / b <= r2)
    disc = b * b - 4.0 * a
    if disc < 0.0:
        return True
    sq = np.sqrt(disc)
    for root in ((-b - sq) / (2.0 * a), (-b + sq) / (2.0 * a)):
        if 0.0 < root <= r2:
            return False
    return True


@njit(cache=True)
def unproject_rays(model_id, p, uv, tol_px):
    """(N,2) pixels -> (N,3) camera-frame rays (x, y, 1) on the plane z = 1.

    Distortion is inverted to ``tol_px`` pixels; rows that do not converge (outside the
    invertible region of the lens model) get x = y = NaN.
    """
    kind, k0, single_f, has_skew = _layout(model_id)
    fx, fy, sk, cx, cy = _affine(model_id, p)
    tol = tol_px / max(abs(fx), abs(fy))
    n = uv.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        yd = (uv[i, 1] - cy) / fy
        xd = (uv[i, 0] - cx - sk * yd) / fx
        x, y, ok = undistort_one(kind, p, k0, xd, yd, tol)
        out[i, 0] = x if ok else np.nan
        out[i, 1] = y if ok else np.nan
        out[i, 2] = 1.0
    return out
