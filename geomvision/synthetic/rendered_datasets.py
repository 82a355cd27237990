"""Image sets rendered from the demo scene with exact ground truth.

* :func:`render_orbit_views` -- cameras on an arc around the objects (SfM input), in memory;
* :func:`render_orbit_dataset` -- the same written in the Strecha layout (``images/NNNN.png``,
  ``K.txt``, ``gt_cameras.json``) that :func:`geomvision.io.datasets.load_strecha_scene` reads;
* :func:`rotation_sequence` -- a camera turning about its fixed centre (panorama input), whose
  views are related exactly by the homographies ``H_ij = K R_j R_i^T K^-1``;
* :func:`planar_sequence` -- a camera moving in front of a textured wall (a planar scene), whose
  views are related exactly by plane-induced homographies.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .._atomic import atomic_write_bytes
from .._validation import RngLike, as_array, as_rng, check_int, check_positive
from .._validation import check_writer_arguments
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3, camera_center
from .demo_scene import demo_camera, demo_scene, orbit_cameras
from .render import render_image
from .shapes import Quad, Texture, TexturedScene
from .textures import procedural_texture

CONVENTION = "x_cam = R @ X_world + t; C = -R.T @ t; pixel (0,0) is the centre of the top-left pixel"


@dataclass
class RenderedViews:
    """Rendered RGB images (H, W, 3) uint8 with their shared camera and true poses."""

    images: list[np.ndarray]
    camera: Camera
    cams_from_world: list[Rigid3]
    names: list[str]

    def relative_pose(self, i: int, j: int) -> Rigid3:
        """Ground-truth ``cam_j_from_cam_i``."""
        return self.cams_from_world[j] @ self.cams_from_world[i].inverse()


@dataclass
class RotationSequence:
    """Views from one camera centre; ``cams_from_world[i].R`` are the true rotations."""

    images: list[np.ndarray]
    camera: Camera
    cams_from_world: list[Rigid3]

    @property
    def K(self) -> np.ndarray:
        return self.camera.K

    def homography(self, i: int, j: int) -> np.ndarray:
        """The exact ``H_ij = K R_j R_i^T K^-1`` mapping pixels of image i to image j
        (``x_j ~ H_ij x_i``), normalised so that H[2, 2] = 1."""
        R_ji = self.cams_from_world[j].R @ self.cams_from_world[i].R.T
        H = self.K @ R_ji @ np.linalg.inv(self.K)
        return H / H[2, 2]


def _scene_or_demo(scene: TexturedScene | None, rng: RngLike) -> TexturedScene:
    if scene is None:
        return demo_scene(rng)
    if not isinstance(scene, TexturedScene):
        raise ValueError(f"scene must be a TexturedScene or None (the demo scene), got {type(scene).__name__}")
    return scene


def render_orbit_views(
    n_images: int = 12,
    *,
    width: int = 800,
    height: int = 600,
    focal: float | None = None,
    arc_deg: float = 100.0,
    rng: RngLike = 0,
    scene: TexturedScene | None = None,
    supersample: int = 2,
) -> RenderedViews:
    """Render ``n_images`` views on an arc of ``arc_deg`` degrees around the demo scene (built
    from ``rng``, or ``scene`` when given) with :func:`demo_camera` (``width``, ``height``,
    ``focal``) at the poses of :func:`orbit_cameras`. Images are named ``0000.png``, ..."""
    n_images = check_int(n_images, "n_images", minimum=1)
    camera = demo_camera(width, height, focal)
    poses = orbit_cameras(n_images, arc_deg=arc_deg)
    scene = _scene_or_demo(scene, rng)
    images = [render_image(scene, camera, T, supersample=supersample) for T in poses]
    return RenderedViews(images, camera, poses, [f"{i:04d}.png" for i in range(n_images)])


def write_strecha_layout(views: RenderedViews, out_dir: str | os.PathLike, *, source: str) -> Path:
    """Write ``views`` as ``out_dir/images/<name>``, ``K.txt`` and ``gt_cameras.json`` (the
    Strecha layout; ``gt_cameras.json`` last, each file atomically). Returns ``out_dir``.
    ``(object, path)`` like every geomvision writer."""
    check_writer_arguments(views, "write_strecha_layout", "(views, out_dir)")
    if not isinstance(views, RenderedViews):
        raise ValueError(f"views must be RenderedViews, got {type(views).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a directory")
    (out / "images").mkdir(parents=True, exist_ok=True)
    K = views.camera.K
    cameras = {}
    for name, image, T in zip(views.names, views.images, views.cams_from_world):
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {name} as PNG")
        atomic_write_bytes(out / "images" / name, png.tobytes())
        cameras[name] = {
            "K": K.tolist(),
            "R": T.R.tolist(),
            "t": T.t.tolist(),
            "C": camera_center(T).tolist(),
            "width": views.camera.width,
            "height": views.camera.height,
        }
    atomic_write_bytes(out / "K.txt", "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in K).encode())
    doc = {"source": source, "convention": CONVENTION, "cameras": cameras}
    atomic_write_bytes(out / "gt_cameras.json", (json.dumps(doc, indent=1) + "\n").encode())
    return out


def render_orbit_dataset(
    out_dir: str | os.PathLike,
    *,
    n_images: int = 12,
    width: int = 800,
    height: int = 600,
    arc_deg: float = 100.0,
    rng: RngLike = 0,
    scene: TexturedScene | None = None,
    supersample: int = 2,
) -> Path:
    """Render :func:`render_orbit_views` of the demo scene (from ``rng``, or ``scene``) and
    write them to ``out_dir`` in the Strecha layout (``images/NNNN.png``, ``K.txt``,
    ``gt_cameras.json`` with K, R, t, C, width, height per image, ``x_cam = R X + t``).
    Returns ``out_dir`` as a Path."""
    views = render_orbit_views(
        n_images, width=width, height=height, arc_deg=arc_deg, rng=rng, scene=scene, supersample=supersample
    )
    if scene is not None:
        source = "a user TexturedScene"
    else:
        source = f"demo_scene(rng={rng if isinstance(rng, int) else 'a Generator'})"
    return write_strecha_layout(views, out_dir, source=f"geomvision {source} rendered by geomvision.synthetic.render")


def rotation_sequence(
    n_images: int = 5,
    *,
    width: int = 800,
    height: int = 600,
    focal: float | None = None,
    pan_deg: float = 60.0,
    center=(0.0, -5.5, 1.6),
    target=(0.0, 0.0, 0.8),
    rng: RngLike = 0,
    scene: TexturedScene | None = None,
    supersample: int = 2,
) -> RotationSequence:
    """A camera at ``center`` turning about the vertical axis through its centre: ``n_images``
    headings spread evenly over ``pan_deg`` degrees around the direction of ``target``.
    Renders the demo scene (from ``rng``) unless ``scene`` is given."""
    n_images = check_int(n_images, "n_images", minimum=1)
    pan = check_positive(pan_deg, "pan_deg", allow_zero=True)
    if pan >= 180.0:
        raise ValueError(f"pan_deg must be below 180, got {pan_deg}")
    C = as_array(center, "center", (3,))
    target = as_array(target, "target", (3,))
    forward = target - C
    if np.hypot(forward[0], forward[1]) < 1e-6:
        raise ValueError("target must not lie straight above or below center")
    camera = demo_camera(width, height, focal)
    scene = _scene_or_demo(scene, rng)
    poses = []
    for a in np.radians(np.linspace(-pan / 2, pan / 2, n_images)) if n_images > 1 else [0.0]:
        c, s = math.cos(a), math.sin(a)
        turned = np.array([c * forward[0] - s * forward[1], s * forward[0] + c * forward[1], forward[2]])
        poses.append(Rigid3.look_at(C, C + turned))
    images = [render_image(scene, camera, T, supersample=supersample) for T in poses]
    return RotationSequence(images, camera, poses)


@dataclass
class PlanarSequence(RenderedViews):
    """Views of one textured plane, ``plane_normal . X_world = plane_offset`` (world frame)."""

    plane_normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    plane_offset: float = 0.0

    def plane_distances(self, X_world: np.ndarray) -> np.ndarray:
        """Signed distances (N,) of points X_world (N,3) from the plane."""
        return np.asarray(X_world, dtype=float).reshape(-1, 3) @ self.plane_normal - self.plane_offset


def planar_sequence(
    n_images: int = 4,
    *,
    width: int = 640,
    height: int = 480,
    focal: float | None = None,
    distance: float = 4.0,
    baseline: float = 2.0,
    turn_deg: float = 8.0,
    rng: RngLike = 0,
    supersample: int = 2,
    cams_from_world: list[Rigid3] | None = None,
) -> PlanarSequence:
    """A camera moving in front of a 12 m textured wall (the plane y = 0 of the world, z up; a
    procedural "stone" texture from ``rng``, nothing else in the scene): ``n_images`` views from
    ``distance`` metres (+-10 %), their centres spread sideways over ``baseline`` metres and up
    and down over a tenth of it, each looking at the wall along a direction turned from its
    normal by up to ``turn_deg`` degrees (yaw and pitch on a circle, so no two views are alike;
    0 gives views that all face the wall), with a roll of up to 3 degrees; or the given
    ``cams_from_world`` (then ``n_images``, ``distance``, ``baseline`` and ``turn_deg`` are not
    used). Camera: :func:`demo_camera` (``width``, ``height``, ``focal``)."""
    n_images = check_int(n_images, "n_images", minimum=1)
    distance = check_positive(distance, "distance")
    baseline = check_positive(baseline, "baseline", allow_zero=True)
    turn = math.radians(check_positive(turn_deg, "turn_deg", allow_zero=True))
    if turn >= math.radians(60.0):
        raise ValueError(f"turn_deg must be below 60, got {turn_deg}")
    size, texels_per_metre = 12.0, 120.0
    gen = as_rng(rng)
    n_texels = int(size * texels_per_metre)
    texture = procedural_texture(n_texels, n_texels, rng=gen, palette="stone", max_radius=0.4 * texels_per_metre)
    world_from_wall = np.column_stack([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # wall normal (z): -y
    wall = Quad(Rigid3(world_from_wall, np.zeros(3)), (size, size), Texture(texture, texels_per_metre))
    scene = TexturedScene([wall])
    camera = demo_camera(width, height, focal)
    poses = [] if cams_from_world is None else list(cams_from_world)
    if not all(isinstance(T, Rigid3) for T in poses):
        raise ValueError("cams_from_world must be a list of Rigid3 cam_from_world poses")
    for k in range(n_images if cams_from_world is None else 0):
        s = k / (n_images - 1) - 0.5 if n_images > 1 else 0.0
        phase = 2.0 * math.pi * k / max(n_images, 1) + 0.5
        C = np.array([baseline * s, -distance * (1.0 + 0.1 * math.sin(1.7 * phase)), 0.1 * baseline * math.cos(phase)])
        yaw, pitch = turn * math.cos(phase), turn * math.sin(phase)
        d = np.array([math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)])
        target = C - C[1] / d[1] * d  # where the line of sight meets the wall
        roll = math.radians(3.0) * math.sin(2.3 * phase)
        poses.append(Rigid3.look_at(C, target, up=(math.sin(roll), 0.0, math.cos(roll))))
    images = [render_image(scene, camera, T, supersample=supersample) for T in poses]
    return PlanarSequence(images, camera, poses, [f"{i:04d}.png" for i in range(len(poses))],
                          plane_normal=np.array([0.0, 1.0, 0.0]), plane_offset=0.0)
