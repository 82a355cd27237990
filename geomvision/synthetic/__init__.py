"""Demo and test data with exact ground truth (no downloaded data): a textured scene and a renderer.

- :mod:`.point_scenes`: cameras, points and noisy observations (:class:`SyntheticScene`) for
  solver, RANSAC, BA and mapper tests (:func:`orbit_scene`, :func:`forward_scene`,
  :func:`rotation_scene`, :func:`planar_scene`);
- :mod:`.shapes`, :mod:`.textures`, :mod:`.demo_scene`: textured solids, procedural textures and
  the built-in courtyard scene (:func:`demo_scene`);
- :mod:`.render` (numba kernels in :mod:`._render_kernels`): an exact ray-casting renderer of
  images and depth;
- :mod:`.pose_graphs`: grid-world pose graphs (SE(3), SE(2), Sim(3)) with exact ground truth,
  noise and optional wrong loop edges (:func:`grid_world_pose_graph`);
- :mod:`.rendered_datasets`: image sets rendered from the demo scene (orbit views in the Strecha
  layout, pure-rotation sequences) and views of a textured wall (planar sequences) with their
  exact cameras;
- :mod:`.sequences`: camera walks through the demo scene rendered frame by frame (video input);
- :mod:`.courtyard`: a courtyard of repeated windows walked round once (:func:`render_courtyard`);
- :mod:`.repeated_pairs`: two-view matches on repetitive facades with wrong matches between
  neighbouring windows (hard relative-pose pairs, :func:`repeated_structure_pair`).

Of the library, only the ``geomvision demo`` command uses it (tests, benchmarks and apps do too);
it imports :mod:`geomvision.scene` and :mod:`geomvision.geometry`, never the other way round.
"""

from .point_scenes import SyntheticScene, forward_scene, orbit_scene, planar_scene, rotation_scene
from .demo_scene import demo_camera, demo_scene, orbit_cameras
from .pose_graphs import SyntheticPoseGraph, grid_world_pose_graph
from .render import render_depth, render_image
from .rendered_datasets import (
    PlanarSequence,
    RenderedViews,
    RotationSequence,
    planar_sequence,
    render_orbit_dataset,
    render_orbit_views,
    rotation_sequence,
    write_strecha_layout,
)
from .courtyard import courtyard_scene, courtyard_walk, render_courtyard
from .repeated_pairs import MatchedPair, repeated_structure_pair
from .sequences import render_walk, walk_poses
from .shapes import Box, Cylinder, Quad, Sphere, Texture, TexturedScene
from .textures import fractal_noise, procedural_texture
