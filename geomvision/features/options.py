"""Options of feature extraction and descriptor matching: frozen dataclasses that validate themselves.

Being frozen and made of plain values, an options object has a stable :meth:`fingerprint` that
the on-disk caches put into their keys: different options never share a cache entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from .._validation import check_int, check_positive


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _fingerprint(obj, unless_default: tuple[str, ...] = ()) -> str:
    """sha256 of the option values; fields in ``unless_default`` count only when changed (options
    added later leave the caches of earlier runs valid)."""
    values = dataclasses.asdict(obj)
    for name in unless_default:
        if values[name] == type(obj).__dataclass_fields__[name].default:
            del values[name]
    payload = json.dumps({"type": type(obj).__name__, **values}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class FeatureOptions:
    """SIFT extraction options (OpenCV SIFT with the settings COLMAP uses by default).

    max_num_features : keep at most this many features per image, the strongest by detector
        response (DoG contrast); integer >= 1.
    root_sift : store RootSIFT (L1-normalise, square root) instead of plain SIFT; both are kept
        as uint8, RootSIFT scaled by 512 like COLMAP.
    upright : fix every orientation to 0 (no rotation invariance; more distinctive descriptors
        for images taken upright). One feature per detected location and scale.
    contrast_threshold : OpenCV's contrastThreshold; a DoG extremum is kept when
        ``|D| > contrast_threshold / num_octave_layers`` on [0, 1] intensities. The default 0.02
        equals COLMAP's peak_threshold 0.02 / 3 (OpenCV's own default, 0.04, is twice as strict
        and yields too few features on smooth surfaces).
    edge_threshold : the principal-curvature ratio limit (Lowe's r; 10 in COLMAP and OpenCV); > 1.
    num_octave_layers : scales sampled per octave (3, Lowe); integer >= 1.
    sigma : Gaussian blur of the base octave in pixels (1.6, Lowe); > 0.
    max_image_size : images whose long side exceeds this are downscaled (area averaging) before
        detection and the keypoints mapped back to full-resolution pixels (pixels, >= 16); None
        never downscales.
    affine_max_tilt : > 1 detects on affine-warped copies of the image too (ASIFT, Morel & Yu
        2009, by OpenCV's ``AffineFeature``): tilts 1, sqrt 2, 2, ... up to this integer, each at
        several rotations, so that surfaces seen at very different slants still match. About 20x
        the features and the time (1.5 s per 640x480 image): for wide-baseline, weakly textured
        sequences. On ``shared/datasets/desk-loop`` (max tilt 4) neighbouring frames that shared no
        verifiable match with SIFT (frames 04-05 and 08-09: 15 and 14 essential-matrix inliers,
        the level of chance) shared 39 and 33. 0 (default) or 1: plain SIFT; at most 16.
    min_num_features : weak texture: when an image gives fewer features than this, it is
        detected again with the contrast threshold halved, down to 1/8 of ``contrast_threshold``,
        until it gives this many (an image with texture everywhere never gets there). 0: never.
    """

    max_num_features: int = 8192
    root_sift: bool = True
    upright: bool = False
    contrast_threshold: float = 0.02
    edge_threshold: float = 10.0
    num_octave_layers: int = 3
    sigma: float = 1.6
    max_image_size: int | None = 3200
    affine_max_tilt: int = 0
    min_num_features: int = 1000

    def __post_init__(self) -> None:
        check_int(self.max_num_features, "FeatureOptions.max_num_features", minimum=1)
        _check_bool(self.root_sift, "FeatureOptions.root_sift")
        _check_bool(self.upright, "FeatureOptions.upright")
        check_positive(self.contrast_threshold, "FeatureOptions.contrast_threshold")
        edge = check_positive(self.edge_threshold, "FeatureOptions.edge_threshold")
        if edge <= 1.0:
            raise ValueError(f"FeatureOptions.edge_threshold must be > 1 (a curvature ratio), got {edge}")
        check_int(self.num_octave_layers, "FeatureOptions.num_octave_layers", minimum=1)
        check_positive(self.sigma, "FeatureOptions.sigma")
        tilt = check_int(self.affine_max_tilt, "FeatureOptions.affine_max_tilt", minimum=0)
        if tilt > 1 and self.upright:
            raise ValueError("FeatureOptions: affine_max_tilt and upright cannot be combined (the affine views "
                             "rotate the image); choose one")
        if tilt > 16:
            raise ValueError(f"FeatureOptions.affine_max_tilt must be <= 16 (a tilt of 16 already views the "
                             f"surface at 86 degrees), got {tilt}")
        if self.max_image_size is not None:
            check_int(self.max_image_size, "FeatureOptions.max_image_size (or None)", minimum=16)
        check_int(self.min_num_features, "FeatureOptions.min_num_features", minimum=0)
        # store floats as floats so that 10 and 10.0 give the same fingerprint
        object.__setattr__(self, "contrast_threshold", float(self.contrast_threshold))
        object.__setattr__(self, "edge_threshold", float(self.edge_threshold))
        object.__setattr__(self, "sigma", float(self.sigma))

    def fingerprint(self) -> str:
        """sha256 hex digest of the option values (part of the feature cache key)."""
        return _fingerprint(self, unless_default=("affine_max_tilt",))


# ASIFT's descriptions of one point lie within about 1 px of each other (back-projected from the
# simulated tilts): at 1.5 px, 87 % of a desk-loop frame's ASIFT keypoints share a group (3 per
# location), 34 % of a fountain-P11 image's plain SIFT keypoints (its extra orientations)
ASIFT_SAME_LOCATION_PX = 1.5


@dataclass(frozen=True)
class MatchOptions:
    """Nearest-neighbour descriptor matching options.

    Descriptors are compared after scaling each to unit L2 norm, so distances lie in [0, 2]
    (in [0, sqrt(2)] for non-negative descriptors such as SIFT and RootSIFT).

    ratio : Lowe's ratio test, ``d1 < ratio * d2`` on the distances to the nearest and the second
        nearest neighbour; in (0, 1], 1.0 only rejects exact ties.
    mutual : keep (i, j) only when i is also j's nearest neighbour, and (with the ratio and
        distance tests applied in both directions, like COLMAP's cross check).
    max_distance : reject matches whose nearest-neighbour distance exceeds this. 0.7 matches
        COLMAP's default (its 0.7 is the angle in radians; the chord 0.7 is an angle of 0.71); in
        (0, 2].
    same_location_px : keypoints within this many pixels of a stronger one that heads a group
        describe one location (SIFT's extra orientations; ASIFT's simulated tilts, about 3
        descriptions per location): the ratio test compares the nearest neighbour with the nearest
        at another location, not with another description of the same point. Needs the keypoints
        (``match_all`` passes them). 0: plain Lowe. None (default): ``ASIFT_SAME_LOCATION_PX`` for
        ASIFT features and 0 otherwise, as SfM resolves it from ``FeatureOptions.affine_max_tilt``
        (:meth:`for_features`); a bare ``match_all`` takes None as 0. Matches then name each
        location's head, once per location, so a location's tracks join. Measured: ASIFT on
        desk-loop 1.5x the verified locations of a pair; plain SIFT on Strecha the same accuracy
        for +50 % matching-kernel time.
    """

    ratio: float = 0.8
    mutual: bool = True
    max_distance: float = 0.7
    same_location_px: float | None = None

    def __post_init__(self) -> None:
        r = check_positive(self.ratio, "MatchOptions.ratio")
        if r > 1.0:
            raise ValueError(f"MatchOptions.ratio must lie in (0, 1], got {self.ratio!r}")
        _check_bool(self.mutual, "MatchOptions.mutual")
        d = check_positive(self.max_distance, "MatchOptions.max_distance")
        if d > 2.0 or not math.isfinite(d):
            raise ValueError(f"MatchOptions.max_distance must lie in (0, 2] (unit descriptors), got {d}")
        loc = self.same_location_px
        if loc is not None:
            if isinstance(loc, bool) or not isinstance(loc, (int, float)) or not math.isfinite(loc) or loc < 0:
                raise ValueError(f"MatchOptions.same_location_px must be a finite number >= 0 (pixels) or None, "
                                 f"got {loc!r}")
            object.__setattr__(self, "same_location_px", float(loc))
        object.__setattr__(self, "ratio", float(r))
        object.__setattr__(self, "max_distance", float(d))

    @property
    def location_px(self) -> float:
        """``same_location_px`` in pixels (None: 0)."""
        return 0.0 if self.same_location_px is None else self.same_location_px

    def for_features(self, features: FeatureOptions) -> MatchOptions:
        """These options with ``same_location_px`` None resolved for features extracted with ``features``."""
        if self.same_location_px is not None:
            return self
        px = ASIFT_SAME_LOCATION_PX if features.affine_max_tilt > 1 else 0.0
        return dataclasses.replace(self, same_location_px=px)

    def fingerprint(self) -> str:
        """sha256 hex digest of the option values (part of the match cache key)."""
        if not self.location_px:  # plain Lowe: the key of the runs before the option existed
            return _fingerprint(dataclasses.replace(self, same_location_px=None), unless_default=("same_location_px",))
        # grouped matches name the locations' heads (entries from before that differ)
        return hashlib.sha256(f"{_fingerprint(self)}/heads".encode()).hexdigest()
