"""search.cli.commands: the run command's checks, its plan, and what it validates (once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    "content",
    ["families: [perceiver, vitt]\n", "epochs: [1\n", "- a list\n", "resources:\n  gpu: 1\n"],
)
def test_cli_bad_experiment_file_exit_2_one_line(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    proc = _cli("run", str(bad), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paretotune: error: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing started


def test_cli_dry_run_prints_plan(tmp_path: Path) -> None:
    narrowed = (
        "--set",
        "space.adamw.lr=[1.0e-3, 3.0e-3]",
        "--set",
        "space.weight_decay=[1.0e-4, 1.0e-2]",
    )
    proc = _cli(
        "run", "smoke", "--dry-run", "--output", str(tmp_path / "o"), *narrowed, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    for needle in (
        "dataset     synthetic",
        "families    perceiver, mixer",
        "6 x up to 2 epochs",
        "val_accuracy (max), flops (min)",
        str(tmp_path / "o"),
        # the training ranges every family shares, narrowed (the smoke preset fixes batch_size)
        'space       training: spaces/common.py (narrowed: {"batch_size": [32], '
        '"adamw.lr": [0.001, 0.003], "weight_decay": [0.0001, 0.01]})',
        "Preflight: every check passed; nothing was written",
    ):
        assert needle in proc.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_run_and_resume_validate_the_experiment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan, the output checks and the sweep all use the Experiment the command built:
    one validation, one feasibility draw, per command (no training: ``_fit`` does nothing)."""
    import search.sweep.tuner
    from search.cli import main
    from search.experiment import loading, validation

    counts = {"check_experiment": 0, "check_space": 0}

    def counted(module: object, name: str) -> None:
        original = getattr(module, name)

        def wrapper(exp: object) -> None:
            counts[name] += 1
            original(exp)

        monkeypatch.setattr(module, name, wrapper)

    counted(loading, "check_experiment")
    counted(validation, "check_space")
    monkeypatch.setattr(search.sweep.tuner, "_fit", lambda *args, **kwargs: None)
    out = tmp_path / "out"
    assert main(["run", "smoke", "--output", str(out), "--no-report", "--set", "epochs=1"]) == 0
    assert counts == {"check_experiment": 1, "check_space": 1}
    assert (out / "experiment.yaml").is_file()
    counts.update(check_experiment=0, check_space=0)
    assert main(["resume", str(out), "--no-report"]) == 0
    assert counts == {"check_experiment": 1, "check_space": 1}


def test_run_probes_a_remote_ray_address_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--address`` is resolved and probed by the command, then handed down: neither the
    sweep nor the connection checks it again. (The probe and the connection are replaced
    here: what is counted is how often the command asks; the real probe's refusals are in
    test_bad_inputs.py, the real connection in tests/cluster.)"""
    import search.sweep.tuner
    from search.cli import main
    from search.sweep import RayAddress, ray_cluster

    probes: list[tuple[object, ...]] = []
    connected: list[RayAddress] = []
    monkeypatch.setattr(ray_cluster, "_probe_ray", lambda *args: probes.append(args))
    monkeypatch.setattr(ray_cluster, "init_ray", connected.append)
    monkeypatch.setattr(search.sweep.tuner, "_fit", lambda *args, **kwargs: None)
    argv = ["run", "smoke", "--output", str(tmp_path / "o"), "--no-report"]
    assert main([*argv, "--address", "127.0.0.1:1"]) == 0
    assert probes == [("--address", "127.0.0.1:1", "127.0.0.1", 1)]
    # connected with the resolved address (the stand-in connects nothing, so the sweep asks
    # again, as it would for a private local Ray), never probed again
    assert connected and set(connected) == {RayAddress("127.0.0.1:1", "--address")}


def test_report_reads_trials_json_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command checks and parses trials.json, and the report is drawn from what it read."""
    import shutil

    from search import results
    from search.cli import commands, main
    from search.report import inputs

    out = tmp_path / "results"
    shutil.copytree(Path(__file__).parents[2] / "fixtures" / "results_small", out)
    reads: list[object] = []

    def counted(where: object) -> dict[str, object]:
        reads.append(where)
        return results.read_trials(where)  # type: ignore[arg-type]

    monkeypatch.setattr(commands, "read_trials", counted)
    monkeypatch.setattr(inputs, "read_trials", counted)
    assert main(["report", str(out)]) == 0
    assert len(reads) == 1
    assert (out / "report.html").stat().st_size > 10_000


def test_reproduce_reads_its_files_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """experiment.yaml validated once and trials.json parsed once, handed down to the
    retraining (replaced here by the stored metrics: what is counted is the reading)."""
    import json
    import shutil

    import search.trial
    from search import results
    from search.cli import commands, main
    from search.experiment import loading

    out = tmp_path / "results"
    shutil.copytree(Path(__file__).parents[2] / "fixtures" / "results_small", out)
    row = next(
        r
        for r in json.loads((out / "trials.json").read_text())["trials"]
        if r["status"] == "COMPLETE"
    )
    counts = {"read_trials": 0, "check_experiment": 0}

    def read(where: object) -> dict[str, object]:
        counts["read_trials"] += 1
        return results.read_trials(where)  # type: ignore[arg-type]

    def check(exp: object) -> None:
        counts["check_experiment"] += 1

    monkeypatch.setattr(commands, "read_trials", read)
    monkeypatch.setattr(loading, "check_experiment", check)
    stored = {**row, "epoch": row["epochs_run"]}
    monkeypatch.setattr(search.trial, "train_in_process", lambda *a, **k: stored)
    assert main(["reproduce", str(out), row["trial_id"]]) == 0
    assert counts == {"read_trials": 1, "check_experiment": 1}
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "val_accuracy" in ln)
    assert float(line.split()[3]) == 0.0  # reproduced - stored


def test_reproduce_refuses_an_unknown_trial_before_it_says_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from search.cli import main

    out = tmp_path / "results"
    shutil.copytree(Path(__file__).parents[2] / "fixtures" / "results_small", out)
    assert main(["reproduce", str(out), "nosuch"]) == 2
    got = capsys.readouterr()
    assert got.out == ""
    assert got.err.startswith("paretotune: error: reproduce 'nosuch': no such trial in ")
