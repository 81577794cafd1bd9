"""One trial trained for real (search/trial/loop.py; DeepSpeed engine, no Ray): LAMB learns,
and the weights that count (the last epoch's) are the ones both val and test accuracy are
measured on; the loop's failure reasons, and its independence of Ray."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import models
from search.data import Augmenter
from search.experiment import Experiment, load_experiment
from search.sweep import load_experiment_data
from search.trial import TrialSession, run_trial
from search.trial.engine import optimizer_step
from search.trial.loop import NonFiniteLossError, _failure_reason
from search.trial.state import CHECKPOINT_TAG
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
    # max_failures > 0 and no interval: trials checkpoint each epoch (a retry could read it),
    # so the last epoch's weights can be read back from the final report's checkpoint.
    return load_experiment("smoke", [*_SMALL, "resources.checkpoint_interval_s=0"])


_SMALL = (
    "epochs=4",
    "dataset.synthetic.num_train=320",
    "resources.max_failures=1",
    "training.report_interval_s=0",
)


class _Recorder:
    """A TrialSession that keeps every report and, at the last epoch, the checkpoint's model."""

    def __init__(self, tmp: Path) -> None:
        self.reports: list[dict[str, Any]] = []
        self.checkpointed: list[bool] = []  # per report
        self.final_state: dict[str, torch.Tensor] | None = None
        self.tmp = tmp

    def report(self, metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        self.reports.append(metrics)
        self.checkpointed.append(ckpt_dir is not None)
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


@pytest.mark.parametrize(
    ("overrides", "checkpointed"),
    [
        (["resources.checkpoint_interval_s=0"], [True] * 4),
        (["resources.checkpoint_interval_s=3600"], [False] * 4),  # none due within the trial
        (["resources.max_failures=0", "resources.checkpoint_interval_s=0"], [False] * 4),
    ],
)
def test_a_checkpoint_comes_when_a_retry_could_use_it_and_one_is_due(
    overrides: list[str], checkpointed: list[bool], tmp_path: Path
) -> None:
    experiment = load_experiment("smoke", [*_SMALL, *overrides])
    rec = _train(experiment, {**CONFIG, "optimizer": "adamw", "lr": 3e-3}, tmp_path)
    assert rec.checkpointed == checkpointed
    saved = [r["phases"].get("checkpoint", 0.0) for r in rec.reports]
    assert (saved[-1] > 0) == any(checkpointed[:-1])  # a report carries the time saved before


@pytest.mark.parametrize(
    ("overrides", "reported"),
    [
        (["scheduler.name=none"], [4]),  # the last epoch only
        (
            ["scheduler.name=moasha", "scheduler.grace_period=1", "scheduler.reduction_factor=2"],
            [1, 2, 4],
        ),  # the rungs at 1 and 2, and the last
    ],
)
def test_reports_come_at_judged_epochs_and_the_last_between_intervals(
    overrides: list[str], reported: list[int], tmp_path: Path
) -> None:
    experiment = load_experiment("smoke", [*_SMALL, "training.report_interval_s=3600", *overrides])
    rec = _train(experiment, {**CONFIG, "optimizer": "adamw", "lr": 3e-3}, tmp_path)
    assert [r["epoch"] for r in rec.reports] == reported
    assert [h["epoch"] for h in rec.reports[-1]["history"]] == [1, 2, 3, 4]  # all recorded


def test_one_fp32_process_clips_in_the_loop_as_deepspeed_would() -> None:
    import deepspeed
    import torch.nn.functional as F

    from search.trial.engine import build_engine, deepspeed_config, loop_clip_norm, plan_batches

    exp = load_experiment("smoke", ["training.grad_clip=0.05"])  # small: every step clips
    plan = plan_batches(32, world=1, n_train=320, max_micro_batch_size=16)  # 2 micro-steps
    cpu = torch.device("cpu")
    _, model_hp, _ = split_proposal(CONFIG)

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return models.build_model("mixer", num_classes=4, image_size=8, in_channels=3, **model_hp)

    # The trial's engine leaves clipping to the loop and does not all-reduce.
    hp = {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 0.01, "warmup_epochs": 0}
    trial_engine = build_engine(model(), plan=plan, train_hp=hp, experiment=exp, device=cpu)
    assert trial_engine.gradient_clipping() == 0.0 and not trial_engine.enable_backward_allreduce
    clip = loop_clip_norm(plan, exp, cpu)
    assert clip == 0.05
    # Where DeepSpeed must clip (ZeRO partitions the gradients), the loop does not.
    assert loop_clip_norm(plan, load_experiment("smoke", ["training.zero_stage=1"]), cpu) is None

    def sgd_engine(grad_clip: float) -> Any:  # linear updates: clipping differences show as such
        net = model()
        config = deepspeed_config(
            micro_batch_size=16, grad_accum=2, grad_clip=grad_clip, zero_stage=0, precision="fp32"
        )
        optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
        engine, *_ = deepspeed.initialize(
            model=net, optimizer=optimizer, config=config, dist_init_required=False
        )
        return engine

    ours, deepspeeds, unclipped = sgd_engine(0.0), sgd_engine(0.05), sgd_engine(0.0)
    ours.enable_backward_allreduce = False  # as build_engine sets it
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):  # 3 optimizer steps of 2 micro-steps
        x, y = torch.randn(16, 3, 8, 8, generator=gen), torch.randint(0, 4, (16,), generator=gen)
        for engine, norm in ((ours, clip), (deepspeeds, None), (unclipped, None)):
            optimizer_step(engine, F.cross_entropy(engine(x), y), norm)
    pairs = list(
        zip(ours.parameters(), deepspeeds.parameters(), unclipped.parameters(), strict=True)
    )
    for a, b, _ in pairs:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert max(float((a - c).abs().max()) for a, _, c in pairs) > 1e-3  # the clip mattered


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


