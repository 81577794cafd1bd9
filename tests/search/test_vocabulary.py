"""search.vocabulary: one name for each thing, the same everywhere it is used."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from search.results import trial_status
from search.sweep import samplers
from search.vocabulary import (
    OBJECTIVES,
    SAMPLERS,
    TrialStatus,
    objective_for_column,
    to_jsonable,
)


def test_every_sampler_name_builds_a_sampler_and_no_other_name_does() -> None:
    assert SAMPLERS == ("tpe", "nsga2", "gp", "random")
    for name in SAMPLERS:
        assert isinstance(
            samplers.make_sampler(name, seed=0, num_trials=20), optuna.samplers.BaseSampler
        )
    with pytest.raises(ValueError, match=r"sampler='cmaes'; allowed: tpe, nsga2, gp, random"):
        samplers.make_sampler("cmaes", seed=0, num_trials=20)


def test_statuses_are_plain_strings_in_json() -> None:
    assert json.dumps({"status": TrialStatus.COMPLETE}) == '{"status": "COMPLETE"}'
    assert TrialStatus.on_front() == {"COMPLETE"}
    assert TrialStatus.trained() < TrialStatus.took_a_turn() < TrialStatus.measured()
    assert not TrialStatus.trained() & {TrialStatus.INFEASIBLE, TrialStatus.DUPLICATE}


def test_objectives_and_their_columns() -> None:
    assert OBJECTIVES["latency"].column == "latency_ms"
    assert objective_for_column("latency_ms").name == "latency"
    with pytest.raises(KeyError):
        objective_for_column("nope")


def test_to_jsonable_drops_non_finite_floats() -> None:
    value = {"a": (1.0, math.nan), 2: math.inf, "b": {"c": None}, "d": TrialStatus.FAILED}
    assert to_jsonable(value) == {"a": [1.0, None], "2": None, "b": {"c": None}, "d": "FAILED"}


def test_a_finished_trial_still_marked_running_was_interrupted() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    trial.set_user_attr("status", TrialStatus.RUNNING)
    frozen = study.trials[0]
    assert trial_status(frozen) == TrialStatus.RUNNING
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    assert trial_status(study.trials[0]) == TrialStatus.INTERRUPTED
