"""Robust estimation: one RANSAC engine generic over an estimator protocol, and its estimators.

See ``engine.py`` for the design. Public entry points: ``ransac(estimator, sq_threshold, options)``
for any :class:`Estimator`, and the ``estimate_*`` functions for the standard models.
"""

from .engine import Estimator, RansacResult, RansacStats, ransac
from .line import LineEstimator, estimate_line
from .options import RansacOptions

__all__ = [
    "Estimator",
    "LineEstimator",
    "RansacOptions",
    "RansacResult",
    "RansacStats",
    "estimate_line",
    "ransac",
]
