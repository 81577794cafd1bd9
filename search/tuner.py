"""The sweep: Optuna proposes, Ray Tune schedules (MO-ASHA), DeepSpeed trains, the study records.

``run(experiment)`` runs a sweep into its output directory; ``resume(output_dir)`` continues an
interrupted one. Both return a :class:`SweepResult`. A sweep is resumable at any point because
the Optuna study (SQLite ``optuna.db`` by default, any RDB URL accepted) is written at every
trial's end: on resume, finished trials are kept, trials that were running are re-queued with
the same configuration, and the sampler goes on with its full history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import optuna

from search import console
from search import storage as store
from search.errors import UserError
from search.experiment import (
    Experiment,
    experiment_from_text,
    load_experiment,
    redact,
    with_output_dir,
)
from search.results import export_results, load_rows, objective_columns
from search.vocabulary import TrialStatus

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from search.data import DatasetSplits

__all__ = [
    "SweepResult",
    "count_trained",
    "load_experiment_data",
    "make_scheduler",
    "open_study",
    "resume",
    "run",
    "stored_experiment",
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


# ---- study --------------------------------------------------------------------------------------
def open_study(experiment: Experiment, *, create: bool = True) -> optuna.Study:
    """The experiment's Optuna study (created with metric names so dashboards label axes)."""
    storage = _storage(experiment)
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


def _storage(experiment: Experiment) -> optuna.storages.RDBStorage:
    url = experiment.storage_url()
    _create_sqlite_schema_whole(url)
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def _sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite://`` URL (None for another backend, or in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").expanduser()


def _create_sqlite_schema_whole(url: str) -> None:
    """A new SQLite study file appears with Optuna's schema complete, never half-made.

    Optuna builds its tables and stamps the schema version on first open; a second process
    opening the file meanwhile (optuna-dashboard on a sweep that is just starting, a poller)
    stamps it too, and one of them fails (``UNIQUE constraint failed:
    alembic_version.version_num``). So the schema is built in a temporary file beside the
    target and linked into place: whoever sees ``optuna.db`` sees a finished schema. A file
    that appears meanwhile is kept (link refuses to replace it).
    """
    path = _sqlite_file(url)
    if path is None or path.exists() or not path.parent.is_dir():
        return
    from sqlalchemy.engine import make_url

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # as SQLite would create it (mkstemp's file is private)
        building = make_url(url).set(database=tmp).render_as_string(hide_password=False)
        optuna.storages.RDBStorage(building).engine.dispose()
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def count_trained(study: optuna.Study) -> int:
    """Trials that used their share of the budget (finished, stopped early, or failed)."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.user_attrs.get("status") in TrialStatus.trained()
    )


def _requeue_interrupted(experiment: Experiment, study: optuna.Study) -> int:
    """Trials left RUNNING by a stopped driver: mark them INTERRUPTED, close them and queue
    their configuration again.

    The mark is written before the trial is closed (Optuna freezes attributes then), through
    the storage's public API. It covers a trial the driver had only begun to propose when it
    stopped, which has no status yet and would otherwise read as FAILED: a trained trial that
    never trained, counted against the budget while its re-queued copy trains as well.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return 0
    storage = _storage(experiment)
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "status", str(TrialStatus.INTERRUPTED))
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={"requeued_from": t.number})
    return len(running)


