"""Textured solids for the renderer and the scene that holds them.

Every shape has a pose ``world_from_object`` (a :class:`Rigid3`) and one :class:`Texture` per
face. A texture is glued to its face by *surface coordinates* (s, t) in metres, so it moves
with the surface; texel (column, row) = (s, t) * ``texels_per_metre`` - 0.5 (texel centres at
half-integers, like pixels), clamped at the borders. Faces, their (s, t) and extents:

========  =====  =============================================  =====================
shape     face   surface coordinates (object frame x, y, z)      extent (s, t)
========  =====  =============================================  =====================
Quad      0      x in [-sx/2, sx/2], y in [-sy/2, sy/2], z = 0;   (sx, sy)
                 s = x + sx/2, t = y + sy/2
Box       0, 1   x = -sx/2, +sx/2: s = y + sy/2, t = z            (sy, sz)
          2, 3   y = -sy/2, +sy/2: s = x + sx/2, t = z            (sx, sz)
          4, 5   z = 0, sz:        s = x + sx/2, t = y + sy/2     (sx, sy)
Cylinder  0      side x^2 + y^2 = r^2, 0 <= z <= h;              (2 pi r, h)
                 s = r (atan2(y, x) + pi), t = z
          1, 2   top z = h, bottom z = 0: s = x + r, t = y + r    (2 r, 2 r)
Sphere    0..5   equiangular cube map on the faces -x, +x, -y,    (pi r / 2, pi r / 2)
                 +y, -z, +z; (p, q) = (y, z), (x, z), (x, y):
                 s = r (atan(p / |major|) + pi / 4), same for t
========  =====  =============================================  =====================

Boxes span [-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz] and cylinders 0 <= z <= h in their object
frame, so a shape with identity rotation and translation (x, y, 0) stands on the ground z = 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .._validation import as_array, check_positive
from ..geometry.rigid import Rigid3

KIND_QUAD, KIND_BOX, KIND_CYLINDER, KIND_SPHERE = 0, 1, 2, 3


class Texture:
    """An RGB image (H, W, 3) uint8 glued to a face at ``texels_per_metre`` texels per metre."""

    __slots__ = ("image", "texels_per_metre")

    def __init__(self, image: np.ndarray, texels_per_metre: float) -> None:
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {img.dtype} {img.shape}")
        self.image = np.ascontiguousarray(img)
        self.image.flags.writeable = False
        self.texels_per_metre = check_positive(texels_per_metre, "texels_per_metre")

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"Texture({w}x{h} texels, {self.texels_per_metre:g} per metre)"


class Shape(ABC):
    """Base of the textured solids: a pose, sizes and one texture per face."""

    kind: int = -1
    n_faces: int = 0
    __slots__ = ("dims", "textures", "world_from_object")

    def __init__(self, world_from_object: Rigid3, dims: np.ndarray, textures: Texture | Sequence[Texture]) -> None:
        if not isinstance(world_from_object, Rigid3):
            raise ValueError(f"world_from_object must be a Rigid3, got {type(world_from_object).__name__}")
        self.world_from_object = world_from_object
        self.dims = dims
        if isinstance(textures, Texture):
            textures = (textures,) * self.n_faces
        if not isinstance(textures, Sequence) or len(textures) != self.n_faces:
            raise ValueError(f"textures: a {type(self).__name__} takes one Texture or a sequence of {self.n_faces}")
        if not all(isinstance(t, Texture) for t in textures):
            raise ValueError("textures: every entry must be a geomvision.synthetic.shapes.Texture")
        self.textures = tuple(textures)

    @abstractmethod
    def face_extents(self) -> np.ndarray:
        """(n_faces, 2) extents in metres of each face's surface coordinates (s, t)."""

    @abstractmethod
    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre (3,) in world and radius of a sphere enclosing the shape."""


def _dims(values, name: str, n: int) -> np.ndarray:
    d = as_array(values, name, (n,))
    if np.any(d <= 0):
        raise ValueError(f"{name} must be positive, got {d}")
    return d


class Quad(Shape):
    """A rectangle of ``size`` = (sx, sy) metres on the plane z = 0 of its object frame, centred
    at its origin (two-sided)."""

    kind, n_faces = KIND_QUAD, 1
    __slots__ = ()

    def __init__(self, world_from_object: Rigid3, size, texture: Texture) -> None:
        super().__init__(world_from_object, np.append(_dims(size, "size", 2), 0.0), texture)

    def face_extents(self) -> np.ndarray:
        return self.dims[None, :2].copy()

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        return self.world_from_object.t.copy(), 0.5 * float(np.hypot(*self.dims[:2]))


class Box(Shape):
    """A box [-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz] in its object frame (``size`` = sx, sy, sz)."""

    kind, n_faces = KIND_BOX, 6
    __slots__ = ()

    def __init__(self, world_from_object: Rigid3, size, textures: Texture | Sequence[Texture]) -> None:
        super().__init__(world_from_object, _dims(size, "size", 3), textures)

    def face_extents(self) -> np.ndarray:
        sx, sy, sz = self.dims
        return np.array([(sy, sz), (sy, sz), (sx, sz), (sx, sz), (sx, sy), (sx, sy)])

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        centre = self.world_from_object.apply(np.array([0.0, 0.0, 0.5 * self.dims[2]]))
        return centre, 0.5 * float(np.linalg.norm(self.dims))


class Cylinder(Shape):
    """A closed cylinder of ``radius`` about the object z axis, 0 <= z <= ``height``; textures
    for the side, the top and the bottom."""

    kind, n_faces = KIND_CYLINDER, 3
    __slots__ = ()

    def __init__(
        self, world_from_object: Rigid3, radius: float, height: float, textures: Texture | Sequence[Texture]
    ) -> None:
        r = check_positive(radius, "radius")
        h = check_positive(height, "height")
        super().__init__(world_from_object, np.array([r, h, 0.0]), textures)

    def face_extents(self) -> np.ndarray:
        r, h = self.dims[:2]
        return np.array([(2 * np.pi * r, h), (2 * r, 2 * r), (2 * r, 2 * r)])

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        r, h = self.dims[:2]
        return self.world_from_object.apply(np.array([0.0, 0.0, 0.5 * h])), float(np.hypot(r, 0.5 * h))


class Sphere(Shape):
    """A sphere of ``radius`` centred at the object origin, textured by a six-face cube map."""

    kind, n_faces = KIND_SPHERE, 6
    __slots__ = ()

    def __init__(self, world_from_object: Rigid3, radius: float, textures: Texture | Sequence[Texture]) -> None:
        super().__init__(world_from_object, np.array([check_positive(radius, "radius"), 0.0, 0.0]), textures)

    def face_extents(self) -> np.ndarray:
        return np.full((6, 2), 0.5 * np.pi * self.dims[0])

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        return self.world_from_object.t.copy(), float(self.dims[0])


class TexturedScene:
    """Shapes lit by a directional light: colour = texture * (ambient + (1 - ambient) max(0, n.l))
    with the normal n turned towards the viewer; rays that miss everything see a smooth sky.

    ``light_direction`` points from the scene towards the light (world frame, normalised here);
    colours are RGB in [0, 255]. Treat a scene as immutable: the renderer flattens it (and
    builds the texture mip-maps) on first use and caches the result on the scene.
    """

    __slots__ = ("_packed", "ambient", "light_direction", "shapes", "sky_horizon", "sky_zenith")

    def __init__(
        self,
        shapes: Sequence[Shape],
        *,
        light_direction=(0.45, -0.35, 0.82),
        ambient: float = 0.45,
        sky_horizon=(206.0, 214.0, 226.0),
        sky_zenith=(128.0, 160.0, 210.0),
    ) -> None:
        if isinstance(shapes, Shape) or not isinstance(shapes, Sequence) or len(shapes) == 0:
            raise ValueError("shapes must be a non-empty sequence of Quad / Box / Cylinder / Sphere")
        if not all(isinstance(s, Shape) for s in shapes):
            bad = next(type(s).__name__ for s in shapes if not isinstance(s, Shape))
            raise ValueError(f"shapes: every entry must be a Quad, Box, Cylinder or Sphere, got {bad}")
        self.shapes = tuple(shapes)
        light = as_array(light_direction, "light_direction", (3,))
        if np.linalg.norm(light) < 1e-12:
            raise ValueError("light_direction must be a non-zero vector")
        self.light_direction = light / np.linalg.norm(light)
        self.ambient = check_positive(ambient, "ambient", allow_zero=True)
        if self.ambient > 1.0:
            raise ValueError(f"ambient must lie in [0, 1], got {ambient}")
        self.sky_horizon = _colour(sky_horizon, "sky_horizon")
        self.sky_zenith = _colour(sky_zenith, "sky_zenith")
        self._packed = None

    def __repr__(self) -> str:
        kinds = ", ".join(type(s).__name__ for s in self.shapes)
        return f"TexturedScene({len(self.shapes)} shapes: {kinds})"


def _colour(value, name: str) -> np.ndarray:
    c = as_array(value, name, (3,))
    if np.any(c < 0) or np.any(c > 255):
        raise ValueError(f"{name} must be an RGB colour with values in [0, 255], got {c}")
    return c
