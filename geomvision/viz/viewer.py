"""The interactive open3d window: ``geomvision.viz.show(reconstruction)``.

Draws the layers of :func:`~geomvision.viz.scene.build_scene` (coloured points, camera
frustums, camera path, world axes) and opens on a three-quarter view from behind, right of and
above the cameras (see :func:`initial_view`), the scene's up upwards.

Keys (besides open3d's own: mouse to orbit/pan/zoom, ``H`` prints open3d's help):

====  =============================================
P     points on/off
C     camera frustums on/off
L     camera path (line) on/off
A     axes on/off
]     larger points
[     smaller points
1     view from the top
2     view from the side
3     view through the first camera
====  =============================================

The window needs a display; headless machines use screenshots instead
(:func:`~geomvision.viz.offscreen.save_screenshot`, ``geomvision view MODEL --screenshot``).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .._validation import check_positive
from .scene import LAYERS, SceneLayers, build_scene
from .viewpoints import view_camera

__all__ = ["KEYS", "ViewerState", "initial_view", "show"]

KEYS = {
    "P": "points on/off",
    "C": "camera frustums on/off",
    "L": "camera path on/off",
    "A": "axes on/off",
    "]": "larger points",
    "[": "smaller points",
    "1": "view from the top",
    "2": "view from the side",
    "3": "view through the first camera",
}
_TOGGLE_KEYS = {"P": "points", "C": "cameras", "L": "path", "A": "axes"}
_VIEW_KEYS = {"1": "top", "2": "side", "3": "first-camera"}
MIN_POINT_SIZE, MAX_POINT_SIZE = 1.0, 20.0


def initial_view(layers: SceneLayers) -> dict[str, np.ndarray]:
    """open3d view-control vectors for the opening three-quarter view: ``lookat`` the middle of
    the content's bounding box (points and cameras), ``up`` the scene's up, ``front`` (from
    ``lookat`` towards the eye) behind the cameras and to their right, 35 degrees above the
    horizon: ``front = cos(35) (right - forward) / sqrt(2) + sin(35) up``."""
    fr = layers.frame
    content = layers.content_points()
    lookat = 0.5 * (content.min(axis=0) + content.max(axis=0)) if len(content) else fr.centre.copy()
    a = np.radians(35.0)
    front = np.cos(a) * (fr.right - fr.forward) / np.sqrt(2.0) + np.sin(a) * fr.up
    return {"lookat": lookat, "up": fr.up.copy(), "front": front / np.linalg.norm(front)}


class ViewerState:
    """What the key callbacks change: visible layers and point size, on an open3d visualizer
    ``vis`` (anything with ``add_geometry``/``remove_geometry``/``get_render_option``)."""

    def __init__(self, vis, geometries: dict, layers: SceneLayers, point_size: float) -> None:
        self.vis = vis
        self.geometries = geometries
        self.layers = layers
        self.visible = {name: True for name in geometries}
        self.point_size = float(point_size)

    def toggle(self, name: str) -> bool:
        """Show or hide a layer; returns True (the visualizer should redraw)."""
        geom = self.geometries.get(name)
        if geom is None:
            return False
        if self.visible[name]:
            self.vis.remove_geometry(geom, reset_bounding_box=False)
        else:
            self.vis.add_geometry(geom, reset_bounding_box=False)
        self.visible[name] = not self.visible[name]
        return True

    def scale_points(self, factor: float) -> bool:
        self.point_size = float(np.clip(self.point_size * factor, MIN_POINT_SIZE, MAX_POINT_SIZE))
        self.vis.get_render_option().point_size = self.point_size
        return True

    def set_viewpoint(self, o3d, viewpoint: str) -> bool:
        ctr = self.vis.get_view_control()
        params = ctr.convert_to_pinhole_camera_parameters()
        w, h = params.intrinsic.width, params.intrinsic.height
        try:
            camera, cam_from_world = view_camera(self.layers, viewpoint, w, h)
        except ValueError as exc:  # first-camera without cameras
            print(f"geomvision viewer: {exc}", file=sys.stderr)
            return False
        K = camera.K
        params.intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5)
        params.extrinsic = cam_from_world.matrix4x4
        ctr.convert_from_pinhole_camera_parameters(params, allow_arbitrary=True)
        return True

    def register_keys(self, o3d) -> None:
        vis = self.vis
        for key, name in _TOGGLE_KEYS.items():
            vis.register_key_callback(ord(key), lambda _v, name=name: self.toggle(name))
        vis.register_key_callback(ord("]"), lambda _v: self.scale_points(1.25))
        vis.register_key_callback(ord("["), lambda _v: self.scale_points(0.8))
        for key, vp in _VIEW_KEYS.items():
            vis.register_key_callback(ord(key), lambda _v, vp=vp: self.set_viewpoint(o3d, vp))


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(
    model,
    *,
    point_size: float = 2.0,
    width: int = 1280,
    height: int = 960,
    layers: tuple[str, ...] = LAYERS,
    background=(1.0, 1.0, 1.0),
    window_name: str | None = None,
) -> None:
    """Open an open3d window on ``model`` (a Reconstruction, LoadedModel, path or (N,3) points)
    and block until it is closed. ``layers``: the layers shown at the start (the others can be
    switched on with their keys, see the module docstring). Raises ImportError without open3d
    and RuntimeError without a display."""
    from ._open3d import import_open3d, to_open3d

    bad = [n for n in layers if n not in LAYERS]
    if bad:
        raise ValueError(f"layers: unknown layer(s) {bad}; choose from {', '.join(LAYERS)}")
    point_size = check_positive(point_size, "point_size")
    scene = model if isinstance(model, SceneLayers) else build_scene(model)
    o3d = import_open3d()
    if not _has_display():
        raise RuntimeError("no display to open a window on (DISPLAY is not set); use --screenshot FILE.png instead")
    vis = o3d.visualization.VisualizerWithKeyCallback()
    if not vis.create_window(window_name or "geomvision", width=width, height=height):
        raise RuntimeError("open3d could not open a window (no usable display or OpenGL); use --screenshot instead")
    try:
        geoms = to_open3d(o3d, scene)
        for name, geom in geoms.items():
            vis.add_geometry(geom, reset_bounding_box=True)
        state = ViewerState(vis, geoms, scene, point_size)
        for name in geoms:
            if name not in layers:
                state.toggle(name)
        opt = vis.get_render_option()
        opt.point_size = point_size
        opt.background_color = np.asarray(background, dtype=float)
        ctr = vis.get_view_control()
        view = initial_view(scene)
        ctr.set_lookat(view["lookat"])
        ctr.set_front(view["front"])
        ctr.set_up(view["up"])
        ctr.set_zoom(0.7)
        state.register_keys(o3d)
        print("geomvision viewer keys: " + ", ".join(f"{k} {v}" for k, v in KEYS.items()), flush=True)
        vis.run()
    finally:
        vis.destroy_window()
