"""One trial: build the model, measure its cost, train it through a DeepSpeed engine, report.

``train_trial`` is a Ray Tune function trainable. With ``resources.workers_per_trial == 1`` it
trains in its own process; with more it builds a Ray Train ``TorchTrainer`` (data parallel, one
DeepSpeed engine per worker, ZeRO stage from the config) and forwards the workers' reports to
Tune (Ray Train V2's supported pattern: a Tune function trainable that fits a TorchTrainer).

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
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "NonFiniteLossError",
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


# ---- pure helpers (unit-tested without Ray) ---------------------------------------------------
def select_precision(requested: str, device: torch.device) -> str:
    """``auto``: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."""
    if requested != "auto":
        if requested in ("bf16", "fp16") and device.type != "cuda":
            return "fp32"  # DeepSpeed's half-precision paths need an accelerator
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def deepspeed_config(
    *,
    micro_batch_size: int,
    grad_accum: int,
    grad_clip: float,
    zero_stage: int,
    precision: str,
) -> dict[str, Any]:
    """The DeepSpeed config for one trial.

    The optimizer and the LR schedule are the client's (``search.optim``: the same parameter
    groups and hyperparameters on CPU and GPU, DeepSpeed's fused kernels on a GPU), so the config
    holds only batch geometry, clipping, ZeRO and precision.
    """
    return {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "gradient_clipping": grad_clip,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
        "zero_optimization": {"stage": zero_stage},
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 12},
    }


def trial_seed(experiment: Any) -> int:
    """The seed a trial trains with: the experiment's (so a trial is a function of its config,
    and ``paretotune reproduce`` retrains it exactly)."""
    return int(experiment.seed) * 100_003


_STORES: list[Any] = []  # the one-process group's store, alive as long as the process


def _ensure_process_group(backend: str) -> None:
    """A one-process group on this process's own rendezvous port, created once and kept.

    The TCPStore binds port 0, so the OS hands out a free port atomically: concurrent trials on
    one node never collide on the default rendezvous port. The group outlives the trial: a
    process that trains several trials (``paretotune reproduce``, a reused Tune actor) keeps
    the group DeepSpeed cached at its first ``initialize`` (a destroyed and re-created group
    is "not registered" to it). Under Ray Train (multi-worker trials) the group exists already.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return
    store = dist.TCPStore("127.0.0.1", 0, world_size=1, is_master=True, wait_for_workers=False)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(int(store.port)),
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
    )
    dist.init_process_group(backend, store=store, rank=0, world_size=1)
    _STORES.append(store)


# ---- the session abstraction: Tune (one process) or Ray Train (a worker of many) --------------
@dataclass
class TrialSession:
    """Where a training loop reports to and restores from.

    ``report(metrics, ckpt_dir)`` is called by every rank once per epoch with that rank's own
    checkpoint directory (DeepSpeed writes per-rank ZeRO shards); rank 0 alone writes the trial
    state file into it. A report carrying ``failure_reason`` is a failure report.
    """

    report: Callable[[dict[str, Any], str | None], None]
    restore_dir: Callable[[], Any]  # context manager yielding a directory or None
    rank: int = 0
    world_size: int = 1


def _tune_session() -> TrialSession:
    from ray import tune

    def report(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        ckpt = tune.Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None
        tune.report(metrics, checkpoint=ckpt)

    return TrialSession(report=report, restore_dir=lambda: _checkpoint_dir(tune.get_checkpoint()))


class _WorkerFailure(Exception):
    """A Ray Train worker's failure report (``run_trial``'s metrics), raised, not reported.

    A failing worker cannot report: ``ray.train.report`` is a barrier over all workers, and the
    others may be blocked in a collective (the gradient all-reduce) waiting for this one, so the
    trial would hang until the process-group timeout. Raising ends this worker; Ray Train stops
    the group and ``_fit_torch_trainer`` reports ``metrics`` to Tune. ``communication`` marks a
    failure of the process group itself (a peer died): not the trial's fault, so it is retried.
    """

    def __init__(self, metrics: dict[str, Any], at: float, communication: bool) -> None:
        super().__init__(str(metrics.get("failure_reason", "worker failed")))
        self.metrics = metrics
        self.at = at
        self.communication = communication

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.metrics, self.at, self.communication))


