"""Accuracy at a matched cost: each family's best front accuracy under a grid of cost budgets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search.pareto.fronts import Front
from search.pareto.objectives import objective_index

__all__ = [
    "MatchedAccuracy",
    "accuracy_at_cost",
    "cost_levels",
    "matched_accuracy",
]


@dataclass(frozen=True)
class MatchedAccuracy:
    """Best accuracy per family at each cost budget (``None``: nothing that cheap).

    ``accuracy[family][i]`` is the best ``accuracy_key`` among that family's front points with
    ``cost_key <= costs[i]``; ``trial_ids`` names the trial that achieves it.
    """

    accuracy_key: str
    cost_key: str
    costs: tuple[float, ...]
    accuracy: dict[str, tuple[float | None, ...]]
    trial_ids: dict[str, tuple[str | None, ...]]


def accuracy_at_cost(
    front: Front,
    cost: float,
    *,
    accuracy_key: str = "val_accuracy",
    cost_key: str = "flops",
) -> tuple[float, str] | None:
    """Best ``accuracy_key`` on ``front`` among points with ``cost_key <= cost``.

    A step function of ``cost``; returns ``(accuracy, trial_id)`` or ``None`` when no front
    point is that cheap. Exact for any front whose objectives include both keys (the best
    accuracy under a cost cap is always achieved by a non-dominated point).
    """
    ia = objective_index(front.objectives, accuracy_key)
    ic = objective_index(front.objectives, cost_key)
    best: tuple[float, str] | None = None
    for p in front.points:
        if p.values[ic] > cost:
            continue
        if best is None or (-p.values[ia], p.trial_id) < (-best[0], best[1]):
            best = (p.values[ia], p.trial_id)
    return best


def matched_accuracy(
    by_family: Mapping[str, Front],
    costs: Sequence[float],
    *,
    accuracy_key: str = "val_accuracy",
    cost_key: str = "flops",
) -> MatchedAccuracy:
    """:func:`accuracy_at_cost` for every family at every cost in ``costs``."""
    acc: dict[str, tuple[float | None, ...]] = {}
    ids: dict[str, tuple[str | None, ...]] = {}
    for fam in sorted(by_family):
        hits = [
            accuracy_at_cost(by_family[fam], c, accuracy_key=accuracy_key, cost_key=cost_key)
            for c in costs
        ]
        acc[fam] = tuple(h[0] if h else None for h in hits)
        ids[fam] = tuple(h[1] if h else None for h in hits)
    return MatchedAccuracy(accuracy_key, cost_key, tuple(float(c) for c in costs), acc, ids)


def cost_levels(lo: float, hi: float) -> tuple[float, ...]:
    """The 1-2-5 series (..., 1e6, 2e6, 5e6, ...) from ``lo`` to ``hi``, both included.

    ``lo`` and ``hi`` themselves are added when they fall between series values, so the
    cheapest and the most expensive front point are always compared.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
        raise ValueError(f"cost_levels needs 0 < lo <= hi, got {lo}, {hi}")
    levels = {lo, hi}
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if lo <= v <= hi:
                levels.add(v)
    return tuple(sorted(levels))
