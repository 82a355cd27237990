"""Renderer geometry against exact ground truth: marker spheres and texture dots land where the
camera model projects them, depth and occlusion equal a per-shape brute force, and the hits
follow the documented face table."""

import math

import cv2
import numpy as np
import pytest

from geomvision import Camera, Rigid3
from geomvision.geometry.rotation import random_rotation
from geomvision.synthetic import (
    Box,
    Cylinder,
    Quad,
    Sphere,
    Texture,
    TexturedScene,
    procedural_texture,
    render_depth,
    render_image,
)
from geomvision.synthetic import _render_kernels as kern
from geomvision.synthetic.render import _culling, _pack

WHITE = Texture(np.full((4, 4, 3), 255, dtype=np.uint8), 1.0)
BLACK = Texture(np.zeros((4, 4, 3), dtype=np.uint8), 1.0)

CAMERAS = {
    "PINHOLE": Camera("PINHOLE", 640, 480, [610.0, 590.0, 331.3, 227.8]),
    "PINHOLE_SKEW": Camera("PINHOLE_SKEW", 640, 480, [600.0, 605.0, 4.0, 318.2, 241.6]),
    "OPENCV": Camera("OPENCV", 640, 480, [600.0, 598.0, 322.0, 236.0, -0.15, 0.03, 1e-3, -8e-4]),
    "OPENCV_FISHEYE": Camera("OPENCV_FISHEYE", 640, 480, [420.0, 421.0, 320.5, 239.0, 0.04, -0.01, 0.003, -0.001]),
}


def _dark_blob_centroids(gray: np.ndarray, background: int = 255) -> np.ndarray:
    """Darkness-weighted centroids (K,2) of the connected regions darker than the background."""
    mask = (gray < background).astype(np.uint8)
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    weight = (background - gray.astype(np.float64)).ravel()
    v, u = np.indices(gray.shape)
    lab = labels.ravel()
    w_sum = np.bincount(lab, weight, n)[1:]
    cu = np.bincount(lab, weight * u.ravel(), n)[1:] / w_sum
    cv = np.bincount(lab, weight * v.ravel(), n)[1:] / w_sum
    return np.column_stack([cu, cv])


