"""What bundle adjustment may change (``BAConfig``) and how it solves (``BAOptions``).

Both are dataclasses that validate themselves and raise ``ValueError`` on unknown or invalid
values. ``BAConfig`` turns into three free-parameter masks over a :class:`BAProblem`:

    pose_free (I,6)   columns (dw, dt) of each image;  intr_free (C,P)  camera parameters;
    point_free (N,)   whole points.

Gauge: with every pose and point free the problem has a 7-dof similarity gauge freedom. LM's
damping keeps the steps finite without fixing it (as Ceres does on BAL problems); with
``gauge="two_cameras"`` the first image's pose is held and one translation coordinate of a
second image (the one along which the baseline shows most) fixes the scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import CAMERA_MODELS
from .losses import Loss
from .problem import MODEL_NAMES, BAProblem

GAUGES = ("none", "two_cameras")
LINEAR_SOLVERS = ("auto", "dense", "sparse", "pcg", "iterative")
SPARSE_BACKENDS = ("auto", "cholmod", "superlu")
_FOCAL = {"f", "fx", "fy", "skew"}
_PP = {"cx", "cy"}


def _int_tuple(values, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}") from None
    return out


@dataclass
class BAConfig:
    """Which parameters are held fixed.

    Indices here are array positions of a :class:`BAProblem` (image, camera, point index);
    ``bundle_adjust`` on a Reconstruction takes image / camera / point3D ids instead.
    ``fixed_params`` maps a camera to the names of parameters to hold (e.g. ``{0: ("k2",)}``).
    """

    refine_poses: bool = True
    refine_points: bool = True
    refine_focal_length: bool = True
    refine_principal_point: bool = False
    refine_extra_params: bool = True
    fixed_images: Sequence[int] = ()
    fixed_cameras: Sequence[int] = ()
    fixed_points: Sequence[int] = ()
    fixed_params: Mapping[int, Sequence[str]] = field(default_factory=dict)
    gauge: str = "none"

    def __post_init__(self) -> None:
        for name in ("refine_poses", "refine_points", "refine_focal_length", "refine_principal_point", "refine_extra_params"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        self.fixed_images = _int_tuple(self.fixed_images, "fixed_images")
        self.fixed_cameras = _int_tuple(self.fixed_cameras, "fixed_cameras")
        self.fixed_points = _int_tuple(self.fixed_points, "fixed_points")
        if not isinstance(self.fixed_params, Mapping):
            raise ValueError(f"fixed_params must map a camera to parameter names, got {type(self.fixed_params).__name__}")
        self.fixed_params = {int(k): (v,) if isinstance(v, str) else tuple(str(n) for n in v)
                             for k, v in self.fixed_params.items()}
        if self.gauge not in GAUGES:
            raise ValueError(f"gauge must be one of {', '.join(GAUGES)}, got {self.gauge!r}")

    def masks(self, problem: BAProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pose_free (I,6), intr_free (C,P), point_free (N,)) for ``problem``; parameters that
        no observation constrains (an image, camera or point without observations) are fixed."""
        I, C, N = problem.num_images, problem.num_cameras, problem.num_points
        for name, idx, n in (("fixed_images", self.fixed_images, I), ("fixed_cameras", self.fixed_cameras, C),
                             ("fixed_points", self.fixed_points, N), ("fixed_params", tuple(self.fixed_params), C)):
            bad = [i for i in idx if not 0 <= i < n]
            if bad:
                raise ValueError(f"{name}: index {bad[0]} out of range [0, {n})")
        pose_free = np.full((I, 6), bool(self.refine_poses))
        pose_free[list(self.fixed_images)] = False
        P = problem.cam_params.shape[1]
        intr_free = np.zeros((C, P), dtype=bool)
        for c in range(C):
            names = CAMERA_MODELS[MODEL_NAMES[int(problem.cam_model[c])]].param_names
            held = set(self.fixed_params.get(c, ()))
            unknown = held - set(names)
            if unknown:
                raise ValueError(f"fixed_params[{c}]: {MODEL_NAMES[int(problem.cam_model[c])]} has no parameter "
                                 f"{min(unknown)!r} (it has {', '.join(names)})")
            for k, n in enumerate(names):
                if n in _FOCAL:
                    refine = self.refine_focal_length
                elif n in _PP:
                    refine = self.refine_principal_point
                else:
                    refine = self.refine_extra_params
                intr_free[c, k] = refine and n not in held
        intr_free[list(self.fixed_cameras)] = False
        point_free = np.full(N, bool(self.refine_points))
        point_free[list(self.fixed_points)] = False
        # nothing observes these
        seen_img = np.bincount(problem.obs_img, minlength=I) > 0
        pose_free[~seen_img] = False
        seen_cam = np.bincount(problem.img_cam[seen_img], minlength=C) > 0 if I else np.zeros(C, bool)
        intr_free[~seen_cam] = False
        point_free[np.bincount(problem.obs_pt, minlength=N) == 0] = False
        if self.gauge == "two_cameras":
            self._fix_gauge(problem, pose_free, seen_img)
        return pose_free, intr_free, point_free

    def _fix_gauge(self, problem: BAProblem, pose_free: np.ndarray, seen_img: np.ndarray) -> None:
        fully_fixed = [i for i in range(problem.num_images) if seen_img[i] and not pose_free[i].any()]
        if len(fully_fixed) >= 2:
            return
        cand = [i for i in range(problem.num_images) if seen_img[i] and i not in fully_fixed]
        if not fully_fixed:
            if not cand:
                return
            ref = cand.pop(0)
            pose_free[ref] = False
        else:
            ref = fully_fixed[0]
        C_ref = -problem.R[ref].T @ problem.t[ref]
        for b in cand:
            C_b = -problem.R[b].T @ problem.t[b]
            d = problem.R[b] @ (C_ref - C_b)
            if np.linalg.norm(d) > 1e-12 * (1.0 + np.linalg.norm(C_ref)):
                pose_free[b, 3 + int(np.argmax(np.abs(d)))] = False
                return


