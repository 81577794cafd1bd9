"""Which <family>: a family's named dimensions against its front, and what to pick per cost.

For each family whose space names dimensions (``spaces.DIMENSIONS``, e.g. the Perceiver's
N, iterations, projection dim and patch size) and that has front-eligible trials:

* per dimension, per value: the trials behind it (trained trials and anytime points counted
  apart), the value's own front (its staircase: the best accuracy reachable at cost <= x)
  and its best accuracy at the family's matched cost levels (:func:`matched_levels`: the
  costs of the family front's points, and the family's dearest point); per level, whether
  one value leads (:class:`LevelVerdict`): only when every value there is measured (at least
  ``MEASURED_CONFIGS`` configurations of at least ``MEASURED_SEEDS`` seeds) and the leader's
  interval is clear of every other's; else "not measured" or "not separated";
* per cost axis: the recommendation table, one row per point of the family's front: the
  family's best configuration within that cost, and the best other family's ("baseline")
  accuracy within the same cost, and the gap.

Plain frozen dataclasses; every number from :mod:`search.pareto`, every front from the fronts
:mod:`.data` computed once (the per-value fronts are fronts of subsets, by
:func:`search.pareto.pareto_front`). The figures and the HTML only draw them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search import pareto
from search.pareto import as_float
from search.pareto.membership import seed_values
from search.vocabulary import ANYTIME_ITERATIONS, ANYTIME_OF

from .inputs import family_sort, hp_value

__all__ = [
    "MAX_LEVELS",
    "AnytimeOrigin",
    "Dimension",
    "DimensionValue",
    "FamilyDimensions",
    "LevelVerdict",
    "Recommendation",
    "RecommendationTable",
    "WhichFamily",
    "matched_levels",
    "named_dimensions",
    "which_families",
]

Row = Mapping[str, Any]
#: The most matched cost levels a dimension table compares values at.
MAX_LEVELS = 6
#: A dimension value is measured with at least this many configurations, each of at least this
#: many seeds (replicates or confirmations); below, it reads "not measured".
MEASURED_CONFIGS, MEASURED_SEEDS = 3, 2


@dataclass(frozen=True)
class AnytimeOrigin:
    """Where an anytime point comes from: trial ``parent`` run for ``iterations`` of its
    ``of`` iterations (``None`` when the parent trial is not in the results)."""

    parent: str
    iterations: int
    of: int | None


@dataclass(frozen=True)
class DimensionValue:
    """One value of a dimension: its points, their front, its best accuracy per level."""

    value: Any
    #: The value's front-eligible rows (trained trials and anytime points), in input order.
    rows: tuple[Row, ...]
    n_trials: int
    n_anytime: int
    #: The front of ``rows`` (accuracy, cost): the staircase of this value alone.
    front: pareto.Front
    #: Best accuracy with cost <= each of the family's levels (``None``: nothing that cheap),
    #: and the trial that reaches it.
    best: tuple[float | None, ...]
    best_ids: tuple[str | None, ...]
    #: Training runs of this value measured with at least ``MEASURED_SEEDS`` seeds (an anytime
    #: point counts as its run's configuration at k iterations, once per run).
    n_seeded: int = 0
    #: The 95 % interval of each level's best (:func:`search.pareto.row_interval`).
    best_intervals: tuple[tuple[float, float] | None, ...] = ()

    @property
    def trial_ids(self) -> tuple[str, ...]:
        return tuple(str(r.get("trial_id")) for r in self.rows)

    @property
    def measured(self) -> bool:
        """Enough seeded configurations to compare this value with another."""
        return self.n_seeded >= MEASURED_CONFIGS

    def best_row(self, level: int) -> Row | None:
        """The row behind :attr:`best` at matched level index ``level``."""
        tid = self.best_ids[level]
        return next((r for r in self.rows if str(r.get("trial_id")) == tid), None)


@dataclass(frozen=True)
class LevelVerdict:
    """What a dimension says at one matched cost level: ``separated`` (``leader`` is the value
    whose interval is clear of every other value's), ``not separated``, ``not measured`` (a
    value there has too few seeded configurations), or ``alone`` (one value reaches it)."""

    kind: str
    leader: Any = None


@dataclass(frozen=True)
class Dimension:
    """A named dimension of a family and its values (ascending; a missing value last), and
    the verdict at each matched level."""

    name: str
    values: tuple[DimensionValue, ...]
    verdicts: tuple[LevelVerdict, ...] = ()


@dataclass(frozen=True)
class FamilyDimensions:
    """A family's named dimensions on one cost axis (the experiment's cost)."""

    family: str
    accuracy_key: str
    cost_key: str
    cost_title: str
    #: The family's front-eligible rows on ``cost_key`` and its front.
    points: tuple[Row, ...]
    front: pareto.Front
    #: The cost of the family's most expensive point (the staircases are drawn up to it).
    dearest: float
    #: The matched cost levels the values are compared at (:func:`matched_levels`).
    levels: tuple[float, ...]
    dimensions: tuple[Dimension, ...]
    #: Named dimensions that no point records (left out of ``dimensions``).
    unrecorded: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    """One cost level: the family's best config within it and the best baseline's."""

    level: float
    row: Row
    accuracy: float
    test_accuracy: float | None
    #: The best other family within the same cost (``None``: no baseline is that cheap).
    baseline_family: str | None
    baseline_row: Row | None
    baseline_accuracy: float | None
    baseline_test_accuracy: float | None
    #: Whether the two accuracies' intervals are disjoint (None: no baseline or no interval).
    separated: bool | None = None

    @property
    def trial_id(self) -> str:
        return str(self.row.get("trial_id"))

    @property
    def gap(self) -> float | None:
        """Accuracy minus the baseline's (a fraction; ``None`` without a baseline)."""
        if self.baseline_accuracy is None:
            return None
        return self.accuracy - self.baseline_accuracy


