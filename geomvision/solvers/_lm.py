"""One small dense Levenberg-Marquardt driver (numba) shared by the model refiners.

A problem is two ``@njit`` functions over a flat parameter vector ``x`` and a tuple ``data``:

- ``system(x, data, want) -> (cost, valid, JtJ (k,k), Jtr (k,), x_scale)``: the weighted cost
  ``sum w r^2`` at ``x``; with ``want`` also the normal equations in the k local coordinates
  of the step (a tangent space when ``x`` lives on a manifold); ``valid`` counts the points the
  cost is defined on (a step may not lower it, e.g. push points behind a camera);
  ``x_scale`` is the magnitude the step tolerance is relative to (0 for unit-norm models).
- ``retract(x, d, data) -> x_new``: the parameters after the local step ``d`` (k,).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._numeric import cholesky_solve

MAX_DAMPING_TRIALS = 12


@njit(cache=True)
def damped_step(JtJ, Jtr, lam):
    """Solve (JtJ + lam diag(JtJ)) d = -Jtr; returns (d, ok)."""
    n = JtJ.shape[0]
    A = JtJ.copy()
    dmax = 0.0
    for i in range(n):
        dmax = max(dmax, JtJ[i, i])
    for i in range(n):
        A[i, i] += lam * max(JtJ[i, i], 1e-12 * dmax) + 1e-300
    d, ok = cholesky_solve(A, -Jtr)
    return d, ok


@njit(cache=True)
def max_abs(v):
    m = 0.0
    for i in range(v.shape[0]):
        m = max(m, abs(v[i]))
    return m


@njit(cache=True)
def norm(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return np.sqrt(s)


@njit(inline="always")
def lm_minimise(system, retract, x, data, max_iter, ftol, xtol, gtol):
    """Minimise ``system``'s cost from ``x``: Marquardt damping (diag(J^T J) scaled, x10 on a
    rejected step, /10 on an accepted one); a step is kept only when it lowers the cost without
    losing valid points. Stops after ``max_iter`` iterations, when the gradient max-norm is
    <= ``gtol * cost``, the relative cost decrease <= ``ftol`` or the step norm
    <= ``xtol * (1 + x_scale)``. Returns (x, iterations, initial cost, final cost)."""
    lam = 1e-4
    it = 0
    cost, valid, JtJ, Jtr, _ = system(x, data, True)
    cost0 = cost
    while it < max_iter:
        if max_abs(Jtr) <= gtol * max(cost, 1e-300) or cost == 0.0:
            break
        it += 1
        accepted = False
        for _ in range(MAX_DAMPING_TRIALS):
            d, ok = damped_step(JtJ, Jtr, lam)
            if ok:
                xn = retract(x, d, data)
                cn, vn, _, _, scale_n = system(xn, data, False)
                if cn < cost and vn >= valid:
                    accepted = True
                    break
            lam *= 10.0
        if not accepted:
            break
        lam = max(lam * 0.1, 1e-12)
        dec = cost - cn
        x = xn
        if dec <= ftol * cn or norm(d) <= xtol * (1.0 + scale_n) or it >= max_iter:
            cost = cn  # (no Jacobian at the last point: nothing would use it)
            break
        cost, valid, JtJ, Jtr, _ = system(x, data, True)
    return x, it, cost0, cost
