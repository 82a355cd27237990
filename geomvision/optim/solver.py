"""Array-level bundle adjustment: ``solve_bundle(problem, options, config) -> BAReport``.

Glues the layers together: the numba residual / Jacobian kernels (``_ba_kernels``), the
Schur-complement system (``schur``) and the LM driver (``lm``). The problem is updated in
place. ``warm_up()`` compiles (or loads from numba's cache) every kernel on a tiny problem so
that timings exclude JIT compilation.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numba
import numpy as np

from .._interrupt import check as check_interrupt
from . import _ba_kernels as kern
from .config import BAConfig, BAOptions
from .lm import LMSummary, levenberg_marquardt
from .problem import BAProblem
from .schur import SchurSystem


# observations per kernel call: 1M take 0.16 s to linearize and 0.10-0.15 s to evaluate (300
# images, 2 cores), so Ctrl-C is seen within ~0.2 s between calls; smaller problems make one call.
# (The Schur kernels and the factorisation run whole: 0.2 s and 0.3-0.5 s at 1M observations.)
OBS_PER_CALL = 1_000_000


@dataclass
class BAReport(LMSummary):
    num_observations: int = 0
    num_free_images: int = 0
    num_free_points: int = 0
    num_reduced_parameters: int = 0
    linear_solver: str = ""
    working_memory_mb: float = 0.0  # the solver's arrays: Jacobians, residuals, S, point blocks

    def to_dict(self) -> dict:
        return {
            "initial_cost": self.initial_cost,
            "final_cost": self.final_cost,
            "initial_rms_px": self.initial_rms_px,
            "final_rms_px": self.final_rms_px,
            "iterations": self.iterations,
            "successful_iterations": self.successful_iterations,
            "termination": self.termination,
            "solve_s": self.solve_s,
            "num_observations": self.num_observations,
            "num_reduced_parameters": self.num_reduced_parameters,
            "linear_solver": self.linear_solver,
            "working_memory_mb": self.working_memory_mb,
        }


class _BundleLM:
    """The LMProblem of bundle adjustment over a BAProblem (see ``lm.LMProblem``)."""

    def __init__(self, problem: BAProblem, pose_free, intr_free, point_free, options: BAOptions):
        self.p = problem
        self.pose_free = pose_free
        self.intr_free = intr_free
        self.point_free = point_free
        self.loss_id = options.loss.loss_id
        self.loss_scale = options.loss.scale
        threads = min(options.num_threads or 1, numba.get_num_threads())
        big = problem.num_observations >= options.parallel_min_observations
        self.nchunks = threads if threads > 1 and big else 1
        self.system = SchurSystem(
            problem, pose_free, intr_free, point_free, linear_solver=options.linear_solver,
            dense_max_size=options.dense_max_size, pcg_tolerance=options.pcg_tolerance,
            pcg_max_iterations=options.pcg_max_iterations, iterative_tolerance=options.iterative_tolerance,
            auto_iterative_track_length=options.auto_iterative_track_length, min_diagonal=options.min_diagonal,
            max_diagonal=options.max_diagonal, nchunks=self.nchunks, sparse_backend=options.sparse_backend,
        )
        M = problem.num_observations
        L = 6 + problem.cam_params.shape[1]
        self.r = np.empty((M, 2))
        self.Jc = np.empty((M, 2, L))
        self.Jp = np.empty((M, 2, 3))
        self.cand = (np.empty_like(problem.R), np.empty_like(problem.t), np.empty_like(problem.cam_params),
                     np.empty_like(problem.X))
        self.sq = float("nan")
        self.cand_sq = float("nan")
        self.step = None

    def working_memory_bytes(self) -> int:
        s = self.system
        nf = len(s.pt_free_idx)
        pair_blocks = len(s.pair_col) * s.L * s.L * (1 + s.nchunks)
        per_obs_blocks = len(s.pt_obs) * 3 * s.L if s.mode == 2 else 0  # the iterative solver's Jp^T Jc
        return int(self.r.nbytes + self.Jc.nbytes + self.Jp.nbytes + sum(a.nbytes for a in self.cand)
                   + 8 * (s.size + pair_blocks + per_obs_blocks + nf * (9 * 2 + 3 * 2) + s.n * 4))

    def _args(self):
        p = self.p
        return (p.R, p.t, p.cam_model, p.cam_params, p.cam_nparams, p.img_cam, p.X, p.obs_img, p.obs_pt, p.obs_uv,
                p.obs_inv_sigma, self.loss_id, self.loss_scale)

    def _over_observations(self, kernel, params, per_obs):
        """Run an observation kernel (``linearize`` / ``evaluate`` or their parallel twins) over
        ranges of at most OBS_PER_CALL observations, checking for Ctrl-C between them; returns the
        summed (cost, sq, bad). ``params``: the arguments before the observation arrays;
        ``per_obs``: the arrays after them that have one row per observation."""
        p = self.p
        m = p.num_observations
        cost, sq, bad = 0.0, 0.0, 0
        for lo in range(0, max(m, 1), OBS_PER_CALL):
            if lo:
                check_interrupt()
            hi = min(m, lo + OBS_PER_CALL)
            args = (*params, p.obs_img[lo:hi], p.obs_pt[lo:hi], p.obs_uv[lo:hi], p.obs_inv_sigma[lo:hi],
                    self.loss_id, self.loss_scale, *(a[lo:hi] for a in per_obs))
            c, s, b = kernel(*args, self.nchunks, p.cheirality) if self.nchunks > 1 else kernel(*args, p.cheirality)
            cost, sq, bad = cost + c, sq + s, bad + b
        return cost, sq, bad

    def linearize(self) -> float:
        p = self.p
        kernel = kern.linearize_parallel if self.nchunks > 1 else kern.linearize
        cost, sq, bad = self._over_observations(
            kernel, (p.R, p.t, p.cam_model, p.cam_params, p.cam_nparams, p.img_cam, p.X), (self.r, self.Jc, self.Jp))
        if bad:
            why = "point behind its camera or NaN" if p.cheirality else "point on its camera's plane, or NaN"
            raise ValueError(f"{bad} observations do not project ({why}) at the current "
                             "parameters; remove them before bundle adjustment")
        self.sq = sq
        self.system.set_jacobians(self.r, self.Jc, self.Jp)
        return cost

    def gradient_max_norm(self) -> float:
        return self.system.gradient_max_norm()

    def compute_step(self, lam: float):
        res = self.system.solve(lam)
        if res is None:
            return None
        hc, hp = res
        s = self.system
        self.step = (hc, hp)
        if s.model_decrease is not None:  # an inexact (iterative) step: the system knows L(0) - L(h)
            return float(np.sqrt(hc @ hc + np.einsum("qi,qi->", hp, hp))), s.model_decrease
        # L(0) - L(h) = 0.5 (lam h^T D h - g^T h) for the solution of (J^T J + lam D) h = -g
        hDh = float(hc @ (s.Dc * hc)) + float(np.einsum("qi,qi,qi->", hp, s.Dp, hp))
        gh = float(s.gc @ hc) + float(np.einsum("qi,qi->", s.gp, hp))
        return float(np.sqrt(hc @ hc + np.einsum("qi,qi->", hp, hp))), 0.5 * (lam * hDh - gh)

    def evaluate_candidate(self) -> float:
        p = self.p
        hc, hp = self.step
        R, t, params, X = self.cand
        kern.apply_update(p.R, p.t, p.cam_params, p.X, self.system.pose_col, self.system.intr_col, self.system.pt_col,
                          hc, hp, R, t, params, X)
        kernel = kern.evaluate_parallel if self.nchunks > 1 else kern.evaluate
        cost, sq, bad = self._over_observations(kernel, (R, t, p.cam_model, params, p.cam_nparams, p.img_cam, X), ())
        self.cand_sq = sq
        return float("inf") if bad or not np.isfinite(cost) else cost

    def accept(self) -> None:
        p = self.p
        R, t, params, X = self.cand
        self.cand = (p.R, p.t, p.cam_params, p.X)
        p.R, p.t, p.cam_params, p.X = R, t, params, X
        self.sq = self.cand_sq

    def x_norm(self) -> float:
        p = self.p
        ang = np.arccos(np.clip((np.trace(p.R, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0))
        pose = np.concatenate([ang[:, None], p.t], axis=1)[self.pose_free.any(axis=1)]
        return float(np.sqrt(np.sum(pose**2) + np.sum(p.cam_params[self.intr_free] ** 2)
                             + np.sum(p.X[self.point_free] ** 2)))

    def rms_px(self) -> float:
        m = self.p.num_observations
        return float(np.sqrt(self.sq / m)) if m else float("nan")


def check_start(problem: BAProblem) -> None:
    """Raise ``ValueError`` when an observed point does not project at the start: behind its camera
    (with ``problem.cheirality``), or on the camera's plane (Z = 0) without it."""
    e = problem.sq_errors()
    bad = np.flatnonzero(~np.isfinite(e))
    if len(bad):
        o = int(bad[0])
        why = "point behind its camera" if problem.cheirality else "point on its camera's plane (depth 0)"
        raise ValueError(
            f"{len(bad)} of {len(e)} observations do not project at the start ({why}: first is "
            f"observation {o}, image {int(problem.obs_img[o])}, point {int(problem.obs_pt[o])}); remove them first, "
            "e.g. with problem_without_observations()"
        )


