"""Pose-graph optimisation over SE(3), SE(2) and Sim(3): :func:`optimize_pose_graph`.

Minimises geomvision's cost ``chi2 = sum_k rho(e_k^T information_k e_k)`` (the error ``e_k`` of
``scene/pose_graph.py``; rho the identity unless a robust loss is chosen) with the one
Levenberg-Marquardt driver (``lm.py``) on the sparse normal equations: numba kernels compute the
edge Jacobians and accumulate d x d blocks (``_pose_graph_kernels.py``), the system is solved by
a sparse Cholesky (``sparse_cholesky.py``).

- Gauge: the graph's ``fixed`` nodes are held; without any, the first node of each connected
  component is (a component with no fixed node would otherwise float freely).
- Start (``init``): ``"file"`` the graph's own node poses; ``"chordal"`` the chordal relaxation
  (``pose_graph_init.py``); ``"auto"`` (default) the chordal start, and also the graph's poses when
  they are given and cost less than the chordal start, keeping the better optimum. LM from
  odometry-chained poses is trapped in a local minimum on some standard graphs; from the chordal
  start it reaches the global one (Carlone et al., ICRA 2015).
- Robust loss (``loss="huber"|"cauchy"``, scale in units of the whitened error, i.e. Mahalanobis
  distance): a wrong loop edge is down-weighted instead of bending the graph;
  ``max_edge_chi2`` then switches off edges whose chi2 stays above it and solves again (the
  report lists them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ..scene.pose_graph import PoseGraph
from . import _pose_graph_kernels as pk
from .lm import IterationLog, levenberg_marquardt
from .losses import LOSS_IDS
from .pose_graph_init import chordal_initialization, graph_components
from .sparse_cholesky import BACKENDS, SpdSolver

INITS = ("auto", "file", "chordal")
LOSSES = ("none", "huber", "cauchy")
_KIND_IDS = {"se3": pk.SE3, "se2": pk.SE2, "sim3": pk.SIM3}


@dataclass
class PoseGraphOptions:
    """Settings of :func:`optimize_pose_graph` (module docstring for ``init`` and the losses).

    Stopping (the LM driver's rules, Ceres's names): |cost change| <= function_tolerance * cost,
    |step| <= parameter_tolerance * (|x| + parameter_tolerance), max |gradient| <=
    gradient_tolerance, or max_iterations. ``function_tolerance`` 1e-7 puts the nodes within
    4e-5 of the graph's extent of the converged optimum on the shared graphs (1e-6: 1e-4).
    ``initial_damping`` 1e-10 (times the clamped diagonal of J^T J) makes the first steps
    Gauss-Newton steps: pose graphs have flat directions (long chains bending) along which
    Ceres-like damping (1e-4 .. 1e-6) shrinks every step; on a 10k-pose grid 1e-6 took 12
    iterations, 1e-10 takes 5 (sphere 6 -> 3, parking-garage 11 -> 4). ``linear_solver``: "auto", "cholmod", "superlu" or
    "dense" (``sparse_cholesky.py``). ``max_edge_chi2``: None keeps every edge; a number switches
    off edges whose chi2 (e^T information e) exceeds it after convergence, then solves again.
    ``blas_threads``: BLAS / OpenMP threads of the sparse Cholesky (threadpoolctl; None leaves
    them): with 2 threads CHOLMOD factorised sphere.g2o 10 % faster on an idle 2-core machine and
    10x slower on a busy one (threads spinning against each other), so one is the default."""

    init: str = "auto"
    loss: str = "none"
    loss_scale: float = 3.0
    max_iterations: int = 100
    function_tolerance: float = 1e-7
    parameter_tolerance: float = 1e-10
    gradient_tolerance: float = 1e-10
    initial_damping: float = 1e-10
    min_diagonal: float = 1e-8
    max_diagonal: float = 1e32
    min_relative_decrease: float = 1e-3
    max_consecutive_invalid_steps: int = 10
    linear_solver: str = "auto"
    max_edge_chi2: float | None = None
    max_outlier_rounds: int = 3
    blas_threads: int | None = 1
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.linear_solver not in BACKENDS:
            raise ValueError(f"linear_solver must be one of {', '.join(BACKENDS)}, got {self.linear_solver!r}")
        for name in ("function_tolerance", "parameter_tolerance", "gradient_tolerance", "min_relative_decrease"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("loss_scale", "initial_damping", "min_diagonal", "max_diagonal"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name, lo in (("max_iterations", 0), ("max_consecutive_invalid_steps", 1), ("max_outlier_rounds", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.blas_threads is not None and (isinstance(self.blas_threads, bool)
                                              or not isinstance(self.blas_threads, (int, np.integer))
                                              or self.blas_threads < 1):
            raise ValueError(f"blas_threads must be None or an integer >= 1, got {self.blas_threads!r}")
        if self.max_edge_chi2 is not None:
            v = self.max_edge_chi2
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"max_edge_chi2 must be None or a finite number > 0, got {v!r}")


@dataclass
class PoseGraphReport:
    """What :func:`optimize_pose_graph` did. Costs: ``*_chi2`` is geomvision's
    ``sum e^T information e`` (no loss; every edge, except ``final_chi2`` which leaves out the
    switched-off ``outlier_edges``); ``*_g2o_chi2`` the same with g2o's error over every edge
    (``PoseGraph.g2o_chi2``); ``start_chi2`` is at the chosen start, ``initial_chi2`` at the
    graph's own poses (NaN when it has none); ``starts_tried`` the final chi2 from each start."""

    kind: str
    num_nodes: int
    num_edges: int
    fixed_nodes: list[int]
    num_components: int
    init: str  # the start used: "file" or "chordal"
    initial_chi2: float
    initial_g2o_chi2: float
    start_chi2: float
    final_chi2: float
    final_g2o_chi2: float
    final_cost: float  # the minimised objective: sum rho(chi2_k) over active edges
    iterations: int
    termination: str
    linear_solver: str
    init_s: float
    solve_s: float
    total_s: float
    outlier_edges: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    starts_tried: dict[str, float] = field(default_factory=dict)  # start -> final chi2
    log: list[IterationLog] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.termination in ("function_tolerance", "parameter_tolerance", "gradient_tolerance")

    def summary(self) -> str:
        lines = [
            f"pose graph ({self.kind}): {self.num_nodes} nodes, {self.num_edges} edges, "
            f"{len(self.fixed_nodes)} fixed, {self.num_components} component(s)",
            f"start: {self.init} (tried: " + ", ".join(f"{k} -> chi2 {v:.6g}" for k, v in self.starts_tried.items())
            + ")",
            f"chi2 (geomvision error, sum e^T I e): initial {self.initial_chi2:.6g}, start {self.start_chi2:.6g}, "
            f"final {self.final_chi2:.6g}",
            f"chi2 (g2o error): initial {self.initial_g2o_chi2:.6g}, final {self.final_g2o_chi2:.6g}",
            f"{self.iterations} iterations ({self.termination}), linear solver {self.linear_solver}, "
            f"init {self.init_s:.3f} s, solve {self.solve_s:.3f} s, total {self.total_s:.3f} s",
        ]
        if len(self.outlier_edges):
            lines.append(f"switched off {len(self.outlier_edges)} outlier edge(s): "
                         + ", ".join(map(str, self.outlier_edges[:20].tolist()))
                         + (" ..." if len(self.outlier_edges) > 20 else ""))
        return "\n".join(lines)


