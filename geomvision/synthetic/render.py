"""Render a :class:`TexturedScene` through a :class:`Camera` at a pose ``cam_from_world``.

Exact per-pixel ray casting (numba, parallel over rows) against the shapes' true geometry, so
occlusions are exact and pixel (u, v) shows the surface point X with
``camera.img_from_cam(cam_from_world.apply(X)) == (u, v)`` (pixel (0, 0) = centre of the
top-left pixel). Each pixel averages ``supersample`` x ``supersample`` rays spread evenly over
its square (a box filter centred on the pixel centre), and each ray reads its texture
trilinearly from a mip-map level matched to its footprint, so edges and texture detail are
anti-aliased and features are sub-pixel stable. Lens distortion is rendered exactly: rays come
from ``camera.cam_from_img``. Shading is ambient + Lambert from a fixed light: nothing depends
on the viewpoint except visibility, so features match across views. Deterministic. Cameras
must lie outside the closed solids (a solid around the camera is invisible from inside).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_int
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3, camera_center
from . import _render_kernels as kern
from .shapes import KIND_BOX, KIND_CYLINDER, KIND_QUAD, TexturedScene
from .textures import mipmaps

MAX_SUPERSAMPLE = 8


@dataclass(frozen=True)
class _PackedScene:
    kinds: np.ndarray  # (P,) int64 shape kind
    R_ow: np.ndarray  # (P,3,3) object_from_world rotations
    t_ow: np.ndarray  # (P,3)
    dims: np.ndarray  # (P,3)
    bspheres: np.ndarray  # (P,4) world bounding spheres (centre, radius)
    corners: np.ndarray  # (P,8,3) world corners of each shape's object-frame bounding box
    face_tex: np.ndarray  # (P,6) texture index per face, -1 unused
    texels: np.ndarray  # flat uint8 RGB of every mip level of every texture
    lev_off: np.ndarray  # (T,L) int64 offset of a level in texels
    lev_w: np.ndarray  # (T,L) int64
    lev_h: np.ndarray  # (T,L) int64
    n_lev: np.ndarray  # (T,) int64
    density: np.ndarray  # (T,) texels per metre at level 0


def _pack(scene: TexturedScene) -> _PackedScene:
    """Flatten the scene into arrays for the kernels (done once per scene, then cached)."""
    if scene._packed is not None:
        return scene._packed
    P = len(scene.shapes)
    kinds = np.array([s.kind for s in scene.shapes], dtype=np.int64)
    object_from_world = [s.world_from_object.inverse() for s in scene.shapes]
    R_ow = np.ascontiguousarray(np.stack([T.R for T in object_from_world]))
    t_ow = np.ascontiguousarray(np.stack([T.t for T in object_from_world]))
    dims = np.ascontiguousarray(np.stack([s.dims for s in scene.shapes]))
    bspheres = np.zeros((P, 4))
    corners = np.stack([s.world_from_object.apply(_box_corners(s)) for s in scene.shapes])
    for p, s in enumerate(scene.shapes):
        centre, radius = s.bounding_sphere()
        bspheres[p, :3], bspheres[p, 3] = centre, radius * (1.0 + 1e-9) + 1e-9
    # one entry per distinct Texture object (a texture may be shared by faces)
    index: dict[int, int] = {}
    textures = []
    face_tex = np.full((P, 6), -1, dtype=np.int64)
    for p, s in enumerate(scene.shapes):
        for f, tex in enumerate(s.textures):
            if id(tex) not in index:
                index[id(tex)] = len(textures)
                textures.append(tex)
            face_tex[p, f] = index[id(tex)]
    pyramids = [mipmaps(t.image) for t in textures]
    T, L = len(pyramids), max(len(pyr) for pyr in pyramids)
    lev_off, lev_w, lev_h = (np.zeros((T, L), dtype=np.int64) for _ in range(3))
    chunks, offset = [], 0
    for k, pyr in enumerate(pyramids):
        for level, img in enumerate(pyr):
            lev_off[k, level], lev_h[k, level], lev_w[k, level] = offset, img.shape[0], img.shape[1]
            chunks.append(img.ravel())
            offset += img.size
    packed = _PackedScene(
        kinds, R_ow, t_ow, dims, bspheres, corners, face_tex, np.concatenate(chunks), lev_off, lev_w, lev_h,
        np.array([len(p) for p in pyramids], dtype=np.int64),
        np.array([t.texels_per_metre for t in textures]),
    )  # fmt: skip
    scene._packed = packed
    return packed


def _box_corners(shape) -> np.ndarray:
    """(8,3) corners of an object-frame box enclosing the shape."""
    a, b, c = shape.dims
    if shape.kind == KIND_QUAD:
        lo, hi = (-a / 2, -b / 2, 0.0), (a / 2, b / 2, 0.0)
    elif shape.kind == KIND_BOX:
        lo, hi = (-a / 2, -b / 2, 0.0), (a / 2, b / 2, c)
    elif shape.kind == KIND_CYLINDER:
        lo, hi = (-a, -a, 0.0), (a, a, b)
    else:
        lo, hi = (-a, -a, -a), (a, a, a)
    return np.array([[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def _culling(pk: _PackedScene, camera: Camera, cam_from_world: Rigid3) -> tuple[np.ndarray, np.ndarray]:
    """(order (P,), rects (P,4)): shapes sorted by the distance of their bounding spheres
    (nearest first), and a conservative image rectangle (umin, vmin, umax, vmax) per shape
    outside which no ray can hit it: the bounding box of its projected box corners when all
    lie in front of a pinhole camera, else the whole plane."""
    C = camera_center(cam_from_world)
    near = np.linalg.norm(pk.bspheres[:, :3] - C, axis=1) - pk.bspheres[:, 3]
    order = np.argsort(near, kind="stable").astype(np.int64)
    rects = np.tile([-np.inf, -np.inf, np.inf, np.inf], (len(pk.kinds), 1))
    if camera.has_distortion:
        return order, rects
    X_cam = cam_from_world.apply(pk.corners.reshape(-1, 3)).reshape(pk.corners.shape)
    in_front = np.all(X_cam[:, :, 2] > 1e-6, axis=1)
    if np.any(in_front):
        uv = camera.img_from_cam(X_cam[in_front].reshape(-1, 3)).reshape(-1, 8, 2)
        margin = 1.0  # pixels: far more than the rounding of the projection
        rects[in_front, :2] = uv.min(axis=1) - margin
        rects[in_front, 2:] = uv.max(axis=1) + margin
    return order, rects


def _check_inputs(scene, camera, cam_from_world) -> None:
    if not isinstance(scene, TexturedScene):
        raise ValueError(f"scene must be a TexturedScene (e.g. demo_scene()), got {type(scene).__name__}")
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geomvision Camera, got {type(camera).__name__}")
    if not isinstance(cam_from_world, Rigid3):
        raise ValueError(f"cam_from_world must be a Rigid3, got {type(cam_from_world).__name__}")


def _rays(camera: Camera, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """(Kinv, ray grid): the kernels compute pinhole rays from K^-1; distorted cameras get an
    (H ss, W ss, 3) grid of z = 1 rays of the sub-sample positions from ``cam_from_img``."""
    Kinv = np.linalg.inv(camera.K)
    if not camera.has_distortion:
        return Kinv, np.zeros((0, 0, 3))
    offsets = (np.arange(ss) + 0.5) / ss - 0.5
    us = (np.arange(camera.width)[:, None] + offsets[None, :]).ravel()
    vs = (np.arange(camera.height)[:, None] + offsets[None, :]).ravel()
    uu, vv = np.meshgrid(us, vs)
    rays = camera.cam_from_img(np.column_stack([uu.ravel(), vv.ravel()]))
    return Kinv, np.ascontiguousarray(rays.reshape(len(vs), len(us), 3))


def render_image(scene: TexturedScene, camera: Camera, cam_from_world: Rigid3, *, supersample: int = 2) -> np.ndarray:
    """RGB image (camera.height, camera.width, 3) uint8 of ``scene`` seen from ``cam_from_world``.

    ``supersample`` (1..8): rays per pixel along each axis (box-filtered anti-aliasing).
    """
    _check_inputs(scene, camera, cam_from_world)
    ss = check_int(supersample, "supersample", minimum=1)
    if ss > MAX_SUPERSAMPLE:
        raise ValueError(f"supersample must be <= {MAX_SUPERSAMPLE}, got {ss}")
    pk = _pack(scene)
    Kinv, rays = _rays(camera, ss)
    order, rects = _culling(pk, camera, cam_from_world)
    world_from_cam = cam_from_world.inverse()
    out = np.empty((camera.height, camera.width, 3), dtype=np.uint8)
    kern.render_rgb(
        out, ss, Kinv, rays, world_from_cam.R, world_from_cam.t, 1.0 / camera.mean_focal_length, order, rects,
        pk.kinds, pk.R_ow, pk.t_ow, pk.dims, pk.bspheres, pk.face_tex,
        pk.texels, pk.lev_off, pk.lev_w, pk.lev_h, pk.n_lev, pk.density,
        scene.light_direction, scene.ambient, scene.sky_horizon, scene.sky_zenith,
    )  # fmt: skip
    return out


def render_depth(scene: TexturedScene, camera: Camera, cam_from_world: Rigid3) -> tuple[np.ndarray, np.ndarray]:
    """Exact depth along each pixel-centre ray: ``(depth (H, W) float64, shape_idx (H, W) int64)``.

    ``depth`` is z in the camera frame of the visible surface (inf where the ray hits nothing,
    NaN outside a lens model's valid region); ``shape_idx`` indexes ``scene.shapes`` (-1: none).
    The surface point of pixel uv is ``cam_from_world.inverse().apply(depth * camera.cam_from_img(uv))``.
    """
    _check_inputs(scene, camera, cam_from_world)
    pk = _pack(scene)
    Kinv, rays = _rays(camera, 1)
    order, rects = _culling(pk, camera, cam_from_world)
    world_from_cam = cam_from_world.inverse()
    depth = np.empty((camera.height, camera.width))
    shape_idx = np.empty((camera.height, camera.width), dtype=np.int64)
    kern.render_depth(
        depth, shape_idx, Kinv, rays, world_from_cam.R, world_from_cam.t, order, rects,
        pk.kinds, pk.R_ow, pk.t_ow, pk.dims, pk.bspheres,
    )  # fmt: skip
    return depth, shape_idx
