"""Non-dominated sets: the one dominance rule (:func:`nondominated_ranks`, also MO-ASHA's), the
front mask, and the overall and per-family fronts of a results table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from search.pareto.objectives import (
    Objective,
    as_objectives,
    is_eligible,
    objective_index,
    objective_values,
)
from search.vocabulary import minimizing_sign

__all__ = [
    "Front",
    "FrontPoint",
    "Fronts",
    "direction_signs",
    "fronts",
    "minimised_front_mask",
    "minimised_points",
    "non_dominated_mask",
    "nondominated_ranks",
    "pareto_front",
    "worst_where_nan",
]


@dataclass(frozen=True)
class FrontPoint:
    """One non-dominated trial: its id, family, objective values and the full row."""

    trial_id: str
    family: str
    values: tuple[float, ...]
    row: Mapping[str, Any] = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Front:
    """The non-dominated trials of one family (``family``) or of all of them (``None``).

    ``points`` are sorted by the first ``"min"`` objective ascending (cost), then by the other
    objectives from best to worst, then by trial id; for (accuracy max, cost min) this is the
    order of a step line from cheap to accurate.
    """

    objectives: tuple[Objective, ...]
    family: str | None
    points: tuple[FrontPoint, ...]

    @property
    def trial_ids(self) -> tuple[str, ...]:
        return tuple(p.trial_id for p in self.points)

    @property
    def values(self) -> tuple[tuple[float, ...], ...]:
        return tuple(p.values for p in self.points)

    def column(self, name: str) -> tuple[float, ...]:
        """The values of objective ``name`` along the front."""
        i = objective_index(self.objectives, name)
        return tuple(p.values[i] for p in self.points)

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Fronts:
    """The overall front, one front per family, and the eligible rows they came from."""

    objectives: tuple[Objective, ...]
    overall: Front
    by_family: dict[str, Front]
    eligible: tuple[Mapping[str, Any], ...] = field(repr=False)


def direction_signs(directions: Sequence[str], k: int) -> NDArray[np.float64]:
    """Per column, the factor that makes it an objective to minimise (``k`` columns)."""
    if len(directions) != k:
        raise ValueError(f"{k} objectives but {len(directions)} directions")
    bad = [d for d in directions if d not in ("max", "min")]
    if bad:
        raise ValueError(f"directions must be 'max' or 'min', got {bad}")
    return np.array([minimizing_sign(d) for d in directions])


def minimised_points(points: ArrayLike, directions: Sequence[str]) -> NDArray[np.float64]:
    """``points`` as an ``[n, k]`` float array turned into "minimise everything"."""
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, len(directions))
    if arr.ndim != 2:
        raise ValueError(f"points must be 2-D [n, k], got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError("points need at least one objective")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points must be finite (filter NaN/inf rows first)")
    return arr * direction_signs(directions, arr.shape[1])


def worst_where_nan(points: ArrayLike) -> NDArray[np.float64]:
    """A float copy of ``points`` [n, m] with NaN replaced by ``+inf`` (the worst value)."""
    arr = np.array(points, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"points: expected a 2-D array [n, m], got shape {arr.shape}")
    arr[np.isnan(arr)] = np.inf
    return arr


def nondominated_ranks(points: ArrayLike) -> NDArray[np.int64]:
    """The one dominance rule, for the fronts and the scheduler's rungs: ``points`` [n, m], every
    column to be MINIMISED, NaN counting as worst. Returns the front index of each row (0 = the
    non-dominated set).

    Row ``a`` dominates ``b`` when it is no worse in every column and better in one; identical
    rows do not dominate each other and so share a front.
    """
    pts = worst_where_nan(points)
    n = pts.shape[0]
    ranks = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ranks
    no_worse = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    better = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    dominates = no_worse & better  # [i, j]: row i dominates row j
    left = np.ones(n, dtype=bool)
    front = 0
    while left.any():
        dominated = dominates[left][:, left].any(axis=0)
        members = np.flatnonzero(left)[~dominated]
        ranks[members] = front
        left[members] = False
        front += 1
    return ranks


def minimised_front_mask(arr: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Non-dominated mask of ``arr`` (all objectives minimised)."""
    return nondominated_ranks(arr) == 0


def non_dominated_mask(points: ArrayLike, directions: Sequence[str]) -> NDArray[np.bool_]:
    """Boolean mask of the points no other point dominates.

    ``points`` is ``[n, k]`` (k >= 1), ``directions`` gives ``"max"``/``"min"`` per column.
    """
    return minimised_front_mask(minimised_points(points, directions))


def _sort_key(
    objectives: Sequence[Objective],
) -> Any:
    """Sort key for front points: first min objective ascending, then the rest best first."""
    first_min = next((i for i, o in enumerate(objectives) if o.direction == "min"), 0)
    order = [first_min] + [i for i in range(len(objectives)) if i != first_min]
    signs = [minimizing_sign(objectives[i].direction) for i in order]

    def key(p: FrontPoint) -> tuple[Any, ...]:
        return (*(s * p.values[i] for s, i in zip(signs, order)), p.trial_id)

    return key


def pareto_front(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
    *,
    family: str | None = None,
) -> Front:
    """The front of the eligible ``rows`` (of one ``family`` when given)."""
    objs = as_objectives(objectives)
    pool = [
        r
        for r in rows
        if is_eligible(r, objs) and (family is None or str(r.get("family")) == family)
    ]
    return _front_of(pool, objs, family)


def _front_of(
    pool: Sequence[Mapping[str, Any]], objs: tuple[Objective, ...], family: str | None
) -> Front:
    if not pool:
        return Front(objs, family, ())
    vals = np.array([objective_values(r, objs) for r in pool], dtype=float)
    mask = non_dominated_mask(vals, [o.direction for o in objs])
    members = [
        FrontPoint(str(r.get("trial_id")), str(r.get("family")), objective_values(r, objs), r)
        for r, keep in zip(pool, mask)
        if keep
    ]
    members.sort(key=_sort_key(objs))
    return Front(objs, family, tuple(members))


def fronts(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
) -> Fronts:
    """The overall front and one front per family (families sorted by name)."""
    objs = as_objectives(objectives)
    pool = [r for r in rows if is_eligible(r, objs)]
    families = sorted({str(r.get("family")) for r in pool})
    by_family = {
        f: _front_of([r for r in pool if str(r.get("family")) == f], objs, f) for f in families
    }
    return Fronts(objs, _front_of(pool, objs, None), by_family, tuple(pool))
