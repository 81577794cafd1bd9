"""Hyperparameter importance per family and objective: Optuna's fANOVA on a rebuilt study.

The family's measured trials are copied into an in-memory study, from ``optuna.db`` when the
results directory has one (parameters lose their ``<family>.`` prefix), else from
``trials.json`` with distributions inferred from the values. Compute only: the figure is
drawn from the :class:`Importance` this returns.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.pareto import Objective, as_float
from search.vocabulary import objective_for_column

from .inputs import Results, hp_columns, hp_value, log_scaled

__all__ = ["MIN_IMPORTANCE_TRIALS", "ROUGH_IMPORTANCE_TRIALS", "Importance", "family_importance"]

#: Fewer measured trials than this: no importance at all.
MIN_IMPORTANCE_TRIALS = 3
#: Fewer measured trials than this: importances are marked as rough hints.
ROUGH_IMPORTANCE_TRIALS = 20


@dataclass(frozen=True)
class Importance:
    """One family's hyperparameter importances, ``by_objective[objective][param]``.

    ``unavailable`` says why there is nothing to draw (then ``by_objective`` is empty);
    ``source`` is where the trials came from, ``optuna.db`` or ``trials.json``.
    """

    family: str
    n_trials: int
    source: str
    by_objective: dict[str, dict[str, float]]
    notes: tuple[str, ...]
    unavailable: str | None = None

    @property
    def params(self) -> list[str]:
        """Every parameter, least important first (for the first objective)."""
        first = next(iter(self.by_objective.values()), {})
        names = {p for imp in self.by_objective.values() for p in imp}
        return sorted(names, key=lambda p: first.get(p, 0.0))


def _infer_distribution(name: str, values: Sequence[Any]) -> Any:
    """An Optuna distribution covering ``values`` (bool/str/other -> categorical)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return IntDistribution(min(values), max(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        lo, hi = float(min(values)), float(max(values))
        return FloatDistribution(lo, hi, log=log_scaled(name, lo, hi))
    choices = sorted({_categorical_value(v) for v in values}, key=lambda c: (str(type(c)), str(c)))
    return CategoricalDistribution(choices)


def _categorical_value(v: Any) -> Any:
    """``v`` as an Optuna categorical choice (other objects as their ``str``)."""
    return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)


def _metric_index(objectives: Sequence[Objective], metric_names: Sequence[str]) -> list[int]:
    """Where each objective's value sits in a stored trial's ``values``, by metric name (the
    column, e.g. ``latency_ms``, or the objective, ``latency``); else its own position."""
    index = []
    for pos, o in enumerate(objectives):
        try:
            alias = objective_for_column(o.name).name
        except KeyError:
            alias = o.name
        index.append(
            metric_names.index(o.name)
            if o.name in metric_names
            else metric_names.index(alias)
            if alias in metric_names
            else pos
        )
    return index


def _stored_family_study(
    db: Path, results: Results, family: str, numbers: set[int]
) -> tuple[Any, list[int]]:
    """``family``'s measured trials copied from the stored study into an in-memory one.

    Parameters lose their ``<family>.`` prefix and the ``family`` choice itself; objective
    ``i`` of ``results.objectives`` is ``values[index[i]]`` (matched by metric name).
    """
    import optuna

    storage = f"sqlite:///{db}"
    names = optuna.study.get_all_study_names(storage)
    name = results.name if results.name in names or len(names) != 1 else names[0]
    stored = optuna.load_study(study_name=name, storage=storage)
    index = _metric_index(results.objectives, stored.metric_names or [])
    prefix = f"{family}."
    study = optuna.create_study(directions=stored.directions)
    for t in stored.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.number not in numbers or t.values is None:
            continue
        recorded = t.user_attrs.get("family", t.params.get("family", family))
        if recorded != family:
            raise ValueError(
                f"trial {t.number} is {recorded!r} in the study but {family!r} in trials.json"
            )
        keep = {k: k.removeprefix(prefix) for k in t.params if k != "family"}
        study.add_trial(
            optuna.trial.create_trial(
                params={new: t.params[old] for old, new in keep.items()},
                distributions={new: t.distributions[old] for old, new in keep.items()},
                values=t.values,
            )
        )
    return study, index


def _rows_study(objectives: Sequence[Objective], rows: Sequence[Mapping[str, Any]]) -> Any:
    """An in-memory study of ``rows`` (``trials.json``), distributions inferred from values."""
    import optuna

    directions = [
        optuna.study.StudyDirection.MAXIMIZE
        if o.direction == "max"
        else optuna.study.StudyDirection.MINIMIZE
        for o in objectives
    ]
    hp_names = hp_columns(rows)
    dists = {n: _infer_distribution(n, [hp_value(r, n) for r in rows]) for n in hp_names}
    study = optuna.create_study(directions=directions)
    for r in rows:
        params = {}
        for n in hp_names:
            v = hp_value(r, n)
            params[n] = (
                _categorical_value(v)
                if isinstance(dists[n], optuna.distributions.CategoricalDistribution)
                else v
            )
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                values=[as_float(r.get(o.name)) for o in objectives],
            )
        )
    return study


