"""Pareto fronts, hypervolume and matched-cost comparisons: pure computation on plain data.

Input rows are the trial dicts of ``trials.json`` (see ``docs/architecture.md``, "Results
directory"). Nothing here plots or touches files; ``search/report/`` draws what this returns.

Conventions:

* An objective is a column name and a direction, ``"max"`` or ``"min"``; the order given is the
  order of every value tuple returned.
* Only full-budget rows (``status`` ``COMPLETE``) whose objective values are all finite take
  part in fronts. A ``STOPPED`` trial (cut early by the scheduler) measured a partial budget at
  a high learning rate: it is shown as stopped, never as a point of a front.
* Point ``a`` dominates ``b`` when it is at least as good in every objective and strictly better
  in one. Identical points do not dominate each other, so duplicates are all on the front.

Hypervolume (Zitzler & Thiele 1998) is computed exactly, by sweeping in 2-D and by slicing
along the last objective above that (intended for 2 and 3 objectives). The default reference
point (:func:`default_reference`) is:

* a ``"max"`` objective (accuracy): ``0`` when every value is >= 0, else the worst value minus
  10 % of the range;
* a ``"min"`` objective (a cost): ``1.1 x`` the worst value seen, and the objective is measured
  in ``log10`` when all its values are > 0, because costs span decades and a linear axis would
  let the largest models own nearly all of the volume. Hypervolume units are then
  "accuracy x decades of cost".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from search.vocabulary import TrialStatus

__all__ = [
    "Direction",
    "Front",
    "FrontPoint",
    "Fronts",
    "HypervolumeHistory",
    "MatchedAccuracy",
    "Objective",
    "Reference",
    "accuracy_at_cost",
    "as_float",
    "as_objectives",
    "cost_levels",
    "default_reference",
    "eligible_rows",
    "front_hypervolume",
    "fronts",
    "hypervolume",
    "hypervolume_history",
    "is_eligible",
    "matched_accuracy",
    "non_dominated_mask",
    "nondominated_ranks",
    "pareto_front",
    "worst_where_nan",
]

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Objective:
    """A row column to optimise and its direction."""

    name: str
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ValueError(
                f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}"
            )


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
        i = _index(self.objectives, name)
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


@dataclass(frozen=True)
class Reference:
    """A hypervolume reference point, in the objectives' own units, and which are in log10."""

    objectives: tuple[Objective, ...]
    point: tuple[float, ...]
    log_scale: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not (len(self.objectives) == len(self.point) == len(self.log_scale)):
            raise ValueError("Reference: objectives, point and log_scale differ in length")

    def describe(self) -> str:
        """One line for humans, e.g. ``val_accuracy >= 0, log10(flops) <= log10(1.1e+07)``."""
        parts = []
        for obj, ref, log in zip(self.objectives, self.point, self.log_scale):
            op = ">=" if obj.direction == "max" else "<="
            parts.append(
                f"log10({obj.name}) {op} log10({ref:.4g})" if log else f"{obj.name} {op} {ref:.4g}"
            )
        return ", ".join(parts)


@dataclass(frozen=True)
class HypervolumeHistory:
    """Hypervolume after each finished trial (all statuses), ordered by ``finished_at``.

    ``compute_time_s`` is the cumulative ``train_time_s`` of every trial so far, failed ones
    included (they used the machine too). ``hypervolume[i]`` counts the eligible trials among
    the first ``i + 1`` (only ``family``'s when it is set).
    """

    reference: Reference
    family: str | None
    trial_ids: tuple[str, ...]
    finished_at: tuple[float, ...]
    compute_time_s: tuple[float, ...]
    hypervolume: tuple[float, ...]


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


# ---------------------------------------------------------------------------------------------
# Objectives and eligibility


def as_objectives(
    objectives: Mapping[str, str] | Sequence[Objective] | Sequence[tuple[str, str]],
) -> tuple[Objective, ...]:
    """Normalise ``{"val_accuracy": "max", ...}`` or a sequence of objectives to a tuple."""
    if isinstance(objectives, Mapping):
        items: Iterable[Any] = objectives.items()
    else:
        items = objectives
    out: list[Objective] = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        else:
            name, direction = item
            out.append(Objective(str(name), direction))
    if not out:
        raise ValueError("at least one objective is required")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate objectives: {names}")
    return tuple(out)