@dataclass(frozen=True)
class RecommendationTable:
    """Per point of the family's front on one cost axis, the best config within its cost."""

    family: str
    accuracy_key: str
    cost_key: str
    title: str
    baselines: tuple[str, ...]
    rows: tuple[Recommendation, ...]


@dataclass(frozen=True)
class WhichFamily:
    """The "Which <family>" section: the recommendation tables (one per cost axis, the
    experiment's cost first), the named dimensions, the family's anytime points."""

    family: str
    #: The family's named dimensions (``spaces.DIMENSIONS``).
    names: tuple[str, ...]
    recommendations: tuple[RecommendationTable, ...]
    dimensions: FamilyDimensions | None
    #: trial id -> origin, for each of the family's anytime points.
    anytime: dict[str, AnytimeOrigin]


# ---------------------------------------------------------------------------------------------
# Computing them


def named_dimensions() -> dict[str, tuple[str, ...]]:
    """``spaces.DIMENSIONS`` (imported here: ``spaces`` imports torch)."""
    from spaces import DIMENSIONS

    return dict(DIMENSIONS)


def matched_levels(front: pareto.Front, cost_key: str, dearest: float) -> tuple[float, ...]:
    """The costs of the family front's points (distinct, ascending; thinned evenly along the
    front to at most ``MAX_LEVELS - 1``, the cheapest and the dearest kept), then ``dearest``
    (the family's most expensive point) when it costs more: there every value shows its best.
    """
    costs = sorted(set(front.column(cost_key)))
    keep = MAX_LEVELS - 1
    if len(costs) > keep:
        step = (len(costs) - 1) / (keep - 1)
        costs = [costs[round(i * step)] for i in range(keep)]
    if not costs or dearest > costs[-1]:
        costs.append(dearest)
    return tuple(costs)


def _is_anytime(row: Row) -> bool:
    return bool(row.get(ANYTIME_OF))