def _is_communication_error(exc: BaseException | None) -> bool:
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("gloo", "nccl", "connection closed by peer", "connection reset"))


def _train_session() -> TrialSession:
    """A Ray Train V2 worker's session (``ray.train.get_context()`` works in V2 workers)."""
    import sys

    import ray.train

    ctx = ray.train.get_context()

    def report(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        if "failure_reason" in metrics:
            # Called from ``run_trial``'s ``except`` block: the exception is still current.
            raise _WorkerFailure(
                metrics, at=time.time(), communication=_is_communication_error(sys.exception())
            )
        # Every rank reports (each call is a barrier) and uploads its own checkpoint directory:
        # Ray Train merges them into one, so every rank's ZeRO shards are kept for a resume.
        ckpt = ray.train.Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None
        ray.train.report(metrics, checkpoint=ckpt)

    return TrialSession(
        report=report,
        restore_dir=lambda: _checkpoint_dir(ray.train.get_checkpoint()),
        rank=ctx.get_world_rank(),
        world_size=ctx.get_world_size(),
    )


@contextmanager
def _checkpoint_dir(checkpoint: Any) -> Iterator[str | None]:
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as path:
        yield str(path)


# ---- the Tune trainable ------------------------------------------------------------------------
def train_trial(config: dict[str, Any], *, experiment: Any, data: Any) -> None:
    """Ray Tune function trainable: one proposal, trained and reported epoch by epoch."""
    if experiment.resources.workers_per_trial > 1:
        _fit_torch_trainer(config, experiment=experiment, data=data)
        return
    run_trial(config, experiment=experiment, data=data, session=_tune_session())


def _fit_torch_trainer(config: dict[str, Any], *, experiment: Any, data: Any) -> None:
    """Multi-worker trial: a TorchTrainer whose workers each train one DeepSpeed engine.

    ``resources.cpus_per_trial`` / ``gpus_per_trial`` are per worker here; this trainable itself
    holds ~0.01 CPU (``tuner._fit``). Ray Train sets up the process group (gloo on CPU, nccl with
    one whole GPU per worker) and the RANK/LOCAL_RANK/WORLD_SIZE/MASTER_* variables; DeepSpeed
    adopts that group (``dist_init_required=False``), each worker trains its shard of every
    global batch, and gradients are averaged by the engines.

    Reports: every worker calls ``ray.train.report`` each epoch; ``TuneReportCallback`` forwards
    rank 0's metrics to Tune plus ``checkpoint_path``, the merged checkpoint Ray Train persisted.
    Tune itself holds no checkpoint for these trials: the Train run lives in this Tune trial's
    own directory (``<trial>/train``, same storage filesystem), and a Tune retry of the trial
    builds the same run, which Ray Train restores from its latest checkpoint.

    Failures: a worker's deterministic failure (exception, non-finite loss, OOM) is raised, Ray
    Train stops the group (no retries at this level), and its failure report goes to Tune like a
    single-worker trial's. A dead worker or a broken process group is re-raised, so Tune's
    ``FailureConfig(max_failures)`` decides whether the trial is retried.
    """
    import ray
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    res = experiment.resources
    use_gpu = res.gpus_per_trial > 0
    if use_gpu and res.gpus_per_trial != 1:
        raise ValueError(
            f"resources.gpus_per_trial={res.gpus_per_trial:g} with workers_per_trial="
            f"{res.workers_per_trial}: each data-parallel worker needs exactly one whole GPU "
            "(NCCL cannot put two ranks on one GPU; a worker drives one device); use "
            "gpus_per_trial=1, or workers_per_trial=1 to share GPUs between trials"
        )
    per_worker: dict[str, float] = {"CPU": res.cpus_per_trial}
    if use_gpu:
        per_worker["GPU"] = 1
    storage = tune.get_context().get_storage()
    trainer = TorchTrainer(
        train_loop_per_worker=_train_worker,
        # The dataset goes through the object store once, not pickled into every worker's config.
        train_loop_config={"config": config, "experiment": experiment, "data": ray.put(data)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=res.workers_per_trial, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            name="train",
            storage_path=storage.trial_fs_path,
            storage_filesystem=storage.storage_filesystem,
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            # ray.train's static types are V1's; V2's RunConfig takes this UserCallback.
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:
        failure = _deterministic_failure(exc)
        if failure is None:
            raise
        tune.report(failure.metrics)


def _deterministic_failure(error: BaseException) -> _WorkerFailure | None:
    """The first worker failure that is the trial's own (None: infrastructure, retry)."""
    failures: list[_WorkerFailure] = []
    for err in getattr(error, "worker_failures", {}).values():
        # Ray Train wraps a worker's exception (UserExceptionWithTraceback._base_exc).
        while err is not None and not isinstance(err, _WorkerFailure):
            err = getattr(err, "_base_exc", None) or err.__cause__
        if not isinstance(err, _WorkerFailure) or err.communication:
            return None  # a worker died or its peers lost it: not deterministic
        failures.append(err)
    return min(failures, key=lambda f: f.at, default=None)


def _train_worker(loop_config: dict[str, Any]) -> None:
    import ray

    data = loop_config["data"]
    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)
    run_trial(
        loop_config["config"],
        experiment=loop_config["experiment"],
        data=data,
        session=_train_session(),
    )


def run_trial(config: dict[str, Any], *, experiment: Any, data: Any, session: TrialSession) -> None:
    """Train; turn a deterministic failure into a final report instead of a crash.

    A failure report carries the compute the trial used (``train_time_s``: wall time since it
    started) and whatever it measured before failing.
    """
    state: dict[str, Any] = {"epoch": 0, "history": [], "elapsed_before_s": 0.0}
    started = time.perf_counter()
    try:
        _train(config, experiment=experiment, data=data, session=session, state=state)
    except Exception as exc:  # recorded as a failed trial; the sweep goes on
        reason = _failure_reason(exc)
        last = state["history"][-1] if state["history"] else {}
        metrics = {
            # Every metric the searcher and scheduler expect is present (Tune checks it).
            **{key: math.nan for key in ("flops", "params", "latency_ms")},
            **state.get("cost", {}),
            "failure_reason": reason,
            "val_accuracy": last.get("val_accuracy", 0.0),
            "epoch": state["epoch"],
            "history": state["history"],
            "train_time_s": state["elapsed_before_s"] + time.perf_counter() - started,
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


def _quiet_deepspeed() -> None:
    import logging

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)


def _train(
    config: dict[str, Any],
    *,
    experiment: Any,
    data: Any,
    session: TrialSession,
    state: dict[str, Any],
) -> None:
    import deepspeed

    import models
    from models.cost import measure
    from search.data import Augmenter, batches
    from search.optim import WarmupCosine, build_optimizer
    from spaces import split_proposal

    _quiet_deepspeed()
    family, model_hp, train_hp = split_proposal(config)
    training = experiment.training
    threads = training.num_threads or max(1, int(experiment.resources.cpus_per_trial))
    torch.set_num_threads(threads)
    device = _trial_device()
    seed = trial_seed(experiment)
    torch.manual_seed(seed)

    model = models.build_model(
        family,
        num_classes=data.num_classes,
        image_size=data.image_size,
        in_channels=data.in_channels,
        **model_hp,
    ).to(device)
    cost = measure(model, (1, data.in_channels, data.image_size, data.image_size))
    if session.world_size > 1:
        torch.manual_seed(seed + 1_000_003 * session.rank)  # same init, own dropout masks
    cost_metrics = state["cost"] = {
        "params": int(cost.params),
        "flops": int(cost.flops),
        "latency_ms": float(cost.latency_ms_b1) if cost.latency_ms_b1 is not None else math.nan,
        "latency_ms_b64": float(cost.latency_ms_b64)
        if cost.latency_ms_b64 is not None
        else math.nan,
    }

    # Batch geometry: the global batch is split over workers, then into micro-batches.
    batch_size = int(train_hp["batch_size"])
    world = session.world_size
    per_rank = max(1, batch_size // world)
    micro = per_rank
    if training.max_micro_batch_size:
        micro = min(per_rank, training.max_micro_batch_size)
        while per_rank % micro:
            micro -= 1
    grad_accum = per_rank // micro
    n_train = len(data.train_y)
    micro_steps_per_epoch = (n_train // world) // micro
    if micro_steps_per_epoch < grad_accum:
        raise ValueError(
            f"batch_size={batch_size}: larger than the training set ({n_train} images)"
        )
    steps_per_epoch = micro_steps_per_epoch // grad_accum
    precision = select_precision(training.precision, device)
    fused = device.type == "cuda"
    ds_config = deepspeed_config(
        micro_batch_size=micro,
        grad_accum=grad_accum,
        grad_clip=training.grad_clip,
        zero_stage=training.zero_stage,
        precision=precision,
    )
    optimizer = build_optimizer(
        model,
        str(train_hp["optimizer"]),
        lr=float(train_hp["lr"]),
        weight_decay=float(train_hp["weight_decay"]),
        fused=fused,
    )
    schedule = WarmupCosine(
        warmup_steps=steps_per_epoch * int(train_hp.get("warmup_epochs", 0)),
        total_steps=steps_per_epoch * experiment.epochs,
    )
    backend = "nccl" if device.type == "cuda" else "gloo"
    _ensure_process_group(backend)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule.scheduler,
        config=ds_config,
        dist_init_required=False,
    )
    try:
        _epochs(
            engine,
            data=data,
            experiment=experiment,
            train_hp=train_hp,
            session=session,
            state=state,
            cost_metrics=cost_metrics,
            micro=micro,
            micro_steps_per_epoch=micro_steps_per_epoch,
            seed=seed,
            augmenter=Augmenter(data, engine.device, policy=experiment.augment_policy()),
            batches=batches,
        )
    finally:
        engine.destroy() if hasattr(engine, "destroy") else None
        del engine


def _trial_device() -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0")) % max(torch.cuda.device_count(), 1)
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _epochs(
    engine: Any,
    *,
    data: Any,
    experiment: Any,
    train_hp: dict[str, Any],
    session: TrialSession,
    state: dict[str, Any],
    cost_metrics: dict[str, Any],
    micro: int,
    micro_steps_per_epoch: int,
    seed: int,
    augmenter: Any,
    batches: Any,
) -> None:
    start_epoch = 0
    with session.restore_dir() as ckpt_dir:
        if ckpt_dir is not None and (Path(ckpt_dir) / STATE_FILE).is_file():
            engine.load_checkpoint(ckpt_dir, tag=CHECKPOINT_TAG)
            state.update(json.loads((Path(ckpt_dir) / STATE_FILE).read_text()))
            start_epoch = int(state["epoch"])
            state["elapsed_before_s"] = sum(h["epoch_time_s"] for h in state["history"])
    device = engine.device
    dtype = next(engine.module.parameters()).dtype
    label_smoothing = float(train_hp.get("label_smoothing", 0.0))
    rank, world = session.rank, session.world_size
    n_train = len(data.train_y)
    for epoch in range(start_epoch + 1, experiment.epochs + 1):
        t0 = time.perf_counter()
        engine.train()
        # The same permutation on every rank (rank r takes every world-th image of each global
        # batch: disjoint shards); each rank draws its own augmentations.
        gen = torch.Generator().manual_seed(seed + epoch)
        aug_gen = torch.Generator(device=device).manual_seed(seed + 7919 * epoch + 104_729 * rank)
        order = batches(
            n_train,
            batch_size=micro * world,
            shuffle=True,
            generator=gen,
            drop_last=True,
        )
        loss_sum, seen, steps = 0.0, 0, 0
        trained = torch.zeros(n_train, dtype=torch.float64)  # times each image was trained on
        for idx in order:
            if steps >= micro_steps_per_epoch:
                break
            idx = idx[rank::world].cpu()
            trained.index_add_(0, idx, torch.ones(len(idx), dtype=torch.float64))
            x = augmenter.augment(data.train_x[idx].to(device, non_blocking=True), aug_gen)
            y = data.train_y[idx].to(device, non_blocking=True)
            logits = engine(x.to(dtype))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"loss={loss.item()} at epoch {epoch}, step {steps}")
            engine.backward(loss)
            engine.step()
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
            steps += 1
        train_time = time.perf_counter() - t0
        # Over all ranks: loss and images summed, the slowest rank's time, the shard coverage.
        sums = torch.cat([torch.tensor([loss_sum, float(seen)], dtype=torch.float64), trained])
        sums = sums.to(device)
        slowest = torch.tensor([train_time], dtype=torch.float64, device=device)
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(sums)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        loss_total, seen_total = float(sums[0]), int(sums[1])
        distinct = int((sums[2:] > 0).sum())
        val = _evaluate(engine, data.val_x, data.val_y, augmenter, session, dtype)
        epoch_time = time.perf_counter() - t0
        state["epoch"] = epoch
        record = {
            "epoch": epoch,
            "train_loss": _all_mean(loss_total, seen_total),
            "val_accuracy": val["accuracy"],
            "val_top5": val["top5"],
            "val_loss": val["loss"],
            "images_per_s": seen_total / max(float(slowest[0]), 1e-9),
            "epoch_time_s": epoch_time,
        }
        state["history"].append(record)
        metrics = {
            **record,
            **cost_metrics,
            "train_time_s": sum(h["epoch_time_s"] for h in state["history"]),
            "epochs_planned": experiment.epochs,
            "history": list(state["history"]),
            "workers": world,
            "train_images": seen_total,  # this epoch, all ranks
            "train_images_distinct": distinct,  # == train_images: the ranks' shards are disjoint
        }
        # The weights that count are the last epoch's (the end of the schedule): the objective is
        # this epoch's val accuracy, and the test accuracy is measured on these same weights.
        if epoch == experiment.epochs and experiment.training.eval_test:
            test = _evaluate(engine, data.test_x, data.test_y, augmenter, session, dtype)
            metrics.update(test_accuracy=test["accuracy"], test_top5=test["top5"])
        if experiment.resources.max_failures == 0:
            # Only a Tune retry reads a trial checkpoint (a resumed sweep re-queues interrupted
            # trials from scratch): without retries, saving one each epoch is pure overhead.
            session.report(metrics, None)
            continue
        with tempfile.TemporaryDirectory(prefix="paretotune-ckpt-") as tmp:
            engine.save_checkpoint(tmp, tag=CHECKPOINT_TAG)  # collective; per-rank ZeRO shards
            if rank == 0:
                (Path(tmp) / STATE_FILE).write_text(json.dumps(state))
            session.report(metrics, tmp)


@torch.no_grad()
def _evaluate(
    engine: Any,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    augmenter: Any,
    session: TrialSession,
    dtype: torch.dtype,
) -> dict[str, float]:
    """Top-1, top-5 and loss over a split, sharded over the workers and summed."""
    engine.eval()
    device = engine.device
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, count
    n, world = len(y_all), session.world_size
    # Rank r takes positions r, r + world, ...; every rank runs the same number of forward
    # passes (ZeRO-3 gathers parameters collectively in forward): positions past the end wrap
    # around and are masked out.
    per_rank = -(-n // world)
    positions = torch.arange(per_rank) * world + session.rank
    for start in range(0, per_rank, 256):
        pos = positions[start : start + 256]
        valid = (pos < n).to(device)
        idx = pos % max(n, 1)
        x = augmenter.normalize(x_all[idx].to(device)).to(dtype)
        y = y_all[idx].to(device)
        logits = engine(x).float()
        k = min(5, logits.shape[-1])
        topk = logits.topk(k, dim=-1).indices
        loss = F.cross_entropy(logits, y, reduction="none")
        totals[0] += loss[valid].sum().double()
        totals[1] += ((topk[:, 0] == y) & valid).sum()
        totals[2] += ((topk == y[:, None]).any(dim=-1) & valid).sum()
        totals[3] += valid.sum()
    if session.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(totals)
    count = max(float(totals[3]), 1.0)
    return {
        "loss": float(totals[0]) / count,
        "accuracy": float(totals[1]) / count,
        "top5": float(totals[2]) / count,
    }


def _all_mean(total: float, count: int) -> float:
    return total / max(count, 1)
