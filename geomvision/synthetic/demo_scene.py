"""geomvision's built-in synthetic scene: a walled courtyard with textured objects.

World frame: z up, metres, origin at the centre of the ground. The ground is a 16 m square at
z = 0 enclosed by four 3.5 m walls; boxes (one with a smaller box on top), cylinders and spheres
stand within 3.2 m of the centre. Every surface carries its own procedural texture
(:mod:`geomvision.synthetic.textures`), so orbit views see depths from about 3 m to 17 m, real
occlusions and thousands of distinctive features. :func:`orbit_cameras` gives poses on an arc
around the objects looking inwards.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import RngLike, as_array, as_rng, check_int, check_positive
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .shapes import Box, Cylinder, Quad, Shape, Sphere, Texture, TexturedScene
from .textures import procedural_texture

HALF_SIZE = 8.0  # the courtyard spans [-8, 8]^2
WALL_HEIGHT = 3.5
OBJECT_RADIUS = 3.2  # objects stand within this distance of the centre
GROUND_TEXELS_PER_M = 160.0
WALL_TEXELS_PER_M = 100.0
OBJECT_TEXELS_PER_M = 220.0
MAX_SHAPE_RADIUS_M = 0.4  # the largest texture shapes: no flat patch much wider than ~1 m
OBJECT_PALETTES = ("wood", "paint", "slate", "stone", "moss", "brick")


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _textures(
    shape_extents: np.ndarray, texels_per_metre: float, palette: str, gen: np.random.Generator
) -> list[Texture]:
    """One fresh procedural texture per face, sized to cover the face's extent."""
    out = []
    for s_ext, t_ext in shape_extents:
        w = max(2, math.ceil(s_ext * texels_per_metre))
        h = max(2, math.ceil(t_ext * texels_per_metre))
        max_radius = min(max(w, h) / 6.0, MAX_SHAPE_RADIUS_M * texels_per_metre)
        image = procedural_texture(w, h, rng=gen, palette=palette, max_radius=max(max_radius, 3.0))
        out.append(Texture(image, texels_per_metre))
    return out


def _place(footprints: list[float], gen: np.random.Generator, gap: float = 0.25) -> np.ndarray:
    """(N, 2) positions within OBJECT_RADIUS whose footprint circles keep ``gap`` apart."""
    xy = np.zeros((len(footprints), 2))
    for k, r in enumerate(footprints):
        for _ in range(10_000):
            rho = (OBJECT_RADIUS - r) * math.sqrt(gen.random())
            phi = gen.uniform(0.0, 2.0 * math.pi)
            cand = np.array([rho * math.cos(phi), rho * math.sin(phi)])
            if all(np.linalg.norm(cand - xy[i]) >= r + footprints[i] + gap for i in range(k)):
                xy[k] = cand
                break
        else:  # cannot happen with the sizes below; guard against an endless loop anyway
            raise RuntimeError("demo_scene: could not place the objects without overlap")
    return xy


