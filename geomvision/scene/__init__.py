"""Scene model (Reconstruction), similarity alignment and synthetic scenes with ground truth."""

from .align import CameraErrors, camera_errors, umeyama
from .pose_graph import PoseGraph
from .reconstruction import Image, Point3D, Reconstruction
from .synthetic import SyntheticScene, forward_scene, orbit_scene, planar_scene, rotation_scene
from .demo_scene import demo_camera, demo_scene, orbit_cameras
from .render import render_depth, render_image
from .rendered_datasets import (
    RenderedViews,
    RotationSequence,
    render_orbit_dataset,
    render_orbit_views,
    rotation_sequence,
    write_strecha_layout,
)
from .shapes import Box, Cylinder, Quad, Sphere, Texture, TexturedScene
from .textures import fractal_noise, procedural_texture
