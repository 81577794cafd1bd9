"""A trial with seed replicates (search/trial/loop.py, ``replicates: K``): K models trained side
by side, epoch by epoch; the objective is their mean, each seed's values are kept, seed 0 is the
single-seed trial, one seed can be retrained alone, and a retry resumes every seed."""

from __future__ import annotations

import contextlib
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

from search.errors import UserError
from search.experiment import Experiment, load_experiment
from search.sweep import load_experiment_data
from search.trial import TrialSession, run_trial, train_in_process

CONFIG = {
    "family": "mixer",
    "patch_size": 2,
    "hidden_dim": 32,
    "num_blocks": 2,
    "tokens_mlp_dim": 16,
    "channels_mlp_dim": 32,
    "dropout": 0.1,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}
ANYTIME = {
    "family": "perceiver",
    "patch_size": 2,
    "projection_dim": 16,
    "num_latents": 8,
    "latent_dim": 32,
    "num_iterations": 2,
    "self_per_cross": 1,
    "latent_heads": 2,
    "num_freq_bands": 2,
    "share_weights": True,
    "dropout": 0.0,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}
_SMALL = ("epochs=3", "dataset.synthetic.num_train=256", "training.report_interval_s=0")


def _experiment(*overrides: str) -> Experiment:
    return load_experiment("smoke", [*_SMALL, *overrides])


@pytest.fixture(scope="module")
def two_seeds() -> dict[str, Any]:
    exp = _experiment("replicates=2")
    return train_in_process(CONFIG, experiment=exp, data=load_experiment_data(exp))


@pytest.fixture(scope="module")
def one_seed() -> dict[str, Any]:
    exp = _experiment()
    return train_in_process(CONFIG, experiment=exp, data=load_experiment_data(exp))


def test_the_objective_is_the_mean_of_the_seeds_and_each_seed_is_kept(
    two_seeds: dict[str, Any],
) -> None:
    last = two_seeds
    assert "failure_reason" not in last and last["replicates"] == 2
    seeds = last["val_accuracy_seeds"]
    assert len(seeds) == 2 and last["val_accuracy"] == pytest.approx(statistics.mean(seeds))
    assert last["test_accuracy"] == pytest.approx(statistics.mean(last["test_accuracy_seeds"]))
    # each seed's curve, epoch by epoch: the seeds advanced together
    history = last["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        assert len(h["val_accuracy_seeds"]) == 2 and len(h["train_loss_seeds"]) == 2
        assert h["val_accuracy"] == pytest.approx(statistics.mean(h["val_accuracy_seeds"]))
    # new init, batch order and dropout per seed: the two models differ
    assert history[0]["train_loss_seeds"][0] != history[0]["train_loss_seeds"][1]


def test_seed_zero_is_the_single_seed_trial(
    two_seeds: dict[str, Any], one_seed: dict[str, Any]
) -> None:
    assert "val_accuracy_seeds" not in one_seed and one_seed["replicates"] == 1
    assert two_seeds["val_accuracy_seeds"][0] == one_seed["val_accuracy"]
    assert two_seeds["history"][0]["train_loss_seeds"][0] == one_seed["history"][0]["train_loss"]
    assert two_seeds["flops"] == one_seed["flops"]  # one architecture, one cost
    # the trial's compute is both seeds'
    assert two_seeds["train_time_s"] > 1.3 * one_seed["train_time_s"]


def test_one_seed_is_retrained_alone_to_its_own_values(two_seeds: dict[str, Any]) -> None:
    exp = _experiment("replicates=2")
    again = train_in_process(CONFIG, experiment=exp, data=load_experiment_data(exp), replicates=[1])
    assert again["val_accuracy"] == two_seeds["val_accuracy_seeds"][1]
    assert again["test_accuracy"] == two_seeds["test_accuracy_seeds"][1]


def test_an_anytime_trial_keeps_every_seed_of_every_iteration_count() -> None:
    exp = _experiment(
        "replicates=2", "training.anytime=true", "space.perceiver.share_weights=[true]"
    )
    last = train_in_process(ANYTIME, experiment=exp, data=load_experiment_data(exp))
    points = last["anytime"]
    assert [p["iterations"] for p in points] == [1, 2]
    for p in points:
        assert len(p["val_accuracy_seeds"]) == 2
        assert p["val_accuracy"] == pytest.approx(statistics.mean(p["val_accuracy_seeds"]))
    assert points[-1]["val_accuracy"] == last["val_accuracy"]


def test_a_retry_restores_every_seed_from_the_checkpoint(tmp_path: Path) -> None:
    """(Without dropout: a checkpoint holds weights, optimizer and schedule, not the random
    state, as for a single seed.)"""
    config = {**CONFIG, "dropout": 0.0}
    exp = _experiment("replicates=2", "resources.max_failures=1",
                      "resources.checkpoint_interval_s=0")  # fmt: skip
    data = load_experiment_data(exp)
    saved = tmp_path / "epoch2"
    whole: list[dict[str, Any]] = []

    def keep(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        whole.append(metrics)
        if ckpt_dir is not None and metrics["epoch"] == 2:
            shutil.copytree(ckpt_dir, saved)

    run_trial(config, experiment=exp, data=data, session=TrialSession(keep, contextlib.nullcontext))
    assert sorted(p.name for p in saved.iterdir() if p.is_dir()) == ["last", "last-seed1"]
    resumed: list[dict[str, Any]] = []
    restore = lambda: contextlib.nullcontext(str(saved))  # noqa: E731
    run_trial(config, experiment=exp, data=data,
              session=TrialSession(lambda m, _c: resumed.append(m), restore))  # fmt: skip
    assert [r["epoch"] for r in resumed] == [3]
    assert resumed[-1]["val_accuracy_seeds"] == pytest.approx(whole[-1]["val_accuracy_seeds"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["replicates=0"], "replicates=0: must be between 1 and 32"),
        (["replicates=33"], "replicates=33: must be between 1 and 32"),
        (["replicates=2", "resources.workers_per_trial=2"], "replicates=2 with resources."),
        (["confirm.seeds=0"], "confirm.seeds=0: must be between 1 and 32"),
        (["confirm.max_trainings=-1"], "confirm.max_trainings=-1: must be between 0 and"),
    ],
)
def test_bad_replicates_are_refused_in_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.")) as err:
        load_experiment("smoke", overrides)
    assert "\n" not in str(err.value)


def test_the_plan_counts_every_seed() -> None:
    from search.experiment.estimate import estimate_sweep

    one, two = (estimate_sweep(load_experiment("default", [f"replicates={k}"])) for k in (1, 2))
    assert one.training_flops and two.training_flops == 2 * one.training_flops
    assert "x 2 seeds x" in two.describe() and "seeds" not in one.describe()
