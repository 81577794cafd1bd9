"""The Tune side of :mod:`search.sweep.interrupts`: a stop signal received while Tune's loop runs
(the searcher writing the study inside it) is raised between two of its steps, never inside
one. Tune looks for new events every 0.1 s, so the stop comes within a moment."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from search.sweep.interrupts import raise_pending

__all__ = ["StopBetweenSteps"]


class StopBetweenSteps(Callback):
    """Raises the pending stop (:class:`~search.sweep.interrupts.SweepInterrupted`) at the end
    of a step of Tune's loop."""

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        raise_pending()
