"""Polynomial root finders and small linear algebra used by the minimal solvers."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from geomvision.solvers._views import borrowed, carve, owned_by
from geomvision.solvers._numeric import binary_cubic_roots, cholesky_solve, cubic_roots, null_space_qr, poly_real_roots


def _match(found, expected, rtol):
    found = np.sort(found)
    expected = np.sort(expected)
    assert len(found) == len(expected), (found, expected)
    assert np.allclose(found, expected, rtol=rtol, atol=rtol)


def test_cubic_roots_three_and_one_real(rng):
    for _ in range(300):
        r = rng.uniform(-10, 10, 3)
        c = np.poly(r) * rng.uniform(0.1, 10)
        roots, n = cubic_roots(*c)
        _match(roots[:n], r, 1e-7)
        # one real root and a complex pair
        a = rng.uniform(-10, 10)
        z = complex(rng.uniform(-5, 5), rng.uniform(0.5, 5))
        c = np.real(np.poly([a, z, z.conjugate()]))
        roots, n = cubic_roots(*c)
        _match(roots[:n], [a], 1e-9)


def test_cubic_degenerate_leading_coefficients():
    roots, n = cubic_roots(0.0, 1.0, -3.0, 2.0)  # (x - 1)(x - 2)
    _match(roots[:n], [1.0, 2.0], 1e-12)
    roots, n = cubic_roots(0.0, 0.0, 2.0, -1.0)
    _match(roots[:n], [0.5], 1e-12)
    assert cubic_roots(0.0, 0.0, 0.0, 0.0)[1] == 0
    assert cubic_roots(0.0, 1.0, 0.0, 1.0)[1] == 0  # x^2 + 1
    roots, n = cubic_roots(1.0, -3.0, 3.0, -1.0)  # triple root at 1
    assert n >= 1 and np.allclose(roots[:n], 1.0, atol=1e-5)


def test_binary_cubic_handles_root_at_infinity(rng):
    # mu^2 lam - 3 mu lam^2 + 2 lam^3 = lam (mu - lam)(mu - 2 lam): the root lam = 0 is at
    # infinity of the affine form in lam / mu = ... and must still be found
    mu, lam, n = binary_cubic_roots(0.0, 1.0, -3.0, 2.0)
    vals = [0.0 * m**3 + 1.0 * m**2 * l - 3.0 * m * l**2 + 2.0 * l**3 for m, l in zip(mu[:n], lam[:n])]
    assert n == 3 and np.allclose(vals, 0.0, atol=1e-12)
    mu, lam, n = binary_cubic_roots(2.0, -3.0, 1.0, 0.0)  # mu (2 mu - lam)(mu - lam): mu = 0 is a root
    assert n == 3
    assert min(abs(m) for m in mu[:n]) < 1e-12


def test_poly_real_roots_degree_ten(rng):
    for _ in range(300):
        # up to 6 real roots (the 5-point solver rarely has more); the rest are complex pairs.
        # Real roots are kept apart: clustered roots (Wilkinson) are ill-conditioned by nature
        n_real = 2 * rng.integers(0, 4)
        real = (rng.uniform(-4.0, 0.0) + np.cumsum(rng.uniform(0.3, 2.0, n_real))) * 10.0 ** rng.uniform(-1, 1)
        pairs = [complex(rng.normal(), abs(rng.normal()) + 0.1) for _ in range((10 - n_real) // 2)]
        allr = list(real) + [z for p in pairs for z in (p, p.conjugate())]
        p = np.real(np.poly(allr))[::-1] * rng.uniform(0.1, 10)  # lowest degree first
        out = np.empty(10)
        m = poly_real_roots(p, out)
        _match(out[:m], real, 1e-7)


def test_poly_real_roots_wide_coefficient_range():
    # roots spanning 1e-3 .. 1e3: isolated on [-1, 1] and through the reversed polynomial
    real = np.array([-1e3, -2.5, -1e-3, 0.02, 0.9, 1.1, 40.0, 700.0])
    p = np.real(np.poly(list(real) + [1j, -1j]))[::-1]
    out = np.empty(10)
    m = poly_real_roots(p, out)
    _match(out[:m], real, 1e-8)
    p0 = np.r_[0.0, 0.0, np.real(np.poly([2.0, -3.0]))[::-1]]  # x^2 (x - 2)(x + 3)
    m = poly_real_roots(p0, out)
    _match(out[:m], [0.0, 2.0, -3.0], 1e-10)


def test_null_space_qr(rng):
    A = rng.normal(size=(5, 9))
    N, ok = null_space_qr(A.copy())
    assert ok and np.allclose(A @ N.T, 0.0, atol=1e-12) and np.allclose(N @ N.T, np.eye(4), atol=1e-12)
    A[4] = A[0] + A[1]
    assert not null_space_qr(A.copy())[1]


def test_cholesky_solve(rng):
    M = rng.normal(size=(6, 6))
    A = M @ M.T + 0.1 * np.eye(6)
    b = rng.normal(size=6)
    x, ok = cholesky_solve(A, b)
    assert ok and np.allclose(A @ x, b)
    assert not cholesky_solve(-A, b)[1]


@pytest.mark.parametrize("c", [(1.0, 0.0, 0.0, -8.0), (2.0, -4.0, -22.0, 24.0)])
def test_cubic_known(c):
    roots, n = cubic_roots(*c)
    ref = np.roots(c)
    ref = np.sort(ref[np.abs(ref.imag) < 1e-9].real)
    _match(roots[:n], ref, 1e-12)


def test_poly_real_roots_on_the_unit_circle_boundary():
    # roots exactly at -1 and +1 sit on the seam between the direct and reversed searches
    real = np.array([-1.0, 1.0, -3.0, 0.5, 4.0])
    p = np.real(np.poly(list(real) + [1 + 1j, 1 - 1j, 2j, -2j]))[::-1]
    out = np.empty(10)
    m = poly_real_roots(p, out)
    _match(out[:m], real, 1e-10)


@njit(cache=True)
def _carve_layout(w, wi):
    a, o = carve(w, 0, (5, 9))
    b, o = carve(w, o, (3, 3, 4))
    c, o = carve(w, o, (7,))
    d, oi = carve(wi, 0, (2, 3))
    a[4, 8] = -1.0  # written through the view into w
    d[1, 2] = -7
    return a.copy(), b.copy(), b.strides, c.copy(), d.copy(), o, oi


@njit(cache=True)
def _carve_past_end(w):
    return carve(w, 40, (5, 9))[0].copy()


def test_carved_views_are_the_reshaped_slices_of_one_array():
    # the 5-point solver's scratch is carved per draw with carve (an intrinsic building the views
    # in place, not numba's reshape): each view must be exactly the reshaped slice, share its
    # memory, and a layout longer than its array must raise instead of writing past its end
    w = np.arange(100.0)
    wi = np.arange(10, dtype=np.int64)
    a, b, b_strides, c, d, o, oi = _carve_layout(w, wi)
    assert (o, oi) == (88, 6)
    ref = np.arange(100.0)
    ref[44] = -1.0
    assert np.array_equal(a, ref[:45].reshape(5, 9))
    assert np.array_equal(b, ref[45:81].reshape(3, 3, 4)) and b_strides == (96, 32, 8)
    assert np.array_equal(c, ref[81:88])
    assert w[44] == -1.0 and wi[5] == -7 and np.array_equal(d, [[0, 1, 2], [3, 4, -7]])
    with pytest.raises(IndexError, match="smaller than its layout"):
        _carve_past_end(np.zeros(80))


@njit(cache=True)
def _scratch_views(n):
    w = np.arange(n * 1.0)  # dies with this call unless a view owns it
    borrowed_one = carve(w, 10, (3, 4))[0]
    owned_one = carve(w, 10, (3, 4), True)[0]
    return owned_one, owned_by(borrowed_one, w), borrowed_one.sum()


@njit(cache=True)
def _sum_all(data):
    a, (b, c), k = borrowed(data)
    return a.sum() + b.sum() + c.sum() + k


def test_scratch_views_returned_from_a_kernel_keep_their_memory():
    # carve's views are borrowed (no reference to the scratch, so no atomic reference-count
    # updates on each use); a view that leaves the kernel must own its memory (carve(...,
    # owned=True) or owned_by): here the scratch dies with the call, and freed memory is then
    # reused by the allocations that follow
    owned_one, rebased, total = _scratch_views(4096)
    junk = [np.full(4096, np.nan) for _ in range(64)]
    expect = np.arange(10.0, 22.0).reshape(3, 4)
    assert total == expect.sum()
    assert np.array_equal(owned_one, expect) and owned_one.base is not None
    assert np.array_equal(rebased, expect) and rebased.base is not None
    del junk
    # borrowed() strips the references of a nested tuple of arrays without changing its values
    a, b, c = np.arange(3.0), np.ones((2, 2)), np.full(4, 2.0)
    assert _sum_all((a, (b, c), 0.5)) == 3.0 + 4.0 + 8.0 + 0.5