_BLAS = {}


def _blas_limit(threads: int | None):
    """Context limiting BLAS threads (threadpoolctl, when installed; else a no-op)."""
    if threads is None:
        return contextlib.nullcontext()
    if "controller" not in _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS["controller"] = ThreadpoolController()
        except ImportError:  # pragma: no cover - optional
            _BLAS["controller"] = None
    ctrl = _BLAS["controller"]
    return contextlib.nullcontext() if ctrl is None else ctrl.limit(limits=threads, user_api="blas")


def solve_bundle(problem: BAProblem, options: BAOptions | None = None, config: BAConfig | None = None,
                 *, printer=None) -> BAReport:
    """Bundle-adjust ``problem`` in place; returns the report (per-iteration log in ``.log``).

    Raises ``ValueError`` for inconsistent arrays, NaN / inf parameters, or observations whose
    point is behind the camera at the start (unless ``problem.cheirality`` is False, as for BAL
    files: then only a point at depth 0 is refused). ``printer``: callable receiving the log lines.
    """
    options = BAOptions() if options is None else options
    config = BAConfig() if config is None else config
    if not isinstance(problem, BAProblem):
        raise ValueError(f"problem must be a BAProblem, got {type(problem).__name__}")
    if not isinstance(options, BAOptions) or not isinstance(config, BAConfig):
        raise ValueError("options must be a BAOptions and config a BAConfig")
    problem.validate()
    check_start(problem)
    old_threads = numba.get_num_threads()
    if options.num_threads is not None:
        numba.set_num_threads(min(options.num_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        t0 = time.perf_counter()
        pose_free, intr_free, point_free = config.masks(problem)
        lmp = _BundleLM(problem, pose_free, intr_free, point_free, options)
        if printer is None and options.verbose:
            printer = print
        with _blas_limit(options.blas_threads):
            summary = levenberg_marquardt(lmp, options, printer=printer)
        solve_s = time.perf_counter() - t0
    finally:
        numba.set_num_threads(old_threads)
    fields = {k: getattr(summary, k) for k in summary.__dataclass_fields__}
    fields["solve_s"] = solve_s
    return BAReport(
        **fields,
        num_observations=problem.num_observations,
        num_free_images=int(pose_free.any(axis=1).sum()),
        num_free_points=int(point_free.sum()),
        num_reduced_parameters=lmp.system.n,
        linear_solver=lmp.system.solver_name,
        working_memory_mb=lmp.working_memory_bytes() / 2**20,
    )


def problem_without_observations(problem: BAProblem, drop: np.ndarray) -> BAProblem:
    """A copy of ``problem`` without the observations where ``drop`` (M,) is True."""
    keep = ~np.asarray(drop, dtype=bool)
    q = problem.copy()
    q.obs_img, q.obs_pt, q.obs_uv = q.obs_img[keep], q.obs_pt[keep], np.ascontiguousarray(q.obs_uv[keep])
    q.obs_inv_sigma = np.ascontiguousarray(q.obs_inv_sigma[keep])
    return q


def warm_up(parallel: bool = False) -> float:
    """Compile or load every bundle-adjustment kernel (dense, sparse, PCG and iterative paths; with
    ``parallel`` also the parallel twins); returns the seconds it took."""
    from ..geometry.rotation import so3_exp

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (12, 3))
    R = np.stack([so3_exp(np.array([0.0, 0.1 * k, 0.0])) for k in range(3)])
    C = np.array([[0.5 * k, 0.0, -6.0] for k in range(3)])
    t = -np.einsum("nij,nj->ni", R, C)
    obs_img = np.repeat(np.arange(3), 12)
    obs_pt = np.tile(np.arange(12), 3)
    Xc = np.einsum("nij,nj->ni", R[obs_img], X[obs_pt]) + t[obs_img]
    uv = 500.0 * Xc[:, :2] / Xc[:, 2:] + 1.0
    base = BAProblem.from_arrays(R, t, [0, 0, 1], ["RADIAL", "OPENCV"],
                                 [[500.0, 0, 0, 0, 0], [500.0, 500, 0, 0, 0, 0, 0, 0]], X, obs_img, obs_pt, uv)
    for solver in ("dense", "sparse", "pcg", "iterative"):
        solve_bundle(base.copy(), BAOptions(max_iterations=2, linear_solver=solver))
        if parallel:
            solve_bundle(base.copy(), BAOptions(max_iterations=2, linear_solver=solver, num_threads=2,
                                                parallel_min_observations=0))
    return time.perf_counter() - t0
