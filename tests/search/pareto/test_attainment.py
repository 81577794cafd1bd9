"""search.pareto.attainment: the seeds' empirical attainment surfaces (moocore), checked
against counting by hand."""

from __future__ import annotations

import math
import random
from typing import Any

from search.pareto.attainment import attainment_band


def _attained_by(rows: list[dict[str, Any]], r: int, cost: float, acc: float) -> bool:
    """Whether seed ``r``'s front reaches (cost, acc): some row no dearer, no less accurate."""
    for row in rows:
        seeds = row.get("val_accuracy_seeds") or [row["val_accuracy"]]
        value = seeds[r] if r < len(seeds) else sum(seeds) / len(seeds)
        if row["flops"] <= cost and value >= acc:
            return True
    return False


def test_each_surface_is_reached_by_its_share_of_the_seed_fronts() -> None:
    rnd = random.Random(3)
    rows = []
    for i in range(12):
        base = rnd.uniform(0.6, 0.9)
        seeds = [base + rnd.gauss(0, 0.02) for _ in range(4)]
        flops = float(rnd.choice([1, 2, 3, 5, 8]) * 1e6)
        rows.append({"status": "COMPLETE", "flops": flops, "val_accuracy": sum(seeds) / 4,
                     "val_accuracy_seeds": seeds, "id": i})  # fmt: skip
    band = attainment_band(rows, "val_accuracy", "flops")
    assert band is not None and band.seeds == 4
    for percentile, corners in band.surfaces.items():
        need = math.ceil(percentile / 100 * 4)
        assert corners
        for cost, acc in corners:
            reached = sum(_attained_by(rows, r, cost, acc) for r in range(4))
            assert reached >= need, (percentile, cost, acc)
            beyond = sum(_attained_by(rows, r, cost, acc + 1e-9) for r in range(4))
            assert beyond < need, (percentile, cost, acc)  # a corner: nothing better is
    median, upper = band.surfaces[50.0], band.surfaces[75.0]
    best = {c: a for c, a in median}
    assert all(a <= best.get(c, 1.0) + 1e-12 for c, a in upper)  # fewer fronts reach less


def test_single_seed_rows_give_no_band_and_unconfirmed_rows_sit_at_their_value() -> None:
    one = [{"status": "COMPLETE", "flops": 1e6, "val_accuracy": 0.8}]
    assert attainment_band(one, "val_accuracy", "flops") is None
    mixed = [*one, {"status": "COMPLETE", "flops": 2e6, "val_accuracy": 0.85,
                    "val_accuracy_seeds": [0.84, 0.86]}]  # fmt: skip
    band = attainment_band(mixed, "val_accuracy", "flops")
    assert band is not None and band.surfaces[75.0] == ((1e6, 0.8), (2e6, 0.84))