class _Structure:
    """Free rows, the block pattern of the normal equations and its CSR layout (fixed per graph)."""

    def __init__(self, num_nodes: int, ri: np.ndarray, rj: np.ndarray, fixed_rows: np.ndarray, d: int):
        N = num_nodes
        self.d = d
        free_row = np.full(N, -1, dtype=np.int64)
        free = np.ones(N, bool)
        free[fixed_rows] = False
        F = int(free.sum())
        free_row[free] = np.arange(F)
        self.free_row = free_row
        self.F = F
        fi, fj = free_row[ri], free_row[rj]
        both = (fi >= 0) & (fj >= 0)
        a = np.minimum(fi, fj)
        b = np.maximum(fi, fj)
        codes = a.astype(np.int64) * max(F, 1) + b
        pair_codes, inv = np.unique(codes[both], return_inverse=True)
        P = len(pair_codes)
        self.blk_ij = np.full(len(ri), -1, dtype=np.int64)
        self.blk_ij[both] = F + inv
        pa, pb = pair_codes // max(F, 1), pair_codes % max(F, 1)
        self.blk_row = np.concatenate([np.arange(F), pa]).astype(np.int64)
        self.blk_col = np.concatenate([np.arange(F), pb]).astype(np.int64)
        # block CSR of the full symmetric pattern
        all_codes = np.unique(np.concatenate([np.arange(F) * (F + 1), pa * F + pb, pb * F + pa]))
        rows_b = all_codes // max(F, 1)
        cols_b = all_codes % max(F, 1)
        self.indptr_b = np.concatenate([[0], np.cumsum(np.bincount(rows_b, minlength=F))]).astype(np.int64)
        self.pos_ab = np.searchsorted(all_codes, self.blk_row * F + self.blk_col).astype(np.int64)
        self.pos_ba = np.searchsorted(all_codes, self.blk_col * F + self.blk_row).astype(np.int64)
        # element CSR: block (a, b) at block position p holds rows a*d + r, columns b*d + c
        nnzb = len(all_codes)
        nb = np.diff(self.indptr_b)
        row_start = (d * d * self.indptr_b[:-1])[:, None] + np.arange(d)[None, :] * (d * nb)[:, None]  # (F, d)
        self.indptr = np.concatenate([row_start.ravel(), [d * d * nnzb]]).astype(np.int64)
        p = np.arange(nnzb)
        off = (p - self.indptr_b[rows_b]) * d  # (nnzb,)
        idx = (row_start[rows_b][:, :, None] + off[:, None, None] + np.arange(d)[None, None, :])  # (nnzb, d, d)
        self.indices = np.empty(d * d * nnzb, dtype=np.int64)
        self.indices[idx.ravel()] = np.broadcast_to((cols_b * d)[:, None, None] + np.arange(d)[None, None, :],
                                                     (nnzb, d, d)).ravel()
        self.num_blocks = F + P
        self.n = F * d


