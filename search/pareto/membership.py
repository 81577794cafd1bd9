"""How likely each trained configuration is to be on the front, given how noisy its accuracy is.

An accuracy is one draw: another seed (initialisation, batch order, dropout) would have
trained a different model, and the evaluation set is a sample of the images the model will
see. Costs (FLOPs, parameters) are exact. So each eligible row's accuracy is resampled from a
normal model, its centre the mean of its seeds when it has several (replicates and
confirmations), else its recorded value, its variance the sum of

* the evaluation set's binomial variance, ``p (1 - p) / n`` (``<split>_images`` in the row),
* the seed variance of the row's family, pooled over every row of that family that was trained
  with two seeds or more (``<column>_seeds``: replicates and confirmations),

divided by the row's own number of seeds. A family without seed data has only the binomial
term, which is far too narrow (on digits one seed moves accuracy 1.5-2.5 points against a
binomial SE near 1): :attr:`Membership.seed_sd` is None for it, and the CLI and the report say
so beside its probabilities. A row's probability is the share of draws in which no other row
dominates it (the one dominance rule, :func:`search.pareto.nondominated_ranks`'s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from search.pareto.fronts import direction_signs
from search.pareto.objectives import Objective, as_objectives, is_eligible, objective_values

__all__ = [
    "FAMILY_SD_SUFFIX",
    "SEEDS_SUFFIX",
    "Membership",
    "centre",
    "front_membership",
    "is_noisy",
    "pooled_seed_sd",
    "row_sd",
    "seed_values",
]

#: ``<column>_seeds``: a row's per-seed values of an accuracy column (two or more seeds).
SEEDS_SUFFIX = "_seeds"
#: ``<column>_family_seed_sd``: the seed sd pooled over the row's family, as the tables record
#: it (search.results.add_membership); the intervals of the report read it from the row.
FAMILY_SD_SUFFIX = "_family_seed_sd"

#: Draws of every noisy objective per row (the Monte Carlo SE of a probability is <= 0.008).
DRAWS = 4000


@dataclass(frozen=True)
class Membership:
    """Per trial id, the probability that it is non-dominated: among every eligible row
    (``overall``) and within its family (``within_family``)."""

    overall: Mapping[str, float]
    within_family: Mapping[str, float]
    #: Per family, the pooled seed standard deviation of the first noisy objective; None when
    #: the family has no row trained with two seeds or more (its probabilities are too sure).
    seed_sd: Mapping[str, float | None]
    draws: int

    def uncertain(self, low: float = 0.1, high: float = 0.9) -> list[str]:
        """The trial ids whose overall probability is strictly between ``low`` and ``high``,
        most uncertain (nearest 0.5) first."""
        ids = [t for t, p in self.overall.items() if low < p < high]
        return sorted(ids, key=lambda t: (abs(self.overall[t] - 0.5), t))


def is_noisy(objective: Objective) -> bool:
    """An accuracy measured on an evaluation set (``val_accuracy``, ``test_accuracy``)."""
    return objective.name.endswith("_accuracy")


def seed_values(row: Mapping[str, Any], column: str) -> list[float]:
    """``row``'s per-seed values of ``column`` (``<column>_seeds``), finite ones only."""
    values = row.get(column + SEEDS_SUFFIX)
    if not isinstance(values, Sequence) or isinstance(values, str):
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def pooled_seed_sd(rows: Iterable[Mapping[str, Any]], column: str) -> dict[str, float]:
    """Per family, the pooled within-configuration standard deviation of ``column`` over its
    rows with two seeds or more: ``sqrt(sum((k - 1) s^2) / sum(k - 1))``. Families without
    such a row are absent."""
    sums: dict[str, list[float]] = {}
    for row in rows:
        seeds = seed_values(row, column)
        if len(seeds) < 2:
            continue
        acc = sums.setdefault(str(row.get("family")), [0.0, 0.0])
        acc[0] += float(np.var(seeds, ddof=1)) * (len(seeds) - 1)
        acc[1] += len(seeds) - 1
    return {f: math.sqrt(ss / dof) for f, (ss, dof) in sums.items()}


