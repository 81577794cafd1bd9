"""The results directory: ``trials.csv`` and ``trials.json`` exported from the Optuna study.

The study is the source of truth (the searcher writes every trial's record into it at the
trial's end), so the tables always agree with what ``optuna-dashboard optuna.db`` shows, and
they can be rebuilt at any time, even after a crash, with :func:`export_results`.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from search import storage
from search.errors import UserError, reason
from search.pareto.intervals import wilson
from search.pareto.membership import FAMILY_SD_SUFFIX, front_membership, seed_values
from search.vocabulary import ANYTIME_ITERATIONS, ANYTIME_OF, OBJECTIVES, TrialStatus, to_jsonable

__all__ = [
    "CONFIRMATIONS",
    "ROW_COLUMNS",
    "add_membership",
    "export_results",
    "load_confirmations",
    "load_rows",
    "merge_confirmations",
    "objective_columns",
    "read_trials",
    "trial_rows",
    "trial_status",
]

#: The fixed columns of a trial row, in order; ``hp.<name>`` columns follow.
ROW_COLUMNS = (
    "trial_id",
    "number",
    "family",
    "status",
    "failure_reason",
    "epochs_run",
    "val_accuracy",
    "val_accuracy_low",
    "val_accuracy_high",
    "val_images",
    "val_top5",
    "val_loss",
    "test_accuracy",
    "test_accuracy_low",
    "test_accuracy_high",
    "test_images",
    "replicates",
    "val_accuracy_sd",
    "val_accuracy_seeds",
    "val_accuracy_family_seed_sd",
    "test_accuracy_sd",
    "test_accuracy_seeds",
    "confirmations",
    "confirmed_val_accuracy",
    "confirmed_test_accuracy",
    "front_probability",
    "family_front_probability",
    "params",
    "flops",
    "latency_ms",
    "train_time_s",
    "started_at",
    "finished_at",
    "anytime_of",
    "anytime_iterations",
)


def objective_columns(objectives: dict[str, str]) -> dict[str, str]:
    """``{"val_accuracy": "max", "latency": "min"}`` -> ``{"val_accuracy": "max",
    "latency_ms": "min"}``: objectives keyed by the row column that holds them."""
    return {OBJECTIVES[name].column: mode for name, mode in objectives.items()}


#: A results folder's confirmations (``paretotune confirm``): ``{"runs": [run, ...]}``, one run
#: per finished seed.
CONFIRMATIONS = "confirmations.json"

_INTERRUPTED_REASON = "the sweep stopped while it ran; re-queued on resume"


def trial_status(trial: optuna.trial.FrozenTrial) -> TrialStatus:
    """What became of ``trial``: its recorded status, or what its Optuna state says.

    A resume marks the trials its stopped driver left running INTERRUPTED; one still marked
    RUNNING but finished was closed by an earlier version's resume, which did not: INTERRUPTED.
    """
    recorded = trial.user_attrs.get("status")
    if recorded == TrialStatus.RUNNING and trial.state.is_finished():
        return TrialStatus.INTERRUPTED
    if recorded:
        return TrialStatus(recorded)
    return _STATUS_OF_STATE[trial.state]


_STATUS_OF_STATE = {
    optuna.trial.TrialState.COMPLETE: TrialStatus.COMPLETE,
    optuna.trial.TrialState.FAIL: TrialStatus.FAILED,
    optuna.trial.TrialState.PRUNED: TrialStatus.STOPPED,
    optuna.trial.TrialState.RUNNING: TrialStatus.RUNNING,
    optuna.trial.TrialState.WAITING: TrialStatus.RUNNING,
}


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial of the study (see ``docs/architecture.md``), with its history."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            continue  # queued (an interrupted trial's configuration): a row once it runs
        a = t.user_attrs
        status = trial_status(t)
        reason = _INTERRUPTED_REASON if status == TrialStatus.INTERRUPTED else ""
        row: dict[str, Any] = {
            "trial_id": a.get("tune_trial_id") or f"optuna-{t.number}",
            "number": t.number,
            "family": a.get("family") or t.params.get("family"),
            "status": str(status),
            "failure_reason": a.get("failure_reason", reason),
            "epochs_run": a.get("epochs_run", 0),
            "val_accuracy": a.get("val_accuracy") if status in TrialStatus.measured() else None,
            "val_top5": a.get("val_top5"),
            "val_loss": a.get("val_loss"),
            "test_accuracy": a.get("test_accuracy"),
            "params": a.get("params", a.get("estimated_params")),
            "flops": a.get("flops", a.get("estimated_flops")),
            "latency_ms": a.get("latency_ms"),
            "train_time_s": a.get("train_time_s", 0.0),
            "started_at": a.get("started_at"),
            "finished_at": a.get("finished_at"),
            # an anytime point: the trial that trained it, and the iterations it ran
            "anytime_of": a.get(ANYTIME_OF),
            "anytime_iterations": a.get(ANYTIME_ITERATIONS),
        }
        row["replicates"] = a.get("replicates", 1)
        for split in ("val", "test"):
            interval = wilson(row[f"{split}_accuracy"], a.get(f"{split}_images"))
            row[f"{split}_images"] = a.get(f"{split}_images")
            row[f"{split}_accuracy_low"], row[f"{split}_accuracy_high"] = interval or (None, None)
            seeds = (
                a.get(f"{split}_accuracy_seeds") if row[f"{split}_accuracy"] is not None else None
            )
            row[f"{split}_accuracy_seeds"] = seeds
            row[f"{split}_accuracy_sd"] = _seed_sd(seeds)
        config = dict(a.get("config") or {})
        for key, value in config.items():
            if key != "family":
                row[f"hp.{key}"] = value
        row["config"] = config
        row["history"] = list(a.get("history") or [])
        rows.append(row)
    return rows


def export_results(
    study: optuna.Study, out_dir: storage.Where, *, experiment: dict[str, Any]
) -> tuple[storage.Where, storage.Where]:
    """Write ``trials.csv`` and ``trials.json`` (atomically) and return their paths.

    Both tables are rendered in memory first, then each is written to a temporary file beside
    it, flushed to disk and renamed over the old one: a crash or a full disk leaves the
    previous table whole, never half a file. On an object store (``out_dir`` a URI) each table
    is one PUT, which replaces the object whole too.
    """
    if isinstance(out_dir, Path):
        out_dir.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    merge_confirmations(rows, load_confirmations(out_dir))
    objectives = objective_columns(experiment["objectives"])
    membership = add_membership(rows, objectives)
    doc = {
        "experiment": experiment,
        "objectives": objectives,
        "membership": membership,
        "trials": rows,
    }
    json_text = json.dumps(to_jsonable(doc), indent=1)
    hp_cols = sorted({k for r in rows for k in r if k.startswith("hp.")})
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=[*ROW_COLUMNS, *hp_cols], extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_value(r.get(k)) for k in (*ROW_COLUMNS, *hp_cols)})
    json_path = storage.join(out_dir, "trials.json")
    csv_path = storage.join(out_dir, "trials.csv")
    for path, text in ((json_path, json_text), (csv_path, buffer.getvalue())):
        storage.write_text(path, text)
    return csv_path, json_path


def add_membership(rows: list[dict[str, Any]], objectives: dict[str, str]) -> dict[str, Any]:
    """Set each front-eligible row's ``front_probability`` and ``family_front_probability``
    (:func:`search.pareto.membership.front_membership`); return how they were computed."""
    membership = front_membership(rows, objectives)
    first = next((c for c in objectives if c.endswith("_accuracy")), None)
    for row in rows:
        tid = str(row.get("trial_id"))
        row["front_probability"] = membership.overall.get(tid)
        row["family_front_probability"] = membership.within_family.get(tid)
        if first is not None:  # the family's pooled seed sd: the report's intervals use it
            row[first + FAMILY_SD_SUFFIX] = membership.seed_sd.get(str(row.get("family")))
    return {"model": "normal", "draws": membership.draws, "seed_sd": dict(membership.seed_sd)}


def load_confirmations(out_dir: storage.Where) -> list[dict[str, Any]]:
    """The runs in ``<out_dir>/confirmations.json`` ([] when there is none)."""
    path = storage.join(out_dir, CONFIRMATIONS)
    if not storage.is_file(path):
        return []
    try:
        runs = json.loads(storage.read_text(path)).get("runs", [])
    except (ValueError, AttributeError) as exc:
        raise UserError(f"{path}: not a confirmations file ({exc})") from None
    return [r for r in runs if isinstance(r, dict) and "confirms" in r]


def merge_confirmations(rows: list[dict[str, Any]], runs: Sequence[dict[str, Any]]) -> None:
    """Add each confirmed row's new seeds to its ``<split>_accuracy_seeds`` (its own first),
    with ``confirmations`` (their count) and ``confirmed_<split>_accuracy`` (the mean of every
    seed); the sweep's own ``val_accuracy``, the objective the study holds, is left alone."""
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_trial.setdefault(str(run["confirms"]), []).append(run)
    for row in rows:
        extra = by_trial.get(str(row.get("trial_id")))
        row["confirmations"] = len(extra or [])
        if not extra:
            continue
        for split in ("val", "test"):
            column = f"{split}_accuracy"
            own = seed_values(row, column) or (
                [float(row[column])] if isinstance(row.get(column), (int, float)) else []
            )
            more = [float(r[column]) for r in extra if isinstance(r.get(column), (int, float))]
            seeds = own + more
            row[f"{column}_seeds"] = seeds
            row[f"{column}_sd"] = _seed_sd(seeds)
            row[f"confirmed_{column}"] = statistics.fmean(seeds) if seeds else None


