"""Incremental Structure-from-Motion: ``run_sfm(image_dir, options) -> SfmResult``, or its three
stages over a project folder: ``extract_features``, ``match_and_verify``, ``map_project``."""

from ..features.patch_alignment import PatchAlignmentOptions
from .online import FrameResult, OnlineMapper, localize
from .options import CameraOptions, MapperOptions, OnlineOptions, SfmOptions, VerificationOptions
from .pipeline import SfmResult, SfmWarning, list_images, run_sfm
from .stage_extract import extract_features, load_features
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
    "list_images",
    "load_features",
    "localize",
    "map_project",
    "match_and_verify",
    "run_sfm",
]