@dataclass
class BAOptions:
    """Solver settings (Ceres's names and defaults where they exist).

    Stopping: |cost change| <= function_tolerance * cost, |step| <= parameter_tolerance *
    (|x| + parameter_tolerance), max |gradient| <= gradient_tolerance, or max_iterations.
    Damping: lambda starts at ``initial_damping`` (1 / Ceres's initial trust radius) and follows
    Nielsen's rule; the damping matrix is diag(J^T J) clamped to [min_diagonal, max_diagonal].
    ``linear_solver``: "dense" Cholesky of the reduced camera system, "sparse" Cholesky (CHOLMOD
    when scikit-sparse is installed, else SuperLU), "pcg" (block-Jacobi preconditioned conjugate
    gradients on S), "iterative" (the same on S never formed, each product O(observations); its
    steps are inexact, to ``iterative_tolerance`` relative residual: Ceres's ITERATIVE_SCHUR), or
    "auto": "iterative" when forming S would cost ``auto_iterative_track_length`` or more image
    pairs per observation (the observation-weighted mean track length of the free points,
    sum t^2 / sum t), else dense up to ``dense_max_size`` columns, then sparse.
    ``sparse_backend``: "cholmod" (scikit-sparse), "superlu" (scipy), or "auto" (CHOLMOD when
    installed).
    ``num_threads``: None or 1 runs the serial kernels (the default: on the shared 2-core
    machine, threads cost more than they saved at every size measured, 30k-300k observations);
    N > 1 runs their parallel twins on N numba threads from ``parallel_min_observations``
    observations on. ``blas_threads``: LAPACK / BLAS threads during the solve
    (threadpoolctl; None leaves them): the reduced systems are small, and BLAS threads spinning
    against numba's threads made a 900 x 900 Cholesky 10x slower on a 2-core machine.
    """

    loss: Loss | str = "squared"
    loss_scale: float = 1.0
    max_iterations: int = 50
    function_tolerance: float = 1e-6
    parameter_tolerance: float = 1e-8
    gradient_tolerance: float = 1e-10
    initial_damping: float = 1e-4
    min_diagonal: float = 1e-6
    max_diagonal: float = 1e32
    min_relative_decrease: float = 1e-3
    max_consecutive_invalid_steps: int = 10
    linear_solver: str = "auto"
    sparse_backend: str = "auto"
    dense_max_size: int = 1500
    pcg_tolerance: float = 1e-8
    pcg_max_iterations: int = 500
    iterative_tolerance: float = 0.1
    auto_iterative_track_length: float = 12.0
    num_threads: int | None = None
    parallel_min_observations: int = 40_000
    blas_threads: int | None = 1
    verbose: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.loss, str):
            self.loss = Loss(self.loss, self.loss_scale)
        elif not isinstance(self.loss, Loss):
            raise ValueError(f"loss must be a name or a Loss, got {type(self.loss).__name__}")
        for name in ("function_tolerance", "parameter_tolerance", "gradient_tolerance", "min_relative_decrease",
                     "pcg_tolerance", "iterative_tolerance", "auto_iterative_track_length"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("initial_damping", "min_diagonal", "max_diagonal"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name, lo in (("max_iterations", 0), ("max_consecutive_invalid_steps", 1), ("dense_max_size", 0),
                         ("pcg_max_iterations", 1), ("parallel_min_observations", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.sparse_backend not in SPARSE_BACKENDS:
            raise ValueError(f"sparse_backend must be one of {', '.join(SPARSE_BACKENDS)}, got {self.sparse_backend!r}")
        if self.sparse_backend == "cholmod":
            from .sparse_cholesky import cholmod_available

            if not cholmod_available():
                raise ValueError("sparse_backend='cholmod' needs scikit-sparse (and libsuitesparse-dev to build it); "
                                 "use 'superlu' or 'auto'")
        if self.linear_solver not in LINEAR_SOLVERS:
            raise ValueError(f"linear_solver must be one of {', '.join(LINEAR_SOLVERS)}, got {self.linear_solver!r}")
        if self.blas_threads is not None and (isinstance(self.blas_threads, bool) or not isinstance(self.blas_threads, int)
                                              or self.blas_threads < 1):
            raise ValueError(f"blas_threads must be a positive integer or None, got {self.blas_threads!r}")
        if self.num_threads is not None and (isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int)
                                             or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}")
