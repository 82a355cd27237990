from __future__ import annotations

import numpy as np
import pytest

from geomvision.optim import Loss


@pytest.mark.parametrize("name", ["squared", "huber", "cauchy", "soft_l1"])
def test_rho_prime_matches_finite_differences(name):
    loss = Loss(name, 1.5)
    s = np.linspace(0.01, 30.0, 200)
    _, d1 = loss(s)
    h = 1e-6
    fd = (loss(s + h)[0] - loss(s - h)[0]) / (2 * h)
    np.testing.assert_allclose(d1, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["huber", "cauchy", "soft_l1"])
def test_robust_losses_agree_with_squared_near_zero_and_grow_slower(name):
    loss = Loss(name, 2.0)
    rho, _ = loss(np.array([1e-8, 1e-4]))
    np.testing.assert_allclose(rho, [1e-8, 1e-4], rtol=1e-3)
    big, d1_big = loss(np.array([1e4]))
    assert big[0] < 1e4 and d1_big[0] < 0.05


def test_huber_values():
    rho, d1 = Loss("huber", 2.0)(np.array([1.0, 4.0, 16.0]))
    np.testing.assert_allclose(rho, [1.0, 4.0, 2 * 2 * 4 - 4])
    np.testing.assert_allclose(d1, [1.0, 1.0, 0.5])


def test_loss_validation():
    with pytest.raises(ValueError, match="loss name"):
        Loss("tukey")
    with pytest.raises(ValueError, match="scale"):
        Loss("huber", 0.0)
