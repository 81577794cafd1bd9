"""optuna-dashboard as a real client of a finished sweep's study (README, "Outputs").

No sweep runs and no Ray instance starts: the study is written by the project's own record
keeping, ``search.sweep.open_study`` and ``search.sweep.searcher.BudgetedOptunaSearch`` built as
``search.sweep.tuner._fit`` builds them (the smoke preset, a FLOP budget that rejects about half the
proposals), then told what Tune would tell it: a full-budget trial per family, one stopped early,
one that reported a failure and one whose process errored. Three studies (samplers TPE, the
default; NSGA-II; random, the smoke preset's) share one ``optuna.db``, served by the real
``optuna-dashboard`` console script; the test reads it through its JSON API
(``optuna_dashboard/_app.py``: ``GET /api/studies``, ``GET /api/studies/<id>``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from _servers import free_port, stop
from optuna.trial import TrialState

from search.experiment import Experiment, load_experiment
from search.sweep import CostEstimator, load_experiment_data, open_study
from search.sweep.samplers import make_sampler
from search.sweep.searcher import BudgetedOptunaSearch
from spaces import joint

pytest.importorskip(
    "optuna_dashboard", reason="optuna-dashboard is not installed: pip install -e '.[dev]'"
)

# The smoke space's proposals cost about 2e4 to 5e5 FLOPs per image: about half are over this.
MAX_FLOPS = 1.0e5
OBJECTIVE_NAMES = ["val_accuracy", "flops"]
SAMPLERS = ("tpe", "nsga2", "gp", "random")
# What each Tune trial does, in suggestion order (families take turns: perceiver, mixer, ...).
PLAN = ("complete", "complete", "stopped", "failed", "errored")
STATE_OF_STATUS = {
    "COMPLETE": TrialState.COMPLETE,
    "INFEASIBLE": TrialState.COMPLETE,
    "STOPPED": TrialState.PRUNED,
    "FAILED": TrialState.FAIL,
    "DUPLICATE": TrialState.PRUNED,
}


# ---- a finished sweep's study, without the sweep ---------------------------------------------
def _history(epochs: int, accuracy: float) -> list[dict[str, Any]]:
    return [
        {
            "epoch": e,
            "train_loss": round(1.4 - 0.3 * e, 4),
            "val_accuracy": round(accuracy * e / epochs, 4),
            "val_top5": 1.0,
            "val_loss": round(1.2 - 0.25 * e, 4),
            "images_per_s": 812.5,
            "epoch_time_s": 0.61,
        }
        for e in range(1, epochs + 1)
    ]


def _final_report(
    cost: dict[str, float], *, epochs: int, accuracy: float, max_epochs: int
) -> dict[str, Any]:
    """A trial's last ``tune.report`` (search/trial/loop.py ``_report``), epoch ``epochs``."""
    history = _history(epochs, accuracy)
    report = {
        **history[-1],
        "flops": cost["flops"],
        "params": cost["params"],
        "latency_ms": 0.21,
        "latency_ms_b64": 1.7,
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "epochs_planned": max_epochs,
        "history": history,
    }
    if epochs == max_epochs:
        report.update(test_accuracy=round(accuracy - 0.02, 4), test_top5=1.0)
    return report


def _failure_report(cost: dict[str, float], reason: str) -> dict[str, Any]:
    """A trial's failure report (search/trial/loop.py ``run_trial``) after one epoch."""
    history = _history(1, 0.3)
    return {
        "flops": cost["flops"],
        "params": cost["params"],
        "latency_ms": math.nan,
        "failure_reason": reason,
        "val_accuracy": history[-1]["val_accuracy"],
        "epoch": 1,
        "history": history,
        "train_time_s": 0.9,
    }


