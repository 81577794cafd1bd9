"""The sampler contract: every sampler choice, driven by the sweep's own proposal rules.

Proposals are valid models, constraints are honoured (nothing over budget is handed out for
training, every infeasible proposal is recorded with positive constraint values), and several
trials may be running at once (two are asked for before either is told).
"""

from __future__ import annotations

import math

import optuna
import pytest

import models
from search.experiment import load_experiment
from search.sweep import CostEstimator
from search.sweep.proposer import Proposer
from search.sweep.samplers import SAMPLERS, make_sampler, nsga2_population
from search.vocabulary import TrialStatus
from spaces import joint, split_proposal

MAX_FLOPS = 1.0e5  # about half the smoke space's proposals are over it
TRIALS = 10  # past every sampler's start-up trials (4 at this size)
ESTIMATE = CostEstimator(image_size=8, in_channels=3, num_classes=4)


def _accuracy(proposal: dict[str, object]) -> float:
    """A made-up, deterministic objective: larger models are a little better."""
    family, hp, _ = split_proposal(proposal)
    width = float(hp.get("hidden_dim", hp.get("latent_dim", 16)))  # type: ignore[arg-type]
    return 0.5 + 0.4 * (1 - math.exp(-width / 32)) - (0.05 if family == "mixer" else 0.0)


def _proposer(sampler: str) -> Proposer:
    exp = load_experiment("smoke")
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=make_sampler(sampler, seed=3, num_trials=TRIALS),
    )
    return Proposer(
        study,
        joint(exp.families, image_size=8, in_channels=3, overrides=exp.space),
        objectives={"val_accuracy": "max", "flops": "min"},
        estimate_fn=ESTIMATE,
        limits={"flops": MAX_FLOPS, "params": None},
        max_epochs=exp.epochs,
        families=exp.families,
    )


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_keeps_the_contract(sampler: str) -> None:
    proposer = _proposer(sampler)
    handed_out = 0
    while handed_out < TRIALS:
        running = [proposer.propose() for _ in range(2)]  # two at once, as the sweep runs
        for trial, proposal in running:
            family, hp, _ = split_proposal(proposal)
            models.resolve_hparams(family, image_size=8, in_channels=3, **hp)  # valid
            flops = ESTIMATE(proposal)["flops"]
            assert flops <= MAX_FLOPS, (sampler, proposal)
            assert all(v <= 0 for v in trial.study.trials[trial.number].constraints.values())
            result = {"val_accuracy": _accuracy(proposal), "flops": flops, "epoch": 2}
            assert proposer.finish(trial, result) == TrialStatus.COMPLETE
        handed_out += len(running)
    trials = proposer.study.trials
    statuses = [t.user_attrs["status"] for t in trials]
    assert statuses.count(TrialStatus.COMPLETE) == TRIALS
    infeasible = [t for t in trials if t.user_attrs["status"] == TrialStatus.INFEASIBLE]
    assert infeasible, "the budget refuses about half of the smoke space"
    for t in infeasible:
        assert t.constraints and all(v > 0 for v in t.constraints.values())
        assert t.user_attrs["estimated_flops"] > MAX_FLOPS
    families = [t.user_attrs["family"] for t in trials if t.user_attrs["status"] == "COMPLETE"]
    assert sorted(set(families)) == ["mixer", "perceiver"]
    assert abs(families.count("mixer") - families.count("perceiver")) <= 2  # equal shares


def test_nsga2_population_follows_the_sweep_size() -> None:
    assert nsga2_population(20) == 4
    assert nsga2_population(96) == 19
    assert nsga2_population(10_000) == 50
    sampler = make_sampler("nsga2", seed=0, num_trials=96)
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)


def test_unknown_sampler_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: tpe, nsga2, gp, random"):
        make_sampler("grid", seed=0, num_trials=4)
