"""How sure one accuracy is: the Wilson score interval of a rate measured on ``n`` images.

An accuracy is a binomial proportion: ``round(accuracy * n)`` of ``n`` evaluation images right.
The Wilson interval (Wilson 1927) stays inside [0, 1] and keeps its coverage near 0 and 1,
where the normal approximation does not; scipy computes it. It measures the evaluation set's
sampling error only, not the spread of another seed's training (docs/architecture.md,
"Results directory"). A row trained with several seeds has the t interval of their mean
instead (:func:`row_interval`), and two rows whose intervals overlap are not ranked
(:func:`separated`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

__all__ = ["LEVEL", "row_interval", "separated", "wilson"]

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


def row_interval(
    row: Mapping[str, Any], column: str, level: float = LEVEL
) -> tuple[float, float] | None:
    """How sure ``row``'s ``column`` (an accuracy) is. When the tables record its family's
    pooled seed sd (``<column>_family_seed_sd``): the normal interval of the membership model
    (:mod:`search.pareto.membership`: the mean of its seeds, the family's seed variance plus
    the evaluation set's binomial, over its number of seeds), which neither a lucky agreement
    of two seeds narrows nor a t quantile of 1 degree of freedom widens. Else, with two seeds
    or more (``<column>_seeds``), the t interval of their mean; else the recorded Wilson
    interval (``<column>_low``/``_high``); None when the row records none of these. An
    accuracy's interval never leaves [0, 1]."""
    from scipy.stats import norm, t

    from search.pareto.membership import FAMILY_SD_SUFFIX, centre, row_sd, seed_values

    family_sd = row.get(column + FAMILY_SD_SUFFIX)
    if isinstance(family_sd, (int, float)) and isinstance(row.get(column), (int, float)):
        mid, half = centre(row, column), float(norm.ppf(0.5 + level / 2))
        half *= row_sd(row, column, float(family_sd))
        return _accuracy_range(mid - half, mid + half)
    values = seed_values(row, column)
    if len(values) >= 2:
        mean = statistics.fmean(values)
        half = float(t.ppf(0.5 + level / 2, len(values) - 1)) * statistics.stdev(values)
        half /= math.sqrt(len(values))
        return _accuracy_range(mean - half, mean + half)
    low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return float(low), float(high)
    return None


def _accuracy_range(low: float, high: float) -> tuple[float, float]:
    """A normal or t interval of an accuracy, cut to the values an accuracy can take."""
    return max(0.0, low), min(1.0, high)


def separated(a: Mapping[str, Any], b: Mapping[str, Any], column: str) -> bool | None:
    """Whether ``a``'s and ``b``'s ``column`` intervals are disjoint (then they can be ranked);
    None when either records no interval."""
    ia, ib = row_interval(a, column), row_interval(b, column)
    if ia is None or ib is None:
        return None
    return ia[1] < ib[0] or ib[1] < ia[0]
