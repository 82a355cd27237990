"""Pose-graph optimisation: geomvision against GTSAM on the same g2o files, in one run.

    .venv/bin/python benchmarks/bench_pose_graph.py [--sizes 1000 10000 100000] [--repeats 3]

Graphs: the shared ones (sphere, parking-garage: SE(3); intel: SE(2)) and synthetic grid-world
SE(3) graphs of 1k, 10k and 100k poses (``geomvision.synthetic.grid_world_pose_graph``: odometry
chained into the vertices, as g2o files ship them; 1 deg / 5 cm noise).

For each graph and solver:
- ``e2e_s``: wall time of a fresh process as a user runs it (start Python, import, read the
  g2o file, optimise, write the result), best of ``--repeats``; numba kernels come from the
  on-disk cache (a first run after install compiles them once: ``cold_e2e_s`` in the header);
- ``solve_s``: the optimisation alone, in this process after a warm-up (geomvision: initialisation
  + LM; GTSAM: the chordal initialisation where used + LM);
- iterations, peak memory of the process (``peak_mb``), the final cost in geomvision's chi2
  (``sum e^T I e``, evaluated at every solver's result with the same code) and the largest node
  position difference to the reference optimum, relative to the graph's extent (``dev``): GTSAM's
  LM run to convergence (relative tolerance 1e-10, at most 60 iterations) from both starts, the
  lower GTSAM error (the ``reference`` row).

GTSAM runs LM with its default parameters (relative / absolute error tolerance 1e-5), a tight
prior on node 0, from the file's vertices (``gtsam-file``) and from its chordal initialisation
(``gtsam-chordal``: InitializePose3 in 3-D, LAGO in 2-D). geomvision runs its defaults
(``--init auto``: chordal start). Ceres is not run: pyceres has no compiled relative-pose cost,
and a cost function written in Python would time the interpreter, not Ceres.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GEOMVISION = [PY, "-m", "geomvision.cli.main", "posegraph"]

# argv: g2o path, output path ("-": none), 3-D flag, start (file | chordal), "tight" to run LM to a
# relative tolerance of 1e-10 (the reference optimum) instead of GTSAM's defaults
GTSAM_SCRIPT = r"""
import sys, time, gtsam
path, out, is3d, start, tight = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5] == "tight"
graph, initial = gtsam.readG2o(path, is3d)
if is3d:
    graph.add(gtsam.PriorFactorPose3(0, initial.atPose3(0), gtsam.noiseModel.Diagonal.Variances([1e-8] * 6)))
else:
    graph.add(gtsam.PriorFactorPose2(0, initial.atPose2(0), gtsam.noiseModel.Diagonal.Variances([1e-8] * 3)))
t0 = time.perf_counter()
if start == "chordal":
    initial = gtsam.InitializePose3.initialize(graph) if is3d else gtsam.lago.initialize(graph)
params = gtsam.LevenbergMarquardtParams()
if tight:
    params.setRelativeErrorTol(1e-10)
    params.setAbsoluteErrorTol(0.0)
    params.setMaxIterations(60)
optimizer = gtsam.LevenbergMarquardtOptimizer(graph, initial, params)
result = optimizer.optimize()
solve_s = time.perf_counter() - t0
if out != "-":
    gtsam.writeG2o(graph, result, out)
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(solve_s, optimizer.iterations(), peak_kb / 1024.0, graph.error(result))
"""

GTSAM_ERROR_SCRIPT = r"""
import sys, gtsam
path, is3d, results = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
graph, initial = gtsam.readG2o(path, is3d)
for r in results:
    _, values = gtsam.readG2o(r, is3d)
    print(graph.error(values))
