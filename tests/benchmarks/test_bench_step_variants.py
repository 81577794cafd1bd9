"""The step-variants benchmark runs each variant on a real model and records what it timed."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_step_variants


def test_every_variant_is_timed_and_the_batch_scaling_recorded(tmp_path: Path) -> None:
    out = tmp_path / "variants.json"
    args = ["--families", "fnet", "--variants", "deepspeed,bf16", "--batch-sizes", "32,64"]
    assert bench_step_variants.main([*args, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["family"] == "fnet" and row["compile_s"] is None  # not asked for
    assert set(row["ms_per_step"]) == {"plain", "deepspeed", "bf16"}
    assert all(ms > 0 for ms in row["ms_per_step"].values())
    assert set(row["gflops_by_batch"]) == {"32", "64"} and min(row["gflops_by_batch"].values()) > 0
