"""The sweep: Optuna proposes, Ray Tune schedules (MO-ASHA), DeepSpeed trains, the study records.

``run(experiment)`` runs a sweep into its output directory; ``resume(output_dir)`` continues an
interrupted one. Both return a :class:`SweepResult`. A sweep is resumable at any point because
the Optuna study (SQLite ``optuna.db`` by default, any RDB URL accepted) is written at every
trial's end: on resume, finished trials are kept, trials that were running are re-queued with
the same configuration, and the sampler goes on with its full history.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search import console
from search import storage as store
from search.errors import UserError, reason
from search.experiment import Experiment, load_experiment, redact, with_output_dir
from search.results import export_results, objective_columns, read_trials
from search.sweep.guards import (
    RunLock,
    refuse_existing_sweep,
    stored_experiment,
    undo_empty_start,
    write_new,
)
from search.sweep.interrupts import SweepInterrupted, catch_stops, deferred, interruption
from search.sweep.preflight import Ready, preflight
from search.sweep.ray_cluster import RayAddress, ray_connection
from search.sweep.study import (
    count_requeued,
    count_trained,
    has_trials,
    open_study,
    requeue_interrupted,
    study_storage,
)

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from search.data import DatasetSplits

__all__ = [
    "CostEstimator",
    "SweepResult",
    "make_scheduler",
    "resume",
    "run",
    "stop_reason",
]


@dataclass(frozen=True)
class SweepResult:
    """Where a sweep's results are, its trials and its overall Pareto front."""

    experiment: Experiment
    #: A local folder, or the object-store URI (text) the sweep wrote to.
    output_dir: store.Where
    trials: list[dict[str, Any]]
    front: list[dict[str, Any]]
    objectives: dict[str, str]
    #: How ``front_probability`` was computed: ``model``, ``draws``, per family ``seed_sd``.
    membership: dict[str, Any] = field(default_factory=dict)

    @property
    def trials_csv(self) -> store.Where:
        return store.join(self.output_dir, "trials.csv")

    @property
    def report_html(self) -> store.Where:
        return store.join(self.output_dir, "report.html")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.trials:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out


def run(
    experiment: Experiment | str | Path | dict[str, Any] = "default",
    *,
    overrides: list[str] | tuple[str, ...] = (),
    output_dir: str | Path | None = None,
    address: str | RayAddress | None = None,
    report: bool = True,
    verbose: bool = True,
) -> SweepResult:
    """Run a sweep. ``experiment`` is an Experiment, a preset name, a YAML path or a dict.

    Everything is checked before anything is written (:func:`~search.sweep.preflight.preflight`):
    the experiment, the output directory (it must be a folder that can be created and written,
    holding no sweep: use :func:`resume` to continue one), the storage (it opens; a study of
    this name in it is adopted), the Ray address (well formed, answering within
    :data:`CONNECT_TIMEOUT_S`), the resources a trial needs and the data. So finished results
    are never overwritten, and a sweep that stops before its first trial leaves nothing behind.
    SIGINT and SIGTERM stop it cleanly (:mod:`search.sweep.interrupts`).
    """
    exp = load_experiment(experiment, overrides)  # an Experiment comes back as it is
    if output_dir is not None:
        exp = with_output_dir(exp, output_dir)
    where = exp.output_location()
    with (
        catch_stops(where),
        preflight(exp, address) as ready,
        ray_connection(ready.address, start_local=True),
    ):
        if isinstance(where, str):
            return _run_uri(exp, where, ready, report=report, verbose=verbose)
        return _run_local(exp, where, ready, report=report, verbose=verbose)


def resume(
    output_dir: str | Path,
    *,
    address: str | RayAddress | None = None,
    report: bool = True,
    verbose: bool = True,
    experiment: Experiment | None = None,
) -> SweepResult:
    """Continue an interrupted sweep from its output directory (checked first: its
    ``experiment.yaml``, its study readable and of that name, the Ray address, the resources
    and the data). ``experiment``: the stored experiment when the caller has read it already
    (:func:`stored_experiment`)."""
    exp = experiment if experiment is not None else stored_experiment(output_dir)
    out = exp.output_location()
    with (
        catch_stops(out),
        preflight(exp, address, resuming=True) as ready,
        ray_connection(ready.address, start_local=True),
    ):
        return _sweep(exp, out, ready, report=report, verbose=verbose)


def _run_local(
    exp: Experiment, out: Path, ready: Ready, *, report: bool, verbose: bool
) -> SweepResult:
    created = [p for p in (out, *out.parents) if not p.exists()]  # leaf first
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"output_dir={str(out)!r}: cannot create it ({reason(exc)})") from None
    try:
        with RunLock(out):
            refuse_existing_sweep(exp, out)  # again: no other run can start here now
            try:
                write_new(out / "experiment.yaml", exp.to_yaml())
                return _sweep(exp, out, ready, report=report, verbose=verbose)
            except BaseException as exc:
                _nothing_kept(exc, undo_empty_start(exp, out))
                raise
    finally:
        with contextlib.suppress(OSError):
            for folder in created:
                folder.rmdir()  # only if empty: a run that wrote nothing leaves no folder