def test_a_trial_resumed_from_its_checkpoint_trains_only_the_epochs_after_it(
    experiment: Experiment, tmp_path: Path
) -> None:
    config = {**CONFIG, "optimizer": "adamw", "lr": 3e-3}  # no dropout: epochs repeat exactly
    data = load_experiment_data(experiment)
    saved = tmp_path / "epoch2"
    whole: list[dict[str, Any]] = []

    def keep_epoch_two(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        whole.append(metrics)
        if ckpt_dir is not None and metrics["epoch"] == 2:
            shutil.copytree(ckpt_dir, saved)

    run_trial(
        config,
        experiment=experiment,
        data=data,
        session=TrialSession(report=keep_epoch_two, restore_dir=_nothing),
    )
    resumed = _Recorder(tmp_path)
    session = TrialSession(
        report=resumed.report, restore_dir=lambda: contextlib.nullcontext(str(saved))
    )
    run_trial(config, experiment=experiment, data=data, session=session)
    assert [r["epoch"] for r in resumed.reports] == [3, 4]
    last = resumed.reports[-1]
    assert last["history"][:2] == whole[1]["history"]  # restored, timings included
    assert last["train_time_s"] == pytest.approx(sum(h["epoch_time_s"] for h in last["history"]))
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert last[key] == pytest.approx(whole[-1][key], rel=1e-5, abs=1e-7)


def test_failure_reasons_are_one_clear_line() -> None:
    assert _failure_reason(NonFiniteLossError("loss=nan at epoch 2")).startswith(
        "non-finite loss: loss=nan"
    )
    oom = _failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert oom.startswith("out of memory:")
    try:
        raise ValueError("vit.patch_size=5: does not divide image_size=32\nmore")
    except ValueError as exc:
        reason = _failure_reason(exc)
    assert reason.startswith("ValueError: vit.patch_size=5: does not divide image_size=32 (at ")
    assert "\n" not in reason


def test_the_training_loop_imports_no_ray() -> None:
    code = "import sys, search.trial; print(sorted(m for m in sys.modules if m.startswith('ray')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