# ---- run / resume -----------------------------------------------------------------------------
#: What a results directory holds once a sweep has used it (see docs/architecture.md).
_SWEEP_FILES = ("experiment.yaml", "trials.json", "trials.csv", "optuna.db", "tune", "report.html")
#: Seconds a connection check (Ray address, database server) may take before it fails.
CONNECT_TIMEOUT_S = 5.0


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

    Everything is checked before anything is written: the experiment, the output directory (it
    must be a folder that can be created and written, holding no sweep: use :func:`resume` to
    continue one), the storage (it opens; a study of this name in it is adopted) and the Ray
    address (well formed, answering within :data:`CONNECT_TIMEOUT_S`). So finished results are
    never overwritten, and a sweep that stops before its first trial leaves nothing behind.
    """
    exp = load_experiment(experiment, overrides)  # an Experiment comes back as it is
    if output_dir is not None:
        exp = with_output_dir(exp, output_dir)
    where = exp.output_location()
    if isinstance(where, str):
        return _run_uri(exp, where, address=address, report=report, verbose=verbose)
    out = exp.resolved_output_dir()
    _check_writable_dir(out)
    _refuse_existing_sweep(exp, out)
    ray_address = _ray_address(address)
    created = [p for p in (out, *out.parents) if not p.exists()]  # leaf first
    with _ray_connection(ray_address):
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"output_dir={str(out)!r}: cannot create it ({_reason(exc)})") from None
        try:
            with _RunLock(out):
                _refuse_existing_sweep(exp, out)  # again: no other run can start here now
                try:
                    _write_new(out / "experiment.yaml", exp.to_yaml())
                    return _sweep(exp, out, address=ray_address, report=report, verbose=verbose)
                except BaseException:
                    _undo_empty_start(exp, out)
                    raise
        finally:
            with contextlib.suppress(OSError):
                for folder in created:
                    folder.rmdir()  # only if empty: a run that wrote nothing leaves no folder


def resume(
    output_dir: str | Path,
    *,
    address: str | None = None,
    report: bool = True,
    verbose: bool = True,
    experiment: Experiment | None = None,
) -> SweepResult:
    """Continue an interrupted sweep from its output directory (checked first: its
    ``experiment.yaml``, its study readable and of that name, the Ray address). ``experiment``:
    the stored experiment when the caller has read it already (:func:`stored_experiment`)."""
    exp = experiment if experiment is not None else stored_experiment(output_dir)
    out = exp.output_location()
    _check_resumable(exp, out)
    ray_address = _ray_address(address)
    with _ray_connection(ray_address):
        return _sweep(exp, out, address=ray_address, report=report, verbose=verbose)


def stored_experiment(output_dir: str | Path) -> Experiment:
    """The experiment of the sweep in ``output_dir`` (a folder or an object-store URI), read
    from its ``experiment.yaml`` and validated, with its output dir the one given (where the
    study and tables are, wherever the sweep first ran); a UserError naming it otherwise."""
    if store.is_uri(output_dir) and "\0" not in str(output_dir):
        uri = store.normalize(str(output_dir))
        return dataclasses.replace(load_uri_experiment("resume", uri), output_dir=uri)
    if "\0" in str(output_dir):
        raise UserError(f"resume {str(output_dir)!r}: not a folder path (it holds a NUL byte)")
    try:
        out = Path(output_dir).expanduser().absolute()
    except RuntimeError as exc:
        raise UserError(f"resume {output_dir}: cannot expand the path ({exc})") from None
    if not out.is_dir():
        what = "a file, not a results folder" if out.exists() else "no such folder"
        raise UserError(f"resume {out}: {what}")
    if not (out / "experiment.yaml").is_file():
        raise UserError(f"resume {out}: no experiment.yaml there; is it a paretotune output dir?")
    try:
        exp = load_experiment(out / "experiment.yaml")
    except UserError as exc:
        raise UserError(f"resume {out}: experiment.yaml: {exc}") from None
    return dataclasses.replace(exp, output_dir=str(out))


# ---- object-store output (s3://bucket/prefix) -------------------------------------------------
# The same steps as a local run, through search.storage. No lock file: an object store has no
# exclusive create, so one driver per URI is the user's to keep (the run guard still refuses a
# URI that holds a sweep). The study is in the RDB the experiment names (validation requires
# `storage` for a URI output).
def _run_uri(
    exp: Experiment, uri: str, *, address: str | None, report: bool, verbose: bool
) -> SweepResult:
    store.check_bucket(uri)
    _refuse_existing_uri(exp, uri)
    ray_address = _ray_address(address)
    with _ray_connection(ray_address):
        try:
            store.write_text(store.join(uri, "experiment.yaml"), exp.to_yaml())
        except OSError as exc:
            raise UserError(
                f"output_dir={uri!r}: cannot write experiment.yaml ({_reason(exc)})"
            ) from None
        try:
            return _sweep(exp, uri, address=ray_address, report=report, verbose=verbose)
        except BaseException:
            with contextlib.suppress(OSError, UserError, sqlite3.Error):
                if not store.exists(store.join(uri, "tune")) and not _has_trials(exp):
                    store.delete(store.join(uri, "experiment.yaml"))
                    console.drop_log()
            raise


def _refuse_existing_uri(exp: Experiment, uri: str) -> None:
    present = [n for n in _SWEEP_FILES if store.exists(store.join(uri, n))]
    if present:
        raise UserError(
            f"output dir {uri} already holds a sweep; continue it with `paretotune resume {uri}` "
            f"or choose another --output (found: {', '.join(present)})"
        )
    _stored_trials(exp)  # reachable and readable (a study of this name is adopted)


def load_uri_experiment(command: str, uri: str) -> Experiment:
    """``<uri>/experiment.yaml`` (a UserError naming ``command`` and the URI otherwise)."""
    path = store.join(uri, "experiment.yaml")
    try:
        text = store.read_text(path)
    except FileNotFoundError:
        raise UserError(
            f"{command} {uri}: no experiment.yaml there; is it a paretotune output dir?"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{command} {uri}: cannot read experiment.yaml ({_reason(exc)})") from None
    except UserError as exc:
        raise UserError(f"{command} {exc}") from None
    try:
        return experiment_from_text(text.encode("utf-8"), str(path))
    except UserError as exc:
        raise UserError(f"{command} {uri}: experiment.yaml: {exc}") from None


def _has_trials(exp: Experiment) -> bool:
    """Whether the experiment's storage holds trials of a study of the experiment's name
    (read only: nothing is created, in the output directory or the database)."""
    return _stored_trials(exp).get(exp.name, 0) > 0


def _reason(exc: BaseException) -> str:
    """One line of an exception: its strerror, else its first line (SQLAlchemy appends
    background links on further lines)."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    text = getattr(exc, "strerror", None) or str(orig if orig is not None else exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_writable_dir(out: Path) -> None:
    """``out`` is a folder we can write, or one we can create; else one line saying why."""
    shown = f"output_dir={str(out)!r}"
    for part in out.parts:
        if len(part.encode()) > 255:
            raise UserError(f"{shown}: the name {part[:40]!r}... is longer than 255 bytes")
    if out.exists() and not out.is_dir():
        raise UserError(f"{shown}: is a file, not a folder; choose another --output")
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{shown}: cannot create it: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "write there" if probe == out else f"create it in {probe}"
        raise UserError(f"{shown}: cannot {what} (permission denied or read-only)")