class _PoseGraphProblem:
    """The LM problem (``lm.LMProblem``) of one pose graph over flat arrays."""

    def __init__(self, kind_id, R, t, s, ri, rj, Rz, tz, sz, sqrt_info, active, loss_id, loss_scale,
                 structure: _Structure, options: PoseGraphOptions, solver: SpdSolver):
        self.kind_id = kind_id
        self.R, self.t, self.s = R, t, s
        self.ri, self.rj = ri, rj
        self.Rz, self.tz, self.sz = Rz, tz, sz
        self.sqrt_info = sqrt_info
        self.active = active
        self.loss_id, self.loss_scale = loss_id, loss_scale
        self.st = structure
        self.options = options
        self.solver = solver
        d = structure.d
        self.Hb = np.zeros((structure.num_blocks, d, d))
        self.g = np.zeros(structure.n)
        self.chi2_edges = np.zeros(len(ri))
        self.vals = np.zeros(len(structure.indices))
        self.diag = np.zeros(structure.n)
        self.h = np.zeros(structure.n)
        self.R_new, self.t_new, self.s_new = R.copy(), t.copy(), s.copy()
        self.cost = np.inf

    def _accumulate(self, R, t, s, want_jac: bool) -> float:
        return pk.accumulate(self.kind_id, R, t, s, self.ri, self.rj, self.Rz, self.tz, self.sz, self.sqrt_info,
                             self.active, self.loss_id, self.loss_scale, self.st.free_row, self.st.blk_ij, want_jac,
                             self.Hb, self.g, self.chi2_edges)

    def cost_at(self, R, t, s, loss_id: int, active: np.ndarray) -> tuple[float, np.ndarray]:
        """(0.5 sum rho over ``active`` edges, chi2 per edge (E,)) at the poses (R, t, s), with
        ``loss_id``: the same kernel without Jacobians, this problem's arrays untouched."""
        chi2 = np.empty(len(self.ri))
        cost = pk.accumulate(self.kind_id, R, t, s, self.ri, self.rj, self.Rz, self.tz, self.sz, self.sqrt_info,
                             active, loss_id, self.loss_scale, self.st.free_row, self.st.blk_ij, False, self.Hb,
                             self.g, chi2)
        return cost, chi2

    def linearize(self) -> float:
        self.cost = self._accumulate(self.R, self.t, self.s, True)
        return self.cost

    def gradient_max_norm(self) -> float:
        return float(np.abs(self.g).max()) if len(self.g) else 0.0

    def compute_step(self, lam: float):
        st = self.st
        if st.n == 0:
            return None
        pk.scatter_csr(self.Hb, st.blk_row, st.blk_col, st.pos_ab, st.pos_ba, st.indptr_b, lam,
                       self.options.min_diagonal, self.options.max_diagonal, self.vals, self.diag)
        h = self.solver.solve(self.vals, -self.g)
        if h is None:
            return None
        self.h = h
        # L(0) - L(h) = -g.h - 0.5 h^T H h, with (H + lam D) h = -g
        decrease = float(-0.5 * (self.g @ h) + 0.5 * lam * np.sum(self.diag * h * h))
        return float(np.linalg.norm(h)), decrease

    def evaluate_candidate(self) -> float:
        pk.retract(self.kind_id, self.R, self.t, self.s, self.st.free_row, self.h, self.R_new, self.t_new, self.s_new)
        cost = self._accumulate(self.R_new, self.t_new, self.s_new, False)
        return cost if np.isfinite(cost) else np.inf

    def accept(self) -> None:
        self.R, self.R_new = self.R_new, self.R
        self.t, self.t_new = self.t_new, self.t
        self.s, self.s_new = self.s_new, self.s

    def x_norm(self) -> float:
        return float(np.sqrt(np.sum(self.t * self.t) + len(self.t)))

    def rms_px(self) -> float:
        """sqrt(mean chi2) over active edges (the driver's log column)."""
        n = int(self.active.sum())
        return float(np.sqrt(self.chi2_edges[self.active].sum() / n)) if n else 0.0


