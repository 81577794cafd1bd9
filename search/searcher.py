"""Ray Tune's OptunaSearch with a cost budget and a complete trial record.

Two things the stock searcher does not do:

* **Budget.** Before a proposal reaches Tune its cost is estimated analytically
  (``models.cost.estimate``). Over ``max_flops``/``max_params`` it is told to Optuna as an
  *infeasible* trial (COMPLETE with positive constraint values, which NSGA-II and TPE treat as
  infeasible), recorded with status ``INFEASIBLE``, never built or trained, and not counted as a
  failure; the searcher asks again.
* **Fair families.** With ``families`` given (``family_allocation: equal``), each proposal's
  family is fixed before the sampler runs (enqueued as a partial trial): the family with the
  fewest trials so far, ties in the experiment's order, so every family's front rests on
  ``num_trials // len(families)`` trials or more. The sampler searches within the family.
* **No repeats.** A proposal whose configuration the study already trained (possible after a
  resume, or in a small discrete space) is recorded as ``DUPLICATE`` and not trained again.
* **Honest books.** A trial stopped early by the scheduler is told to Optuna as PRUNED: it is
  not a full-budget measurement, so ``study.best_trials`` and dashboards never show it.
* **Record.** Every Optuna trial carries user attributes (family, the full proposal, status,
  failure reason, per-epoch history, cost, timings), so the study alone is the source of truth
  for ``trials.csv`` and resumes: it is written at every trial end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

__all__ = ["STATUS", "BudgetedOptunaSearch", "budget_constraints", "make_sampler"]

#: Trial statuses recorded in the study (user attribute ``status``).
STATUS = ("RUNNING", "COMPLETE", "STOPPED", "FAILED", "INFEASIBLE", "DUPLICATE", "INTERRUPTED")

#: Statuses of trials that were trained (their configurations are never proposed again).
_TRAINED = ("COMPLETE", "STOPPED", "FAILED")
#: Statuses of trials that took their turn (a family's share counts these).
_TOOK_A_TURN = ("RUNNING", *_TRAINED)

# Metrics copied from a trial's last result into the study's user attributes.
_RESULT_ATTRS = (
    "val_accuracy",
    "val_top5",
    "val_loss",
    "test_accuracy",
    "test_top5",
    "params",
    "flops",
    "latency_ms",
    "latency_ms_b64",
    "train_time_s",
    "images_per_s",
)


def budget_constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Optuna ``constraints_func``: <= 0 is feasible (module level, so samplers pickle)."""
    return list(trial.user_attrs.get("constraints", [0.0]))


def make_sampler(name: str, *, seed: int, constrained: bool) -> optuna.samplers.BaseSampler:
    """NSGA-II, multi-objective TPE or random; constraint-aware when a budget is set."""
    constraints = budget_constraints if constrained else None
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=8, constraints_func=constraints
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=6, multivariate=True, constraints_func=constraints
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler={name!r}; allowed: nsga2, tpe, random")


