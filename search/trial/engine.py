"""A trial's DeepSpeed engine: its batch plan, its config, its process group, building it, and
one optimizer step through it (gradients clipped by the loop or by DeepSpeed).

The optimizer and the LR schedule are the client's (``search.trial.optim``: the same parameter
groups and hyperparameters on CPU and GPU, DeepSpeed's fused kernels on a GPU), so the DeepSpeed
config holds only batch geometry, clipping, ZeRO and precision.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine
    from torch.distributed import TCPStore

    from search.experiment import Experiment

__all__ = [
    "BatchPlan",
    "build_engine",
    "deepspeed_config",
    "loop_clip_norm",
    "optimizer_step",
    "plan_batches",
    "select_precision",
    "trial_device",
]


@dataclass(frozen=True)
class BatchPlan:
    """How a trial's global batch is trained: split over ``world`` workers, each worker's share
    into ``grad_accum`` micro-batches of ``micro_batch_size`` (one optimizer step per global
    batch)."""

    batch_size: int
    world: int
    micro_batch_size: int
    grad_accum: int
    micro_steps_per_epoch: int  # per worker: micro-batches of its shard of the training set
    steps_per_epoch: int  # optimizer steps

    @property
    def micro_batch_all_ranks(self) -> int:
        """Images in one micro-step over all workers (each takes every ``world``-th of them)."""
        return self.micro_batch_size * self.world


def plan_batches(
    batch_size: int, *, world: int, n_train: int, max_micro_batch_size: int | None
) -> BatchPlan:
    """The batch plan for ``batch_size`` over ``world`` workers and ``n_train`` images.

    A worker's share is ``batch_size // world`` (at least 1); with ``max_micro_batch_size`` it
    is trained as the largest micro-batch up to that size which divides it. A ``ValueError`` if
    one optimizer step needs more images than the training set has.
    """
    per_rank = max(1, batch_size // world)
    micro = per_rank
    if max_micro_batch_size:
        micro = min(per_rank, max_micro_batch_size)
        while per_rank % micro:
            micro -= 1
    grad_accum = per_rank // micro
    micro_steps_per_epoch = (n_train // world) // micro
    if micro_steps_per_epoch < grad_accum:
        raise ValueError(
            f"batch_size={batch_size}: larger than the training set ({n_train} images)"
        )
    return BatchPlan(
        batch_size=batch_size,
        world=world,
        micro_batch_size=micro,
        grad_accum=grad_accum,
        micro_steps_per_epoch=micro_steps_per_epoch,
        steps_per_epoch=micro_steps_per_epoch // grad_accum,
    )


def select_precision(requested: str, device: torch.device) -> str:
    """The precision a trial trains in on ``device``.

    ``auto``: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU. An explicit
    ``bf16`` is bf16 on every device: DeepSpeed's bf16 engine runs on a CPU too (its optimizer
    wrappers, ZeRO partitions and clipping are a GPU trial's; docs/gpu.md). ``fp16`` needs a
    GPU (a ``ValueError`` on a CPU, which has no fp16 engine).
    """
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ValueError(
            "training.precision=fp16: needs a GPU, and this trial trains on the CPU; "
            "allowed there: auto, fp32, bf16"
        )
    return requested


def deepspeed_config(
    *,
    micro_batch_size: int,
    grad_accum: int,
    grad_clip: float,
    zero_stage: int,
    precision: str,
) -> dict[str, Any]:
    """The DeepSpeed config for one trial: batch geometry, clipping, ZeRO and precision (the
    optimizer and schedule are the client's)."""
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


def trial_device(gpu_ids: Sequence[str], *, setting: str) -> torch.device:
    """Where this worker trains (``training.device``): ``cpu``, the CPU; ``auto``, its GPU
    (``LOCAL_RANK``, made current) if torch sees one, else the CPU. A ``RuntimeError`` if Ray
    gave it GPUs (``gpu_ids``) that torch does not see: a misconfigured GPU node never trains
    on its CPU unnoticed."""
    if setting == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0")) % max(torch.cuda.device_count(), 1)
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    if gpu_ids:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        raise RuntimeError(
            f"Ray gave this trial GPU {','.join(gpu_ids)} (CUDA_VISIBLE_DEVICES={visible!r}) "
            f"but torch {torch.__version__} sees no CUDA device: fix the node's driver or "
            "torch build, or set training.device=cpu to train on the CPU"
        )
    return torch.device("cpu")


def build_engine(
    model: torch.nn.Module,
    *,
    plan: BatchPlan,
    train_hp: Mapping[str, Any],
    experiment: Experiment,
    device: torch.device,
) -> DeepSpeedEngine:
    """``model`` in a DeepSpeed engine with the client optimizer and warmup-cosine schedule of
    ``train_hp`` (``optimizer``, ``lr``, ``weight_decay``, ``warmup_epochs``)."""
    import deepspeed

    from search.trial.optim import WarmupCosine, build_optimizer

    _quiet_deepspeed()
    _use_this_environments_ninja()
    training = experiment.training
    single = _single_fp32_process(plan, experiment, device)  # the loop clips (loop_clip_norm)
    ds_config = deepspeed_config(
        micro_batch_size=plan.micro_batch_size,
        grad_accum=plan.grad_accum,
        grad_clip=0.0 if single else training.grad_clip,
        zero_stage=training.zero_stage,
        precision=select_precision(training.precision, device),
    )
    optimizer = build_optimizer(
        model,
        str(train_hp["optimizer"]),
        lr=float(train_hp["lr"]),
        weight_decay=float(train_hp["weight_decay"]),
        fused=device.type == "cuda",
    )
    schedule = WarmupCosine(
        warmup_steps=plan.steps_per_epoch * int(train_hp.get("warmup_epochs", 0)),
        total_steps=plan.steps_per_epoch * experiment.epochs,
    )
    _ensure_process_group("nccl" if device.type == "cuda" else "gloo")
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule.scheduler,
        config=ds_config,
        dist_init_required=False,
    )
    if single:
        engine.enable_backward_allreduce = False  # one process: nothing to reduce
    _undo_initial_step(engine)
    _lamb_per_tensor(engine)
    return engine