def _write_study(out: Path, sampler: str) -> Experiment:
    exp = load_experiment(
        "smoke",
        [
            f"name=smoke-{sampler}",
            f"sampler={sampler}",
            f"budget.max_flops={MAX_FLOPS}",
            f"output_dir={out}",
        ],
    )
    data = load_experiment_data(exp)  # synthetic: generated, nothing downloaded
    study = open_study(exp)
    # As search/sweep/tuner.py _fit builds its searcher.
    space = joint(
        exp.families, image_size=data.image_size, in_channels=data.in_channels, overrides=exp.space
    )
    limits = {"flops": exp.budget.max_flops, "params": exp.budget.max_params}
    estimate = CostEstimator(data.image_size, data.in_channels, data.num_classes)
    searcher = BudgetedOptunaSearch(
        space,
        metrics=exp.objective_metrics,
        modes=exp.objective_modes,
        estimate_fn=estimate,
        limits=limits,
        max_epochs=exp.epochs,
        families=exp.family_shares(),
        sampler=make_sampler(exp.sampler, seed=exp.seed + len(study.trials), num_trials=10),
        study_name=exp.name,
        storage=optuna.storages.RDBStorage(exp.storage_url()),
    )
    for k, outcome in enumerate(PLAN):
        tid = f"{k:05d}"
        proposal = searcher.suggest(tid)
        assert proposal is not None
        cost = estimate(proposal)
        if outcome == "complete":
            result = _final_report(
                cost, epochs=exp.epochs, accuracy=0.62 + 0.05 * k, max_epochs=exp.epochs
            )
            searcher.on_trial_complete(tid, result)
        elif outcome == "stopped":  # MO-ASHA stopped it at its first rung
            result = _final_report(cost, epochs=1, accuracy=0.55, max_epochs=exp.epochs)
            searcher.on_trial_complete(tid, result)
        elif outcome == "failed":
            result = _failure_report(cost, "RuntimeError: loss became NaN at epoch 1 (lr=0.01)")
            searcher.on_trial_complete(tid, result)
        else:  # the trial process died: Tune tells the searcher, then the callback the reason
            searcher.on_trial_complete(tid, None, error=True)
            searcher.finish_errored(tid, "ray.exceptions.RayTaskError: worker died (OOM)")
    return exp


# ---- the real server ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    base_url: str
    storage_url: str
    experiments: dict[str, Experiment]  # sampler -> experiment

    def study(self, sampler: str) -> optuna.Study:
        return optuna.load_study(
            study_name=self.experiments[sampler].name, storage=self.storage_url
        )


# No proxy, even where http_proxy is set: the server is on the loopback interface.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str) -> Any:
    with _OPENER.open(url, timeout=10) as resp:
        assert resp.status == 200, url
        assert resp.headers.get_content_type() == "application/json", url
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    script = Path(sys.executable).with_name("optuna-dashboard")
    if not script.is_file():
        pytest.skip(f"optuna-dashboard is importable but has no console script at {script}")
    # tmpfs where there is one: a study is ~600 SQLite commits, each an fsync on a disk.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(
        prefix="paretotune-dashboard-",
        dir=shm if shm.is_dir() else tmp_path_factory.getbasetemp(),
    ) as tmp:
        yield from _serve(script, Path(tmp))


