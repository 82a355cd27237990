"""The Levenberg-Marquardt driver: it owns the damping and the stopping rules, nothing else.

It works on any object with the ``LMProblem`` protocol (bundle adjustment, motion-only,
structure-only all use the same driver):

    linearize() -> cost                   Jacobians at the current x (0.5 sum rho)
    gradient_max_norm() -> float          max |J^T r| at the current x
    compute_step(lam) -> (|h|, L(0)-L(h)) | None    damped step; None when the solve failed
    evaluate_candidate() -> cost          cost at x (+) h  (inf when invalid, e.g. behind a camera)
    accept()                              x <- x (+) h
    x_norm() -> float                     |x| for the parameter tolerance
    rms_px() -> float                     RMS reprojection error at the current x, for the log

Damping (Nielsen; the same schedule as Ceres's LEVENBERG_MARQUARDT strategy with
lambda = 1 / trust radius): a step with gain ratio rho = (cost - new cost) / (L(0) - L(h)) above
``min_relative_decrease`` is taken and lambda *= max(1/3, 1 - (2 rho - 1)^3), nu = 2;
otherwise lambda *= nu, nu *= 2.

Stopping (Ceres's rules): |cost change| <= function_tolerance * cost (an improving candidate is
taken first), |h| <= parameter_tolerance * (|x| + parameter_tolerance), max |gradient| <=
gradient_tolerance, ``max_iterations`` iterations, or too many consecutive failed solves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from .._interrupt import check as check_interrupt


class LMProblem(Protocol):
    def linearize(self) -> float: ...
    def gradient_max_norm(self) -> float: ...
    def compute_step(self, lam: float) -> tuple[float, float] | None: ...
    def evaluate_candidate(self) -> float: ...
    def accept(self) -> None: ...
    def x_norm(self) -> float: ...
    def rms_px(self) -> float: ...


@dataclass
class IterationLog:
    iteration: int
    cost: float  # after the iteration
    cost_change: float
    gradient_max_norm: float
    step_norm: float
    relative_decrease: float
    damping: float  # lambda used for this iteration's step
    rms_px: float
    accepted: bool
    iteration_s: float

    def row(self) -> str:
        return (f"{self.iteration:4d} {self.cost:14.6e} {self.cost_change:11.3e} {self.gradient_max_norm:10.3e} "
                f"{self.step_norm:10.3e} {self.relative_decrease:9.3f} {self.damping:9.2e} {self.rms_px:10.5f} "
                f"{'yes' if self.accepted else 'no ':>4} {self.iteration_s:8.4f}")


LOG_HEADER = (f"{'iter':>4} {'cost':>14} {'cost_change':>11} {'|gradient|':>10} {'|step|':>10} {'rho':>9} "
              f"{'lambda':>9} {'rms_px':>10} {'acc':>4} {'time_s':>8}")


@dataclass
class LMSummary:
    initial_cost: float
    final_cost: float
    initial_rms_px: float
    final_rms_px: float
    iterations: int
    successful_iterations: int
    termination: str  # function_tolerance | parameter_tolerance | gradient_tolerance | max_iterations | failure
    solve_s: float
    log: list[IterationLog] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.termination in ("function_tolerance", "parameter_tolerance", "gradient_tolerance")


def levenberg_marquardt(problem: LMProblem, options, *, printer=None) -> LMSummary:
    """Minimise ``problem`` with LM; ``options`` is a ``BAOptions`` (tolerances, damping).
    ``printer``: a callable taking one line of text per iteration (the log table), or None."""
    t0 = time.perf_counter()
    cost = problem.linearize()
    initial_cost = cost
    initial_rms = problem.rms_px()
    gnorm = problem.gradient_max_norm()
    lam = float(options.initial_damping)
    nu = 2.0
    log: list[IterationLog] = []
    if printer is not None:
        printer(LOG_HEADER)
        printer(f"{0:4d} {cost:14.6e} {0.0:11.3e} {gnorm:10.3e} {0.0:10.3e} {0.0:9.3f} {lam:9.2e} "
                f"{initial_rms:10.5f} {'-':>4} {time.perf_counter() - t0:8.4f}")
    termination = "max_iterations"
    successful = 0
    invalid = 0
    it = 0
    if gnorm <= options.gradient_tolerance:
        termination = "gradient_tolerance"
    else:
        while it < options.max_iterations:
            check_interrupt()  # Ctrl-C between iterations (the kernels inside check between their chunks)
            it += 1
            ti = time.perf_counter()
            lam_used = lam
            step = problem.compute_step(lam)
            if step is None:
                invalid += 1
                lam *= nu
                nu *= 2.0
                entry = IterationLog(it, cost, 0.0, gnorm, 0.0, 0.0, lam_used, float("nan"), False,
                                     time.perf_counter() - ti)
                log.append(entry)
                if printer is not None:
                    printer(entry.row())
                if invalid >= options.max_consecutive_invalid_steps:
                    termination = "failure"
                    break
                continue
            invalid = 0
            step_norm, model_decrease = step
            if step_norm <= options.parameter_tolerance * (problem.x_norm() + options.parameter_tolerance):
                entry = IterationLog(it, cost, 0.0, gnorm, step_norm, 0.0, lam_used, problem.rms_px(), False,
                                     time.perf_counter() - ti)
                log.append(entry)
                if printer is not None:
                    printer(entry.row())
                termination = "parameter_tolerance"
                break
            new_cost = problem.evaluate_candidate()
            change = cost - new_cost
            rho = change / model_decrease if model_decrease > 0 else -1.0
            accepted = bool(new_cost < float("inf") and rho > options.min_relative_decrease)
            ftol_hit = abs(change) <= options.function_tolerance * cost
            if ftol_hit and change > 0:
                accepted = True
            if accepted:
                problem.accept()
                successful += 1
                cost = problem.linearize()
                gnorm = problem.gradient_max_norm()
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3) if rho > 0 else 1.0
                nu = 2.0
            else:
                lam *= nu
                nu *= 2.0
            entry = IterationLog(it, cost, change if accepted else 0.0, gnorm, step_norm, rho, lam_used,
                                 problem.rms_px(), accepted, time.perf_counter() - ti)
            log.append(entry)
            if printer is not None:
                printer(entry.row())
            if ftol_hit:
                termination = "function_tolerance"
                break
            if accepted and gnorm <= options.gradient_tolerance:
                termination = "gradient_tolerance"
                break
    return LMSummary(
        initial_cost=initial_cost,
        final_cost=cost,
        initial_rms_px=initial_rms,
        final_rms_px=problem.rms_px(),
        iterations=it,
        successful_iterations=successful,
        termination=termination,
        solve_s=time.perf_counter() - t0,
        log=log,
    )
