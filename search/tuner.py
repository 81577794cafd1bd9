"""The sweep: Optuna proposes, Ray Tune schedules (MO-ASHA), DeepSpeed trains, the study records.

``run(experiment)`` runs a sweep into its output directory; ``resume(output_dir)`` continues an
interrupted one. Both return a :class:`SweepResult`. A sweep is resumable at any point because
the Optuna study (SQLite ``optuna.db`` by default, any RDB URL accepted) is written at every
trial's end: on resume, finished trials are kept, trials that were running are re-queued with
the same configuration, and the sampler goes on with its full history.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna

from search.errors import UserError
from search.experiment import Experiment, load_experiment, redact
from search.results import export_results, load_rows, objective_columns

__all__ = [
    "SweepResult",
    "count_trained",
    "load_experiment_data",
    "make_scheduler",
    "open_study",
    "resume",
    "run",
]

_TRAINED = ("COMPLETE", "STOPPED", "FAILED")


@dataclass(frozen=True)
class SweepResult:
    """Where a sweep's results are, its trials and its overall Pareto front."""

    experiment: Experiment
    output_dir: Path
    trials: list[dict[str, Any]]
    front: list[dict[str, Any]]
    objectives: dict[str, str]

    @property
    def trials_csv(self) -> Path:
        return self.output_dir / "trials.csv"

    @property
    def report_html(self) -> Path:
        return self.output_dir / "report.html"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.trials:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out


# ---- study --------------------------------------------------------------------------------------
def open_study(experiment: Experiment, *, create: bool = True) -> optuna.Study:
    """The experiment's Optuna study (created with metric names so dashboards label axes)."""
    storage = optuna.storages.RDBStorage(
        experiment.storage_url(), engine_kwargs={"pool_pre_ping": True}
    )
    directions: list[Literal["maximize", "minimize"]] = [
        "maximize" if m == "max" else "minimize" for m in experiment.objective_modes
    ]
    if not create:
        return optuna.load_study(study_name=experiment.name, storage=storage)
    study = optuna.create_study(
        study_name=experiment.name, storage=storage, directions=directions, load_if_exists=True
    )
    if study.metric_names is None:
        study.set_metric_names(experiment.objective_names)
        study.set_user_attr("experiment", experiment.to_dict())
    return study


def count_trained(study: optuna.Study) -> int:
    """Trials that used their share of the budget (finished, stopped early, or failed)."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.user_attrs.get("status") in _TRAINED
    )


def _requeue_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a stopped driver: close them and queue their configuration again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage = study._storage
        storage.set_trial_user_attr(t._trial_id, "status", "INTERRUPTED")
        storage.set_trial_user_attr(
            t._trial_id, "failure_reason", "the sweep stopped while it ran; re-queued on resume"
        )
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        params = {k: v for k, v in t.params.items()}
        study.enqueue_trial(params, user_attrs={"requeued_from": t.number})
        n += 1
    return n


# ---- run / resume -----------------------------------------------------------------------------
def run(
    experiment: Experiment | str | Path | dict[str, Any] = "default",
    *,
    overrides: list[str] | tuple[str, ...] = (),
    output_dir: str | Path | None = None,
    address: str | None = None,
    report: bool = True,
    verbose: bool = True,
) -> SweepResult:
    """Run a sweep. ``experiment`` is an Experiment, a preset name, a YAML path or a dict.

    Refuses an output directory that already holds a sweep (use :func:`resume`), so finished
    results are never overwritten.
    """
    exp = load_experiment(experiment, overrides)
    if output_dir is not None:
        exp = dataclasses.replace(exp, output_dir=str(output_dir))
    out = exp.resolved_output_dir()
    if (out / "experiment.yaml").exists() and _has_trials(exp):
        raise UserError(
            f"output dir {out} already holds a sweep; continue it with `paretotune resume {out}` "
            "or choose another --output"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.yaml").write_text(exp.to_yaml())
    return _sweep(exp, out, address=address, report=report, verbose=verbose)


def resume(
    output_dir: str | Path,
    *,
    address: str | None = None,
    report: bool = True,
    verbose: bool = True,
) -> SweepResult:
    """Continue an interrupted sweep from its output directory."""
    out = Path(output_dir).expanduser().absolute()
    if not (out / "experiment.yaml").is_file():
        raise UserError(f"resume {out}: no experiment.yaml there; is it a paretotune output dir?")
    exp = load_experiment(out / "experiment.yaml")
    exp = dataclasses.replace(exp, output_dir=str(out))
    return _sweep(exp, out, address=address, report=report, verbose=verbose)


def _has_trials(exp: Experiment) -> bool:
    db = exp.resolved_output_dir() / "optuna.db"
    if exp.storage is None and not db.exists():
        return False
    try:
        return len(open_study(exp, create=False).trials) > 0
    except KeyError:
        return False


def _sweep(
    exp: Experiment, out: Path, *, address: str | None, report: bool, verbose: bool
) -> SweepResult:
    with _RunLock(out):
        data = load_experiment_data(exp)
        study = open_study(exp)
        requeued = _requeue_interrupted(study)
        remaining = exp.num_trials - count_trained(study)
        _log(
            verbose,
            f"study {exp.name!r} at {redact(exp.storage_url())}: "
            f"{count_trained(study)} trials done, {remaining} to run"
            + (f" ({requeued} interrupted re-queued)" if requeued else ""),
        )
        try:
            if remaining > 0:
                _fit(exp, out, data, remaining, address=address, verbose=verbose)
        finally:
            # Whatever happened (Ctrl-C included), what finished is exported.
            study = open_study(exp)
            export_results(study, out, experiment=exp.to_dict())
        result = _result(exp, out)
        if report:
            _write_report(out, verbose)
        return result


def load_experiment_data(exp: Experiment) -> Any:
    """The experiment's dataset splits (the same for every trial, and for ``reproduce``)."""
    from search.data import load_dataset

    return load_dataset(
        exp.dataset.name,
        image_size=exp.dataset.image_size,
        data_dir=exp.dataset.data_dir,
        download=exp.dataset.download,
        val_fraction=exp.dataset.val_fraction,
        seed=exp.seed,
        **exp.dataset.synthetic,
    )