def _binomial_variance(row: Mapping[str, Any], column: str) -> float:
    """``p (1 - p) / n`` of the evaluation set behind ``column`` (0 when its size is unknown)."""
    n = row.get(f"{column.split('_', 1)[0]}_images")
    if not isinstance(n, (int, float)) or n <= 0:
        return 0.0
    p = min(max(float(row[column]), 0.5 / n), 1 - 0.5 / n)
    return p * (1 - p) / float(n)


def centre(row: Mapping[str, Any], column: str) -> float:
    """The mean of ``row``'s seeds (its replicates and confirmations), else its value."""
    seeds = seed_values(row, column)
    return float(np.mean(seeds)) if len(seeds) >= 2 else float(row[column])


def row_sd(row: Mapping[str, Any], column: str, family_sd: float | None) -> float:
    """The standard deviation of ``row``'s ``column`` as an estimate of what the configuration
    reaches: (family seed variance + binomial variance) / number of seeds, square-rooted."""
    k = max(len(seed_values(row, column)), 1)
    return math.sqrt(((family_sd or 0.0) ** 2 + _binomial_variance(row, column)) / k)


def _probabilities(
    mean: NDArray[np.float64],
    sd: NDArray[np.float64],
    signs: NDArray[np.float64],
    draws: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """P(non-dominated) of each of the n rows: ``mean``/``sd`` [n, m], every column minimised
    after ``signs``. Columns with no spread (costs) are compared once; only the noisy ones are
    drawn, and row i is compared only with the rows no worse than it in every exact column."""
    n, _ = mean.shape
    noisy = np.flatnonzero(np.any(sd > 0, axis=0))
    exact = np.setdiff1d(np.arange(mean.shape[1]), noisy)
    fixed = mean[:, exact] * signs[exact]
    no_worse = np.all(fixed[:, None, :] <= fixed[None, :, :], axis=2)  # [j, i]
    better = np.any(fixed[:, None, :] < fixed[None, :, :], axis=2)
    np.fill_diagonal(no_worse, False)  # a row never dominates itself
    sample = mean[:, noisy] + sd[:, noisy] * rng.standard_normal((draws, n, len(noisy)))
    sample *= signs[noisy]  # [d, n, k]
    kept = np.empty(n)
    for i in range(n):
        rivals = np.flatnonzero(no_worse[:, i])
        if rivals.size == 0:
            kept[i] = 1.0
            continue
        theirs, mine = sample[:, rivals, :], sample[:, i, None, :]
        beats = np.all(theirs <= mine, axis=2) & (better[rivals, i] | np.any(theirs < mine, axis=2))
        kept[i] = 1.0 - float(np.mean(np.any(beats, axis=1)))
    return kept


def front_membership(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
    *,
    draws: int = DRAWS,
    seed: int = 0,
) -> Membership:
    """The probability that each eligible row is non-dominated, overall and within its family,
    under the normal model of the module docstring (``seed``: the draws' generator)."""
    objs = as_objectives(objectives)
    pool = [r for r in rows if is_eligible(r, objs)]
    noisy = [i for i, o in enumerate(objs) if is_noisy(o)]
    families = sorted({str(r.get("family")) for r in pool})
    pooled = {i: pooled_seed_sd(pool, objs[i].name) for i in noisy}
    mean = np.array([objective_values(r, objs) for r in pool], dtype=float).reshape(-1, len(objs))
    sd = np.zeros_like(mean)
    for i in noisy:
        sd[:, i] = [row_sd(r, objs[i].name, pooled[i].get(str(r.get("family")))) for r in pool]
        mean[:, i] = [centre(r, objs[i].name) for r in pool]
    signs = direction_signs([o.direction for o in objs], len(objs))
    rng = np.random.default_rng(seed)
    ids = [str(r.get("trial_id")) for r in pool]
    overall = _probabilities(mean, sd, signs, draws, rng)
    within: dict[str, float] = {}
    for family in families:
        idx = [j for j, r in enumerate(pool) if str(r.get("family")) == family]
        probs = _probabilities(mean[idx], sd[idx], signs, draws, rng)
        within.update({ids[j]: float(p) for j, p in zip(idx, probs)})
    first = pooled[noisy[0]] if noisy else {}
    return Membership(
        overall={t: float(p) for t, p in zip(ids, overall)},
        within_family=within,
        seed_sd={f: first.get(f) for f in families},
        draws=draws,
    )