def demo_scene(rng: RngLike = 0) -> TexturedScene:
    """The default demo scene (deterministic for a given ``rng``; default seed 0).

    Ground, four walls, four boxes (one carrying a smaller box), two cylinders and two
    spheres, each face with its own procedural texture (53 textures, 11 M texels). Building it
    takes about 1.4 CPU seconds.
    """
    gen = as_rng(rng)
    shapes: list[Shape] = []

    ground_size = 2.0 * HALF_SIZE
    ground = np.array([(ground_size, ground_size)])
    shapes.append(Quad(Rigid3(), (ground_size, ground_size), _textures(ground, GROUND_TEXELS_PER_M, "earth", gen)[0]))
    for k, palette in enumerate(("stone", "brick", "slate", "moss")):
        phi = 0.5 * math.pi * k
        inward = -np.array([math.cos(phi), math.sin(phi), 0.0])
        up = np.array([0.0, 0.0, 1.0])
        R = np.column_stack([np.cross(up, inward), up, inward])  # object z = inward normal
        centre = -HALF_SIZE * inward + 0.5 * WALL_HEIGHT * up
        ext = np.array([(ground_size, WALL_HEIGHT)])
        shapes.append(Quad(Rigid3(R, centre), ext[0], _textures(ext, WALL_TEXELS_PER_M, palette, gen)[0]))

    box_sizes = np.column_stack([gen.uniform(0.6, 1.6, (4, 2)), gen.uniform(0.5, 1.8, 4)])
    cyl = np.column_stack([gen.uniform(0.25, 0.5, 2), gen.uniform(0.8, 2.2, 2)])  # radius, height
    sphere_r = gen.uniform(0.35, 0.7, 2)
    footprints = [0.5 * float(np.hypot(*s[:2])) for s in box_sizes] + list(cyl[:, 0]) + list(sphere_r)
    xy = _place(footprints, gen)
    palettes = gen.permutation(np.resize(np.array(OBJECT_PALETTES), len(footprints)))

    box_poses = [Rigid3(_rot_z(gen.uniform(0, math.pi)), np.append(xy[k], 0.0)) for k in range(len(box_sizes))]
    for k, (pose, size) in enumerate(zip(box_poses, box_sizes)):
        shapes.append(Box(pose, size, _textures(_box_extents(size), OBJECT_TEXELS_PER_M, str(palettes[k]), gen)))
    # a smaller box resting on the box with the largest footprint, turned about z
    k = int(np.argmax(box_sizes[:, 0] * box_sizes[:, 1]))
    top = np.array([0.55 * box_sizes[k, 0], 0.55 * box_sizes[k, 1], gen.uniform(0.3, 0.6)])
    on_base = Rigid3(_rot_z(gen.uniform(0, math.pi)), np.array([0.0, 0.0, box_sizes[k, 2]]))
    textures = _textures(_box_extents(top), OBJECT_TEXELS_PER_M, str(palettes[-1]), gen)
    shapes.append(Box(box_poses[k] @ on_base, top, textures))

    for k, (r, h) in enumerate(cyl):
        pose = Rigid3(_rot_z(gen.uniform(0, 2 * math.pi)), np.append(xy[4 + k], 0.0))
        ext = np.array([(2 * math.pi * r, h), (2 * r, 2 * r), (2 * r, 2 * r)])
        shapes.append(Cylinder(pose, r, h, _textures(ext, OBJECT_TEXELS_PER_M, str(palettes[4 + k]), gen)))
    for k, r in enumerate(sphere_r):
        pose = Rigid3.random(gen)
        pose = Rigid3(pose.R, np.append(xy[6 + k], r))
        ext = np.full((6, 2), 0.5 * math.pi * r)
        shapes.append(Sphere(pose, r, _textures(ext, OBJECT_TEXELS_PER_M, str(palettes[6 + k]), gen)))
    return TexturedScene(shapes)


def _box_extents(size: np.ndarray) -> np.ndarray:
    sx, sy, sz = size
    return np.array([(sy, sz), (sy, sz), (sx, sz), (sx, sz), (sx, sy), (sx, sy)])


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def demo_camera(width: int = 800, height: int = 600, focal: float | None = None) -> Camera:
    """PINHOLE camera with the principal point at the image centre; ``focal`` defaults to
    0.875 * width (a 59 degree horizontal field of view)."""
    width = check_int(width, "width", minimum=16)
    height = check_int(height, "height", minimum=16)
    f = 0.875 * width if focal is None else check_positive(focal, "focal")
    return Camera("PINHOLE", width, height, [f, f, (width - 1) / 2.0, (height - 1) / 2.0])


def orbit_cameras(
    n_images: int,
    *,
    radius: float = 6.5,
    height: float = 1.8,
    target=(0.0, 0.0, 0.6),
    arc_deg: float = 100.0,
    center_deg: float = -90.0,
) -> list[Rigid3]:
    """``cam_from_world`` of ``n_images`` cameras evenly spaced on a horizontal arc of
    ``arc_deg`` degrees (centred on the azimuth ``center_deg``) of ``radius`` metres at
    ``height``, each looking at ``target`` with the world z axis up in the image."""
    n = check_int(n_images, "n_images", minimum=1)
    radius = check_positive(radius, "radius")
    height = _finite(height, "height")
    target = as_array(target, "target", (3,))
    arc = _finite(arc_deg, "arc_deg")
    centre = _finite(center_deg, "center_deg")
    if not 0.0 <= arc < 360.0:
        raise ValueError(f"arc_deg must lie in [0, 360), got {arc}")
    az = np.radians(centre + (np.linspace(-0.5, 0.5, n) * arc if n > 1 else np.zeros(1)))
    centres = np.column_stack([target[0] + radius * np.cos(az), target[1] + radius * np.sin(az), np.full(n, height)])
    return [Rigid3.look_at(c, target) for c in centres]
