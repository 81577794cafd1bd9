"""Multi-objective asynchronous successive halving (MO-ASHA) for Ray Tune.

Schmucker et al. (2021), "Multi-objective Asynchronous Successive Halving", arXiv:2106.12639.

Why: Tune's ASHA ranks the trials at a rung by one metric, so a cheap model is cut for being less
accurate than an expensive one, although it may well be on the accuracy/cost Pareto front. MO-ASHA
ranks the objective vectors recorded at a rung by non-dominated sorting instead and lets a trial
go on while it is among the best ``1 / reduction_factor`` of them.

Ranking (:func:`keeps`): whole fronts are taken in order (front 0 first); inside the one front
that is only partly taken, rows with a larger NSGA-II crowding distance go first; rows still
exactly tied go to the earlier row (lower index, i.e. the trial recorded at the rung first).

Promotion (:class:`MultiObjectiveASHA`): a trial goes on when it is on the first
non-dominated front of its rung, or else among the best ``ceil(n / reduction_factor)``. The
first clause matters in the small rungs of an asynchronous sweep: with two trials recorded and
one place, a cheap newcomer that no trial dominates would otherwise be cut for arriving second
after an accurate, expensive trial that was promoted already.

Every objective is minimised inside this module: ``"max"`` metrics are negated, and a missing,
NaN or infinite value counts as the worst possible (``+inf``).
"""

from __future__ import annotations

import math
import numbers
import pickle
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.experiment.rungs import rung_milestones
from search.pareto import nondominated_ranks, worst_where_nan
from search.vocabulary import minimizing_sign

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController

__all__ = ["MultiObjectiveASHA", "crowding_distance", "keeps"]

