"""One trial's training loop: build the model, measure its cost, train it through a DeepSpeed
engine epoch by epoch, evaluate, report.

``run_trial`` is the loop every trial runs, in a Ray Tune trial, in each Ray Train worker of a
multi-worker trial (``search.trial.trainable``: ``train_trial``, the Tune trainable), or
in-process (``paretotune reproduce``, the tabular benchmark). It reports through a
:class:`~search.trial.sessions.TrialSession`; the engine, its batch plan and its config come
from ``search.trial.engine``, the model and its cost from ``search.trial.model``, the
evaluation from ``search.trial.evaluate``, the checkpoint's state from ``search.trial.state``.

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

import contextlib
import gc
import math
import os
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from search.data import Augmenter, batches
from search.experiment.rungs import judged_epochs
from search.trial.engine import (
    BatchPlan,
    build_engine,
    loop_clip_norm,
    optimizer_step,
    plan_batches,
    trial_device,
)
from search.trial.evaluate import Evaluation, anytime_points, evaluate, mean_evaluations
from search.trial.model import Anytime, build_model, measure_cost, plan_anytime
from search.trial.state import TrialProgress, restore_checkpoint, save_checkpoint
from search.trial.timing import timed

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

    from search.data import DatasetSplits
    from search.experiment import Experiment
    from search.trial.sessions import TrialSession

__all__ = ["NonFiniteLossError", "run_trial", "trial_seed"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


#: How far apart the seeds of a trial's replicates are.
_REPLICATE_STRIDE = 7_777_781


def trial_seed(experiment: Experiment, replicate: int = 0) -> int:
    """The seed a trial's replicate trains with: a function of the experiment's seed and the
    replicate's index (so a trial is a function of its config, and ``paretotune reproduce``
    retrains it exactly); replicate 0 is the single-seed trial's."""
    return int(experiment.seed) * 100_003 + _REPLICATE_STRIDE * replicate


def run_trial(
    config: dict[str, Any],
    *,
    experiment: Experiment,
    data: DatasetSplits,
    session: TrialSession,
    replicates: Sequence[int] | None = None,
) -> None:
    """Train; turn a deterministic failure into a final report instead of a crash.
    ``replicates``: the seeds' indices to train (default: all ``experiment.replicates``; one
    index retrains that seed alone, as ``paretotune reproduce --seed`` does).

    A failure report carries the compute the trial used (``train_time_s``: wall time since it
    started) and whatever it measured before failing.
    """
    progress = TrialProgress(phases={"entered_at": time.time()})
    started = time.perf_counter()
    _freeze_long_lived_objects()
    try:
        seeds = list(range(experiment.replicates)) if replicates is None else list(replicates)
        _train(
            config,
            experiment=experiment,
            data=data,
            session=session,
            progress=progress,
            replicates=seeds,
        )
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
    placement: dict[str, str] = field(default_factory=dict)  # where it trains (_placement)
    clip_norm: float | None = None  # the loop clips gradients (else DeepSpeed: loop_clip_norm)
    # With several replicates: this one's own random state (dropout draws from torch's global
    # generator), swapped in for its epochs (_own_random_state); None for a single seed.
    random_state: list[torch.Tensor] | None = None
    checkpointed_at: float = field(default_factory=time.perf_counter)  # or the loop's start
    reported_at: float = field(default_factory=time.perf_counter)  # or the loop's start


def _train(
    config: dict[str, Any],
    *,
    experiment: Experiment,
    data: DatasetSplits,
    session: TrialSession,
    progress: TrialProgress,
    replicates: list[int],
) -> None:
    """Build each replicate's model (the first's cost measured) and engine, then train them
    epoch by epoch."""
    from spaces import split_proposal

    family, model_hp, train_hp = split_proposal(config)
    training = experiment.training
    torch.set_num_threads(training.num_threads or max(1, int(experiment.resources.cpus_per_trial)))
    device = trial_device(session.gpu_ids, setting=training.device)
    engines: list[DeepSpeedEngine] = []
    replicas: list[_Loop] = []
    anytime: Anytime | None = None
    try:
        for replicate in replicates:
            seed = trial_seed(experiment, replicate)
            torch.manual_seed(seed)
            with timed(progress.phases, "build"):
                model = build_model(family, model_hp, data, device)
            if replicate == replicates[0]:  # one architecture, so one cost
                # measured without touching the random state, so each seed trains the same
                # whether it trains alone or beside others
                gpus = [device] if device.type == "cuda" else []
                with timed(progress.phases, "cost"), torch.random.fork_rng(devices=gpus):
                    progress.cost = measure_cost(model, data)
                    anytime = plan_anytime(family, model, data, experiment)
            # after the cost: a batch the data cannot fill fails with its cost measured
            plan = plan_batches(
                int(train_hp["batch_size"]),
                world=session.world_size,
                n_train=len(data.train_y),
                max_micro_batch_size=training.max_micro_batch_size,
            )
            if session.world_size > 1:
                torch.manual_seed(seed + 1_000_003 * session.rank)  # same init, own dropout
            with timed(progress.phases, "engine"):
                engine = build_engine(
                    model, plan=plan, train_hp=train_hp, experiment=experiment, device=device
                )
            engines.append(engine)
            own_state = _random_state(device) if len(replicates) > 1 else None
            replicas.append(
                _Loop(
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
                    placement=_placement(engine, session),
                    random_state=own_state,
                )
            )
        restore_checkpoint(engines, progress, session)
        _epochs(replicas)
    finally:
        for engine in engines:
            if hasattr(engine, "destroy"):
                engine.destroy()


