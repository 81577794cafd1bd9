"""A trial's progress (search/trial/state.py): the checkpoint's state file, and a progress
restored from it."""

from __future__ import annotations

import json

from search.trial.state import TrialProgress


def _record(epoch: int, seconds: float) -> dict[str, float]:
    return {"epoch": epoch, "val_accuracy": 0.5, "epoch_time_s": seconds}


def test_trial_progress_is_the_checkpoints_state_file() -> None:
    progress = TrialProgress(
        epoch=2, history=[_record(1, 1.5), _record(2, 2.0)], cost={"params": 10, "flops": 20}
    )
    saved = json.loads(progress.to_json())
    # The state file's keys (multi-worker tests and older checkpoints read these).
    assert list(saved) == ["epoch", "history", "elapsed_before_s", "cost"]
    assert saved["epoch"] == 2 and saved["history"] == progress.history
    assert progress.train_time_s() == 3.5


def test_a_restored_progress_continues_after_the_checkpoints_epochs() -> None:
    saved = TrialProgress(epoch=2, history=[_record(1, 1.5), _record(2, 2.0)]).to_json()
    progress = TrialProgress(cost={"params": 10.0})  # this run's own measurement
    progress.restore(saved)
    assert progress.epoch == 2 and [h["epoch"] for h in progress.history] == [1, 2]
    assert progress.elapsed_before_s == 3.5  # the restored epochs' training time
    assert progress.cost == {"params": 10.0}
