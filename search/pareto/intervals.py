"""How sure one accuracy is: the Wilson score interval of a rate measured on ``n`` images.

An accuracy is a binomial proportion: ``round(accuracy * n)`` of ``n`` evaluation images right.
The Wilson interval (Wilson 1927) stays inside [0, 1] and keeps its coverage near 0 and 1,
where the normal approximation does not; scipy computes it. It measures the evaluation set's
sampling error only, not the spread of another seed's training (docs/architecture.md,
"Results directory").
"""

from __future__ import annotations

import math

__all__ = ["LEVEL", "wilson"]

#: The confidence level of every interval the project reports.
LEVEL = 0.95


def wilson(
    accuracy: float | None, n: int | None, level: float = LEVEL
) -> tuple[float, float] | None:
    """The Wilson interval of ``accuracy`` measured on ``n`` images; None without either."""
    if accuracy is None or not n or n <= 0 or not math.isfinite(accuracy):
        return None
    from scipy.stats import binomtest

    hits = min(max(round(accuracy * n), 0), n)
    ci = binomtest(hits, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)
