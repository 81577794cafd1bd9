"""Hypervolume (Zitzler & Thiele 1998), exact: a sweep in 2-D, slices along the last objective
above that; the default reference point, and hypervolume after each finished trial."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from search.pareto.fronts import (
    Front,
    direction_signs,
    minimised_front_mask,
    minimised_points,
    non_dominated_mask,
)
from search.pareto.objectives import (
    Objective,
    as_float,
    as_objectives,
    is_eligible,
    objective_values,
)

__all__ = [
    "HypervolumeHistory",
    "Reference",
    "default_reference",
    "front_hypervolume",
    "hypervolume",
    "hypervolume_history",
]


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
    arr = arr[minimised_front_mask(arr)]
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
    signs = direction_signs(directions, k)
    minimised_points(raw, directions)  # validates shape and finiteness
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
    pool = [objective_values(r, objs) for r in rows if is_eligible(r, objs)]
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
            new = objective_values(row, objs)
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
