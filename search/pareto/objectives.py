"""Objectives (a column and a direction) and which rows take part in fronts: full-budget rows
(``COMPLETE``) whose objective values are all finite."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from search.vocabulary import TrialStatus

__all__ = [
    "Direction",
    "Objective",
    "as_float",
    "as_objectives",
    "eligible_rows",
    "is_eligible",
    "objective_index",
    "objective_values",
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


def objective_values(row: Mapping[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(as_float(row.get(o.name)) for o in objectives)


def is_eligible(row: Mapping[str, Any], objectives: Sequence[Objective]) -> bool:
    """True when ``row`` is a full-budget (COMPLETE) trial and every objective is finite."""
    if str(row.get("status", "")).upper() not in TrialStatus.on_front():
        return False
    return all(math.isfinite(v) for v in objective_values(row, objectives))


def eligible_rows(
    rows: Iterable[Mapping[str, Any]],
    objectives: Mapping[str, str] | Sequence[Objective],
) -> list[Mapping[str, Any]]:
    """The rows that take part in fronts, in their input order."""
    objs = as_objectives(objectives)
    return [r for r in rows if is_eligible(r, objs)]


def objective_index(objectives: Sequence[Objective], name: str) -> int:
    for i, o in enumerate(objectives):
        if o.name == name:
            return i
    raise KeyError(f"{name!r} is not an objective ({[o.name for o in objectives]})")