def _refuse_existing_sweep(exp: Experiment, out: Path) -> None:
    """Refuse an output directory holding any sweep, of any name (``run`` never writes over
    results), and a storage that cannot be opened. A study of the experiment's name already in
    an RDB server is adopted: its trials count, and are exported into this output dir."""
    lock = out / _RunLock.NAME
    pid = _RunLock.holder(lock)
    if pid is not None:
        raise UserError(f"output dir {out}: a sweep (pid {pid}) is running there; wait or stop it")
    present = [name for name in _SWEEP_FILES if (out / name).exists()] if out.is_dir() else []
    db = out / "optuna.db"
    if "optuna.db" in present:
        try:
            studies = _sqlite_studies(db)
        except sqlite3.Error:
            studies = None  # unreadable: someone's data all the same
        if studies == {} and present == ["optuna.db"]:
            present = []  # an empty database file: nothing to lose
        elif studies:
            present[present.index("optuna.db")] = "optuna.db with study " + ", ".join(
                repr(n) for n in studies
            )
    if present:
        raise UserError(
            f"output dir {out} already holds a sweep; continue it with `paretotune resume {out}` "
            f"or choose another --output (found: {', '.join(present)})"
        )
    if exp.storage is not None:
        _stored_trials(exp)  # reachable and readable (a study of this name is adopted)


