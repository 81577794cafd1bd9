"""How far one seed's draw moves a front: the empirical attainment function (EAF) across seeds.

Each seed index r gives one front: every front-eligible row at its r-th seed's accuracy (a row
with fewer seeds, e.g. one that was never confirmed, at the mean of those it has), at its exact
cost. The EAF (Fonseca et al.; computed by ``moocore``) says, for each point of the plane, the
share of those fronts that reach it. Its 25 %, 50 % (median) and 75 % attainment surfaces are
the band the report draws: the median is the front a typical seed gives, and the band between
the quartiles is how far another draw moves it. With one seed per row there is no band.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.pareto.membership import seed_values
from search.pareto.objectives import Objective, is_eligible

__all__ = ["PERCENTILES", "AttainmentBand", "attainment_band"]

#: The attainment surfaces drawn: the lower quartile, the median and the upper quartile.
PERCENTILES = (25.0, 50.0, 75.0)


@dataclass(frozen=True)
class AttainmentBand:
    """Per percentile, its attainment surface as (cost, accuracy) corners, cheapest first;
    ``seeds``: how many seed fronts it summarises."""

    accuracy_key: str
    cost_key: str
    seeds: int
    surfaces: Mapping[float, tuple[tuple[float, float], ...]]


def _seed_front_points(
    rows: Iterable[Mapping[str, Any]], acc: str, cost: str, seeds: int
) -> tuple[list[list[float]], list[int]]:
    """(cost, -accuracy) of every row in each seed's front, and the seed (set) of each, set by
    set (``moocore.eaf`` reads each set as one contiguous run of rows)."""
    per_row = []
    for row in rows:
        values = seed_values(row, acc) or [float(row[acc])]
        per_row.append((float(row[cost]), values, statistics.fmean(values)))
    points: list[list[float]] = []
    sets: list[int] = []
    for r in range(seeds):
        for c, values, mean in per_row:
            points.append([c, -(values[r] if r < len(values) else mean)])
            sets.append(r + 1)
    return points, sets


def attainment_band(
    rows: Iterable[Mapping[str, Any]], accuracy_key: str, cost_key: str
) -> AttainmentBand | None:
    """The band of the eligible ``rows`` on (accuracy max, cost min); None when no row has two
    seeds or more."""
    objs = (Objective(accuracy_key, "max"), Objective(cost_key, "min"))
    pool = [r for r in rows if is_eligible(r, objs)]
    seeds = max((len(seed_values(r, accuracy_key)) for r in pool), default=0)
    if seeds < 2:
        return None
    import moocore

    points, sets = _seed_front_points(pool, accuracy_key, cost_key, seeds)
    eaf = moocore.eaf(np.array(points), np.array(sets), percentiles=list(PERCENTILES))
    surfaces = {
        p: tuple(sorted((float(c), -float(a)) for c, a, q in eaf if q == p)) for p in PERCENTILES
    }
    return AttainmentBand(accuracy_key, cost_key, seeds, surfaces)