def _anytime_origins(rows: Sequence[Row], family: str) -> dict[str, AnytimeOrigin]:
    """Each anytime point of ``family`` in ``rows``: its parent and k of T iterations."""
    by_id = {str(r.get("trial_id")): r for r in rows}
    out: dict[str, AnytimeOrigin] = {}
    for r in rows:
        if str(r.get("family")) != family or not _is_anytime(r):
            continue
        parent = str(r.get(ANYTIME_OF))
        total = as_float(hp_value(by_id[parent], "num_iterations")) if parent in by_id else None
        k = as_float(r.get(ANYTIME_ITERATIONS))
        out[str(r.get("trial_id"))] = AnytimeOrigin(
            parent,
            int(k) if math.isfinite(k) else 0,
            int(total) if total is not None and math.isfinite(total) else None,
        )
    return out


def _value_key(value: Any) -> tuple[int, float, str]:
    """Numbers ascending, then other values by text, a missing value last."""
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, json.dumps(value, sort_keys=True, default=str))


def _dimension_value(
    value: Any, rows: Sequence[Row], objs: tuple[pareto.Objective, ...], levels: Sequence[float]
) -> DimensionValue:
    """One value's counts, front and best accuracy at each level."""
    acc, cost = objs[0].name, objs[1].name
    front = pareto.pareto_front(rows, objs)
    hits = [pareto.accuracy_at_cost(front, c, accuracy_key=acc, cost_key=cost) for c in levels]
    n_anytime = sum(_is_anytime(r) for r in rows)
    return DimensionValue(
        value,
        tuple(rows),
        len(rows) - n_anytime,
        n_anytime,
        front,
        tuple(h[0] if h else None for h in hits),
        tuple(h[1] if h else None for h in hits),
        len(_seeded_runs(rows, acc)),
        tuple(_interval_of(rows, h[1] if h else None, acc) for h in hits),
    )


def _seeded_runs(rows: Sequence[Row], acc: str) -> set[str]:
    """The training runs behind ``rows`` that measured ``acc`` with at least
    ``MEASURED_SEEDS`` seeds: an anytime point is its own configuration (the model read at k
    iterations, with each seed's accuracy), but counts once with its run, so one run's
    points never count as several configurations of the same value."""
    return {
        str(r.get(ANYTIME_OF) or r.get("trial_id"))
        for r in rows
        if len(seed_values(r, acc)) >= MEASURED_SEEDS
    }


def _interval_of(rows: Sequence[Row], trial_id: str | None, acc: str) -> tuple[float, float] | None:
    row = next((r for r in rows if str(r.get("trial_id")) == trial_id), None)
    return None if row is None else pareto.row_interval(row, acc)


def _verdict(values: Sequence[DimensionValue], level: int, acc: str) -> LevelVerdict:
    """Which value leads at matched level ``level``, if any can be said to."""
    reached = [v for v in values if v.best[level] is not None]
    if len(reached) < 2:
        return LevelVerdict("alone")
    if not all(v.measured for v in reached):
        return LevelVerdict("not measured")
    leader = max(reached, key=lambda v: v.best[level] or 0.0)
    lead_row = leader.best_row(level) or {}
    clear = all(
        pareto.separated(lead_row, v.best_row(level) or {}, acc) is True
        for v in reached
        if v is not leader
    )
    return LevelVerdict("separated", leader.value) if clear else LevelVerdict("not separated")


def _dimension(
    name: str, rows: Sequence[Row], objs: tuple[pareto.Objective, ...], levels: Sequence[float]
) -> Dimension | None:
    """Dimension ``name`` over ``rows`` (``None`` when no row records it)."""
    groups: dict[str, tuple[Any, list[Row]]] = {}
    for r in rows:
        v = hp_value(r, name)
        groups.setdefault(json.dumps(v, sort_keys=True, default=str), (v, []))[1].append(r)
    if all(v is None for v, _ in groups.values()):
        return None
    ordered = sorted(groups.values(), key=lambda g: _value_key(g[0]))
    values = tuple(_dimension_value(v, rs, objs, levels) for v, rs in ordered)
    verdicts = tuple(_verdict(values, j, objs[0].name) for j in range(len(levels)))
    return Dimension(name, values, verdicts)


