"""Virtual cameras for screenshots: ``top``, ``side`` and ``first-camera``.

With the scene's :class:`~geomvision.viz.scene.SceneFrame` (``up``, ``forward``, ``right``):

- ``top``: looks straight down (optical axis ``-up``) on the scene centre, with the cameras'
  mean viewing direction ``forward`` pointing up in the image and ``right`` to the right;
- ``side``: looks horizontally along ``-right`` (from the cameras' right-hand side), ``up`` up
  in the image and ``forward`` to the right: the depth of the scene in front of the cameras;
- ``first-camera``: the pose and intrinsics of the first registered image (lowest image id),
  resized to the requested size (a missing width or height follows the camera's aspect ratio; each
  axis scaled with the pixel-centre rule u' = s (u + 0.5) - 0.5). Lens distortion is not
  rendered: the image is that of the camera's pinhole part ``K``.

``top`` and ``side`` are pinhole cameras (fx = fy, principal point at the image centre) aimed at
the middle of the content's extent across the view (at the depth of the scene centre), placed
at twice the content's half-size from it, their focal length chosen so that the
content (camera centres and the 2nd-98th percentile of the points) fills 90 % of the image.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .scene import SceneLayers

__all__ = ["VIEWPOINTS", "view_camera"]

VIEWPOINTS = ("top", "side", "first-camera")
_FILL = 0.9


def _fitted_camera(axes: np.ndarray, centre: np.ndarray, content: np.ndarray, width: int, height: int):
    """Pinhole camera with rows of ``axes`` as its x, y, z axes looking at ``centre``, placed and
    zoomed so that ``content`` fills ``_FILL`` of the image."""
    local = (content - centre) @ axes.T  # (K,3) coordinates along the camera axes
    if len(local):  # aim at the middle of the content's extent across the view
        mid = 0.5 * (local[:, :2].min(axis=0) + local[:, :2].max(axis=0))
        centre = centre + mid @ axes[:2]
        local[:, :2] -= mid
    half = float(np.max(np.abs(local[:, :2]))) if len(local) else 1.0
    half = half if half > 0 else 1.0
    dist = 2.0 * half + max(0.0, float(-local[:, 2].min())) if len(local) else 2.0
    C = centre - dist * axes[2]
    cam_from_world = Rigid3(axes, -axes @ C, check=False)
    z = local[:, 2] + dist if len(local) else np.ones(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.max(np.abs(local[:, 0]) / z) if len(local) else 1.0
        ty = np.max(np.abs(local[:, 1]) / z) if len(local) else 1.0
    fx = 0.5 * _FILL * width / tx if tx > 0 else float(width)
    fy = 0.5 * _FILL * height / ty if ty > 0 else float(height)
    f = float(min(fx, fy))
    camera = Camera("PINHOLE", width, height, [f, f, (width - 1) / 2.0, (height - 1) / 2.0])
    return camera, cam_from_world


def _first_camera(layers: SceneLayers, width: int | None, height: int | None):
    if not layers.cameras:
        raise ValueError("viewpoint 'first-camera' needs a model with registered images; use 'top' or 'side'")
    first = layers.cameras[0]
    cam = first.camera
    if width is None and height is None:
        w, h = cam.width, cam.height
    elif height is None:
        w, h = width, max(1, round(width * cam.height / cam.width))
    elif width is None:
        w, h = max(1, round(height * cam.width / cam.height)), height
    else:
        w, h = width, height
    sx, sy = w / cam.width, h / cam.height
    K = cam.K
    params = [K[0, 0] * sx, K[1, 1] * sy, sx * (K[0, 2] + 0.5) - 0.5, sy * (K[1, 2] + 0.5) - 0.5]
    return Camera("PINHOLE", w, h, params), first.cam_from_world


def view_camera(
    layers: SceneLayers, viewpoint: str = "top", width: int | None = None, height: int | None = None
) -> tuple[Camera, Rigid3]:
    """``(camera, cam_from_world)`` of a named viewpoint (see the module docstring).

    ``width``/``height`` default to 1280 x 960 for ``top``/``side`` and to the first camera's
    own size for ``first-camera``.
    """
    if viewpoint not in VIEWPOINTS:
        raise ValueError(f"viewpoint must be one of {', '.join(VIEWPOINTS)}, got {viewpoint!r}")
    width = None if width is None else check_int(width, "width", minimum=16)
    height = None if height is None else check_int(height, "height", minimum=16)
    if viewpoint == "first-camera":
        return _first_camera(layers, width, height)
    fr = layers.frame
    if viewpoint == "top":
        axes = np.array([fr.right, -fr.forward, -fr.up])
    else:
        axes = np.array([fr.forward, -fr.up, -fr.right])
    return _fitted_camera(axes, fr.centre, layers.content_points(), width or 1280, height or 960)