def _serve(script: Path, out: Path) -> Iterator[Served]:
    storage_url = f"sqlite:///{out / 'optuna.db'}"
    optuna.storages.RDBStorage(storage_url)  # the schema, before the server reads the file
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(out / "dashboard.log", "w+b")  # closed at teardown
    proc = subprocess.Popen(
        [str(script), storage_url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # The studies are written while the server starts (it reads the file per request).
        experiments = {s: _write_study(out, s) for s in SAMPLERS}
        assert {e.storage_url() for e in experiments.values()} == {storage_url}
        deadline = time.monotonic() + 30.0
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(
                    f"optuna-dashboard exited with {proc.returncode}:\n"
                    + log.read().decode(errors="replace")
                )
            try:
                _get_json(base + "/api/meta")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"optuna-dashboard did not answer on {base} within 30 s")
                time.sleep(0.1)
        yield Served(base, storage_url, experiments)
    finally:
        stop(proc, timeout=5)
        log.close()


def _summary(served: Served, sampler: str) -> dict[str, Any]:
    summaries = _get_json(served.base_url + "/api/studies")["study_summaries"]
    name = served.experiments[sampler].name
    (summary,) = [s for s in summaries if s["study_name"] == name]
    return summary


def _detail(served: Served, sampler: str) -> dict[str, Any]:
    study_id = _summary(served, sampler)["study_id"]
    return _get_json(f"{served.base_url}/api/studies/{study_id}")


def _attrs(serialized: dict[str, Any]) -> dict[str, str]:
    return {a["key"]: a["value"] for a in serialized["user_attrs"]}


# ---- the study is what a sweep writes (else the checks below prove nothing) --------------------
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_study_holds_every_kind_of_trial(served: Served, sampler: str) -> None:
    exp = served.experiments[sampler]
    trials = served.study(sampler).trials
    statuses = [t.user_attrs["status"] for t in trials]
    assert statuses.count("COMPLETE") == 2
    assert {t.user_attrs["family"] for t in trials if t.user_attrs["status"] == "COMPLETE"} == set(
        exp.families
    )
    assert statuses.count("STOPPED") == 1
    assert statuses.count("FAILED") == 2
    assert statuses.count("INFEASIBLE") >= 1, "MAX_FLOPS rejected nothing: lower it"
    for t in trials:
        assert t.state == STATE_OF_STATUS[t.user_attrs["status"]], (t.number, t.state)
        if t.user_attrs["status"] == "FAILED":
            assert t.user_attrs["failure_reason"]


# ---- what the dashboard serves ------------------------------------------------------------------
def test_dashboard_page_is_served(served: Served) -> None:
    with _OPENER.open(served.base_url + "/dashboard", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers.get_content_type() == "text/html"
        assert b"<html" in resp.read().lower()


def test_every_study_is_listed_under_its_name(served: Served) -> None:
    summaries = _get_json(served.base_url + "/api/studies")["study_summaries"]
    names = sorted(s["study_name"] for s in summaries)
    assert names == sorted(e.name for e in served.experiments.values())
    for s in summaries:
        assert s["directions"] == ["maximize", "minimize"], s["study_name"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_objectives_are_named_and_directed(served: Served, sampler: str) -> None:
    detail = _detail(served, sampler)
    assert detail["name"] == served.experiments[sampler].name
    assert detail.get("objective_names") == OBJECTIVE_NAMES
    assert detail["directions"] == ["maximize", "minimize"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_trial_is_served_as_the_study_holds_it(served: Served, sampler: str) -> None:
    study = served.study(sampler)
    served_trials = _detail(served, sampler)["trials"]
    assert len(served_trials) == len(study.trials)
    by_number = {t["number"]: t for t in served_trials}
    assert sorted(by_number) == [t.number for t in study.trials]
    for t in study.trials:
        got = by_number[t.number]
        assert got["state"] == t.state.name.capitalize(), t.number
        if t.state == TrialState.COMPLETE:
            assert got["values"] == list(t.values), t.number
        else:
            assert "values" not in got, t.number
        params = {p["name"]: p["param_external_value"] for p in got["params"]}
        assert params == {k: str(v) for k, v in t.params.items()}, t.number
        assert params["family"] == t.user_attrs["family"], t.number
        attrs = _attrs(got)
        assert attrs["status"] == t.user_attrs["status"], t.number
        assert attrs.get("failure_reason") == t.user_attrs.get("failure_reason"), t.number


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_over_budget_proposals_carry_positive_constraints(served: Served, sampler: str) -> None:
    """Every sampler's study holds the proposer's violations (``trial.set_constraint``:
    estimated FLOPs / max_flops - 1): positive for INFEASIBLE trials, <= 0 for trained ones."""
    study = served.study(sampler)
    for t in study.trials:
        constraints = list(t.constraints.values())
        status = t.user_attrs["status"]
        if status == "INFEASIBLE":
            assert constraints and all(c > 0 for c in constraints), (t.number, constraints)
        elif status in ("COMPLETE", "STOPPED"):
            assert constraints and all(c <= 0 for c in constraints), (t.number, constraints)


@pytest.mark.xfail(
    strict=True,
    reason="upstream: optuna-dashboard 0.21 (the latest) reads only the list-format system "
    "attribute `constraints` that the deprecated constraints_func wrote; Optuna 5's "
    "trial.set_constraint stores `constraints:<key>`, so the dashboard shows no constraint "
    "values (it still shows each trial's status, INFEASIBLE included, as a user attribute)",
)
def test_the_dashboard_shows_the_constraints(served: Served) -> None:
    study = served.study("tpe")
    by_number = {t["number"]: t for t in _detail(served, "tpe")["trials"]}
    for t in study.trials:
        assert by_number[t.number]["constraints"] == list(t.constraints.values()), t.number


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_dashboard_front_holds_only_full_budget_trials(served: Served, sampler: str) -> None:
    study = served.study(sampler)
    status = {t.number: t.user_attrs["status"] for t in study.trials}
    front = [t["number"] for t in _detail(served, sampler)["best_trials"]]
    assert front, "the dashboard shows no Pareto front"
    assert all(status[n] == "COMPLETE" for n in front), {n: status[n] for n in front}
    assert sorted(front) == sorted(t.number for t in study.best_trials)
