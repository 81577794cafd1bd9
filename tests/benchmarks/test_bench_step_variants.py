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
    # the step's own GEMMs, replayed alone, take part of the step and bound its rate
    assert row["gemms"] > 0 and 0 < row["gemm_ms"] < row["ms_per_step"]["plain"]
    assert row["ceiling_gflops"] > row["step_gflops"] > 0 and row["peak_gflops"] > 0


def test_a_steps_gemms_are_the_products_its_layers_compute() -> None:
    step = bench_step_variants.make_step(
        "fnet", {"patch_size": 2, "hidden_dim": 32, "num_blocks": 2}, 8, "plain"
    )
    gemms = bench_step_variants.step_gemms(step, 8)
    ops = {op for op, _ in gemms}
    assert ops <= set(bench_step_variants.GEMMS) and "aten::addmm" in ops
    # patch embedding: 16 patches of 4 pixels -> 32 channels, batch 8, forward addmm
    assert ("aten::addmm", [(32,), (8 * 16, 4), (4, 32)]) in gemms
    flops = bench_step_variants.gemm_flops
    assert flops("aten::addmm", [(32,), (128, 4), (4, 32)]) == 2 * 128 * 4 * 32
    assert flops("aten::bmm", [(3, 5, 7), (3, 7, 2)]) == 2 * 3 * 5 * 7 * 2
