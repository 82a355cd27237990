"""Initial node poses of a pose graph from its edges alone: chordal relaxation (Carlone et al.,
"Initialization techniques for 3D SLAM: a survey on rotation estimation and its use in pose graph
optimization", ICRA 2015).

1. Rotations: each edge asks ``R_j = R_i R_ij``. Relaxed to unconstrained matrices this is linear
   and separates by rows: ``x_j = R_ij^T x_i`` for every row x of R (in SE(2), for the first
   column (cos, sin): ``x_j = R_ij x_i``). One weighted sparse least-squares solve with the
   anchors held, then each node's matrix is projected to the nearest rotation.
2. Sim(3) scales: ``log s_j - log s_i = log s_ij``, linear.
3. Translations, rotations (and scales) fixed: ``t_j - t_i = s_i R_i t_ij``, linear.

Edge weights are isotropic: the mean of the rotation (translation) diagonal of the information.
Anchors: one node per connected component keeps its pose (the gauge).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from ..geometry.rotation import rotation_error_deg
from .sparse_cholesky import SpdSolver


def _block_normal_equations(ri: np.ndarray, rj: np.ndarray, M: np.ndarray, w: np.ndarray, free_row: np.ndarray,
                            F: int, x_fixed: np.ndarray):
    """Normal equations of sum_k w_k |x_j - M_k x_i|^2 over the free nodes' b-vectors.

    ``M`` (E,b,b) (b = 1 for scalars), ``x_fixed`` (N,b,k) values of every node (used for the
    fixed ones), k right-hand sides. Returns the CSR arrays (both triangles) and rhs (F*b, k)."""
    E, b, _ = M.shape
    k = x_fixed.shape[2]
    fi, fj = free_row[ri], free_row[rj]
    I = np.broadcast_to(np.eye(b), (E, b, b))
    MtM = np.swapaxes(M, 1, 2) @ M  # A_i^T A_i with A_i = -M
    rows, cols, vals = [], [], []
    rhs = np.zeros((F * b, k))

    def add_block(r_blk, c_blk, blocks, wk):
        rr = (r_blk[:, None, None] * b + np.arange(b)[None, :, None]) + np.zeros((1, 1, b), np.int64)
        cc = (c_blk[:, None, None] * b + np.arange(b)[None, None, :]) + np.zeros((1, b, 1), np.int64)
        rows.append(rr.ravel())
        cols.append(cc.ravel())
        vals.append((wk[:, None, None] * blocks).ravel())

    both = (fi >= 0) & (fj >= 0)
    oi, oj = fi >= 0, fj >= 0
    add_block(fi[oi], fi[oi], MtM[oi], w[oi])
    add_block(fj[oj], fj[oj], I[oj], w[oj])
    # A_i^T A_j = -M^T, A_j^T A_i = -M
    add_block(fi[both], fj[both], -np.swapaxes(M[both], 1, 2), w[both])
    add_block(fj[both], fi[both], -M[both], w[both])
    # a fixed neighbour moves to the right-hand side: -A_free^T A_fixed x_fixed
    only_i = oi & ~oj  # j fixed: rows of i get -(-M)^T (I x_j) = M^T x_j
    if only_i.any():
        contrib = w[only_i, None, None] * (np.swapaxes(M[only_i], 1, 2) @ x_fixed[rj[only_i]])
        np.add.at(rhs, (fi[only_i][:, None] * b + np.arange(b)[None, :]).ravel(), contrib.reshape(-1, k))
    only_j = oj & ~oi  # i fixed: rows of j get -(I)^T (-M x_i) = M x_i
    if only_j.any():
        contrib = w[only_j, None, None] * (M[only_j] @ x_fixed[ri[only_j]])
        np.add.at(rhs, (fj[only_j][:, None] * b + np.arange(b)[None, :]).ravel(), contrib.reshape(-1, k))
    A = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(F * b, F * b))
    A.sum_duplicates()
    A.sort_indices()
    return A, rhs


def _solve(A: scipy.sparse.csr_matrix, rhs: np.ndarray, backend: str) -> np.ndarray:
    n = A.shape[0]
    if n == 0:
        return np.zeros_like(rhs)
    x = SpdSolver(A.indptr, A.indices, backend).solve(A.data, rhs)
    if x is None:
        raise ValueError("the chordal initialisation's linear system is singular: an edge weight (information) "
                         "is zero or a node is unconstrained")
    return x.reshape(rhs.shape)


def _affine_rhs(ri, rj, c, w, free_row, F, m):
    """Right-hand side of sum_k w_k |x_j - x_i - c_k|^2 (the incidence part, fixed nodes excluded)."""
    rhs = np.zeros((F, m))
    fi, fj = free_row[ri], free_row[rj]
    np.add.at(rhs, fj[fj >= 0], w[fj >= 0, None] * c[fj >= 0])
    np.add.at(rhs, fi[fi >= 0], -w[fi >= 0, None] * c[fi >= 0])
    return rhs


def _chordal_rotations(R, ri, rj, Rz, w, free_row, F, backend) -> np.ndarray:
    """Rotations (F,m,m) of the free nodes: the relaxed linear solve, projected to SO(m)."""
    if R.shape[1] == 3:
        M = np.swapaxes(Rz, 1, 2)  # x_j = R_ij^T x_i for each row x of R (as a column)
        X_fixed = np.swapaxes(R, 1, 2)  # (N,3,3): column r = row r of R
        A, rhs = _block_normal_equations(ri, rj, M, w, free_row, F, X_fixed)
        X = _solve(A, rhs, backend).reshape(F, 3, 3)  # [f, :, r] = row r of R_f
        U, _, Vt = np.linalg.svd(np.swapaxes(X, 1, 2))
        D = np.ones((F, 3))
        D[:, 2] = np.sign(np.linalg.det(U @ Vt))
        return (U * D[:, None, :]) @ Vt
    M = Rz  # x_j = R_ij x_i for x = (cos, sin)
    A, rhs = _block_normal_equations(ri, rj, M, w, free_row, F, R[:, :, :1])
    X = _solve(A, rhs, backend).reshape(F, 2)
    theta = np.arctan2(X[:, 1], X[:, 0])
    c, sn = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -sn], -1), np.stack([sn, c], -1)], -2)


def _graduated_rotations(R, ri, rj, Rz, w, sigma, schedule, free_row, F, backend):
    """Rotations (N,m,m) of the chordal solve repeated with Cauchy weights of the edges' residuals
    (in units of ``sigma`` (E,) radians) at the scales of ``schedule`` (graduated non-convexity),
    and the last weights (E,). An empty schedule is the plain least-squares solve."""
    R_out, w_rot = R.copy(), w.copy()
    free = free_row >= 0
    for round_ in range(1 + len(schedule)):
        R_out[free] = _chordal_rotations(R, ri, rj, Rz, w_rot, free_row, F, backend)
        if round_ == len(schedule):
            break
        # chordal distance |R_j - R_i R_ij|_F ~ sqrt(2) * angle; Cauchy weights
        resid = np.linalg.norm(R_out[rj] - R_out[ri] @ Rz, axis=(1, 2)) / (np.sqrt(2.0) * sigma)
        w_rot = w / (1.0 + (resid / schedule[round_]) ** 2)
    return R_out, w_rot


def graph_components(num_nodes: int, ri: np.ndarray, rj: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of connected components, component label of each node (N,)) of the undirected
    graph with edges (ri, rj)."""
    adj = scipy.sparse.coo_matrix((np.ones(len(ri)), (ri, rj)), shape=(num_nodes, num_nodes))
    return scipy.sparse.csgraph.connected_components(adj, directed=False)


