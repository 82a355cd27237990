"""Robust estimation: one RANSAC engine generic over an estimator protocol, and its estimators.

See ``engine.py`` for the design. Public entry points: ``ransac(estimator, sq_threshold, options)``
for any :class:`Estimator`, and the ``estimate_*`` functions for the standard models (pixels in,
``max_error`` thresholds in pixels; ``estimate_sim3`` takes 3-D points and a distance).
"""

from .absolute_pose import AbsolutePoseEstimator, PoseAmbiguity, estimate_absolute_pose, resolve_pose_ambiguity
from .engine import Estimator, RansacResult, RansacStats, ransac
from .fundamental import FundamentalEstimator, estimate_fundamental
from .homography import HomographyEstimator, estimate_homography
from .line import LineEstimator, estimate_line
from .options import RansacOptions
from .relative_pose import RelativePoseEstimator, estimate_essential, estimate_relative_pose
from .sim3 import Sim3Estimator, estimate_sim3

__all__ = [
    "AbsolutePoseEstimator",
    "Estimator",
    "FundamentalEstimator",
    "HomographyEstimator",
    "LineEstimator",
    "PoseAmbiguity",
    "RansacOptions",
    "RansacResult",
    "RansacStats",
    "RelativePoseEstimator",
    "Sim3Estimator",
    "estimate_absolute_pose",
    "estimate_essential",
    "estimate_fundamental",
    "estimate_homography",
    "estimate_line",
    "estimate_relative_pose",
    "estimate_sim3",
    "ransac",
    "resolve_pose_ambiguity",
]