def as_float(value: Any) -> float:
    """``value`` as a float, NaN when missing or not a number."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _values(row: Mapping[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(as_float(row.get(o.name)) for o in objectives)


def is_eligible(row: Mapping[str, Any], objectives: Sequence[Objective]) -> bool:
    """True when ``row`` is a full-budget (COMPLETE) trial and every objective is finite."""
    if str(row.get("status", "")).upper() not in TrialStatus.on_front():
        return False
    return all(math.isfinite(v) for v in _values(row, objectives))


def eligible_rows(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
) -> list[Mapping[str, Any]]:
    """The rows that take part in fronts, in their input order."""
    objs = as_objectives(objectives)
    return [r for r in rows if is_eligible(r, objs)]


def _index(objectives: Sequence[Objective], name: str) -> int:
    for i, o in enumerate(objectives):
        if o.name == name:
            return i
    raise KeyError(f"{name!r} is not an objective ({[o.name for o in objectives]})")


# ---------------------------------------------------------------------------------------------
# Non-dominated sets


def _directions(directions: Sequence[str], k: int) -> NDArray[np.float64]:
    if len(directions) != k:
        raise ValueError(f"{k} objectives but {len(directions)} directions")
    bad = [d for d in directions if d not in ("max", "min")]
    if bad:
        raise ValueError(f"directions must be 'max' or 'min', got {bad}")
    return np.array([-1.0 if d == "max" else 1.0 for d in directions])


def _points(points: ArrayLike, directions: Sequence[str]) -> NDArray[np.float64]:
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
    return arr * _directions(directions, arr.shape[1])


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


def _mask_min(arr: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Non-dominated mask of ``arr`` (all objectives minimised)."""
    return nondominated_ranks(arr) == 0


def non_dominated_mask(points: ArrayLike, directions: Sequence[str]) -> NDArray[np.bool_]:
    """Boolean mask of the points no other point dominates.

    ``points`` is ``[n, k]`` (k >= 1), ``directions`` gives ``"max"``/``"min"`` per column.
    """
    return _mask_min(_points(points, directions))


def _sort_key(
    objectives: Sequence[Objective],
) -> Any:
    """Sort key for front points: first min objective ascending, then the rest best first."""
    first_min = next((i for i, o in enumerate(objectives) if o.direction == "min"), 0)
    order = [first_min] + [i for i in range(len(objectives)) if i != first_min]
    signs = [(-1.0 if objectives[i].direction == "max" else 1.0) for i in order]

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
    vals = np.array([_values(r, objs) for r in pool], dtype=float)
    mask = non_dominated_mask(vals, [o.direction for o in objs])
    members = [
        FrontPoint(str(r.get("trial_id")), str(r.get("family")), _values(r, objs), r)
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


# ---------------------------------------------------------------------------------------------
# Hypervolume


def _hv2(arr: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """2-D hypervolume of points all strictly better than ``ref`` (minimisation)."""
    order = np.lexsort((arr[:, 1], arr[:, 0]))
    x = arr[order, 0]
    y = np.minimum.accumulate(arr[order, 1])
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - y)))


def _hv(arr: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """Exact hypervolume by slicing along the last axis (minimisation, points < ref)."""
    n, k = arr.shape
    if n == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - arr[:, 0].min())
    arr = arr[_mask_min(arr)]
    if k == 2:
        return _hv2(arr, ref)
    arr = arr[np.argsort(arr[:, -1], kind="stable")]
    z = np.append(arr[:, -1], ref[-1])
    total = 0.0
    for i in range(arr.shape[0]):
        depth = z[i + 1] - z[i]
        if depth > 0:
            total += depth * _hv(arr[: i + 1, :-1], ref[:-1])
    return total


