"""Bundle adjustment: geomvision vs Ceres (pycolmap / pyceres) vs scipy.optimize.least_squares.

    .venv/bin/python benchmarks/bench_ba.py [--quick] [--rounds 3] [--threads 2] [--geomvision-threads 1]
                                            [--no-scaling] [--no-street] [--max-cams 1000] [--json out.json]

Part 1, the BAL problems of ../shared/datasets/bal: every solver starts from the file, all
parameters free (R, t, f, k1, k2, points), squared loss, LM, tolerances function 1e-6 /
parameter 1e-8 / gradient 1e-10, at most 50 iterations; Ceres with SPARSE_SCHUR and 2 threads
(``--threads``); geomvision with its default serial kernels (``--geomvision-threads 2`` runs its
parallel kernels: on the loaded shared 2-core machine they were slower);
scipy with method="trf", the sparse Jacobian pattern, x_scale="jac" and OPENBLAS_NUM_THREADS=1
(as the data README advises). Runs are interleaved: round r runs every (problem, solver) pair,
in a rotated solver order, each in a fresh worker process.

Part 2, the scaling curve: synthetic street problems (``ba_synthetic.py``) from 10 to
``--max-cams`` cameras (~1,000 observations per camera, so up to 1M observations), geomvision
vs Ceres, at most 10 iterations: time per iteration and memory against size.

Part 3 (issue 17), BAL-like problems that converge slowly and have points behind their cameras
at the start, like the real BAL files (Ladybug: 31 of 31,843 observations, 32 LM iterations):
street sequences of a 4-camera rig (``ba_synthetic.bal_street_problem``: drifted poses, linearly
triangulated points, 1 % blunders), written as BAL files under benchmarks/_cache/, solved from
the file by geomvision and by Ceres with BAL's own cost (``ceres-bal``:
``ceres_bal/bal_ceres.cc``, Snavely's reprojection error as in Ceres's examples, which follows
BAL's projection for points behind a camera; built here against the system Ceres, Debian's
``libceres-dev``), same tolerances, at most 100 iterations. pycolmap's cost cannot be used
there: it zeroes the residual of a point behind its camera. ``ceres-bal`` also runs on the
Part 1 files to show how it compares with pycolmap's Ceres.

Timing: ``solve_s`` is wall time inside the solver call (geomvision: JIT compilation excluded,
the kernels are loaded first; Ceres: ``pyceres.solve`` including its preprocessing; ceres-bal:
``ceres::Solve``; scipy: ``least_squares``). Memory: peak resident-set growth of the worker during the solve (Linux
VmHWM after resetting it through /proc/self/clear_refs, minus VmRSS before the solve), the
same measure for every solver.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BAL_PROBLEMS = ("fountain-P11", "Herz-Jesus-P8", "entry-P10")
CACHE = HERE / "_cache"
CERES_BAL_SRC = HERE / "ceres_bal" / "bal_ceres.cc"
# name -> keyword arguments of ba_synthetic.bal_street_problem (4-camera rig, 13 positions = 52 images: the
# size of BAL's Ladybug-49)
STREET_PROBLEMS = {
    "street-52": dict(n_positions=13, seed=1, drift_deg=0.5, drift_pos=0.05),
    "street-52-s0": dict(n_positions=13, seed=0, drift_deg=0.5, drift_pos=0.05),
    "street-240": dict(n_positions=60, seed=0, drift_deg=0.25, drift_pos=0.025),
}
STREET_MAX_ITERATIONS = 100
DROP = "#drop-behind"
# BAL's model on the file as it is (ceres-bal: Ceres with BAL's cost); and geomvision on the file with the
# observations behind their camera dropped (``geomvision ba --drop-behind``; its cost is over fewer
# observations). pycolmap's Ceres is no peer there: its cost zeroes the residual of a point behind its camera,
# so it moves the points of blunders behind a camera to shed them (street-52: 10 iterations, then points behind)
STREET_SOLVERS = ["geomvision", "ceres-bal", "geomvision" + DROP]
TOLERANCES = {"function_tolerance": 1e-6, "parameter_tolerance": 1e-8, "gradient_tolerance": 1e-10}


# ---------------------------------------------------------------------------------- ceres-bal peer
def ceres_bal_binary() -> Path | None:
    """Build ``ceres_bal/bal_ceres.cc`` against the system Ceres (once; rebuilt when the source
    changes); None with a note when it cannot be built (``scripts/setup-peers.sh`` installs them)."""
    exe = CACHE / "bal_ceres"
    if exe.exists() and exe.stat().st_mtime >= CERES_BAL_SRC.stat().st_mtime:
        return exe
    CACHE.mkdir(exist_ok=True)
    cmd = ["g++", "-O2", "-DNDEBUG", "-std=c++17", "-I/usr/include/eigen3", str(CERES_BAL_SRC), "-o", str(exe),
           "-lceres", "-lglog", "-lpthread"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print("# ceres-bal not built (needs g++ and Ceres headers: run scripts/setup-peers.sh):\n"
              + proc.stderr[-800:], flush=True)
        return None
    return exe


def street_file(name: str) -> Path:
    """The BAL file of a street problem, generated once into benchmarks/_cache/."""
    path = CACHE / f"{name}.bal.txt"
    if not path.exists():
        from ba_synthetic import bal_street_problem

        from geomvision.io.bal import write_bal

        CACHE.mkdir(exist_ok=True)
        write_bal(bal_street_problem(**STREET_PROBLEMS[name]), path)
    return path


def run_ceres_bal(path: str, threads: int, max_iterations: int) -> dict:
    """Run the ceres-bal binary on a BAL file; RMS before and after from geomvision's reader."""
    import tempfile

    from geomvision.io.bal import read_bal

    exe = ceres_bal_binary()
    if exe is None:
        raise RuntimeError("ceres-bal is not built")
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "solved.bal.txt"
        cmd = [str(exe), path, "--threads", str(threads), "--max-iterations", str(max_iterations), "--out", str(out_path)]
        for key, value in TOLERANCES.items():
            cmd += [f"--{key.replace('_', '-')}", repr(value)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"ceres-bal on {path} failed:\n{proc.stderr[-2000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        start, solved = read_bal(path), read_bal(out_path)
    out.update(worker="ceres-bal", problem=path, initial_rms_px=start.rms_px(), final_rms_px=solved.rms_px(),
               call_s=wall, num_observations=start.num_observations, num_cameras=start.num_images,
               behind_at_start=int((start.depths() < 0).sum()), peak_rss_growth_mb=float("nan"))
    return out


# ------------------------------------------------------------------------------------------ worker
def _status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load(spec: str):
    if spec.startswith("street:"):
        from ba_synthetic import street_problem

        return street_problem(int(spec.split(":")[1]))
    from geomvision.io.bal import read_bal

    if spec.endswith(DROP):  # the observations behind their camera at the start removed (as --drop-behind)
        from geomvision.optim import problem_without_observations

        problem = read_bal(spec[: -len(DROP)])
        problem = problem_without_observations(problem, problem.depths() < 0)
        problem.cheirality = True
        return problem
    return read_bal(spec)


def worker(args) -> None:
    import numpy as np  # noqa: F401

    problem = _load(args.problem)
    initial_rms = problem.rms_px()
    behind = int((problem.depths() < 0).sum())
    tol = dict(TOLERANCES, max_iterations=args.max_iterations)
    if args.worker == "geomvision":

        from geomvision.optim import BAOptions, solve_bundle, warm_up

        warm_up(parallel=args.threads > 1)
        run = lambda: solve_bundle(problem, BAOptions(**tol, num_threads=args.threads))
    elif args.worker == "ceres":
        from ba_peers import build_pycolmap, solve_ceres  # noqa: F401

        run = lambda: solve_ceres(problem, threads=args.threads, **tol)
    else:
        from ba_peers import solve_scipy

        run = lambda: solve_scipy(problem, **tol)
    reset_ok = _reset_peak()
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    c0 = time.process_time()
    result = run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = _status_kb("VmHWM")
    if args.worker == "geomvision":
        out = {"solve_s": result.solve_s, "iterations": result.iterations,
               "successful_iterations": result.successful_iterations, "final_rms_px": result.final_rms_px,
               "termination": result.termination, "linear_solver": result.linear_solver,
               "initial_cost": result.initial_cost, "final_cost": result.final_cost,
               "log": [[e.iteration, e.accepted, e.iteration_s, e.damping] for e in result.log]}
    else:
        solved, info = result
        out = dict(info, final_rms_px=solved.rms_px())
    if "final_cost" not in out:
        out["final_cost"] = 0.5 * out["final_rms_px"] ** 2 * problem.num_observations
    out.update(worker=args.worker, problem=args.problem, initial_rms_px=initial_rms, call_s=wall, cpu_s=cpu,
               behind_at_start=behind,
               num_observations=problem.num_observations, num_cameras=problem.num_images,
               peak_rss_growth_mb=(peak - rss0) / 1024.0 if reset_ok else float("nan"),
               peak_rss_mb=peak / 1024.0)
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------------ orchestrator
def run_worker(solver: str, problem: str, threads: int, max_iterations: int) -> dict:
    if solver == "ceres-bal":
        return run_ceres_bal(problem, threads, max_iterations)
    env = dict(os.environ)
    if solver == "scipy":
        env["OPENBLAS_NUM_THREADS"] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", solver, "--problem", problem, "--threads",
           str(threads), "--max-iterations", str(max_iterations)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{solver} on {problem} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x, spec):
    return "n/a" if math.isnan(x) else format(x, spec)


