"""Camera walks through the demo scene, rendered frame by frame with exact poses (video input).

:func:`walk_poses` gives the ``cam_from_world`` of a hand-held camera walking on a circle
around the objects of :func:`~geomvision.synthetic.demo_scene.demo_scene` (radius ``radius``,
``arc_deg`` of it, so 360 closes a loop), looking inwards with its gaze and height swaying a
little so that the motion is neither planar nor a pure orbit. :func:`render_walk` renders it.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import RngLike, check_int, check_positive
from ..geometry.rigid import Rigid3
from .demo_scene import OBJECT_RADIUS, HALF_SIZE, demo_camera
from .render import render_image
from .rendered_datasets import RenderedViews, _scene_or_demo
from .shapes import TexturedScene

__all__ = ["render_walk", "walk_poses"]


def walk_poses(n_frames: int, *, arc_deg: float = 120.0, radius: float = 5.2, height: float = 1.6,
               start_deg: float = -90.0, sway_m: float = 0.8) -> list[Rigid3]:
    """``cam_from_world`` of ``n_frames`` frames evenly spaced over ``arc_deg`` degrees of a walk
    on a circle of ``radius`` metres around the scene centre, anticlockwise from azimuth
    ``start_deg``. The camera is at ``height`` +- 0.1 m and looks at a point that sways by
    ``sway_m`` around the centre (about +-9 degrees at the default radius)."""
    n = check_int(n_frames, "n_frames", minimum=1)
    radius = check_positive(radius, "radius")
    if not OBJECT_RADIUS + 0.5 < radius < HALF_SIZE - 0.5:
        raise ValueError(f"radius must lie in ({OBJECT_RADIUS + 0.5}, {HALF_SIZE - 0.5}) to stay between the objects "
                         f"and the walls, got {radius}")
    arc = float(arc_deg)
    if not 0.0 < arc <= 720.0:
        raise ValueError(f"arc_deg must lie in (0, 720], got {arc_deg}")
    s = np.linspace(0.0, 1.0, n, endpoint=arc < 360.0) if n > 1 else np.zeros(1)
    az = np.radians(start_deg + arc * s)
    phase = 2.0 * math.pi * s * max(1.0, arc / 90.0)
    centres = np.column_stack([radius * np.cos(az), radius * np.sin(az), height + 0.1 * np.sin(1.7 * phase)])
    targets = np.column_stack([sway_m * np.cos(phase), sway_m * np.sin(phase), np.full(n, 0.7)])
    return [Rigid3.look_at(c, t) for c, t in zip(centres, targets)]


def render_walk(n_frames: int = 120, *, width: int = 640, height: int = 480, focal: float | None = None,
                arc_deg: float = 120.0, rng: RngLike = 0, scene: TexturedScene | None = None,
                supersample: int = 1, **walk) -> RenderedViews:
    """Render the frames of :func:`walk_poses` (keywords ``walk`` pass on) with
    :func:`demo_camera` (``width``, ``height``, ``focal``) in the demo scene built from ``rng``
    (or ``scene``). Frames are named ``frame_000000.png``, ... in walking order."""
    camera = demo_camera(width, height, focal)
    poses = walk_poses(n_frames, arc_deg=arc_deg, **walk)
    scene = _scene_or_demo(scene, rng)
    images = [render_image(scene, camera, T, supersample=supersample) for T in poses]
    return RenderedViews(images, camera, poses, [f"frame_{i:06d}.png" for i in range(len(poses))])