def average_rotations(num_nodes: int, ri: np.ndarray, rj: np.ndarray, R_rel: np.ndarray, weights: np.ndarray,
                      robust_scale_deg: float = 2.0, rounds: int = 8, backend: str = "auto",
                      start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Robust rotation averaging: node rotations R (N,3,3) with ``R[rj] ~= R[ri] @ R_rel`` for
    each edge (R_rel (E,3,3); e.g. R = world_from_cam and R_rel = cam_i_from_cam_j), and each
    edge's residual angle in degrees (E,). The chordal relaxation is solved repeatedly with
    Cauchy weights whose scale shrinks from 1000x to ``robust_scale_deg`` (graduated
    non-convexity), so that edges that disagree with the weight of the others (``weights`` (E,),
    e.g. inlier counts) stop pulling. The first node of each connected component keeps the
    identity (the gauge). ``start`` (N,3,3): rotations averaged before over these edges and
    others (e.g. all of them, to average again without one): the schedule is replaced by one
    solve with the Cauchy weights of its residuals at the last scale."""
    ri, rj = np.asarray(ri, np.int64), np.asarray(rj, np.int64)
    w = np.asarray(weights, np.float64)
    if len(w) and not np.all(w > 0):
        raise ValueError("average_rotations: every edge weight must be positive (drop the edges without evidence)")
    _, label = graph_components(num_nodes, ri, rj)
    anchor = np.zeros(num_nodes, bool)
    anchor[np.unique(label, return_index=True)[1]] = True
    free_row = np.full(num_nodes, -1, np.int64)
    free_row[~anchor] = np.arange(int((~anchor).sum()))
    R0 = np.repeat(np.eye(3)[None], num_nodes, axis=0)
    schedule = np.radians(robust_scale_deg) * np.geomspace(1e3, 1.0, rounds)
    w = w / np.median(w) if len(w) else w
    R_rel = np.asarray(R_rel, np.float64)
    F = int((~anchor).sum())
    if start is None:
        R, _ = _graduated_rotations(R0, ri, rj, R_rel, w, np.ones(len(w)), schedule, free_row, F, backend)
    else:
        start = np.asarray(start, np.float64)
        resid = np.radians(rotation_error_deg(start[rj], start[ri] @ R_rel))
        R, _ = _graduated_rotations(R0, ri, rj, R_rel, w / (1.0 + (resid / schedule[-1]) ** 2), np.ones(len(w)), [],
                                    free_row, F, backend)
    # a last solve on the edges within 3 scales (the others keep a trace of weight, so that no node
    # is left without an edge): the Cauchy tails of the outliers no longer pull
    resid = rotation_error_deg(R[rj], R[ri] @ R_rel)
    R, _ = _graduated_rotations(R0, ri, rj, R_rel, np.where(resid <= 3.0 * robust_scale_deg, w, 1e-6 * w),
                                np.ones(len(w)), [], free_row, F, backend)
    return R, np.atleast_1d(rotation_error_deg(R[rj], R[ri] @ R_rel))


def chordal_initialization(kind: str, R: np.ndarray, t: np.ndarray, s: np.ndarray, ri: np.ndarray, rj: np.ndarray,
                           Rz: np.ndarray, tz: np.ndarray, sz: np.ndarray, information: np.ndarray,
                           free_row: np.ndarray, backend: str = "auto", robust_scale: float | None = None,
                           robust_rounds: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node poses (R (N,m,m), t (N,m), s (N,)) from the edges (module docstring). Rows of ``free_row``
    equal to -1 are anchors and keep their (R, t, s); the other rows number the free nodes 0..F-1.
    ``robust_scale`` (in standard deviations of each edge's rotation noise, from its information):
    the rotation (then the translation) solve is repeated ``robust_rounds`` times with Cauchy
    weights of the edges' residuals, the scale shrinking from 1000x to 1x (graduated
    non-convexity), so that wrong loop edges do not tilt the start."""
    N, m = t.shape
    F = int(free_row.max()) + 1 if N else 0
    free = free_row >= 0
    d = information.shape[1]
    diag = np.diagonal(information, axis1=1, axis2=2)
    w_t = np.maximum(diag[:, :m].mean(axis=1), 1e-300)
    w_r = np.maximum(diag[:, m:m + (1 if m == 2 else 3)].mean(axis=1), 1e-300)
    # normalise the weights (scale-free systems)
    med_r = np.median(w_r) if len(w_r) else 1.0
    med_t = np.median(w_t) if len(w_t) else 1.0
    w_t = w_t / med_t
    w_r = w_r / med_r
    # --- rotations (reweighted when robust: edges far off the relaxed solution lose weight)
    sigma_r = 1.0 / np.sqrt(w_r * med_r)  # radians, per edge
    # graduated: the Cauchy scale shrinks from 1000x to 1x robust_scale over the rounds
    schedule = robust_scale * np.geomspace(1e3, 1.0, robust_rounds) if robust_scale is not None else []
    R_out, w_rot = _graduated_rotations(R, ri, rj, Rz, w_r, sigma_r, schedule, free_row, F, backend)
    t_out, s_out = t.copy(), s.copy()
    ones = np.ones((len(ri), 1, 1))
    # --- scales (Sim(3))
    if kind == "sim3":
        A, rhs = _block_normal_equations(ri, rj, ones, w_r, free_row, F, np.log(s)[:, None, None])
        rhs = rhs + _affine_rhs(ri, rj, np.log(sz)[:, None], w_r, free_row, F, 1)
        s_out[free] = np.exp(_solve(A, rhs, backend)[:, 0])
    # --- translations: t_j - t_i = s_i R_i t_ij (reweighted like the rotations when robust)
    c = s_out[ri, None] * np.einsum("eab,eb->ea", R_out[ri], tz)
    sigma_t = s_out[ri] / np.sqrt(w_t * med_t)
    w_tr = w_t * (w_rot / w_r)  # edges whose rotation is an outlier keep their low weight
    for round_ in range(1 + len(schedule)):
        A, rhs = _block_normal_equations(ri, rj, ones, w_tr, free_row, F, t[:, None, :])
        rhs = rhs.reshape(F, m) + _affine_rhs(ri, rj, c, w_tr, free_row, F, m)
        t_out[free] = _solve(A, rhs, backend).reshape(F, m)
        if round_ == len(schedule):
            break
        resid = np.linalg.norm(t_out[rj] - t_out[ri] - c, axis=1) / sigma_t
        w_tr = w_t * (w_rot / w_r) / (1.0 + (resid / schedule[round_]) ** 2)
    return R_out, t_out, s_out
