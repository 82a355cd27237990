"""Nonlinear least squares: Levenberg-Marquardt bundle adjustment with numba kernels.

Layers (each testable alone): camera projection with Jacobians (``geometry._camera_kernels``);
per-observation residual / Jacobian kernels (``_ba_kernels``); the Schur-complement normal
equations (``schur``); the LM driver (``lm``); what is fixed (``config.BAConfig``).

- :func:`solve_bundle` works on a :class:`BAProblem` (flat arrays; used by the BAL CLI);
- :func:`bundle_adjust` flattens a Reconstruction, solves and writes the result back;
- :func:`refine_pose` (motion-only) and :func:`refine_points` (structure-only) for SfM;
- :func:`reprojection_sq_errors` over flat arrays (the layout of ``_ba_kernels``).
"""

from .bundle_adjustment import FlatReconstruction, bundle_adjust, flatten_reconstruction, write_back
from .config import BAConfig, BAOptions
from .lm import IterationLog, LMSummary, levenberg_marquardt
from .losses import Loss
from .problem import BAProblem
from .refine import refine_points, refine_pose
from ._ba_kernels import sq_errors as reprojection_sq_errors  # flat arrays, per observation
from .solver import BAReport, check_start, problem_without_observations, solve_bundle, warm_up

__all__ = [
    "BAConfig",
    "BAOptions",
    "BAProblem",
    "BAReport",
    "FlatReconstruction",
    "IterationLog",
    "LMSummary",
    "Loss",
    "bundle_adjust",
    "check_start",
    "flatten_reconstruction",
    "levenberg_marquardt",
    "problem_without_observations",
    "refine_points",
    "refine_pose",
    "solve_bundle",
    "warm_up",
    "write_back",
]
