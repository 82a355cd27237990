"""Small numba numerics shared by the solvers: polynomial roots, tiny linear algebra, normalisation.

Everything here is ``@njit`` and allocation-light so that the minimal solvers stay in the
microsecond range when called from a RANSAC loop.

- ``cubic_roots(c3, c2, c1, c0) -> (roots (3,), n)``: real roots of a cubic (closed form + Newton);
  ``cubic_roots3`` returns them as scalars ``(n, r0, r1, r2)`` without allocating.
- ``binary_cubic_roots(a0, a1, a2, a3) -> (mu (3,), lam (3,), n)``: real projective roots of
  a0 mu^3 + a1 mu^2 lam + a2 mu lam^2 + a3 lam^3 = 0, dehomogenised on the better-conditioned side.
- ``poly_real_roots(p, out) -> n``: real roots of a polynomial (coefficients lowest degree first)
  by Sturm-sequence isolation and safeguarded Newton refinement (PoseLib's approach);
  ``poly_real_roots_ws(p, out, roots_workspace(n))`` the same without allocating.
- ``null_space_qr(A (m,n)) -> (N (n-m, n), ok)``: orthonormal null space of the m x n matrix A
  (m < n) from the Householder QR of A^T; ok False when rank(A) < m (``null_space_qr_into``
  writes into caller's arrays).
- ``normalise_points(x, w) -> (xn, T)``: Hartley normalisation (weighted centroid, mean distance
  sqrt(2)); ``x_n = T @ (x, 1)``.
- ``epipolar_nullvector(P, Q, w) -> (M (3,3), ok)``: the weighted least-squares M with
  ``q_i^T M p_i = 0`` for homogeneous (conditioned) points P, Q (n,3): the 8-point core of E and F.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._views import carve


@njit(cache=True)
def _horner(p, n, x):
    v = p[n]
    for k in range(n - 1, -1, -1):
        v = v * x + p[k]
    return v


@njit(cache=True)
def _newton_cubic(x, a, b, c):
    for _ in range(3):
        f = ((x + a) * x + b) * x + c
        df = (3.0 * x + 2.0 * a) * x + b
        if df == 0.0:
            break
        dx = f / df
        x -= dx
        if abs(dx) <= 1e-16 * (1.0 + abs(x)):
            break
    return x


@njit(cache=True)
def cubic_roots3(c3, c2, c1, c0):
    """Real roots of c3 x^3 + c2 x^2 + c1 x + c0 as scalars: (n, r0, r1, r2), allocation-free.
    Degrades to a quadratic / linear equation when the leading coefficients vanish."""
    scale = max(abs(c3), abs(c2), abs(c1), abs(c0))
    if scale == 0.0:
        return 0, 0.0, 0.0, 0.0
    if abs(c3) <= 1e-14 * scale:
        if abs(c2) <= 1e-14 * scale:
            if abs(c1) <= 1e-14 * scale:
                return 0, 0.0, 0.0, 0.0
            return 1, -c0 / c1, 0.0, 0.0
        disc = c1 * c1 - 4.0 * c2 * c0
        if disc < 0.0:
            return 0, 0.0, 0.0, 0.0
        sq = np.sqrt(disc)
        q = -0.5 * (c1 + (sq if c1 >= 0.0 else -sq))
        if q == 0.0:
            return 1, 0.0, 0.0, 0.0
        return 2, c0 / q, q / c2, 0.0
    a = c2 / c3
    b = c1 / c3
    c = c0 / c3
    # depressed cubic t^3 + p t + q with x = t - a/3
    a3 = a / 3.0
    p = b - a * a3
    q = 2.0 * a3 * a3 * a3 - a3 * b + c
    disc = 0.25 * q * q + p * p * p / 27.0
    if disc > 0.0:
        sq = np.sqrt(disc)
        u = np.cbrt(-0.5 * q + (sq if q <= 0.0 else -sq))  # avoid cancellation
        t = u - p / (3.0 * u) if u != 0.0 else 0.0
        return 1, _newton_cubic(t - a3, a, b, c), 0.0, 0.0
    if p >= 0.0:
        return 1, _newton_cubic(np.cbrt(-q) - a3, a, b, c), 0.0, 0.0
    # three real roots (two may coincide): trigonometric form
    m = 2.0 * np.sqrt(-p / 3.0)
    arg = min(1.0, max(-1.0, 3.0 * q / (p * m)))
    th = np.arccos(arg) / 3.0
    r0 = _newton_cubic(m * np.cos(th) - a3, a, b, c)
    r1 = _newton_cubic(m * np.cos(th - 2.0943951023931957) - a3, a, b, c)
    r2 = _newton_cubic(m * np.cos(th - 4.1887902047863905) - a3, a, b, c)
    return 3, r0, r1, r2


@njit(cache=True)
def cubic_roots(c3, c2, c1, c0):
    """Real roots of c3 x^3 + c2 x^2 + c1 x + c0 (degrades to a quadratic / linear equation
    when the leading coefficients vanish). Returns (roots (3,), n)."""
    n, r0, r1, r2 = cubic_roots3(c3, c2, c1, c0)
    roots = np.zeros(3)
    roots[0] = r0
    roots[1] = r1
    roots[2] = r2
    return roots, n


@njit(cache=True)
def binary_cubic_roots(a0, a1, a2, a3):
    """Real roots (mu, lam) of a0 mu^3 + a1 mu^2 lam + a2 mu lam^2 + a3 lam^3 = 0.

    Dehomogenises on the side with the larger leading coefficient, so that a root 'at
    infinity' of one affine form is found as a finite root of the other.
    Returns (mu (3,), lam (3,), n).
    """
    mu = np.zeros(3)
    lam = np.zeros(3)
    if abs(a3) >= abs(a0):
        # mu = 1: a3 l^3 + a2 l^2 + a1 l + a0
        n, r0, r1, r2 = cubic_roots3(a3, a2, a1, a0)
        mu[0] = mu[1] = mu[2] = 1.0
        lam[0], lam[1], lam[2] = r0, r1, r2
    else:
        # lam = 1: a0 m^3 + a1 m^2 + a2 m + a3
        n, r0, r1, r2 = cubic_roots3(a0, a1, a2, a3)
        lam[0] = lam[1] = lam[2] = 1.0
        mu[0], mu[1], mu[2] = r0, r1, r2
    return mu, lam, n


@njit(cache=True)
def _sturm_count(S, deg, m, x):
    """Number of sign changes at x of the Sturm sequence S[0..m] (zeros do not count).

    Each member is evaluated from its own coefficients: the three-term recurrence through the
    quotients is cheaper but loses the signs to cancellation on badly scaled sequences."""
    changes = 0
    last = 0.0
    for k in range(m + 1):
        d = deg[k]
        v = S[k, d]
        for j in range(d - 1, -1, -1):
            v = v * x + S[k, j]
        if v != 0.0:
            if last != 0.0 and (v > 0.0) != (last > 0.0):
                changes += 1
            last = v
    return changes


@njit(cache=True)
def _refine_root(p, n, a, b):
    """Root of p in [a, b] where p changes sign: safeguarded Newton (bisection when a Newton
    step leaves the bracket), to a relative step of 1e-14 or until |p(x)| is within rounding
    of its evaluation (ROOT_ROUNDING_ULPS times the bound eps sum |p_k| |x|^k): there the sign
    of p is noise, and Newton and bisection steps on it only wander inside the rounding band
    (on RANSAC's 5-point polynomials up to 50 steps where 6 reach it)."""
    fa = _horner(p, n, a)
    fb = _horner(p, n, b)
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    pos_a = fa > 0.0
    x = 0.5 * (a + b)
    tol = ROOT_ROUNDING_ULPS * 2.220446049250313e-16
    for _ in range(80):
        f = p[n]
        df = 0.0
        size = abs(p[n])
        ax = abs(x)
        for k in range(n - 1, -1, -1):
            df = df * x + f
            f = f * x + p[k]
            size = size * ax + abs(p[k])
        if abs(f) <= tol * size:
            return x
        if (f > 0.0) == pos_a:
            a = x
        else:
            b = x
        xn = x - f / df if df != 0.0 else 0.5 * (a + b)
        if not (a < xn < b):
            xn = 0.5 * (a + b)
        if abs(xn - x) <= 1e-14 * max(1.0, abs(xn)):
            return xn
        x = xn
    return x


ROOT_ROUNDING_ULPS = 4.0  # |p(x)| below this many ulps of its evaluation bound ends the refinement


ROOTS_STACK = 64  # bisection intervals pending at once in the Sturm search


@njit(inline="always")
def roots_views(wf, o, wi, oi, n, owned=False):
    """The scratch of ``poly_real_roots_ws`` for degree <= n carved from the flat arrays wf
    (floats, from offset o) and wi (int64, from oi), no allocation; returns (ws, o, oi) with the
    offsets past it. ws = (Sturm sequence (n+1, n+1), degrees (n+1,), remainder (n+1,),
    stack bounds (2, ROOTS_STACK), stack sign counts (2, ROOTS_STACK), trimmed and reversed
    polynomials (n+1,) x 2, roots of both searches (2n+2,))."""
    S, o = carve(wf, o, (n + 1, n + 1), owned)
    r, o = carve(wf, o, (n + 1,), owned)
    stack_f, o = carve(wf, o, (2, ROOTS_STACK), owned)
    q, o = carve(wf, o, (n + 1,), owned)
    qr, o = carve(wf, o, (n + 1,), owned)
    buf, o = carve(wf, o, (2 * n + 2,), owned)
    deg, oi = carve(wi, oi, (n + 1,), owned)
    stack_i, oi = carve(wi, oi, (2, ROOTS_STACK), owned)
    ws = (S, deg, r, stack_f, stack_i, q, qr, buf)
    return ws, o, oi


@njit(cache=True)
def roots_sizes(n):
    """(floats, ints) taken by ``roots_views`` for degree n."""
    return (n + 1) * (n + 1) + 4 * (n + 1) + 2 * ROOTS_STACK + 2 * n + 2, n + 1 + 2 * ROOTS_STACK


@njit(cache=True)
def roots_workspace(n):
    """Scratch for ``poly_real_roots_ws`` on polynomials of degree <= n (``roots_views`` on
    fresh arrays)."""
    nf, ni = roots_sizes(n)
    return roots_views(np.zeros(nf), 0, np.zeros(ni, dtype=np.int64), 0, n, True)[0]


@njit(cache=True)
def _sturm_roots_in(p, n, lo, hi, out, count, ws):
    """Append the real roots of the degree-n polynomial p (lowest first, p[n] != 0) in (lo, hi]
    to out[count:]; returns the new count. Sturm isolation + safeguarded Newton refinement;
    ``ws`` from ``roots_workspace`` (its sequence, remainder and stack are overwritten)."""
    # Sturm sequence S0 = p / lead, S1 = S0' / n, S_{k+1} = -rem(S_{k-1}, S_k) / |lead of rem|
    S, deg, r, stack_f, stack_i = ws[0], ws[1], ws[2], ws[3], ws[4]
    lead = p[n]
    for k in range(n + 1):
        S[0, k] = p[k] / lead
    deg[0] = n
    for k in range(n):
        S[1, k] = (k + 1) * S[0, k + 1] / n
    deg[1] = n - 1
    m = 1
    while deg[m] > 0:
        dr = deg[m - 1]
        for j in range(dr + 1):
            r[j] = S[m - 1, j]
        dm = deg[m]
        lc = S[m, dm]
        while dr >= dm:
            f = r[dr] / lc
            for j in range(dm + 1):
                r[dr - dm + j] -= f * S[m, j]
            r[dr] = 0.0
            dr -= 1
        rs = abs(lc)
        for j in range(dm):
            rs = max(rs, abs(S[m, j]))
        while dr >= 0 and abs(r[dr]) <= 1e-13 * rs:
            dr -= 1
        if dr < 0:
            break  # S[m] is the gcd: multiple roots, the sequence ends here
        m += 1
        nr = abs(r[dr])
        for j in range(dr + 1):
            S[m, j] = -r[j] / nr
        deg[m] = dr
    S0 = S[0]
    stack_a, stack_b, stack_ca, stack_cb = stack_f[0], stack_f[1], stack_i[0], stack_i[1]
    stack_a[0] = lo
    stack_b[0] = hi
    stack_ca[0] = _sturm_count(S, deg, m, lo)
    stack_cb[0] = _sturm_count(S, deg, m, hi)
    top = 1
    while top > 0 and count < out.shape[0]:
        top -= 1
        a = stack_a[top]
        b = stack_b[top]
        ca = stack_ca[top]
        cb = stack_cb[top]
        nroots = ca - cb
        if nroots <= 0:
            continue
        fa = _horner(S0, n, a)
        fb = _horner(S0, n, b)
        change = (fa > 0.0) != (fb > 0.0) or fb == 0.0
        if nroots == 1 and change:
            out[count] = _refine_root(S0, n, a, b)
            count += 1
            continue
        mid = 0.5 * (a + b)
        if b - a <= 1e-10 * max(1.0, abs(mid)) or top + 2 > ROOTS_STACK:
            if change:
                out[count] = _refine_root(S0, n, a, b)
                count += 1
            continue
        cm = _sturm_count(S, deg, m, mid)
        stack_a[top] = a
        stack_b[top] = mid
        stack_ca[top] = ca
        stack_cb[top] = cm
        top += 1
        stack_a[top] = mid
        stack_b[top] = b
        stack_ca[top] = cm
        stack_cb[top] = cb
        top += 1
    return count


@njit(cache=True)
def poly_real_roots(p, out):
    """Real roots of sum_k p[k] x^k (p lowest degree first), written to ``out``; returns the count.

    Roots with |x| <= 1 are isolated with a Sturm sequence of p on [-1, 1], roots with |x| > 1
    as the roots 1/u of the reversed polynomial u^n p(1/u) on [-1, 1]: both
    searches run on a unit interval, which keeps the Sturm counts reliable when the
    coefficients span many orders of magnitude. Roots are refined by safeguarded Newton steps.
    """
    return poly_real_roots_ws(p, out, roots_workspace(p.shape[0] - 1))


@njit(cache=True)
def poly_real_roots_ws(p, out, ws):
    """``poly_real_roots`` with its scratch from ``roots_workspace(>= len(p) - 1)``: no
    allocation (called once per RANSAC draw)."""
    n = p.shape[0] - 1
    scale = 0.0
    for k in range(n + 1):
        scale = max(scale, abs(p[k]))
    if scale == 0.0:
        return 0
    hi = n
    while hi > 0 and abs(p[hi]) <= 1e-14 * scale:
        hi -= 1
    lo = 0
    while lo < hi and abs(p[lo]) <= 1e-14 * scale:
        lo += 1  # x = 0 is a root of multiplicity lo
    count = 0
    if lo > 0 and count < out.shape[0]:
        out[count] = 0.0
        count += 1
    d = hi - lo
    if d == 0:
        return count
    q, qr, buf = ws[5], ws[6], ws[7]
    for k in range(d + 1):
        q[k] = p[lo + k]
    # |x| <= 1 on (-1 - eps, 1]; |x| >= 1 as 1/u for the roots u of the reversed polynomial on
    # the same interval (u = 0, x = inf, is not a root: the leading coefficient is non-zero).
    # The intervals overlap slightly so that roots at x = +-1 are not lost to rounding; roots
    # found twice are merged. A scratch buffer holds both searches before the merge.
    nb = _sturm_roots_in(q, d, -1.0 - 1e-7, 1.0, buf, 0, ws)
    for k in range(d + 1):
        qr[k] = q[d - k]
    c1 = nb
    nb = _sturm_roots_in(qr, d, -1.0 - 1e-7, 1.0, buf, nb, ws)
    for k in range(c1, nb):
        buf[k] = 1.0 / buf[k] if buf[k] != 0.0 else np.inf
    m = count
    for k in range(nb):
        x = buf[k]
        keep = np.isfinite(x) and m < out.shape[0]
        for j in range(count, m):
            if abs(out[j] - x) <= 1e-9 * max(1.0, abs(x)):
                keep = False
        if keep:
            out[m] = x
            m += 1
    return m


@njit(cache=True)
def eigh(A):
    """np.linalg.eigh behind one compiled function: every solver links this instead of
    compiling LAPACK's wrapper again (a large share of the cold JIT time)."""
    return np.linalg.eigh(A)


@njit(cache=True)
def svd(A):
    """np.linalg.svd behind one compiled function (see ``eigh``)."""
    return np.linalg.svd(A)


@njit(cache=True)
def null_space_qr(A):
    """Orthonormal basis (rows) of the null space of A (m x n, m < n).

    Householder QR of A^T, its columns being A's rows (so every loop runs along a row): the last
    n - m columns of Q. ``A`` is overwritten. Returns (N (n-m, n), ok) with ok False when A is
    rank-deficient (a pivot below 1e-10 of the first).
    """
    m, n = A.shape
    N = np.zeros((n - m, n))
    ok = null_space_qr_into(A, np.empty((m, n)), N)
    return N, ok


@njit(cache=True)
def null_space_qr_into(A, V, N):
    """``null_space_qr`` into N (n-m, n) with V (m, n) as scratch (both overwritten); returns ok
    (N is zero when not)."""
    m, n = A.shape
    r00 = 0.0
    for k in range(m):
        nrm = 0.0
        for i in range(k, n):
            nrm += A[k, i] * A[k, i]
        nrm = np.sqrt(nrm)
        if k == 0:
            r00 = nrm
        if not nrm > 1e-10 * r00:
            N[:, :] = 0.0
            return False
        alpha = -nrm if A[k, k] >= 0.0 else nrm
        vn = 0.0
        for i in range(k, n):
            V[k, i] = A[k, i]
        V[k, k] -= alpha
        for i in range(k, n):
            vn += V[k, i] * V[k, i]
        inv = 1.0 / np.sqrt(vn)
        for i in range(k, n):
            V[k, i] *= inv
        for c in range(k, m):
            d = 0.0
            for i in range(k, n):
                d += V[k, i] * A[c, i]
            d *= 2.0
            for i in range(k, n):
                A[c, i] -= d * V[k, i]
    N[:, :] = 0.0
    for c in range(n - m):
        N[c, m + c] = 1.0
    for k in range(m - 1, -1, -1):
        for c in range(n - m):
            d = 0.0
            for i in range(k, n):
                d += V[k, i] * N[c, i]
            d *= 2.0
            for i in range(k, n):
                N[c, i] -= d * V[k, i]
    return True


@njit(cache=True)
def normalise_points(x, w):
    """Hartley normalisation of (N,2) points with weights w (N,): returns (xn (N,2), T (3,3)) with
    xn = T (x, 1), weighted centroid at 0 and weighted mean distance sqrt(2).
    T is all-zero when the points coincide (degenerate)."""
    n = x.shape[0]
    sw = 0.0
    cx = 0.0
    cy = 0.0
    for i in range(n):
        sw += w[i]
        cx += w[i] * x[i, 0]
        cy += w[i] * x[i, 1]
    T = np.zeros((3, 3))
    xn = np.empty((n, 2))
    if sw <= 0.0:
        return xn, T
    cx /= sw
    cy /= sw
    d = 0.0
    for i in range(n):
        d += w[i] * np.hypot(x[i, 0] - cx, x[i, 1] - cy)
    d /= sw
    if not d > 1e-300:
        return xn, T
    s = np.sqrt(2.0) / d
    for i in range(n):
        xn[i, 0] = s * (x[i, 0] - cx)
        xn[i, 1] = s * (x[i, 1] - cy)
    T[0, 0] = s
    T[1, 1] = s
    T[0, 2] = -s * cx
    T[1, 2] = -s * cy
    T[2, 2] = 1.0
    return xn, T


@njit(cache=True)
def inv_normaliser(T):
    """Inverse of a Hartley normaliser [[s, 0, -s cx], [0, s, -s cy], [0, 0, 1]]."""
    Ti = np.zeros((3, 3))
    s = T[0, 0]
    Ti[0, 0] = 1.0 / s
    Ti[1, 1] = 1.0 / s
    Ti[0, 2] = -T[0, 2] / s
    Ti[1, 2] = -T[1, 2] / s
    Ti[2, 2] = 1.0
    return Ti


@njit(cache=True)
def det3(M):
    return (
        M[0, 0] * (M[1, 1] * M[2, 2] - M[1, 2] * M[2, 1])
        - M[0, 1] * (M[1, 0] * M[2, 2] - M[1, 2] * M[2, 0])
        + M[0, 2] * (M[1, 0] * M[2, 1] - M[1, 1] * M[2, 0])
    )


@njit(cache=True)
def matmul3(A, B):
    """3x3 product by explicit loops (BLAS call overhead dominates at this size)."""
    C = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            C[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
    return C


@njit(cache=True)
def frobenius_normalise(M):
    s = 0.0
    for i in range(3):
        for j in range(3):
            s += M[i, j] * M[i, j]
    s = np.sqrt(s)
    if s > 0.0:
        for i in range(3):
            for j in range(3):
                M[i, j] /= s
    return s


@njit(cache=True)
def solve_linear(A, b):
    """Solve A x = b (small dense, Gaussian elimination with partial pivoting); A, b are copied.
    Returns (x, ok); ok is False when a pivot is zero or not finite."""
    n = A.shape[0]
    M = A.copy()
    x = b.copy()
    for k in range(n):
        p = k
        best = abs(M[k, k])
        for i in range(k + 1, n):
            if abs(M[i, k]) > best:
                best = abs(M[i, k])
                p = i
        if not best > 0.0 or not np.isfinite(best):
            return x, False
        if p != k:
            for j in range(n):
                tmp = M[k, j]
                M[k, j] = M[p, j]
                M[p, j] = tmp
            tmp = x[k]
            x[k] = x[p]
            x[p] = tmp
        piv = M[k, k]
        for i in range(k + 1, n):
            f = M[i, k] / piv
            if f != 0.0:
                for j in range(k, n):
                    M[i, j] -= f * M[k, j]
                x[i] -= f * x[k]
    for k in range(n - 1, -1, -1):
        s = x[k]
        for j in range(k + 1, n):
            s -= M[k, j] * x[j]
        x[k] = s / M[k, k]
    return x, True


@njit(cache=True)
def cholesky_solve(A, b):
    """Solve A x = b for a symmetric positive definite A (copied). Returns (x, ok)."""
    n = A.shape[0]
    L = np.zeros((n, n))
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return np.zeros(n), False
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, n):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
    y = np.empty(n)
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * y[k]
        y[i] = s / L[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = y[i]
        for k in range(i + 1, n):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]
    return x, True


@njit(cache=True)
def epipolar_nullvector(P, Q, w):
    """M (3,3) minimising sum_i w_i (q_i^T M p_i)^2 with |M|_F = 1 (rows of P, Q (n,3) are
    homogeneous, already conditioned points); ok False when the minimiser is not unique
    (fewer than 8 independent constraints: planar scene, pure rotation, repeated points)."""
    AtA = np.zeros((9, 9))
    a = np.empty(9)
    for i in range(P.shape[0]):
        wi = w[i]
        if wi <= 0.0:
            continue
        for j in range(3):
            for k in range(3):
                a[3 * j + k] = Q[i, j] * P[i, k]
        for r in range(9):
            ar = wi * a[r]
            for c in range(r, 9):
                AtA[r, c] += ar * a[c]
    for r in range(9):
        for c in range(r):
            AtA[r, c] = AtA[c, r]
    M = np.empty((3, 3))
    evals, evecs = eigh(AtA)
    if not evals[1] > 1e-12 * evals[8]:
        return M, False
    for r in range(3):
        for c in range(3):
            M[r, c] = evecs[3 * r + c, 0]
    return M, True
