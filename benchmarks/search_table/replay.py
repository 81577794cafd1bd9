"""Replay a sampler on the tabular benchmark: the sweep's rules, the table's measurements.

A replayed trial looks its result up in ``table.csv`` (``build.py``) instead of training. What
stays real is everything that decides *which* trials run:

* **Proposals** come from the sweep's own proposer (``search.sweep.proposer.Proposer``, the rules
  the Tune searcher applies; see :func:`open_proposer`) over the sweep's joint
  space with the grid's values as overrides: equal family shares (the least-trained family is
  enqueued before each ask) and ``DUPLICATE`` records for configurations already trained.
* **Learning rate.** ``adamw.lr`` stays the continuous log range the sweep searches; the
  proposal's ``lr`` is snapped to the nearest grid value in log space before the proposer
  checks for duplicates or the table is read (every other parameter is a categorical over the
  grid's values). The sampler therefore sees its own continuous lr with the snapped row's
  result. A snapped duplicate costs nothing, as in the searcher.
* **Early stopping** is the sweep's scheduler (``search.sweep.make_scheduler``: MO-ASHA, grace
  10, eta 3, per family), fed one result per epoch: the val accuracy of that epoch from the
  row's curve and the row's FLOPs. A stopped trial never reads its curve past the rung.
* **Concurrency.** ``max_concurrent_trials`` trials run at once on an event clock that
  advances by the table's epoch times: a new proposal is made when a slot frees, so samplers
  see running trials (constant liar etc.) as in the sweep.
* **Compute** is the sum of the epoch times of the epochs actually trained.
* **Seeds.** A table built with several seeds per row holds each seed's curve. A replayed
  trial observes what a single-seed sweep would: one seed's curve, drawn per trial from the
  replay's seed, at that seed's share of the epoch times (``observe="seed"``); or, the
  noise-aware variant, the seeds' mean at all of their cost (``observe="mean"``: the sweep
  with ``replicates``). Either way the hypervolume is measured at the seeds' mean, the truth as
  far as the table knows it, so a sampler gains nothing from a lucky draw.
* **Anytime rows** (a Perceiver trained once, read at iterations 1..T) add each iteration
  count's point to their family's front, as the report counts them.

Hypervolume (``search.pareto``) counts COMPLETE trials only, with the reference point of the
whole table (:func:`default_reference`), normalised by the whole table's front. Two views:
``hv``, of the one front over every family (the report's overall front), and ``family_hv``,
the mean over families of each family's front as a fraction of that family's front in the
table (the report's per-family fronts, which equal family shares are there to measure).
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from search.experiment import Experiment
from search.pareto import Reference, default_reference, hypervolume, non_dominated_mask
from search.sweep.proposer import Proposer
from search.sweep.samplers import make_sampler
from search.vocabulary import DEFAULT_OBJECTIVES, TrialStatus, study_direction

__all__ = [
    "OBJECTIVES",
    "OBSERVE",
    "SAMPLERS",
    "ReplayResult",
    "Row",
    "Table",
    "TrialRecord",
    "load_table",
    "open_proposer",
    "parse_variant",
    "replay",
    "replay_space",
    "table_from_rows",
]

#: The sweep's objectives, in the study's order.
OBJECTIVES = dict(DEFAULT_OBJECTIVES)
SAMPLERS = ("random", "tpe", "nsga2", "gp")
#: What a replayed trial observes of a seeded row: one seed's curve, or the seeds' mean.
OBSERVE = ("seed", "mean")
#: The suffix of a variant that observes the seeds' mean (``tpe-means``).
MEANS_SUFFIX = "-means"


def parse_variant(name: str) -> tuple[str, str]:
    """``tpe`` -> (``tpe``, ``seed``); ``tpe-means`` -> (``tpe``, ``mean``)."""
    sampler = name.removesuffix(MEANS_SUFFIX)
    if sampler not in SAMPLERS:
        allowed = ", ".join(f"{s}[{MEANS_SUFFIX}]" for s in SAMPLERS)
        raise ValueError(f"sampler={name!r}; allowed: {allowed}")
    return sampler, "mean" if name != sampler else "seed"


@dataclass(frozen=True)
class Row:
    """One trained grid point: its final result (the seeds' mean), learning curve and
    per-epoch times (every seed's), each seed's curve and final val, and its front points."""

    config: str
    family: str
    status: str
    val_accuracy: float
    flops: float
    params: float
    val_curve: tuple[float, ...]
    time_curve: tuple[float, ...]
    #: per seed: its val curve and final val (one seed: the row's own)
    val_curves: tuple[tuple[float, ...], ...] = ()
    val_seeds: tuple[float, ...] = ()
    #: (val accuracy, FLOPs) of each iteration count of an anytime row (else the row's)
    points: tuple[tuple[float, float], ...] = ()

    @property
    def seeds(self) -> int:
        """How many seeds the row was trained with."""
        return max(1, len(self.val_curves))

    def curve(self, seed: int | None) -> tuple[float, ...]:
        """The val curve seed ``seed`` observed (None: the seeds' mean)."""
        return self.val_curve if seed is None or not self.val_curves else self.val_curves[seed]

    def final(self, seed: int | None) -> float:
        """The final val accuracy seed ``seed`` observed (None: the seeds' mean)."""
        return self.val_accuracy if seed is None or not self.val_seeds else self.val_seeds[seed]

    def front_points(self) -> tuple[tuple[float, float], ...]:
        """What the row adds to its family's front when COMPLETE (at the seeds' mean)."""
        return self.points or ((self.val_accuracy, self.flops),)


@dataclass(frozen=True)
class Table:
    """The rows by configuration (the proposal as sorted JSON) and the hypervolume yardstick."""

    rows: Mapping[str, Row]
    reference: Reference
    front_hv: float
    #: proposal key -> the float values the table holds for it (the snapping grid)
    grids: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    #: family -> the hypervolume of that family's front in the table
    family_front_hv: Mapping[str, float] = field(default_factory=dict)
    #: the configurations with a point on their family's front in the table
    family_front: frozenset[str] = frozenset()

    def snap(self, proposal: Mapping[str, Any]) -> dict[str, Any]:
        """``proposal`` with every float off the grid moved to its nearest grid value (log)."""
        out = dict(proposal)
        for key, grid in self.grids.items():
            value = out.get(key)
            if isinstance(value, float) and value > 0 and value not in grid:
                out[key] = min(grid, key=lambda g: abs(math.log(g) - math.log(value)))
        return out

    def lookup(self, proposal: Mapping[str, Any]) -> Row:
        """The row of a (snapped) proposal; ``KeyError`` when the table lacks it."""
        key = config_key(proposal)
        if key not in self.rows:
            raise KeyError(f"no table row for proposal {key}")
        return self.rows[key]

    def hv(self, points: Iterable[tuple[float, float]]) -> float:
        """Hypervolume of ``points`` (val_accuracy, flops) as a fraction of the table's."""
        return _hypervolume(points, self.reference) / self.front_hv

    def family_hv(self, points: Mapping[str, Iterable[tuple[float, float]]]) -> float:
        """Mean over the table's families of the hypervolume of ``points[family]`` as a
        fraction of that family's front in the table (a family without points: 0)."""
        shares = [
            _hypervolume(points.get(f, ()), self.reference) / hv
            for f, hv in self.family_front_hv.items()
        ]
        return sum(shares) / len(shares)


def _hypervolume(points: Iterable[tuple[float, float]], reference: Reference) -> float:
    directions = list(OBJECTIVES.values())
    return hypervolume(list(points), reference.point, directions, log_scale=reference.log_scale)


def config_key(proposal: Mapping[str, Any]) -> str:
    """A proposal's identity, as the table's ``config`` column spells it."""
    return json.dumps(dict(proposal), sort_keys=True)


def _row(raw: Mapping[str, Any]) -> Row:
    def number(name: str) -> float:
        value = raw.get(name)
        return float(value) if value not in (None, "") else math.nan

    def optional(name: str) -> Any:
        return json.loads(raw.get(name) or "null") or ()

    anytime = optional("anytime")
    return Row(
        config=config_key(json.loads(raw["config"])),
        family=str(raw["family"]),
        status=str(raw["status"]),
        val_accuracy=number("val_accuracy"),
        flops=number("flops"),
        params=number("params"),
        val_curve=tuple(float(v) for v in json.loads(raw["val_curve"])),
        time_curve=tuple(float(v) for v in json.loads(raw["time_curve"])),
        val_curves=tuple(tuple(float(v) for v in c) for c in optional("val_curves")),
        val_seeds=tuple(float(v) for v in optional("val_accuracy_seeds")),
        points=tuple((float(p["val_accuracy"]), float(p["flops"])) for p in anytime),
    )


def _front_configs(rows: Iterable[Row]) -> frozenset[str]:
    """The COMPLETE rows with a point on their family's front."""
    by_family: dict[str, list[tuple[str, tuple[float, float]]]] = {}
    for r in rows:
        if r.status == "COMPLETE":
            by_family.setdefault(r.family, []).extend((r.config, p) for p in r.front_points())
    directions = list(OBJECTIVES.values())
    on_front: set[str] = set()
    for points in by_family.values():
        mask = non_dominated_mask([p for _, p in points], directions)
        on_front.update(config for (config, _), keep in zip(points, mask) if keep)
    return frozenset(on_front)


def _float_grids(rows: Iterable[Row]) -> dict[str, tuple[float, ...]]:
    """Per proposal key whose table values are all positive floats: those values, sorted."""
    seen: dict[str, set[Any]] = {}
    for row in rows:
        for key, value in json.loads(row.config).items():
            seen.setdefault(key, set()).add(value)
    return {
        key: tuple(sorted(values))
        for key, values in seen.items()
        if all(isinstance(v, float) and v > 0 for v in values)
    }


def table_from_rows(raw_rows: Iterable[Mapping[str, Any]]) -> Table:
    """A :class:`Table` from ``table.csv`` dict rows (strings or numbers)."""
    rows = [_row(r) for r in raw_rows]
    by_config = {r.config: r for r in rows}
    if len(by_config) != len(rows):
        raise ValueError("the table holds a configuration twice")
    plain = [
        {"status": r.status, "val_accuracy": val, "flops": flops}
        for r in rows
        for val, flops in r.front_points()
    ]
    reference = default_reference(plain, OBJECTIVES)
    complete: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r.status == "COMPLETE":
            complete.setdefault(r.family, []).extend(r.front_points())
    front_hv = _hypervolume([p for pts in complete.values() for p in pts], reference)
    family_hv = {f: _hypervolume(pts, reference) for f, pts in complete.items()}
    if not front_hv > 0 or not all(hv > 0 for hv in family_hv.values()):
        raise ValueError("a family of the table has no COMPLETE row with a positive hypervolume")
    return Table(
        by_config, reference, front_hv, _float_grids(rows), family_hv, _front_configs(rows)
    )


def load_table(path: str | Path, families: Iterable[str] | None = None) -> Table:
    """Read ``table.csv`` as written by ``build.py``: the rows of ``families`` when given, so
    that the hypervolume yardsticks are those of the families a replay searches."""
    keep = None if families is None else set(families)
    with Path(path).open(newline="") as fh:
        return table_from_rows(r for r in csv.DictReader(fh) if keep is None or r["family"] in keep)


def replay_space(experiment: Experiment, overrides: Mapping[str, Any]) -> Callable[..., Any]:
    """The sweep's joint space with ``overrides`` (the grid) on top of the experiment's."""
    from search.sweep import load_experiment_data
    from spaces import joint

    data = load_experiment_data(experiment)
    return joint(
        experiment.families,
        image_size=data.image_size,
        in_channels=data.in_channels,
        overrides={**experiment.space, **overrides},
    )


# ---------------------------------------------------------------------------------------------
# The glue to the sweep's proposer (switch here when search.sweep.proposer lands)


class _ReplayProposer:
    """The sweep's :class:`~search.sweep.proposer.Proposer` behind handles the event clock holds."""

    def __init__(self, proposer: Proposer) -> None:
        self._proposer = proposer
        self._open: dict[str, optuna.Trial] = {}

    @property
    def study(self) -> optuna.Study:
        return self._proposer.study

    def propose(self) -> tuple[str, dict[str, Any]]:
        trial, proposal = self._proposer.propose()
        handle = f"replay-{trial.number:05d}"
        self._open[handle] = trial
        return handle, proposal

    def finish(self, handle: str, status: str, result: dict[str, Any]) -> None:
        """Tell the study: COMPLETE (values), STOPPED (pruned) or FAILED."""
        trial = self._open.pop(handle)
        if status == "FAILED":
            self._proposer.fail(trial, "failed in the table")
        else:
            self._proposer.finish(trial, result)


def open_proposer(
    space: Callable[..., Any],
    table: Table,
    experiment: Experiment,
    *,
    sampler: str,
    seed: int,
    num_trials: int,
) -> _ReplayProposer:
    """A fresh in-memory study and the sweep's proposal rules over ``space`` (lr snapped)."""

    def snapped(trial: optuna.Trial) -> dict[str, Any]:
        return table.snap(space(trial))

    def estimate(proposal: dict[str, Any]) -> dict[str, float]:
        row = table.lookup(proposal)  # every proposal must hit a row
        return {"flops": row.flops, "params": row.params}

    study = optuna.create_study(
        directions=[study_direction(m) for m in OBJECTIVES.values()],
        sampler=make_sampler(sampler, seed=seed, num_trials=num_trials),
    )
    proposer = Proposer(
        study,
        snapped,
        objectives=OBJECTIVES,
        estimate_fn=estimate,
        limits={},
        max_epochs=experiment.epochs,
        families=experiment.family_shares(),
        seed=seed,
    )
    return _ReplayProposer(proposer)


# ---------------------------------------------------------------------------------------------
# The event clock


@dataclass(frozen=True)
class TrialRecord:
    """One trained trial of a replay (finish order)."""

    number: int
    family: str
    config: str
    status: str
    epochs: int
    compute_s: float
    started_s: float
    finished_s: float
    #: the front points it adds at the seeds' mean (COMPLETE only)
    points: tuple[tuple[float, float], ...]
    #: the row's seed it observed (None: the seeds' mean)
    observed_seed: int | None = None


@dataclass(frozen=True)
class ReplayResult:
    """A replay's trials in finish order; ``hv[i]``, ``family_hv[i]`` and ``compute_s[i]``
    after trial ``i + 1``."""

    sampler: str
    seed: int
    trials: tuple[TrialRecord, ...]
    duplicates: int
    exhausted: bool
    hv: tuple[float, ...]
    compute_s: tuple[float, ...]
    family_hv: tuple[float, ...] = ()


@dataclass
class _Running:
    number: int
    handle: str
    proposal: dict[str, Any]
    row: Row
    started_s: float
    #: the seed it observes (None: the seeds' mean, at every seed's cost)
    seed: int | None
    epoch: int = 0
    spent_s: float = 0.0

    def epoch_time(self) -> float:
        """What its next epoch costs: one seed's share of the row's, or all of it."""
        share = 1.0 if self.seed is None else 1.0 / self.row.seeds
        return self.row.time_curve[self.epoch] * share


@dataclass(frozen=True)
class _TuneTrial:
    """What the scheduler reads of a Tune trial."""

    trial_id: str
    config: dict[str, Any]


def _outcome(run: _Running, decision: str, epochs: int) -> str | None:
    """The trial's status after its epoch ``run.epoch`` (None: it goes on), by the sweep's
    own rule once it has ended (failed, stopped by the scheduler or at its budget)."""
    failed = run.row.status != "COMPLETE" and run.epoch >= len(run.row.time_curve)
    if not (failed or run.epoch >= epochs or decision == "STOP"):
        return None
    return str(TrialStatus.ended(failed=failed, epochs_run=run.epoch, max_epochs=epochs))


def _result(run: _Running, status: str) -> dict[str, Any]:
    """The last result a finished trial reports (what the proposer records)."""
    row = run.row
    final = status == "COMPLETE"
    return {
        "val_accuracy": row.final(run.seed) if final else row.curve(run.seed)[run.epoch - 1],
        "flops": row.flops,
        "params": row.params,
        "epoch": run.epoch,
        "train_time_s": run.spent_s,
    }


class _Clock:
    """Trials as epoch-end events in simulated time, ``slots`` at once."""

    def __init__(
        self,
        proposer: _ReplayProposer,
        table: Table,
        scheduler: Any,
        *,
        observe: str = "seed",
        seed: int = 0,
    ) -> None:
        self.proposer, self.table, self.scheduler = proposer, table, scheduler
        self.observe = observe
        self.draw = random.Random(seed)  # which seed each trial observes
        self.events: list[tuple[float, int, _Running]] = []
        self.records: list[TrialRecord] = []
        self.proposed = 0
        self.exhausted = False

    def start(self, now: float) -> None:
        """Propose and start one trial at ``now`` (or note that the proposer gave up)."""
        try:
            handle, proposal = self.proposer.propose()
        except RuntimeError:  # the searcher's "N proposals in a row already trained"
            self.exhausted = True
            return
        row = self.table.lookup(proposal)
        seed = self.draw.randrange(row.seeds) if self.observe == "seed" else None
        run = _Running(self.proposed, handle, proposal, row, now, seed)
        self.proposed += 1
        self._schedule(run, now)

    def _schedule(self, run: _Running, now: float) -> None:
        if run.epoch >= len(run.row.time_curve):  # failed before its first epoch
            heapq.heappush(self.events, (now, run.number, run))
            return
        heapq.heappush(self.events, (now + run.epoch_time(), run.number, run))

    def step(self, epochs: int) -> float:
        """Process the next epoch end; returns its time."""
        now, _, run = heapq.heappop(self.events)
        decision = "CONTINUE"
        if run.epoch < len(run.row.time_curve):
            run.spent_s += run.epoch_time()
            run.epoch += 1
            report = {
                "epoch": run.epoch,
                "val_accuracy": run.row.curve(run.seed)[run.epoch - 1],
                "flops": run.row.flops,
            }
            trial = _TuneTrial(run.handle, run.proposal)
            decision = str(self.scheduler.on_trial_result(None, trial, report))
        status = _outcome(run, decision, epochs)
        if status is None:
            self._schedule(run, now)
        else:
            self._finish(run, status, now)
        return now

    def _finish(self, run: _Running, status: str, now: float) -> None:
        result = _result(run, status)
        self.proposer.finish(run.handle, status, result)
        points = run.row.front_points() if status == "COMPLETE" else ()
        self.records.append(
            TrialRecord(
                run.number,
                run.row.family,
                run.row.config,
                status,
                run.epoch,
                run.spent_s,
                run.started_s,
                now,
                points,
                run.seed,
            )
        )


def _hv_curves(table: Table, records: Iterable[TrialRecord]) -> tuple[list[float], list[float]]:
    """Both hypervolume views of the COMPLETE trials after each finished trial: overall
    (``Table.hv``) and per family (``Table.family_hv``). Only each family's front is kept: the
    overall front lies within their union, so both views are recomputed only when a trial
    joins its family's front."""
    fronts: dict[str, list[tuple[float, float]]] = {}
    directions = list(OBJECTIVES.values())
    hv = family_hv = 0.0
    overall, per_family = [], []
    for rec in records:
        if rec.points:
            candidate = [*fronts.get(rec.family, []), *rec.points]
            mask = non_dominated_mask(candidate, directions)
            if any(mask[-len(rec.points) :]):
                fronts[rec.family] = [p for p, keep in zip(candidate, mask) if keep]
                hv = table.hv(p for front in fronts.values() for p in front)
                family_hv = table.family_hv(fronts)
        overall.append(hv)
        per_family.append(family_hv)
    return overall, per_family


def replay(
    table: Table,
    space: Callable[..., Any],
    experiment: Experiment,
    *,
    sampler: str,
    seed: int,
    num_trials: int,
    observe: str = "seed",
) -> ReplayResult:
    """One replayed sweep of ``num_trials`` trained trials with ``sampler`` seeded ``seed``,
    each trial observing one seed of its row or the seeds' mean (``observe``, :data:`OBSERVE`)."""
    from search.sweep import make_scheduler

    if observe not in OBSERVE:
        raise ValueError(f"observe={observe!r}; allowed: {', '.join(OBSERVE)}")
    proposer = open_proposer(
        space, table, experiment, sampler=sampler, seed=seed, num_trials=num_trials
    )
    clock = _Clock(proposer, table, make_scheduler(experiment), observe=observe, seed=seed)
    slots = experiment.resources.max_concurrent_trials
    for _ in range(min(slots, num_trials)):
        clock.start(0.0)
    while clock.events:
        before = len(clock.records)
        now = clock.step(experiment.epochs)
        if len(clock.records) > before and clock.proposed < num_trials and not clock.exhausted:
            clock.start(now)
    records = tuple(clock.records)
    compute, spent = [], 0.0
    for rec in records:
        spent += rec.compute_s
        compute.append(spent)
    trials = proposer.study.get_trials(deepcopy=False)
    duplicates = sum(1 for t in trials if t.user_attrs.get("status") == "DUPLICATE")
    hv, family_hv = _hv_curves(table, records)
    return ReplayResult(
        sampler,
        seed,
        records,
        duplicates,
        clock.exhausted,
        tuple(hv),
        tuple(compute),
        tuple(family_hv),
    )