def _check_resumable(exp: Experiment, out: store.Where) -> None:
    """The study ``resume`` continues must be there and readable: a fresh study in its place
    would export an empty table over ``trials.csv``/``trials.json``."""
    try:
        stored = _stored_trials(exp)
    except UserError as exc:
        raise UserError(f"resume {out}: {exc}") from None
    if exp.name in stored:
        return
    rows = _table_rows(store.join(out, "trials.json"))
    where = "optuna.db" if exp.storage is None else f"storage={redact(exp.storage)!r}"
    if stored:
        raise UserError(
            f"resume {out}: {where} holds study "
            + ", ".join(repr(n) for n in stored)
            + f", not {exp.name!r} (the name in experiment.yaml)"
        )
    if rows:
        raise UserError(
            f"resume {out}: trials.json lists {rows} trials but {where} has no study "
            f"{exp.name!r}; restore optuna.db (the study) to continue, the tables alone cannot"
        )


def _table_rows(path: store.Where) -> int:
    """Rows of a results table (0 when it is missing or unreadable)."""
    try:
        doc = json.loads(store.read_text(path))
    except (OSError, ValueError, UserError):
        return 0
    trials = doc.get("trials") if isinstance(doc, dict) else None
    return len(trials) if isinstance(trials, list) else 0


def _stored_trials(exp: Experiment) -> dict[str, int]:
    """Study name -> trial count in the experiment's storage, read only; ``{}`` when it does not
    exist yet. A storage that cannot be opened is a UserError naming it."""
    url = exp.storage_url()
    shown = "optuna.db" if exp.storage is None else f"storage={redact(url)!r}"
    db = _sqlite_file(url)
    if db is not None:
        if not db.exists():
            if exp.storage is not None and not db.parent.is_dir():
                what = "is a file, not a folder" if db.parent.exists() else "does not exist"
                raise UserError(f"{shown}: {db.parent} {what}; the database file goes in a folder")
            return {}
        if not db.is_file():
            raise UserError(f"{shown}: {db} is not a file")
        try:
            return _sqlite_studies(db)
        except sqlite3.Error as exc:
            raise UserError(
                f"{shown}: {db} is not a readable Optuna database ({_reason(exc)}); move it "
                "away or restore it from a backup"
            ) from None
    return _server_studies(url, shown)


def _sqlite_studies(path: Path) -> dict[str, int]:
    """Study name -> trial count of an Optuna SQLite file, opened read-only (sqlite3.Error if it
    is not a database)."""
    con = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "studies" not in tables:
            return {}
        if "trials" not in tables:
            return {n: 0 for (n,) in con.execute("SELECT study_name FROM studies")}
        rows = con.execute(
            "SELECT s.study_name, COUNT(t.trial_id) FROM studies s "
            "LEFT JOIN trials t ON t.study_id = s.study_id GROUP BY s.study_id, s.study_name"
        )
        return {str(name): int(n) for name, n in rows}
    finally:
        con.close()


def _server_studies(url: str, shown: str) -> dict[str, int]:
    """Study name -> trial count on a database server, connecting within CONNECT_TIMEOUT_S."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": int(CONNECT_TIMEOUT_S)}
    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=timeout)
        try:
            with engine.connect() as conn:
                if not sqlalchemy.inspect(conn).has_table("studies"):
                    return {}
                rows = conn.execute(
                    sqlalchemy.text(
                        "SELECT s.study_name, COUNT(t.trial_id) FROM studies s "
                        "LEFT JOIN trials t ON t.study_id = s.study_id "
                        "GROUP BY s.study_id, s.study_name"
                    )
                )
                return {str(name): int(n) for name, n in rows}
        finally:
            engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UserError(
            f"{shown}: cannot open the database ({_reason(exc)}); check the server, the user and "
            "the database name"
        ) from None


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (:func:`search.storage.write_text`); one line if not."""
    try:
        store.write_text(path, text)
    except OSError as exc:
        raise UserError(
            f"output dir {path.parent}: cannot write {path.name} ({_reason(exc)})"
        ) from None


