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
from search.data.fashion import DEBIAN_FOLDER
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


def test_wait_nodes_helper_of_the_slurm_template(
    ray_head: LocalCluster, client_env: ClientEnv
) -> None:
    """``python -m cluster.local wait-nodes`` (what slurm-sweep.sbatch runs) against a real head."""

    def wait(count: int, timeout: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "cluster.local",
                "wait-nodes",
                ray_head.gcs_address,
                str(count),
                "--timeout",
                str(timeout),
            ],
            env=client_env(ray_head),
            capture_output=True,
            text=True,
            timeout=180,
            cwd=REPO,
        )

    ok = wait(1, 60)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "1 of 1 Ray nodes alive" in ok.stderr
    assert wait(2, 3).returncode == 1  # only the head is there


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
def test_a_cluster_without_the_resources_is_waited_for_then_given_up_on(
    ray_head: LocalCluster, client_env: ClientEnv, tmp_path: Path, dry: bool
) -> None:
    """A GPU sweep on a CPU cluster: the run says what it waits for (an autoscaler could add
    the node), gives up after resources.wait_for_resources_s in one line, exit 1, nothing kept;
    the dry run is the same check."""
    out = tmp_path / "out"
    argv = ["run", "smoke", "--output", str(out), "--address", ray_head.gcs_address]
    argv += ["--set", "resources.gpus_per_trial=1", "--set", "resources.wait_for_resources_s=2"]
    done = subprocess.run(
        [*PARETOTUNE, *argv, *(["--dry-run"] if dry else [])],
        env=client_env(ray_head),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "[paretotune] waiting up to 2 s (resources.wait_for_resources_s)" in done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("paretotune: error: ResourcesUnavailable: gave up after 2 s ")
    assert "resources.gpus_per_trial=1: the cluster's one node has 2 CPUs and no GPU" in line
    assert not out.exists()


# ---- paretotune submit smoke --wait, end to end ---------------------------------------------
def _submit_wait(
    ray_head: LocalCluster, client_env: ClientEnv, tmp_path: Path, preset: str, *sets: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``paretotune submit PRESET --wait`` (``sets``: ``KEY=VALUE`` overrides) to ``ray_head``:
    the finished process and the results folder, the exit code checked."""
    out = tmp_path / f"{preset}-out"
    overrides = [arg for kv in sets for arg in ("--set", kv)]
    result = subprocess.run(
        [
            *PARETOTUNE,
            "submit",
            preset,
            "--address",
            ray_head.dashboard_url,
            "--output",
            str(out),
            "--no-pip",
            "--wait",
            *overrides,
        ],
        env=client_env(ray_head),
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result, out


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not hasattr(search, "run"), reason="needs the sweep engine (search.run)")
def test_submit_smoke_wait_completes(
    ray_head: LocalCluster, client_env: ClientEnv, tmp_path: Path
) -> None:
    """``paretotune submit smoke --wait`` succeeds and its results are complete.

    ``--no-pip``: this head's Python is the project's virtualenv, which already has every
    requirement, and Ray would clone that whole environment to install them again.
    """
    result, out = _submit_wait(ray_head, client_env, tmp_path, "smoke")
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("paretotune-smoke-")
    _no_secret(ray_head.token, result.stdout, result.stderr)
    files = ("experiment.yaml", "trials.csv", "trials.json", "optuna.db", "report.html")
    for name in (*files, "paretotune.log"):  # the job's library output: in the log
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


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    not (DEBIAN_FOLDER / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed "
    "(apt-get install dataset-fashion-mnist)",
)
def test_submit_fashion_reads_the_heads_package_folder(
    ray_head: LocalCluster, client_env: ClientEnv, tmp_path: Path
) -> None:
    """``paretotune submit fashion`` (made tiny by overrides): the driver, on the head, reads
    Fashion-MNIST from the Debian package folder and every trial trains and tests on it."""
    tiny = ("families=[mixer, fnet]", "num_trials=2", "epochs=1", "dataset.train_subset=300")
    result, out = _submit_wait(ray_head, client_env, tmp_path, "fashion", *tiny)
    _no_secret(ray_head.token, result.stdout, result.stderr)
    data = json.loads((out / "trials.json").read_text())
    assert data["experiment"]["dataset"]["name"] == "fashion_mnist"
    assert data["experiment"]["dataset"]["train_subset"] == 300
    trials = data["trials"]
    assert len(trials) == 2 and {t["family"] for t in trials} == {"mixer", "fnet"}
    for t in trials:
        assert t["status"] == "COMPLETE", t.get("failure_reason")
        assert 0.0 <= t["test_accuracy"] <= 1.0


# ---- two nodes: a trial survives the loss of its node ----------------------------------------
TWO_NODE_EXPERIMENT = """\
name: twonode
dataset:
  name: synthetic
  image_size: 8
  val_fraction: 0.2
  synthetic: {num_classes: 4, num_train: 2048, num_test: 64, in_channels: 3}
families: [mixer]
num_trials: 2
epochs: 4
sampler: random
scheduler: {name: none}
resources: {cpus_per_trial: 1, max_concurrent_trials: 2, max_failures: 2, checkpoint_interval_s: 0}
training: {eval_test: false}
space:
  mixer.patch_size: [4]
  mixer.hidden_dim: [32]
  mixer.num_blocks: [2]
  mixer.tokens_mlp_dim: [16]
  mixer.channels_mlp_dim: [32]
  batch_size: [32]
seed: 0
"""


def _trial_results(out: Path) -> dict[str, list[dict]]:
    """Tune's per-trial result.json lines (every report, including those before a failure)."""
    results = {}
    for path in out.glob("tune/run-*/*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        results[path.parent.name] = lines
    return results


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not hasattr(search, "run"), reason="needs the sweep engine (search.run)")
def test_trial_resumes_on_the_other_node_when_its_node_is_removed(
    two_node_cluster: LocalCluster, client_env: ClientEnv, tmp_path: Path
) -> None:
    """Two 1-CPU nodes, two 1-CPU trials: one trains on each node. Once the worker node's trial
    has checkpointed an epoch, the worker node is taken away (its processes stopped, as if the
    machine died). Tune restarts that trial on the head from its checkpoint (max_failures=2),
    and the sweep finishes with both trials complete."""
    cluster = two_node_cluster
    worker = cluster.workers[0]
    experiment = tmp_path / "twonode.yaml"
    experiment.write_text(TWO_NODE_EXPERIMENT)
    out = tmp_path / "out"
    log = (tmp_path / "driver.log").open("w")
    run = ["run", str(experiment), "--output", str(out), "--address", cluster.gcs_address]
    driver = subprocess.Popen(
        [*PARETOTUNE, *run, "--no-report"],
        env=client_env(cluster),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    killed_trial, worker_pids = None, set()
    try:
        deadline = time.monotonic() + 1500
        while driver.poll() is None:
            assert time.monotonic() < deadline, "sweep did not finish"
            time.sleep(0.5)
            if killed_trial is not None:
                continue
            worker_pids |= worker.refresh()
            for name, lines in _trial_results(out).items():
                last = lines[-1] if lines else None
                if last and last["pid"] in worker_pids and 1 <= last["epoch"] < 4:
                    cluster.remove_worker(worker)  # mid-trial, after a checkpointed epoch
                    killed_trial = name
                    break
        log.close()
        driver_log = (tmp_path / "driver.log").read_text()
        assert driver.returncode == 0, driver_log[-4000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert killed_trial is not None, "no trial was seen training on the worker node"

    results = _trial_results(out)
    assert len(results) == 2
    other = next(lines for name, lines in results.items() if name != killed_trial)
    assert {line["pid"] for line in other}.isdisjoint(worker_pids)  # trials ran on both nodes
    killed = results[killed_trial]
    epochs = [line["epoch"] for line in killed]
    assert epochs == [1, 2, 3, 4][: len(epochs)] and epochs[-1] == 4, epochs  # no restart at 1
    before = [line for line in killed if line["pid"] in worker_pids]
    after = [line for line in killed if line["pid"] not in worker_pids]
    assert before and after and before[-1]["epoch"] < after[0]["epoch"]  # resumed elsewhere

    data = json.loads((out / "trials.json").read_text())
    assert len(data["trials"]) == 2
    for trial in data["trials"]:
        assert trial["status"] == "COMPLETE", trial
        assert [h["epoch"] for h in trial["history"]] == [1, 2, 3, 4]
    assert cluster.alive_nodes() == 1
