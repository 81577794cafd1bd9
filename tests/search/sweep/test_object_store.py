"""``--output s3://bucket/prefix`` for real: a sweep, its report and a resume against a local
S3-compatible server (moto, started here on loopback), read back through pyarrow.

The study is a SQLite file in a local tmp folder (an object-store output needs an RDB study);
everything else -- experiment.yaml, trials.csv/json, report.html and Tune's run folders -- must
be in the bucket, and nothing under a local folder named ``s3:``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from _servers import free_port, stop

import search
from search import storage

pytestmark = pytest.mark.slow

pytest.importorskip("moto", reason="moto[server] is not installed (pip install 'moto[server]')")

REPO = Path(__file__).resolve().parents[3]
BUCKET = "paretotune-test"
URI = f"s3://{BUCKET}/sweep"
TRAINED = ("COMPLETE", "STOPPED", "FAILED")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port, a bucket in it, and the AWS_* environment
    pointing at it (for this process, its Ray workers and the CLI subprocesses)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "moto_server exited"
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not answer in 30 s"
                time.sleep(0.2)
        import boto3  # moto depends on it

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        yield endpoint
    finally:
        stop(proc, timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def ray_session(s3_server: str) -> Iterator[None]:
    # started after the AWS_* variables are set: the workers inherit them
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("study")


@pytest.fixture(scope="module")
def s3_sweep(ray_session: None, db_dir: Path) -> search.SweepResult:
    return search.run(
        "smoke",
        overrides=["num_trials=2", f"storage=sqlite:///{db_dir}/optuna.db"],
        output_dir=URI,
        report=True,
    )


def _fs() -> tuple[object, str]:
    return storage.filesystem(URI)


def _read(name: str) -> str:
    return storage.read_text(f"{URI}/{name}")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )


def test_run_writes_everything_to_the_bucket(s3_sweep: search.SweepResult) -> None:
    import pyarrow.fs as pafs

    assert s3_sweep.output_dir == URI
    fs, prefix = _fs()
    assert isinstance(fs, pafs.S3FileSystem)
    for name in ("experiment.yaml", "trials.csv", "trials.json", "report.html"):
        info = fs.get_file_info(f"{prefix}/{name}")
        assert info.type == pafs.FileType.File and info.size > 0, name
    assert "optuna.db" not in [
        i.base_name for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=False))
    ]
    doc = json.loads(_read("trials.json"))
    assert doc["trials"] == json.loads(json.dumps(s3_sweep.trials))
    trained = [r for r in doc["trials"] if r["status"] in TRAINED]
    assert len(trained) == 2, [r["status"] for r in doc["trials"]]
    assert _read("trials.csv").count("\n") == len(doc["trials"]) + 1
    assert "s3://" in _read("experiment.yaml")  # output_dir as given
    run1 = fs.get_file_info(pafs.FileSelector(f"{prefix}/tune/run-1", recursive=False))
    trial_dirs = [i for i in run1 if i.type == pafs.FileType.Directory]
    assert len(trial_dirs) == 2, [i.path for i in run1]
    # nothing went to a local folder named after the URI
    assert not (REPO / "s3:").exists() and not Path("s3:").exists()


def test_report_cli_reads_and_rewrites_the_bucket(s3_sweep: search.SweepResult) -> None:
    fs, prefix = _fs()
    before = fs.get_file_info(f"{prefix}/report.html").mtime
    storage.write_text(f"{URI}/report.html", "stale")
    time.sleep(1)
    done = _cli("report", URI)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"report: {URI}/report.html" in done.stdout
    page = _read("report.html")
    assert page != "stale" and "<html" in page.lower()
    assert fs.get_file_info(f"{prefix}/report.html").mtime >= before


def test_resume_cli_continues_from_the_bucket(s3_sweep: search.SweepResult, db_dir: Path) -> None:
    first = {r["number"]: r for r in s3_sweep.trials if r["status"] in TRAINED}
    text = _read("experiment.yaml")
    assert "num_trials: 2\n" in text
    storage.write_text(f"{URI}/experiment.yaml", text.replace("num_trials: 2\n", "num_trials: 3\n"))
    done = _cli("resume", URI, "--no-report")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(_read("trials.json"))["trials"]
    trained = {r["number"]: r for r in rows if r["status"] in TRAINED}
    assert len(trained) == 3, [(r["number"], r["status"]) for r in rows]
    for number, row in first.items():  # kept, not re-run
        assert trained[number]["trial_id"] == row["trial_id"]
        assert trained[number]["val_accuracy"] == row["val_accuracy"]
    fs, prefix = _fs()
    import pyarrow.fs as pafs

    assert fs.get_file_info(f"{prefix}/tune/run-2").type == pafs.FileType.Directory
    # the run guard sees the sweep in the bucket
    again = _cli("run", "smoke", "--output", URI, "--set", f"storage=sqlite:///{db_dir}/x.db")
    assert again.returncode == 2 and "already holds a sweep" in again.stderr, again.stderr


def test_run_into_a_uri_needs_an_rdb_storage(s3_server: str) -> None:
    uri = f"s3://{BUCKET}/refused"
    done = _cli("run", "smoke", "--output", uri, "--set", "num_trials=1")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "storage" in lines[0] and "output_dir" in lines[0], lines
    assert not storage.exists(uri)