def _family_study(
    results: Results, family: str, rows: Sequence[Mapping[str, Any]]
) -> tuple[Any, list[int], str, list[str]]:
    """An in-memory study of ``family``'s measured trials ``rows``, the value index of each
    objective, where the trials came from (``optuna.db`` or ``trials.json``) and notes."""
    numbers = {
        int(as_float(r.get("number"))) for r in rows if math.isfinite(as_float(r.get("number")))
    }
    db = Path(results.directory) / "optuna.db"
    notes = []
    if isinstance(results.directory, Path) and db.is_file():
        try:
            return (*_stored_family_study(db, results, family, numbers), "optuna.db", [])
        except Exception as exc:  # fall back to trials.json below, and say so
            notes.append(f"{family}: optuna.db not used ({type(exc).__name__}: {exc})")
    study = _rows_study(results.objectives, rows)
    return study, list(range(len(results.objectives))), "trials.json", notes


def _value_at(i: int) -> Callable[[Any], float]:
    """The importance target for objective ``i`` of a multi-objective trial."""

    def target(trial: Any) -> float:
        return float(trial.values[i])

    return target


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines ("A new study created in memory ...") while building."""
    import optuna

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def _fanova(
    study: Any, objectives: Sequence[Objective], index: Sequence[int], notes: list[str]
) -> dict[str, dict[str, float]]:
    """fANOVA importances (seed 0) for each objective; a failure is a note in ``notes``."""
    import optuna

    importances: dict[str, dict[str, float]] = {}
    for obj, i in zip(objectives, index):
        try:
            importances[obj.name] = optuna.importance.get_param_importances(
                study,
                target=_value_at(i),
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
            )
        except Exception as exc:
            notes.append(f"{obj.name}: importance unavailable ({type(exc).__name__}: {exc})")
    return importances


def family_importance(
    results: Results, family: str, rows: Sequence[Mapping[str, Any]]
) -> Importance:
    """Importance of ``family``'s hyperparameters for each objective, from its measured
    (front-eligible) trials ``rows``. Never raises: a failure is ``unavailable``."""
    try:
        with _quiet_optuna():
            study, index, source, notes = _family_study(results, family, rows)
    except Exception as exc:
        why = f"importance unavailable: {type(exc).__name__}: {exc}"
        return Importance(family, 0, "", {}, (), why)
    n = len(study.trials)
    if n < MIN_IMPORTANCE_TRIALS:
        why = (
            f"importance needs at least {MIN_IMPORTANCE_TRIALS} "
            f"measured {family} trials; there are {n}"
        )
        return Importance(family, n, source, {}, tuple(notes), why)
    importances = _fanova(study, results.objectives, index, notes)
    if not importances or not any(importances.values()):
        why = "no hyperparameter importance could be computed"
        return Importance(family, n, source, {}, tuple(notes), why)
    if n < ROUGH_IMPORTANCE_TRIALS:
        notes.append(f"{family}: only {n} measured trials; importances this early are rough hints")
    return Importance(family, n, source, importances, tuple(notes))