"""


def run_measured(cmd: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, cwd=ROOT, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return wall, proc.stdout.decode()


def positions(path: Path) -> dict[int, np.ndarray]:
    from geomvision.io import read_g2o

    g = read_g2o(path)
    return {k: T.t for k, T in g.nodes.items()}


def chi2_of(path: Path, reference) -> float:
    """geomvision's chi2 of ``reference``'s edges at the vertices stored in ``path``."""
    from geomvision.io import read_g2o

    g = read_g2o(path)
    ref = reference.copy()
    ids = np.array(list(ref.nodes))
    _, R, t = g.node_arrays()
    order = {k: r for r, k in enumerate(g.nodes)}
    rows = np.array([order[int(k)] for k in ids])
    ref.set_node_arrays(ids, R[rows], t[rows], g.node_scales()[rows] if g.kind == "sim3" else None)
    return ref.chi2()


def bench_graph(name: str, path: Path, repeats: int, workdir: Path) -> list[dict]:
    from geomvision.io import read_g2o
    from geomvision.optim.pose_graph import optimize_pose_graph

    graph = read_g2o(path)
    is3d = graph.kind != "se2"
    rows = []
    results = {}
    # --- geomvision, fresh process
    out = workdir / f"{name}.geomvision.g2o"
    e2e, stdout = min((run_measured([*GEOMVISION, str(path), "-o", str(out), "--quiet"])
                       for _ in range(repeats)), key=lambda r: r[0])
    info = json.loads(stdout.strip().splitlines()[-1])
    peak = info["peak_memory_mb"]
    optimize_pose_graph(graph)  # warm (kernels loaded)
    solve = min(optimize_pose_graph(graph)[1].total_s for _ in range(repeats))
    results["geomvision"] = out
    rows.append({"solver": "geomvision", "e2e_s": e2e, "solve_s": solve, "iterations": info["iterations"],
                 "peak_mb": peak, "start": info["init"]})
    # --- GTSAM from the file's vertices and from its chordal start
    for start in ("file", "chordal"):
        out = workdir / f"{name}.gtsam-{start}.g2o"
        best = None
        try:
            for _ in range(repeats):
                r = run_measured([PY, "-c", GTSAM_SCRIPT, str(path), str(out), "1" if is3d else "0", start, "default"])
                if best is None or r[0] < best[0]:
                    best = r
        except RuntimeError as exc:  # LAGO (2-D) takes diagonal noise models only
            print(f"# {name}: gtsam-{start} failed: {str(exc).strip().splitlines()[-1]}", flush=True)
            continue
        e2e, stdout = best
        solve_s, iters, peak, _ = stdout.split()
        results[f"gtsam-{start}"] = out
        rows.append({"solver": f"gtsam-{start}", "e2e_s": e2e, "solve_s": float(solve_s),
                     "iterations": int(iters), "peak_mb": float(peak), "start": start})
    # --- the reference optimum: GTSAM's LM run to convergence (relative tolerance 1e-10) from the
    # file's vertices and from its chordal start (3-D); the lower GTSAM error wins
    reference = None
    for start in ("file", "chordal") if is3d else ("file",):
        out = workdir / f"{name}.reference-{start}.g2o"
        _, stdout = run_measured([PY, "-c", GTSAM_SCRIPT, str(path), str(out), "1" if is3d else "0", start, "tight"])
        error = float(stdout.split()[-1])
        if reference is None or error < reference[0]:
            reference = (error, out)
    P_ref = positions(reference[1])
    ids = sorted(P_ref)
    ref = np.array([P_ref[k] for k in ids])
    extent = float(np.ptp(ref, axis=0).max())
    results["reference"] = reference[1]
    names = [row["solver"] for row in rows] + ["reference"]
    _, stdout = run_measured([PY, "-c", GTSAM_ERROR_SCRIPT, str(path), "1" if is3d else "0",
                              *[str(results[n]) for n in names]])
    gtsam_errors = dict(zip(names, map(float, stdout.split())))
    for row in rows:
        row["chi2"] = chi2_of(results[row["solver"]], graph)
        row["gtsam_error"] = gtsam_errors[row["solver"]]
        P = positions(results[row["solver"]])
        row["dev"] = float(np.abs(np.array([P[k] for k in ids]) - ref).max() / extent)
        row["graph"] = name
        row["nodes"], row["edges"] = graph.num_nodes, graph.num_edges
    rows.append({"solver": "reference", "e2e_s": float("nan"), "solve_s": float("nan"), "iterations": 0,
                 "peak_mb": float("nan"), "start": reference[1].stem.split("-")[-1],
                 "chi2": chi2_of(reference[1], graph), "gtsam_error": gtsam_errors["reference"], "dev": 0.0,
                 "graph": name, "nodes": graph.num_nodes,
                 "edges": graph.num_edges})
    return rows


def synthetic(num_nodes: int, workdir: Path) -> Path:
    from geomvision.io import write_g2o
    from geomvision.synthetic import grid_world_pose_graph

    path = workdir / f"grid3d-{num_nodes}.g2o"
    sg = grid_world_pose_graph("se3", num_nodes, rng=num_nodes, sigma_t=0.05, sigma_r_deg=1.0)
    write_g2o(sg.graph, path)
    return path


def choices() -> None:
    """Which start and which loss: geomvision alone, in this process, on synthetic graphs with truth."""
    from geomvision.optim.pose_graph import PoseGraphOptions, optimize_pose_graph
    from geomvision.synthetic import grid_world_pose_graph

    print("# --init: final chi2 from each start (rotation noise 30 deg per edge: odometry starts get trapped)")
    print(f"{'graph':<26} {'file':>12} {'chordal':>12} {'auto':>12} {'auto start':>10}")
    for kind, n, seed in [("se2", 400, 1), ("se2", 400, 2), ("se2", 400, 3), ("se3", 2000, 1), ("se3", 2000, 2)]:
        sg = grid_world_pose_graph(kind, n, rng=seed, sigma_r_deg=30.0, sigma_t=0.1, turn_prob=0.4)
        res = {init: optimize_pose_graph(sg.graph, PoseGraphOptions(init=init, max_iterations=300))[1]
               for init in ("file", "chordal", "auto")}
        print(f"{kind}-{n} seed {seed:<13} {res['file'].final_chi2:>12.2f} {res['chordal'].final_chi2:>12.2f} "
              f"{res['auto'].final_chi2:>12.2f} {res['auto'].init:>10}")
    print("# --loss: 10 wrong loop edges in a 2,000-pose SE(3) grid; max position error to the optimum "
          "without them, relative to the extent")
    sg = grid_world_pose_graph("se3", 2000, rng=7, sigma_t=0.02, sigma_r_deg=0.5, num_outliers=10,
                               loop_radius=1.5, max_loops_per_node=4)
    keep = np.setdiff1d(np.arange(sg.graph.num_edges), sg.outlier_edges)
    clean = sg.graph.copy()
    for attr in ("i_ids", "j_ids", "i_from_j_R", "i_from_j_t", "information", "i_from_j_scale"):
        setattr(clean, attr, getattr(clean, attr)[keep])
    print(f"{'options':<44} {'error / extent':>14} {'switched off':>12} {'wrong ones':>10} {'time s':>7}")
    for label, opts in [("--loss none", {}), ("--loss huber", {"loss": "huber"}), ("--loss cauchy", {"loss": "cauchy"}),
                        ("--loss cauchy --max-edge-chi2 100", {"loss": "cauchy", "max_edge_chi2": 100.0})]:
        ref, _ = optimize_pose_graph(clean, PoseGraphOptions(**opts))
        out, rep = optimize_pose_graph(sg.graph, PoseGraphOptions(**opts))
        P = np.array([out.nodes[k].t for k in ref.nodes])
        R_ = np.array([ref.nodes[k].t for k in ref.nodes])
        err = np.abs(P - R_).max() / np.ptp(R_, axis=0).max()
        hit = len(set(rep.outlier_edges.tolist()) & set(sg.outlier_edges.tolist()))
        print(f"{label:<44} {err:>14.2e} {len(rep.outlier_edges):>12} {hit:>10} {rep.total_s:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--shared", nargs="*", default=["sphere", "parking-garage", "intel"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--choices", action="store_true", help="only the --init / --loss comparison")
    parser.add_argument("--data", default=os.environ.get("GEOMVISION_DATA", str(ROOT.parent / "shared" / "datasets")))
    args = parser.parse_args()
    if args.choices:
        choices()
        return
    import gtsam  # noqa: F401  (fail early when the bench extra is missing)

    from geomvision.optim.sparse_cholesky import cholmod_available

    workdir = Path(tempfile.mkdtemp(prefix="bench_pose_graph_"))
    graphs = [(n, Path(args.data) / "posegraph" / f"{n}.g2o") for n in args.shared]
    graphs += [(f"grid3d-{n}", synthetic(n, workdir)) for n in args.sizes]
    print(f"# bench_pose_graph: {len(graphs)} graphs, best of {args.repeats}; CHOLMOD: {cholmod_available()}; "
          f"workdir {workdir}", flush=True)
    header = (f"{'graph':<18} {'nodes':>7} {'edges':>7} {'solver':<15} {'e2e_s':>8} {'solve_s':>8} {'iters':>5} "
              f"{'peak_mb':>8} {'chi2':>14} {'gtsam_err':>14} {'dev':>9} {'e2e x':>7} {'solve x':>8}")
    print(header, flush=True)
    all_rows = []
    for name, path in graphs:
        rows = bench_graph(name, path, args.repeats, workdir)
        ours = rows[0]
        for row in rows:
            ratio_e2e = ours["e2e_s"] / row["e2e_s"]
            ratio_solve = ours["solve_s"] / row["solve_s"]
            print(f"{name:<18} {row['nodes']:>7} {row['edges']:>7} {row['solver']:<15} {row['e2e_s']:>8.3f} "
                  f"{row['solve_s']:>8.3f} {row['iterations']:>5} {row['peak_mb']:>8.1f} {row['chi2']:>14.8g} {row['gtsam_error']:>14.8g} "
                  f"{row['dev']:>9.2e} {ratio_e2e:>7.2f} {ratio_solve:>8.2f}", flush=True)
        all_rows += rows
    print("# e2e x / solve x: geomvision's time divided by that row's (below 1: geomvision is faster)")
    print(json.dumps(all_rows))


if __name__ == "__main__":
    main()
