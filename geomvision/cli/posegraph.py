"""``geomvision posegraph``: optimise a g2o pose graph (SE(3), SE(2) or geomvision's Sim(3)).

    geomvision posegraph IN.g2o -o OUT.g2o [--init auto|chordal|file] [--loss none|huber|cauchy
        --loss-scale 3 --max-edge-chi2 X] [--max-iterations 100 --function-tolerance 1e-7]

Prints the LM iteration table, a summary and, as its last line, one JSON object. Two costs are
printed: geomvision's chi2 ``sum e^T I e`` with its error ``[t(D), rotvec(R(D))]`` (what is
minimised; GTSAM's and Ceres' error to first order) and g2o's chi2 with g2o's error (the
quaternion vector part instead of the rotation vector, so rotation terms weigh about 1/4).

Which start: ``auto`` (default) is right for nearly every graph: it starts from the chordal
relaxation (which escapes the local minima that LM from odometry-chained vertices falls into)
and also tries the file's vertices when they cost less (a graph optimised before) or when a
robust loss is on. ``chordal`` / ``file`` force one. Use ``--loss cauchy`` (and
``--max-edge-chi2``) when loop closures may be wrong; the list of switched-off edges is printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("posegraph", help="optimise a g2o pose graph (SE3, SE2, Sim3)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", help="g2o file (VERTEX_SE3:QUAT / EDGE_SE3:QUAT, VERTEX_SE2 / EDGE_SE2, or SIM3:QUAT)")
    p.add_argument("-o", "--output", help="write the optimised graph here (g2o, atomic; the same kind as the input)")
    p.add_argument("--init", default="auto", choices=["auto", "chordal", "file"],
                   help="start: chordal relaxation, the file's vertices, or auto (chordal, plus the file's "
                        "vertices when they cost less or a robust loss is on; default)")
    p.add_argument("--loss", default="none", choices=["none", "huber", "cauchy"],
                   help="robust loss on each edge's chi2 (default none: plain least squares)")
    p.add_argument("--loss-scale", type=float, default=3.0,
                   help="robust loss scale in standard deviations of the edge error (sqrt of chi2; default 3)")
    p.add_argument("--max-edge-chi2", type=float, default=None,
                   help="switch off edges whose chi2 (e^T I e) stays above this after convergence, then solve "
                        "again (default: keep every edge)")
    p.add_argument("--max-iterations", type=int, default=100, help="LM iterations at most (default 100)")
    p.add_argument("--function-tolerance", type=float, default=None,
                   help="stop when the relative cost change is below this (default: the library's)")
    p.add_argument("--linear-solver", default="auto", choices=["auto", "cholmod", "superlu", "dense"],
                   help="sparse Cholesky backend (default auto: CHOLMOD when scikit-sparse is installed)")
    p.add_argument("--quiet", action="store_true", help="print only the JSON line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.g2o import read_g2o, write_g2o
    from ..optim.pose_graph import PoseGraphOptions, optimize_pose_graph

    kwargs = {}
    if args.function_tolerance is not None:
        kwargs["function_tolerance"] = args.function_tolerance
    options = PoseGraphOptions(init=args.init, loss=args.loss, loss_scale=args.loss_scale,
                               max_edge_chi2=args.max_edge_chi2, max_iterations=args.max_iterations,
                               linear_solver=args.linear_solver, **kwargs)
    if args.output and not str(args.output).endswith(".g2o"):
        raise ValueError(f"--output must be a .g2o file, got {args.output!r}")
    t0 = time.perf_counter()
    graph = read_g2o(args.graph)
    read_s = time.perf_counter() - t0
    printer = None if args.quiet else (lambda line: print(line, flush=True))
    result, report = optimize_pose_graph(graph, options, printer=printer)
    write_s = 0.0
    if args.output:
        t0 = time.perf_counter()
        write_g2o(result, args.output)
        write_s = time.perf_counter() - t0
    if not args.quiet:
        print(report.summary(), flush=True)
    out = {
        "graph": str(args.graph),
        "kind": report.kind,
        "num_nodes": report.num_nodes,
        "num_edges": report.num_edges,
        "init": report.init,
        "initial_chi2": report.initial_chi2,
        "final_chi2": report.final_chi2,
        "initial_g2o_chi2": report.initial_g2o_chi2,
        "final_g2o_chi2": report.final_g2o_chi2,
        "cost_definition": "chi2 = sum_k e_k^T I_k e_k; geomvision e = [t(D), rotvec(R(D))], "
                           "g2o e = [t(D), qvec(R(D))], D = i_from_j_meas^-1 T_i^-1 T_j",
        "iterations": report.iterations,
        "termination": report.termination,
        "outlier_edges": report.outlier_edges.tolist(),
        "linear_solver": report.linear_solver,
        "read_s": round(read_s, 4),
        "init_s": round(report.init_s, 4),
        "solve_s": round(report.solve_s, 4),
        "write_s": round(write_s, 4),
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    # strict JSON: NaN (no cost at the file's poses when it has none) is written as null
    print(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}), flush=True)
    return 0 if report.termination != "failure" else 1


def peak_memory_mb() -> float:
    """Peak resident set of this process (VmHWM: this program's own, unlike getrusage's ru_maxrss,
    which Linux carries over from the parent across exec); ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["posegraph", *sys.argv[1:]]))
