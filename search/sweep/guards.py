"""What keeps a sweep's results safe: ``run`` writes only into a folder it can write that holds
no sweep, ``resume`` continues only a study that is there, one driver at a time per folder
(:class:`RunLock`), and a run that stops before its first trial leaves nothing behind."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import ClassVar

from search import console
from search import storage as store
from search.errors import UserError, reason
from search.experiment import Experiment, experiment_from_text, load_experiment, redact
from search.sweep.study import has_trials, sqlite_studies, stored_trials

__all__ = [
    "SWEEP_FILES",
    "RunLock",
    "check_resumable",
    "check_writable_dir",
    "load_uri_experiment",
    "refuse_existing_sweep",
    "refuse_existing_uri",
    "stored_experiment",
    "undo_empty_start",
    "write_new",
]

#: What a results directory holds once a sweep has used it (see docs/architecture.md).
SWEEP_FILES = ("experiment.yaml", "trials.json", "trials.csv", "optuna.db", "tune", "report.html")


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
        raise UserError(f"{command} {uri}: cannot read experiment.yaml ({reason(exc)})") from None
    except UserError as exc:
        raise UserError(f"{command} {exc}") from None
    try:
        return experiment_from_text(text.encode("utf-8"), str(path))
    except UserError as exc:
        raise UserError(f"{command} {uri}: experiment.yaml: {exc}") from None


def refuse_existing_uri(exp: Experiment, uri: str) -> None:
    present = [n for n in SWEEP_FILES if store.exists(store.join(uri, n))]
    if present:
        raise UserError(
            f"output dir {uri} already holds a sweep; continue it with `paretotune resume {uri}` "
            f"or choose another --output (found: {', '.join(present)})"
        )
    stored_trials(exp)  # reachable and readable (a study of this name is adopted)


def check_writable_dir(out: Path) -> None:
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


def refuse_existing_sweep(exp: Experiment, out: Path) -> None:
    """Refuse an output directory holding any sweep, of any name (``run`` never writes over
    results), and a storage that cannot be opened. A study of the experiment's name already in
    an RDB server is adopted: its trials count, and are exported into this output dir."""
    lock = out / RunLock.NAME
    pid = RunLock.holder(lock)
    if pid is not None:
        raise UserError(f"output dir {out}: a sweep (pid {pid}) is running there; wait or stop it")
    present = [name for name in SWEEP_FILES if (out / name).exists()] if out.is_dir() else []
    db = out / "optuna.db"
    if "optuna.db" in present:
        try:
            studies = sqlite_studies(db)
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
        stored_trials(exp)  # reachable and readable (a study of this name is adopted)


def check_resumable(exp: Experiment, out: store.Where) -> None:
    """The study ``resume`` continues must be there and readable: a fresh study in its place
    would export an empty table over ``trials.csv``/``trials.json``."""
    try:
        stored = stored_trials(exp)
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


def write_new(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (:func:`search.storage.write_text`); one line if not."""
    try:
        store.write_text(path, text)
    except OSError as exc:
        raise UserError(
            f"output dir {path.parent}: cannot write {path.name} ({reason(exc)})"
        ) from None


def undo_empty_start(exp: Experiment, out: Path) -> bool:
    """A sweep that stopped before its first trial (bad data, no Ray, Ctrl-C) leaves nothing
    behind, so running it again is not refused; anything with trials is kept for resume.
    True when the start was undone."""
    try:
        if (out / "tune").exists():
            return False
        if exp.storage is None:
            db = out / "optuna.db"
            if db.exists():
                if any(sqlite_studies(db).values()):
                    return False
                db.unlink()
        elif has_trials(exp):
            return False
        (out / "experiment.yaml").unlink(missing_ok=True)
        console.drop_log()
        return True
    except (OSError, sqlite3.Error, UserError):
        return False  # leave it: the original error is what the user must see


class RunLock:
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

    def __enter__(self) -> RunLock:
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
                    f"output dir {self.path.parent}: cannot write there ({reason(exc)})"
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