def _nearest(found: np.ndarray, expected: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(found[None, :, :] - expected[:, None, :], axis=2)
    return d.min(axis=1)


def _silhouette_centres(K: np.ndarray, X_cam: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Exact centres (N,2) of the ellipses a pinhole camera K sees of spheres (X_cam, radius):
    the silhouette is the conic x^T K^-T (X X^T - (|X|^2 - r^2) I) K^-1 x = 0."""
    Kinv = np.linalg.inv(K)
    out = []
    for X, r in zip(X_cam, radius):
        Q = Kinv.T @ (np.outer(X, X) - (X @ X - r * r) * np.eye(3)) @ Kinv
        out.append(np.linalg.solve(Q[:2, :2], -Q[:2, 2]))
    return np.array(out)


def _points_spread_in_image(camera: Camera, rng, n: int, min_sep_px: float, margin_px: float) -> np.ndarray:
    uv = []
    while len(uv) < n:
        cand = rng.uniform([margin_px, margin_px], [camera.width - 1 - margin_px, camera.height - 1 - margin_px])
        if all(np.hypot(*(cand - q)) >= min_sep_px for q in uv):
            uv.append(cand)
    return np.array(uv)


@pytest.mark.parametrize("model", CAMERAS)
def test_marker_spheres_project_where_the_camera_model_says(model, rng):
    """Small black spheres on a white wall: their rendered centroids match
    camera.img_from_cam(cam_from_world.apply(X)) of their centres to < 0.1 px."""
    camera = CAMERAS[model]
    cam_from_world = Rigid3.look_at(np.array([0.3, -6.0, 1.7]), np.array([0.1, 0.0, 1.2]))
    world_from_cam = cam_from_world.inverse()
    uv = _points_spread_in_image(camera, rng, 24, min_sep_px=40.0, margin_px=25.0)
    depth = rng.uniform(3.0, 8.0, len(uv))
    X_world = world_from_cam.apply(camera.cam_from_img(uv) * depth[:, None])
    radius = 5.0 * depth / camera.mean_focal_length  # about 5 px in the image
    shapes = [Sphere(Rigid3(random_rotation(rng), X), r, BLACK) for X, r in zip(X_world, radius)]
    wall_pose = Rigid3(world_from_cam.R, world_from_cam.apply(np.array([0.0, 0.0, 12.0])))  # facing the camera
    shapes.append(Quad(wall_pose, (60.0, 60.0), WHITE))
    image = render_image(TexturedScene(shapes, ambient=1.0), camera, cam_from_world)
    assert np.all(image[..., 0] == image[..., 1])
    found = _dark_blob_centroids(image[..., 0])
    assert len(found) == len(uv)
    expected = camera.img_from_cam(cam_from_world.apply(X_world))
    np.testing.assert_allclose(expected, uv, atol=1e-6)
    err = _nearest(found, expected)
    assert err.max() < 0.1, err


def test_sphere_silhouettes_match_the_exact_conic_centres(rng):
    """Finer check for a pinhole camera with skew: a sphere's silhouette centre is off its
    projected centre by f (r/Z)^2 tan(angle), and 2x2 supersampling quantises edge coverage
    (~0.03 px on a 5 px disc); with 8x8 rays per pixel, against the exact centres of the
    silhouette conics x^T K^-T (X X^T - (|X|^2 - r^2) I) K^-1 x = 0, only ~0.005 px remain."""
    camera = Camera("PINHOLE_SKEW", 320, 240, [300.0, 302.0, 2.0, 158.7, 121.2])
    uv = _points_spread_in_image(camera, rng, 12, min_sep_px=30.0, margin_px=15.0)
    depth = rng.uniform(2.0, 6.0, len(uv))
    X_cam = camera.cam_from_img(uv) * depth[:, None]
    radius = 5.0 * depth / camera.mean_focal_length
    shapes = [Sphere(Rigid3(random_rotation(rng), X), r, BLACK) for X, r in zip(X_cam, radius)]
    shapes.append(Quad(Rigid3(np.eye(3), np.array([0.0, 0.0, 10.0])), (40.0, 40.0), WHITE))
    image = render_image(TexturedScene(shapes, ambient=1.0), camera, Rigid3(), supersample=8)
    found = _dark_blob_centroids(image[..., 0])
    assert len(found) == len(uv)
    exact = _silhouette_centres(camera.K, X_cam, radius)
    assert 0.002 < np.max(np.linalg.norm(exact - uv, axis=1)) < 0.05  # the perspective offset is real
    err = _nearest(found, exact)
    assert err.max() < 0.02, err
    assert np.median(err) < 0.01


def test_texture_dots_sit_at_their_surface_coordinates(rng):
    """Dots drawn into a texture at surface coordinates (s, t) appear at the projection of the
    3-D point those coordinates name on an obliquely seen quad (texel-centre convention)."""
    density = 300.0
    size = (2.0, 1.5)
    h, w = int(size[1] * density), int(size[0] * density)
    st = np.column_stack([rng.uniform(0.1, size[0] - 0.1, 400), rng.uniform(0.1, size[1] - 0.1, 400)])
    keep = [0]
    for k in range(1, len(st)):
        if len(keep) < 30 and np.min(np.linalg.norm(st[keep] - st[k], axis=1)) > 0.18:
            keep.append(k)
    st = st[keep]
    # anti-aliased discs of radius 4 texels centred at texel coordinate s * density - 0.5
    rows, cols = np.indices((h, w), dtype=np.float64)
    alpha = np.zeros((h, w))
    for s, t in st:
        dist = np.hypot(cols - (s * density - 0.5), rows - (t * density - 0.5))
        alpha = np.maximum(alpha, np.clip(4.5 - dist, 0.0, 1.0))
    tex = np.repeat(np.round(255.0 * (1.0 - alpha)).astype(np.uint8)[..., None], 3, axis=2)
    R = np.array([[math.cos(0.6), 0.0, math.sin(0.6)], [0.0, 1.0, 0.0], [-math.sin(0.6), 0.0, math.cos(0.6)]])
    quad_pose = Rigid3(R, np.array([0.2, -0.1, 3.2]))  # world = camera frame here
    backdrop = Quad(Rigid3(np.eye(3), np.array([0.0, 0.0, 20.0])), (80.0, 80.0), WHITE)
    scene = TexturedScene([Quad(quad_pose, size, Texture(tex, density)), backdrop], ambient=1.0)
    camera = CAMERAS["PINHOLE"]
    image = render_image(scene, camera, Rigid3())
    X_world = quad_pose.apply(np.column_stack([st - 0.5 * np.array(size), np.zeros(len(st))]))
    expected = camera.img_from_cam(X_world)
    found = _dark_blob_centroids(image[..., 0])
    assert len(found) == len(st)
    err = _nearest(found, expected)
    assert err.max() < 0.1, err


def _random_shapes(rng, n: int, tex: Texture) -> list:
    shapes = []
    for k in range(n):
        pose = Rigid3(random_rotation(rng), rng.uniform([-1.2, -1.2, 4.0], [1.2, 1.2, 9.0]))
        kind = k % 4
        if kind == 0:
            shapes.append(Quad(pose, rng.uniform(0.5, 2.0, 2), tex))
        elif kind == 1:
            shapes.append(Box(pose, rng.uniform(0.3, 1.5, 3), tex))
        elif kind == 2:
            shapes.append(Cylinder(pose, rng.uniform(0.2, 0.6), rng.uniform(0.4, 1.5), tex))
        else:
            shapes.append(Sphere(pose, rng.uniform(0.2, 0.8), tex))
    return shapes


def test_depth_and_occlusion_equal_a_per_shape_brute_force(rng):
    """With many overlapping shapes the depth is exactly the minimum of the shapes' own depths
    and the visible shape is its argmin (culling never drops a visible surface)."""
    tex = Texture(procedural_texture(32, 32, rng=rng), 50.0)
    shapes = _random_shapes(rng, 20, tex)
    camera = CAMERAS["PINHOLE"]
    cam_from_world = Rigid3.look_at(np.array([0.3, -0.2, 1.5]), np.array([0.0, 0.0, 6.5]), up=(0.0, -1.0, 0.0))
    depth, idx = render_depth(TexturedScene(shapes), camera, cam_from_world)
    alone = np.stack([render_depth(TexturedScene([s]), camera, cam_from_world)[0] for s in shapes])
    assert np.isfinite(depth).mean() > 0.3  # the shapes cover a good part of the image
    assert (np.isfinite(alone).sum(axis=0) >= 2).mean() > 0.15  # and occlude each other
    np.testing.assert_array_equal(depth, alone.min(axis=0))
    hit = np.isfinite(depth)
    np.testing.assert_array_equal(idx[hit], alone.argmin(axis=0)[hit])
    assert np.all(idx[~hit] == -1)


def _expected_face_st(kind: int, dims: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face table of geomvision.synthetic.shapes, evaluated in numpy: (residual, face, st)."""
    x, y, z = X.T
    if kind == 0:
        sx, sy = dims[:2]
        return np.abs(z), np.zeros(len(X), int), np.column_stack([x + sx / 2, y + sy / 2])
    if kind == 1:
        sx, sy, sz = dims
        gaps = np.column_stack(
            [np.abs(x + sx / 2), np.abs(x - sx / 2), np.abs(y + sy / 2), np.abs(y - sy / 2), np.abs(z), np.abs(z - sz)]
        )
        face = gaps.argmin(axis=1)
        st_yz, st_xz, st_xy = (np.column_stack(c) for c in ((y + sy / 2, z), (x + sx / 2, z), (x + sx / 2, y + sy / 2)))
        st = np.where(face[:, None] < 2, st_yz, np.where(face[:, None] < 4, st_xz, st_xy))
        return gaps.min(axis=1), face, st
    if kind == 2:
        r, h = dims[:2]
        side = np.abs(np.hypot(x, y) - r)
        caps = np.column_stack([side, np.abs(z - h), np.abs(z)])
        face = caps.argmin(axis=1)
        st = np.where(
            face[:, None] == 0, np.column_stack([r * (np.arctan2(y, x) + np.pi), z]), np.column_stack([x + r, y + r])
        )
        return caps.min(axis=1), face, st
    r = dims[0]
    major = np.abs(X).argmax(axis=1)
    face = 2 * major + (X[np.arange(len(X)), major] > 0)
    pq = np.where(major[:, None] == 0, X[:, [1, 2]], np.where(major[:, None] == 1, X[:, [0, 2]], X[:, [0, 1]]))
    m = np.abs(X[np.arange(len(X)), major])[:, None]
    return np.abs(np.linalg.norm(X, axis=1) - r), face, r * (np.arctan(pq / m) + np.pi / 4)


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_hits_follow_the_face_table(kind, rng):
    """Every hit lies on the shape's surface, on the side facing the ray, with the face index
    and surface coordinates (s, t) of the documented table (textures are glued to surfaces)."""
    tex = Texture(np.zeros((2, 2, 3), dtype=np.uint8), 1.0)
    shape = _random_shapes(rng, 4, tex)[kind]
    scene = TexturedScene([shape])
    camera = CAMERAS["PINHOLE"]
    centre, radius = shape.bounding_sphere()
    pk = _pack(scene)
    hits = []
    for direction in rng.normal(size=(6, 3)):  # views from all around: every face gets hit
        C = centre + 3.0 * radius * direction / np.linalg.norm(direction)
        cam_from_world = Rigid3.look_at(C, centre, up=rng.normal(size=3))
        order, rects = _culling(pk, camera, cam_from_world)
        origins = kern._local_origins(C, pk.R_ow, pk.t_ow)
        uv = rng.uniform([0, 0], [camera.width - 1, camera.height - 1], size=(1000, 2))
        d_world = cam_from_world.inverse().apply_rotation(camera.cam_from_img(uv))
        for (u, v), d in zip(uv, d_world):
            t, p, face, s, tt, nx, ny, nz = kern.trace(
                d[0], d[1], d[2], *C, u, v, origins, order, rects, pk.kinds, pk.R_ow, pk.dims, pk.bspheres
            )
            if p >= 0:
                hits.append((t, face, s, tt, nx, ny, nz, *d, *C))
    hits = np.array(hits)
    assert len(hits) > 500
    X_obj = shape.world_from_object.inverse().apply(hits[:, 10:13] + hits[:, :1] * hits[:, 7:10])
    residual, face, st = _expected_face_st(kind, shape.dims, X_obj)
    assert residual.max() < 1e-9
    np.testing.assert_array_equal(hits[:, 1].astype(int), face)
    assert len(np.unique(face)) == shape.n_faces
    np.testing.assert_allclose(hits[:, 2:4], st, atol=1e-9)
    if kind != 0:  # closed solids: the outward normal faces the ray (a quad is two-sided)
        assert np.all(np.einsum("ij,ij->i", hits[:, 4:7], hits[:, 7:10]) <= 1e-12)