def _log_transform(
    arr: NDArray[np.float64], ref: NDArray[np.float64], log_scale: Sequence[bool]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    arr = arr.copy()
    ref = ref.copy()
    for j, log in enumerate(log_scale):
        if log:
            if np.any(arr[:, j] <= 0) or ref[j] <= 0:
                raise ValueError(f"objective {j} is on a log scale but has values <= 0")
            arr[:, j] = np.log10(arr[:, j])
            ref[j] = math.log10(ref[j])
    return arr, ref


def hypervolume(
    points: ArrayLike,
    reference: Sequence[float],
    directions: Sequence[str],
    *,
    log_scale: Sequence[bool] | None = None,
) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    ``points`` is ``[n, k]`` in the objectives' units; ``log_scale[j]`` measures objective
    ``j`` in log10 (points and reference must then be > 0). Points not strictly better than
    the reference in every objective add nothing. Exact for any k; meant for k = 2 or 3.
    """
    k = len(directions)
    raw = np.asarray(points, dtype=float)
    if raw.size == 0:
        raw = raw.reshape(0, k)
    ref_raw = np.asarray(reference, dtype=float)
    if ref_raw.shape != (k,) or not np.all(np.isfinite(ref_raw)):
        raise ValueError(f"reference must be {k} finite numbers, got {list(reference)}")
    logs = tuple(log_scale) if log_scale is not None else (False,) * k
    if len(logs) != k:
        raise ValueError(f"log_scale has {len(logs)} entries for {k} objectives")
    signs = _directions(directions, k)
    _points(raw, directions)  # validates shape and finiteness
    raw, ref_raw = _log_transform(raw, ref_raw, logs)
    arr = raw * signs
    ref = ref_raw * signs
    arr = arr[np.all(arr < ref, axis=1)]
    return _hv(arr, ref)


def default_reference(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
) -> Reference:
    """The documented default reference point, from the eligible rows (see module docstring).

    With no eligible rows: 0 for "max" objectives and 1 for "min" ones (all linear).
    """
    objs = as_objectives(objectives)
    pool = [_values(r, objs) for r in rows if is_eligible(r, objs)]
    vals = np.array(pool, dtype=float).reshape(len(pool), len(objs))
    point: list[float] = []
    logs: list[bool] = []
    for j, obj in enumerate(objs):
        col = vals[:, j]
        if col.size == 0:
            point.append(0.0 if obj.direction == "max" else 1.0)
            logs.append(False)
            continue
        lo, hi = float(col.min()), float(col.max())
        spread = (hi - lo) or 1.0
        if obj.direction == "max":
            point.append(0.0 if lo >= 0 else lo - 0.1 * spread)
            logs.append(False)
        elif lo > 0:
            point.append(1.1 * hi)
            logs.append(True)
        else:
            point.append(hi + 0.1 * spread)
            logs.append(False)
    return Reference(objs, tuple(point), tuple(logs))


def _check_reference(reference: Reference, objs: tuple[Objective, ...]) -> None:
    if reference.objectives != objs:
        raise ValueError(
            f"reference is for {[o.name for o in reference.objectives]}, "
            f"not {[o.name for o in objs]}"
        )


def front_hypervolume(front: Front, reference: Reference | None = None) -> float:
    """Hypervolume of a front (default reference: from the front's own points)."""
    if reference is None:
        reference = default_reference([p.row for p in front.points], front.objectives)
    _check_reference(reference, front.objectives)
    return hypervolume(
        [p.values for p in front.points],
        reference.point,
        [o.direction for o in front.objectives],
        log_scale=reference.log_scale,
    )


def _finish_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    t = as_float(row.get("finished_at"))
    num = as_float(row.get("number"))
    return (
        not math.isfinite(t),
        t if math.isfinite(t) else 0.0,
        num if math.isfinite(num) else math.inf,
        str(row.get("trial_id")),
    )


def hypervolume_history(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
    reference: Reference | None = None,
    *,
    family: str | None = None,
) -> HypervolumeHistory:
    """Hypervolume after each finished trial, and the compute time spent until then.

    Rows are ordered by ``finished_at`` (rows without one go last, by ``number``). The default
    reference is :func:`default_reference` over all rows, so the curve and the final value use
    one fixed reference.
    """
    objs = as_objectives(objectives)
    ordered = sorted(rows, key=_finish_key)
    if reference is None:
        reference = default_reference(ordered, objs)
    _check_reference(reference, objs)
    directions = [o.direction for o in objs]
    current: list[tuple[float, ...]] = []
    hv = 0.0
    ids: list[str] = []
    finished: list[float] = []
    compute: list[float] = []
    hvs: list[float] = []
    spent = 0.0
    for row in ordered:
        t = as_float(row.get("train_time_s"))
        spent += t if math.isfinite(t) else 0.0
        if is_eligible(row, objs) and (family is None or str(row.get("family")) == family):
            new = _values(row, objs)
            candidate = [*current, new]
            mask = non_dominated_mask(candidate, directions)
            if mask[-1]:  # only a point on the front can change the hypervolume
                current = [p for p, keep in zip(candidate, mask) if keep]
                hv = hypervolume(
                    current, reference.point, directions, log_scale=reference.log_scale
                )
        ids.append(str(row.get("trial_id")))
        finished.append(as_float(row.get("finished_at")))
        compute.append(spent)
        hvs.append(hv)
    return HypervolumeHistory(
        reference, family, tuple(ids), tuple(finished), tuple(compute), tuple(hvs)
    )


# ---------------------------------------------------------------------------------------------
# Accuracy at a matched cost


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
    ia = _index(front.objectives, accuracy_key)
    ic = _index(front.objectives, cost_key)
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
