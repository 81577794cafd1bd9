"""Where early stopping judges a trial: the rung milestones of ASHA (Tune's and ours alike).

A derived view of the experiment's scheduler settings, Ray-free: a trial reads them to report at
every epoch its scheduler judges (``search.trial.loop``), and ``search.sweep.schedulers`` builds its
rungs from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.experiment.schema import Experiment

__all__ = ["grace_period", "judged_epochs", "rung_milestones"]


def rung_milestones(grace_period: int, reduction_factor: int, max_t: int) -> tuple[int, ...]:
    """The values of the time attribute at which a rung judges a trial:
    ``grace_period * reduction_factor**k`` below ``max_t``."""
    milestones: list[int] = []
    milestone = int(grace_period)
    while milestone < max_t:
        milestones.append(milestone)
        milestone *= int(reduction_factor)
    return tuple(milestones)


def grace_period(exp: Experiment) -> int:
    """The experiment's grace period, at most its epochs."""
    return min(exp.scheduler.grace_period, exp.epochs)


def judged_epochs(exp: Experiment) -> tuple[int, ...]:
    """The epochs at which the experiment's scheduler judges a trial (none without one)."""
    if exp.epochs <= 1 or exp.scheduler.name == "none":
        return ()
    return rung_milestones(grace_period(exp), exp.scheduler.reduction_factor, exp.epochs)
