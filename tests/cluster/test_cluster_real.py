"""Real Ray processes on this machine (issue 5, item 5).

A head started by the test with ``ray start --head`` (token auth on, dashboard on 127.0.0.1,
free ports, a private temp dir), stopped by PID. First the Jobs/auth path with tiny
entrypoints through the same ``cluster.jobs`` functions ``paretotune submit`` uses, and the
``jobs`` CLI; then ``paretotune submit smoke --wait`` end to end; then a two-node cluster where
the worker node is removed mid-trial.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import search
from cluster import auth, jobs
from cluster.local import LocalCluster
from search.errors import UserError

REPO = Path(__file__).resolve().parents[2]
PARETOTUNE = [sys.executable, "-m", "search.cli"]
ClientEnv = Callable[[LocalCluster], dict[str, str]]


def _connect(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch, token: str | None = None):
    """A Jobs client of ``cluster`` made in this process (auth env restored after the test)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # connect() sets it; monkeypatch undoes it
    env = {"HOME": os.environ["HOME"], "RAY_AUTH_TOKEN": token or cluster.token}
    client_auth = auth.resolve(cluster.dashboard_url, environ=env)
    return client_auth, jobs.connect(client_auth)


def _no_secret(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text, "the Ray auth token leaked into output"


# ---- the Jobs and auth path, with tiny entrypoints ------------------------------------------
def test_hello_job_runs_in_the_staged_project(
    ray_head: LocalCluster, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client_auth, client = _connect(ray_head, monkeypatch)
    assert client_auth.server_mode == "token"
    assert client_auth.token is not None and client_auth.token.source == "RAY_AUTH_TOKEN"
    staged = tmp_path / "staged"
    staged.mkdir()
    exp_arg = jobs.stage_working_dir(staged, "smoke")
    assert exp_arg == "smoke"
    entrypoint = (
        "python -c \"import cluster, search.experiment as e; print('hello from', "
        "e.load_experiment('smoke').name)\""
    )
    job_id = jobs.submit(
        client,
        entrypoint,
        runtime_env={"working_dir": str(staged)},
        job_id=jobs.new_job_id("hello"),
        metadata={"paretotune.experiment": "hello"},
    )
    assert job_id.startswith("paretotune-hello-")
    code = jobs.wait(client, job_id, out=io.StringIO())
    logs = client.get_job_logs(job_id)
    assert code == 0, logs
    assert "hello from smoke" in logs
    info = jobs.job_status(client, job_id)
    assert str(info.status.value) == "SUCCEEDED"
    _no_secret(ray_head.token, logs, json.dumps(info.runtime_env), json.dumps(info.metadata))


def test_failed_job_returns_its_exit_code(
    ray_head: LocalCluster, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = _connect(ray_head, monkeypatch)
    job_id = jobs.submit(client, "python -c 'import sys; sys.exit(7)'")
    assert jobs.wait(client, job_id, follow=False) == 7


def test_wrong_or_missing_token_is_rejected(
    ray_head: LocalCluster, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UserError, match="requires a Ray auth token"):
        auth.resolve(ray_head.dashboard_url, environ={"HOME": str(isolated_home)})
    with pytest.raises(UserError, match="rejected the credentials") as excinfo:
        _connect(ray_head, monkeypatch, token="not-the-token-" + "0" * 40)
    assert ray_head.token not in str(excinfo.value)


def test_jobs_cli_status_logs_stop_list(
    ray_head: LocalCluster,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    client_env: ClientEnv,
) -> None:
    _, client = _connect(ray_head, monkeypatch)
    job_id = jobs.submit(client, "echo started-sleeping && sleep 120")
    env = client_env(ray_head)
    url = ray_head.dashboard_url

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*PARETOTUNE, "jobs", *args, "--address", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        _no_secret(ray_head.token, result.stdout, result.stderr)
        return result

    deadline = time.monotonic() + 60
    while str(jobs.job_status(client, job_id).status.value) == "PENDING":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.5)
    status = cli("status", job_id)
    assert status.returncode == 0, status.stderr
    assert f"{job_id}: RUNNING" in status.stdout
    listing = cli("list")
    assert job_id in listing.stdout
    stop = cli("stop", job_id, "--wait")
    assert stop.returncode == 0, stop.stderr
    assert f"{job_id}: STOPPED" in stop.stdout
    logs = cli("logs", job_id)
    assert "started-sleeping" in logs.stdout
    unknown = cli("status", "no-such-job")
    assert unknown.returncode == 2
    assert "no job 'no-such-job'" in unknown.stderr


# ---- paretotune submit smoke --wait, end to end ---------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(search, "run"), reason="needs the sweep engine (search.run)")
def test_submit_smoke_wait_completes(
    ray_head: LocalCluster, client_env: ClientEnv, tmp_path: Path
) -> None:
    """``paretotune submit smoke --wait`` succeeds and its results are complete.

    ``--no-pip``: this head's Python is the project's virtualenv, which already has every
    requirement, and Ray would clone that whole environment to install them again.
    """
    out = tmp_path / "smoke-out"
    result = subprocess.run(
        [
            *PARETOTUNE,
            "submit",
            "smoke",
            "--address",
            ray_head.dashboard_url,
            "--output",
            str(out),
            "--no-pip",
            "--wait",
        ],
        env=client_env(ray_head),
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("paretotune-smoke-")
    _no_secret(ray_head.token, result.stdout, result.stderr)
    for name in ("experiment.yaml", "trials.csv", "trials.json", "optuna.db", "report.html"):
        assert (out / name).is_file(), f"{name} missing from {sorted(os.listdir(out))}"
    data = json.loads((out / "trials.json").read_text())
    trials = data["trials"]
    assert len(trials) == 6  # smoke: num_trials: 6
    assert {t["status"] for t in trials} <= {"COMPLETE", "STOPPED", "FAILED", "INFEASIBLE"}
    assert any(t["status"] == "COMPLETE" for t in trials)
    for t in trials:
        if t["status"] == "COMPLETE":
            assert t["epochs_run"] == 2 and len(t["history"]) == 2
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".csv", ".html", ".txt", ".log"):
            assert ray_head.token not in path.read_text(errors="replace"), path