def _fit(
    exp: Experiment, out: Path, data: Any, num_samples: int, *, address: str | None, verbose: bool
) -> None:
    import ray
    from ray import tune

    from search.progress import ProgressCallback
    from search.searcher import BudgetedOptunaSearch, make_sampler
    from search.trial import train_trial
    from spaces import joint

    # Per-epoch checkpoints are intended; Tune's warning about frequent snapshots is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    started_ray = False
    if not ray.is_initialized():
        _init_ray(address)
        started_ray = True
    try:
        space = joint(
            exp.families,
            image_size=data.image_size,
            in_channels=data.in_channels,
            overrides=exp.space,
        )
        limits = {"flops": exp.budget.max_flops, "params": exp.budget.max_params}
        constrained = any(v is not None for v in limits.values())
        storage = optuna.storages.RDBStorage(exp.storage_url())
        searcher = BudgetedOptunaSearch(
            space,
            metrics=exp.objective_metrics,
            modes=exp.objective_modes,
            estimate_fn=CostEstimator(data.image_size, data.in_channels, data.num_classes),
            limits=limits,
            max_epochs=exp.epochs,
            families=exp.families if exp.family_allocation == "equal" else None,
            # A new seed per (re)start: a resume must not replay the first run's proposals.
            sampler=make_sampler(
                exp.sampler, seed=exp.seed + len(open_study(exp).trials), constrained=constrained
            ),
            study_name=exp.name,
            storage=storage,
        )
        scheduler = make_scheduler(exp)
        res = exp.resources
        if res.workers_per_trial > 1:
            # The trainable only drives a TorchTrainer; its workers hold the real resources.
            trial_resources: dict[str, float] = {"cpu": 0.01}
        else:
            trial_resources = {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, experiment=exp, data=data), trial_resources
        )
        run_name = _next_run_name(out)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=res.max_concurrent_trials,
                # One worker process trains trial after trial: no process start and no
                # torch/DeepSpeed import per trial (the process group is kept for reuse).
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=run_name,
                storage_path=str(out / "tune"),
                failure_config=tune.FailureConfig(max_failures=res.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[
                    ProgressCallback(
                        searcher, total=num_samples, epochs=exp.epochs, enabled=verbose
                    )
                ],
                verbose=0,
            ),
        )
        _log(verbose, f"Tune experiment: {out / 'tune' / run_name}")
        tuner.fit()
        searcher.finish_errored()
    finally:
        if started_ray:
            ray.shutdown()


def make_scheduler(exp: Experiment) -> Any:
    """The experiment's early-stopping rule as a Tune scheduler (FIFO: none)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.schedulers import MultiObjectiveASHA

    grace = min(exp.scheduler.grace_period, exp.epochs)
    eta = exp.scheduler.reduction_factor
    if exp.epochs <= 1 or exp.scheduler.name == "none":
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
        # With equal family shares, a trial is ranked against its own family at every rung.
        group_by="family" if exp.family_allocation == "equal" else None,
    )


def _init_ray(address: str | None) -> None:
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    # Trial output (DeepSpeed, Ray Train) stays in the trials' logs; progress lines come from
    # the driver. PARETOTUNE_WORKER_LOGS=1 streams the workers' output too.
    log_to_driver = os.environ.get("PARETOTUNE_WORKER_LOGS", "0") == "1"
    if address:
        ray.init(address=address, log_to_driver=log_to_driver)
    else:
        # A private local instance; no dashboard unless asked (it would bind a port).
        ray.init(include_dashboard=False, log_to_driver=log_to_driver)


def _next_run_name(out: Path) -> str:
    k = 1
    while (out / "tune" / f"run-{k}").exists():
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


def _result(exp: Experiment, out: Path) -> SweepResult:
    from search.pareto import fronts

    rows, objectives = load_rows(out)
    front = fronts(rows, objectives).overall
    return SweepResult(
        experiment=exp,
        output_dir=out,
        trials=rows,
        front=[dict(p.row) for p in front.points],
        objectives=objective_columns(exp.objectives),
    )


def _write_report(out: Path, verbose: bool) -> None:
    try:
        from search.report import write_report

        path = write_report(out)
        _log(verbose, f"report: {path}")
    except Exception as exc:  # the results are written; a report problem must not hide them
        print(f"paretotune: warning: report not written: {exc}", file=sys.stderr)


class _RunLock:
    """One driver per output dir: a second ``run``/``resume`` on a live sweep is refused."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".paretotune.lock"

    def __enter__(self) -> _RunLock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().split()[0])
            except (ValueError, IndexError):
                pid = -1
            if pid > 0 and pid != os.getpid() and _alive(pid):
                raise UserError(
                    f"{self.path.parent}: a sweep (pid {pid}) is running there; wait or stop it"
                )
        self.path.write_text(f"{os.getpid()} {time.time()}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[paretotune] {message}", flush=True)
