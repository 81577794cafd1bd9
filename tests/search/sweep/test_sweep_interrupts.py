"""Stops that mean stop: Ctrl-C and SIGTERM mid-sweep, with the real CLI in subprocesses.

Each driver runs in its own session with its own Ray temp dir (``RAY_TMPDIR``), so what it
leaves behind is found by its process tree and by that dir, never by a machine-wide look (other
Ray instances may run beside the tests). The tests wait for states (the study's trials, the
driver's lines), never for fixed times.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from _processes import kill_by_pid

from search.sweep.interrupts import SweepInterrupted, catch_stops, deferred

pytestmark = pytest.mark.slow

TRIALS = 4
CLI = [sys.executable, "-m", "search.cli"]
# Long enough trials (30 epochs) that one just handed to Tune is still in flight at the signal.
RUN_ARGS = [
    "--no-report",
    "--set",
    f"num_trials={TRIALS}",
    "--set",
    "epochs=30",
    "--set",
    "resources.max_concurrent_trials=2",
]
DEADLINE_S = 420


# ---- in-process: the handler itself ---------------------------------------------------------
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_raises_sweep_interrupted(signum: int, code: int, tmp_path: Path) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(SweepInterrupted) as caught, catch_stops(tmp_path):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises first
    assert caught.value.exit_code == code
    assert str(caught.value).endswith("before the first trial; nothing was kept")
    caught.value.output, caught.value.marked = tmp_path, 2
    assert (
        f"2 trials in flight marked INTERRUPTED; continue with `paretotune resume {tmp_path}`"
        in (str(caught.value))
    )
    assert {s: signal.getsignal(s) for s in before} == before  # handlers given back


def test_a_stop_while_the_study_is_written_waits_for_the_write_to_end(tmp_path: Path) -> None:
    written = []
    with pytest.raises(SweepInterrupted) as caught, catch_stops(tmp_path):
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler has run by now: the stop is only noted
            written.append("the rest of the write")
    assert written and caught.value.exit_code == 143


def test_a_bare_keyboard_interrupt_becomes_the_signal_received(tmp_path: Path) -> None:
    """Ray's compiled calls re-raise a handler's exception as a bare KeyboardInterrupt."""
    with pytest.raises(SweepInterrupted) as caught, catch_stops(tmp_path):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except SweepInterrupted:
            raise KeyboardInterrupt from None
    assert caught.value.exit_code == 143


# ---- real drivers -------------------------------------------------------------------------
@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A short private Ray temp dir (its socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ptray", dir="/tmp"))
    yield path
    assert not _ray_processes(path), "Ray processes of this test outlived it"
    shutil.rmtree(path, ignore_errors=True)


def _ray_processes(ray_tmp: Path) -> list[psutil.Process]:
    """Live processes whose command line names this test's Ray temp dir."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(ray_tmp) in " ".join(proc.info["cmdline"] or ()) and proc.status() != "zombie":
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Driver:
    """``paretotune run|resume`` in its own session, its output in files."""

    def __init__(self, argv: list[str], folder: Path, ray_tmp: Path, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(ray_tmp)}
        env.pop("RAY_ADDRESS", None)
        self.out_path, self.err_path = folder / f"{name}.out", folder / f"{name}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [*CLI, *argv], stdout=out, stderr=err, env=env, start_new_session=True
            )
        self.tree: list[psutil.Process] = []

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_until(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            assert self.proc.poll() is None, f"ended before {what}: {self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} in {DEADLINE_S} s"
            time.sleep(0.3)

    def stop(self, signum: int, *, group: bool = False) -> int:
        """Send ``signum`` (to the session's process group, as a terminal's Ctrl-C does, or to
        the driver) and wait for the exit; the driver's process tree is recorded first."""
        self.tree = psutil.Process(self.proc.pid).children(recursive=True)
        (os.killpg if group else os.kill)(self.proc.pid, signum)
        return self.proc.wait(timeout=120)

    def kill(self, ray_tmp: Path) -> None:
        """Stop, by PID, whatever this driver left: the driver, its recorded tree, and any
        process of this test's Ray temp dir."""
        procs = [*self.tree, *_ray_processes(ray_tmp)]
        if self.proc.poll() is None:
            procs.append(psutil.Process(self.proc.pid))
        kill_by_pid(procs)
        self.proc.wait(timeout=30)

    def leftovers(self) -> list[psutil.Process]:
        alive = []
        for proc in self.tree:
            try:
                if proc.is_running() and proc.status() != "zombie":
                    alive.append(proc)
            except psutil.Error:
                continue
        return alive


def _study(db: Path) -> list[dict[str, object]]:
    """The study's trials, read-only: number, state and the user attributes that matter."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
        try:
            trials = {
                n: {"number": n, "state": s}
                for n, s in con.execute("SELECT trial_id, state FROM trials")
            }
            for tid, key, value in con.execute(
                "SELECT trial_id, key, value_json FROM trial_user_attributes"
            ):
                if tid in trials:
                    trials[tid][key] = json.loads(value)
        finally:
            con.close()
    except sqlite3.Error:
        return []  # the schema is being built
    return list(trials.values())


def _in_flight(db: Path, *, fresh_s: float | None = None) -> bool:
    """A trial handed to Tune and running (``fresh_s``: proposed that recently, so far from
    its end)."""
    now = time.time()
    return any(
        t["state"] == "RUNNING"
        and t.get("status") == "RUNNING"
        and t.get("tune_trial_id")
        and (fresh_s is None or now - float(t.get("started_at") or 0) < fresh_s)
        for t in _study(db)
    )


def _complete(db: Path) -> int:
    return sum(1 for t in _study(db) if t.get("status") == "COMPLETE")


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as fh:
        return list(csv.DictReader(fh))


def _check_stop(driver: Driver, code: int, name: str, out: Path) -> list[dict[str, str]]:
    """Exit code, the one line naming resume, INTERRUPTED rows in both tables, nothing left."""
    assert code == {"SIGINT": 130, "SIGTERM": 143}[name], driver.stderr[-3000:]
    lines = driver.stderr.strip().splitlines()
    assert len(lines) == 1, driver.stderr
    assert lines[0].startswith(f"paretotune: interrupted by {name}: ")
    assert lines[0].endswith(f"; continue with `paretotune resume {out}`")
    marked = int(lines[0].split(": ")[2].split()[0])
    rows = _rows(out)
    interrupted = [r for r in rows if r["status"] == "INTERRUPTED"]
    doc = json.loads((out / "trials.json").read_text())
    assert [r["number"] for r in doc["trials"]] == [int(r["number"]) for r in rows]
    assert "RUNNING" not in {r["status"] for r in rows}, rows
    assert marked >= 1 and len(interrupted) >= marked
    assert all("re-queued on resume" in r["failure_reason"] for r in interrupted)
    assert not any(t["state"] == "RUNNING" for t in _study(out / "optuna.db"))
    assert "Pareto-optimal" not in driver.stdout  # no success-looking ending
    assert not driver.leftovers(), driver.leftovers()
    return rows


def _config(row: dict[str, str]) -> tuple[object, ...]:
    """A row's configuration (a table's other families' columns are empty, and an earlier
    table may not have them)."""
    hparams = ((k, v) for k, v in row.items() if k.startswith("hp.") and v != "")
    return (row["family"], *sorted(hparams))


def test_ctrl_c_and_sigterm_stop_cleanly_and_resume_completes_the_budget(
    tmp_path: Path, ray_tmp: Path
) -> None:
    out, db = tmp_path / "sweep", tmp_path / "sweep" / "optuna.db"
    drivers: list[Driver] = []
    try:
        # Ctrl-C, as a terminal sends it: to the whole process group.
        run = Driver(["run", "smoke", "--output", str(out), *RUN_ARGS], tmp_path, ray_tmp, "run")
        drivers.append(run)
        run.wait_until("trial in flight", lambda: _in_flight(db))
        first = _check_stop(run, run.stop(signal.SIGINT, group=True), "SIGINT", out)

        # SIGTERM, as SLURM or Kubernetes sends it: to the driver, while the resumed sweep has
        # finished a trial and just handed the next one to Tune.
        again = Driver(["resume", str(out), "--no-report"], tmp_path, ray_tmp, "resume1")
        drivers.append(again)
        done = _complete(db)
        again.wait_until(
            "a finished trial, then one in flight",
            lambda: _complete(db) > done and _in_flight(db, fresh_s=3),
        )
        second = _check_stop(again, again.stop(signal.SIGTERM), "SIGTERM", out)
        assert "interrupted re-queued" in again.stdout

        last = Driver(["resume", str(out), "--no-report"], tmp_path, ray_tmp, "resume2")
        drivers.append(last)
        assert last.proc.wait(timeout=DEADLINE_S) == 0, last.stderr[-3000:]
    finally:
        for driver in drivers:
            driver.kill(ray_tmp)
    rows = _rows(out)
    trained = [r for r in rows if r["status"] in ("COMPLETE", "STOPPED", "FAILED")]
    assert len(trained) == TRIALS, [(r["number"], r["status"]) for r in rows]
    configs = [_config(r) for r in trained]
    assert len(set(configs)) == len(configs)  # none trained twice
    for row in [*first, *second]:  # none lost: what was interrupted trained later
        if row["status"] == "INTERRUPTED" and _config(row)[1:]:
            assert _config(row) in configs
        elif row["status"] == "INTERRUPTED":  # stopped while it was being proposed: no config
            assert row["trial_id"].startswith("optuna-") and row["epochs_run"] == "0"
    kept = {r["number"]: r["val_accuracy"] for r in second if r["status"] == "COMPLETE"}
    assert kept and all(r["val_accuracy"] == kept[r["number"]] for r in rows if r["number"] in kept)
    assert "Pareto-optimal trials" in last.stdout


def test_a_second_ctrl_c_forces_the_exit_and_leaves_whole_tables(
    tmp_path: Path, ray_tmp: Path
) -> None:
    out, db = tmp_path / "sweep", tmp_path / "sweep" / "optuna.db"
    run = Driver(["run", "smoke", "--output", str(out), *RUN_ARGS], tmp_path, ray_tmp, "run")
    try:
        run.wait_until("trial in flight", lambda: _in_flight(db))
        run.tree = psutil.Process(run.proc.pid).children(recursive=True)
        os.killpg(run.proc.pid, signal.SIGINT)
        # The second Ctrl-C while the driver cleans up (it has begun marking the trials).
        deadline = time.monotonic() + 60
        while not any(t.get("status") == "INTERRUPTED" for t in _study(db)):
            assert run.proc.poll() is None, run.stderr
            assert time.monotonic() < deadline, "the first Ctrl-C marked nothing"
            time.sleep(0.02)
        os.killpg(run.proc.pid, signal.SIGINT)
        code = run.proc.wait(timeout=60)
    finally:
        run.kill(ray_tmp)
    assert code == 130, run.stderr
    assert "paretotune: a second SIGINT: stopped at once" in run.stderr, run.stderr
    assert f"`paretotune resume {out}`" in run.stderr
    assert not run.leftovers(), run.leftovers()
    if (out / "trials.csv").exists():  # whole or absent, never half written
        assert _rows(out)
    if (out / "trials.json").exists():
        assert json.loads((out / "trials.json").read_text())["trials"]
    assert _study(db), "the study is readable"
