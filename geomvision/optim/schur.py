"""The normal equations of bundle adjustment, reduced to the cameras by the Schur complement.

``SchurSystem`` owns the column layout (which pose / intrinsic / point parameters are free and
where they sit in the reduced vector), the sparsity pattern of the reduced camera matrix S and
its solution. It is told the Jacobians by ``set_jacobians`` and, for each damping value the LM
driver tries, returns the step from ``solve(lam)``. The numba kernels are in
``_schur_kernels.py``; this module only does set-up and the linear algebra calls.

Reduced system S (n x n, n = number of free camera-side parameters):
- dense (``n <= dense_max_size`` with ``linear_solver="auto"``): LAPACK Cholesky;
- sparse: symmetric CSR, factorised by CHOLMOD (scikit-sparse, optional) or SuperLU through
  ``sparse_cholesky.SpdSolver`` (the same solver as pose graphs; the symbolic analysis is kept);
- pcg: conjugate gradients on the sparse S with its block-Jacobi preconditioner (the inverse
  of each group's diagonal block);
- iterative: conjugate gradients on S without forming it (``iterative_schur``): each product
  costs O(observations), where forming S costs the sum of squared track lengths.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from . import _schur_kernels as sk
from .iterative_schur import ImplicitSchur
from .sparse_cholesky import SpdSolver, cholmod_available


class SchurSystem:
    """Column layout, normal equations and their solution for one problem structure."""

    def __init__(self, problem, pose_free, intr_free, point_free, *, linear_solver="auto", dense_max_size=1500,
                 pcg_tolerance=1e-8, pcg_max_iterations=500, iterative_tolerance=0.1,
                 auto_iterative_track_length=12.0, min_diagonal=1e-6, max_diagonal=1e32, nchunks=1,
                 sparse_backend="auto"):
        I = problem.num_images
        C = problem.num_cameras
        self.obs_img = problem.obs_img
        self.img_cam = problem.img_cam
        self.min_diagonal = min_diagonal
        self.max_diagonal = max_diagonal
        self.pcg_tolerance = pcg_tolerance
        self.pcg_max_iterations = pcg_max_iterations
        self.use_cholmod = cholmod_available() and sparse_backend in ("auto", "cholmod")
        self._spd = None  # the sparse Cholesky of S, its symbolic analysis kept across LM iterations
        # --- columns: pose groups (one per image with a free column), then intrinsic groups ---
        self.pose_col = np.full((I, 6), -1, dtype=np.int64)
        self.intr_col = np.full(intr_free.shape, -1, dtype=np.int64)
        group_size = []
        pose_grp = np.full(I, -1, dtype=np.int64)
        intr_grp = np.full(C, -1, dtype=np.int64)
        n = 0
        for i in np.flatnonzero(pose_free.any(axis=1)):
            k = int(pose_free[i].sum())
            self.pose_col[i, pose_free[i]] = np.arange(n, n + k)
            pose_grp[i] = len(group_size)
            group_size.append(k)
            n += k
        for c in np.flatnonzero(intr_free.any(axis=1)):
            k = int(intr_free[c].sum())
            self.intr_col[c, intr_free[c]] = np.arange(n, n + k)
            intr_grp[c] = len(group_size)
            group_size.append(k)
            n += k
        self.n = n
        self.group_size = np.array(group_size, dtype=np.int64)
        self.group_offset = np.concatenate([[0], np.cumsum(self.group_size)]).astype(np.int64)
        self.col_grp = np.repeat(np.arange(len(group_size), dtype=np.int64), self.group_size)
        self.col_within = (np.arange(n, dtype=np.int64) - self.group_offset[self.col_grp]).astype(np.int64)
        # --- per image: its free local columns (index into Jc, index into the reduced vector) ---
        L = 6 + intr_free.shape[1]
        self.L = L
        jc_all = np.concatenate([np.broadcast_to(np.arange(6), (I, 6)),
                                 np.broadcast_to(6 + np.arange(intr_free.shape[1]), (I, L - 6))], axis=1)
        g_all = np.concatenate([self.pose_col, self.intr_col[problem.img_cam]], axis=1) if I else np.zeros((0, L), np.int64)
        free = g_all >= 0
        order = np.argsort(~free, axis=1, kind="stable")  # free columns first, in order
        self.img_nloc = free.sum(axis=1).astype(np.int64)
        self.img_loc_jc = np.ascontiguousarray(np.take_along_axis(jc_all, order, axis=1), dtype=np.int64)
        self.img_loc_g = np.ascontiguousarray(np.take_along_axis(g_all, order, axis=1), dtype=np.int64)
        # --- points: observations sorted by point ---
        self.pt_obs = np.argsort(problem.obs_pt, kind="stable").astype(np.int64)
        counts = np.bincount(problem.obs_pt, minlength=problem.num_points)
        self.pt_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.pt_free_idx = np.flatnonzero(point_free).astype(np.int64)
        self.pt_col = np.full(problem.num_points, -1, dtype=np.int64)
        self.pt_col[self.pt_free_idx] = np.arange(len(self.pt_free_idx))
        self.max_track = int(counts[self.pt_free_idx].max()) if len(self.pt_free_idx) else 1
        if linear_solver == "auto":
            t = counts[self.pt_free_idx].astype(np.float64)
            weighted_track = float(t @ t / t.sum()) if t.sum() else 0.0
            if n and weighted_track >= auto_iterative_track_length:
                linear_solver = "iterative"
            else:
                linear_solver = "dense" if n <= dense_max_size else "sparse"
        self.linear_solver = linear_solver
        # nchunks > 1: the point kernels run as their parallel twins over that many chunks
        self.nchunks = max(1, min(int(nchunks), len(self.pt_free_idx)))
        self.model_decrease = None  # set by the iterative solver (its step is inexact)
        if linear_solver == "iterative":  # S is never formed: no pairs, no pattern
            self.mode = 2
            self.size = 0
            self.pair_col = np.zeros(0, np.int64)
            self._implicit = ImplicitSchur(self, iterative_tolerance, pcg_max_iterations)
            return
        # --- image pairs (ia <= ib) coupled through a free point, and each image with itself ---
        if I <= 8192:  # an I x I bitmap (<= 64 MB)
            mark = np.zeros((I, I), dtype=np.bool_)
            sk.mark_image_pairs(self.pt_ptr, self.pt_obs, problem.obs_img, point_free, mark)
            ia, ib = np.nonzero(mark)
        else:
            codes = np.unique(sk.co_observing_image_pairs(self.pt_ptr, self.pt_obs, problem.obs_img, point_free, I))
            ia, ib = codes // I, codes % I
        keep = (self.img_nloc[ia] > 0) & (self.img_nloc[ib] > 0)
        ia, ib = ia[keep], ib[keep]
        self.pair_ptr = np.concatenate([[0], np.cumsum(np.bincount(ia, minlength=I))]).astype(np.int64)
        self.pair_col = ib.astype(np.int64)
        # --- storage mode of S ---
        self.mode = 0 if linear_solver == "dense" else 1
        if self.mode == 0:
            self.gptr = np.zeros(2, np.int64)
            self.gcol = np.zeros(1, np.int64)
            self.gcolstart = np.zeros(1, np.int64)
            self.gbase = np.zeros(1, np.int64)
            self.growlen = np.zeros(1, np.int64)
            self.size = n * n
            self.diag_pos = np.arange(n) * (n + 1)
        else:
            self._build_pattern(problem, pose_grp, intr_grp, ia, ib)

    @property
    def solver_name(self) -> str:
        """"dense", "sparse/cholmod", "sparse/superlu", "pcg" or "iterative"."""
        if self.linear_solver == "sparse":
            return "sparse/cholmod" if self.use_cholmod else "sparse/superlu"
        return self.linear_solver

    # --- set-up ---------------------------------------------------------------------------------
    def _build_pattern(self, problem, pose_grp, intr_grp, ia, ib) -> None:
        ia, ib = np.concatenate([ia, ib]), np.concatenate([ib, ia])  # both triangles
        ga_list, gb_list = [], []
        cam_a, cam_b = problem.img_cam[ia], problem.img_cam[ib]
        for ga, gb in ((pose_grp[ia], pose_grp[ib]), (pose_grp[ia], intr_grp[cam_b]),
                       (intr_grp[cam_a], pose_grp[ib]), (intr_grp[cam_a], intr_grp[cam_b])):
            keep = (ga >= 0) & (gb >= 0)
            ga_list.append(ga[keep])
            gb_list.append(gb[keep])
        G = len(self.group_size)
        ga = np.concatenate(ga_list + [np.arange(G)])
        gb = np.concatenate(gb_list + [np.arange(G)])
        pair = np.unique(ga * G + gb)
        ga, gb = pair // G, pair % G
        self.gptr = np.concatenate([[0], np.cumsum(np.bincount(ga, minlength=G))]).astype(np.int64)
        self.gcol = gb.astype(np.int64)
        sizes_b = self.group_size[gb]
        # column start of each block inside its group row
        cum = np.concatenate([[0], np.cumsum(sizes_b)])
        self.gcolstart = (cum[:-1] - np.repeat(cum[self.gptr[:-1]], np.diff(self.gptr))).astype(np.int64)
        self.growlen = (cum[self.gptr[1:]] - cum[self.gptr[:-1]]).astype(np.int64)
        self.gbase = np.concatenate([[0], np.cumsum(self.growlen * self.group_size)])[:-1].astype(np.int64)
        self.size = int(np.sum(self.growlen * self.group_size))
        # scalar CSR pattern
        indptr = np.empty(self.n + 1, np.int64)
        indptr[:-1] = np.repeat(self.gbase, self.group_size) + self.col_within * np.repeat(self.growlen, self.group_size)
        indptr[-1] = self.size
        row_cols = [np.concatenate([np.arange(self.group_offset[h], self.group_offset[h + 1])
                                    for h in self.gcol[self.gptr[g]:self.gptr[g + 1]]]) for g in range(G)]
        self.indices = (np.concatenate([np.tile(row_cols[g], self.group_size[g]) for g in range(G)]).astype(np.int32)
                        if G else np.zeros(0, np.int32))
        self.indptr = indptr.astype(np.int32) if self.size < 2**31 else indptr
        # the diagonal block of each group: its entry kd in the group row, its data positions
        row_grp = np.repeat(np.arange(G), np.diff(self.gptr))
        kd = np.empty(G, np.int64)
        kd[row_grp[self.gcol == row_grp]] = np.flatnonzero(self.gcol == row_grp)
        start = self.gbase + self.gcolstart[kd] if G else np.zeros(0, np.int64)
        self.diag_pos = (np.repeat(start, self.group_size)
                         + self.col_within * (np.repeat(self.growlen, self.group_size) + 1)).astype(np.int64)
        self.diag_block_pos = [  # for the block-Jacobi preconditioner
            (start[g] + np.arange(k)[:, None] * self.growlen[g] + np.arange(k)[None, :]).ravel()
            for g, k in enumerate(self.group_size)
        ]

    # --- per linearisation ------------------------------------------------------------------------
    def set_jacobians(self, r, Jc, Jp) -> tuple[np.ndarray, np.ndarray]:
        """Accumulate U, gc, V, gp from weighted residuals and Jacobians; returns (gc, gp)."""
        self.r, self.Jc, self.Jp = r, Jc, Jp
        I = len(self.img_nloc)
        if self.nchunks > 1:
            U_parts = np.empty((self.nchunks, I, self.L, self.L))
            g_parts = np.empty((self.nchunks, I, self.L))
            sk.accumulate_cameras_parallel(r, Jc, self.obs_img, self.img_nloc, self.img_loc_jc, U_parts, g_parts)
            self.Uimg, gimg = U_parts.sum(axis=0), g_parts.sum(axis=0)
        else:
            self.Uimg = np.empty((I, self.L, self.L))
            gimg = np.empty((I, self.L))
            sk.accumulate_cameras(r, Jc, self.obs_img, self.img_nloc, self.img_loc_jc, self.Uimg, gimg)
        valid = np.arange(self.L)[None, :] < self.img_nloc[:, None]
        cols = self.img_loc_g[valid]
        self.gc = np.bincount(cols, weights=gimg[valid], minlength=self.n)
        diagU = np.bincount(cols, weights=np.einsum("iaa->ia", self.Uimg)[valid], minlength=self.n)
        nf = len(self.pt_free_idx)
        self.V = np.empty((nf, 3, 3))
        self.gp = np.empty((nf, 3))
        if self.nchunks > 1:
            sk.accumulate_points_parallel(r, Jp, self.pt_ptr, self.pt_obs, self.pt_free_idx, self.V, self.gp,
                                          self.nchunks)
        else:
            sk.accumulate_points(r, Jp, self.pt_ptr, self.pt_obs, self.pt_free_idx, self.V, self.gp)
        self.Dc = np.clip(diagU, self.min_diagonal, self.max_diagonal)
        self.Dp = np.clip(np.einsum("qii->qi", self.V), self.min_diagonal, self.max_diagonal)
        self._valid = valid
        return self.gc, self.gp

    def gradient_max_norm(self) -> float:
        m = 0.0
        if self.n:
            m = float(np.abs(self.gc).max())
        if len(self.gp):
            m = max(m, float(np.abs(self.gp).max()))
        return m

    # --- per damping value ------------------------------------------------------------------------
    def solve(self, lam: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Step (hc (n,), hp (N',3)) of (J^T J + lam D) h = -g, or None when a damped block or S is
        not positive definite."""
        nf = len(self.pt_free_idx)
        I = len(self.img_nloc)
        if self.mode == 2:
            hc = self._implicit.solve(self, lam)
            if hc is None or not np.isfinite(hc).all():
                return None
            self.model_decrease = self._implicit.model_decrease
            return hc, self._back_substitute(hc)
        self.Vinv = np.empty((nf, 3, 3))
        B_parts = np.empty((self.nchunks, len(self.pair_col), self.L, self.L))
        b_parts = np.empty((self.nchunks, I, self.L))
        kernel = sk.schur_complement_parallel if self.nchunks > 1 else sk.schur_complement
        bad = kernel(lam, self.Jc, self.Jp, self.obs_img, self.img_nloc, self.img_loc_jc, self.pt_ptr, self.pt_obs,
                     self.pt_free_idx, self.V, self.Dp, self.gp, self.pair_ptr, self.pair_col, self.max_track, B_parts,
                     b_parts, self.Vinv)
        if bad:
            return None
        hc = np.zeros(self.n)
        if self.n:
            B = B_parts.sum(axis=0) if self.nchunks > 1 else B_parts[0]
            bimg = b_parts.sum(axis=0) if self.nchunks > 1 else b_parts[0]
            S = np.zeros(self.size)
            sk.assemble(self.mode, self.n, self.pair_ptr, self.pair_col, B, self.Uimg, self.img_nloc, self.img_loc_g,
                        self.col_grp, self.col_within, self.gptr, self.gcol, self.gcolstart, self.gbase, self.growlen, S)
            S[self.diag_pos] += lam * self.Dc
            b = np.bincount(self.img_loc_g[self._valid], weights=bimg[self._valid], minlength=self.n) - self.gc
            hc = self._solve_dense(S.reshape(self.n, self.n), b) if self.mode == 0 else self._solve_sparse(S, b)
            if hc is None or not np.isfinite(hc).all():
                return None
        return hc, self._back_substitute(hc)

    def _back_substitute(self, hc):
        hp = np.empty((len(self.pt_free_idx), 3))
        args = (hc, self.Jc, self.Jp, self.obs_img, self.img_nloc, self.img_loc_jc, self.img_loc_g, self.pt_ptr,
                self.pt_obs, self.pt_free_idx, self.Vinv, self.gp, hp)
        if self.nchunks > 1:
            sk.back_substitute_parallel(*args, self.nchunks)
        else:
            sk.back_substitute(*args)
        return hp

    def _solve_dense(self, S, b):
        try:
            c = scipy.linalg.cho_factor(S, lower=False, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return scipy.linalg.cho_solve(c, b, check_finite=False)

    def _solve_sparse(self, data, b):
        if self.linear_solver == "pcg":
            S = scipy.sparse.csr_matrix((data, self.indices, self.indptr), shape=(self.n, self.n))
            return self._solve_pcg(S, data, b)
        if self._spd is None:
            self._spd = SpdSolver(self.indptr, self.indices, "cholmod" if self.use_cholmod else "superlu")
        return self._spd.solve(data, b)

    def _solve_pcg(self, S, data, b):
        blocks = []
        for g, pos in enumerate(self.diag_block_pos):
            k = int(self.group_size[g])
            try:
                blocks.append(np.linalg.inv(data[pos].reshape(k, k)))
            except np.linalg.LinAlgError:
                return None
        M = scipy.sparse.block_diag(blocks, format="csr")
        x, info = scipy.sparse.linalg.cg(S, b, rtol=self.pcg_tolerance, maxiter=self.pcg_max_iterations, M=M)
        self.last_pcg_info = int(info)
        return x
