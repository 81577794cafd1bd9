"""benchmarks/gpu_check.py, the one command for a GPU: on a CPU it refuses in one line, its
``--simulate-cpu`` mode runs every step here in bf16 without Ray (the GPU machine has none), and
a wrong result fails it loudly, not only a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import gpu_check
from search.data.fashion import DEBIAN_FOLDER

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
#: Fashion-MNIST where the system has it (as CI does), else images of its shape.
DATASET = (
    "fashion_mnist" if (DEBIAN_FOLDER / "t10k-labels-idx1-ubyte.gz").is_file() else "synthetic"
)


def _without(tmp_path: Path, *packages: str) -> dict[str, str]:
    """An environment in which importing ``packages`` fails, as on the bare GPU machine."""
    for name in packages:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on the GPU machine')\n"
        )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_on_a_cpu_it_says_there_is_no_gpu_in_one_line_and_exits_2() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("gpu_check: no GPU here") and out.stderr.count("\n") == 1
    assert "--simulate-cpu" in out.stderr and out.stdout == ""


@pytest.mark.timeout(600)
def test_simulate_cpu_runs_every_step_without_ray(tmp_path: Path) -> None:
    result = tmp_path / "gpu_check.json"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--simulate-cpu", "--dataset", DATASET, "--out", str(result)],
        capture_output=True,
        text=True,
        env=_without(tmp_path, "ray", "plotly"),  # DeepSpeed's op cache: tests/conftest.py
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(result.read_text())
    assert doc["failures"] == []
    env = doc["environment"]
    assert env["simulate_cpu"] is True and env["torch"] == torch.__version__
    assert env["dataset"] == DATASET
    assert env["deepspeed"] and env["optuna"] and env["device"].startswith("CPU")
    checks = doc["checks"]
    assert list(checks) == list(gpu_check.STEPS)
    assert checks["engines"]["bf16"]["wrapper"] == "FP16_UnfusedOptimizer"
    precision = checks["precision"]
    assert {r["precision"] for n, r in precision.items() if n.startswith("bf16")} == {"bfloat16"}
    assert precision["fp32"]["precision"] == "float32"
    assert all(abs(r["loss_vs_fp32"]) <= gpu_check.LOSS_RTOL for r in _rows(precision))
    assert set(checks["fashion"]) >= {"perceiver", "vit", "mixer", "fnet", "gmlp"}
    step = checks["step_time"]
    assert step["here_bf16_ms"] > 0 and step["cpu_fp32_ms"] > 0 and step["speedup"] > 0


def _rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in section.values() if isinstance(row, dict)]


def test_a_wrong_result_fails_the_check_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def right(setup: gpu_check.Setup, out: dict[str, Any]) -> None:
        out["value"] = 1.0

    def wrong(setup: gpu_check.Setup, out: dict[str, Any]) -> None:
        out["loss"] = 2.0
        gpu_check._check(False, "bf16 train loss 2.0 vs fp32 1.0 (+100%, allowed 5%)")

    monkeypatch.setattr(gpu_check, "_right", right, raising=False)
    monkeypatch.setattr(gpu_check, "_wrong", wrong, raising=False)
    monkeypatch.setattr(gpu_check, "STEPS", {"first": "_wrong", "second": "_right"})
    result = tmp_path / "out.json"
    assert gpu_check.main(["--simulate-cpu", "--out", str(result)]) == 1
    err = capsys.readouterr().err
    assert "gpu_check: FAILED first: bf16 train loss 2.0 vs fp32 1.0" in err
    doc = json.loads(result.read_text())
    assert doc["failures"] == ["first: bf16 train loss 2.0 vs fp32 1.0 (+100%, allowed 5%)"]
    assert doc["checks"]["first"]["loss"] == 2.0  # what it measured is kept
    assert doc["checks"]["second"]["value"] == 1.0  # the later steps still ran
