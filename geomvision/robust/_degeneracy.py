"""Sample degeneracy tests shared by the estimators (numba), small gather helpers, LM tolerances."""

from __future__ import annotations

import numpy as np
from numba import njit

# relative tolerances: a triangle with |2 * area| below COLLINEAR_TOL * (longest side)^2 is a line
COLLINEAR_TOL = 1e-6
COINCIDENT_TOL = 1e-9

# stopping tolerances of the LM refinements in LO steps (relative cost decrease, step, gradient)
LM_FTOL = 1e-8
LM_XTOL = 1e-10
LM_GTOL = 1e-12


@njit(cache=True)
def gather_rows(a, idx):
    """a[idx] as a new C-contiguous array (numba's fancy indexing, spelled out)."""
    return gather_rows_into(a, idx, np.empty((idx.shape[0], a.shape[1])))


@njit(cache=True)
def gather_rows_into(a, idx, out):
    """out[:] = a[idx] for out (len(idx), a.shape[1]); returns out."""
    for k in range(idx.shape[0]):
        for j in range(a.shape[1]):
            out[k, j] = a[idx[k], j]
    return out


@njit(cache=True)
def any_coincident_2d(pts, sample):
    """True when two sample points coincide (relative to the sample's extent)."""
    s = sample.shape[0]
    ext = 0.0
    for a in range(s):
        ext = max(ext, abs(pts[sample[a], 0]), abs(pts[sample[a], 1]))
    tol = COINCIDENT_TOL * (1.0 + ext)
    for a in range(s):
        for b in range(a + 1, s):
            dx = pts[sample[a], 0] - pts[sample[b], 0]
            dy = pts[sample[a], 1] - pts[sample[b], 1]
            if dx * dx + dy * dy <= tol * tol:
                return True
    return False


@njit(cache=True)
def any_collinear_triple_2d(pts, sample):
    """True when three sample points are (nearly) collinear or two coincide."""
    s = sample.shape[0]
    for a in range(s):
        ax, ay = pts[sample[a], 0], pts[sample[a], 1]
        for b in range(a + 1, s):
            bx, by = pts[sample[b], 0], pts[sample[b], 1]
            for c in range(b + 1, s):
                cx, cy = pts[sample[c], 0], pts[sample[c], 1]
                ux, uy = bx - ax, by - ay
                vx, vy = cx - ax, cy - ay
                wx, wy = cx - bx, cy - by
                longest = max(ux * ux + uy * uy, vx * vx + vy * vy, wx * wx + wy * wy)
                if longest <= 0.0 or abs(ux * vy - uy * vx) <= COLLINEAR_TOL * longest:
                    return True
    return False


@njit(cache=True)
def any_parallel_rays(rays, sample):
    """True when two sample rays (any length) point the same way (a repeated correspondence):
    |a x b| <= COINCIDENT_TOL |a| |b|, compared squared (no square roots on RANSAC's path)."""
    s = sample.shape[0]
    tol2 = COINCIDENT_TOL * COINCIDENT_TOL
    for a in range(s):
        ra = rays[sample[a]]
        na2 = ra[0] ** 2 + ra[1] ** 2 + ra[2] ** 2
        for b in range(a + 1, s):
            rb = rays[sample[b]]
            nb2 = rb[0] ** 2 + rb[1] ** 2 + rb[2] ** 2
            cx = ra[1] * rb[2] - ra[2] * rb[1]
            cy = ra[2] * rb[0] - ra[0] * rb[2]
            cz = ra[0] * rb[1] - ra[1] * rb[0]
            if cx * cx + cy * cy + cz * cz <= tol2 * na2 * nb2:
                return True
    return False


@njit(cache=True)
def any_collinear_triple_3d(X, sample):
    """True when three sample 3-D points are (nearly) collinear or two coincide."""
    s = sample.shape[0]
    for a in range(s):
        for b in range(a + 1, s):
            for c in range(b + 1, s):
                u = X[sample[b]] - X[sample[a]]
                v = X[sample[c]] - X[sample[a]]
                cx = u[1] * v[2] - u[2] * v[1]
                cy = u[2] * v[0] - u[0] * v[2]
                cz = u[0] * v[1] - u[1] * v[0]
                longest = max(np.dot(u, u), np.dot(v, v), np.dot(u - v, u - v))
                if longest <= 0.0 or np.sqrt(cx * cx + cy * cy + cz * cz) <= COLLINEAR_TOL * longest:
                    return True
    return False
