"""Synthetic scenes with exact ground truth, for tests, benchmarks and demos.

Each generator returns a :class:`SyntheticScene`: one shared camera, the true poses and points,
and every observation as flat arrays (image index, point index, noisy pixel, true pixel,
outlier flag). Pixel noise is Gaussian (``noise_px`` per coordinate); an ``outlier_ratio`` of
observations is replaced by uniform random pixels. Everything is seeded by ``rng``.

Scenes: :func:`orbit_scene` (cameras on a circle looking inwards), :func:`forward_scene`
(camera moving forward through a corridor), :func:`rotation_scene` (pure rotation about a fixed
centre: homography-related views), :func:`planar_scene` (points on a plane).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import RngLike, as_rng, check_int, check_positive, check_probability
from ..geometry.camera import Camera
from ..geometry.projection import project_points
from ..geometry.rigid import Rigid3
from ..geometry.rotation import so3_exp
from ..scene.reconstruction import Reconstruction


@dataclass
class SyntheticScene:
    camera: Camera
    cams_from_world: list[Rigid3]
    X_world: np.ndarray  # (P,3)
    obs_image_idx: np.ndarray  # (M,) index into cams_from_world
    obs_point_idx: np.ndarray  # (M,) index into X_world
    obs_uv: np.ndarray  # (M,2) noisy (and possibly outlier) pixels
    obs_uv_true: np.ndarray  # (M,2) exact projections
    obs_is_outlier: np.ndarray  # (M,) bool

    @property
    def num_images(self) -> int:
        return len(self.cams_from_world)

    def pair(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Correspondences between images i and j over the points both see:
        (x1 (K,2), x2 (K,2), point_idx (K,), is_outlier (K,) — either observation an outlier)."""
        a = self._view(i)
        b = self._view(j)
        common, ia, ib = np.intersect1d(a[0], b[0], return_indices=True)
        return a[1][ia], b[1][ib], common, a[2][ia] | b[2][ib]

    def _view(self, i: int):
        m = self.obs_image_idx == i
        return self.obs_point_idx[m], self.obs_uv[m], self.obs_is_outlier[m]

    def view(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations of image i: (uv (K,2), X_world (K,3), is_outlier (K,)) — 2D-3D matches."""
        pidx, uv, out = self._view(i)
        return uv, self.X_world[pidx], out

    def relative_pose(self, i: int, j: int) -> Rigid3:
        """Ground-truth ``cam_j_from_cam_i``."""
        return self.cams_from_world[j] @ self.cams_from_world[i].inverse()

    def to_reconstruction(self, *, with_poses: bool = True, with_points: bool = True) -> Reconstruction:
        """A Reconstruction with one camera, one image per view (keypoints = the observations,
        named ``image_0000.png`` ...) and, optionally, the true poses and points with their tracks."""
        rec = Reconstruction()
        cid = rec.add_camera(self.camera, camera_id=1)
        kp_idx = np.empty(len(self.obs_uv), dtype=np.int64)
        for i, T in enumerate(self.cams_from_world):
            m = np.flatnonzero(self.obs_image_idx == i)
            kp_idx[m] = np.arange(len(m))
            rec.add_image(f"image_{i:04d}.png", cid, self.obs_uv[m], T if with_poses else None, image_id=i + 1)
        if with_points and with_poses:
            order = np.argsort(self.obs_point_idx, kind="stable")
            pts, start = np.unique(self.obs_point_idx[order], return_index=True)
            for p, obs in zip(pts, np.split(order, start[1:])):
                if len(obs) < 2:
                    continue
                track = np.stack([self.obs_image_idx[obs] + 1, kp_idx[obs]], axis=1)
                rec.add_point3D(self.X_world[p], track, color=(200, 200, 200), point3D_id=int(p) + 1)
        return rec


def _default_camera(camera: Camera | None) -> Camera:
    if camera is None:
        return Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5])
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
    return camera


def project_visible(camera: Camera, cam_from_world: Rigid3, X_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N,2) of the points X_world (N,3) and which of them the camera sees (N,) bool: in
    front of it and inside the image."""
    uv, depth = project_points(X_world, camera, cam_from_world)
    ok = (depth > 0) & np.isfinite(uv).all(1)
    ok &= (uv[:, 0] >= 0) & (uv[:, 0] <= camera.width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= camera.height - 1)
    return uv, ok


def _observe(
    camera: Camera,
    cams_from_world: list[Rigid3],
    X_world: np.ndarray,
    noise_px: float,
    outlier_ratio: float,
    gen: np.random.Generator,
) -> SyntheticScene:
    noise_px = check_positive(noise_px, "noise_px", allow_zero=True)
    outlier_ratio = check_probability(outlier_ratio, "outlier_ratio", open_interval=False)
    img_idx, pt_idx, uv_true = [], [], []
    for i, T in enumerate(cams_from_world):
        uv, ok = project_visible(camera, T, X_world)
        idx = np.flatnonzero(ok)
        img_idx.append(np.full(len(idx), i, dtype=np.int64))
        pt_idx.append(idx)
        uv_true.append(uv[idx])
    img_idx = np.concatenate(img_idx)
    pt_idx = np.concatenate(pt_idx)
    uv_true = np.concatenate(uv_true)
    uv = uv_true + gen.normal(scale=noise_px, size=uv_true.shape) if noise_px > 0 else uv_true.copy()
    is_out = gen.random(len(uv)) < outlier_ratio
    n_out = int(is_out.sum())
    if n_out:
        uv[is_out] = gen.uniform([0, 0], [camera.width - 1, camera.height - 1], size=(n_out, 2))
    return SyntheticScene(camera, list(cams_from_world), X_world, img_idx, pt_idx, uv, uv_true, is_out)


def orbit_scene(
    n_images: int = 8,
    n_points: int = 500,
    *,
    radius: float = 6.0,
    arc_deg: float = 90.0,
    height: float = 1.0,
    noise_px: float = 0.0,
    outlier_ratio: float = 0.0,
    camera: Camera | None = None,
    points: str = "cube",
    rng: RngLike = None,
) -> SyntheticScene:
    """Cameras on a circular arc of ``arc_deg`` degrees of ``radius`` at ``height`` above the
    origin, each looking at the origin (z up). ``points``: "cube", points filling a 2x2x2 cube
    at the origin; "terrain", points on a smooth surface z = 0.3 sin(2x) cos(1.5y) - 0.5 over
    the square |x|, |y| <= 2 (neighbouring pixels see neighbouring depths, as on real surfaces;
    occlusion is not modelled: keep ``height`` well above the surface)."""
    n_images = check_int(n_images, "n_images", minimum=1)
    n_points = check_int(n_points, "n_points", minimum=1)
    radius = check_positive(radius, "radius")
    gen = as_rng(rng)
    if points == "cube":
        X = gen.uniform(-1.0, 1.0, size=(n_points, 3))
    elif points == "terrain":
        xy = gen.uniform(-2.0, 2.0, size=(n_points, 2))
        X = np.column_stack([xy, 0.3 * np.sin(2.0 * xy[:, 0]) * np.cos(1.5 * xy[:, 1]) - 0.5])
    else:
        raise ValueError(f'points must be "cube" or "terrain", got {points!r}')
    angles = np.radians(np.linspace(-arc_deg / 2, arc_deg / 2, n_images)) if n_images > 1 else np.zeros(1)
    cams = []
    for a in angles:
        C = np.array([radius * np.sin(a), -radius * np.cos(a), height])
        T = Rigid3.look_at(C, gen.normal(scale=0.05, size=3))
        cams.append(T)
    return _observe(_default_camera(camera), cams, X, noise_px, outlier_ratio, gen)


def forward_scene(
    n_images: int = 8,
    n_points: int = 800,
    *,
    step: float = 0.5,
    noise_px: float = 0.0,
    outlier_ratio: float = 0.0,
    camera: Camera | None = None,
    rng: RngLike = None,
) -> SyntheticScene:
    """A camera moving along +z (its viewing direction) by ``step`` per image through a corridor
    of points (|x|, |y| in [1, 3], z from 2 to 2 + 12): forward motion, epipole inside the image."""
    n_images = check_int(n_images, "n_images", minimum=1)
    n_points = check_int(n_points, "n_points", minimum=1)
    gen = as_rng(rng)
    side = gen.choice([-1.0, 1.0], size=(n_points, 2))
    X = np.column_stack([side * gen.uniform(0.3, 3.0, size=(n_points, 2)), gen.uniform(2.0, 14.0, n_points)])
    cams = []
    for k in range(n_images):
        R = so3_exp(gen.normal(scale=0.02, size=3))
        C = np.array([0.05 * gen.normal(), 0.05 * gen.normal(), k * step])
        cams.append(Rigid3.from_camera_axes_center(R, C))
    return _observe(_default_camera(camera), cams, X, noise_px, outlier_ratio, gen)


def rotation_scene(
    n_images: int = 5,
    n_points: int = 800,
    *,
    max_angle_deg: float = 20.0,
    noise_px: float = 0.0,
    outlier_ratio: float = 0.0,
    camera: Camera | None = None,
    rng: RngLike = None,
) -> SyntheticScene:
    """A camera rotating about its fixed centre (the origin) panning by up to ``max_angle_deg``
    in total: views related by homographies H = K R K^-1. Points lie at depths 3..30."""
    n_images = check_int(n_images, "n_images", minimum=1)
    n_points = check_int(n_points, "n_points", minimum=1)
    gen = as_rng(rng)
    dirs = gen.normal(size=(n_points, 3)) * [0.8, 0.5, 0.0] + [0, 0, 1.0]
    X = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * gen.uniform(3.0, 30.0, (n_points, 1))
    pans = np.radians(np.linspace(-max_angle_deg / 2, max_angle_deg / 2, n_images)) if n_images > 1 else [0.0]
    cams = [Rigid3(so3_exp(np.array([gen.normal(scale=0.02), p, gen.normal(scale=0.02)])), np.zeros(3)) for p in pans]
    return _observe(_default_camera(camera), cams, X, noise_px, outlier_ratio, gen)


def planar_scene(
    n_images: int = 4,
    n_points: int = 500,
    *,
    noise_px: float = 0.0,
    outlier_ratio: float = 0.0,
    camera: Camera | None = None,
    rng: RngLike = None,
) -> SyntheticScene:
    """Points on the plane z = 0 (a 4x4 square); cameras 4-6 units above looking down at it
    from different positions: a dominant plane (homography between any two views)."""
    n_images = check_int(n_images, "n_images", minimum=1)
    n_points = check_int(n_points, "n_points", minimum=1)
    gen = as_rng(rng)
    X = np.column_stack([gen.uniform(-2.0, 2.0, size=(n_points, 2)), np.zeros(n_points)])
    cams = []
    for _ in range(n_images):
        C = np.array([gen.uniform(-1.5, 1.5), gen.uniform(-1.5, 1.5), gen.uniform(4.0, 6.0)])
        target = np.array([gen.normal(scale=0.3), gen.normal(scale=0.3), 0.0])
        cams.append(Rigid3.look_at(C, target, up=(0.0, 1.0, 0.0)))
    return _observe(_default_camera(camera), cams, X, noise_px, outlier_ratio, gen)
