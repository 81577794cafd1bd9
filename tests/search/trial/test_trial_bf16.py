"""A GPU trial's half-precision path, on CPU: ``training.precision=bf16`` runs DeepSpeed's bf16
engine here (FP16_UnfusedOptimizer at ZeRO 0, DeepSpeedZeroOptimizer at ZeRO 1 and 2) with our
parameter groups, warmup-cosine schedule, DeepSpeed's clipping, checkpoints, the anytime
Perceiver and LAMB (docs/gpu.md says what this proves and what only a GPU can).

What "right" means: the bf16 loss after 50 steps is within a few percent of fp32's from the same
seed; ZeRO 1 and 2 match ZeRO 0 within bf16 tolerance; the lr at every step is the schedule's.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import models
from search.experiment import Experiment, load_experiment
from search.sweep import load_experiment_data
from search.trial import TrialSession, run_trial
from search.trial.engine import build_engine, loop_clip_norm, optimizer_step, plan_batches
from search.trial.optim import WarmupCosine, param_groups

STAGES = (0, 1, 2)
# Each optimizer's learning rate: both learn within 50 steps and stay stable (LAMB at 0.1 jumps
# about, and then any rounding, fp32's included, changes where it lands).
OPTIMIZERS = {"adamw": 3e-3, "lamb": 5e-2}
STEPS = 50  # optimizer steps, of two micro-batches each
BATCH, MICRO = 32, 16
CLIP = 0.5  # small enough that DeepSpeed clips most early steps
WEIGHT_DECAY = 0.05
MIXER = {
    "patch_size": 2,
    "hidden_dim": 32,
    "num_blocks": 2,
    "tokens_mlp_dim": 16,
    "channels_mlp_dim": 32,
    "dropout": 0.0,
}
CLASSES, SIZE = 4, 8
CPU = torch.device("cpu")

# The recording wrapper replaces the client optimizer's step after the LR scheduler took it.
pytestmark = pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One thread, as a trial with one CPU trains (a busy machine's spinning threads cost
    ten times more than the work)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``STEPS`` global batches of a learnable problem: class means plus noise."""
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(CLASSES, 3, SIZE, SIZE, generator=gen)
    out = []
    for _ in range(STEPS):
        y = torch.randint(0, CLASSES, (BATCH,), generator=gen)
        out.append((means[y] + 1.5 * torch.randn(BATCH, 3, SIZE, SIZE, generator=gen), y))
    return out


BATCHES = _batches()


def _experiment(precision: str, zero: int, *extra: str) -> Experiment:
    return load_experiment(
        "smoke",
        [
            f"training.precision={precision}",
            f"training.zero_stage={zero}",
            f"training.grad_clip={CLIP}",
            "epochs=5",  # with the plan below: 10 steps an epoch, a 50-step cosine
            *extra,
        ],
    )


@dataclass
class _Run:
    """One engine's 50 steps: what it computed and what its client optimizer was handed."""

    engine: Any
    losses: list[float] = field(default_factory=list)  # per optimizer step (mean of micro)
    lrs: list[list[float]] = field(default_factory=list)  # per step: each group's lr
    grad_norms: list[float] = field(default_factory=list)  # per step: what the optimizer saw
    pre_clip_norms: list[float] = field(default_factory=list)  # per step: DeepSpeed's norm


def _engine(precision: str, zero: int, optimizer: str, *, clip: float = CLIP) -> Any:
    exp = _experiment(precision, zero, f"training.grad_clip={clip}")
    plan = plan_batches(BATCH, world=1, n_train=10 * BATCH, max_micro_batch_size=MICRO)
    torch.manual_seed(0)
    model = models.build_model(
        "mixer", num_classes=CLASSES, image_size=SIZE, in_channels=3, **MIXER
    )
    hp = {
        "optimizer": optimizer,
        "lr": OPTIMIZERS[optimizer],
        "weight_decay": WEIGHT_DECAY,
        "warmup_epochs": 1,
    }
    engine = build_engine(model, plan=plan, train_hp=hp, experiment=exp, device=CPU)
    return engine, loop_clip_norm(plan, exp, CPU)


