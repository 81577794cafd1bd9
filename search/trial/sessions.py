"""Where a trial reports to and restores from: :class:`TrialSession`, and its Ray adapters.

``tune_session()`` reports to Ray Tune (a trial in one process); ``train_session()`` to Ray
Train V2 (one worker of a multi-worker trial), where a failure report is raised as a
:class:`WorkerFailure` instead. The training loop (``search.trial.loop``) knows only
:class:`TrialSession`; every Ray import is here, inside the functions that need it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.train import Checkpoint

__all__ = ["TrialSession", "WorkerFailure", "train_session", "tune_session"]


@dataclass
class TrialSession:
    """Where a training loop reports to and restores from.

    ``report(metrics, ckpt_dir)`` is called by every rank once per epoch with that rank's own
    checkpoint directory (DeepSpeed writes per-rank ZeRO shards); rank 0 alone writes the trial
    state file into it. A report carrying ``failure_reason`` is a failure report.
    ``restore_dir()`` is a context manager yielding the directory to resume from, or None.
    ``gpu_ids``: the GPUs Ray gave this process (``ray.get_gpu_ids()``; none in process).
    """

    report: Callable[[dict[str, Any], str | None], None]
    restore_dir: Callable[[], AbstractContextManager[str | None]]
    rank: int = 0
    world_size: int = 1
    gpu_ids: tuple[str, ...] = ()


def tune_session() -> TrialSession:
    """A Ray Tune trial's session (one process: rank 0 of 1)."""
    import ray
    from ray import tune

    def report(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        ckpt = tune.Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None
        tune.report(metrics, checkpoint=ckpt)

    return TrialSession(
        report=report,
        restore_dir=lambda: _checkpoint_dir(tune.get_checkpoint()),
        gpu_ids=tuple(str(i) for i in ray.get_gpu_ids()),
    )


@contextmanager
def _checkpoint_dir(checkpoint: Checkpoint | None) -> Iterator[str | None]:
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as path:
        yield str(path)


def train_session() -> TrialSession:
    """A Ray Train V2 worker's session (``ray.train.get_context()`` works in V2 workers)."""
    import sys

    import ray
    import ray.train

    ctx = ray.train.get_context()

    def report(metrics: dict[str, Any], ckpt_dir: str | None) -> None:
        if "failure_reason" in metrics:
            # Called from ``run_trial``'s ``except`` block: the exception is still current.
            raise WorkerFailure(
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
        gpu_ids=tuple(str(i) for i in ray.get_gpu_ids()),
    )


class WorkerFailure(Exception):
    """A Ray Train worker's failure report (``run_trial``'s metrics), raised, not reported.

    A failing worker cannot report: ``ray.train.report`` is a barrier over all workers, and the
    others may be blocked in a collective (the gradient all-reduce) waiting for this one, so the
    trial would hang until the process-group timeout. Raising ends this worker; Ray Train stops
    the group and the trainable (``search.trial.trainable``) reports ``metrics`` to Tune.
    ``communication`` marks a failure of the process group itself (a peer died): not the
    trial's fault, so it is retried.
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