def bal_part(data: Path, solvers, rounds: int, threads: dict) -> list[dict]:
    results = []
    for r in range(rounds):
        for name in BAL_PROBLEMS:
            order = solvers[r % len(solvers):] + solvers[: r % len(solvers)]
            for solver in order:
                res = run_worker(solver, str(data / f"{name}.bal.txt"), threads[solver], 50)
                res.update(name=name, round=r)
                results.append(res)
                print(f"  round {r} {name:14s} {solver:10s} {res['solve_s']:7.3f} s  {res['iterations']:2d} it  "
                      f"rms {res['final_rms_px']:.5f}", flush=True)
    return results


def summarise_bal(results: list[dict], solvers) -> str:
    lines = [("| problem | solver | iterations (successful) | final RMS px | solve s (median) | s / iteration | "
              "CPU s (median) | peak RSS growth MB | time / Ceres |"), "|---|---|---|---|---|---|---|---|---|"]
    for name in BAL_PROBLEMS:
        med = {}
        for solver in solvers:
            rs = [r for r in results if r["name"] == name and r["worker"] == solver]
            if rs:
                med[solver] = statistics.median(r["solve_s"] for r in rs)
        for solver in solvers:
            rs = [r for r in results if r["name"] == name and r["worker"] == solver]
            if not rs:
                continue
            it = rs[0]["iterations"]
            ratio = med[solver] / med["ceres"] if "ceres" in med else float("nan")
            lines.append(
                f"| {name} | {solver} | {it} ({rs[0]['successful_iterations']}) | {rs[0]['final_rms_px']:.5f} | "
                f"{med[solver]:.3f} | {med[solver] / max(it, 1):.4f} | "
                f"{_fmt(statistics.median(r.get('cpu_s', float('nan')) for r in rs), '.3f')} | "
                f"{_fmt(statistics.median(r['peak_rss_growth_mb'] for r in rs), '.1f')} | {_fmt(ratio, '.2f')} |")
    return "\n".join(lines)