def _train(
    precision: str, zero: int, optimizer: str, *, steps: int = STEPS, clip: float = CLIP
) -> _Run:
    engine, clip_norm = _engine(precision, zero, optimizer, clip=clip)
    run = _Run(engine)
    basic = engine.basic_optimizer
    seen: list[tuple[list[float], float]] = []  # per call: lrs, squared grad norm

    def recording_step(*args: Any, _step: Any = basic.step, **kwargs: Any) -> Any:
        # ZeRO steps the client optimizer once per group (the others hidden): record its view.
        squares = sum(
            float(p.grad.float().square().sum())
            for g in basic.param_groups
            for p in g["params"]
            if p.grad is not None
        )
        seen.append(([float(g["lr"]) for g in basic.param_groups], squares))
        return _step(*args, **kwargs)

    basic.step = recording_step
    dtype = next(engine.module.parameters()).dtype
    for x, y in BATCHES[:steps]:
        seen.clear()
        micro_losses = []
        for xm, ym in zip(x.split(MICRO), y.split(MICRO)):
            loss = F.cross_entropy(engine(xm.to(dtype)).float(), ym)
            optimizer_step(engine, loss, clip_norm)
            micro_losses.append(float(loss.detach()))
        run.losses.append(sum(micro_losses) / len(micro_losses))
        run.lrs.append([lr for lrs, _ in seen for lr in lrs])
        run.grad_norms.append(sum(sq for _, sq in seen) ** 0.5)
        norm = engine.get_global_grad_norm()  # None where the loop clips (fp32 at ZeRO 0)
        run.pre_clip_norms.append(float("nan") if norm is None else float(norm))
    return run


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, int, str], _Run]:
    """fp32 at ZeRO 0 and bf16 at ZeRO 0, 1 and 2, for each optimizer: 50 steps each."""
    keys = [("fp32", 0, o) for o in OPTIMIZERS]
    keys += [("bf16", z, o) for z in STAGES for o in OPTIMIZERS]
    return {key: _train(*key) for key in keys}


def _tail(losses: list[float]) -> float:
    return sum(losses[-5:]) / 5


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_bf16_loss_after_50_steps_is_within_a_few_percent_of_fp32(
    runs: dict[tuple[str, int, str], _Run], optimizer: str
) -> None:
    fp32, bf16 = runs["fp32", 0, optimizer], runs["bf16", 0, optimizer]
    assert next(bf16.engine.module.parameters()).dtype == torch.bfloat16
    assert _tail(fp32.losses) < 0.5 * fp32.losses[0]  # it learns: the comparison means something
    assert _tail(bf16.losses) == pytest.approx(_tail(fp32.losses), rel=0.03)
    for a, b in zip(bf16.losses, fp32.losses):
        assert a == pytest.approx(b, rel=0.03)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("zero", [1, 2])
def test_zero_1_and_2_match_zero_0_in_bf16(
    runs: dict[tuple[str, int, str], _Run], optimizer: str, zero: int
) -> None:
    base, other = runs["bf16", 0, optimizer], runs["bf16", zero, optimizer]
    assert type(base.engine.optimizer).__name__ == "FP16_UnfusedOptimizer"
    assert type(other.engine.optimizer).__name__ == "DeepSpeedZeroOptimizer"
    # Step by step within bf16 rounding (measured: 0.6% at most). Before the wrapper's initial
    # zero-gradient step was undone (engine._undo_initial_step), ZeRO 0 was 5% off with LAMB.
    assert other.losses[:3] == pytest.approx(base.losses[:3], rel=2e-3)
    for a, b in zip(other.losses, base.losses):
        assert a == pytest.approx(b, rel=0.02)
    assert _tail(other.losses) == pytest.approx(_tail(base.losses), rel=0.01)


def test_the_zero_0_wrapper_starts_from_the_models_weights_and_no_optimizer_state() -> None:
    """DeepSpeed's FP16_UnfusedOptimizer steps the client optimizer once with zero gradients
    when built (to make its state): undone, so Adam counts no phantom step and weight decay
    has not shrunk the fp32 masters."""
    engine, _ = _engine("bf16", 0, "lamb")
    wrapper = engine.optimizer
    assert not engine.basic_optimizer.state
    for masters, weights in zip(wrapper.fp32_groups, wrapper.fp16_groups):
        for master, weight in zip(masters, weights):
            assert torch.equal(master, weight.float())


