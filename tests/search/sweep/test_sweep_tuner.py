"""End-to-end sweeps with real Ray, real Optuna (SQLite study) and real DeepSpeed engines on CPU.

One Ray instance serves the in-process sweeps of this module; the SIGKILL test drives the CLI in
subprocesses (each with its own Ray) and stops every process it started by PID.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psutil
import pytest
import ray
from _processes import kill_by_pid
from _study_files import schema_state

import search
from models import FAMILIES
from search.experiment import load_experiment
from search.results import trial_rows
from search.sweep import count_trained, load_experiment_data, open_study
from search.sweep.study import count_requeued, requeue_interrupted

pytestmark = pytest.mark.slow

MAX_FLOPS = 100_000


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def smoke_sweep(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> search.SweepResult:
    out = tmp_path_factory.mktemp("smoke")
    return search.run(
        "smoke", overrides=[f"budget.max_flops={MAX_FLOPS}"], output_dir=out, report=False
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_smoke_sweep_trains_two_families_two_at_a_time(smoke_sweep: search.SweepResult) -> None:
    trained = [r for r in smoke_sweep.trials if r["status"] in ("COMPLETE", "STOPPED")]
    assert len(trained) == 6, smoke_sweep.counts()
    # family_allocation: equal -- each family gets its share of the trials
    assert sorted(r["family"] for r in trained) == ["mixer"] * 3 + ["perceiver"] * 3
    for row in trained:
        assert row["epochs_run"] == 2 and len(row["history"]) == 2
        assert 0.0 <= row["val_accuracy"] <= 1.0
        # the weights that count are the last epoch's
        assert row["val_accuracy"] == row["history"][-1]["val_accuracy"]
        assert row["test_accuracy"] is not None
        # each accuracy with its evaluation set's size and 95 % Wilson interval
        data = load_experiment_data(smoke_sweep.experiment)
        assert (row["val_images"], row["test_images"]) == (len(data.val_y), len(data.test_y))
        for split in ("val", "test"):
            low, high = row[f"{split}_accuracy_low"], row[f"{split}_accuracy_high"]
            assert low <= row[f"{split}_accuracy"] <= high and high - low > 0.01
        for h in row["history"]:
            assert h["images_per_s"] > 0 and math.isfinite(h["train_loss"])
    # max_concurrent_trials=2: some two trials ran at the same time.
    spans = sorted((r["started_at"], r["finished_at"]) for r in trained)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert smoke_sweep.front, "a sweep with finished trials has a front"
    # every front-eligible row carries its membership probability; the cheapest is certain
    complete = [r for r in smoke_sweep.trials if r["status"] == "COMPLETE"]
    assert all(0.0 <= r["front_probability"] <= 1.0 for r in complete)
    cheapest = [r for r in complete if r["flops"] == min(c["flops"] for c in complete)]
    if len(cheapest) == 1:  # nothing costs as little: accuracy noise cannot dominate it
        assert cheapest[0]["front_probability"] == 1.0
    assert all(r["front_probability"] is None for r in trained if r["status"] == "STOPPED")
    assert smoke_sweep.membership["seed_sd"] == dict.fromkeys(("mixer", "perceiver"))


def test_trials_csv_and_optuna_study_agree(smoke_sweep: search.SweepResult) -> None:
    study = open_study(smoke_sweep.experiment, create=False)
    assert study.metric_names == ["val_accuracy", "flops"]
    rows = {int(r["number"]): r for r in _csv_rows(smoke_sweep.output_dir / "trials.csv")}
    assert sorted(rows) == [t.number for t in study.trials]
    for t in study.trials:
        row = rows[t.number]
        assert row["status"] == t.user_attrs["status"]
        if row["status"] == "COMPLETE":
            assert t.state == optuna.trial.TrialState.COMPLETE
            assert float(row["val_accuracy"]) == pytest.approx(t.values[0], abs=0)
            assert float(row["flops"]) == pytest.approx(t.values[1], abs=0)
            assert row["family"] == t.params["family"]
    doc = json.loads((smoke_sweep.output_dir / "trials.json").read_text())
    assert doc["objectives"] == {"val_accuracy": "max", "flops": "min"}
    assert len(doc["trials"]) == len(study.trials)


def test_over_budget_proposals_never_train(smoke_sweep: search.SweepResult) -> None:
    rows = smoke_sweep.trials
    infeasible = [r for r in rows if r["status"] == "INFEASIBLE"]
    trained = [r for r in rows if r["status"] in ("COMPLETE", "STOPPED", "FAILED")]
    assert infeasible, "the smoke space has proposals above the budget"
    for r in infeasible:
        assert r["flops"] > MAX_FLOPS
        assert r["epochs_run"] == 0 and r["history"] == []
        assert r["trial_id"].startswith("optuna-")  # never handed to Tune
        assert "over budget" in r["failure_reason"]
    for r in trained:
        assert r["flops"] <= MAX_FLOPS * 1.05  # measured cost of what did train
    # Tune created exactly one trial directory per trained proposal.
    tune_dirs = [p for p in (smoke_sweep.output_dir / "tune").glob("run-*/train_trial_*")]
    assert len(tune_dirs) == len(trained)
    # Optuna was told: infeasible trials carry positive constraint values.
    study = open_study(smoke_sweep.experiment, create=False)
    for t in study.trials:
        violated = max(t.constraints.values()) > 0
        assert violated == (t.user_attrs["status"] == "INFEASIBLE")


def test_failing_trials_are_recorded_and_the_sweep_finishes(
    ray_session: None, tmp_path: Path
) -> None:
    # A batch larger than the training set cannot train: a real, deterministic trial failure.
    result = search.run(
        "smoke",
        overrides=["num_trials=2", "space.batch_size=[4096]"],
        output_dir=tmp_path,
        report=False,
    )
    assert result.counts() == {"FAILED": 2}
    for row in _csv_rows(tmp_path / "trials.csv"):
        assert row["status"] == "FAILED"
        assert "batch_size=4096" in row["failure_reason"]
    study = open_study(result.experiment, create=False)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2


def test_replicates_reach_optuna_and_the_tables_as_their_mean(
    ray_session: None, tmp_path: Path
) -> None:
    result = search.run(
        "smoke",
        overrides=["num_trials=2", "replicates=2", "families=[mixer]", "scheduler.name=none"],
        output_dir=tmp_path,
        report=False,
    )
    assert result.counts() == {"COMPLETE": 2}
    study = open_study(result.experiment, create=False)
    values = {t.number: t.values[0] for t in study.trials}
    for row in result.trials:
        seeds = row["val_accuracy_seeds"]
        assert row["replicates"] == 2 and len(seeds) == 2 and len(row["test_accuracy_seeds"]) == 2
        # the sampler learns from the mean, and the tables say how far the seeds were apart
        assert values[row["number"]] == pytest.approx(sum(seeds) / 2) == row["val_accuracy"]
        assert row["val_accuracy_sd"] == pytest.approx(abs(seeds[0] - seeds[1]) / 2**0.5)
        assert all(len(h["val_accuracy_seeds"]) == 2 for h in row["history"])
    # the family now has seed data: its membership probabilities count the seed spread
    assert result.membership["seed_sd"]["mixer"] is not None
    csv_row = _csv_rows(tmp_path / "trials.csv")[0]
    assert json.loads(csv_row["val_accuracy_seeds"]) == result.trials[0]["val_accuracy_seeds"]


def test_stopped_trials_are_pruned_and_on_no_front(ray_session: None, tmp_path: Path) -> None:
    # Sequential trials, rungs at epochs 1 and 3 of 4, learning rates over two decades: later
    # arrivals below the rung's cutoff are stopped (any scheduler's stop is recorded alike).
    result = search.run(
        "smoke",
        overrides=[
            "num_trials=6",
            "epochs=4",
            "families=[mixer]",
            "resources.max_concurrent_trials=1",
            "scheduler={name: asha, grace_period: 1, reduction_factor: 3}",
            "space.adamw.lr=[1.0e-5, 1.0e-2]",
            "space.optimizer=[adamw]",
        ],
        output_dir=tmp_path,
        report=False,
    )
    stopped = [r for r in result.trials if r["status"] == "STOPPED"]
    assert stopped, result.counts()
    study = open_study(result.experiment, create=False)
    by_number = {t.number: t for t in study.trials}
    best = {t.number for t in study.best_trials}
    front_ids = {r["trial_id"] for r in result.front}
    for row in stopped:
        assert row["epochs_run"] < 4
        # which rung, and why (ASHA here; MO-ASHA names its fronts)
        assert row["failure_reason"].startswith(f"stopped at the epoch-{row['epochs_run']} rung")
        assert "ASHA: its val_accuracy was below the best 1/3" in row["failure_reason"]
        assert by_number[row["number"]].state == optuna.trial.TrialState.PRUNED
        assert row["number"] not in best and row["trial_id"] not in front_ids
    assert all(r["status"] == "COMPLETE" for r in result.front)


def test_reproduce_retrains_a_trial_to_the_same_metrics(smoke_sweep: search.SweepResult) -> None:
    row = next(r for r in smoke_sweep.trials if r["status"] == "COMPLETE")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.cli",
            "reproduce",
            str(smoke_sweep.output_dir),
            row["trial_id"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # paretotune's lines only: DeepSpeed's and torch's go to the sweep's log
    assert "DeepSpeed" not in done.stdout + done.stderr and "accelerator" not in done.stdout
    assert "== paretotune reproduce at " in (smoke_sweep.output_dir / "paretotune.log").read_text()
    line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith("val_accuracy"))
    stored, again, diff = (float(v) for v in line.split()[1:4])
    assert stored == pytest.approx(row["val_accuracy"], abs=1e-4)
    assert abs(diff) <= 0.01 and abs(again - stored) <= 0.01


def test_run_refuses_an_output_dir_that_holds_a_sweep(smoke_sweep: search.SweepResult) -> None:
    with pytest.raises(search.UserError, match="already holds a sweep; continue it with"):
        search.run("smoke", output_dir=smoke_sweep.output_dir, report=False)


# ---- SIGKILL of the driver, then `paretotune resume` ----------------------------------------
def _finished(db: Path, name: str) -> dict[int, tuple[float, ...]]:
    """The study's COMPLETE trials. A reader never builds the schema (a second builder races
    the driver): it waits for a finished one, and opens it without creating tables."""
    if schema_state(db) != "finished":
        return {}
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}", skip_table_creation=True)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return {}
    return {
        t.number: tuple(t.values)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }


def test_resume_marks_trials_its_driver_left_running_interrupted(tmp_path: Path) -> None:
    # A driver killed while proposing leaves a trial with no status; one killed while training
    # leaves one marked RUNNING. Both are re-queued and neither counts against the budget.
    exp = load_experiment("smoke", [f"output_dir={tmp_path}"])
    study = open_study(exp)
    study.ask()  # nothing sampled yet
    study.enqueue_trial({"family": "perceiver"})
    training = study.ask({"family": optuna.distributions.CategoricalDistribution(FAMILIES)})
    training.set_user_attr("status", "RUNNING")
    assert requeue_interrupted(exp, study) == 2
    rows = trial_rows(study)
    # the queued copies are no rows until they run: the tables never say RUNNING
    assert [r["status"] for r in rows] == ["INTERRUPTED", "INTERRUPTED"]
    assert count_requeued(study) == 2
    assert count_trained(study) == 0
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["requeued_from"] for t in waiting] == [0, 1]
    family = optuna.distributions.CategoricalDistribution(FAMILIES)
    study.ask({"family": family})
    assert study.ask({"family": family}).params == {"family": "perceiver"}  # as it was


def test_sigkill_driver_then_resume_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "search.cli"]
    args = [
        "--debug",  # the libraries' output on the driver's terminal, none in a log file
        "run",
        "smoke",
        "--output",
        str(out),
        "--no-report",
        "--set",
        "num_trials=6",
        "--set",
        "resources.max_concurrent_trials=1",
    ]
    log = (tmp_path / "run.log").open("w")
    driver = subprocess.Popen([*cli, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    tree = [psutil.Process(driver.pid)]
    try:
        deadline = time.monotonic() + 300
        while len(_finished(out / "optuna.db", "smoke")) < 2:
            assert driver.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two trials finished in time"
            time.sleep(1)
        tree += tree[0].children(recursive=True)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        kill_by_pid(tree)  # Ray's helpers outlive a killed driver: stop them by PID
        log.close()
    before = _finished(out / "optuna.db", "smoke")
    assert 2 <= len(before) < 6

    resumed = subprocess.run(
        [*cli, "resume", str(out), "--no-report"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = _finished(out / "optuna.db", "smoke")
    assert all(after[n] == v for n, v in before.items())  # finished trials kept, not re-run
    rows = _csv_rows(out / "trials.csv")
    trained = [r for r in rows if r["status"] in ("COMPLETE", "STOPPED", "FAILED")]
    assert len(trained) == 6, [(r["number"], r["status"]) for r in rows]
    assert {int(r["number"]) for r in trained} >= set(before)
    # the resumed sampler never proposes a configuration the study already trained
    configs = [
        (r["family"], *sorted((k, v) for k, v in r.items() if k.startswith("hp."))) for r in trained
    ]
    assert len(set(configs)) == len(configs)
    assert "Pareto-optimal trials" in resumed.stdout
    assert "val_accuracy 95%" in resumed.stdout  # the front's accuracies with their intervals
    # The CLI's output is its own: Optuna's and Ray's lines are in the log file, and only
    # there; with --debug (the first driver) they were on its terminal and no log was kept.
    library_lines = ("A new study created", "Using an existing study", "Started a local Ray")
    log = (out / "paretotune.log").read_text()
    assert log.startswith("== paretotune resume at ")
    assert "Using an existing study" in log and "Started a local Ray" in log
    for text in library_lines:
        assert text not in resumed.stdout + resumed.stderr, text
    assert resumed.stderr == ""
    assert "A new study created" in (tmp_path / "run.log").read_text()
