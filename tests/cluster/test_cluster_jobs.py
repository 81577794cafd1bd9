"""What ``paretotune submit`` would send, without a cluster: staging, output rules, the
entrypoint and runtime environment, exit codes, and the CLI's refusal and dry run."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from cluster import auth, jobs
from cluster import cli as cluster_cli
from search.errors import UserError

REMOTE = "http://head.example.invalid:8265"
SECRET = "s3cr3t-token-value-0123456789abcdef"


def _experiment_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nnum_trials: 2\nepochs: 1\nfamilies: [mixer]\n")
    return path


# ---- staging -------------------------------------------------------------------------------
def test_stage_copies_the_project_and_the_experiment_file(tmp_path: Path) -> None:
    dest = tmp_path / "staged"
    dest.mkdir()
    arg = jobs.stage_working_dir(dest, str(_experiment_file(tmp_path)))
    assert arg == f"{jobs.EXPERIMENT_DIR}/tiny.yaml"
    assert (dest / arg).read_text().startswith("name: tiny")
    for package in jobs.PROJECT_PACKAGES:
        assert (dest / package / "__init__.py").is_file()
    assert (dest / "search" / "presets" / "smoke.yaml").is_file()
    assert (dest / "pyproject.toml").is_file()
    names = {p.name for p in dest.rglob("*")}
    assert "__pycache__" not in names and ".venv" not in names and ".git" not in names
    assert not any(p.suffix == ".pyc" for p in dest.rglob("*"))
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert size < 20 * 1024 * 1024  # Ray uploads it; keep it small


def test_stage_keeps_a_preset_name_and_rejects_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert jobs.stage_working_dir(tmp_path / "a", "smoke") == "smoke"
    with pytest.raises(UserError, match="no such file"):
        jobs.stage_working_dir(tmp_path / "b", str(tmp_path / "missing.yaml"))


def test_requirements_are_the_projects_without_ray() -> None:
    reqs = jobs.project_requirements()
    names = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in reqs}
    assert "ray" not in names
    assert {"torch", "optuna", "deepspeed", "pyyaml"} <= names


# ---- where results go ----------------------------------------------------------------------
def test_output_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = SimpleNamespace(name="tiny", output_dir=None, storage=None)
    assert jobs.resolve_output(None, exp, loopback=True) == str(tmp_path / "results" / "tiny")
    assert jobs.resolve_output("out", exp, loopback=True) == str(tmp_path / "out")
    assert jobs.resolve_output("s3://b/p", exp, loopback=False) == "s3://b/p"
    assert jobs.resolve_output("/shared/r", exp, loopback=False) == "/shared/r"
    with pytest.raises(UserError, match="every node"):
        jobs.resolve_output(None, exp, loopback=False)
    with pytest.raises(UserError, match="relative path"):
        jobs.resolve_output("out", exp, loopback=False)
    declared = SimpleNamespace(name="tiny", output_dir="gs://b/declared", storage=None)
    assert jobs.resolve_output(None, declared, loopback=False) == "gs://b/declared"


def test_object_storage_output_needs_an_rdb_study(tmp_path: Path) -> None:
    with (
        pytest.raises(UserError, match="storage=postgresql"),
        jobs.prepare("smoke", output="s3://bucket/smoke", loopback=False),
    ):
        pass
    with jobs.prepare(
        "smoke",
        output="s3://bucket/smoke",
        overrides=["storage=postgresql://u@db.example.invalid/optuna"],
        loopback=False,
    ) as spec:
        assert spec.output == "s3://bucket/smoke"


# ---- the job -------------------------------------------------------------------------------
def test_prepare_builds_entrypoint_and_runtime_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", SECRET)  # must not end up in the job
    exp = _experiment_file(tmp_path)
    with jobs.prepare(
        str(exp), output="/shared/r", overrides=["epochs=3", "seed=1"], loopback=False
    ) as spec:
        staged = Path(spec.runtime_env["working_dir"])
        assert (staged / "_experiment" / "tiny.yaml").is_file()
        argv = shlex.split(spec.entrypoint)
        assert argv[:5] == ["python", "-m", "search.cli", "run", "_experiment/tiny.yaml"]
        assert argv[5:] == ["--output", "/shared/r", "--set", "epochs=3", "--set", "seed=1"]
        assert spec.runtime_env["pip"] == jobs.project_requirements()
        assert spec.job_id.startswith("paretotune-tiny-")
        assert spec.metadata == {"paretotune.experiment": "tiny", "paretotune.output": "/shared/r"}
        assert SECRET not in repr(spec) and SECRET not in spec.describe()
        for path in staged.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes()
    assert not staged.exists()  # the staging dir is gone once submitted


def test_prepare_validates_the_experiment_before_uploading() -> None:
    with (
        pytest.raises(UserError, match="num_trials"),
        jobs.prepare("smoke", overrides=["num_trials=0"]),
    ):
        pass


def test_no_pip_leaves_requirements_to_the_cluster() -> None:
    with jobs.prepare("smoke", pip=False) as spec:
        assert "pip" not in spec.runtime_env


@pytest.mark.parametrize(
    ("status", "driver_exit_code", "code"),
    [
        ("SUCCEEDED", 0, 0),
        ("FAILED", 7, 7),
        ("FAILED", None, 1),
        ("FAILED", -9, 1),
        ("STOPPED", None, 3),
        ("RUNNING", None, 4),
    ],
)
def test_exit_code(status: str, driver_exit_code: int | None, code: int) -> None:
    info = SimpleNamespace(status=status, driver_exit_code=driver_exit_code)
    assert jobs.exit_code(info) == code


# ---- the CLI -------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paretotune")
    sub = parser.add_subparsers(dest="command", required=True)
    cluster_cli.register(sub)
    return parser


def _main(argv: list[str]) -> int:
    """What ``search.cli.main`` does with a ``cluster`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"paretotune: error: {exc}")
        return 2


def test_cli_flags() -> None:
    args = _parser().parse_args(
        ["submit", "x.yaml", "--address", REMOTE, "--wait", "--no-pip", "--set", "a=1"]
    )
    assert (args.experiment, args.address, args.wait, args.pip) == ("x.yaml", REMOTE, True, False)
    assert args.overrides == ["a=1"] and not args.insecure and not args.dry_run
    for action in ("status", "logs", "stop", "list"):
        extra = [] if action == "list" else ["JOB"]
        args = _parser().parse_args(["jobs", action, *extra, "--insecure"])
        assert args.insecure and callable(args.func)


def test_cli_refuses_remote_without_token(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be sent before the refusal")

    monkeypatch.setattr(auth, "server_auth_mode", no_network)
    monkeypatch.setattr(jobs, "connect", no_network)
    code = _main(["submit", "smoke", "--address", REMOTE, "--output", "/shared/r"])
    out = capsys.readouterr().out
    assert code == 2
    assert "refusing http://head.example.invalid:8265" in out
    assert "an unauthenticated Ray Jobs API runs anyone's code" in out
    for argv in (["jobs", "status", "J"], ["jobs", "stop", "J"], ["jobs", "logs", "J"]):
        assert _main([*argv, "--address", REMOTE]) == 2


def test_cli_insecure_goes_on(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, object]] = []

    class FakeClient:
        def submit_job(self, **kwargs: object) -> str:
            sent.append(("submit", kwargs))
            return str(kwargs["submission_id"])

    monkeypatch.setattr(auth, "server_auth_mode", lambda address, **_: "disabled")
    monkeypatch.setattr(jobs, "connect", lambda client_auth: FakeClient())
    code = _main(["submit", "smoke", "--address", REMOTE, "--output", "/shared/r", "--insecure"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.strip().startswith("paretotune-smoke-")
    assert "without token auth" in captured.err
    kwargs = sent[0][1]
    assert isinstance(kwargs, dict)
    assert kwargs["entrypoint"] == "python -m search.cli run smoke --output /shared/r"


def test_cli_dry_run_sends_nothing(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(jobs, "connect", lambda *a: pytest.fail("dry run connected"))
    assert _main(["submit", "smoke", "--address", REMOTE, "--output", "/r", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "entrypoint:  python -m search.cli run smoke --output /r" in captured.out
    assert "torch" in captured.out
    # no token for a remote address: the dry run says the submit would be refused
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith("paretotune: warning: the submit would be refused: refusing ")
    assert "no Ray auth token" in warning and "--insecure" in warning
    argv = ["submit", "smoke", "--address", REMOTE, "--output", "/r", "--dry-run", "--insecure"]
    assert _main(argv) == 0
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning == f"paretotune: warning: --insecure: would talk to {REMOTE} without token auth"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t" * 32)  # a token: nothing to warn about but http
    assert _main(["submit", "smoke", "--address", REMOTE, "--output", "/r", "--dry-run"]) == 0
    assert "travels unencrypted" in capsys.readouterr().err


def test_paretotune_cli_registers_submit_and_jobs() -> None:
    from search.cli import build_parser

    args = build_parser().parse_args(["jobs", "status", "J", "--address", "127.0.0.1:9"])
    assert args.func.__module__ == "cluster.cli"
