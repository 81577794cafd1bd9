"""What a trial has done so far, and the checkpoint it is saved in and restored from.

A checkpoint is a directory: the DeepSpeed engine's own (tag ``CHECKPOINT_TAG``: every rank
writes its ZeRO shards) plus ``STATE_FILE``, the trial's :class:`TrialProgress` as JSON, written
by rank 0. A trial restarted by Tune continues after the epochs it holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

    from search.trial.sessions import TrialSession

__all__ = [
    "CHECKPOINT_TAG",
    "STATE_FILE",
    "TrialProgress",
    "replicate_tag",
    "restore_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_TAG = "last"
STATE_FILE = "trial_state.json"


@dataclass
class TrialProgress:
    """What a trial has done so far: saved with each checkpoint (``STATE_FILE``, JSON), and
    what a failure report carries."""

    epoch: int = 0  # the last epoch trained
    history: list[dict[str, Any]] = field(default_factory=list)  # an epoch's record each
    elapsed_before_s: float = 0.0  # the training time of the epochs restored from a checkpoint
    cost: dict[str, float] = field(default_factory=dict)  # params, flops, latency_ms(_b64)
    # seconds per phase outside training (search.trial.timing): build, cost, engine, report, ...
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


def replicate_tag(replicate: int) -> str:
    """The checkpoint tag of a trial's replicate: ``last``, then ``last-seed1``, ..."""
    return CHECKPOINT_TAG if replicate == 0 else f"{CHECKPOINT_TAG}-seed{replicate}"


def save_checkpoint(
    engines: Sequence[DeepSpeedEngine], directory: str, progress: TrialProgress, *, rank: int
) -> None:
    """Save every replicate's engine into ``directory`` under its tag (collective: each rank
    its ZeRO shards) and, from rank 0, the progress beside them."""
    for replicate, engine in enumerate(engines):
        engine.save_checkpoint(directory, tag=replicate_tag(replicate))
    if rank == 0:
        (Path(directory) / STATE_FILE).write_text(progress.to_json())


def restore_checkpoint(
    engines: Sequence[DeepSpeedEngine], progress: TrialProgress, session: TrialSession
) -> None:
    """Resume from the session's checkpoint, if it has one: every replicate's engine state
    and the progress."""
    with session.restore_dir() as ckpt_dir:
        if ckpt_dir is not None and (Path(ckpt_dir) / STATE_FILE).is_file():
            for replicate, engine in enumerate(engines):
                engine.load_checkpoint(ckpt_dir, tag=replicate_tag(replicate))
            progress.restore((Path(ckpt_dir) / STATE_FILE).read_text())
