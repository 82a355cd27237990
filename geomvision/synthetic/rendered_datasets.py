"""Image sets rendered from the demo scene with exact ground truth.

* :func:`render_orbit_views` -- cameras on an arc around the objects (SfM input), in memory;
* :func:`render_orbit_dataset` -- the same written in the Strecha layout (``images/NNNN.png``,
  ``K.txt``, ``gt_cameras.json``) that :func:`geomvision.io.datasets.load_strecha_scene` reads;
* :func:`rotation_sequence` -- a camera turning about its fixed centre (panorama input), whose
  views are related exactly by the homographies ``H_ij = K R_j R_i^T K^-1``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .._atomic import atomic_write_bytes
from .._validation import RngLike, as_array, check_int, check_positive
from .._validation import check_writer_arguments
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3, camera_center
from .demo_scene import demo_camera, demo_scene, orbit_cameras
from .render import render_image
from .shapes import TexturedScene

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
