"""The Optuna study in a real PostgreSQL server: a sweep, its resume, and a shared study name.

The module starts its own throwaway server (``initdb`` + ``postgres`` from Debian's
``postgresql`` package) in a temporary directory on a free loopback port, with trust auth for
user ``postgres``; each test gets a fresh database in it. As root, the server runs as the
``postgres`` system user (PostgreSQL refuses to run as root). It is stopped by PID at the end.
"""

from __future__ import annotations

import csv
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import ray
import yaml
from _servers import free_port

import search
from search.experiment import load_experiment
from search.sweep import CostEstimator, load_experiment_data

pytestmark = pytest.mark.slow

psycopg2 = pytest.importorskip("psycopg2", reason="no psycopg2 (pip install psycopg2-binary)")

_TRAINED = ("COMPLETE", "STOPPED", "FAILED")
# A throwaway cluster: no fsync, loopback TCP only, its Unix socket in its own temp dir.
_INITDB = ("--encoding=UTF8", "--no-sync")
_SERVER = ("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")


# ---- the server -----------------------------------------------------------------------------
def _server_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: ``pg_config --bindir``, else Debian's layout."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if done.returncode == 0:
            candidates.append(done.stdout.strip())
    # /usr/lib/postgresql/<major>/bin, newest major first
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for c in candidates:
        d = Path(c)
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


def _server_user() -> dict[str, Any]:
    """Popen arguments that run the server as a non-root user (none when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:  # Debian's package creates it; a bare machine may not have it
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid, "extra_groups": []}


def _stop(proc: subprocess.Popen[bytes], connect: dict[str, Any] | None) -> None:
    """Stop the server by PID: SIGTERM (smart shutdown), SIGINT (fast) if clients linger,
    SIGKILL as the last resort; each time waiting for it to exit."""
    if connect is not None and proc.poll() is None:
        # Smart shutdown waits for every client; the sweeps' pooled connections would linger.
        try:
            conn = psycopg2.connect(dbname="postgres", **connect)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            conn.close()
        except psycopg2.Error:
            pass
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGINT, 15), (signal.SIGKILL, 30)):
        if proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def pg_server() -> Iterator[dict[str, Any]]:
    """A running PostgreSQL server: ``{"port": ..., "connect": {...psycopg2 kwargs}}``."""
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    as_user = _server_user()
    # Not pytest's tmp dir: that one is private to root, and the server user must reach its own.
    base = Path(tempfile.mkdtemp(prefix="paretotune-pg-", dir="/tmp" if as_user else None))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_user:
        for p in (base, sock):
            os.chown(p, pwd.getpwnam("postgres").pw_uid, as_user["group"])
    log_path = base / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    connect: dict[str, Any] | None = None
    try:
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", *_INITDB],
            capture_output=True,
            text=True,
            cwd=base,
            timeout=120,
            **as_user,
        )
        assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(sock),
                    *_SERVER,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=base,
                **as_user,
            )
        connect = {"host": "127.0.0.1", "port": port, "user": "postgres", "connect_timeout": 2}
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"postgres exited: {log_path.read_text()[-2000:]}"
            try:
                psycopg2.connect(dbname="postgres", **connect).close()
                break
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.2)
        yield {"port": port, "connect": connect}
    finally:
        if proc is not None:
            _stop(proc, connect)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: dict[str, Any], request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the server, as an SQLAlchemy URL (no password: trust)."""
    db = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    conn = psycopg2.connect(dbname="postgres", **pg_server["connect"])
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
            cur.execute(f'CREATE DATABASE "{db}"')
    finally:
        conn.close()
    return f"postgresql://postgres@127.0.0.1:{pg_server['port']}/{db}"


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# ---- helpers --------------------------------------------------------------------------------
def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _trained(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] in _TRAINED]


def _finished(url: str, name: str = "smoke") -> dict[int, tuple[float, ...]]:
    """The study's COMPLETE trials, read with plain Optuna: number -> objective values."""
    study = optuna.load_study(study_name=name, storage=url)
    return {
        t.number: tuple(t.values)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }


def _config(row: dict[str, str]) -> tuple[Any, ...]:
    return (row["family"], *sorted((k, v) for k, v in row.items() if k.startswith("hp.")))


def _leave_a_running_trial(out: Path) -> dict[str, Any]:
    """What a driver killed mid-trial leaves in the study: a proposal handed to Tune (status
    RUNNING, trial state RUNNING) that never reported. Made by the sweep's own searcher."""
    from search.sweep.samplers import make_sampler
    from search.sweep.searcher import BudgetedOptunaSearch
    from spaces import joint

    exp = load_experiment(out / "experiment.yaml")
    data = load_experiment_data(exp)
    space = joint(
        exp.families, image_size=data.image_size, in_channels=data.in_channels, overrides=exp.space
    )
    searcher = BudgetedOptunaSearch(
        space,
        metrics=exp.objective_metrics,
        modes=exp.objective_modes,
        estimate_fn=CostEstimator(data.image_size, data.in_channels, data.num_classes),
        limits={},
        max_epochs=exp.epochs,
        families=exp.families,
        sampler=make_sampler(exp.sampler, seed=exp.seed + 1000, num_trials=exp.num_trials),
        study_name=exp.name,
        storage=optuna.storages.RDBStorage(exp.storage_url()),
    )
    proposal = searcher.suggest("killed_trial_00000")
    assert proposal is not None
    return proposal


