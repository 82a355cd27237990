"""Solve sparse symmetric positive-definite systems of one fixed pattern: CHOLMOD or SuperLU.

Pose-graph normal equations and the chordal initialisation's linear systems go through
:class:`SpdSolver`, which keeps what depends on the pattern only (CHOLMOD's symbolic analysis
and fill-reducing ordering) across the LM iterations. Backends:

- ``"cholmod"``: CHOLMOD's supernodal Cholesky through scikit-sparse (the ``sparse`` extra; it
  builds against the system SuiteSparse, and runs at BLAS speed with OpenBLAS: ``scripts/setup.sh``
  installs both on Debian);
- ``"superlu"``: scipy's SuperLU in symmetric mode (minimum-degree ordering of A + A^T, no
  pivoting), always available;
- ``"dense"``: LAPACK Cholesky of the dense matrix;
- ``"auto"``: dense up to 600 unknowns, else CHOLMOD when scikit-sparse imports, else SuperLU.

Their timings on the shared and synthetic pose graphs are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

try:  # optional: CHOLMOD through scikit-sparse
    from sksparse.cholmod import CholmodError
    from sksparse.cholmod import analyze as _cholmod_analyze
except ImportError:  # pragma: no cover - depends on the environment
    _cholmod_analyze = None
    CholmodError = RuntimeError

BACKENDS = ("auto", "cholmod", "superlu", "dense")
DENSE_MAX = 600


def cholmod_available() -> bool:
    return _cholmod_analyze is not None


def resolve_backend(backend: str, n: int) -> str:
    """The backend ``auto`` picks for an n x n system (or ``backend`` itself, checked)."""
    if backend not in BACKENDS:
        raise ValueError(f"linear solver must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "cholmod" and not cholmod_available():
        raise ValueError("linear solver 'cholmod' needs scikit-sparse (pip install 'geomvision[sparse]', with "
                         "libsuitesparse-dev installed); use 'superlu' or 'auto'")
    if backend != "auto":
        return backend
    if n <= DENSE_MAX:
        return "dense"
    return "cholmod" if cholmod_available() else "superlu"


def _analyze(A):
    """CHOLMOD's symbolic factorisation with a METIS nested-dissection ordering (less fill than AMD
    on pose graphs: 2.6M vs 3.0M entries of L on sphere.g2o, 25 % faster factorisations), AMD when
    the SuiteSparse build has no METIS."""
    try:
        return _cholmod_analyze(A, mode="supernodal", ordering_method="metis")
    except (CholmodError, ValueError):
        return _cholmod_analyze(A, mode="supernodal")


class SpdSolver:
    """Solve ``A x = b`` for symmetric positive-definite A of one CSR pattern (both triangles)
    and changing values; ``backend`` as in :func:`resolve_backend` (``"auto"`` resolved here)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, backend: str = "auto"):
        self.n = len(indptr) - 1
        self.indptr = np.asarray(indptr)
        self.indices = np.asarray(indices)
        self.backend = resolve_backend(backend, self.n)
        self._symbolic = None

    def solve(self, data: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
        """x (n,) or (n,k) for the matrix with CSR values ``data``; None when A is not numerically
        positive definite or the solution is not finite."""
        n = self.n
        rhs = np.ascontiguousarray(rhs, dtype=np.float64)
        if n == 0:
            return np.zeros_like(rhs)
        try:
            if self.backend == "dense":
                A = scipy.sparse.csr_matrix((data, self.indices, self.indptr), shape=(n, n)).toarray()
                x = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, lower=True, check_finite=False), rhs,
                                           check_finite=False)
            else:
                # symmetric: the CSR arrays of A are also its CSC arrays
                A = scipy.sparse.csc_matrix((data, self.indices, self.indptr), shape=(n, n))
                if self.backend == "cholmod":
                    if self._symbolic is None:
                        self._symbolic = _analyze(A)
                    self._symbolic.cholesky_inplace(A)
                    x = self._symbolic(rhs)
                else:
                    lu = scipy.sparse.linalg.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                                  options={"SymmetricMode": True})
                    x = lu.solve(rhs)
        except (np.linalg.LinAlgError, ValueError, RuntimeError, CholmodError):
            return None
        x = np.asarray(x).reshape(rhs.shape)
        return x if np.isfinite(x).all() else None
