"""Incremental Structure-from-Motion: ``run_sfm(image_dir, options) -> SfmResult``, or its three
stages over a project folder: ``extract_features`` (or ``import_features``), ``match_and_verify``,
``map_project``; with known poses: ``triangulate_model``, ``register_images``."""

from ..features.patch_alignment import PatchAlignmentOptions
from .online import FrameResult, OnlineMapper, localize
from .options import CameraOptions, MapperOptions, OnlineOptions, SfmOptions, VerificationOptions
from .known_poses import triangulate_model
from .pipeline import SfmResult, SfmWarning, list_images, run_sfm
from .registration import register_images
from .stage_extract import extract_features, load_features
from .stage_import import import_features
from .stage_map import map_project
from .stage_match import match_and_verify

__all__ = [
    "CameraOptions",
    "FrameResult",
    "MapperOptions",
    "OnlineMapper",
    "OnlineOptions",
    "PatchAlignmentOptions",
    "SfmOptions",
    "SfmResult",
    "SfmWarning",
    "VerificationOptions",
    "extract_features",
    "import_features",
    "list_images",
    "load_features",
    "localize",
    "map_project",
    "match_and_verify",
    "register_images",
    "run_sfm",
    "triangulate_model",
]