@pytest.mark.parametrize("zero", STAGES)
def test_the_lr_at_every_step_is_the_schedules(
    runs: dict[tuple[str, int, str], _Run], zero: int
) -> None:
    schedule = WarmupCosine(warmup_steps=10, total_steps=STEPS)
    for optimizer, lr in OPTIMIZERS.items():
        run = runs["bf16", zero, optimizer]
        assert len(run.lrs) == STEPS
        for step, lrs in enumerate(run.lrs):
            assert lrs and lrs == [pytest.approx(lr * schedule(step), rel=1e-12)] * len(lrs)
        assert run.lrs[0][0] == pytest.approx(lr / 10)  # warmup starts at lr / warmup_steps


@pytest.mark.parametrize("zero", STAGES)
def test_deepspeed_clips_the_gradients_the_optimizer_sees(
    runs: dict[tuple[str, int, str], _Run], zero: int
) -> None:
    run = runs["bf16", zero, "adamw"]
    assert run.engine.gradient_clipping() == CLIP  # DeepSpeed's job in bf16, not the loop's
    clipped = 0
    for seen, before in zip(run.grad_norms, run.pre_clip_norms):
        assert seen == pytest.approx(min(before, CLIP), rel=1e-3)
        clipped += before > CLIP
    assert clipped >= 5, run.pre_clip_norms


@pytest.mark.parametrize("zero", STAGES)
def test_our_param_groups_survive_the_wrapper(zero: int) -> None:
    """No weight decay on norms, biases and the Perceiver's latents, through each wrapper."""
    exp = _experiment("bf16", zero)
    torch.manual_seed(0)
    model = models.build_model(
        "perceiver",
        num_classes=CLASSES,
        image_size=SIZE,
        in_channels=3,
        **{**models.default_hparams("perceiver"), "patch_size": 2, "num_latents": 4,
           "latent_dim": 16, "projection_dim": 16, "num_iterations": 2, "latent_heads": 2},
    )  # fmt: skip
    names = {id(p): n for n, p in model.named_parameters()}
    ours = [{names[id(p)] for p in g["params"]} for g in param_groups(model, WEIGHT_DECAY)]
    assert "latents" in ours[1] and any(n.endswith(".bias") for n in ours[1])
    assert any("norm" in n for n in ours[1]) and not any(n.endswith(".bias") for n in ours[0])
    plan = plan_batches(BATCH, world=1, n_train=10 * BATCH, max_micro_batch_size=None)
    hp = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": WEIGHT_DECAY, "warmup_epochs": 1}
    engine = build_engine(model, plan=plan, train_hp=hp, experiment=exp, device=CPU)
    wrapper = engine.optimizer
    held = wrapper.bit16_groups if zero else wrapper.fp16_groups  # the bf16 model tensors
    assert [{names[id(p)] for p in group} for group in held] == ours
    assert [g["weight_decay"] for g in engine.basic_optimizer.param_groups] == [WEIGHT_DECAY, 0]


