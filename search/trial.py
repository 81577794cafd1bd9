"""One trial: build the model, measure its cost, train it through a DeepSpeed engine, report.

``run_trial`` is the training loop every trial runs, in a Ray Tune trial, in each Ray Train
worker of a multi-worker trial (``search.sessions``: ``train_trial``, the Tune trainable), or
in-process (``paretotune reproduce``, the tabular benchmark). It reports through a
:class:`TrialSession`; the engine, its batch plan and its config come from ``search.engine``.

Every epoch records train loss, val top-1/top-5/loss, images/s and epoch time in the trial's
history; a report to Tune carries the latest epoch and the history, at the epochs the scheduler
judges, at the last, and otherwise once ``training.report_interval_s`` has passed (``_due``).
With Tune retries (``resources.max_failures > 0``) a report also carries a DeepSpeed checkpoint
once ``resources.checkpoint_interval_s`` has passed since the last one, so a trial restarted by
Tune (e.g. after its node died) resumes from there; without retries nothing could read one, so
none is saved.
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
    loop_clip_norm,
    plan_batches,
    select_precision,
    trial_device,
)
from search.rungs import judged_epochs
from search.sessions import TrialSession, train_trial
from search.timing import timed
from search.vocabulary import ANYTIME_PARAM

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

    from models.perceiver import Perceiver
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
    history: list[dict[str, Any]] = field(default_factory=list)  # an epoch's record each
    elapsed_before_s: float = 0.0  # the training time of the epochs restored from a checkpoint
    cost: dict[str, float] = field(default_factory=dict)  # params, flops, latency_ms(_b64)
    # seconds per phase outside training (search.timing): build, cost, engine, report, ...
    phases: dict[str, float] = field(default_factory=dict)

    def train_time_s(self) -> float:
        """The training time of every epoch in the history."""
        return sum(h["epoch_time_s"] for h in self.history)

    def to_json(self) -> str:
        """The checkpoint's state file (the phase timings are this run's, not state)."""
        state = asdict(self)
        del state["phases"]
        return json.dumps(state)

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
    progress = TrialProgress(phases={"entered_at": time.time()})
    started = time.perf_counter()
    _freeze_long_lived_objects()
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
        gc.collect()  # the trial's cycles (engine, optimizer): this process trains the next one
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _freeze_long_lived_objects() -> None:
    """Once per process, before its first trial: collect, then move everything alive (the
    imported libraries, the dataset) out of the collector's reach (``gc.freeze``). The full
    collection after each trial then scans only that trial's objects: ~10 us instead of ~90 ms
    with torch, DeepSpeed and Ray imported (docs/benchmarks.md)."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


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
    anytime: Anytime | None = None  # the anytime Perceiver's iterations, if it trains so
    judged_epochs: tuple[int, ...] = ()  # the epochs the scheduler judges: always reported
    clip_norm: float | None = None  # the loop clips gradients (else DeepSpeed: loop_clip_norm)
    checkpointed_at: float = field(default_factory=time.perf_counter)  # or the loop's start
    reported_at: float = field(default_factory=time.perf_counter)  # or the loop's start


@dataclass(frozen=True)
class Anytime:
    """An anytime trial: a weight-shared Perceiver trained over its iteration counts
    1..``iterations`` and evaluated at each; ``costs[k - 1]`` is the k-iteration model's."""

    iterations: int
    loss: str  # "all": mean loss over every count; "sampled": one count per step
    costs: tuple[dict[str, float], ...]


def _anytime(
    family: str, model: torch.nn.Module, data: DatasetSplits, experiment: Experiment
) -> Anytime | None:
    """The trial's anytime plan (None unless ``training.anytime`` and a Perceiver)."""
    from models.perceiver import AtIterations, Perceiver

    if not experiment.training.anytime or family not in ANYTIME_PARAM:
        return None
    assert isinstance(model, Perceiver)
    if not model.config.share_weights:
        raise ValueError(
            "training.anytime=true: needs perceiver.share_weights=true (only then is iteration "
            "k of one model the k-iteration model); got share_weights=false"
        )
    total = model.config.num_iterations
    costs = [_measure_cost(AtIterations(model, k), data) for k in range(1, total + 1)]
    for k, cost in enumerate(costs, 1):
        cost["params"] = _anytime_params(model, data, k)
    return Anytime(iterations=total, loss=experiment.training.anytime_loss, costs=tuple(costs))


