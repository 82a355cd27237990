"""A courtyard of repeated facades walked round once, rendered with exact poses (issue 15's hard case).

:func:`courtyard_scene` is an open rectangular courtyard: a cobbled ground and four facades of
plain, faintly textured plaster with a grid of identical windows (a few differ, as curtains do),
so that most features lie on repeated structure. :func:`courtyard_walk` gives the cameras of a
closed walk inside it (an ellipse, each view looking across the courtyard at the facades, or
outwards at the nearest one: ``facing="walls"``) and :func:`render_courtyard` renders the views.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import RngLike, as_rng, check_int, check_positive
from ..geometry.rigid import Rigid3
from .demo_scene import demo_camera
from .render import render_image
from .rendered_datasets import RenderedViews
from .shapes import Quad, Texture, TexturedScene
from .textures import procedural_texture

__all__ = ["courtyard_scene", "courtyard_walk", "render_courtyard"]

FACADE_TEXELS_PER_M = 80.0
GROUND_TEXELS_PER_M = 100.0


def _window_tile(w: int, h: int, gen: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8 window: a dark frame, mullions and textured panes."""
    pane = procedural_texture(w, h, rng=gen, palette="slate", max_radius=max(3.0, w / 5.0))
    tile = pane.astype(np.float64)
    b = max(2, w // 10)
    frame = np.array([236.0, 232.0, 222.0])
    tile[:b], tile[-b:], tile[:, :b], tile[:, -b:] = frame, frame, frame, frame
    tile[h // 2 - b // 2: h // 2 + b // 2 + 1] = frame  # transom
    tile[:, w // 2 - b // 2: w // 2 + b // 2 + 1] = frame  # mullion
    return tile.astype(np.uint8)


def facade_texture(width_m: float, height_m: float, gen: np.random.Generator, *, floors: int = 3,
                   window_m: tuple[float, float] = (1.2, 1.6), spacing_m: float = 2.6,
                   unique_fraction: float = 0.15) -> Texture:
    """A facade ``width_m`` x ``height_m`` metres: faint plaster with ``floors`` rows of windows
    every ``spacing_m`` metres, all one tile except ``unique_fraction`` of them (their own tiles)."""
    tpm = FACADE_TEXELS_PER_M
    W, H = max(2, math.ceil(width_m * tpm)), max(2, math.ceil(height_m * tpm))
    plaster = procedural_texture(W, H, rng=gen, palette="stone", max_radius=12.0).astype(np.float64)
    img = 0.25 * plaster + 0.75 * np.array([214.0, 196.0, 160.0])  # plain: little to match on
    tw, th = int(window_m[0] * tpm), int(window_m[1] * tpm)
    tile = _window_tile(tw, th, gen)
    n_cols = max(1, int((width_m - 1.0) // spacing_m))
    x0 = 0.5 * (width_m - (n_cols - 1) * spacing_m)
    floor_h = height_m / floors
    for row in range(floors):
        v = int(((row + 0.55) * floor_h) * tpm) - th // 2
        for col in range(n_cols):
            u = int((x0 + col * spacing_m) * tpm) - tw // 2
            t = _window_tile(tw, th, gen) if gen.random() < unique_fraction else tile
            img[v:v + th, u:u + tw] = t
    return Texture(np.clip(img, 0, 255).astype(np.uint8), tpm)


def courtyard_scene(size_m: tuple[float, float] = (18.0, 13.0), wall_height_m: float = 10.0,
                    rng: RngLike = 0, unique_fraction: float = 0.15) -> TexturedScene:
    """The courtyard: the ground ``size_m`` (x, y extents, centred at the origin, z up) and four
    inward-facing facades ``wall_height_m`` high, ``unique_fraction`` of their windows with tiles
    of their own. Deterministic for a given ``rng``."""
    gen = as_rng(rng)
    sx, sy = (check_positive(v, "size_m") for v in size_m)
    hz = check_positive(wall_height_m, "wall_height_m")
    ground = procedural_texture(math.ceil(sx * GROUND_TEXELS_PER_M), math.ceil(sy * GROUND_TEXELS_PER_M), rng=gen,
                                palette="earth", max_radius=10.0)
    shapes = [Quad(Rigid3(), (sx, sy), Texture(ground, GROUND_TEXELS_PER_M))]
    up = np.array([0.0, 0.0, 1.0])
    for k in range(4):
        phi = 0.5 * math.pi * k
        inward = -np.array([math.cos(phi), math.sin(phi), 0.0])
        half = 0.5 * (sx if k % 2 == 0 else sy)
        length = sy if k % 2 == 0 else sx
        R = np.column_stack([np.cross(up, inward), up, inward])  # object z = inward normal
        centre = -half * inward + 0.5 * hz * up
        shapes.append(Quad(Rigid3(R, centre), (length, hz),
                           facade_texture(length, hz, gen, unique_fraction=unique_fraction)))
    return TexturedScene(shapes)


def courtyard_walk(n_views: int, *, size_m: tuple[float, float] = (18.0, 13.0), margin_m: float = 3.0,
                   height_m: float = 1.6, look_up_deg: float = 12.0, facing: str = "across") -> list[Rigid3]:
    """``cam_from_world`` of ``n_views`` views at equal angles about the centre on a closed
    elliptical walk ``margin_m`` inside the walls; view 0 follows the last. ``facing="across"``:
    each view looks across the courtyard (towards the far side of the centre) at the facades;
    ``"walls"``: each looks outwards at the nearest facade, so that a view overlaps only its
    neighbours' and most pairs see one wall (a plane) and turn at the corners. Views are tilted
    up by ``look_up_deg``."""
    n = check_int(n_views, "n_views", minimum=3)
    if facing not in ("across", "walls"):
        raise ValueError(f"facing must be 'across' or 'walls', got {facing!r}")
    ax, ay = 0.5 * size_m[0] - margin_m, 0.5 * size_m[1] - margin_m
    if ax <= 0 or ay <= 0:
        raise ValueError(f"margin_m {margin_m} leaves no room to walk in a {size_m} courtyard")
    th = 2.0 * math.pi * np.arange(n) / n
    centres = np.column_stack([ax * np.cos(th), ay * np.sin(th), np.full(n, height_m)])
    if facing == "across":  # at a point past the centre, turned a little so that views are not all radial
        look = np.column_stack([-0.6 * ax * np.cos(th + 0.5), -0.6 * ay * np.sin(th + 0.5), np.zeros(n)])
    else:  # radially outwards, at a point well beyond the walls
        look = centres + 20.0 * np.column_stack([np.cos(th), np.sin(th), np.zeros(n)])
    dist = np.linalg.norm(look[:, :2] - centres[:, :2], axis=1)
    look[:, 2] = height_m + dist * math.tan(math.radians(look_up_deg))
    return [Rigid3.look_at(c, t) for c, t in zip(centres, look)]


def render_courtyard(n_views: int = 19, *, width: int = 800, height: int = 600, rng: RngLike = 0,
                     supersample: int = 2, size_m: tuple[float, float] = (18.0, 13.0), unique_fraction: float = 0.15,
                     **walk) -> RenderedViews:
    """Render :func:`courtyard_walk` (keywords ``walk`` pass on) in :func:`courtyard_scene` of
    ``size_m`` with :func:`demo_camera` (``width`` x ``height``); views named ``view_000.png``, ...
    in walking order."""
    camera = demo_camera(width, height)
    poses = courtyard_walk(n_views, size_m=size_m, **walk)
    scene = courtyard_scene(size_m, rng=rng, unique_fraction=unique_fraction)
    images = [render_image(scene, camera, T, supersample=supersample) for T in poses]
    return RenderedViews(images, camera, poses, [f"view_{i:03d}.png" for i in range(len(poses))])