def _undo_initial_step(engine: DeepSpeedEngine) -> None:
    """Undo the step DeepSpeed's half-precision wrappers without ZeRO take when built.

    ``FP16_UnfusedOptimizer`` (bf16 at ZeRO 0: a GPU trial's default) and ``FP16_Optimizer``
    (fp16 with FusedAdam) make the client optimizer's state by stepping it once with zero
    gradients. Adam then counts that step (its first real update is ~0.74x), and decoupled
    weight decay shrinks the fp32 master weights once at the full lr (LAMB's by its trust
    ratio: ``lr * 10 * wd``, 2.5% of every matrix at lr 0.05). ZeRO and fp32 take no such step,
    so a bf16 trial at ZeRO 0 trained differently from ZeRO 1/2 and fp32. Undone here: a fresh
    state (and FusedAdam's per-group step count), and the masters copied back from the model's
    half-precision weights, of which they were exact fp32 copies.
    """
    from deepspeed.runtime.fp16.fused_optimizer import FP16_Optimizer
    from deepspeed.runtime.fp16.unfused_optimizer import FP16_UnfusedOptimizer

    wrapper, client = engine.optimizer, engine.basic_optimizer
    if isinstance(wrapper, FP16_UnfusedOptimizer):
        for masters, weights in zip(wrapper.fp32_groups, wrapper.fp16_groups, strict=True):
            for master, weight in zip(masters, weights, strict=True):
                master.data.copy_(weight.data)
    elif isinstance(wrapper, FP16_Optimizer):
        for master, flat in zip(wrapper.fp32_groups_flat, wrapper.fp16_groups_flat, strict=True):
            master.data.copy_(flat.data)
    else:
        return
    client.state.clear()
    for group in client.param_groups:
        group.pop("step", None)


