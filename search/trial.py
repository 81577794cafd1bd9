"""One trial: build the model, measure its cost, train it through a DeepSpeed engine, report.

``run_trial`` is the training loop every trial runs, in a Ray Tune trial, in each Ray Train
worker of a multi-worker trial (``search.sessions``: ``train_trial``, the Tune trainable), or
in-process (``paretotune reproduce``, the tabular benchmark). It reports through a
:class:`TrialSession`; the engine, its batch plan and its config come from ``search.engine``.

Every epoch reports train loss, val top-1/top-5/loss, images/s and epoch time. With Tune
retries (``resources.max_failures > 0``) it also saves a DeepSpeed checkpoint, so a trial
restarted by Tune (e.g. after its node died) resumes where it was; without retries nothing
could read one, so none is saved.
Deterministic failures (an exception, a NaN/inf loss, out of memory) are reported as a final
result carrying ``failure_reason``; the searcher records the trial as failed and the sweep goes on.
"""

from __future__ import annotations

import gc
import json
import math
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from search.data import Augmenter, batches
from search.engine import (
    BatchPlan,
    build_engine,
    deepspeed_config,
    plan_batches,
    select_precision,
    trial_device,
)
from search.sessions import TrialSession, train_trial

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

    from search.data import DatasetSplits
    from search.experiment import Experiment

__all__ = [
    "NonFiniteLossError",
    "TrialProgress",
    "TrialSession",
    "deepspeed_config",
    "run_trial",
    "select_precision",
    "train_trial",
    "trial_seed",
]

CHECKPOINT_TAG = "last"
STATE_FILE = "trial_state.json"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def trial_seed(experiment: Experiment) -> int:
    """The seed a trial trains with: the experiment's (so a trial is a function of its config,
    and ``paretotune reproduce`` retrains it exactly)."""
    return int(experiment.seed) * 100_003


@dataclass
class TrialProgress:
    """What a trial has done so far: saved with each checkpoint (``STATE_FILE``, JSON), and
    what a failure report carries."""

    epoch: int = 0  # the last epoch trained
    history: list[dict[str, float]] = field(default_factory=list)  # an epoch's record each
    elapsed_before_s: float = 0.0  # the training time of the epochs restored from a checkpoint
    cost: dict[str, float] = field(default_factory=dict)  # params, flops, latency_ms(_b64)

    def train_time_s(self) -> float:
        """The training time of every epoch in the history."""
        return sum(h["epoch_time_s"] for h in self.history)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def restore(self, saved: str) -> None:
        """Continue after the epochs of a checkpoint's state file (the cost stays this run's)."""
        state = json.loads(saved)
        self.epoch = int(state["epoch"])
        self.history = state["history"]
        self.elapsed_before_s = self.train_time_s()


def run_trial(
    config: dict[str, Any], *, experiment: Experiment, data: DatasetSplits, session: TrialSession
) -> None:
    """Train; turn a deterministic failure into a final report instead of a crash.

    A failure report carries the compute the trial used (``train_time_s``: wall time since it
    started) and whatever it measured before failing.
    """
    progress = TrialProgress()
    started = time.perf_counter()
    try:
        _train(config, experiment=experiment, data=data, session=session, progress=progress)
    except Exception as exc:  # recorded as a failed trial; the sweep goes on
        reason = _failure_reason(exc)
        last = progress.history[-1] if progress.history else {}
        metrics = {
            # Every metric the searcher and scheduler expect is present (Tune checks it).
            **{key: math.nan for key in ("flops", "params", "latency_ms")},
            **progress.cost,
            "failure_reason": reason,
            "val_accuracy": last.get("val_accuracy", 0.0),
            "epoch": progress.epoch,
            "history": progress.history,
            "train_time_s": progress.elapsed_before_s + time.perf_counter() - started,
        }
        if session.rank == 0:
            print(f"[paretotune] trial failed: {reason}", flush=True)
        session.report(metrics, None)
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {str(exc).splitlines()[0][:300]}"
    if isinstance(exc, NonFiniteLossError):
        return f"non-finite loss: {exc}"
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    first_line = (str(exc).splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first_line}{where}"


@dataclass
class _Loop:
    """One trial's training run: what every epoch reads, and the progress it extends."""

    engine: DeepSpeedEngine
    experiment: Experiment
    data: DatasetSplits
    session: TrialSession
    augmenter: Augmenter
    plan: BatchPlan
    progress: TrialProgress
    seed: int
    label_smoothing: float
    dtype: torch.dtype  # the engine's parameters' (its inputs are cast to it)


