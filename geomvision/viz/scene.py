"""What the viewer and the screenshots draw, as plain numpy arrays (no open3d here).

:func:`build_scene` turns a reconstruction into layers:

- **points**: the 3-D points with their colours (floats in [0, 1]);
- **cameras**: one wire-frame frustum per registered image: apex at the camera centre, the four
  image corners (pixel corners (-0.5, -0.5) ... (w - 0.5, h - 0.5), lens distortion undone) at
  depth ``frustum_scale`` in front of it, and a small triangle on the top edge showing which
  way is up in the image;
- **path**: a polyline through the camera centres in image-name order (the capture order of
  sequentially named images);
- **axes**: the world frame's x, y, z axes (red, green, blue) at its origin, of length 0.1 x the
  scene extent; drawn at the scene centre instead when the origin is more than one extent away
  (geo-referenced models).

**Frustum scale** ``= 0.8 x`` the median distance from each camera centre to its nearest other
centre (so neighbouring frustums of a sequence just do not overlap), clamped to [0.01, 0.1] x the
scene extent; 0.05 x the extent for a single camera. The **scene extent** is the diagonal of
the box holding the camera centres and the 2nd-98th percentile of the points on each axis (a few
far-away points do not shrink everything else).

:class:`SceneFrame` estimates the scene's orientation: ``up`` is the mean of the cameras' up
directions (their -y axis in world coordinates, since image rows grow downwards), ``forward``
the mean viewing direction (+z axes) made orthogonal to ``up``, ``right = forward x up``.
Without cameras ``up`` is the world -y axis and ``forward`` +z (the orientation of a model
whose world frame is its first camera, as COLMAP's and ours usually are).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import as_points
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from ..scene.reconstruction import Reconstruction

__all__ = ["LAYERS", "LineSetData", "SceneCamera", "SceneFrame", "SceneLayers", "build_scene", "scene_inputs"]

LAYERS = ("points", "cameras", "path", "axes")

FRUSTUM_COLOR = (0.85, 0.15, 0.1)
PATH_COLOR = (0.1, 0.35, 0.9)
DEFAULT_POINT_COLOR = (0.35, 0.35, 0.4)


@dataclass
class LineSetData:
    """Line segments: vertices (V,3), lines (L,2) vertex indices, colours (L,3) in [0, 1]."""

    points: np.ndarray
    lines: np.ndarray
    colors: np.ndarray

    @classmethod
    def empty(cls) -> LineSetData:
        return cls(np.zeros((0, 3)), np.zeros((0, 2), dtype=np.int32), np.zeros((0, 3)))

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class SceneCamera:
    """A registered image as the scene draws it."""

    image_id: int
    name: str
    camera: Camera
    cam_from_world: Rigid3


@dataclass
class SceneFrame:
    """Orientation and size of a scene (see the module docstring); unit vectors, world frame."""

    centre: np.ndarray
    up: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    extent: float


@dataclass
class SceneLayers:
    """Everything the viewer and the offscreen renderer draw (see the module docstring)."""

    points: np.ndarray  # (P,3)
    colors: np.ndarray  # (P,3) floats in [0, 1]
    cameras: list[SceneCamera]  # registered images in image-id order
    frustums: LineSetData
    path: LineSetData
    axes: LineSetData
    frustum_scale: float
    frame: SceneFrame
    inlier_points: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def camera_centres(self) -> np.ndarray:
        """(C,3) centres of the registered images, in image-id order."""
        if not self.cameras:
            return np.zeros((0, 3))
        return np.array([-(c.cam_from_world.R.T @ c.cam_from_world.t) for c in self.cameras])

    def layer(self, name: str) -> LineSetData:
        if name not in ("cameras", "path", "axes"):
            raise ValueError(f"name must be one of 'cameras', 'path', 'axes', got {name!r}")
        return {"cameras": self.frustums, "path": self.path, "axes": self.axes}[name]

    def content_points(self) -> np.ndarray:
        """(K,3) points a view must show: the non-outlying points and the camera centres."""
        return np.vstack([self.points[self.inlier_points], self.camera_centres])


# --- inputs ------------------------------------------------------------------------------------
def scene_inputs(model) -> tuple[np.ndarray, np.ndarray | None, list[SceneCamera]]:
    """``(xyz (N,3), colors (N,3) uint8 or None, registered cameras)`` of a Reconstruction, a
    :class:`~geomvision.viz.loading.LoadedModel`, a path (opened with ``load_model``) or an (N,3)
    array of points."""
    from .loading import LoadedModel, load_model

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = load_model(model)
    if isinstance(model, LoadedModel):
        if model.reconstruction is not None:
            return model.xyz, model.colors, _scene_cameras(model.reconstruction)
        return model.xyz, model.colors, []
    if isinstance(model, Reconstruction):
        _, xyz, colors = model.point_arrays()
        return xyz, colors, _scene_cameras(model)
    if isinstance(model, (np.ndarray, list, tuple)):
        return as_points(model, "model", 3), None, []
    raise ValueError(
        f"model must be a Reconstruction, a LoadedModel, a path or an (N,3) array of points, got {type(model).__name__}"
    )


def _scene_cameras(rec: Reconstruction) -> list[SceneCamera]:
    return [
        SceneCamera(iid, rec.images[iid].name, rec.cameras[rec.images[iid].camera_id], rec.images[iid].cam_from_world)
        for iid in rec.registered_image_ids
    ]


# --- frame and scale -----------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else None


def _any_orthogonal(up: np.ndarray) -> np.ndarray:
    axis = np.eye(3)[int(np.argmin(np.abs(up)))]
    return _unit(axis - (axis @ up) * up)


def _inlier_mask(xyz: np.ndarray) -> np.ndarray:
    if len(xyz) < 10:
        return np.ones(len(xyz), dtype=bool)
    lo, hi = np.percentile(xyz, [2.0, 98.0], axis=0)
    return np.all((xyz >= lo) & (xyz <= hi), axis=1)


def scene_frame(xyz: np.ndarray, cameras: list[SceneCamera], inliers: np.ndarray | None = None) -> SceneFrame:
    """Estimate centre, up/forward/right directions and extent (see the module docstring)."""
    inl = _inlier_mask(xyz) if inliers is None else inliers
    pts = xyz[inl]
    centres = np.array([-(c.cam_from_world.R.T @ c.cam_from_world.t) for c in cameras]).reshape(-1, 3)
    content = np.vstack([pts, centres])
    if len(pts):
        centre = np.median(pts, axis=0)
    elif len(centres):
        centre = centres.mean(axis=0)
    else:
        centre = np.zeros(3)
    extent = float(np.linalg.norm(content.max(axis=0) - content.min(axis=0))) if len(content) else 0.0
    if not extent > 0:
        extent = 1.0
    up = forward = None
    if cameras:
        Rs = np.array([c.cam_from_world.R for c in cameras])
        up = _unit(-Rs[:, 1, :].mean(axis=0))  # row 1 of R = camera y axis in world
        if up is not None:
            view = Rs[:, 2, :].mean(axis=0)
            forward = _unit(view - (view @ up) * up)
            if forward is None and len(pts):  # cameras all around: look from their mean centre
                d = centre - centres.mean(axis=0)
                forward = _unit(d - (d @ up) * up)
    if up is None:
        up = np.array([0.0, -1.0, 0.0])
        forward = np.array([0.0, 0.0, 1.0])
    if forward is None:
        forward = _any_orthogonal(up)
    right = np.cross(forward, up)
    return SceneFrame(centre, up, forward, right, extent)


def frustum_scale(centres: np.ndarray, extent: float) -> float:
    """Depth of the drawn frustums (see the module docstring)."""
    if len(centres) < 2:
        return 0.05 * extent
    d = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=2) if len(centres) <= 2000 else None
    if d is None:
        from scipy.spatial import cKDTree

        nn = cKDTree(centres).query(centres, k=2)[0][:, 1]
    else:
        np.fill_diagonal(d, np.inf)
        nn = d.min(axis=1)
    return float(np.clip(0.8 * np.median(nn), 0.01 * extent, 0.1 * extent))


# --- line layers ---------------------------------------------------------------------------------
# vertex order per camera: apex, 4 image corners (tl, tr, br, bl), tip of the "up" triangle
_FRUSTUM_LINES = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1], [1, 5], [5, 2]])


def _corner_rays(camera: Camera) -> np.ndarray:
    """(5,3) apex-relative directions on z = 1: four image corners and the up-triangle tip."""
    w, h = camera.width, camera.height
    uv = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    rays = camera.cam_from_img(uv)
    if not np.isfinite(rays).all():  # beyond the lens model's invertible region: use the affine part
        lin = np.hstack([uv, np.ones((4, 1))]) @ np.linalg.inv(camera.K).T
        rays = np.where(np.isfinite(rays), rays, lin)
    top_mid = 0.5 * (rays[0] + rays[1])
    tip = top_mid + np.array([0.0, -0.35 * (rays[3, 1] - rays[0, 1]), 0.0])
    return np.vstack([rays, tip])


def frustum_lines(cameras: list[SceneCamera], scale: float, color=FRUSTUM_COLOR) -> LineSetData:
    """Wire-frame frustums of depth ``scale`` (see the module docstring): 6 vertices and 10
    lines per camera."""
    if not cameras:
        return LineSetData.empty()
    rays_of: dict[int, np.ndarray] = {}
    X_cam = np.empty((len(cameras), 6, 3))
    for k, c in enumerate(cameras):
        key = id(c.camera)
        if key not in rays_of:
            rays_of[key] = _corner_rays(c.camera)
        X_cam[k, 0] = 0.0
        X_cam[k, 1:] = scale * rays_of[key]
    R = np.array([c.cam_from_world.R for c in cameras])
    t = np.array([c.cam_from_world.t for c in cameras])
    X_world = np.einsum("kji,kvj->kvi", R, X_cam - t[:, None, :])  # R^T (X_cam - t)
    lines = (_FRUSTUM_LINES[None, :, :] + 6 * np.arange(len(cameras))[:, None, None]).reshape(-1, 2)
    colors = np.tile(np.asarray(color, dtype=float), (len(lines), 1))
    return LineSetData(X_world.reshape(-1, 3), lines.astype(np.int32), colors)


def path_lines(cameras: list[SceneCamera], color=PATH_COLOR) -> LineSetData:
    """Polyline through the camera centres in image-name order."""
    if len(cameras) < 2:
        return LineSetData.empty()
    order = sorted(range(len(cameras)), key=lambda k: (cameras[k].name, cameras[k].image_id))
    centres = np.array([-(cameras[k].cam_from_world.R.T @ cameras[k].cam_from_world.t) for k in order])
    n = len(centres)
    lines = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1).astype(np.int32)
    return LineSetData(centres, lines, np.tile(np.asarray(color, dtype=float), (n - 1, 1)))


def axes_lines(frame: SceneFrame) -> LineSetData:
    """World x, y, z axes (red, green, blue) at the origin (or the scene centre when the origin is
    more than one extent away), of length 0.1 x extent."""
    origin = np.zeros(3) if np.linalg.norm(frame.centre) <= frame.extent else frame.centre
    length = 0.1 * frame.extent
    pts = np.vstack([origin, origin + length * np.eye(3)])
    return LineSetData(pts, np.array([[0, 1], [0, 2], [0, 3]], dtype=np.int32), np.eye(3))


# --- everything ----------------------------------------------------------------------------------
def build_scene(model, *, frustum_scale_override: float | None = None, point_color=None) -> SceneLayers:
    """Layers to draw for ``model`` (a Reconstruction, LoadedModel, path or (N,3) points).

    ``frustum_scale_override``: frustum depth in world units instead of the automatic scale.
    ``point_color``: one RGB colour (floats in [0, 1]) for every point instead of theirs. Points
    without colour information (none given, or all black) get a neutral grey.
    """
    xyz, colors_u8, cameras = scene_inputs(model)
    inl = _inlier_mask(xyz)
    frame = scene_frame(xyz, cameras, inl)
    if frustum_scale_override is not None:
        scale = float(frustum_scale_override)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"frustum_scale_override must be a positive number, got {frustum_scale_override!r}")
    else:
        centres = np.array([-(c.cam_from_world.R.T @ c.cam_from_world.t) for c in cameras]).reshape(-1, 3)
        scale = frustum_scale(centres, frame.extent)
    if point_color is not None:
        col = np.asarray(point_color, dtype=float).reshape(-1)
        if col.shape != (3,) or not np.all((col >= 0) & (col <= 1)):
            raise ValueError(f"point_color must be three floats in [0, 1], got {point_color!r}")
        colors = np.tile(col, (len(xyz), 1))
    elif colors_u8 is None or not np.any(colors_u8):
        colors = np.tile(np.asarray(DEFAULT_POINT_COLOR), (len(xyz), 1))
    else:
        colors = np.asarray(colors_u8, dtype=float) / 255.0
    return SceneLayers(
        points=xyz,
        colors=colors,
        cameras=cameras,
        frustums=frustum_lines(cameras, scale),
        path=path_lines(cameras),
        axes=axes_lines(frame),
        frustum_scale=scale,
        frame=frame,
        inlier_points=inl,
    )
