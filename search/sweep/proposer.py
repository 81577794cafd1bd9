"""The sweep's proposal rules over an Optuna study, apart from Ray (a replay uses them too).

* **Budget.** Each proposal's cost is estimated analytically (``models.cost.estimate``) before
  anything is built. The violations ``estimate / limit - 1`` are recorded with
  ``trial.set_constraint()`` (<= 0 feasible), which constraint-aware samplers read. Over budget,
  the trial is told to Optuna as an *infeasible* COMPLETE trial with worst-case values (so the
  sampler learns the region), recorded ``INFEASIBLE``, never trained; the proposer asks again.
* **Fair families.** With ``families`` given (``family_allocation: equal``), each proposal's
  family is fixed before the sampler runs (enqueued as a partial trial): the family with the
  fewest trials so far, ties in the experiment's order.
* **No repeats.** A configuration the study trained already is recorded ``DUPLICATE``, told
  as PRUNED (so a sampler steers away instead of proposing it again) and not trained again.
  A sampler that learns from COMPLETE trials only (GP, NSGA-II) is not moved by that and
  proposes the same configuration again: after ``explore_after`` duplicates in a row, the next
  asks of that proposal are drawn uniformly (a seeded ``RandomSampler``) until one is new; the
  configured sampler keeps the whole history and proposes the next one.
* **Honest books.** A trial stopped early is told as PRUNED (a partial budget): it never
  reaches ``study.best_trials`` or a front. Every trial carries user attributes (family, the
  full proposal, status, failure reason, per-epoch history, cost, timings), so the study alone
  is the source of truth for the results tables and for resumes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from search.vocabulary import (
    ANYTIME_ITERATIONS,
    ANYTIME_OF,
    TrialStatus,
    to_jsonable,
)

__all__ = ["BUDGET_METRICS", "Proposer", "config_key"]

#: Cost metrics a budget can limit (``budget.max_<metric>``).
BUDGET_METRICS = ("flops", "params")

# Metrics copied from a trial's last result into the study's user attributes.
_RESULT_ATTRS = (
    "val_accuracy",
    "val_top5",
    "val_loss",
    "test_accuracy",
    "test_top5",
    "val_images",  # the evaluation sets' sizes: the accuracies' Wilson intervals
    "test_images",
    "replicates",  # seeds per configuration: the accuracies above are their mean
    "params",
    "flops",
    "latency_ms",
    "latency_ms_b64",
    "train_time_s",
    "images_per_s",
)

# Per-seed values of a trial with replicates (lists): each seed's accuracy on the final weights.
_SEED_ATTRS = ("val_accuracy_seeds", "test_accuracy_seeds")

Space = Callable[[optuna.Trial], dict[str, Any]]
Estimator = Callable[[dict[str, Any]], dict[str, float]]


def _shares(families: Sequence[str] | Mapping[str, int] | None) -> dict[str, int] | None:
    if not families:
        return None
    if isinstance(families, Mapping):
        return dict(families)
    return dict.fromkeys(families, 1)


def config_key(config: Mapping[str, Any]) -> str:
    """A configuration's identity (floats as stored, keys sorted)."""
    return json.dumps(to_jsonable(dict(config)), sort_keys=True)


