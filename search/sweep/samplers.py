"""The samplers a sweep can use, built the Optuna 5 way.

Constraints are not passed to the samplers: the proposer records each trial's budget
violations with ``trial.set_constraint()`` (<= 0 feasible), which every constraint-aware
Optuna sampler reads from the study. Several trials run at once, so the model-based samplers
account for running trials (TPE's constant liar; GPSampler conditions on running trials
itself).
"""

from __future__ import annotations

import optuna

from search.vocabulary import SAMPLERS

__all__ = ["SAMPLERS", "make_sampler", "nsga2_population"]


def nsga2_population(num_trials: int) -> int:
    """NSGA-II's generation size for a sweep of ``num_trials``: about five generations, at
    least 4 and at most 50 (Optuna's default) trials each."""
    return max(4, min(50, num_trials // 5))


def make_sampler(name: str, *, seed: int, num_trials: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` for a sweep of ``num_trials`` trials.

    ``tpe``: multivariate TPE with ``group=True`` (the joint space is conditional: each family
    has its own parameters, and without groups they fall back to independent sampling) and a
    constant liar for the trials still running. ``nsga2``: NSGA-II, population sized from the
    sweep. ``gp``: GPSampler (constrained multi-objective LogEHVI). ``random``: uniform.
    """
    startup = max(4, min(10, num_trials // 4))
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=nsga2_population(num_trials)
        )
    if name == "gp":
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler={name!r}; allowed: {', '.join(SAMPLERS)}")
