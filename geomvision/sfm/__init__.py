"""Incremental Structure-from-Motion: ``run_sfm(image_dir, options) -> SfmResult``."""

from ..features.patch_alignment import PatchAlignmentOptions
from .online import FrameResult, OnlineMapper, localize
from .options import CameraOptions, MapperOptions, OnlineOptions, SfmOptions, VerificationOptions
from .pipeline import SfmResult, SfmWarning, list_images, run_sfm

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
    "list_images",
    "localize",
    "run_sfm",
]