_MODES = ("max", "min")


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within the given set (boundary points inf).

    Per column, the rows holding its smallest or largest value get ``inf``; any other row adds
    the gap between the neighbouring distinct values above and below its own, divided by the
    column's range over finite values. Identical values get the same gap, so duplicate rows are
    exact ties; a column whose values are all equal adds nothing. Sets of one or two rows are all
    boundary (``inf``). NaN counts as ``+inf``.
    """
    pts = worst_where_nan(points)
    n, m = pts.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n, dtype=np.float64)
    for col in range(m):
        values = pts[:, col]
        distinct = np.unique(values)
        if distinct.size < 2:
            continue
        finite = distinct[np.isfinite(distinct)]
        scale = float(finite[-1] - finite[0]) if finite.size else 0.0
        if scale <= 0.0:
            scale = 1.0
        pos = np.searchsorted(distinct, values)
        boundary = (pos == 0) | (pos == distinct.size - 1)
        inner = ~boundary
        gaps = distinct[np.minimum(pos + 1, distinct.size - 1)] - distinct[np.maximum(pos - 1, 0)]
        dist[inner] += gaps[inner] / scale
        dist[boundary] = np.inf
    return dist


def keeps(points: np.ndarray, index: int, keep: int) -> bool:
    """True when row `index` is among the `keep` best rows: ordered by front, then inside the
    front that is only partly taken by crowding distance (larger first); remaining exact ties
    broken deterministically in favour of the earlier row (lower index)."""
    pts = worst_where_nan(points)
    n = pts.shape[0]
    if not 0 <= index < n:
        raise IndexError(f"index: {index} is outside the {n} rows given")
    if keep >= n:
        return True
    if keep <= 0:
        return False
    ranks = nondominated_ranks(pts)
    sizes = np.bincount(ranks)
    taken_before = np.concatenate(([0], np.cumsum(sizes)))
    partial = int(np.searchsorted(taken_before, keep, side="left")) - 1  # front cut by `keep`
    if ranks[index] != partial:
        return bool(ranks[index] < partial)
    members = np.flatnonzero(ranks == partial)  # ascending row index
    crowd = crowding_distance(pts[members])
    order = members[np.lexsort((members, -crowd))]
    return bool(index in order[: keep - int(taken_before[partial])])


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving over several metrics (one bracket), for ``tune.Tuner``.

    Rung milestones are ``grace_period * reduction_factor**k`` below ``max_t``. The first result
    whose ``time_attr`` reaches a milestone records the trial's objective vector there (only at the
    highest milestone reached; a rung the trial jumped over is skipped), and the trial goes on iff
    no vector recorded at that rung dominates it, or :func:`keeps` ranks it among the best
    ``ceil(n / reduction_factor)`` of the ``n`` vectors recorded there so far. Results at or
    past ``max_t``, results without ``time_attr`` and failure reports (a ``"failure_reason"``
    key) never stop a trial and record nothing.

    With ``group_by`` (a config key, e.g. ``"family"``) each group has its own rungs: a trial
    competes only with trials of its own group, so a family that learns slowly is not cut for
    being slower than another family at an early rung (the sweep's default with equal family
    allocation: each family's share of trials is then decided within the family).

    The metric and mode given to ``tune.TuneConfig`` are ignored here. State is plain Python
    (trial ids and floats), so the scheduler pickles.
    """

    # Each result may be a decision point: Tune must not batch results before showing them.
    _supports_buffered_results = False

    def __init__(
        self,
        *,
        metrics: Sequence[str],
        modes: Sequence[str],
        max_t: int,
        grace_period: int = 1,
        reduction_factor: int = 3,
        time_attr: str = "epoch",
        group_by: str | None = None,
    ) -> None:
        metrics = list(metrics) if not isinstance(metrics, str) else [metrics]
        modes = list(modes) if not isinstance(modes, str) else [modes]
        if len(metrics) < 2:
            raise ValueError(f"metrics: got {metrics!r}; at least 2 metric names are required")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics: got {metrics!r}; the metric names must be distinct")
        if len(modes) != len(metrics):
            raise ValueError(
                f"modes: got {modes!r}; exactly one mode per metric ({len(metrics)}) is required"
            )
        for mode in modes:
            if mode not in _MODES:
                raise ValueError(f"modes: got {mode!r}; each mode must be 'max' or 'min'")
        for name, value, low in (
            ("max_t", max_t, 1),
            ("grace_period", grace_period, 1),
            ("reduction_factor", reduction_factor, 2),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name}: got {value!r}; an integer >= {low} is required")
        if not isinstance(time_attr, str) or not time_attr:
            raise ValueError(f"time_attr: got {time_attr!r}; a non-empty result key is required")
        super().__init__()
        self._metrics: tuple[str, ...] = tuple(metrics)
        self._modes: tuple[str, ...] = tuple(modes)
        self._signs: tuple[float, ...] = tuple(minimizing_sign(m) for m in modes)
        self._max_t = int(max_t)
        self._grace_period = int(grace_period)
        self._reduction_factor = int(reduction_factor)
        self._time_attr = time_attr
        self._group_by = group_by
        self._milestones = rung_milestones(grace_period, reduction_factor, max_t)
        # (group, milestone) -> trial_id -> objective vector (minimised), in recording order
        self._rungs: dict[tuple[str, int], dict[str, tuple[float, ...]]] = {}
        self._num_stopped = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept (and ignore) Tune's single metric/mode: this scheduler has its own."""
        return True

    def _vector(self, result: Mapping[str, Any]) -> tuple[float, ...]:
        """The result's objective vector, every entry to be minimised; unusable values +inf."""
        out: list[float] = []
        for name, sign in zip(self._metrics, self._signs):
            try:
                value = sign * float(result[name])
            except (KeyError, TypeError, ValueError):
                value = math.inf
            out.append(value if math.isfinite(value) else math.inf)
        return tuple(out)

    def on_trial_result(
        self, tune_controller: TuneController | None, trial: Any, result: dict[str, Any]
    ) -> str:
        """CONTINUE or STOP; records the trial at the rung its result reaches first."""
        if "failure_reason" in result:
            return TrialScheduler.CONTINUE
        try:
            now = float(result[self._time_attr])
        except (KeyError, TypeError, ValueError):
            return TrialScheduler.CONTINUE
        if not now < self._max_t:
            return TrialScheduler.CONTINUE
        reached = [m for m in self._milestones if m <= now]
        if not reached:
            return TrialScheduler.CONTINUE
        group = (
            str((getattr(trial, "config", None) or {}).get(self._group_by, ""))
            if (self._group_by)
            else ""
        )
        recorded = self._rungs.setdefault((group, reached[-1]), {})
        trial_id = str(trial.trial_id)
        if trial_id in recorded:
            return TrialScheduler.CONTINUE
        recorded[trial_id] = self._vector(result)
        n = len(recorded)
        keep = max(1, math.ceil(n / self._reduction_factor))
        points = np.array(list(recorded.values()))
        if nondominated_ranks(points)[-1] == 0 or keeps(points, n - 1, keep):
            return TrialScheduler.CONTINUE
        self._num_stopped += 1
        return TrialScheduler.STOP

    def debug_string(self) -> str:
        """One line: objectives, then each rung's milestone and how many trials it recorded."""
        objectives = ", ".join(f"{m}:{d}" for m, d in zip(self._metrics, self._modes))
        rungs = " | ".join(
            f"rung {m}: {sum(len(r) for (_, k), r in self._rungs.items() if k == m)}"
            for m in self._milestones
        )
        return (
            f"MultiObjectiveASHA({objectives}; {self._time_attr} max_t={self._max_t}): "
            f"{rungs or 'no rungs'}; stopped {self._num_stopped}"
        )

    def save(self, checkpoint_path: str) -> None:
        """Pickle the scheduler's state to ``checkpoint_path``."""
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        """Load state written by :meth:`save`."""
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