def _family_dimensions(
    family: str, names: Sequence[str], fronts: pareto.Fronts, cost_title: str
) -> FamilyDimensions:
    """``family``'s named dimensions over its eligible rows of ``fronts`` (accuracy, cost)."""
    objs = fronts.objectives
    cost = objs[1].name
    rows = [r for r in fronts.eligible if str(r.get("family")) == family]
    front = fronts.by_family[family]
    dearest = max(as_float(r.get(cost)) for r in rows)
    levels = matched_levels(front, cost, dearest)
    dims = {n: _dimension(n, rows, objs, levels) for n in names}
    return FamilyDimensions(
        family,
        objs[0].name,
        cost,
        cost_title,
        tuple(rows),
        front,
        dearest,
        levels,
        tuple(d for d in dims.values() if d is not None),
        tuple(n for n, d in dims.items() if d is None),
    )


def _test_accuracy(row: Row | None) -> float | None:
    v = as_float(None if row is None else row.get("test_accuracy"))
    return v if math.isfinite(v) else None


def _best_baseline(
    fronts: pareto.Fronts, family: str, level: float
) -> tuple[str, Row, float] | None:
    """The other family with the best accuracy at cost <= ``level`` (ties: report order)."""
    acc, cost = fronts.objectives[0].name, fronts.objectives[1].name
    best: tuple[str, Row, float] | None = None
    for other in family_sort(fronts.by_family):
        if other == family:
            continue
        front = fronts.by_family[other]
        hit = pareto.accuracy_at_cost(front, level, accuracy_key=acc, cost_key=cost)
        if hit is not None and (best is None or hit[0] > best[2]):
            row = next(p.row for p in front.points if p.trial_id == hit[1])
            best = (other, row, hit[0])
    return best


def _recommendations(
    family: str, fronts: pareto.Fronts, cost_title: str
) -> RecommendationTable | None:
    """The recommendation table on ``fronts``' cost axis (``None``: the family has no front)."""
    acc, cost = fronts.objectives[0].name, fronts.objectives[1].name
    front = fronts.by_family.get(family)
    if front is None or not front.points:
        return None
    rows = []
    for level in sorted(set(front.column(cost))):
        hit = pareto.accuracy_at_cost(front, level, accuracy_key=acc, cost_key=cost)
        assert hit is not None  # ``level`` is the cost of a front point
        row = next(p.row for p in front.points if p.trial_id == hit[1])
        base = _best_baseline(fronts, family, level)
        rows.append(
            Recommendation(
                level,
                row,
                hit[0],
                _test_accuracy(row),
                base[0] if base else None,
                base[1] if base else None,
                base[2] if base else None,
                _test_accuracy(base[1] if base else None),
                pareto.separated(row, base[1], acc) if base else None,
            )
        )
    baselines = tuple(f for f in family_sort(fronts.by_family) if f != family)
    return RecommendationTable(family, acc, cost, cost_title, baselines, tuple(rows))


def which_families(
    rows: Sequence[Row],
    views: Sequence[tuple[pareto.Fronts, str]],
    dimensions: Mapping[str, Sequence[str]],
) -> dict[str, WhichFamily]:
    """The "Which <family>" data of every family with named ``dimensions`` and a front.

    ``views`` are the (accuracy, cost) fronts per cost axis with each axis's title, the first
    one the experiment's cost (the dimensions are read on it); ``rows`` are all the results'
    rows (an anytime point's parent is looked up there).
    """
    out: dict[str, WhichFamily] = {}
    for family in family_sort({f for fr, _ in views for f in fr.by_family}):
        names = tuple(dimensions.get(family, ()))
        if not names:
            continue
        tables = [_recommendations(family, fr, title) for fr, title in views]
        fr, title = views[0]
        dims = _family_dimensions(family, names, fr, title) if family in fr.by_family else None
        out[family] = WhichFamily(
            family,
            names,
            tuple(t for t in tables if t is not None),
            dims,
            _anytime_origins(rows, family),
        )
    return out