def _train(
    config: dict[str, Any],
    *,
    experiment: Experiment,
    data: DatasetSplits,
    session: TrialSession,
    progress: TrialProgress,
) -> None:
    """Build the model (its cost measured) and its engine, then train it epoch by epoch."""
    from spaces import split_proposal

    family, model_hp, train_hp = split_proposal(config)
    training = experiment.training
    torch.set_num_threads(training.num_threads or max(1, int(experiment.resources.cpus_per_trial)))
    device = trial_device()
    seed = trial_seed(experiment)
    torch.manual_seed(seed)
    model = _build_model(family, model_hp, data, device)
    progress.cost = _measure_cost(model, data)
    if session.world_size > 1:
        torch.manual_seed(seed + 1_000_003 * session.rank)  # same init, own dropout masks
    plan = plan_batches(
        int(train_hp["batch_size"]),
        world=session.world_size,
        n_train=len(data.train_y),
        max_micro_batch_size=training.max_micro_batch_size,
    )
    engine = build_engine(model, plan=plan, train_hp=train_hp, experiment=experiment, device=device)
    try:
        loop = _Loop(
            engine=engine,
            experiment=experiment,
            data=data,
            session=session,
            augmenter=Augmenter(data, engine.device, policy=experiment.augment_policy()),
            plan=plan,
            progress=progress,
            seed=seed,
            label_smoothing=float(train_hp.get("label_smoothing", 0.0)),
            dtype=next(engine.module.parameters()).dtype,
        )
        _restore(loop)
        _epochs(loop)
    finally:
        if hasattr(engine, "destroy"):
            engine.destroy()


def _build_model(
    family: str, model_hp: Mapping[str, Any], data: DatasetSplits, device: torch.device
) -> torch.nn.Module:
    import models

    return models.build_model(
        family,
        num_classes=data.num_classes,
        image_size=data.image_size,
        in_channels=data.in_channels,
        **model_hp,
    ).to(device)


def _measure_cost(model: torch.nn.Module, data: DatasetSplits) -> dict[str, float]:
    """The model's cost metrics (``TrialProgress.cost``): params, FLOPs, latency."""
    from models.cost import measure

    cost = measure(model, (1, data.in_channels, data.image_size, data.image_size))
    return {
        "params": int(cost.params),
        "flops": int(cost.flops),
        "latency_ms": float(cost.latency_ms_b1) if cost.latency_ms_b1 is not None else math.nan,
        "latency_ms_b64": float(cost.latency_ms_b64)
        if cost.latency_ms_b64 is not None
        else math.nan,
    }


def _restore(loop: _Loop) -> None:
    """Resume from the session's checkpoint, if it has one: the engine's state and progress."""
    with loop.session.restore_dir() as ckpt_dir:
        if ckpt_dir is not None and (Path(ckpt_dir) / STATE_FILE).is_file():
            loop.engine.load_checkpoint(ckpt_dir, tag=CHECKPOINT_TAG)
            loop.progress.restore((Path(ckpt_dir) / STATE_FILE).read_text())


def _epochs(loop: _Loop) -> None:
    exp, data, progress = loop.experiment, loop.data, loop.progress
    for epoch in range(progress.epoch + 1, exp.epochs + 1):
        t0 = time.perf_counter()
        trained = _train_epoch(loop, epoch)
        val = _evaluate(loop, data.val_x, data.val_y)
        epoch_time = time.perf_counter() - t0
        progress.epoch = epoch
        record = {
            "epoch": epoch,
            "train_loss": trained.loss,
            "val_accuracy": val.accuracy,
            "val_top5": val.top5,
            "val_loss": val.loss,
            "images_per_s": trained.images_per_s,
            "epoch_time_s": epoch_time,
        }
        progress.history.append(record)
        metrics = {
            **record,
            **progress.cost,
            "train_time_s": progress.train_time_s(),
            "epochs_planned": exp.epochs,
            "history": list(progress.history),
            "workers": loop.plan.world,
            "train_images": trained.images,  # this epoch, all ranks
            "train_images_distinct": trained.distinct,  # == train_images: disjoint shards
        }
        # The weights that count are the last epoch's (the end of the schedule): the objective is
        # this epoch's val accuracy, and the test accuracy is measured on these same weights.
        if epoch == exp.epochs and exp.training.eval_test:
            test = _evaluate(loop, data.test_x, data.test_y)
            metrics.update(test_accuracy=test.accuracy, test_top5=test.top5)
        _report(loop, metrics)


def _report(loop: _Loop, metrics: dict[str, Any]) -> None:
    """Report an epoch; with Tune retries, with the checkpoint a retry would resume from."""
    if loop.experiment.resources.max_failures == 0:
        # Only a Tune retry reads a trial checkpoint (a resumed sweep re-queues interrupted
        # trials from scratch): without retries, saving one each epoch is pure overhead.
        loop.session.report(metrics, None)
        return
    with tempfile.TemporaryDirectory(prefix="paretotune-ckpt-") as tmp:
        loop.engine.save_checkpoint(tmp, tag=CHECKPOINT_TAG)  # collective; per-rank ZeRO shards
        if loop.session.rank == 0:
            (Path(tmp) / STATE_FILE).write_text(loop.progress.to_json())
        loop.session.report(metrics, tmp)


