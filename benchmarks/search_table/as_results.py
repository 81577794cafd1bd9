"""A seeded table as a sweep's results folder, so the report reads it as it reads a sweep.

Every COMPLETE row is told to a fresh in-memory study through the sweep's own proposer (its
grid point enqueued, its last report rebuilt from the row: accuracies and each seed's, the
evaluation sets' sizes, its curve, its cost, its anytime points), then written by the sweep's
own export (``trials.csv``/``trials.json``, with intervals and front membership) and report.
The report's "Which perceiver" section then gives the Perceiver factorial's answer per
dimension, by the same separation rule as any sweep's.

    python benchmarks/search_table/as_results.py [--grid fashion] [--out results/fashion-table]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.search_table import build  # noqa: E402


def last_report(row: Mapping[str, str], val_images: int, test_images: int) -> dict[str, Any]:
    """What the trial's loop reported last, rebuilt from its table row."""
    curve = json.loads(row["val_curve"])
    times = json.loads(row["time_curve"])
    history = [
        {"epoch": i, "val_accuracy": v, "epoch_time_s": t}
        for i, (v, t) in enumerate(zip(curve, times, strict=True), 1)
    ]
    numbers = ("val_accuracy", "test_accuracy", "flops", "params", "latency_ms", "train_time_s")
    report: dict[str, Any] = {k: float(row[k]) for k in numbers if row.get(k)}
    for key in ("val_accuracy_seeds", "test_accuracy_seeds", "anytime"):
        value = json.loads(row.get(key) or "null")
        if value:
            report[key] = value
    return {
        **report,
        "epoch": int(row["epochs"]),
        "history": history,
        "replicates": int(row.get("replicates") or 1),
        "val_images": val_images,
        "test_images": test_images,
    }


@dataclass(frozen=True)
class DataShape:
    """What the results need of the table's data: the evaluation sets' sizes (the intervals)
    and the image shape (the space's checks)."""

    val_images: int
    test_images: int
    image_size: int
    in_channels: int


def write_results(
    rows: Iterable[Mapping[str, str]],
    grid: build.Grid,
    out: Path,
    *,
    shape: DataShape | None = None,
    report: bool = True,
) -> Path:
    """``rows`` of ``grid``'s table as the results folder ``out``; its report when asked.
    ``shape``: default, read from the grid's experiment's data."""
    import optuna

    from search.experiment import load_experiment
    from search.results import export_results
    from search.sweep.proposer import Proposer
    from search.vocabulary import study_direction
    from spaces import ANYTIME_PARAM, joint

    overrides = grid.space_overrides()
    for name in ANYTIME_PARAM.values():  # every iteration count an anytime run reads
        if name in overrides:
            overrides[name] = list(range(1, max(overrides[name]) + 1))
    exp = load_experiment(grid.experiment, [*build.space_sets(overrides), f"output_dir={out}"])
    if shape is None:
        from search.sweep import load_experiment_data

        data = load_experiment_data(exp)
        shape = DataShape(len(data.val_y), len(data.test_y), data.image_size, data.in_channels)
    space = joint(
        exp.families,
        image_size=shape.image_size,
        in_channels=shape.in_channels,
        overrides=exp.space,
    )
    study = optuna.create_study(
        directions=[study_direction(m) for m in exp.objective_modes],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    proposer = Proposer(
        study,
        space,
        objectives=exp.objectives,
        estimate_fn=lambda _proposal: {},
        limits={},
        max_epochs=exp.epochs,
    )
    for row in rows:
        if row.get("status") != "COMPLETE":
            continue
        study.enqueue_trial(json.loads(row["key"]))
        trial, _ = proposer.propose()
        proposer.finish(trial, last_report(row, shape.val_images, shape.test_images))
    out.mkdir(parents=True, exist_ok=True)
    export_results(study, out, experiment=exp.to_dict())
    if report:
        from search.report import write_report

        write_report(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(build.GRIDS), default="fashion")
    parser.add_argument("--table", type=Path, help="default: the grid's table.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "fashion-table")
    args = parser.parse_args(argv)
    grid = build.GRIDS[args.grid]
    table = args.table or grid.out / "table.csv"
    if not table.is_file():
        parser.error(f"--table {table}: no such file (build it: build.py --grid {args.grid})")
    with table.open(newline="") as fh:
        out = write_results(list(csv.DictReader(fh)), grid, args.out)
    print(f"results: {out}/trials.csv, report: {out}/report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