def _anytime_params(model: Perceiver, data: DatasetSplits, k: int) -> int:
    """Parameters the k-iteration model has (the analytic count: a 1-iteration Perceiver has
    no second cross-attention)."""
    from models.cost import estimate

    hparams = {**model.config.to_dict(), "num_iterations": k}
    return int(
        estimate(
            "perceiver",
            image_size=data.image_size,
            in_channels=data.in_channels,
            num_classes=data.num_classes,
            **hparams,
        ).params
    )


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
    with timed(progress.phases, "build"):
        model = _build_model(family, model_hp, data, device)
    with timed(progress.phases, "cost"):
        progress.cost = _measure_cost(model, data)
        anytime = _anytime(family, model, data, experiment)
    if session.world_size > 1:
        torch.manual_seed(seed + 1_000_003 * session.rank)  # same init, own dropout masks
    plan = plan_batches(
        int(train_hp["batch_size"]),
        world=session.world_size,
        n_train=len(data.train_y),
        max_micro_batch_size=training.max_micro_batch_size,
    )
    with timed(progress.phases, "engine"):
        engine = build_engine(
            model, plan=plan, train_hp=train_hp, experiment=experiment, device=device
        )
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
            anytime=anytime,
            judged_epochs=judged_epochs(experiment),
            clip_norm=loop_clip_norm(plan, experiment, device),
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
        val_by_k = _evaluate(loop, data.val_x, data.val_y)
        val = val_by_k[-1]
        epoch_time = time.perf_counter() - t0
        progress.epoch = epoch
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": trained.loss,
            "val_accuracy": val.accuracy,
            "val_top5": val.top5,
            "val_loss": val.loss,
            "images_per_s": trained.images_per_s,
            "epoch_time_s": epoch_time,
        }
        if loop.anytime:  # the val accuracy after each iteration count, this epoch
            record["val_accuracy_by_iterations"] = [v.accuracy for v in val_by_k]
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
        test_by_k = None
        if epoch == exp.epochs and exp.training.eval_test:
            test_by_k = _evaluate(loop, data.test_x, data.test_y)
            metrics.update(test_accuracy=test_by_k[-1].accuracy, test_top5=test_by_k[-1].top5)
        if epoch == exp.epochs and loop.anytime:
            metrics["anytime"] = _anytime_points(loop.anytime, val_by_k, test_by_k)
        report, checkpoint = _due(loop, epoch)
        if report:
            _report(loop, metrics, checkpoint=checkpoint)


def _anytime_points(
    anytime: Anytime, val: list[_Evaluation], test: list[_Evaluation] | None
) -> list[dict[str, float]]:
    """One point per iteration count: its accuracies on the final weights and its own cost."""
    points = []
    for k, cost in enumerate(anytime.costs, 1):
        point = {"iterations": k, **cost, "val_accuracy": val[k - 1].accuracy}
        point["val_top5"] = val[k - 1].top5
        if test is not None:
            point.update(test_accuracy=test[k - 1].accuracy, test_top5=test[k - 1].top5)
        points.append(point)
    return points


def _due(loop: _Loop, epoch: int) -> tuple[bool, bool]:
    """Whether this epoch reports, and whether its report carries a checkpoint.

    A report is due at the last epoch, at an epoch the scheduler judges, with a checkpoint, or
    once ``training.report_interval_s`` has passed since the last one (0: every epoch): each
    report waits for the driver to take it. A checkpoint is due only with Tune retries (a
    resumed sweep re-queues interrupted trials from scratch, so nothing else reads one), once
    ``resources.checkpoint_interval_s`` has passed since the last one (0: every epoch). Rank
    0's clock decides for every rank: reporting and saving are collective.
    """
    exp, now = loop.experiment, time.perf_counter()
    checkpoint = (
        exp.resources.max_failures > 0
        and now - loop.checkpointed_at >= exp.resources.checkpoint_interval_s
    )
    report = (
        checkpoint
        or epoch == exp.epochs
        or epoch in loop.judged_epochs
        or now - loop.reported_at >= exp.training.report_interval_s
    )
    if loop.plan.world > 1:
        import torch.distributed as dist

        flags = torch.tensor([float(report), float(checkpoint)], device=loop.engine.device)
        dist.broadcast(flags, src=0)
        report, checkpoint = bool(flags[0]), bool(flags[1])
    return report, checkpoint