def read_trials(out_dir: storage.Where) -> dict[str, Any]:
    """``<out_dir>/trials.json``, parsed and checked once: ``{"experiment": {...},
    "objectives": {column: direction}, "trials": [row, ...]}`` (missing parts empty); a
    UserError naming the file and what is wrong otherwise."""
    where = out_dir if storage.is_uri(out_dir) else Path(out_dir)
    path = storage.join(where, "trials.json")
    try:
        doc = json.loads(storage.read_text(path))
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({reason(exc)})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    expected = "a JSON object with 'trials' (a list of trial rows) and 'objectives'"
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected {expected}, got a {type(doc).__name__}")
    trials, objectives = doc.get("trials", []), doc.get("objectives", {})
    if not isinstance(trials, list) or not all(isinstance(r, dict) for r in trials):
        raise UserError(f"{path}: 'trials' is not a list of trial rows ({expected})")
    if not isinstance(objectives, dict):
        raise UserError(f"{path}: 'objectives' is not a mapping ({expected})")
    return {
        "experiment": doc.get("experiment") or {},
        "objectives": objectives,
        "membership": doc.get("membership") or {},
        "trials": trials,
    }


def load_rows(out_dir: storage.Where) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Read ``trials.json``: the rows and the objectives (column -> direction)."""
    doc = read_trials(out_dir)
    return doc["trials"], doc["objectives"]


def _seed_sd(seeds: Sequence[float] | None) -> float | None:
    """The sd of a row's per-seed values (None with fewer than two)."""
    return statistics.stdev(seeds) if seeds and len(seeds) > 1 else None


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value
