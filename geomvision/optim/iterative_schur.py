"""The reduced camera system solved by conjugate gradients without forming it (Ceres's
ITERATIVE_SCHUR with the SCHUR_JACOBI preconditioner).

``ImplicitSchur(system)`` reads the column layout of a ``SchurSystem``; per damping value,
``solve(system, lam)`` returns the camera step of ``S hc = b`` from preconditioned CG, where each
product S x is two passes over the observations (``_implicit_schur_kernels``): the cost of an
iteration is O(number of observations) whatever the tracks' length, where forming S costs the
sum over points of (track length)^2. The step is inexact (CG stops at ``tolerance`` relative residual), so the LM
gain ratio uses the model decrease of the step actually taken (``model_decrease``). The system
is passed to each call, not kept: a reference back to it would make a cycle that holds every
finished problem's Jacobians until Python's cyclic collector runs.
"""

from __future__ import annotations

import numpy as np

from . import _implicit_schur_kernels as ik


class ImplicitSchur:
    """Preconditioned CG on the implicit reduced camera matrix of ``system`` (a SchurSystem)."""

    def __init__(self, system, tolerance: float, max_iterations: int):
        s = system
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        G = len(s.group_size)
        self.kmax = int(s.group_size.max()) if G else 1
        # block-Jacobi blocks, padded to kmax x kmax: where each image's local (a, b) entry goes
        valid = s.img_loc_g >= 0
        I, L = s.img_loc_g.shape
        ia, a, b = np.nonzero(valid[:, :, None] & valid[:, None, :])
        ga, gb = s.img_loc_g[ia, a], s.img_loc_g[ia, b]
        same = s.col_grp[ga] == s.col_grp[gb]
        ia, a, b, ga, gb = ia[same], a[same], b[same], ga[same], gb[same]
        k = self.kmax
        self._src = (ia * L + a) * L + b
        self._dst = (s.col_grp[ga] * k + s.col_within[ga]) * k + s.col_within[gb]
        self._diag = (s.col_grp * k + s.col_within) * k + s.col_within
        pad = np.ones((G, k), dtype=bool)
        pad[s.col_grp, s.col_within] = False
        f = np.flatnonzero(pad.ravel())
        self._pad_diag = (f // k) * k * k + (f % k) * (k + 1)
        self.e_img = s.obs_img[s.pt_obs]  # image of each observation slot (point order)
        self.nloc_max = int(s.img_nloc.max()) if I else 0
        self.Es = np.empty((len(s.pt_obs), 3, max(self.nloc_max, 1)))  # filled by each solve's prepare pass
        self.iterations = 0
        self.model_decrease = float("nan")

    # --- pieces ---------------------------------------------------------------------------------
    def _precondition(self, s, r: np.ndarray) -> np.ndarray:
        x = np.zeros((len(s.group_size), self.kmax))
        x[s.col_grp, s.col_within] = r
        return np.einsum("gab,gb->ga", self.Minv, x)[s.col_grp, s.col_within]

    def _product(self, s, x: np.ndarray, lam: float) -> np.ndarray:
        """S x (n,) of system ``s`` at damping lam."""
        xi = np.append(x, 0.0)[s.img_loc_g]  # -1 (not free) reads the trailing 0
        if s.nchunks > 1:
            ik.reduced_product_parallel(xi, s.Uimg, self.Es, self.e_img, s.img_nloc, s.pt_ptr, s.pt_free_idx, s.Vinv,
                                        self._out)
            out = self._out.sum(axis=0)
        else:
            ik.reduced_product(xi, s.Uimg, self.Es, self.e_img, s.img_nloc, s.pt_ptr, s.pt_free_idx, s.Vinv, self._out)
            out = self._out[0]
        return np.bincount(s.img_loc_g[s._valid], weights=out[s._valid], minlength=s.n) + lam * s.Dc * x

    # --- per damping value ------------------------------------------------------------------------
    def solve(self, s, lam: float) -> np.ndarray | None:
        """hc (n,) with S hc ~= b of system ``s``, or None when a damped point block is not
        positive definite. Sets ``s.Vinv`` (for the back-substitution), ``iterations`` and
        ``model_decrease``."""
        nf = len(s.pt_free_idx)
        I, L = s.img_loc_g.shape
        s.Vinv = np.empty((nf, 3, 3))
        b_parts = np.empty((s.nchunks, I, L))
        P_parts = np.empty((s.nchunks, I, L, L))
        kernel = ik.prepare_parallel if s.nchunks > 1 else ik.prepare
        bad, gvg = kernel(lam, s.Jc, s.Jp, s.obs_img, s.img_nloc, s.img_loc_jc, s.pt_ptr, s.pt_obs, s.pt_free_idx,
                          s.V, s.Dp, s.gp, s.Vinv, b_parts, P_parts, self.Es)
        if bad:
            return None
        bimg = b_parts.sum(axis=0)
        b = np.bincount(s.img_loc_g[s._valid], weights=bimg[s._valid], minlength=s.n) - s.gc
        if s.n == 0:
            self.iterations = 0
            self.model_decrease = 0.5 * float(gvg)
            return np.zeros(0)
        P = (s.Uimg + P_parts.sum(axis=0)).ravel()
        G, k = len(s.group_size), self.kmax
        blocks = np.zeros(G * k * k)
        np.add.at(blocks, self._dst, P[self._src])
        blocks[self._diag] += lam * s.Dc
        blocks[self._pad_diag] = 1.0
        try:
            self.Minv = np.linalg.inv(blocks.reshape(G, k, k))
        except np.linalg.LinAlgError:
            return None
        self._out = np.empty((s.nchunks, I, L))
        x = np.zeros(s.n)
        r = b.copy()
        bnorm = float(np.linalg.norm(b))
        z = self._precondition(s, r)
        p = z.copy()
        rz = float(r @ z)
        it = 0
        while it < self.max_iterations and np.linalg.norm(r) > self.tolerance * bnorm:
            Ap = self._product(s, p, lam)
            pAp = float(p @ Ap)
            if not pAp > 0.0:
                if it == 0:
                    return None
                break
            alpha = rz / pAp
            x += alpha * p
            r -= alpha * Ap
            it += 1
            z = self._precondition(s, r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        self.iterations = it
        # L(0) - L(h) with hp back-substituted exactly: 0.5 gp^T Vd^-1 gp + b.hc - 0.5 hc^T S hc,
        # S hc = b - r (CG's residual)
        self.model_decrease = 0.5 * float(gvg) + 0.5 * float(b @ x) + 0.5 * float(x @ r)
        return x