# ---- object-store output (s3://bucket/prefix) -------------------------------------------------
# The same steps as a local run, through search.storage. No lock file: an object store has no
# exclusive create, so one driver per URI is the user's to keep (the run guard still refuses a
# URI that holds a sweep). The study is in the RDB the experiment names (validation requires
# `storage` for a URI output).


def _run_uri(
    exp: Experiment, uri: str, ready: Ready, *, report: bool, verbose: bool
) -> SweepResult:
    try:
        store.write_text(store.join(uri, "experiment.yaml"), exp.to_yaml())
    except OSError as exc:
        raise UserError(
            f"output_dir={uri!r}: cannot write experiment.yaml ({reason(exc)})"
        ) from None
    try:
        return _sweep(exp, uri, ready, report=report, verbose=verbose)
    except BaseException as exc:
        undone = False
        with contextlib.suppress(OSError, UserError, sqlite3.Error):
            if not store.exists(store.join(uri, "tune")) and not has_trials(exp):
                store.delete(store.join(uri, "experiment.yaml"))
                console.drop_log()
                undone = True
        _nothing_kept(exc, undone)
        raise


def _data(ready: Ready) -> DatasetSplits:
    if ready.data is None:  # pragma: no cover - only a dry run skips the data
        raise RuntimeError("a sweep needs its data loaded (the preflight skipped it)")
    return ready.data


def _nothing_kept(exc: BaseException, undone: bool) -> None:
    """A stop signal's line names ``resume`` only when the run left a sweep to resume."""
    if undone and isinstance(exc, SweepInterrupted):
        exc.output = None


def _sweep(
    exp: Experiment, out: store.Where, ready: Ready, *, report: bool, verbose: bool
) -> SweepResult:
    """The sweep into ``out``, its study first. The study is only ever written whole: a stop
    signal that comes while it is written waits for the end of the write (``deferred``; in
    Tune's loop, the end of the loop's step)."""
    lock = RunLock(out) if isinstance(out, Path) else contextlib.nullcontext()
    with lock:
        marked = 0
        try:
            with deferred():
                console.keep_log_in(out)
                study = open_study(exp)
                requeue_interrupted(exp, study)  # trials a killed driver left running
                requeued = count_requeued(study)
                done = count_trained(study)
            remaining = exp.num_trials - done
            _log(
                verbose,
                f"study {exp.name!r} at {redact(exp.storage_url())}: "
                f"{done} trials done, {remaining} to run"
                + (f" ({requeued} interrupted re-queued)" if requeued else ""),
            )
            try:
                if remaining > 0:
                    # A new seed per (re)start: a resume must not replay the first run's
                    # proposals.
                    seed = exp.seed + len(study.trials)
                    with deferred():
                        _fit(exp, out, _data(ready), remaining, seed=seed, verbose=verbose)
            finally:
                # Whatever ended the run (its last trial, a stop signal, an error), the trials
                # still in flight are marked INTERRUPTED and re-queued, and the tables are
                # written whole.
                with deferred():
                    study = open_study(exp)
                    marked = requeue_interrupted(exp, study)
                    export_results(study, out, experiment=exp.to_dict())
            if exp.confirm.max_trainings > 0 and isinstance(out, Path):
                _confirm_phase(exp, out, _data(ready), verbose=verbose)
            result = _result(exp, out)
            if report:
                _write_report(out, verbose)
            return result
        except KeyboardInterrupt as exc:
            stop = interruption(exc)
            stop.output, stop.marked = out, marked
            raise stop from None


def _fit(
    exp: Experiment,
    out: store.Where,
    data: DatasetSplits,
    num_samples: int,
    *,
    seed: int,
    verbose: bool,
) -> None:
    """The Tune run (Ray is connected already: ``run`` / ``resume``)."""
    from ray import tune

    from search.sweep.progress import ProgressCallback
    from search.sweep.samplers import make_sampler
    from search.sweep.searcher import BudgetedOptunaSearch
    from search.sweep.stopping import StopBetweenSteps
    from search.trial import train_trial
    from spaces import joint

    # Per-epoch checkpoints are intended; Tune's warning about frequent snapshots is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Stops are the sweep's (search.sweep.interrupts): Tune's own SIGINT handler would end the
    # run as if it had finished, its trials left RUNNING.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    space = joint(
        exp.families,
        image_size=data.image_size,
        in_channels=data.in_channels,
        overrides=exp.space,
    )
    limits = {"flops": exp.budget.max_flops, "params": exp.budget.max_params}
    storage = study_storage(exp)
    searcher = BudgetedOptunaSearch(
        space,
        metrics=exp.objective_metrics,
        modes=exp.objective_modes,
        estimate_fn=CostEstimator(data.image_size, data.in_channels, data.num_classes),
        limits=limits,
        max_epochs=exp.epochs,
        families=exp.family_shares(),
        sampler=make_sampler(exp.sampler, seed=seed, num_trials=exp.num_trials),
        seed=seed,
        study_name=exp.name,
        storage=storage,
        stop_reason=stop_reason(exp),
    )
    res = exp.resources
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, experiment=exp, data=data), res.trial_bundles()[0]
    )
    run_name = _next_run_name(out)
    storage_path, storage_filesystem = store.tune_storage(out)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(exp),
            num_samples=num_samples,
            max_concurrent_trials=res.max_concurrent_trials,
            # One worker process trains trial after trial: no process start and no
            # torch/DeepSpeed import per trial (the process group is kept for reuse).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            failure_config=tune.FailureConfig(max_failures=res.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[
                ProgressCallback(searcher, total=num_samples, epochs=exp.epochs, enabled=verbose),
                StopBetweenSteps(),
            ],
            verbose=0,
        ),
    )
    _log(verbose, f"Tune experiment: {store.join(out, 'tune', run_name)}")
    tuner.fit()
    searcher.finish_errored()


