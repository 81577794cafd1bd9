"""The sweep's Optuna study: opened (created with its metric names, its SQLite schema built
whole), read without writing (which studies a storage holds), and what resuming it means for
the trials a stopped driver left running."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Literal

import optuna

from search.errors import UserError, reason
from search.experiment import Experiment, redact
from search.vocabulary import TrialStatus, study_direction

__all__ = [
    "CONNECT_TIMEOUT_S",
    "count_requeued",
    "count_trained",
    "has_trials",
    "open_study",
    "requeue_interrupted",
    "sqlite_studies",
    "stored_trials",
    "study_storage",
]

#: Seconds a connection check (database server, Ray address) may take before it fails.
CONNECT_TIMEOUT_S = 5.0


def open_study(experiment: Experiment, *, create: bool = True) -> optuna.Study:
    """The experiment's Optuna study (created with metric names so dashboards label axes)."""
    storage = study_storage(experiment)
    directions: list[Literal["maximize", "minimize"]] = [
        study_direction(m) for m in experiment.objective_modes
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


def study_storage(experiment: Experiment) -> optuna.storages.RDBStorage:
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


def requeue_interrupted(experiment: Experiment, study: optuna.Study) -> int:
    """Trials left RUNNING by a stopped driver: mark them INTERRUPTED, close them and queue
    their configuration again; return how many. The driver does this when a stop signal or
    an error ends it (``search.sweep.tuner``), ``resume`` for a driver that was killed.

    The mark is written before the trial is closed (Optuna freezes attributes then), through
    the storage's public API. It covers a trial the driver had only begun to propose when it
    stopped, which has no status yet and would otherwise read as FAILED: a trained trial that
    never trained, counted against the budget while its re-queued copy trains as well.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return 0
    storage = study_storage(experiment)
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "status", str(TrialStatus.INTERRUPTED))
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={"requeued_from": t.number})
    return len(running)


def count_requeued(study: optuna.Study) -> int:
    """Interrupted trials queued again and waiting for their turn."""
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    return sum(1 for t in waiting if "requeued_from" in t.user_attrs)


def has_trials(exp: Experiment) -> bool:
    """Whether the experiment's storage holds trials of a study of the experiment's name
    (read only: nothing is created, in the output directory or the database)."""
    return stored_trials(exp).get(exp.name, 0) > 0


def stored_trials(exp: Experiment) -> dict[str, int]:
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
            return sqlite_studies(db)
        except sqlite3.Error as exc:
            raise UserError(
                f"{shown}: {db} is not a readable Optuna database ({reason(exc)}); move it "
                "away or restore it from a backup"
            ) from None
    return _server_studies(url, shown)


def sqlite_studies(path: Path) -> dict[str, int]:
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
            f"{shown}: cannot open the database ({reason(exc)}); check the server, the user and "
            "the database name"
        ) from None
