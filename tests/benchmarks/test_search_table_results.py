"""A seeded table read as a sweep's results: the sweep's own proposer, export and report.

Synthetic rows of the Fashion-MNIST grid (no training): Perceivers with N = 8 clearly ahead
of N = 16 and 32 at every cost, the other dimensions equal up to a seed's draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.search_table import build
from benchmarks.search_table.as_results import DataShape, write_results

GRID = build.GRIDS["fashion"]
SHAPE = DataShape(val_images=6000, test_images=10_000, image_size=28, in_channels=1)


def _row(point: dict, val: float, flops: float) -> dict[str, str]:
    seeds = [val - 0.002, val + 0.002]
    anytime = None
    if point["family"] == "perceiver":
        anytime = [
            {
                "iterations": k,
                "flops": flops * k / 4,
                "params": 1000.0,
                "val_accuracy": val - 0.01 * (4 - k),
                "test_accuracy": val - 0.01 * (4 - k),
                "val_accuracy_seeds": [s - 0.01 * (4 - k) for s in seeds],
                "test_accuracy_seeds": [s - 0.01 * (4 - k) for s in seeds],
            }
            for k in range(1, 5)
        ]
    return {
        "key": build.config_key(point),
        "family": point["family"],
        "status": "COMPLETE",
        "val_accuracy": str(val),
        "test_accuracy": str(val),
        "flops": str(flops),
        "params": "1000",
        "latency_ms": "1.0",
        "train_time_s": "10.0",
        "epochs": "4",
        "val_curve": json.dumps([val - 0.1, val - 0.05, val - 0.02, val]),
        "time_curve": json.dumps([2.5] * 4),
        "replicates": "2",
        "val_accuracy_seeds": json.dumps(seeds),
        "test_accuracy_seeds": json.dumps(seeds),
        "anytime": json.dumps(anytime),
    }


def _rows() -> list[dict[str, str]]:
    """The Perceiver factorial at one learning rate (18 runs), and two rows of each other
    family (the report's baselines)."""
    rows = []
    points = build.grid_points(GRID.families, GRID.model, GRID.training)
    others: dict[str, int] = {}
    for i, point in enumerate(points):
        if point["family"] != "perceiver":
            if others.setdefault(point["family"], 0) < 2:
                others[point["family"]] += 1
                rows.append(_row(point, 0.80 + 0.001 * (i % 7), 1e6 * (1 + i % 5)))
            continue
        if point["adamw.lr"] != GRID.training["adamw.lr"][0]:
            continue
        n = point["perceiver.num_latents"]
        flops = 1e6 * (1 + point["perceiver.projection_dim"] / 64) * (1 + n / 32)
        rows.append(_row(point, (0.85 if n == 8 else 0.75) + 0.0005 * (i % 3), flops))
    return rows


def test_the_table_reads_as_a_sweep_and_its_report_names_n_8(tmp_path: Path) -> None:
    from search.report.data import compute_report_data
    from search.report.inputs import load_results

    rows = _rows()
    out = write_results(rows, GRID, tmp_path / "res", shape=SHAPE)
    doc = json.loads((out / "trials.json").read_text())
    perceivers = sum(r["family"] == "perceiver" for r in rows)
    assert len(doc["trials"]) == len(rows) + 3 * perceivers  # iterations 1..3 of each run
    by_k = [r for r in doc["trials"] if r.get("anytime_iterations") == 2]
    assert len(by_k) == perceivers and all(len(r["val_accuracy_seeds"]) == 2 for r in by_k)
    assert all(r["val_images"] == 6000 and r["test_images"] == 10_000 for r in doc["trials"])
    assert all(isinstance(r.get("front_probability"), float) for r in doc["trials"])
    assert "Which perceiver" in (out / "report.html").read_text()

    which = compute_report_data(load_results(out), []).which["perceiver"].dimensions
    assert which is not None
    latents = next(d for d in which.dimensions if d.name == "num_latents")
    verdicts = {v.kind for v in latents.verdicts} - {"alone"}
    assert verdicts == {"separated"}
    assert {v.leader for v in latents.verdicts if v.kind == "separated"} == {8}


@pytest.mark.parametrize("status", ["FAILED", "STOPPED"])
def test_only_complete_rows_are_told(tmp_path: Path, status: str) -> None:
    rows = _rows()[:3]
    rows[0]["status"] = status
    out = write_results(rows, GRID, tmp_path / "res", shape=SHAPE, report=False)
    assert len(json.loads((out / "trials.json").read_text())["trials"]) == 2
