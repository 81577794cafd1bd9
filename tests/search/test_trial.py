"""One trial trained for real (DeepSpeed engine, no Ray): LAMB learns, and the weights that
count (the last epoch's) are the ones both val and test accuracy are measured on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import models
from search.data import Augmenter
from search.experiment import Experiment, load_experiment
from search.trial import CHECKPOINT_TAG, TrialSession, run_trial
from search.tuner import load_experiment_data
from spaces import split_proposal

CONFIG = {
    "family": "mixer",
    "patch_size": 2,
    "hidden_dim": 32,
    "num_blocks": 2,
    "tokens_mlp_dim": 16,
    "channels_mlp_dim": 32,
    "dropout": 0.0,
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    # max_failures > 0: trials checkpoint each epoch (a retry could read it), so the last
    # epoch's weights can be read back from the final report's checkpoint.
    return load_experiment(
        "smoke", ["epochs=4", "dataset.synthetic.num_train=320", "resources.max_failures=1"]
    )


class _Recorder:
    """A TrialSession that keeps every report and, at the last epoch, the checkpoint's model."""

    def __init__(self, tmp: Path) -> None:
        self.reports: list[dict[str, Any]] = []
        self.final_state: dict[str, torch.Tensor] | None = None
        self.tmp = tmp

    def report(self, metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        self.reports.append(metrics)
        if ckpt_dir is not None:
            path = Path(ckpt_dir) / CHECKPOINT_TAG / "mp_rank_00_model_states.pt"
            self.final_state = torch.load(path, map_location="cpu", weights_only=False)["module"]

    def session(self) -> TrialSession:
        return TrialSession(report=self.report, restore_dir=_nothing)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _train(experiment: Experiment, config: dict[str, Any], tmp: Path) -> _Recorder:
    recorder = _Recorder(tmp)
    data = load_experiment_data(experiment)
    run_trial(config, experiment=experiment, data=data, session=recorder.session())
    assert "failure_reason" not in recorder.reports[-1], recorder.reports[-1]
    return recorder


def test_a_lamb_trial_learns(experiment: Experiment, tmp_path: Path) -> None:
    rec = _train(experiment, {**CONFIG, "optimizer": "lamb", "lr": 0.1}, tmp_path)
    losses = [r["train_loss"] for r in rec.reports]
    assert len(losses) == experiment.epochs
    assert losses[-1] < 0.5 * losses[0], losses
    chance = 1 / experiment.dataset.synthetic["num_classes"]
    assert rec.reports[-1]["val_accuracy"] > chance + 0.3


def test_val_and_test_accuracy_are_measured_on_the_last_epochs_weights(
    experiment: Experiment, tmp_path: Path
) -> None:
    rec = _train(experiment, {**CONFIG, "optimizer": "adamw", "lr": 3e-3}, tmp_path)
    last = rec.reports[-1]
    assert last["epoch"] == experiment.epochs and "test_accuracy" in last
    assert all("test_accuracy" not in r for r in rec.reports[:-1])
    # Rebuild the model from the final checkpoint and measure both splits ourselves.
    data = load_experiment_data(experiment)
    family, model_hp, _ = split_proposal(CONFIG)
    model = models.build_model(
        family,
        num_classes=data.num_classes,
        image_size=data.image_size,
        in_channels=data.in_channels,
        **model_hp,
    )
    assert rec.final_state is not None
    model.load_state_dict(rec.final_state)
    model.eval()
    aug = Augmenter(data, policy="none")
    with torch.no_grad():
        val = (model(aug.normalize(data.val_x)).argmax(-1) == data.val_y).float().mean().item()
        test = (model(aug.normalize(data.test_x)).argmax(-1) == data.test_y).float().mean().item()
    assert last["val_accuracy"] == pytest.approx(val, abs=1e-9)
    assert last["test_accuracy"] == pytest.approx(test, abs=1e-9)


def test_a_failed_trial_reports_its_compute_time(experiment: Experiment, tmp_path: Path) -> None:
    recorder = _Recorder(tmp_path)
    data = load_experiment_data(experiment)
    bad = {**CONFIG, "optimizer": "adamw", "lr": 3e-3, "batch_size": 10_000}
    run_trial(bad, experiment=experiment, data=data, session=recorder.session())
    last = recorder.reports[-1]
    assert "larger than the training set" in last["failure_reason"]
    assert last["train_time_s"] > 0
    assert last["flops"] > 0  # the cost was measured before it failed
