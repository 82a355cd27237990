"""Headless screenshots with open3d's offscreen renderer (Filament; Vulkan llvmpipe on a CPU).

    shot = render_screenshot(rec, viewpoint="top", width=1280, height=960)
    save_screenshot(rec, "view.png", viewpoint="first-camera")

The image is rendered through an exact pinhole camera: either a named viewpoint
(:func:`~geomvision.viz.viewpoints.view_camera`) or a ``camera`` + ``cam_from_world`` given by the
caller, and :class:`Screenshot` returns the camera it used, so a pixel of the screenshot and
``camera.img_from_cam(cam_from_world.apply(X))`` agree.

**Pixel convention.** open3d's ``setup_camera``/``set_projection`` take a K whose pixel centres
sit at half-integers (the top-left pixel's centre is (0.5, 0.5), as in COLMAP files): with our K
unchanged, every point is drawn 0.5 px up and left of where geomvision projects it (measured: a
median offset of (-0.50, -0.51) px over a hundred isolated points). We therefore hand open3d
``cx + 0.5, cy + 0.5``; rendered points then lie within 0.1 px (median) of our projections.

**Clipping.** ``setup_camera`` puts the near plane at 0.1 world units, which hides everything
closer in a small-scale model; the near and far planes are set from the depths of what is drawn
instead (half the smallest positive depth, 1.5 x the largest). Lens distortion and skew are not
rendered: the image is that of the camera's pinhole part.

Needs open3d (the ``viz`` extra) and, on Debian/Ubuntu, ``libvulkan1`` + ``mesa-vulkan-drivers``
(installed by scripts/setup.sh). Points are drawn unlit with post-processing (tone mapping) off,
so their colours come out exactly.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .._atomic import atomic_write_bytes
from ._open3d import captured_native_output, import_open3d, to_open3d
from .scene import LAYERS, SceneLayers, build_scene
from .viewpoints import view_camera

__all__ = ["MAX_SCREENSHOT_PIXELS", "MAX_SCREENSHOT_SIDE", "Screenshot", "check_screenshot_size", "open3d_intrinsics",
           "render_screenshot", "save_screenshot"]

# What the offscreen renderer can allocate (Filament on Vulkan llvmpipe, measured): 8192 x 8192
# and 16384 x 4096 render (5.5 GB peak), 12000 x 12000 aborts the whole process inside open3d
# ("Unable to bind image. error=-2", uncatchable); 16384 px is the usual Vulkan image side limit.
MAX_SCREENSHOT_SIDE = 16384
MAX_SCREENSHOT_PIXELS = 8192 * 8192
MIN_SCREENSHOT_SIDE = 16


@dataclass
class Screenshot:
    """A rendered image (H,W,3) uint8 and the pinhole camera and pose it was rendered with."""

    image: np.ndarray
    camera: Camera
    cam_from_world: Rigid3


def check_screenshot_size(width: int, height: int, *, names: tuple[str, str] = ("width", "height")) -> None:
    """Raise ``ValueError`` (naming ``names``) unless the renderer can draw a ``width`` x ``height``
    image: each side 16 to 16384 px and at most 67 108 864 pixels (8192 x 8192). Larger
    sizes abort the process inside open3d instead of raising."""
    for value, name in zip((width, height), names):
        if not MIN_SCREENSHOT_SIDE <= value <= MAX_SCREENSHOT_SIDE:
            raise ValueError(f"{name} must be {MIN_SCREENSHOT_SIDE} to {MAX_SCREENSHOT_SIDE} pixels, got {value}")
    if width * height > MAX_SCREENSHOT_PIXELS:
        raise ValueError(
            f"{names[0]} x {names[1]} = {width} x {height} is {width * height} pixels; the offscreen renderer draws at "
            f"most {MAX_SCREENSHOT_PIXELS} (8192 x 8192): choose a smaller {names[0]} or {names[1]}"
        )


def open3d_intrinsics(camera: Camera) -> np.ndarray:
    """The 3x3 K to give open3d for ``camera``: ours with the principal point moved by +0.5 px
    (open3d's pixel centres are at half-integers, see the module docstring); skew dropped."""
    K = camera.K.copy()
    K[0, 1] = 0.0
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    return K


def _clip_planes(layers: SceneLayers, names, cam_from_world: Rigid3) -> tuple[float, float]:
    pts = [layers.points] if "points" in names else []
    pts += [layers.layer(n).points for n in names if n != "points"]
    X = np.vstack([np.zeros((0, 3)), *pts])
    z = X @ cam_from_world.R[2] + cam_from_world.t[2]
    far_z = float(z.max()) if len(z) and z.max() > 0 else 1.0
    front = z[z > 1e-6 * far_z]
    near = 0.5 * float(front.min()) if len(front) else 1e-3 * far_z
    return near, 1.5 * far_z


def render_screenshot(
    model,
    *,
    viewpoint: str = "top",
    width: int | None = None,
    height: int | None = None,
    camera: Camera | None = None,
    cam_from_world: Rigid3 | None = None,
    layers: tuple[str, ...] = LAYERS,
    point_size: float = 3.0,
    line_width: float = 1.5,
    background=(1.0, 1.0, 1.0),
    point_color=None,
) -> Screenshot:
    """Render ``model`` (Reconstruction, LoadedModel, path, (N,3) points or :class:`SceneLayers`)
    offscreen and return the image with the camera used.

    ``viewpoint`` ``top`` | ``side`` | ``first-camera`` (see :mod:`~geomvision.viz.viewpoints`),
    or give ``camera`` and ``cam_from_world`` (then ``width``/``height`` are the camera's).
    ``layers``: which of ``points``, ``cameras``, ``path``, ``axes`` to draw. ``point_size`` in
    pixels; ``background`` and ``point_color`` are RGB floats in [0, 1]. Raises ImportError
    (with the install hint) without open3d and RuntimeError when no renderer can be created.
    """
    bad = [n for n in layers if n not in LAYERS]
    if bad:
        raise ValueError(f"layers: unknown layer(s) {bad}; choose from {', '.join(LAYERS)}")
    point_size = check_positive(point_size, "point_size")
    line_width = check_positive(line_width, "line_width")
    bg = np.asarray(background, dtype=float).reshape(-1)
    if bg.shape != (3,) or not np.all((bg >= 0) & (bg <= 1)):
        raise ValueError(f"background must be three floats in [0, 1], got {background!r}")
    scene = model if isinstance(model, SceneLayers) else build_scene(model, point_color=point_color)
    if (camera is None) != (cam_from_world is None):
        raise ValueError("give both camera and cam_from_world, or neither (then viewpoint chooses the view)")
    if camera is None:
        camera, cam_from_world = view_camera(scene, viewpoint, width, height)
    elif not isinstance(camera, Camera) or not isinstance(cam_from_world, Rigid3):
        raise ValueError("camera must be a geomvision Camera and cam_from_world a Rigid3")
    w, h = camera.width, camera.height
    check_screenshot_size(w, h)

    o3d = import_open3d()
    rendering = o3d.visualization.rendering
    try:
        with captured_native_output() as log:
            renderer = rendering.OffscreenRenderer(w, h)
    except Exception as exc:  # noqa: BLE001 - open3d raises bare RuntimeErrors from C++
        detail = (log[0].strip().splitlines() or [""])[-1] if log else ""
        raise RuntimeError(
            f"open3d could not create an offscreen renderer ({exc}{'; ' + detail if detail else ''}); "
            "on Debian/Ubuntu install libvulkan1 and mesa-vulkan-drivers (scripts/setup.sh does)"
        ) from None
    try:
        renderer.scene.view.set_post_processing(False)
        renderer.scene.set_background([float(bg[0]), float(bg[1]), float(bg[2]), 1.0])
        point_mat = rendering.MaterialRecord()
        point_mat.shader = "defaultUnlit"
        point_mat.point_size = float(point_size)
        line_mat = rendering.MaterialRecord()
        line_mat.shader = "unlitLine"
        line_mat.line_width = float(line_width)
        for name, geom in to_open3d(o3d, scene, layers).items():
            renderer.scene.add_geometry(name, geom, point_mat if name == "points" else line_mat)
        K = open3d_intrinsics(camera)
        renderer.setup_camera(K, cam_from_world.matrix4x4, w, h)
        near, far = _clip_planes(scene, layers, cam_from_world)
        renderer.scene.camera.set_projection(K, near, far, w, h)
        image = np.array(renderer.render_to_image(), dtype=np.uint8, copy=True)
    finally:
        del renderer
    return Screenshot(image[:, :, :3], camera, cam_from_world)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H,W,3) or (H,W) uint8 image as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def save_screenshot(model, path: str | os.PathLike, **kwargs) -> Screenshot:
    """:func:`render_screenshot` and write it to ``path`` as PNG, atomically."""
    folder = os.path.dirname(os.fspath(path)) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"path: folder {folder!r} does not exist; create it first")
    shot = render_screenshot(model, **kwargs)
    atomic_write_bytes(path, png_bytes(shot.image))
    return shot
