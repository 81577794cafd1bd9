"""An anytime trial (search/trial: loop, model, evaluate): one Perceiver trained over its
iteration counts, then evaluated at each, every count priced at its own cost."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from models.cost import estimate
from search.experiment import load_experiment
from search.sweep import load_experiment_data
from search.trial import TrialSession, run_trial
from spaces import split_proposal

PERCEIVER = {
    "family": "perceiver",
    "patch_size": 2,
    "projection_dim": 16,
    "pos_encoding": "fourier",
    "num_freq_bands": 2,
    "max_freq": 4.0,
    "num_latents": 8,
    "latent_dim": 32,
    "num_iterations": 3,
    "self_per_cross": 1,
    "cross_heads": 2,
    "latent_heads": 2,
    "share_weights": True,
    "dropout": 0.0,
}
#: The training hyperparameters of every proposal here.
TRAINING = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}


def _run(config: dict[str, Any], *overrides: str) -> list[dict[str, Any]]:
    exp = load_experiment(
        "smoke",
        ["epochs=2", "training.anytime=true", "space.perceiver.share_weights=[true]", *overrides],
    )
    reports: list[dict[str, Any]] = []
    session = TrialSession(
        report=lambda metrics, _ckpt: reports.append(metrics),
        restore_dir=lambda: nullcontext(None),
    )
    proposal = {**config, **TRAINING}
    run_trial(proposal, experiment=exp, data=load_experiment_data(exp), session=session)
    return reports


@pytest.mark.parametrize("loss", ["all", "sampled"])
def test_each_iteration_count_is_evaluated_at_its_own_cost(loss: str) -> None:
    reports = _run(PERCEIVER, f"training.anytime_loss={loss}")
    last = reports[-1]
    assert "failure_reason" not in last, last.get("failure_reason")
    points = last["anytime"]
    assert [p["iterations"] for p in points] == [1, 2, 3]
    family, hp, _ = split_proposal({**PERCEIVER, **TRAINING})
    for p in points:
        k = p["iterations"]
        analytic = estimate(
            family, image_size=8, in_channels=3, num_classes=4, **{**hp, "num_iterations": k}
        )
        assert p["flops"] == analytic.flops  # counted running exactly k iterations
        assert p["params"] == analytic.params
        assert 0.0 <= p["val_accuracy"] <= 1.0 and 0.0 <= p["test_accuracy"] <= 1.0
    assert points[0]["flops"] < points[1]["flops"] < points[2]["flops"]
    # the whole model is the last count: the trial's own objective and cost
    assert points[-1]["val_accuracy"] == last["val_accuracy"]
    assert points[-1]["test_accuracy"] == last["test_accuracy"]
    assert points[-1]["flops"] == last["flops"]
    assert all(len(r["history"][-1]["val_accuracy_by_iterations"]) == 3 for r in reports)


def test_a_perceiver_without_shared_weights_refuses_anytime() -> None:
    last = _run({**PERCEIVER, "share_weights": False})[-1]
    assert "needs perceiver.share_weights=true" in last["failure_reason"]
    assert "anytime" not in last


def test_other_families_train_as_usual_under_anytime() -> None:
    mixer = {
        "family": "mixer",
        "patch_size": 2,
        "hidden_dim": 16,
        "num_blocks": 1,
        "tokens_mlp_dim": 16,
        "channels_mlp_dim": 32,
        "dropout": 0.0,
    }
    last = _run(mixer)[-1]
    assert "failure_reason" not in last and "anytime" not in last
