"""Scene model: the Reconstruction (cameras, images, points by id), the PoseGraph, and
similarity alignment with camera errors against a reference. Synthetic scenes and the renderer
live in :mod:`geomvision.synthetic`."""

from .align import CameraErrors, camera_errors, umeyama
from .pose_graph import PoseGraph
from .reconstruction import Image, Point3D, Reconstruction