@pytest.mark.parametrize("zero", [1, 2])
def test_lamb_updates_each_tensor_under_zero_as_at_zero_0(zero: int) -> None:
    """ZeRO hands LAMB one flat partition per group: its trust ratio must stay per tensor.
    (With one ratio per group, a tensor's weights were 3x off after 10 steps.) In fp32 and
    unclipped the two agree to rounding; in bf16 a tensor whose gradient is rounding noise
    (a LayerNorm'd bias) moves by noise, so there the losses above are the measure."""
    base = _train("fp32", 0, "lamb", steps=10, clip=0.0).engine.module
    other = _train("fp32", zero, "lamb", steps=10, clip=0.0).engine.module
    x = BATCHES[-1][0]
    with torch.no_grad():
        torch.testing.assert_close(other(x), base(x), rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(base.named_parameters(), other.parameters()):
        if a.ndim == 2:  # the weight matrices (a bias after a LayerNorm moves by noise)
            diff = float((a - b).detach().norm() / a.detach().norm())
            assert diff < 1e-4, (name, diff)


# ---- whole trials in bf16: a checkpoint restored mid-trial, the anytime Perceiver ----------


def _trial_experiment(zero: int, *extra: str) -> Experiment:
    return load_experiment(
        "smoke",
        [
            "training.precision=bf16",
            f"training.zero_stage={zero}",
            "epochs=4",
            "dataset.synthetic.num_train=320",
            "resources.max_failures=1",  # a retry could read a checkpoint: one each epoch
            "resources.checkpoint_interval_s=0",
            "training.report_interval_s=0",
            "space.perceiver.share_weights=[true]",  # the anytime Perceiver's
            *extra,
        ],
    )


TRIAL = {
    "family": "mixer",
    **MIXER,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": WEIGHT_DECAY,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _reports(
    experiment: Experiment, config: dict[str, Any], restore: Path | None = None, keep: Any = None
) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        reports.append(metrics)
        if keep is not None:
            keep(metrics, ckpt_dir)

    restore_dir = (lambda: contextlib.nullcontext(str(restore))) if restore else _nothing
    data = load_experiment_data(experiment)
    run_trial(config, experiment=experiment, data=data, session=TrialSession(report, restore_dir))
    assert "failure_reason" not in reports[-1], reports[-1]
    return reports


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("zero", STAGES)
def test_a_bf16_trial_restored_mid_trial_continues_as_if_uninterrupted(
    zero: int, optimizer: str, tmp_path: Path
) -> None:
    """A Tune retry: the trial restarts from its epoch-2 checkpoint (bf16 weights, fp32
    master weights and moments, ZeRO partitions, LR schedule; LAMB's tensor layout kept) and
    trains epochs 3 and 4."""
    experiment = _trial_experiment(zero)
    config = {**TRIAL, "optimizer": optimizer, "lr": OPTIMIZERS[optimizer]}
    saved = tmp_path / "epoch2"

    def keep_epoch_two(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        if ckpt_dir is not None and metrics["epoch"] == 2:
            shutil.copytree(ckpt_dir, saved)

    whole = _reports(experiment, config, keep=keep_epoch_two)
    assert whole[-1]["precision"] == "bfloat16" and whole[-1]["device"] == "cpu"
    resumed = _reports(experiment, config, restore=saved)
    assert [r["epoch"] for r in resumed] == [3, 4]
    for before, after in zip(whole[2:], resumed):
        for key in ("train_loss", "val_loss", "val_accuracy", "test_accuracy"):
            if key in before:
                assert after[key] == pytest.approx(before[key], rel=1e-6, abs=1e-9), key


ANYTIME = {
    "family": "perceiver",
    "patch_size": 2,
    "projection_dim": 16,
    "num_latents": 8,
    "latent_dim": 32,
    "num_iterations": 3,
    "self_per_cross": 1,
    "latent_heads": 2,
    "num_freq_bands": 2,
    "share_weights": True,
    "dropout": 0.0,
    "optimizer": "lamb",
    "lr": 5e-2,
    "weight_decay": WEIGHT_DECAY,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}


@pytest.fixture(scope="module")
def anytime_fp32() -> list[dict[str, Any]]:
    exp = _trial_experiment(0, "training.precision=fp32", "training.anytime=true")
    return _reports(exp, ANYTIME)


@pytest.mark.parametrize("zero", STAGES)
def test_the_anytime_perceiver_is_evaluated_at_every_iteration_in_bf16(
    zero: int, anytime_fp32: list[dict[str, Any]]
) -> None:
    exp = _trial_experiment(zero, "training.anytime=true")
    last = _reports(exp, ANYTIME)[-1]
    points = last["anytime"]
    assert [p["iterations"] for p in points] == [1, 2, 3]
    by_k = last["val_accuracy_by_iterations"]
    assert [p["val_accuracy"] for p in points] == by_k and by_k[-1] == last["val_accuracy"]
    assert [p["flops"] for p in points] == sorted(p["flops"] for p in points)  # k costs more
    chance = 1 / CLASSES
    assert last["val_accuracy"] > chance + 0.25
    # Within a few points of fp32's trial, at every iteration count.
    reference = anytime_fp32[-1]["val_accuracy_by_iterations"]
    assert by_k == pytest.approx(reference, abs=0.08)