@dataclass(frozen=True)
class _EpochTrained:
    """One epoch's training over all ranks."""

    loss: float  # mean train loss per image
    images: int  # images trained on
    distinct: int  # distinct images trained on (== images: the ranks' shards are disjoint)
    images_per_s: float  # images over the slowest rank's time


def _train_epoch(loop: _Loop, epoch: int) -> _EpochTrained:
    """One pass over this rank's shard of the training set, summed over all ranks."""
    t0 = time.perf_counter()
    loss_sum, seen, trained = _train_steps(loop, epoch)
    train_time = time.perf_counter() - t0
    # Over all ranks: loss and images summed, the slowest rank's time, the shard coverage.
    device = loop.engine.device
    sums = torch.cat([torch.tensor([loss_sum, float(seen)], dtype=torch.float64), trained])
    sums = sums.to(device)
    slowest = torch.tensor([train_time], dtype=torch.float64, device=device)
    if loop.plan.world > 1:
        import torch.distributed as dist

        dist.all_reduce(sums)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    seen_total = int(sums[1])
    return _EpochTrained(
        loss=float(sums[0]) / max(seen_total, 1),
        images=seen_total,
        distinct=int((sums[2:] > 0).sum()),
        images_per_s=seen_total / max(float(slowest[0]), 1e-9),
    )


def _train_steps(loop: _Loop, epoch: int) -> tuple[float, int, torch.Tensor]:
    """This rank's micro-steps of an epoch: its loss sum, its images, and how many times each
    training image was trained on."""
    engine, data, plan = loop.engine, loop.data, loop.plan
    device, rank, world = engine.device, loop.session.rank, plan.world
    engine.train()
    # The same permutation on every rank (rank r takes every world-th image of each global
    # batch: disjoint shards); each rank draws its own augmentations.
    gen = torch.Generator().manual_seed(loop.seed + epoch)
    aug_gen = torch.Generator(device=device).manual_seed(loop.seed + 7919 * epoch + 104_729 * rank)
    n_train = len(data.train_y)
    order = batches(
        n_train, batch_size=plan.micro_batch_all_ranks, shuffle=True, generator=gen, drop_last=True
    )
    loss_sum, seen, steps = 0.0, 0, 0
    trained = torch.zeros(n_train, dtype=torch.float64)
    for idx in order:
        if steps >= plan.micro_steps_per_epoch:
            break
        idx = idx[rank::world].cpu()
        trained.index_add_(0, idx, torch.ones(len(idx), dtype=torch.float64))
        x = loop.augmenter.augment(data.train_x[idx].to(device, non_blocking=True), aug_gen)
        y = data.train_y[idx].to(device, non_blocking=True)
        logits = engine(x.to(loop.dtype))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=loop.label_smoothing)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss={loss.item()} at epoch {epoch}, step {steps}")
        engine.backward(loss)
        engine.step()
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
        steps += 1
    return loss_sum, seen, trained


@dataclass(frozen=True)
class _Evaluation:
    loss: float
    accuracy: float  # top-1
    top5: float


@torch.no_grad()
def _evaluate(loop: _Loop, x_all: torch.Tensor, y_all: torch.Tensor) -> _Evaluation:
    """Top-1, top-5 and loss over a split, sharded over the workers and summed."""
    engine, rank, world = loop.engine, loop.session.rank, loop.session.world_size
    engine.eval()
    device = engine.device
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, count
    n = len(y_all)
    # Rank r takes positions r, r + world, ...; every rank runs the same number of forward
    # passes (ZeRO-3 gathers parameters collectively in forward): positions past the end wrap
    # around and are masked out.
    per_rank = -(-n // world)
    positions = torch.arange(per_rank) * world + rank
    for start in range(0, per_rank, 256):
        pos = positions[start : start + 256]
        valid = (pos < n).to(device)
        idx = pos % max(n, 1)
        x = loop.augmenter.normalize(x_all[idx].to(device)).to(loop.dtype)
        y = y_all[idx].to(device)
        logits = engine(x).float()
        k = min(5, logits.shape[-1])
        topk = logits.topk(k, dim=-1).indices
        loss = F.cross_entropy(logits, y, reduction="none")
        totals[0] += loss[valid].sum().double()
        totals[1] += ((topk[:, 0] == y) & valid).sum()
        totals[2] += ((topk == y[:, None]).any(dim=-1) & valid).sum()
        totals[3] += valid.sum()
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(totals)
    count = max(float(totals[3]), 1.0)
    return _Evaluation(
        loss=float(totals[0]) / count,
        accuracy=float(totals[1]) / count,
        top5=float(totals[2]) / count,
    )