class BudgetedOptunaSearch(OptunaSearch):
    """OptunaSearch that screens proposals against a cost budget and records every trial.

    ``estimate_fn(proposal) -> {"flops": ..., "params": ...}`` gives the analytic cost;
    ``limits`` maps those keys to ceilings (``None`` = no ceiling).
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
        families: tuple[str, ...] | None = None,
        max_infeasible_in_a_row: int = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(space=space, metric=metrics, mode=modes, **kwargs)
        self._space_fn = space
        self._metrics = list(metrics)
        self._modes = list(modes)
        self._estimate_fn = estimate_fn
        self._limits = {k: v for k, v in limits.items() if v is not None}
        self._max_epochs = max_epochs
        self._max_infeasible = max_infeasible_in_a_row
        self._errored: dict[str, optuna.Trial] = {}
        self._families = tuple(families) if families else None
        self._trained_configs = {
            _config_key(t.user_attrs["config"])
            for t in self.study.get_trials(deepcopy=False)
            if t.user_attrs.get("status") in _TRAINED and "config" in t.user_attrs
        }

    @property
    def study(self) -> optuna.Study:
        if self._ot_study is None:  # pragma: no cover - set up in __init__ (space given)
            raise RuntimeError("the Optuna study is not set up")
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        family = self._next_family()
        for _ in range(self._max_infeasible):
            if family is not None:
                self.study.enqueue_trial({"family": family})
            ot_trial = self.study.ask()
            # Only what the space returns: Tune's captor would also merge the raw Optuna names.
            proposal = dict(self._space_fn(ot_trial))
            # An invalid proposal has no estimate: it is not judged here, it fails when built.
            estimate = self._estimate_fn(proposal)
            limits = {k: v for k, v in sorted(self._limits.items()) if k in estimate}
            violations = [estimate[key] / limit - 1.0 for key, limit in limits.items()]
            attrs = {
                "family": proposal.get("family"),
                "config": _jsonable(proposal),
                "estimated_flops": estimate.get("flops"),
                "estimated_params": estimate.get("params"),
                "constraints": violations or [0.0],
                "started_at": time.time(),
            }
            for key, value in attrs.items():
                ot_trial.set_user_attr(key, value)
            over = [
                f"{key} {estimate[key]:.4g} > {limit:.4g}"
                for key, limit in limits.items()
                if estimate[key] > limit
            ]
            key = _config_key(attrs["config"])
            if over:
                ot_trial.set_user_attr("status", "INFEASIBLE")
                ot_trial.set_user_attr("failure_reason", "over budget: " + ", ".join(over))
                ot_trial.set_user_attr("finished_at", time.time())
                self.study.tell(ot_trial, self._infeasible_values(estimate))
            elif key in self._trained_configs:
                ot_trial.set_user_attr("status", "DUPLICATE")
                ot_trial.set_user_attr(
                    "failure_reason", "the study already trained this configuration"
                )
                ot_trial.set_user_attr("finished_at", time.time())
                self.study.tell(ot_trial, state=TrialState.FAIL)
            else:
                ot_trial.set_user_attr("status", "RUNNING")
                ot_trial.set_user_attr("tune_trial_id", trial_id)
                self._ot_trials[trial_id] = ot_trial
                self._trained_configs.add(key)
                return proposal
        raise RuntimeError(
            f"{self._max_infeasible} proposals in a row were over the cost budget "
            f"{self._limits} or already trained: raise budget.max_flops / budget.max_params, "
            "widen the space or ask for fewer trials"
        )

    def _next_family(self) -> str | None:
        """The family whose turn it is (None: the sampler chooses, or a re-queued trial waits)."""
        if self._families is None:
            return None
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return None  # a re-queued trial comes first, with its own family
        turns = dict.fromkeys(self._families, 0)
        for t in trials:
            fam = t.user_attrs.get("family")
            if fam in turns and t.user_attrs.get("status") in _TOOK_A_TURN:
                turns[fam] += 1
        return min(self._families, key=lambda f: turns[f])

    def _infeasible_values(self, estimate: dict[str, float]) -> list[float]:
        """Worst-case values: the constraints, not these, rank infeasible trials."""
        values = []
        for metric, mode in zip(self._metrics, self._modes):
            if metric in ("flops", "params") and metric in estimate:
                values.append(float(estimate[metric]))
            else:
                values.append(0.0 if mode == "max" else math.inf)
        return values

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        return  # multi-objective: Optuna takes no intermediate values

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        result = result or {}
        for key in _RESULT_ATTRS:
            value = result.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                ot_trial.set_user_attr(key, value)
        history = result.get("history") or []
        ot_trial.set_user_attr("history", _jsonable(history))
        ot_trial.set_user_attr("epochs_run", int(result.get("epoch") or len(history)))
        ot_trial.set_user_attr("finished_at", time.time())
        reason = result.get("failure_reason")
        values = [result.get(m) for m in self._metrics]
        usable = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if error and not reason:
            # Tune tells the searcher before its callbacks see the error: hold the trial open
            # until ``finish_errored`` brings the reason (study attrs are frozen after tell).
            ot_trial.set_user_attr("status", "FAILED")
            self._errored[trial_id] = ot_trial
        elif reason or not usable:
            reason = reason or "trial ended without reporting all objectives"
            ot_trial.set_user_attr("status", "FAILED")
            ot_trial.set_user_attr("failure_reason", str(reason))
            self.study.tell(ot_trial, state=TrialState.FAIL)
        elif int(result.get("epoch") or 0) < self._max_epochs:
            # Stopped early: a partial-budget measurement, kept in the user attributes only.
            ot_trial.set_user_attr("status", "STOPPED")
            self.study.tell(ot_trial, state=TrialState.PRUNED)
        else:
            ot_trial.set_user_attr("status", "COMPLETE")
            self.study.tell(ot_trial, [float(v) for v in values if v is not None])
        self._completed_trials.add(trial_id)

    def finish_errored(self, trial_id: str | None = None, reason: str | None = None) -> None:
        """Tell Optuna about errored trials (one, or all still open) with their reason."""
        ids = [trial_id] if trial_id is not None else list(self._errored)
        for tid in ids:
            ot_trial = self._errored.pop(tid, None)
            if ot_trial is None:
                continue
            ot_trial.set_user_attr(
                "failure_reason", reason or "trial process errored (see the Tune trial's error.txt)"
            )
            self.study.tell(ot_trial, state=TrialState.FAIL)


def _config_key(config: dict[str, Any]) -> str:
    """A configuration's identity (floats as stored, keys sorted)."""
    import json

    return json.dumps(_jsonable(config), sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