def _undo_empty_start(exp: Experiment, out: Path) -> None:
    """A sweep that stopped before its first trial (bad data, no Ray, Ctrl-C) leaves nothing
    behind, so running it again is not refused; anything with trials is kept for resume."""
    try:
        if (out / "tune").exists():
            return
        if exp.storage is None:
            db = out / "optuna.db"
            if db.exists():
                if any(_sqlite_studies(db).values()):
                    return
                db.unlink()
        elif _has_trials(exp):
            return
        (out / "experiment.yaml").unlink(missing_ok=True)
        console.drop_log()
    except (OSError, sqlite3.Error, UserError):
        pass  # leave it: the original error is what the user must see


def _sweep(
    exp: Experiment, out: store.Where, *, address: str | None, report: bool, verbose: bool
) -> SweepResult:
    lock = _RunLock(out) if isinstance(out, Path) else contextlib.nullcontext()
    with lock:
        console.keep_log_in(out)
        data = load_experiment_data(exp)
        study = open_study(exp)
        requeued = _requeue_interrupted(exp, study)
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


def load_experiment_data(exp: Experiment) -> DatasetSplits:
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
    exp: Experiment,
    out: store.Where,
    data: DatasetSplits,
    num_samples: int,
    *,
    address: str | None,
    verbose: bool,
) -> None:
    import ray
    from ray import tune

    from search.progress import ProgressCallback
    from search.samplers import make_sampler
    from search.searcher import BudgetedOptunaSearch
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
        storage = optuna.storages.RDBStorage(exp.storage_url())
        # A new seed per (re)start: a resume must not replay the first run's proposals.
        seed = exp.seed + len(open_study(exp).trials)
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
        storage_path, storage_filesystem = store.tune_storage(out)
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
                storage_path=storage_path,
                storage_filesystem=storage_filesystem,
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
        _log(verbose, f"Tune experiment: {store.join(out, 'tune', run_name)}")
        tuner.fit()
        searcher.finish_errored()
    finally:
        if started_ray:
            ray.shutdown()