def _report(loop: _Loop, metrics: dict[str, Any], *, checkpoint: bool) -> None:
    """Report an epoch, with the checkpoint a retry would resume from if ``checkpoint``."""
    phases = loop.progress.phases
    metrics["phases"] = dict(phases)  # until this report: its own time is in the next one
    metrics["reported_at"] = time.time()
    if not checkpoint:
        with timed(phases, "report"):
            loop.session.report(metrics, None)
    else:
        with tempfile.TemporaryDirectory(prefix="paretotune-ckpt-") as tmp:
            with timed(phases, "checkpoint"):
                loop.engine.save_checkpoint(tmp, tag=CHECKPOINT_TAG)  # collective; ZeRO shards
                if loop.session.rank == 0:
                    (Path(tmp) / STATE_FILE).write_text(loop.progress.to_json())
            with timed(phases, "report"):
                loop.session.report(metrics, tmp)
        loop.checkpointed_at = time.perf_counter()
    loop.reported_at = time.perf_counter()


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
        loss = _step_loss(loop, x.to(loop.dtype), y, gen)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss={loss.item()} at epoch {epoch}, step {steps}")
        optimizer_step(engine, loss, loop.clip_norm)
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
        steps += 1
    return loss_sum, seen, trained


def optimizer_step(engine: DeepSpeedEngine, loss: torch.Tensor, clip_norm: float | None) -> None:
    """Backward, then the engine's step; at an accumulation boundary, with ``clip_norm`` (the
    loop clips: ``search.engine.loop_clip_norm``), the gradients are clipped before it."""
    engine.backward(loss)
    if clip_norm is not None and engine.is_gradient_accumulation_boundary():
        torch.nn.utils.clip_grad_norm_(engine.module.parameters(), clip_norm, foreach=True)
    engine.step()


def _step_loss(loop: _Loop, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The training loss of one micro-batch. Anytime: the mean over every iteration count of
    the shared head's loss after that iteration (``all``), or the loss after a count drawn
    uniformly for this step (``sampled``, from the epoch's generator: the same on every rank)."""
    engine, smoothing = loop.engine, loop.label_smoothing
    if loop.anytime is None:
        return F.cross_entropy(engine(x).float(), y, label_smoothing=smoothing)
    if loop.anytime.loss == "sampled":
        k = int(torch.randint(1, loop.anytime.iterations + 1, (1,), generator=gen))
        return F.cross_entropy(engine(x, k).float(), y, label_smoothing=smoothing)
    every = engine(x, every_iteration=True).float()  # [T, B, classes]
    losses = [F.cross_entropy(logits, y, label_smoothing=smoothing) for logits in every]
    return torch.stack(losses).mean()


@dataclass(frozen=True)
class _Evaluation:
    loss: float
    accuracy: float  # top-1
    top5: float


@torch.no_grad()
def _evaluate(loop: _Loop, x_all: torch.Tensor, y_all: torch.Tensor) -> list[_Evaluation]:
    """Top-1, top-5 and loss over a split, sharded over the workers and summed: one
    evaluation per iteration count of an anytime trial (the last is the whole model's), else
    one."""
    engine, rank, world = loop.engine, loop.session.rank, loop.session.world_size
    engine.eval()
    device = engine.device
    counts = loop.anytime.iterations if loop.anytime else 1
    totals = torch.zeros(counts, 4, dtype=torch.float64, device=device)  # loss, top1, top5, n
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
        every = engine(x, every_iteration=True) if loop.anytime else engine(x)[None]
        for i, logits in enumerate(every.float()):  # [B, classes] per iteration count
            totals[i] += _scores(logits, y, valid)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(totals)
    return [
        _Evaluation(loss=float(t[0]) / c, accuracy=float(t[1]) / c, top5=float(t[2]) / c)
        for t, c in ((t, max(float(t[3]), 1.0)) for t in totals)
    ]


def _scores(logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Summed loss, top-1 and top-5 hits, and count over the valid rows of a batch."""
    k = min(5, logits.shape[-1])
    topk = logits.topk(k, dim=-1).indices
    loss = F.cross_entropy(logits, y, reduction="none")
    return torch.stack(
        [
            loss[valid].sum().double(),
            ((topk[:, 0] == y) & valid).sum().double(),
            ((topk == y[:, None]).any(dim=-1) & valid).sum().double(),
            valid.sum().double(),
        ]
    )
