"""search/sweep/searcher.py driven directly (real Optuna, SQLite study, no Ray): the budget, equal
family shares, duplicates, and an invalid proposal under a budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
import pytest

from search.experiment import Experiment, load_experiment
from search.sweep import CostEstimator, open_study
from search.sweep.samplers import make_sampler
from search.sweep.searcher import BudgetedOptunaSearch
from spaces import joint


def _searcher(exp: Experiment, space_overrides: dict[str, Any], max_flops: float | None):
    study = open_study(exp)
    limits = {"flops": max_flops, "params": None}
    return BudgetedOptunaSearch(
        joint(
            exp.families, image_size=8, in_channels=3, overrides={**exp.space, **space_overrides}
        ),
        metrics=exp.objective_metrics,
        modes=exp.objective_modes,
        estimate_fn=CostEstimator(image_size=8, in_channels=3, num_classes=4),
        limits=limits,
        max_epochs=exp.epochs,
        families=exp.families,
        sampler=make_sampler("random", seed=len(study.trials), num_trials=10),
        study_name=exp.name,
        storage=optuna.storages.RDBStorage(exp.storage_url()),
    )


@pytest.fixture
def experiment(tmp_path: Path) -> Experiment:
    return load_experiment("smoke", [f"output_dir={tmp_path}"])


def _done(result_epoch: int, **extra: Any) -> dict[str, Any]:
    return {"val_accuracy": 0.5, "flops": 1e4, "epoch": result_epoch, "history": [], **extra}


def test_an_invalid_proposal_under_a_budget_is_handed_on_not_a_crash(
    experiment: Experiment,
) -> None:
    # Load-time validation refuses overrides that can never form a model; a space that still
    # proposes an invalid one (a custom space, a model rule the check does not draw) must not
    # kill the driver: it has no estimate, so it is not judged against the budget, and the
    # trial fails with the model's own message when it is built.
    searcher = _searcher(
        experiment, {"perceiver.latent_dim": [16], "perceiver.latent_heads": [32]}, 1e9
    )
    proposal = searcher.suggest("t1")
    assert proposal is not None and proposal["family"] == "perceiver"
    searcher.on_trial_complete("t1", _done(1, failure_reason="ValueError: latent_heads=32 ..."))
    (trial,) = [t for t in searcher.study.trials if t.user_attrs.get("tune_trial_id") == "t1"]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["status"] == "FAILED"
    assert "latent_heads" in trial.user_attrs["failure_reason"]
    assert trial.user_attrs["estimated_flops"] is None  # not estimated, not judged


def test_families_take_turns_and_stopped_trials_are_pruned(experiment: Experiment) -> None:
    searcher = _searcher(experiment, {}, None)
    families = []
    for k in range(4):
        proposal = searcher.suggest(f"t{k}")
        assert proposal is not None
        families.append(proposal["family"])
        # t0 stops early (epoch 1 of 2), the others complete
        searcher.on_trial_complete(f"t{k}", _done(1 if k == 0 else experiment.epochs))
    assert families == ["perceiver", "mixer", "perceiver", "mixer"]
    states = [t.state for t in searcher.study.trials]
    assert states[0] == optuna.trial.TrialState.PRUNED
    assert states[1:] == [optuna.trial.TrialState.COMPLETE] * 3
    assert searcher.study.trials[0].user_attrs["status"] == "STOPPED"
    assert all(t.number != 0 for t in searcher.study.best_trials)


def test_a_configuration_the_study_trained_is_not_trained_again(experiment: Experiment) -> None:
    # A space of exactly one configuration per family: after one trial each, every further
    # proposal repeats a trained one and is recorded as DUPLICATE, never handed to Tune.
    fixed = {
        "perceiver.patch_size": [2],
        "perceiver.num_latents": [4],
        "perceiver.latent_dim": [16],
        "perceiver.num_iterations": [1],
        "perceiver.latent_heads": [1],
        "perceiver.cross_heads": [1],
        "perceiver.share_weights": [True],
        "perceiver.pos_encoding": ["fourier"],
        "perceiver.dropout": [0.0],
        "optimizer": ["adamw"],
        "adamw.lr": [1e-3, 1e-3],
        "weight_decay": [0.01, 0.01],
        "label_smoothing": [0.0],
    }
    exp = dataclasses.replace(experiment, families=("perceiver",))
    searcher = _searcher(exp, fixed, None)
    searcher.proposer.max_attempts = 5  # a short loop: every proposal after the first repeats it
    assert searcher.suggest("t0") is not None
    searcher.on_trial_complete("t0", _done(exp.epochs))
    with pytest.raises(RuntimeError, match="already trained"):
        searcher.suggest("t1")
    statuses = [t.user_attrs["status"] for t in searcher.study.trials]
    assert statuses == ["COMPLETE"] + ["DUPLICATE"] * 5
    # a new searcher on the same study (a resume) knows what was trained
    again = _searcher(exp, fixed, None)
    again.proposer.max_attempts = 2
    with pytest.raises(RuntimeError, match="already trained"):
        again.suggest("t2")
