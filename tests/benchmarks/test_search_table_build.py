"""The table builder's rows are what the real sweep reports for the same configurations.

A two-row table (the first grid point of Mixer and of FNet, digits, 2 epochs) is built by
``benchmarks/search_table/build.py``; then a real sweep (Ray Tune + Optuna + DeepSpeed) runs on
the same experiment with its space fixed to those two points. CPU training is deterministic
for a fixed seed and thread count, so curves, FLOPs and params must agree exactly.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import search
from benchmarks.search_table import build

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("mixer", "fnet")
EXPERIMENT = ["epochs=2"]


def _build_table(out: Path) -> list[dict[str, str]]:
    sets = [a for s in EXPERIMENT for a in ("--set", s)]
    cmd = [sys.executable, str(ROOT / "benchmarks/search_table/build.py"), "--out", str(out)]
    cmd += ["--families", *FAMILIES, "--per-family", "1", "--processes", "2", *sets]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=300, capture_output=True)
    with (out / "table.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _fixed_space(rows: list[dict[str, str]]) -> list[str]:
    """``space.<name>=[...]`` overrides that leave exactly the rows' configurations."""
    fixed: dict[str, list[Any]] = {}
    for row in rows:
        for name, values in build.point_overrides(json.loads(row["key"])).items():
            assert fixed.setdefault(name, values) == values  # shared training values agree
    return [f"space.{name}={json.dumps(values)}" for name, values in fixed.items()]


def test_table_rows_equal_the_sweeps_trials(tmp_path: Path) -> None:
    rows = _build_table(tmp_path / "table")
    assert sorted(r["family"] for r in rows) == sorted(FAMILIES)
    overrides = [
        *EXPERIMENT,
        f"num_trials={len(rows)}",
        f"families=[{', '.join(FAMILIES)}]",
        "sampler=random",
        *_fixed_space(rows),
    ]
    search.run(
        "default", overrides=overrides, output_dir=tmp_path / "sweep", report=False, verbose=False
    )
    doc = json.loads((tmp_path / "sweep" / "trials.json").read_text())
    trials = {json.dumps(t["config"], sort_keys=True): t for t in doc["trials"]}
    assert len(trials) == len(rows)
    for row in rows:
        trial = trials[row["config"]]
        assert trial["status"] == row["status"] == "COMPLETE"
        curve = [round(h["val_accuracy"], 6) for h in trial["history"]]
        assert curve == json.loads(row["val_curve"])
        assert trial["val_accuracy"] == float(row["val_accuracy"])
        assert trial["test_accuracy"] == float(row["test_accuracy"])
        assert float(trial["flops"]) == float(row["flops"])
        assert float(trial["params"]) == float(row["params"])
