"""The names the search packages share, each written once, with the one rule for each.

Trial statuses, sampler names, the objectives and the result columns that hold them, and the
JSON form of a value (dataset names come from the dataset facts table, ``search.data.facts``,
and their fields' rules are ``search.data.rules``; family names from ``models.FAMILIES``, the
records of the families from ``spaces.FAMILY_RECORDS``).
Nothing here imports torch, Ray or Optuna, so every module can use it.
"""

from __future__ import annotations

import enum
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ANYTIME_ITERATIONS",
    "ANYTIME_OF",
    "DEFAULT_OBJECTIVES",
    "OBJECTIVES",
    "SAMPLERS",
    "Objective",
    "SamplerName",
    "TrialStatus",
    "minimizing_sign",
    "objective_for_column",
    "study_direction",
    "to_jsonable",
]


class TrialStatus(enum.StrEnum):
    """What became of a trial (the study's ``status`` user attribute and the tables' column)."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"  # trained its full epoch budget: the only status on a front
    STOPPED = "STOPPED"  # cut early by the scheduler (PRUNED in the Optuna study)
    FAILED = "FAILED"  # an exception, a non-finite loss or out of memory while training
    INFEASIBLE = "INFEASIBLE"  # over the cost budget: never built or trained
    DUPLICATE = "DUPLICATE"  # the study had trained this configuration already
    INTERRUPTED = "INTERRUPTED"  # running when the sweep stopped; re-queued on resume

    @classmethod
    def ended(cls, *, failed: bool, epochs_run: int, max_epochs: int) -> TrialStatus:
        """The one rule for how a trained trial ended: FAILED (it failed), STOPPED (fewer
        epochs than its budget: the scheduler cut it), else COMPLETE."""
        if failed:
            return cls.FAILED
        return cls.STOPPED if epochs_run < max_epochs else cls.COMPLETE

    @classmethod
    def trained(cls) -> frozenset[TrialStatus]:
        """Trials that were trained: their configurations are never proposed again."""
        return frozenset({cls.COMPLETE, cls.STOPPED, cls.FAILED})

    @classmethod
    def took_a_turn(cls) -> frozenset[TrialStatus]:
        """Trials that count towards a family's share of the sweep."""
        return cls.trained() | {cls.RUNNING}

    @classmethod
    def measured(cls) -> frozenset[TrialStatus]:
        """Trials whose reported accuracy is a real measurement (not a budget placeholder)."""
        return cls.took_a_turn() | {cls.INTERRUPTED}

    @classmethod
    def on_front(cls) -> frozenset[TrialStatus]:
        """Trials that take part in a Pareto front: the full budget, measured."""
        return frozenset({cls.COMPLETE})


#: User attribute (and results column) of an anytime point: the trial that trained it.
ANYTIME_OF = "anytime_of"
#: User attribute (and results column) of an anytime point: the iterations it ran.
ANYTIME_ITERATIONS = "anytime_iterations"

#: Samplers an experiment may choose (``search.sweep.samplers.make_sampler`` builds them).
SamplerName = Literal["tpe", "nsga2", "gp", "random"]
SAMPLERS: tuple[str, ...] = typing.get_args(SamplerName)


@dataclass(frozen=True)
class Objective:
    """A searchable objective: the direction it must have and the metric/column holding it."""

    name: str
    direction: str  # "max" or "min"
    column: str  # the trial metric and the results-table column


#: Objective name -> its definition. ``latency`` is held in the ``latency_ms`` column.
OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        # the last epoch's: the weights that count
        Objective("val_accuracy", "max", "val_accuracy"),
        Objective("flops", "min", "flops"),
        Objective("params", "min", "params"),
        Objective("latency", "min", "latency_ms"),
    )
}


#: The objectives a sweep optimises unless its experiment names others.
DEFAULT_OBJECTIVES: dict[str, str] = {"val_accuracy": "max", "flops": "min"}


def study_direction(mode: str) -> Literal["maximize", "minimize"]:
    """Optuna's direction for an objective's mode (``max`` / ``min``)."""
    return "maximize" if mode == "max" else "minimize"


def minimizing_sign(mode: str) -> float:
    """The factor that turns an objective of ``mode`` into one to minimise (-1 for ``max``)."""
    return -1.0 if mode == "max" else 1.0


def objective_for_column(column: str) -> Objective:
    """The objective whose values live in ``column`` (``latency_ms`` -> ``latency``)."""
    for objective in OBJECTIVES.values():
        if objective.column == column:
            return objective
    raise KeyError(column)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON: NaN and infinities become ``None``, tuples lists, keys strings,
    other objects their ``str``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
