"""Local features for SfM: OpenCV SIFT / RootSIFT extraction, exact descriptor matching, pair
selection, cached parallel batch versions of both, and sub-pixel refinement of track keypoints by
patch alignment (:mod:`geomvision.features.patch_alignment`).

    from geomvision.features import extract_all, match_all, exhaustive_pairs
    ex = extract_all(image_paths, cache_dir="cache")          # ex.features, ex.skipped
    names = list(ex.features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    matches = match_all(pairs, ex.features, cache_dir="cache")  # {(a, b): (K,2) int64}
"""

from .batch import ExtractionResult, FeatureWarning, MatchResults, default_image_names, extract_all, match_all
from .cache import CacheWarning
from .guided import match_by_projection, match_guided
from .matching import match_descriptors, unit_descriptors
from .options import FeatureOptions, MatchOptions
from .patch_alignment import PatchAlignmentOptions, align_patches, refine_track_keypoints, sample_patches
from .pairs import exhaustive_pairs, natural_sort_key, sequential_pairs, spatial_pairs, union_pairs
from .retrieval import similar_pairs, train_vocabulary, vlad_descriptors
from .sift import extract_features, root_sift
from .types import Features

__all__ = [
    "CacheWarning",
    "ExtractionResult",
    "FeatureOptions",
    "FeatureWarning",
    "Features",
    "MatchOptions",
    "MatchResults",
    "PatchAlignmentOptions",
    "align_patches",
    "default_image_names",
    "exhaustive_pairs",
    "extract_all",
    "extract_features",
    "match_all",
    "match_by_projection",
    "match_descriptors",
    "match_guided",
    "natural_sort_key",
    "refine_track_keypoints",
    "root_sift",
    "sample_patches",
    "sequential_pairs",
    "spatial_pairs",
    "similar_pairs",
    "train_vocabulary",
    "union_pairs",
    "unit_descriptors",
    "vlad_descriptors",
]
