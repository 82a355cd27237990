"""Robust estimation: one RANSAC engine generic over an estimator protocol, and its estimators.

See ``engine.py`` for the design. Public entry points: ``ransac(estimator, sq_threshold, options)``
for any :class:`Estimator`, and the ``estimate_*`` functions for the standard models (pixels in,
``max_error`` thresholds in pixels).
"""

from .absolute_pose import AbsolutePoseEstimator, estimate_absolute_pose
from .engine import Estimator, RansacResult, RansacStats, ransac
from .fundamental import FundamentalEstimator, estimate_fundamental
from .homography import HomographyEstimator, estimate_homography
from .line import LineEstimator, estimate_line
from .options import RansacOptions
from .relative_pose import RelativePoseEstimator, estimate_essential, estimate_relative_pose

__all__ = [
    "AbsolutePoseEstimator",
    "Estimator",
    "FundamentalEstimator",
    "HomographyEstimator",
    "LineEstimator",
    "RansacOptions",
    "RansacResult",
    "RansacStats",
    "RelativePoseEstimator",
    "estimate_absolute_pose",
    "estimate_essential",
    "estimate_fundamental",
    "estimate_homography",
    "estimate_line",
    "estimate_relative_pose",
    "ransac",
]