def _sqrt_information(information: np.ndarray) -> np.ndarray:
    """S (E,d,d) with S^T S = information (symmetric PSD; eigen-decomposition, so a singular
    information matrix is fine)."""
    lam, V = np.linalg.eigh(information)
    return np.sqrt(np.maximum(lam, 0.0))[:, :, None] * np.swapaxes(V, 1, 2)


def optimize_pose_graph(graph: PoseGraph, options: PoseGraphOptions | None = None, *,
                        printer=None) -> tuple[PoseGraph, PoseGraphReport]:
    """Optimise ``graph``'s node poses; returns (a new optimised PoseGraph, report).

    The input graph is not changed. ``printer``: a callable taking one line per LM iteration
    (or None; ``options.verbose`` prints to stdout)."""
    options = PoseGraphOptions() if options is None else options
    if not isinstance(graph, PoseGraph):
        raise ValueError(f"graph must be a PoseGraph, got {type(graph).__name__}")
    if not isinstance(options, PoseGraphOptions):
        raise ValueError(f"options must be a PoseGraphOptions, got {type(options).__name__}")
    if options.blas_threads is None:
        return _optimize(graph, options, printer)
    with threadpool_limits(limits=options.blas_threads):
        return _optimize(graph, options, printer)


def _optimize(graph: PoseGraph, options: PoseGraphOptions, printer) -> tuple[PoseGraph, PoseGraphReport]:
    t_start = time.perf_counter()
    graph.check()
    if printer is None and options.verbose:
        printer = print
    kind = graph.kind
    d = graph.dof
    ids, R0, t0 = graph.node_arrays()
    s0 = graph.node_scales()
    N, E = len(ids), graph.num_edges
    out = graph.copy()
    if E == 0 or N == 0:
        chi2 = 0.0
        report = PoseGraphReport(kind, N, E, sorted(graph.fixed), N, "file", chi2, chi2, chi2, chi2, chi2, 0.0, 0,
                                 "no_edges", "none", 0.0, 0.0, time.perf_counter() - t_start)
        return out, report
    if options.init == "file" and not graph.poses_given:
        raise ValueError("init='file': the graph has no node poses of its own (a g2o file without VERTEX lines); "
                         "use init='chordal' or 'auto'")
    ri, rj = graph.edge_node_rows()
    ncomp, labels = graph_components(N, ri, rj)
    fixed_rows = [k for k, node_id in enumerate(ids.tolist()) if node_id in graph.fixed]
    have = set(labels[fixed_rows].tolist()) if fixed_rows else set()
    first_of = np.unique(labels, return_index=True)[1]
    fixed_rows += [int(first_of[c]) for c in range(ncomp) if c not in have]
    fixed_rows = np.array(sorted(set(fixed_rows)), dtype=np.int64)
    st = _Structure(N, ri, rj, fixed_rows, d)
    solver = SpdSolver(st.indptr, st.indices, options.linear_solver)
    kind_id = _KIND_IDS[kind]
    Rz = np.ascontiguousarray(graph.i_from_j_R)
    tz = np.ascontiguousarray(graph.i_from_j_t)
    sz = np.ascontiguousarray(graph.i_from_j_scale)
    sqrt_info = np.ascontiguousarray(_sqrt_information(graph.information))
    R0, t0, s0 = np.ascontiguousarray(R0), np.ascontiguousarray(t0), np.ascontiguousarray(s0)
    loss_id = LOSS_IDS["squared" if options.loss == "none" else options.loss]
    every_edge = np.ones(E, dtype=np.bool_)

    def make_problem(R, t, s, active_mask):
        return _PoseGraphProblem(kind_id, R.copy(), t.copy(), s.copy(), ri, rj, Rz, tz, sz, sqrt_info, active_mask,
                                 loss_id, float(options.loss_scale), st, options, solver)

    evaluator = make_problem(R0, t0, s0, every_edge)  # costs at any poses, one set of buffers

    def chi2_at(R, t, s) -> float:
        return float(evaluator.cost_at(R, t, s, LOSS_IDS["squared"], every_edge)[1].sum())

    initial_chi2 = chi2_at(R0, t0, s0) if graph.poses_given else float("nan")
    robust = options.loss != "none"
    # --- starts
    t_init = time.perf_counter()
    starts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if options.init in ("auto", "chordal"):
        starts["chordal"] = chordal_initialization(kind, R0, t0, s0, ri, rj, Rz, tz, sz, graph.information,
                                                   st.free_row, options.linear_solver,
                                                   robust_scale=options.loss_scale if robust else None)
    # with a robust loss the given (odometry-chained) poses are a start that wrong loop edges
    # cannot tilt: try both and keep the lower loss over all edges
    if options.init == "file" or (options.init == "auto" and graph.poses_given
                                  and (robust or initial_chi2 < chi2_at(*starts["chordal"]))):
        starts["file"] = (R0, t0, s0)
    init_s = time.perf_counter() - t_init
    # --- LM from each start, then the outlier rounds
    best = None
    tried: dict[str, float] = {}
    for name, (R, t, s) in starts.items():
        problem = make_problem(R, t, s, every_edge.copy())
        start_chi2 = chi2_at(problem.R, problem.t, problem.s)
        summary = levenberg_marquardt(problem, options, printer=printer)
        iterations, log = summary.iterations, list(summary.log)
        if options.max_edge_chi2 is not None:
            for _ in range(options.max_outlier_rounds):
                problem.linearize()
                bad = problem.active & (problem.chi2_edges > options.max_edge_chi2)
                if not bad.any():
                    break
                problem = make_problem(problem.R, problem.t, problem.s, problem.active & ~bad)
                summary = levenberg_marquardt(problem, options, printer=printer)
                iterations += summary.iterations
                log += summary.log
        # the loss over every edge (switched-off ones too) is comparable between starts
        objective, chi2_edges = evaluator.cost_at(problem.R, problem.t, problem.s, loss_id, every_edge)
        tried[name] = float(evaluator.cost_at(problem.R, problem.t, problem.s, LOSS_IDS["squared"],
                                              every_edge)[1].sum()) if options.loss != "none" else 2.0 * objective
        if best is None or objective < best[0]:
            best = (objective, name, summary, problem, start_chi2, iterations, log, chi2_edges)
    _, name, summary, problem, start_chi2, iterations, log, chi2_edges = best
    outliers = np.flatnonzero(~problem.active).astype(np.int64)
    out.set_node_arrays(ids, problem.R, problem.t, problem.s if kind == "sim3" else None)
    out.poses_given = True
    report = PoseGraphReport(
        kind=kind, num_nodes=N, num_edges=E, fixed_nodes=[int(ids[r]) for r in fixed_rows],
        num_components=int(ncomp), init=name, initial_chi2=initial_chi2,
        initial_g2o_chi2=graph.g2o_chi2() if graph.poses_given else float("nan"),
        start_chi2=start_chi2, final_chi2=float(chi2_edges[problem.active].sum()),
        final_g2o_chi2=out.g2o_chi2(),
        final_cost=2.0 * summary.final_cost, iterations=iterations, termination=summary.termination,
        linear_solver=solver.backend, init_s=init_s, solve_s=time.perf_counter() - t_start - init_s,
        total_s=time.perf_counter() - t_start, outlier_edges=outliers, starts_tried=tried, log=log,
    )
    return out, report

