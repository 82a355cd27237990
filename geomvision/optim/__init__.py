"""Nonlinear least squares: Levenberg-Marquardt bundle adjustment with numba kernels.

Layers (each testable alone): camera projection with Jacobians (``geometry._camera_kernels``);
per-observation residual / Jacobian kernels (``_ba_kernels``); the Schur-complement normal
equations (``schur``); the LM driver (``lm``); what is fixed (``config.BAConfig``).

- :func:`solve_bundle` works on a :class:`BAProblem` (flat arrays; used by the BAL CLI);
- :func:`bundle_adjust` flattens a Reconstruction, solves and writes the result back;
- :func:`refine_pose` (motion-only) and :func:`refine_points` (structure-only) for SfM;
- :func:`reprojection_sq_errors` over flat arrays (the layout of ``_ba_kernels``);
- :func:`optimize_pose_graph`: SE(3) / SE(2) / Sim(3) pose graphs (``pose_graph``), started from
  the chordal relaxation (``pose_graph_init``), solved by sparse Cholesky (``sparse_cholesky``).
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# name -> module defining it, imported on first use (a pose-graph run does not load the BA stack)
_LAZY: dict[str, str] = {
    "FlatReconstruction": ".bundle_adjustment",
    "bundle_adjust": ".bundle_adjustment",
    "flatten_reconstruction": ".bundle_adjustment",
    "write_back": ".bundle_adjustment",
    "BAConfig": ".config",
    "BAOptions": ".config",
    "IterationLog": ".lm",
    "LMSummary": ".lm",
    "levenberg_marquardt": ".lm",
    "Loss": ".losses",
    "PoseGraphOptions": ".pose_graph",
    "PoseGraphReport": ".pose_graph",
    "optimize_pose_graph": ".pose_graph",
    "BAProblem": ".problem",
    "refine_points": ".refine",
    "refine_pose": ".refine",
    "BAReport": ".solver",
    "check_start": ".solver",
    "problem_without_observations": ".solver",
    "solve_bundle": ".solver",
    "warm_up": ".solver",
    "reprojection_sq_errors": "._ba_kernels:sq_errors",  # flat arrays, per observation
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

__all__ = [
    "BAConfig",
    "BAOptions",
    "BAProblem",
    "BAReport",
    "FlatReconstruction",
    "IterationLog",
    "LMSummary",
    "Loss",
    "PoseGraphOptions",
    "PoseGraphReport",
    "bundle_adjust",
    "check_start",
    "flatten_reconstruction",
    "levenberg_marquardt",
    "optimize_pose_graph",
    "problem_without_observations",
    "refine_points",
    "refine_pose",
    "solve_bundle",
    "warm_up",
    "write_back",
]