class Proposer:
    """Asks the study for trainable proposals and tells it how each trial ended.

    ``space(trial) -> proposal`` is the define-by-run joint space; ``estimate_fn(proposal)``
    the analytic cost (``{}`` for a proposal that cannot be built: it is not judged here and
    fails when trained); ``limits`` maps budget metrics to ceilings (``None``: no ceiling);
    ``objectives`` are the reported metrics, in the study's order, with their directions;
    ``stop_reason`` why the scheduler stops a trial (a STOPPED row's failure reason names the
    rung, the epoch it stopped at, and this).
    """

    def __init__(
        self,
        study: optuna.Study,
        space: Space,
        *,
        objectives: Mapping[str, str],
        estimate_fn: Estimator,
        limits: Mapping[str, float | None],
        max_epochs: int,
        families: Sequence[str] | Mapping[str, int] | None = None,
        max_attempts: int = 200,
        explore_after: int = 5,
        seed: int | None = None,
        stop_reason: str = "the scheduler cut it early",
    ) -> None:
        self.study = study
        self._stop_reason = stop_reason
        self._space = space
        self._objectives = dict(objectives)
        self._estimate = estimate_fn
        self._limits = {k: float(v) for k, v in sorted(limits.items()) if v is not None}
        self._max_epochs = max_epochs
        # family -> its share of the trials (equal: 1 each); None: the sampler picks
        self._shares = _shares(families)
        self.max_attempts = max_attempts
        self.explore_after = explore_after
        self._explorer = optuna.samplers.RandomSampler(seed=seed)
        self._trained = {
            config_key(t.user_attrs["config"])
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("status") in TrialStatus.trained() and "config" in t.user_attrs
        }

    # ---- proposing ------------------------------------------------------------------------
    def propose(self) -> tuple[optuna.Trial, dict[str, Any]]:
        """The next proposal to train (its trial RUNNING); infeasible and repeated proposals
        on the way are recorded and skipped."""
        family = self.next_family()
        repeats = 0  # duplicates in a row
        for _ in range(self.max_attempts):
            if family is not None:
                self.study.enqueue_trial({"family": family})
            with self._sampling(explore=repeats >= self.explore_after):
                trial = self.study.ask()
                # Only what the space returns (a captor would also hold the raw Optuna names).
                proposal = dict(self._space(trial))
            status = self._screen(trial, proposal)
            if status is TrialStatus.RUNNING:
                return trial, proposal
            repeats = repeats + 1 if status is TrialStatus.DUPLICATE else 0
        raise RuntimeError(
            f"{self.max_attempts} proposals in a row were over the cost budget "
            f"{self._limits} or already trained: raise budget.max_flops / budget.max_params, "
            "widen the space or ask for fewer trials"
        )

    @contextlib.contextmanager
    def _sampling(self, *, explore: bool) -> Iterator[None]:
        """The study samples with the explorer inside (``explore``), else its own sampler."""
        if not explore:
            yield
            return
        own, self.study.sampler = self.study.sampler, self._explorer
        try:
            yield
        finally:
            self.study.sampler = own

    def _screen(self, trial: optuna.Trial, proposal: dict[str, Any]) -> TrialStatus:
        """Record the proposal: RUNNING if it is to be trained, else it is told and closed
        (INFEASIBLE or DUPLICATE)."""
        estimate = self._estimate(proposal)
        limits = {k: v for k, v in self._limits.items() if k in estimate}
        for key, limit in limits.items():
            trial.set_constraint(f"max_{key}", estimate[key] / limit - 1.0)
        config = to_jsonable(proposal)
        attrs = {
            "family": proposal.get("family"),
            "config": config,
            "estimated_flops": estimate.get("flops"),
            "estimated_params": estimate.get("params"),
            "started_at": time.time(),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        over = [f"{k} {estimate[k]:.4g} > {v:.4g}" for k, v in limits.items() if estimate[k] > v]
        key = config_key(config)
        if over:
            self._close(trial, TrialStatus.INFEASIBLE, "over budget: " + ", ".join(over))
            self.study.tell(trial, self._infeasible_values(estimate))
            return TrialStatus.INFEASIBLE
        if key in self._trained:
            # Told as PRUNED, not FAIL: samplers ignore a failed trial, so TPE would propose
            # the same configuration again and again; a pruned one counts against its region
            # (the configuration's own measurement is already in the study).
            reason = "the study already trained this configuration"
            self._close(trial, TrialStatus.DUPLICATE, reason)
            self.study.tell(trial, state=TrialState.PRUNED)
            return TrialStatus.DUPLICATE
        trial.set_user_attr("status", TrialStatus.RUNNING)
        self._trained.add(key)
        return TrialStatus.RUNNING

    def next_family(self) -> str | None:
        """The family whose turn it is (None: the sampler chooses, or a re-queued trial waits)."""
        if self._shares is None:
            return None
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return None  # a re-queued trial comes first, with its own family
        turns = dict.fromkeys(self._shares, 0)
        for t in trials:
            fam = t.user_attrs.get("family")
            took_a_turn = t.user_attrs.get("status") in TrialStatus.took_a_turn()
            if fam in turns and took_a_turn and ANYTIME_OF not in t.user_attrs:
                turns[fam] += 1
        shares = self._shares  # the family furthest behind its share; ties in order
        return min(shares, key=lambda f: turns[f] / shares[f])

    def _infeasible_values(self, estimate: Mapping[str, float]) -> list[float]:
        """Worst-case values: the constraints, not these, rank infeasible trials."""
        values = []
        for metric, mode in self._objectives.items():
            if metric in BUDGET_METRICS and metric in estimate:
                values.append(float(estimate[metric]))
            else:
                values.append(0.0 if mode == "max" else math.inf)
        return values

    # ---- telling --------------------------------------------------------------------------
    def record(self, trial: optuna.Trial, result: Mapping[str, Any]) -> None:
        """Copy a trial's last result (metrics, history, epochs) into its user attributes."""
        for key in _RESULT_ATTRS:
            value = result.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                trial.set_user_attr(key, value)
        for key in _SEED_ATTRS:
            if isinstance(result.get(key), list):
                trial.set_user_attr(key, to_jsonable(result[key]))
        history = result.get("history") or []
        trial.set_user_attr("history", to_jsonable(history))
        trial.set_user_attr("epochs_run", int(result.get("epoch") or len(history)))
        trial.set_user_attr("finished_at", time.time())

    def finish(self, trial: optuna.Trial, result: Mapping[str, Any]) -> TrialStatus:
        """Record ``result`` and tell the study how the trial ended: FAILED (a failure
        reason, or objectives missing), STOPPED (fewer epochs than the budget) or COMPLETE."""
        self.record(trial, result)
        values = [result.get(m) for m in self._objectives]
        usable = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        reason = result.get("failure_reason")
        status = TrialStatus.ended(
            failed=bool(reason) or not usable,
            epochs_run=int(result.get("epoch") or 0),
            max_epochs=self._max_epochs,
        )
        if status == TrialStatus.FAILED:
            self.fail(trial, str(reason or "trial ended without reporting all objectives"))
            return status
        if status == TrialStatus.STOPPED:
            epoch = int(result.get("epoch") or 0)
            where = f"stopped at the epoch-{epoch} rung (of {self._max_epochs} epochs)"
            self._close(trial, status, f"{where}: {self._stop_reason}")
            self.study.tell(trial, state=TrialState.PRUNED)
            return status
        trial.set_user_attr("status", TrialStatus.COMPLETE)
        self.study.tell(trial, [float(v) for v in values if v is not None])
        points = result.get("anytime") or []
        if points:  # the parent as stored, read once for all its points
            parent = next(
                t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number
            )
            for point in points:
                self._add_anytime_point(parent, point)
        return TrialStatus.COMPLETE

    def _add_anytime_point(
        self, frozen: optuna.trial.FrozenTrial, point: Mapping[str, Any]
    ) -> None:
        """Record the parent's evaluation with ``point["iterations"]`` iterations as a trial
        of its own (COMPLETE, its own values and cost), so the sampler learns from it and it
        is a point on the fronts; ``anytime_of`` links it to the run that trained it. The
        parent's own iteration count is the parent; a count outside the space is not told."""
        from spaces import ANYTIME_PARAM  # here: spaces imports torch

        name = ANYTIME_PARAM.get(str(frozen.params.get("family")))
        k = int(point["iterations"])
        values = [point.get(m) for m in self._objectives]
        finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if name is None or frozen.params.get(name) == k or not finite:
            return
        if not _allows(frozen.distributions.get(name), k):
            return
        config = {**frozen.user_attrs["config"], name.split(".", 1)[1]: k}
        self.study.add_trial(
            optuna.trial.create_trial(
                params={**frozen.params, name: k},
                distributions=dict(frozen.distributions),
                values=[float(v) for v in values],  # type: ignore[arg-type]
                user_attrs=_anytime_attrs(frozen, point, config, k),
            )
        )
        self._trained.add(config_key(config))

    def fail(self, trial: optuna.Trial, reason: str) -> None:
        """Tell the study the trial failed, with its reason."""
        self._close(trial, TrialStatus.FAILED, reason)
        self.study.tell(trial, state=TrialState.FAIL)

    def _close(self, trial: optuna.Trial, status: TrialStatus, reason: str) -> None:
        trial.set_user_attr("status", status)
        trial.set_user_attr("failure_reason", reason)
        trial.set_user_attr("finished_at", time.time())


def _allows(distribution: optuna.distributions.BaseDistribution | None, value: int) -> bool:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    return False


def _anytime_attrs(
    parent: optuna.trial.FrozenTrial, point: Mapping[str, Any], config: dict[str, Any], k: int
) -> dict[str, Any]:
    """The user attributes of the anytime point ``k`` of ``parent``."""
    kept = ("family", "started_at", "finished_at", "epochs_run", "val_images", "test_images",
            "replicates")  # fmt: skip
    tid = parent.user_attrs.get("tune_trial_id") or f"optuna-{parent.number}"
    return {
        **{a: parent.user_attrs[a] for a in kept if a in parent.user_attrs},
        **{m: point[m] for m in _RESULT_ATTRS if isinstance(point.get(m), (int, float))},
        **{m: point[m] for m in _SEED_ATTRS if isinstance(point.get(m), list)},
        "config": config,
        "status": str(TrialStatus.COMPLETE),
        "tune_trial_id": f"{tid}@k{k}",
        ANYTIME_OF: tid,
        ANYTIME_ITERATIONS: k,
        "train_time_s": 0.0,  # its compute is the parent's
    }