def _lamb_per_tensor(engine: DeepSpeedEngine) -> None:
    """Under ZeRO 1/2 the optimizer sees one flat fp32 partition per group: tell LAMB where
    each tensor lies in it (``Lamb.track_flat``), so its trust ratio stays per tensor, summed
    over the ranks' partitions. ZeRO 3 with LAMB is refused when the experiment loads."""
    import torch.distributed as dist

    from search.trial.optim import Lamb, flat_segments

    lamb, stage = engine.basic_optimizer, engine.zero_optimization_stage()
    if not isinstance(lamb, Lamb) or stage not in (1, 2):
        return
    zero = engine.optimizer  # DeepSpeedZeroOptimizer: its i-th group is lamb's i-th
    for i, flat in enumerate(zero.single_partition_of_fp32_groups):
        group = zero.real_dp_process_group[i]
        size = zero.partition_size[i]
        ranks = dist.get_world_size(group=group)

        def reduce(sums: torch.Tensor, group: Any = group) -> None:
            dist.all_reduce(sums, group=group)

        segments = flat_segments(
            zero.round_robin_bit16_offsets[i],
            [t.numel() for t in zero.round_robin_bit16_meta[i]],
            start=dist.get_rank(group=group) * size,
            length=flat.numel(),
        )
        count = len(zero.round_robin_bit16_offsets[i])
        lamb.track_flat(flat, segments, count=count, reduce=reduce if ranks > 1 else None)


def loop_clip_norm(plan: BatchPlan, experiment: Experiment, device: torch.device) -> float | None:
    """The norm the training loop clips gradients to, or None: DeepSpeed clips (or nothing does).

    In one fp32 process without ZeRO the gradients are this process's own and unscaled, so the
    loop clips them with torch's foreach ``clip_grad_norm_`` (the same norm and scaling) and
    the engine skips its gradient all-reduce: DeepSpeed's clipping and all-reduce are
    per-parameter loops with collectives over a group of one, ~1.3 ms a step on the default
    sweep's models (docs/benchmarks.md). Elsewhere (several ranks, half precision, ZeRO: the
    gradients are reduced, scaled or partitioned) DeepSpeed does both.
    """
    clip = experiment.training.grad_clip
    return clip if clip > 0 and _single_fp32_process(plan, experiment, device) else None


def optimizer_step(engine: DeepSpeedEngine, loss: torch.Tensor, clip_norm: float | None) -> None:
    """Backward, then the engine's step; at an accumulation boundary, with ``clip_norm`` (the
    loop clips: :func:`loop_clip_norm`), the gradients are clipped before it."""
    engine.backward(loss)
    if clip_norm is not None and engine.is_gradient_accumulation_boundary():
        torch.nn.utils.clip_grad_norm_(engine.module.parameters(), clip_norm, foreach=True)
    engine.step()


def _single_fp32_process(plan: BatchPlan, experiment: Experiment, device: torch.device) -> bool:
    training = experiment.training
    return (
        plan.world == 1
        and training.zero_stage == 0
        and select_precision(training.precision, device) == "fp32"
    )


def _use_this_environments_ninja() -> None:
    """Put the ninja installed beside this interpreter (the venv's) first on PATH.

    DeepSpeed JIT-builds an op at its first ``initialize`` and caches it; two ninja versions
    (the venv's and the system's) do not read each other's build log, so processes started
    with different PATHs (a ``ray start`` node, a local Ray instance) rebuilt it in turn,
    ~27 s each time (docs/benchmarks.md).
    """
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if (Path(here) / "ninja").is_file() and path[:1] != [here]:
        os.environ["PATH"] = os.pathsep.join([here, *(p for p in path if p != here)])


def _quiet_deepspeed() -> None:
    import logging

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)


_STORES: list[TCPStore] = []  # the one-process group's store, alive as long as the process


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
