"""Incremental Structure-from-Motion: ``run_sfm(image_dir, options) -> SfmResult``."""

from ..features.patch_alignment import PatchAlignmentOptions
from .options import CameraOptions, MapperOptions, SfmOptions, VerificationOptions
from .pipeline import SfmResult, SfmWarning, list_images, run_sfm

__all__ = [
    "CameraOptions",
    "MapperOptions",
    "PatchAlignmentOptions",
    "SfmOptions",
    "SfmResult",
    "SfmWarning",
    "VerificationOptions",
    "list_images",
    "run_sfm",
]
