"""Progress lines while a sweep runs: one per epoch result and one per finished trial."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from search.console import say
from search.vocabulary import TrialStatus

if TYPE_CHECKING:
    from search.sweep.searcher import BudgetedOptunaSearch

__all__ = ["ProgressCallback"]


class ProgressCallback(Callback):
    """Prints concise progress and hands Tune's trial errors to the searcher."""

    def __init__(
        self, searcher: BudgetedOptunaSearch, *, total: int, epochs: int, enabled: bool = True
    ) -> None:
        self._searcher = searcher
        self._total = total
        self._epochs = epochs
        self._enabled = enabled
        self._done = 0
        self._t0 = time.monotonic()

    def _print(self, message: str) -> None:
        if self._enabled:
            elapsed = time.monotonic() - self._t0
            say(f"[paretotune {elapsed:6.0f}s] {message}")

    @staticmethod
    def _name(trial: Any) -> str:
        family = (trial.config or {}).get("family", "?")
        return f"{trial.trial_id} {family:<9}"

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(f"{self._name(trial)} started")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if "failure_reason" in result:
            return
        self._print(
            f"{self._name(trial)} epoch {result.get('epoch')}/{self._epochs} "
            f"val_acc={result.get('val_accuracy', float('nan')):.3f} "
            f"loss={result.get('train_loss', float('nan')):.3f} "
            f"{result.get('images_per_s', 0):.0f} img/s"
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._done += 1
        last = trial.last_result or {}
        status = TrialStatus.ended(
            failed=bool(last.get("failure_reason")),
            epochs_run=int(last.get("epoch") or 0),
            max_epochs=self._epochs,
        )
        outcome = {
            TrialStatus.FAILED: f"FAILED: {last.get('failure_reason')}",
            TrialStatus.STOPPED: f"stopped early at epoch {last.get('epoch')}",
        }.get(status, "complete")
        self._print(
            f"[{self._done}/{self._total}] {self._name(trial)} {outcome}; "
            f"val_acc={last.get('val_accuracy', float('nan')):.3f} "
            f"flops={last.get('flops', float('nan')):.3g} "
            f"params={last.get('params', float('nan')):.3g}"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._done += 1
        reason = _error_line(trial)
        self._searcher.finish_errored(trial.trial_id, reason)
        self._print(f"[{self._done}/{self._total}] {self._name(trial)} ERROR: {reason}")


def _error_line(trial: Any) -> str:
    text = ""
    try:
        text = trial.error_msg or ""
    except Exception:  # older/newer Tune: fall back to the error file
        pass
    if not text and getattr(trial, "error_file", None):
        try:
            with open(trial.error_file) as fh:
                text = fh.read()
        except OSError:
            text = ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "trial process errored")[:300]
