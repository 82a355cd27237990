"""Scene model (Reconstruction), similarity alignment and synthetic scenes with ground truth."""

from .align import CameraErrors, camera_errors, umeyama
from .reconstruction import Image, Point3D, Reconstruction
from .synthetic import SyntheticScene, forward_scene, orbit_scene, planar_scene, rotation_scene