def make_scheduler(exp: Experiment) -> TrialScheduler:
    """The experiment's early-stopping rule as a Tune scheduler (FIFO: none)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.experiment.rungs import grace_period, judged_epochs
    from search.sweep.schedulers import MultiObjectiveASHA

    grace, eta = grace_period(exp), exp.scheduler.reduction_factor
    if not judged_epochs(exp):
        return FIFOScheduler()
    if exp.scheduler.name == "asha":
        return ASHAScheduler(
            metric="val_accuracy",
            mode="max",
            max_t=exp.epochs,
            grace_period=grace,
            reduction_factor=eta,
        )
    return MultiObjectiveASHA(
        metrics=exp.objective_metrics,
        modes=exp.objective_modes,
        max_t=exp.epochs,
        grace_period=grace,
        reduction_factor=eta,
        group_by=_rung_group(exp),
    )


def _rung_group(exp: Experiment) -> str | None:
    """With equal family shares, MO-ASHA ranks a trial against its own family at every rung."""
    return "family" if exp.family_allocation == "equal" else None


def stop_reason(exp: Experiment) -> str:
    """Why the experiment's scheduler stops a trial at a rung (a STOPPED row's reason)."""
    eta = exp.scheduler.reduction_factor
    if exp.scheduler.name == "asha":
        return f"ASHA: its val_accuracy was below the best 1/{eta} of the trials measured there"
    among = " of its family" if _rung_group(exp) else ""
    return (
        f"MO-ASHA: neither on the first non-dominated front ({', '.join(exp.objective_metrics)}) "
        f"nor among the best 1/{eta} of the trials{among} measured there"
    )


def _next_run_name(out: store.Where) -> str:
    k = 1
    while store.exists(store.join(out, "tune", f"run-{k}")):
        k += 1
    return f"run-{k}"


@dataclass(frozen=True)
class CostEstimator:
    """Analytic cost of a proposal (picklable: Tune checkpoints the searcher holding it)."""

    image_size: int
    in_channels: int
    num_classes: int

    def __call__(self, proposal: dict[str, Any]) -> dict[str, float]:
        from models.cost import estimate
        from spaces import split_proposal

        family, model_hp, _ = split_proposal(proposal)
        try:
            cost = estimate(
                family,
                image_size=self.image_size,
                in_channels=self.in_channels,
                num_classes=self.num_classes,
                **model_hp,
            )
        except ValueError:
            return {}  # invalid: the trial will fail with the model's own message
        return {"flops": float(cost.flops), "params": float(cost.params)}


def _result(exp: Experiment, out: store.Where) -> SweepResult:
    from search.pareto import fronts

    doc = read_trials(out)
    rows = doc["trials"]
    front = fronts(rows, doc["objectives"]).overall
    return SweepResult(
        experiment=exp,
        output_dir=out,
        trials=rows,
        front=[dict(p.row) for p in front.points],
        objectives=objective_columns(exp.objectives),
        membership=doc["membership"],
    )


def _confirm_phase(exp: Experiment, out: Path, data: DatasetSplits, *, verbose: bool) -> None:
    """The sweep's last phase: ``paretotune confirm`` with ``exp.confirm``'s budget, then the
    tables again with the new seeds merged (each seed is kept as it finishes)."""
    from search.sweep.confirm import confirm

    doc = read_trials(out)
    outcome = confirm(
        out,
        experiment=exp,
        rows=list(doc["trials"]),
        objectives=doc["objectives"],
        seeds=exp.confirm.seeds,
        max_trainings=exp.confirm.max_trainings,
        data=data,
        say=lambda line: _log(verbose, line),
    )
    _log(verbose, f"confirmation: {len(outcome.trained)} seed(s); {outcome.stopped_because}")
    with deferred():
        export_results(open_study(exp), out, experiment=exp.to_dict())


def _write_report(out: store.Where, verbose: bool) -> None:
    try:
        from search.report import write_report

        path = write_report(out)
        _log(verbose, f"report: {path}")
    except Exception as exc:  # the results are written; a report problem must not hide them
        console.say(f"paretotune: warning: report not written: {exc}", err=True)


def _log(verbose: bool, message: str) -> None:
    if verbose:
        console.say(f"[paretotune] {message}")
