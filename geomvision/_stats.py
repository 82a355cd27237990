"""Small statistical tests shared by the pipeline's decisions."""

from __future__ import annotations

import math


def sign_test_pvalue(successes: int, n: int) -> float:
    """One-sided sign test: the chance that a fair coin gives ``successes`` or more heads in
    ``n`` tosses (1.0 when n is 0). Exact, summed in log space (any n)."""
    if n <= 0:
        return 1.0
    k = max(int(successes), 0)
    if k > n:
        return 0.0
    log_half = n * math.log(0.5)
    terms = [math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) + log_half for m in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))