# ---- tests ----------------------------------------------------------------------------------
def test_sweep_with_two_concurrent_trials_stores_its_study_in_postgres(
    ray_session: None, pg_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    result = search.run(
        "smoke",
        overrides=["num_trials=4", "resources.max_concurrent_trials=2", f"storage={pg_url}"],
        output_dir=out,
        report=False,
    )
    assert result.experiment.storage_url() == pg_url
    trained = _trained(result.trials)
    assert len(trained) == 4, result.counts()
    # max_concurrent_trials=2: some two trials ran at the same time.
    spans = sorted((r["started_at"], r["finished_at"]) for r in trained)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans

    # Plain Optuna, given only the URL, sees what trials.csv says.
    study = optuna.load_study(study_name="smoke", storage=pg_url)
    assert study.metric_names == ["val_accuracy", "flops"]
    rows = {int(r["number"]): r for r in _csv_rows(out / "trials.csv")}
    assert sorted(rows) == [t.number for t in study.trials]
    states = {
        "COMPLETE": optuna.trial.TrialState.COMPLETE,
        "STOPPED": optuna.trial.TrialState.PRUNED,
        "FAILED": optuna.trial.TrialState.FAIL,
        "DUPLICATE": optuna.trial.TrialState.PRUNED,
    }
    for t in study.trials:
        row = rows[t.number]
        assert row["status"] == t.user_attrs["status"]
        assert t.state == states[row["status"]], (t.number, t.state, row["status"])
        assert row["family"] == t.params["family"]
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert float(row["val_accuracy"]) == pytest.approx(t.values[0], abs=0)
            assert float(row["flops"]) == pytest.approx(t.values[1], abs=0)
    # Either driver reads the same study (postgresql:// is psycopg 3 under SQLAlchemy >= 2.1).
    via_psycopg2 = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    assert _finished(via_psycopg2) == _finished(pg_url) and len(_finished(pg_url)) == len(
        [r for r in trained if r["status"] == "COMPLETE"]
    )
    # The study lives in PostgreSQL only: no SQLite file appeared anywhere in the output dir.
    assert not list(out.rglob("*.db")), list(out.rglob("*.db"))


def test_resume_against_postgres(
    ray_session: None, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "resumed"
    overrides = ["num_trials=2", "resources.max_concurrent_trials=2", f"storage={pg_url}"]
    first = search.run("smoke", overrides=overrides, output_dir=out, report=False)
    assert len(_trained(first.trials)) == 2, first.counts()
    before = _finished(pg_url)
    assert len(before) == 2
    capsys.readouterr()

    # A finished sweep resumed: nothing left, nothing trained, nothing lost.
    again = search.resume(out, report=False)
    assert "2 trials done, 0 to run" in capsys.readouterr().out
    assert len(_trained(again.trials)) == 2 and _finished(pg_url) == before
    assert not (out / "tune" / "run-2").exists()

    # Interrupted mid-way: the sweep was asked for 4 trials, 2 finished, one was running when
    # the driver died (its proposal is in the study, state RUNNING), one was never proposed.
    doc = yaml.safe_load((out / "experiment.yaml").read_text())
    doc["num_trials"] = 4
    (out / "experiment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    killed = _leave_a_running_trial(out)
    study = optuna.load_study(study_name="smoke", storage=pg_url)
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert [t.user_attrs["status"] for t in running] == ["RUNNING"]

    resumed = search.resume(out, report=False)
    assert "2 trials done, 2 to run (1 interrupted re-queued)" in capsys.readouterr().out
    after = _finished(pg_url)
    assert {n: after[n] for n in before} == before  # kept, not re-run
    rows = _csv_rows(out / "trials.csv")
    trained = _trained(rows)
    assert len(trained) == 4, [(r["number"], r["status"]) for r in rows]
    assert {int(r["number"]) for r in trained} >= set(before)
    configs = [_config(r) for r in trained]
    assert len(set(configs)) == len(configs), "a configuration was trained twice"
    # The interrupted proposal was trained again, with the same configuration.
    by_number = {int(r["number"]): r for r in rows}
    assert by_number[running[0].number]["status"] == "INTERRUPTED"
    study = optuna.load_study(study_name="smoke", storage=pg_url)
    requeued = [t for t in study.trials if t.user_attrs.get("requeued_from") == running[0].number]
    assert len(requeued) == 1 and by_number[requeued[0].number]["status"] in _TRAINED
    assert requeued[0].user_attrs["config"] == killed
    # Two Tune experiments: the first run's and the resume's; the no-op resume made none.
    assert sorted(p.name for p in (out / "tune").glob("run-*")) == ["run-1", "run-2"]
    assert len(list((out / "tune" / "run-2").glob("train_trial_*"))) == 2
    assert resumed.counts().get("INTERRUPTED") == 1

    # A new run in another output dir, on the same storage and study name, is not refused: it
    # adopts the study (here: all done, nothing to train) and exports its trials as its own.
    # With the report on: it is drawn from trials.json, there being no optuna.db.
    other = tmp_path / "other"
    adopted = search.run("smoke", overrides=["num_trials=4", *overrides[1:]], output_dir=other)
    printed = capsys.readouterr()
    assert "4 trials done, 0 to run" in printed.out
    assert "report not written" not in printed.err and adopted.report_html.is_file()
    assert [r["trial_id"] for r in adopted.trials] == [r["trial_id"] for r in resumed.trials]
    assert not (other / "tune").exists() and not list(other.rglob("*.db"))
