"""Everything the report shows, computed once from the results: :func:`compute_report_data`.

The fronts (per family and overall, for the experiment's objectives and for accuracy against
each cost axis), the hypervolume history, the matched-cost table, the front members, the
status table, the learning curves, the parallel-coordinate axes, the importances, the
"Which <family>" sections (:mod:`.dimensions`) and the dataset's published results
(:mod:`search.data.published`) beside this sweep's test accuracy: plain dataclasses, all
numbers from :mod:`search.pareto`. The figures and the HTML only draw them.

To add a figure: a field here (and the line of :func:`compute_report_data` that fills it), and
a draw function registered in :mod:`search.report.figures`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search import pareto
from search.data.facts import DATASET_FACTS
from search.data.published import PublishedResult, published_results, published_source
from search.pareto import Objective, as_float
from search.pareto.membership import seed_values
from search.vocabulary import TrialStatus

from .dimensions import WhichFamily, named_dimensions, which_families
from .importance import Importance, family_importance
from .inputs import (
    PresetPoint,
    Results,
    family_sort,
    hp_columns,
    hp_value,
    log_scaled,
    preset_points,
)

__all__ = [
    "COST_AXES",
    "STATUS_COLUMNS",
    "FrontData",
    "FrontMember",
    "FrontView",
    "HypervolumeData",
    "LearningCurve",
    "LearningCurves",
    "MatchedCost",
    "Parcoords",
    "ParcoordsAxis",
    "PublishedData",
    "PublishedPoint",
    "ReportData",
    "StatusReason",
    "StatusTable",
    "SweepTest",
    "compute_report_data",
    "published_cost",
]

#: Cost columns the front figure can put on its x axis (the dropdown), with axis titles.
COST_AXES: tuple[tuple[str, str], ...] = (
    ("flops", "forward FLOPs per image"),
    ("params", "parameters"),
    ("latency_ms", "latency, batch 1 (ms)"),
)
#: The status table's columns (more are added for any other status the rows hold): how a
#: trial of a finished sweep ends, so neither RUNNING nor INTERRUPTED (re-queued on resume).
STATUS_COLUMNS: tuple[TrialStatus, ...] = tuple(
    s for s in TrialStatus if s not in (TrialStatus.RUNNING, TrialStatus.INTERRUPTED)
)

Row = Mapping[str, Any]


# ---------------------------------------------------------------------------------------------
# The dataclasses


@dataclass(frozen=True)
class PublishedPoint:
    """A published result placed on a cost axis at ``cost`` (see :func:`published_cost`)."""

    result: PublishedResult
    cost: float


@dataclass(frozen=True)
class FrontView:
    """Accuracy against one cost axis: its fronts, the infeasible trials, the presets and the
    dataset's published results."""

    cost_key: str
    title: str
    fronts: pareto.Fronts
    #: INFEASIBLE trials with a positive cost on this axis (never trained: drawn at the bottom).
    infeasible: tuple[Row, ...]
    #: Presets with a positive cost on this axis, cheapest first.
    presets: tuple[PresetPoint, ...]
    #: The dataset's published results with a cost on this axis, cheapest first.
    published: tuple[PublishedPoint, ...] = ()
    #: The sweep's dataset: a preset's reported accuracy is drawn only on its own dataset's plot.
    dataset: str = ""
    #: The seeds' attainment band on this axis (None: no row has two seeds or more).
    band: pareto.AttainmentBand | None = None
    #: After ``paretotune confirm``: the overall front of the seeds' means (None before).
    confirmed: pareto.Front | None = None

    def front_changes(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(joined, left): the trials confirmation put on the overall front, and took off."""
        if self.confirmed is None:
            return (), ()
        before, after = set(self.fronts.overall.trial_ids), set(self.confirmed.trial_ids)
        return tuple(sorted(after - before)), tuple(sorted(before - after))

    def preset_accuracy(self, preset: PresetPoint) -> float | None:
        """Where ``preset`` sits on the accuracy axis: its reported accuracy when it was
        measured on this sweep's dataset, else None (drawn on the cost axis alone)."""
        return preset.reported_top1 if preset.dataset_name == self.dataset else None

    @property
    def families(self) -> tuple[str, ...]:
        """Families with a front on this axis, in report order."""
        return family_sort(self.fronts.by_family)

    def points(self, family: str) -> list[Row]:
        """``family``'s front-eligible trials on this axis, in input order."""
        return [r for r in self.fronts.eligible if str(r.get("family")) == family]


@dataclass(frozen=True)
class FrontData:
    """The front figure: one view per cost axis with an eligible trial, and its notes."""

    accuracy_key: str
    views: tuple[FrontView, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MatchedCost:
    """Best accuracy per family at each cost budget, and the budget the headline quotes
    (``headline``: the cheapest level at which the most families have a model)."""

    matched: pareto.MatchedAccuracy
    families: tuple[str, ...]
    headline: int
    #: At the headline budget, the families whose best is within the leader's interval (the
    #: leader included): more than one means the leader is not separated from the others.
    tied: tuple[str, ...] = ()
    #: Seeds behind the leader's accuracy at the headline budget (one: no winner is named).
    leader_seeds: int = 1


@dataclass(frozen=True)
class FrontMember:
    """A member of a family front (experiment objectives), flagged if on the overall one."""

    row: Row
    overall: bool

    @property
    def trial_id(self) -> str:
        return str(self.row.get("trial_id"))

    @property
    def family(self) -> str:
        return str(self.row.get("family"))


@dataclass(frozen=True)
class HypervolumeData:
    """The hypervolume history, overall and per family, against one fixed reference."""

    reference: pareto.Reference
    #: Hypervolume of the overall front (the summary's number).
    final: float
    overall: pareto.HypervolumeHistory
    by_family: dict[str, pareto.HypervolumeHistory]


@dataclass(frozen=True)
class LearningCurve:
    """Accuracy per epoch of one front member (epochs with a finite accuracy)."""

    trial_id: str
    family: str
    overall: bool
    epochs: tuple[Any, ...]
    accuracy: tuple[float, ...]


@dataclass(frozen=True)
class LearningCurves:
    """The front members' curves, and the members without a per-epoch history."""

    accuracy_key: str
    curves: tuple[LearningCurve, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class ParcoordsAxis:
    """One parallel-coordinates axis (``tickvals``/``ticktext`` for a categorical one)."""

    label: str
    values: tuple[Any, ...]
    tickvals: tuple[int, ...] | None = None
    ticktext: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Parcoords:
    """One family's varying hyperparameters over its measured trials, and their accuracy."""

    family: str
    accuracy_key: str
    trial_ids: tuple[str, ...]
    axes: tuple[ParcoordsAxis, ...]
    accuracy: tuple[float, ...]


@dataclass(frozen=True)
class StatusReason:
    """One distinct reason a trial is off the fronts, and the trials it applies to."""

    status: str
    reason: str
    trial_ids: tuple[str, ...]


@dataclass(frozen=True)
class StatusTable:
    """Trials per family and status, and every reason a trial is off the fronts."""

    families: tuple[str, ...]
    statuses: tuple[str, ...]
    counts: dict[tuple[str, str], int]
    n_trials: int
    reasons: tuple[StatusReason, ...]

    def count(self, family: str, status: str) -> int:
        """Trials of ``family`` with ``status``."""
        return self.counts.get((family, status), 0)

    def total(self, status: str) -> int:
        """Trials of ``status`` over all families."""
        return sum(self.count(f, status) for f in self.families)


@dataclass(frozen=True)
class SweepTest:
    """This sweep's test accuracy over the front-eligible (COMPLETE) trials of ``family``
    (None: all families) that record one, to set beside a published table."""

    family: str | None
    n_trials: int
    #: The trial with the highest test accuracy (picked on the test set: an upper bound).
    best: Row
    #: The trial with the highest accuracy objective (picked on validation): its test accuracy
    #: is the fair one to compare.
    selected: Row


@dataclass(frozen=True)
class PublishedData:
    """The dataset's published results table and this sweep's test accuracy beside it."""

    dataset: str
    #: The name a reader knows the dataset by (``Fashion-MNIST``).
    title: str
    #: Where the table comes from (:func:`search.data.published.published_source`).
    source: str
    #: Every published row, highest test accuracy first.
    rows: tuple[PublishedResult, ...]
    #: Overall first, then per family (report order); empty when no trial records a test
    #: accuracy.
    sweep: tuple[SweepTest, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything the report draws; see :func:`compute_report_data`."""

    results: Results
    families: tuple[str, ...]
    #: The experiment's objectives: the summary's front, the front members.
    fronts: pareto.Fronts
    front: FrontData
    matched_cost: MatchedCost | None
    members: tuple[FrontMember, ...]
    hypervolume: HypervolumeData
    learning_curves: LearningCurves
    parcoords: dict[str, Parcoords]
    importance: dict[str, Importance]
    status: StatusTable
    #: The "Which <family>" sections (families with named dimensions and a front, in report
    #: order): see :mod:`.dimensions`.
    which: dict[str, WhichFamily]
    #: The dataset's published results (None: no table for this dataset).
    published: PublishedData | None = None

    @property
    def accuracy_key(self) -> str:
        return self.results.accuracy_key


# ---------------------------------------------------------------------------------------------
# Computing them


class _FrontCache:
    """``pareto.fronts`` of the rows, once per objective tuple."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows
        self.computed: dict[tuple[Objective, ...], pareto.Fronts] = {}

    def get(self, objectives: Mapping[str, str] | Sequence[Objective]) -> pareto.Fronts:
        """The fronts of the rows for ``objectives``, computed on first use."""
        objs = pareto.as_objectives(objectives)
        if objs not in self.computed:
            self.computed[objs] = pareto.fronts(self.rows, objs)
        return self.computed[objs]


def published_cost(result: PublishedResult, key: str) -> float | None:
    """A published row's cost on axis ``key``: its parameter count on the params axis (None
    when the row gives none); a published table gives no FLOPs or latency."""
    return result.params if key == "params" else None


def _placed_published(published: Sequence[PublishedResult], key: str) -> tuple[PublishedPoint, ...]:
    """The published rows with a positive cost on axis ``key``, cheapest first."""
    costs = [(r, published_cost(r, key)) for r in published]
    points = [PublishedPoint(r, c) for r, c in costs if c is not None and c > 0]
    return tuple(sorted(points, key=lambda p: p.cost))


def _front_view(
    results: Results,
    cache: _FrontCache,
    key: str,
    title: str,
    presets: Sequence[PresetPoint],
    published: Sequence[PublishedResult],
) -> FrontView:
    """Accuracy against cost ``key``: its fronts, infeasible trials, placed presets and
    published results."""
    fronts = cache.get({results.accuracy_key: "max", key: "min"})
    infeasible = tuple(
        r
        for r in results.rows
        if r.get("status") == TrialStatus.INFEASIBLE
        and math.isfinite(as_float(r.get(key)))
        and as_float(r.get(key)) > 0
    )
    placed = sorted(
        (p for p in presets if p.cost(key) is not None and (p.cost(key) or 0) > 0),
        key=lambda p: p.cost(key) or 0.0,
    )
    return FrontView(
        key,
        title,
        fronts,
        infeasible,
        tuple(placed),
        _placed_published(published, key),
        results.dataset,
        pareto.attainment_band(fronts.eligible, results.accuracy_key, key),
        _confirmed_front(fronts, results.accuracy_key, key),
    )


def _confirmed_front(fronts: pareto.Fronts, acc: str, key: str) -> pareto.Front | None:
    """The overall front with each confirmed row at the mean of all its seeds
    (``confirmed_<acc>``); None when no row was confirmed."""
    if not any(r.get("confirmations") for r in fronts.eligible):
        return None
    means = [
        {**r, acc: r[f"confirmed_{acc}"]} if r.get(f"confirmed_{acc}") is not None else r
        for r in fronts.eligible
    ]
    return pareto.pareto_front(means, {acc: "max", key: "min"})


def _front_data(
    results: Results,
    cache: _FrontCache,
    presets: Sequence[PresetPoint],
    preset_notes: Sequence[str],
    published: Sequence[PublishedResult],
) -> FrontData:
    """The views with an eligible trial (``COST_AXES`` order) and the figure's notes."""
    views = [
        _front_view(results, cache, key, title, presets, published) for key, title in COST_AXES
    ]
    views = [v for v in views if v.fronts.eligible]
    notes = list(preset_notes)
    if views and views[0].confirmed is not None:
        joined, left = views[0].front_changes()
        notes.append(
            f"after confirmation ({views[0].cost_key}): "
            + (f"joined the front: {', '.join(joined)}; " if joined else "")
            + (f"left it: {', '.join(left)}" if left else "")
            if joined or left
            else f"after confirmation ({views[0].cost_key}): the front kept the same trials"
        )
    if not views:
        notes.append("no COMPLETE trial with finite objectives: nothing to draw")
    return FrontData(results.accuracy_key, tuple(views), tuple(notes))


def _matched_cost(results: Results, cache: _FrontCache) -> MatchedCost | None:
    """The matched-cost table over the family fronts of (accuracy, cost); None: no costs."""
    acc, cost = results.accuracy_key, results.cost_key
    fr = cache.get({acc: "max", cost: "min"})
    costs = [c for f in fr.by_family.values() for c in f.column(cost)]
    if not costs or min(costs) <= 0:
        return None
    levels = pareto.cost_levels(min(costs), max(costs))
    m = pareto.matched_accuracy(fr.by_family, levels, accuracy_key=acc, cost_key=cost)
    fams = family_sort(m.accuracy)
    headline = max(
        range(len(m.costs)), key=lambda i: (sum(m.accuracy[f][i] is not None for f in fams), -i)
    )
    tied = _tied(m, fams, headline, fr)
    rows = {str(r.get("trial_id")): r for r in fr.eligible}
    lead = rows.get(str(m.trial_ids[tied[0]][headline]), {}) if tied else {}
    return MatchedCost(m, fams, headline, tied, max(len(seed_values(lead, acc)), 1))


def _tied(
    m: pareto.MatchedAccuracy, fams: Sequence[str], level: int, fr: pareto.Fronts
) -> tuple[str, ...]:
    """The leader at matched ``level``, then the families whose best is not separated from
    its; () when the rows record no intervals."""
    best = {f: m.trial_ids[f][level] for f in fams if m.accuracy[f][level] is not None}
    if not best:
        return ()
    rows = {str(r.get("trial_id")): r for r in fr.eligible}
    leader = max(best, key=lambda f: m.accuracy[f][level] or 0.0)
    lead_row = rows.get(str(best[leader]), {})
    if pareto.row_interval(lead_row, m.accuracy_key) is None:
        return ()  # results without intervals (older sweeps): nothing to say either way
    acc = m.accuracy_key
    others = [
        f
        for f in fams
        if f in best
        and f != leader
        and pareto.separated(lead_row, rows.get(str(best[f]), {}), acc) is not True
    ]
    return (leader, *others)


def _members(fronts: pareto.Fronts) -> tuple[FrontMember, ...]:
    """Union of the per-family fronts, in report order, flagged if on the overall one."""
    on_overall = set(fronts.overall.trial_ids)
    return tuple(
        FrontMember(dict(p.row), p.trial_id in on_overall)
        for fam in family_sort(fronts.by_family)
        for p in fronts.by_family[fam].points
    )


def _hypervolume(results: Results, fronts: pareto.Fronts) -> HypervolumeData:
    """Hypervolume histories, overall and per family, against the default reference."""
    rows, objs = results.rows, results.objectives
    ref = pareto.default_reference(rows, objs)
    by_family = {
        fam: pareto.hypervolume_history(rows, objs, ref, family=fam) for fam in results.families
    }
    return HypervolumeData(
        ref,
        pareto.front_hypervolume(fronts.overall, ref),
        pareto.hypervolume_history(rows, objs, ref),
        by_family,
    )


def _learning_curves(acc: str, members: Sequence[FrontMember]) -> LearningCurves:
    """The members' per-epoch accuracy; members without one are ``missing``."""
    curves: list[LearningCurve] = []
    missing: list[str] = []
    for m in members:
        hist = [h for h in (m.row.get("history") or []) if math.isfinite(as_float(h.get(acc)))]
        if not hist:
            missing.append(m.trial_id)
            continue
        epochs = tuple(h.get("epoch") for h in hist)
        accuracy = tuple(as_float(h.get(acc)) for h in hist)
        curves.append(LearningCurve(m.trial_id, m.family, m.overall, epochs, accuracy))
    return LearningCurves(acc, tuple(curves), tuple(missing))


def _parcoords_axis(name: str, values: Sequence[Any]) -> ParcoordsAxis:
    """Numbers as they are (log10 where :func:`log_scaled`), anything else as categories."""
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        for v in values
    )
    if numeric:
        nums = [float(v) for v in values]
        lo, hi = min(nums), max(nums)
        if log_scaled(name, lo, hi):
            return ParcoordsAxis(f"log10({name})", tuple(math.log10(v) for v in nums))
        return ParcoordsAxis(name, tuple(nums))
    labels = ["n/a" if v is None else str(v) for v in values]
    cats = sorted(set(labels))
    return ParcoordsAxis(
        name, tuple(cats.index(s) for s in labels), tuple(range(len(cats))), tuple(cats)
    )


def _parcoords(acc: str, family: str, rows: Sequence[Row]) -> Parcoords:
    """``family``'s varying hyperparameters over its measured trials ``rows``."""
    axes = [_parcoords_axis(n, [hp_value(r, n) for r in rows]) for n in hp_columns(rows)]
    return Parcoords(
        family,
        acc,
        tuple(str(r.get("trial_id")) for r in rows),
        tuple(axes),
        tuple(as_float(r.get(acc)) for r in rows),
    )


def _reason(row: Row) -> str:
    """Why a trial is off the fronts: its failure's first line, or what stopped it."""
    text = str(row.get("failure_reason") or "").strip().splitlines()
    if text:
        return text[0][:200]
    if row.get("status") == TrialStatus.STOPPED:
        return f"early-stopped by the scheduler after {row.get('epochs_run')} epochs"
    return "(no reason recorded)"


def _status_reasons(results: Results) -> tuple[StatusReason, ...]:
    """Every (status, reason) of a trial off the fronts, with its trial ids, sorted."""
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results.rows:
        status = str(r.get("status"))
        if status in TrialStatus.on_front():
            if pareto.is_eligible(r, results.objectives):
                continue
            reason = "completed but an objective is missing or not finite"
        else:
            reason = _reason(r)
        reasons[(status, reason)].append(str(r.get("trial_id")))
    return tuple(StatusReason(s, why, tuple(ids)) for (s, why), ids in sorted(reasons.items()))


def _status_table(results: Results) -> StatusTable:
    """Trials per family and status (the fixed columns, then any other status)."""
    counts = Counter((str(r.get("family")), str(r.get("status"))) for r in results.rows)
    extra = sorted({s for _, s in counts} - set(STATUS_COLUMNS))
    return StatusTable(
        results.families,
        (*STATUS_COLUMNS, *extra),
        dict(counts),
        len(results.rows),
        _status_reasons(results),
    )


def _sweep_test(acc: str, family: str | None, rows: Sequence[Row]) -> SweepTest | None:
    """The best test accuracy of ``rows`` (front-eligible) and the best-``acc`` trial's; None
    when none records a test accuracy."""
    tested = [r for r in rows if math.isfinite(as_float(r.get("test_accuracy")))]
    if not tested:
        return None
    best = max(tested, key=lambda r: as_float(r.get("test_accuracy")))
    selected = max(tested, key=lambda r: as_float(r.get(acc)))
    return SweepTest(family, len(tested), best, selected)


def _published(results: Results, fronts: pareto.Fronts) -> PublishedData | None:
    """The dataset's published table (best first) and this sweep's test accuracy, overall and
    per family; None when the dataset has no table."""
    dataset = results.dataset
    rows = published_results(dataset)
    if not rows:
        return None
    eligible = fronts.eligible
    groups: list[tuple[str | None, Sequence[Row]]] = [(None, eligible)]
    groups += [(f, [r for r in eligible if str(r.get("family")) == f]) for f in results.families]
    sweep = [_sweep_test(results.accuracy_key, f, rs) for f, rs in groups]
    facts = DATASET_FACTS.get(dataset)
    return PublishedData(
        dataset,
        facts.title if facts and facts.title else dataset,
        published_source(dataset),
        tuple(sorted(rows, key=lambda r: -r.test_accuracy)),
        tuple(s for s in sweep if s is not None),
    )


def _which(
    results: Results, front: FrontData, dimensions: Mapping[str, Sequence[str]]
) -> dict[str, WhichFamily]:
    """The "Which <family>" data on the front views, the experiment's cost axis first."""
    views = sorted(front.views, key=lambda v: v.cost_key != results.cost_key)
    if not views:
        return {}
    return which_families(results.rows, [(v.fronts, v.title) for v in views], dimensions)


def compute_report_data(
    results: Results,
    presets: Sequence[PresetPoint] | None = None,
    *,
    preset_notes: Sequence[str] = (),
    dimensions: Mapping[str, Sequence[str]] | None = None,
) -> ReportData:
    """Everything the report shows, from ``results``; each front is computed once.

    ``presets=None`` places ``models.PRESETS`` (imports torch; its notes replace
    ``preset_notes``); pass ``[]`` to leave them out. ``dimensions`` (family -> named
    dimensions) defaults to ``spaces.DIMENSIONS``.
    """
    if presets is None:
        presets, preset_notes = preset_points()
    if dimensions is None:
        dimensions = named_dimensions()
    cache = _FrontCache(results.rows)
    fronts = cache.get(results.objectives)
    acc = results.accuracy_key
    members = _members(fronts)
    eligible = {
        f: [r for r in fronts.eligible if str(r.get("family")) == f] for f in results.families
    }
    published = _published(results, fronts)
    front = _front_data(results, cache, presets, preset_notes, published.rows if published else ())
    return ReportData(
        results=results,
        families=results.families,
        fronts=fronts,
        front=front,
        matched_cost=_matched_cost(results, cache),
        members=members,
        hypervolume=_hypervolume(results, fronts),
        learning_curves=_learning_curves(acc, members),
        parcoords={f: _parcoords(acc, f, rows) for f, rows in eligible.items()},
        importance={f: family_importance(results, f, rows) for f, rows in eligible.items()},
        status=_status_table(results),
        which=_which(results, front, dimensions),
        published=published,
    )
