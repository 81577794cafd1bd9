"""The samplers a sweep can use, built the Optuna 5 way.

With equal family shares the proposer fixes each proposal's family before the sampler runs
(an enqueued ``family``). A model-based sampler over the joint space would still draw the
shared training parameters (optimizer, lr, weight decay, batch size) jointly with a family
of its own choosing, which the fixed family then overrides: family X would get family Y's
good learning rate. :class:`FamilyConditioned` samples such a proposal from the fixed
family's own history instead, once that family has as many finished trials as the sampler's
start-up; before that, from every family's (what one family learned is the others' prior).

Constraints are not passed to the samplers: the proposer records each trial's budget
violations with ``trial.set_constraint()`` (<= 0 feasible), which every constraint-aware
Optuna sampler reads from the study. Several trials run at once, so the model-based samplers
account for running trials (TPE's constant liar; GPSampler conditions on running trials
itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from search.vocabulary import SAMPLERS

__all__ = ["SAMPLERS", "FamilyConditioned", "make_sampler", "nsga2_population"]

#: The study parameter that names a proposal's family (``spaces.JointSpace``).
FAMILY_PARAM = "family"


def nsga2_population(num_trials: int) -> int:
    """NSGA-II's generation size for a sweep of ``num_trials``: about five generations, at
    least 4 and at most 50 (Optuna's default) trials each."""
    return max(4, min(50, num_trials // 5))


def make_sampler(name: str, *, seed: int, num_trials: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` for a sweep of ``num_trials`` trials.

    ``tpe``: multivariate TPE with ``group=True`` (the joint space is conditional: each family
    has its own parameters, and without groups they fall back to independent sampling) and a
    constant liar for the trials still running. ``nsga2``: NSGA-II, population sized from the
    sweep. ``gp``: GPSampler (constrained multi-objective LogEHVI). ``random``: uniform. TPE and
    GP are :class:`FamilyConditioned`.
    """
    startup = max(4, min(10, num_trials // 4))
    if name == "tpe":
        tpe = partial(
            optuna.samplers.TPESampler,
            n_startup_trials=startup,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
        return FamilyConditioned(tpe, seed=seed, min_history=startup)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=nsga2_population(num_trials)
        )
    if name == "gp":
        gp = partial(
            optuna.samplers.GPSampler, n_startup_trials=startup, warn_independent_sampling=False
        )
        return FamilyConditioned(gp, seed=seed, min_history=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler={name!r}; allowed: {', '.join(SAMPLERS)}")


class FamilyConditioned(optuna.samplers.BaseSampler):
    """A sampler whose proposals for a fixed (enqueued) family learn from that family alone.

    ``make(seed=...)`` builds the wrapped sampler (a ``functools.partial``: the sampler is
    pickled with the searcher). One instance samples over the whole study:
    proposals without a fixed family, and families with fewer than ``min_history`` finished
    (COMPLETE or PRUNED) trials. Each family with enough history gets an instance of its own,
    which sees only that family's trials (samplers keep per-study state such as a search
    space's groups, so one instance never sees two views).
    """

    def __init__(
        self, make: Callable[..., optuna.samplers.BaseSampler], *, seed: int, min_history: int
    ) -> None:
        self._make = make
        self._seed = seed
        self._min_history = min_history
        self._shared = make(seed=seed)
        self._own: dict[str, optuna.samplers.BaseSampler] = {}

    def _pick(self, study: Study, trial: FrozenTrial) -> tuple[optuna.samplers.BaseSampler, Study]:
        family = trial.system_attrs.get("fixed_params", {}).get(FAMILY_PARAM)
        if family is None:
            return self._shared, study
        view = _FamilyView(study, str(family))
        finished = view._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if len(finished) < self._min_history:
            return self._shared, study
        if family not in self._own:
            self._own[family] = self._make(seed=self._seed + 1 + len(self._own))
        return self._own[family], view  # type: ignore[return-value]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        sampler, seen = self._pick(study, trial)
        return sampler.infer_relative_search_space(seen, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        sampler, seen = self._pick(study, trial)
        return sampler.sample_relative(seen, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler, seen = self._pick(study, trial)
        return sampler.sample_independent(seen, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._shared.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._shared.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        for sampler in (self._shared, *self._own.values()):
            sampler.reseed_rng()


class _FamilyView:
    """The study as one family's sampler sees it: every call passes through, but its trials
    are that family's (and trials not yet given a family: the one being sampled)."""

    def __init__(self, study: Study, family: str) -> None:
        self._study = study
        self._family = family

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _mine(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if t.params.get(FAMILY_PARAM, self._family) == self._family]

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return self._mine(self._study._get_trials(*args, **kwargs))

    def get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return self._mine(self._study.get_trials(*args, **kwargs))

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()
