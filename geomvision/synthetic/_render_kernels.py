"""Numba kernels of the ray caster: exact ray-shape intersection, trilinear mip-mapped texture
lookup, Lambert shading, supersampling.

Rays start at the camera centre C with the world direction d = R_world_from_cam @ (x, y, 1),
(x, y, 1) the camera-frame ray of a pixel, so the ray parameter of a hit is its depth z_cam.
Shapes are intersected in their object frames (see ``shapes.py`` for the face table); the
scene arrays are built by ``render._pack``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .shapes import KIND_BOX, KIND_CYLINDER, KIND_QUAD  # anything else is a sphere

T_MIN = 1e-9  # hits nearer than this (depth units) are ignored
MIN_COS = 1e-3  # grazing-angle floor of the texture-footprint foreshortening


@njit(cache=True)
def _hit_quad(ox, oy, oz, dx, dy, dz, sx, sy, t_best):
    if dz == 0.0:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    t = -oz / dz
    if t <= T_MIN or t >= t_best:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    x, y = ox + t * dx, oy + t * dy
    if abs(x) > 0.5 * sx or abs(y) > 0.5 * sy:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    return t, 0, x + 0.5 * sx, y + 0.5 * sy, 0.0, 0.0, 1.0


@njit(cache=True)
def _slab(o, d, lo, hi, t_near, t_far, axis, k):
    """One slab of the box test: the updated (t_near, t_far, entering axis, ok)."""
    if d == 0.0:
        return t_near, t_far, axis, lo <= o <= hi
    t0, t1 = (lo - o) / d, (hi - o) / d
    if t0 > t1:
        t0, t1 = t1, t0
    if t0 > t_near:
        t_near, axis = t0, k
    return t_near, min(t_far, t1), axis, True


@njit(cache=True)
def _hit_box(ox, oy, oz, dx, dy, dz, sx, sy, sz, t_best):
    t_near, t_far, axis = -np.inf, np.inf, -1
    t_near, t_far, axis, okx = _slab(ox, dx, -0.5 * sx, 0.5 * sx, t_near, t_far, axis, 0)
    t_near, t_far, axis, oky = _slab(oy, dy, -0.5 * sy, 0.5 * sy, t_near, t_far, axis, 1)
    t_near, t_far, axis, okz = _slab(oz, dz, 0.0, sz, t_near, t_far, axis, 2)
    if not (okx and oky and okz) or axis < 0 or t_near > t_far or t_near <= T_MIN or t_near >= t_best:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    t = t_near
    x, y, z = ox + t * dx, oy + t * dy, oz + t * dz
    if axis == 0:
        sign = -1.0 if dx > 0.0 else 1.0
        return t, 0 if dx > 0.0 else 1, y + 0.5 * sy, z, sign, 0.0, 0.0
    if axis == 1:
        sign = -1.0 if dy > 0.0 else 1.0
        return t, 2 if dy > 0.0 else 3, x + 0.5 * sx, z, 0.0, sign, 0.0
    sign = -1.0 if dz > 0.0 else 1.0
    return t, 4 if dz > 0.0 else 5, x + 0.5 * sx, y + 0.5 * sy, 0.0, 0.0, sign


@njit(cache=True)
def _hit_cylinder(ox, oy, oz, dx, dy, dz, r, h, t_best):
    best, face, s, tt, nx, ny, nz = t_best, -1, 0.0, 0.0, 0.0, 0.0, 0.0
    a = dx * dx + dy * dy
    if a > 0.0:
        b = ox * dx + oy * dy
        disc = b * b - a * (ox * ox + oy * oy - r * r)
        if disc >= 0.0:
            t = (-b - math.sqrt(disc)) / a  # the entering root (the camera is outside)
            z = oz + t * dz
            if T_MIN < t < best and 0.0 <= z <= h:
                x, y = ox + t * dx, oy + t * dy
                best, face, s, tt, nx, ny, nz = t, 0, r * (math.atan2(y, x) + math.pi), z, x / r, y / r, 0.0
    if dz != 0.0:
        for cap in range(2):
            zc = h if cap == 0 else 0.0
            t = (zc - oz) / dz
            if T_MIN < t < best:
                x, y = ox + t * dx, oy + t * dy
                if x * x + y * y <= r * r:
                    best, face, s, tt, nx, ny, nz = t, 1 + cap, x + r, y + r, 0.0, 0.0, 1.0 if cap == 0 else -1.0
    if face < 0:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    return best, face, s, tt, nx, ny, nz


@njit(cache=True)
def _hit_sphere(ox, oy, oz, dx, dy, dz, r, t_best):
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    disc = b * b - a * (ox * ox + oy * oy + oz * oz - r * r)
    if disc < 0.0:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    t = (-b - math.sqrt(disc)) / a
    if t <= T_MIN or t >= t_best:
        return np.inf, 0, 0.0, 0.0, 0.0, 0.0, 0.0
    px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
    ax, ay, az = abs(px), abs(py), abs(pz)
    if ax >= ay and ax >= az:
        face, major, p, q = (0 if px < 0.0 else 1), ax, py, pz
    elif ay >= az:
        face, major, p, q = (2 if py < 0.0 else 3), ay, px, pz
    else:
        face, major, p, q = (4 if pz < 0.0 else 5), az, px, py
    quarter = 0.25 * math.pi
    s = r * (math.atan(p / major) + quarter)
    tt = r * (math.atan(q / major) + quarter)
    return t, face, s, tt, px / r, py / r, pz / r


@njit(cache=True)
def trace(dwx, dwy, dwz, cx, cy, cz, uu, vv, origins, order, rects, kinds, R_ow, dims, bspheres):
    """Nearest hit of the ray C + t d through pixel position (uu, vv): (t, shape index or -1,
    face, s, t_surface, normal (world)). Shapes are tried in ``order`` (nearest first) and
    skipped when (uu, vv) lies outside their conservative image rectangle ``rects[p]``
    (umin, vmin, umax, vmax) or the ray misses their bounding sphere."""
    best_t, best_p, best_face, best_s, best_tt = np.inf, -1, 0, 0.0, 0.0
    nx, ny, nz = 0.0, 0.0, 0.0
    dd = dwx * dwx + dwy * dwy + dwz * dwz
    inv_norm = 1.0 / math.sqrt(dd)
    for k in range(order.shape[0]):
        p = order[k]
        if uu < rects[p, 0] or vv < rects[p, 1] or uu > rects[p, 2] or vv > rects[p, 3]:
            continue
        # cull by the bounding sphere: the ray misses it, or it lies behind the best hit
        ocx, ocy, ocz = bspheres[p, 0] - cx, bspheres[p, 1] - cy, bspheres[p, 2] - cz
        rad = bspheres[p, 3]
        tc = (ocx * dwx + ocy * dwy + ocz * dwz) / dd
        miss2 = ocx * ocx + ocy * ocy + ocz * ocz - tc * tc * dd
        if miss2 > rad * rad or (tc - rad * inv_norm > best_t):
            continue
        R = R_ow[p]
        dx = R[0, 0] * dwx + R[0, 1] * dwy + R[0, 2] * dwz
        dy = R[1, 0] * dwx + R[1, 1] * dwy + R[1, 2] * dwz
        dz = R[2, 0] * dwx + R[2, 1] * dwy + R[2, 2] * dwz
        ox, oy, oz = origins[p, 0], origins[p, 1], origins[p, 2]
        kind = kinds[p]
        if kind == KIND_QUAD:
            hit = _hit_quad(ox, oy, oz, dx, dy, dz, dims[p, 0], dims[p, 1], best_t)
        elif kind == KIND_BOX:
            hit = _hit_box(ox, oy, oz, dx, dy, dz, dims[p, 0], dims[p, 1], dims[p, 2], best_t)
        elif kind == KIND_CYLINDER:
            hit = _hit_cylinder(ox, oy, oz, dx, dy, dz, dims[p, 0], dims[p, 1], best_t)
        else:
            hit = _hit_sphere(ox, oy, oz, dx, dy, dz, dims[p, 0], best_t)
        if hit[0] < best_t:
            best_t, best_p, best_face, best_s, best_tt = hit[0], p, hit[1], hit[2], hit[3]
            # object-frame normal to world: R_ow^T n
            nx = R[0, 0] * hit[4] + R[1, 0] * hit[5] + R[2, 0] * hit[6]
            ny = R[0, 1] * hit[4] + R[1, 1] * hit[5] + R[2, 1] * hit[6]
            nz = R[0, 2] * hit[4] + R[1, 2] * hit[5] + R[2, 2] * hit[6]
    return best_t, best_p, best_face, best_s, best_tt, nx, ny, nz


@njit(cache=True)
def _bilinear(texels, off, w, h, x, y):
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0, y0 = int(x), int(y)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    i00, i01 = off + (y0 * w + x0) * 3, off + (y0 * w + x1) * 3
    i10, i11 = off + (y1 * w + x0) * 3, off + (y1 * w + x1) * 3
    r = (1 - fy) * ((1 - fx) * texels[i00] + fx * texels[i01]) + fy * ((1 - fx) * texels[i10] + fx * texels[i11])
    g = (1 - fy) * ((1 - fx) * texels[i00 + 1] + fx * texels[i01 + 1]) + fy * (
        (1 - fx) * texels[i10 + 1] + fx * texels[i11 + 1]
    )
    b = (1 - fy) * ((1 - fx) * texels[i00 + 2] + fx * texels[i01 + 2]) + fy * (
        (1 - fx) * texels[i10 + 2] + fx * texels[i11 + 2]
    )
    return r, g, b


@njit(cache=True)
def _level_sample(tex, level, s, t, texels, lev_off, lev_w, lev_h, density):
    w, h = lev_w[tex, level], lev_h[tex, level]
    x = s * density[tex] * (w / lev_w[tex, 0]) - 0.5
    y = t * density[tex] * (h / lev_h[tex, 0]) - 0.5
    return _bilinear(texels, lev_off[tex, level], w, h, x, y)


@njit(cache=True)
def sample_texture(tex, s, t, footprint, texels, lev_off, lev_w, lev_h, n_lev, density):
    """Trilinear (mip-mapped) RGB of texture ``tex`` at surface coordinates (s, t) metres, for a
    sample footprint of ``footprint`` level-0 texels."""
    lam = math.log2(footprint) if footprint > 1.0 else 0.0
    top = n_lev[tex] - 1
    if lam >= top:
        return _level_sample(tex, top, s, t, texels, lev_off, lev_w, lev_h, density)
    l0 = int(lam)
    f = lam - l0
    r, g, b = _level_sample(tex, l0, s, t, texels, lev_off, lev_w, lev_h, density)
    if f > 0.0:
        r1, g1, b1 = _level_sample(tex, l0 + 1, s, t, texels, lev_off, lev_w, lev_h, density)
        r, g, b = r + f * (r1 - r), g + f * (g1 - g), b + f * (b1 - b)
    return r, g, b


@njit(cache=True)
def _local_origins(C, R_ow, t_ow):
    n = R_ow.shape[0]
    out = np.empty((n, 3))
    for p in range(n):
        for i in range(3):
            out[p, i] = R_ow[p, i, 0] * C[0] + R_ow[p, i, 1] * C[1] + R_ow[p, i, 2] * C[2] + t_ow[p, i]
    return out


@njit(cache=True)
def _camera_ray(uu, vv, row, col, Kinv, rays):
    """Camera-frame ray (x, y, 1) of the pixel position (uu, vv): from K^-1, or entry
    (row, col) of the precomputed grid when ``rays`` is not empty."""
    if rays.shape[0] == 0:
        return Kinv[0, 0] * uu + Kinv[0, 1] * vv + Kinv[0, 2], Kinv[1, 1] * vv + Kinv[1, 2], 1.0
    return rays[row, col, 0], rays[row, col, 1], rays[row, col, 2]


@njit(parallel=True, cache=True)
def render_rgb(
    out, ss, Kinv, rays, R_wc, C, inv_focal, order, rects, kinds, R_ow, t_ow, dims, bspheres, face_tex,
    texels, lev_off, lev_w, lev_h, n_lev, density, light, ambient, sky_horizon, sky_zenith,
):  # fmt: skip
    """Fill ``out`` (H, W, 3) uint8 with the ss x ss supersampled render (box filter over each pixel)."""
    H, W = out.shape[0], out.shape[1]
    origins = _local_origins(C, R_ow, t_ow)
    footprint_scale = inv_focal / ss  # metres per sub-sample per unit depth
    norm = 1.0 / (ss * ss)
    for v in prange(H):
        for u in range(W):
            acc_r, acc_g, acc_b = 0.0, 0.0, 0.0
            for j in range(ss):
                for i in range(ss):
                    uu = u + (i + 0.5) / ss - 0.5
                    vv = v + (j + 0.5) / ss - 0.5
                    xc, yc, zc = _camera_ray(uu, vv, v * ss + j, u * ss + i, Kinv, rays)
                    if not (math.isfinite(xc) and math.isfinite(yc)):
                        continue  # outside the lens model's valid region: black
                    dwx = R_wc[0, 0] * xc + R_wc[0, 1] * yc + R_wc[0, 2] * zc
                    dwy = R_wc[1, 0] * xc + R_wc[1, 1] * yc + R_wc[1, 2] * zc
                    dwz = R_wc[2, 0] * xc + R_wc[2, 1] * yc + R_wc[2, 2] * zc
                    t, p, face, s, tt, nx, ny, nz = trace(
                        dwx, dwy, dwz, C[0], C[1], C[2], uu, vv, origins, order, rects, kinds, R_ow, dims, bspheres
                    )
                    dn = math.sqrt(dwx * dwx + dwy * dwy + dwz * dwz)
                    if p < 0:
                        a = min(1.0, max(0.0, dwz / dn))
                        acc_r += sky_horizon[0] + a * (sky_zenith[0] - sky_horizon[0])
                        acc_g += sky_horizon[1] + a * (sky_zenith[1] - sky_horizon[1])
                        acc_b += sky_horizon[2] + a * (sky_zenith[2] - sky_horizon[2])
                        continue
                    cos_view = (nx * dwx + ny * dwy + nz * dwz) / dn
                    if cos_view > 0.0:  # turn the normal towards the viewer
                        nx, ny, nz, cos_view = -nx, -ny, -nz, -cos_view
                    tex = face_tex[p, face]
                    footprint = t * footprint_scale * density[tex] / math.sqrt(max(-cos_view, MIN_COS))
                    r, g, b = sample_texture(tex, s, tt, footprint, texels, lev_off, lev_w, lev_h, n_lev, density)
                    shade = ambient + (1.0 - ambient) * max(0.0, nx * light[0] + ny * light[1] + nz * light[2])
                    acc_r += r * shade
                    acc_g += g * shade
                    acc_b += b * shade
            out[v, u, 0] = np.uint8(min(255.0, acc_r * norm + 0.5))
            out[v, u, 1] = np.uint8(min(255.0, acc_g * norm + 0.5))
            out[v, u, 2] = np.uint8(min(255.0, acc_b * norm + 0.5))


@njit(parallel=True, cache=True)
def render_depth(depth, shape_idx, Kinv, rays, R_wc, C, order, rects, kinds, R_ow, t_ow, dims, bspheres):
    """Depth z_cam (inf: no hit) and the index of the visible shape (-1) along each pixel-centre ray."""
    H, W = depth.shape
    origins = _local_origins(C, R_ow, t_ow)
    for v in prange(H):
        for u in range(W):
            xc, yc, zc = _camera_ray(float(u), float(v), v, u, Kinv, rays)
            if not (math.isfinite(xc) and math.isfinite(yc)):
                depth[v, u], shape_idx[v, u] = np.nan, -1
                continue
            dwx = R_wc[0, 0] * xc + R_wc[0, 1] * yc + R_wc[0, 2] * zc
            dwy = R_wc[1, 0] * xc + R_wc[1, 1] * yc + R_wc[1, 2] * zc
            dwz = R_wc[2, 0] * xc + R_wc[2, 1] * yc + R_wc[2, 2] * zc
            hit = trace(
                dwx, dwy, dwz, C[0], C[1], C[2], float(u), float(v), origins, order, rects, kinds, R_ow, dims, bspheres
            )
            depth[v, u], shape_idx[v, u] = hit[0], hit[1]