def street_part(names, solvers, rounds: int, threads: dict) -> list[dict]:
    results = []
    for r in range(rounds):
        for name in names:
            path = str(street_file(name))
            order = solvers[r % len(solvers):] + solvers[: r % len(solvers)]
            for solver in order:
                base, drop = solver.split("#")[0], solver.endswith(DROP)
                res = run_worker(base, path + (DROP if drop else ""), threads[base], STREET_MAX_ITERATIONS)
                res.update(name=name, round=r, worker=solver)
                results.append(res)
                print(f"  round {r} {name:12s} {solver:10s} {res['solve_s']:7.3f} s  {res['iterations']:3d} it  "
                      f"cost {res['final_cost']:.6g}  rms {res['final_rms_px']:.5f}  "
                      f"{os.getloadavg()[0]:.1f} load", flush=True)
    return results


def summarise_street(results: list[dict], solvers) -> str:
    lines = [("| problem | images / observations / behind at start | solver | iterations (successful) | final cost | "
              "cost / Ceres | solve s median (min-max) | s / iteration | time / Ceres |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["name"] for r in results):
        med, cost = {}, {}
        for solver in solvers:
            rs = [r for r in results if r["name"] == name and r["worker"] == solver]
            if rs:
                med[solver] = statistics.median(r["solve_s"] for r in rs)
                cost[solver] = rs[0]["final_cost"]
        for solver in solvers:
            rs = [r for r in results if r["name"] == name and r["worker"] == solver]
            if not rs:
                continue
            it = rs[0]["iterations"]
            t = [r["solve_s"] for r in rs]
            ref = "ceres" + DROP if solver.endswith(DROP) else "ceres-bal"
            lines.append(
                f"| {name} | {rs[0]['num_cameras']} / {rs[0]['num_observations']} / {rs[0]['behind_at_start']} | "
                f"{solver} | {it} ({rs[0]['successful_iterations']}) | {cost[solver]:.7g} | "
                f"{_fmt(cost[solver] / cost[ref] if ref in cost else float('nan'), '.5f')} | "
                f"{med[solver]:.3f} ({min(t):.3f}-{max(t):.3f}) | {med[solver] / max(it, 1):.4f} | "
                f"{_fmt(med[solver] / med[ref] if ref in med else float('nan'), '.2f')} |")
    return "\n".join(lines)


def scaling_part(sizes, threads: dict, solvers) -> list[dict]:
    results = []
    for n in sizes:
        for solver in solvers:
            res = run_worker(solver, f"street:{n}", threads[solver], 10)
            res.update(n_cams=n)
            results.append(res)
            print(f"  {n:5d} cams {res['num_observations']:8d} obs {solver:10s} {res['solve_s']:8.3f} s "
                  f"{res['iterations']:2d} it  {res['peak_rss_growth_mb']:8.1f} MB  rms {res['final_rms_px']:.4f}",
                  flush=True)
    return results


def summarise_scaling(results: list[dict]) -> str:
    lines = [("| cameras | observations | geomvision s/iter | Ceres s/iter | ratio | geomvision CPU s/iter | "
              "Ceres CPU s/iter | geomvision MB | Ceres MB | final RMS (g / C) |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for n in sorted({r["n_cams"] for r in results}):
        g = next((r for r in results if r["n_cams"] == n and r["worker"] == "geomvision"), None)
        c = next((r for r in results if r["n_cams"] == n and r["worker"] == "ceres"), None)
        if g is None:
            continue
        gi = g["solve_s"] / max(g["iterations"], 1)
        ci = c["solve_s"] / max(c["iterations"], 1) if c else nan
        gc = g.get("cpu_s", nan) / max(g["iterations"], 1)
        cc = c.get("cpu_s", nan) / max(c["iterations"], 1) if c else nan
        lines.append(f"| {n} | {g['num_observations']} | {gi:.4f} | {_fmt(ci, '.4f')} | {_fmt(gi / ci, '.2f')} | "
                     f"{_fmt(gc, '.4f')} | {_fmt(cc, '.4f')} | "
                     f"{g['peak_rss_growth_mb']:.1f} | {_fmt(c['peak_rss_growth_mb'] if c else nan, '.1f')} | "
                     f"{g['final_rms_px']:.4f} / {_fmt(c['final_rms_px'] if c else nan, '.4f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round, no scipy past the first problem, scaling to 100 cams")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="Ceres threads (default 2)")
    ap.add_argument("--geomvision-threads", type=int, default=1, help="geomvision numba threads (default 1)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--no-bal", action="store_true")
    ap.add_argument("--no-street", action="store_true", help="skip Part 3 (BAL-like street problems)")
    ap.add_argument("--street", default=",".join(STREET_PROBLEMS),
                    help=f"Part 3 problems, comma-separated (default: all of {', '.join(STREET_PROBLEMS)})")
    ap.add_argument("--max-cams", type=int, default=1000)
    ap.add_argument("--json", help="write every run's record here")
    ap.add_argument("--summarise", metavar="JSON", help="print the tables of a --json file and exit")
    ap.add_argument("--worker", choices=["geomvision", "ceres", "scipy"], help=argparse.SUPPRESS)
    ap.add_argument("--problem", help=argparse.SUPPRESS)
    ap.add_argument("--max-iterations", type=int, default=50, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.summarise:
        records = json.loads(Path(args.summarise).read_text())
        if records["bal"]:
            print(summarise_bal(records["bal"], ["geomvision", "ceres", "ceres-bal", "scipy"]))
        if records.get("street"):
            print()
            print(summarise_street(records["street"], STREET_SOLVERS))
        if records["scaling"]:
            print()
            print(summarise_scaling(records["scaling"]))
        return
    from geomvision.io.datasets import data_root

    threads = {"geomvision": args.geomvision_threads, "ceres": args.threads, "ceres-bal": args.threads,
               "scipy": 1}
    have_ceres_bal = ceres_bal_binary() is not None
    load = os.getloadavg()
    print(f"# bench_ba: threads {threads}; {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    records = {"bal": [], "street": [], "scaling": []}
    if not args.no_bal:
        root = data_root()
        if root is None or not (root / "bal").is_dir():
            sys.exit("bench_ba: ../shared/datasets/bal not found (set GEOMVISION_DATA)")
        rounds = 1 if args.quick else args.rounds
        solvers = ["geomvision", "ceres", "scipy"] + (["ceres-bal"] if have_ceres_bal else [])
        records["bal"] = bal_part(root / "bal", solvers, rounds, threads)
        print()
        print(summarise_bal(records["bal"], ["geomvision", "ceres", "ceres-bal", "scipy"]))
    if not args.no_street and have_ceres_bal:
        names = ["street-52"] if args.quick else [n for n in args.street.split(",") if n]
        unknown = [n for n in names if n not in STREET_PROBLEMS]
        if unknown:
            sys.exit(f"bench_ba: unknown --street problem {unknown[0]!r} (choose from {', '.join(STREET_PROBLEMS)})")
        print(flush=True)
        records["street"] = street_part(names, STREET_SOLVERS, 1 if args.quick else args.rounds, threads)
        print()
        print(summarise_street(records["street"], STREET_SOLVERS))
    if not args.no_scaling:
        sizes = [n for n in (10, 30, 100, 300, 1000) if n <= (100 if args.quick else args.max_cams)]
        print(flush=True)
        records["scaling"] = scaling_part(sizes, threads, ["geomvision", "ceres"])
        print()
        print(summarise_scaling(records["scaling"]))
    load = os.getloadavg()
    print(f"\n# load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
