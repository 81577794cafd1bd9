"""Ray Tune's OptunaSearch, driven by the sweep's proposal rules (``search.sweep.proposer``).

Tune asks ``suggest(trial_id)`` for a configuration and reports ``on_trial_complete``; this
adapter hands both to a :class:`~search.sweep.proposer.Proposer`, which applies the budget, the
families' equal shares, the no-repeat rule and the books (see its module docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from search.sweep.proposer import Proposer
from search.trial.timing import DRIVER_PHASES, timed
from search.vocabulary import TrialStatus

__all__ = ["BudgetedOptunaSearch"]


class BudgetedOptunaSearch(OptunaSearch):
    """OptunaSearch whose proposals and records follow :class:`~search.sweep.proposer.Proposer`.

    ``estimate_fn(proposal) -> {"flops": ..., "params": ...}`` gives the analytic cost;
    ``limits`` maps those keys to ceilings (``None`` = no ceiling). ``seed`` seeds the
    proposer's uniform draws after repeated duplicates; it is not passed on to OptunaSearch,
    which would only warn that the given ``sampler`` carries its own.
    """

    def __init__(
        self,
        space: Callable[[optuna.Trial], dict[str, Any]],
        *,
        metrics: list[str],
        modes: list[str],
        estimate_fn: Callable[[dict[str, Any]], dict[str, float]],
        limits: dict[str, float | None],
        max_epochs: int,
        families: Sequence[str] | Mapping[str, int] | None = None,
        max_infeasible_in_a_row: int = 200,
        seed: int | None = None,
        stop_reason: str = "the scheduler cut it early",
        **kwargs: Any,
    ) -> None:
        super().__init__(space=space, metric=metrics, mode=modes, **kwargs)
        self._errored: dict[str, optuna.Trial] = {}
        self.proposer = Proposer(
            self.study,
            space,
            objectives=dict(zip(metrics, modes, strict=True)),
            estimate_fn=estimate_fn,
            limits=limits,
            max_epochs=max_epochs,
            families=families,
            max_attempts=max_infeasible_in_a_row,
            seed=seed,
            stop_reason=stop_reason,
        )

    @property
    def study(self) -> optuna.Study:
        if self._ot_study is None:  # pragma: no cover - set up in __init__ (space given)
            raise RuntimeError("the Optuna study is not set up")
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        with timed(DRIVER_PHASES[trial_id], "suggest"):
            ot_trial, proposal = self.proposer.propose()
        ot_trial.set_user_attr("tune_trial_id", trial_id)
        self._ot_trials[trial_id] = ot_trial
        return proposal

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        return  # multi-objective: Optuna takes no intermediate values

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        result = result or {}
        if error and not result.get("failure_reason"):
            # Tune tells the searcher before its callbacks see the error: hold the trial open
            # until ``finish_errored`` brings the reason (study attrs are frozen after tell).
            self.proposer.record(ot_trial, result)
            ot_trial.set_user_attr("status", TrialStatus.FAILED)
            self._errored[trial_id] = ot_trial
        else:
            with timed(DRIVER_PHASES[trial_id], "study_write"):
                self.proposer.finish(ot_trial, result)
        self._completed_trials.add(trial_id)

    def finish_errored(self, trial_id: str | None = None, reason: str | None = None) -> None:
        """Tell Optuna about errored trials (one, or all still open) with their reason."""
        ids = [trial_id] if trial_id is not None else list(self._errored)
        for tid in ids:
            ot_trial = self._errored.pop(tid, None)
            if ot_trial is not None:
                self.proposer.fail(
                    ot_trial, reason or "trial process errored (see the Tune trial's error.txt)"
                )