def _placement(engine: DeepSpeedEngine, session: TrialSession) -> dict[str, str]:
    """Where this rank trains, as its reports say: the device, its precision, the GPUs Ray gave
    it and the ``CUDA_VISIBLE_DEVICES`` it sees (docs/gpu.md)."""
    return {
        "device": str(engine.device),
        "precision": str(next(engine.module.parameters()).dtype).removeprefix("torch."),
        "gpu_ids": ",".join(session.gpu_ids),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def _epochs(replicas: list[_Loop]) -> None:
    """Train every replicate one epoch, evaluate each, record and report their mean (and, with
    several, each seed's values): the seeds advance together, so a rung sees all of them."""
    lead = replicas[0]
    exp, data, progress = lead.experiment, lead.data, lead.progress
    seeded = len(replicas) > 1
    for epoch in range(progress.epoch + 1, exp.epochs + 1):
        t0 = time.perf_counter()
        trained: list[_EpochTrained] = []
        val_runs: list[list[Evaluation]] = []
        for loop in replicas:
            with _own_random_state(loop):
                trained.append(_train_epoch(loop, epoch))
            val_runs.append(_evaluate(loop, data.val_x, data.val_y))
        val_by_k = mean_evaluations(val_runs)
        val = val_by_k[-1]
        epoch_time = time.perf_counter() - t0  # every replicate's: the trial's compute
        progress.epoch = epoch
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": _mean(t.loss for t in trained),
            "val_accuracy": val.accuracy,
            "val_top5": val.top5,
            "val_loss": val.loss,
            "images_per_s": _mean(t.images_per_s for t in trained),
            "epoch_time_s": epoch_time,
        }
        if seeded:  # each seed's curve
            record["train_loss_seeds"] = [t.loss for t in trained]
            record["val_accuracy_seeds"] = [run[-1].accuracy for run in val_runs]
        if lead.anytime:  # the val accuracy after each iteration count, this epoch
            record["val_accuracy_by_iterations"] = [v.accuracy for v in val_by_k]
        progress.history.append(record)
        metrics = {
            **record,
            **progress.cost,
            "train_time_s": progress.train_time_s(),
            "epochs_planned": exp.epochs,
            "val_images": len(data.val_y),
            "replicates": len(replicas),
            "history": list(progress.history),
            "workers": lead.plan.world,
            "train_images": trained[0].images,  # this epoch, one replicate, all ranks
            "train_images_distinct": trained[0].distinct,  # == train_images: disjoint shards
            **lead.placement,
        }
        # The weights that count are the last epoch's (the end of the schedule): the objective is
        # this epoch's val accuracy, and the test accuracy is measured on these same weights.
        test_by_k = test_runs = None
        if epoch == exp.epochs and exp.training.eval_test:
            test_runs = [_evaluate(loop, data.test_x, data.test_y) for loop in replicas]
            test_by_k = mean_evaluations(test_runs)
            metrics.update(
                test_accuracy=test_by_k[-1].accuracy,
                test_top5=test_by_k[-1].top5,
                test_images=len(data.test_y),
            )
            if seeded:
                metrics["test_accuracy_seeds"] = [run[-1].accuracy for run in test_runs]
        if epoch == exp.epochs and lead.anytime:
            metrics["anytime"] = anytime_points(
                lead.anytime,
                val_by_k,
                test_by_k,
                val_runs=val_runs if seeded else None,
                test_runs=test_runs if seeded else None,
            )
        report, checkpoint = _due(lead, epoch)
        if report:
            _report(replicas, metrics, checkpoint=checkpoint)


def _random_state(device: torch.device) -> list[torch.Tensor]:
    """torch's global random state on the CPU, and on ``device`` when it is a GPU."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


@contextlib.contextmanager
def _own_random_state(loop: _Loop) -> Iterator[None]:
    """Train ``loop``'s replicate on its own random state (kept between its epochs), so each
    seed's dropout is the one it would draw trained alone; a single seed trains as it is."""
    if loop.random_state is None:
        yield
        return
    device = loop.engine.device
    torch.set_rng_state(loop.random_state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(loop.random_state[1], device)
    try:
        yield
    finally:
        loop.random_state = _random_state(device)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


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


def _report(replicas: list[_Loop], metrics: dict[str, Any], *, checkpoint: bool) -> None:
    """Report an epoch, with the checkpoint a retry would resume from if ``checkpoint``
    (every replicate's engine)."""
    loop = replicas[0]
    phases = loop.progress.phases
    metrics["phases"] = dict(phases)  # until this report: its own time is in the next one
    metrics["reported_at"] = time.time()
    if not checkpoint:
        with timed(phases, "report"):
            loop.session.report(metrics, None)
    else:
        with tempfile.TemporaryDirectory(prefix="paretotune-ckpt-") as tmp:
            with timed(phases, "checkpoint"):
                engines = [r.engine for r in replicas]
                save_checkpoint(engines, tmp, loop.progress, rank=loop.session.rank)
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


def _evaluate(loop: _Loop, x_all: torch.Tensor, y_all: torch.Tensor) -> list[Evaluation]:
    """The trial's model evaluated on a split (one evaluation per anytime iteration count)."""
    return evaluate(
        loop.engine,
        x_all,
        y_all,
        augmenter=loop.augmenter,
        dtype=loop.dtype,
        session=loop.session,
        anytime=loop.anytime,
    )