def make_scheduler(exp: Experiment) -> TrialScheduler:
    """The experiment's early-stopping rule as a Tune scheduler (FIFO: none)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.rungs import grace_period, judged_epochs
    from search.schedulers import MultiObjectiveASHA

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
        # With equal family shares, a trial is ranked against its own family at every rung.
        group_by="family" if exp.family_allocation == "equal" else None,
    )


def _ray_address(address: str | None, *, probe: bool = True) -> str | None:
    """The Ray address to connect to (``--address``, else ``RAY_ADDRESS``), checked: ``None``
    (a private local Ray), ``auto``, ``HOST:PORT`` (the cluster's GCS) or ``ray://HOST[:PORT]``
    (Ray Client), whose port must answer within :data:`CONNECT_TIMEOUT_S` (Ray itself retries
    a dead address for minutes; ``probe=False`` checks the form only). Anything else is a
    UserError naming the flag."""
    flag = "--address"
    if address is None:
        env = os.environ.get("RAY_ADDRESS")
        if env is None or not env.strip():
            return None  # Ray too ignores an empty RAY_ADDRESS
        address, flag = env, "RAY_ADDRESS"
    if not isinstance(address, str):
        raise UserError(f"{flag}={address!r}: expected text such as 10.0.0.5:6379")
    value = address.strip()
    forms = "HOST:PORT (the head's GCS, e.g. 10.0.0.5:6379), ray://HOST:10001 or auto"
    if not value:
        raise UserError(
            f"{flag}={address!r}: empty; give {forms}, or leave {flag} out for a private local Ray"
        )
    if value == "local":
        return None
    if value == "auto":
        found = _find_local_cluster(flag) if probe else None
        if found is not None:
            _probe_ray(flag, value, *_split_host_port(flag, found, default_port=None))
        return value
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise UserError(
            f"{flag}={value!r}: an http(s) address is the dashboard's Jobs API, for `paretotune "
            f"submit` / `jobs`; run and resume take {forms}"
        )
    if scheme not in ("", "ray"):
        raise UserError(f"{flag}={value!r}: unknown scheme {scheme + '://'!r}; allowed: {forms}")
    host, port = _split_host_port(flag, value, rest, default_port=10001 if scheme else None)
    if probe:
        _probe_ray(flag, value, host, port)
    return value


def _split_host_port(
    flag: str, shown: str, rest: str | None = None, *, default_port: int | None
) -> tuple[str, int]:
    """``HOST:PORT`` / ``[IPv6]:PORT`` -> (host, port), else a UserError naming ``flag``."""
    rest = shown if rest is None else rest
    where = f"{flag}={shown!r}"
    if "/" in rest.rstrip("/") or "@" in rest or any(c.isspace() for c in rest):
        raise UserError(f"{where}: expected HOST:PORT, without a path, user or spaces")
    rest = rest.rstrip("/")
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise UserError(f"{where}: an IPv6 host is written [ADDRESS]:PORT, e.g. [::1]:6379")
        port_text = tail[1:] if tail else ""
    else:
        if rest.count(":") > 1:
            raise UserError(f"{where}: an IPv6 host is written [ADDRESS]:PORT, e.g. [::1]:6379")
        host, _, port_text = rest.partition(":")
        if not host:
            raise UserError(f"{where}: no host; expected HOST:PORT, e.g. 10.0.0.5:6379")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            raise UserError(f"{where}: {host!r} is not a host name or IP address")
    if not port_text and ":" not in rest.removeprefix("[" + host + "]") and default_port:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UserError(
            f"{where}: port {port_text!r} is not a number from 1 to 65535; expected HOST:PORT, "
            "e.g. 10.0.0.5:6379"
        )
    return host, int(port_text)


def _find_local_cluster(flag: str) -> str | None:
    """``auto``: the address of the Ray cluster running on this machine (``ray start``)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # pragma: no cover - Ray moved it: let ray.init look
        return None
    try:
        return str(canonicalize_bootstrap_address_or_die("auto"))
    except ConnectionError as exc:
        raise UserError(
            f"{flag}=auto: no running Ray cluster found on this machine ({_reason(exc)}); start "
            "one with `ray start --head`, give HOST:PORT, or leave it out for a private local Ray"
        ) from None
    except Exception:  # Ray internals: let ray.init decide
        return None


def _probe_ray(flag: str, shown: str, host: str, port: int) -> None:
    """Fail within CONNECT_TIMEOUT_S unless ``host:port`` accepts a connection and speaks gRPC
    (the GCS and the Ray Client server both do)."""
    where = f"{flag}={shown!r}"
    hint = f"start the head with `ray start --head`, or leave {flag} out for a private local Ray"
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except socket.gaierror as exc:
        raise UserError(f"{where}: unknown host {host!r} ({_reason(exc)})") from None
    except TimeoutError:
        raise UserError(
            f"{where}: no answer within {CONNECT_TIMEOUT_S:g} s; is the head reachable? {hint}"
        ) from None
    except OSError as exc:
        raise UserError(f"{where}: no Ray cluster there ({_reason(exc)}); {hint}") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS GCS does not answer a plain gRPC handshake: the TCP check is all we do
    try:
        import grpc
    except ImportError:  # pragma: no cover - Ray depends on grpcio
        return
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        raise UserError(
            f"{where}: something listens there, but not a Ray cluster (no gRPC answer within "
            f"{CONNECT_TIMEOUT_S:g} s); the GCS port is usually 6379, Ray Client's 10001"
        ) from None
    finally:
        channel.close()


@contextlib.contextmanager
def _ray_connection(address: str | None) -> Iterator[None]:
    """Connected to the cluster at ``address`` (checked) for the block, unless Ray is already
    initialised in this process or ``address`` is None (the sweep starts a local Ray itself)."""
    if address is None:
        yield
        return
    import ray

    if ray.is_initialized():
        yield
        return
    _init_ray(address)
    try:
        yield
    finally:
        ray.shutdown()


def _init_ray(address: str | None) -> None:
    import ray

    target = _ray_address(address)
    # Trial output (DeepSpeed, Ray Train) stays in the trials' logs; progress lines come from
    # the driver. PARETOTUNE_WORKER_LOGS=1 streams the workers' output too.
    log_to_driver = os.environ.get("PARETOTUNE_WORKER_LOGS", "0") == "1"
    if target:
        flag = "--address" if address is not None else "RAY_ADDRESS"
        try:
            ray.init(address=target, log_to_driver=log_to_driver)
        except Exception as exc:  # version mismatch, auth, a cluster that went away...
            raise UserError(
                f"{flag}={target!r}: cannot connect to the Ray cluster ({_reason(exc)}); check "
                "that its Ray version matches and, with token authentication, RAY_AUTH_TOKEN"
            ) from None
    else:
        # A private local instance; no dashboard unless asked (it would bind a port).
        ray.init(include_dashboard=False, log_to_driver=log_to_driver)


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

    rows, objectives = load_rows(out)
    front = fronts(rows, objectives).overall
    return SweepResult(
        experiment=exp,
        output_dir=out,
        trials=rows,
        front=[dict(p.row) for p in front.points],
        objectives=objective_columns(exp.objectives),
    )


def _write_report(out: store.Where, verbose: bool) -> None:
    try:
        from search.report import write_report

        path = write_report(out)
        _log(verbose, f"report: {path}")
    except Exception as exc:  # the results are written; a report problem must not hide them
        console.say(f"paretotune: warning: report not written: {exc}", err=True)


class _RunLock:
    """One driver per output dir: a second ``run``/``resume`` on a live sweep is refused.

    The lock file is created exclusively (``O_EXCL``) and holds the driver's pid; a lock left by
    a dead driver is taken over. Re-entrant within a process (``run`` holds it around
    ``_sweep``, which takes it too)."""

    NAME = ".paretotune.lock"
    _held: ClassVar[dict[Path, int]] = {}

    def __init__(self, out: Path) -> None:
        self.path = out / self.NAME

    @staticmethod
    def holder(path: Path) -> int | None:
        """The pid of a live process, other than this one, holding lock file ``path``."""
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid > 0 and pid != os.getpid() and _alive(pid) else None

    def __enter__(self) -> _RunLock:
        if self._held.get(self.path):
            self._held[self.path] += 1
            return self
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = self.holder(self.path)
                if pid is not None:
                    raise UserError(
                        f"{self.path.parent}: a sweep (pid {pid}) is running there; wait or stop it"
                    ) from None
                self.path.unlink(missing_ok=True)  # left by a driver that is gone
                continue
            except OSError as exc:
                raise UserError(
                    f"output dir {self.path.parent}: cannot write there ({_reason(exc)})"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()} {time.time()}\n")
            self._held[self.path] = 1
            return self
        raise UserError(f"output dir {self.path.parent}: cannot take the lock {self.NAME}")

    def __exit__(self, *exc: object) -> None:
        depth = self._held.get(self.path, 0) - 1
        if depth > 0:
            self._held[self.path] = depth
            return
        self._held.pop(self.path, None)
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
        console.say(f"[paretotune] {message}")
