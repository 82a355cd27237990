"""``geomvision ba``: bundle-adjust a BAL problem file.

    geomvision ba problem.bal.txt -o solved.bal.txt [--loss huber --loss-scale 1 --max-iterations 50
        --function-tolerance 1e-6 --parameter-tolerance 1e-8 --gradient-tolerance 1e-10 --threads N]

Every parameter is free by default (R, t, f, k1, k2, points) with the squared loss. The file is
solved as BAL's camera model defines it: p = -P / P.z never tests the sign of P.z, so an observation
whose point is behind its camera at the start is kept and projected through the centre, as Ceres's
BAL examples do (real files have them: BAL Ladybug, 31 of 31,843 observations); the count is
printed. --drop-behind drops those observations instead (with a warning saying how many) and
then keeps every point in front of its cameras. Prints the per-iteration table, then as its last
line one JSON object: initial_rms_px, final_rms_px, iterations, successful_iterations,
termination, behind_at_start, dropped_observations, solve_s (seconds inside the solver, JIT
compilation excluded: the kernels are compiled or loaded from numba's cache first, reported as
jit_s), read_s, write_s, peak_memory_mb (peak resident set size of the whole process, from
getrusage) and solver_memory_mb (the solver's own arrays: Jacobians, reduced system, point blocks).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("ba", help="bundle-adjust a BAL problem (Levenberg-Marquardt, Schur complement)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problem", help="BAL text file (n_cams n_pts n_obs, observations, cameras, points)")
    p.add_argument("-o", "--output", help="write the solved problem here (BAL text, atomic)")
    p.add_argument("--loss", default="squared", choices=["squared", "huber", "cauchy", "soft_l1"],
                   help="robust loss of the reprojection residuals (default squared)")
    p.add_argument("--loss-scale", type=float, default=1.0, help="robust loss scale in pixels (default 1)")
    p.add_argument("--max-iterations", type=int, default=50,
                   help="bundle adjustment: Levenberg-Marquardt iterations at most (default 50)")
    p.add_argument("--function-tolerance", type=float, default=1e-6,
                   help="stop when |cost change| <= this x cost (relative; default 1e-6)")
    p.add_argument("--parameter-tolerance", type=float, default=1e-8,
                   help="stop when |step| <= this x (|x| + this) (relative; default 1e-8)")
    p.add_argument("--gradient-tolerance", type=float, default=1e-10,
                   help="stop when max |gradient| <= this (default 1e-10)")
    p.add_argument("--threads", type=int, default=None, help="numba threads for the kernels (default 1: serial)")
    p.add_argument("--linear-solver", default="auto", choices=["auto", "dense", "sparse", "pcg", "iterative"],
                   help="solver of the reduced camera system: dense or sparse Cholesky, pcg (preconditioned "
                        "conjugate gradients), iterative (conjugate gradients without forming it: O(observations) "
                        "per product), auto: iterative when the tracks are long (observation-weighted mean length "
                        ">= 12), else dense up to 1500 columns, then sparse (default auto)")
    p.add_argument("--fix-intrinsics", action="store_true", help="hold f, k1, k2 fixed")
    p.add_argument("--drop-behind", action="store_true",
                   help="drop the observations whose point is behind its camera at the start, and keep every point "
                        "in front during the solve (default: keep them and follow BAL's projection, as Ceres does)")
    p.add_argument("--quiet", action="store_true", help="print only the JSON line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.bal import read_bal, write_bal
    from ..optim import BAConfig, BAOptions, problem_without_observations, solve_bundle, warm_up

    options = BAOptions(
        loss=args.loss, loss_scale=args.loss_scale, max_iterations=args.max_iterations,
        function_tolerance=args.function_tolerance, parameter_tolerance=args.parameter_tolerance,
        gradient_tolerance=args.gradient_tolerance, num_threads=args.threads, linear_solver=args.linear_solver,
    )
    config = BAConfig(refine_focal_length=not args.fix_intrinsics, refine_extra_params=not args.fix_intrinsics)
    t0 = time.perf_counter()
    problem = read_bal(args.problem)
    read_s = time.perf_counter() - t0
    if problem.num_observations == 0:
        raise ValueError(f"{args.problem}: the problem has no observations ({problem.num_images} cameras, "
                         f"{problem.num_points} points): there is nothing to adjust")
    behind = problem.depths() < 0.0
    n_behind = int(behind.sum())
    n_obs = problem.num_observations
    dropped = 0
    if n_behind and args.drop_behind:
        problem = problem_without_observations(problem, behind)
        problem.cheirality = True
        dropped = n_behind
        print(f"warning: dropped {n_behind} of {n_obs} observations whose point is behind its camera at the start "
              f"({problem.num_observations} left)", file=sys.stderr, flush=True)
    elif n_behind and not args.quiet:
        print(f"note: {n_behind} of {n_obs} observations have their point behind the camera at the start; they are "
              "kept and projected as BAL's model does (p = -P / P.z), like Ceres (--drop-behind drops them)",
              flush=True)
    jit_s = warm_up(parallel=(args.threads or 1) > 1)
    printer = None if args.quiet else (lambda line: print(line, flush=True))
    report = solve_bundle(problem, options, config, printer=printer)
    write_s = 0.0
    if args.output:
        t0 = time.perf_counter()
        write_bal(problem, args.output)
        write_s = time.perf_counter() - t0
    out = {
        "problem": str(args.problem),
        "num_cameras": problem.num_images,
        "num_points": problem.num_points,
        "num_observations": problem.num_observations,
        "behind_at_start": n_behind,
        "dropped_observations": dropped,
        "initial_rms_px": report.initial_rms_px,
        "final_rms_px": report.final_rms_px,
        "initial_cost": report.initial_cost,
        "final_cost": report.final_cost,
        "iterations": report.iterations,
        "successful_iterations": report.successful_iterations,
        "termination": report.termination,
        "solve_s": round(report.solve_s, 6),
        "time_per_iteration_s": round(report.solve_s / max(report.iterations, 1), 6),
        "jit_s": round(jit_s, 4),
        "read_s": round(read_s, 4),
        "write_s": round(write_s, 4),
        "linear_solver": report.linear_solver,
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "solver_memory_mb": round(report.working_memory_mb, 2),
    }
    print(json.dumps(out), flush=True)
    return 0 if report.termination != "failure" else 1


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["ba", *sys.argv[1:]]))
