"""The gate before the replays: configuration variance against seed variance, per family."""

from __future__ import annotations

import json
import random

import pytest

from benchmarks.search_table import gate


def _row(family: str, seeds: list[float], anytime: list[list[float]] | None = None) -> dict:
    points = [{"iterations": k, "val_accuracy_seeds": v} for k, v in enumerate(anytime or [], 1)]
    return {
        "family": family,
        "status": "COMPLETE",
        "val_accuracy_seeds": json.dumps(seeds),
        "anytime": json.dumps(points or None),
    }


def _rows(family: str, spread: float, noise: float, rng: random.Random) -> list[dict]:
    """12 configurations 'spread' apart in truth, two seeds each 'noise' around it."""
    truths = [0.8 + spread * i / 11 for i in range(12)]
    return [_row(family, [t + rng.gauss(0, noise) for _ in range(2)]) for t in truths]


def test_configurations_that_differ_pass_and_seed_draws_do_not() -> None:
    rng = random.Random(0)
    rows = [
        *_rows("mixer", 0.05, 0.002, rng),
        *_rows("gmlp", 0.05, 0.002, rng),
        *_rows("vit", 0.0, 0.01, rng),  # every configuration the same: only seeds differ
    ]
    result = gate.gate(rows, ratio=2.0, families=2)
    assert result["families"]["mixer"]["ratio"] > 20
    assert result["families"]["vit"]["ratio"] < 2
    assert result["families"]["vit"]["p_value"] > 0.01 > result["families"]["mixer"]["p_value"]
    assert result["passing"] == ["gmlp", "mixer"] and result["passes"]
    assert not gate.gate(rows, ratio=2.0, families=3)["passes"]


def test_seed_sd_is_the_pooled_spread_of_each_configurations_seeds() -> None:
    rows = [_row("fnet", [0.80, 0.82]), _row("fnet", [0.90, 0.88])]
    fnet = gate.gate(rows)["families"]["fnet"]
    assert fnet["seed_sd"] == pytest.approx((0.02**2 / 2) ** 0.5)  # each pair's variance 2e-4
    # configuration means 0.81 and 0.89: between = 2 * 0.0032, less the seeds' 2e-4, over 2
    assert fnet["configuration_sd"] == pytest.approx(((2 * 0.0032 - 0.0002) / 2) ** 0.5)


def test_an_anytime_row_is_one_configuration_per_iteration_count() -> None:
    rows = [
        _row("perceiver", [0.8, 0.8], anytime=[[0.70, 0.71], [0.80, 0.79]]),
        _row("perceiver", [0.8, 0.8], anytime=[[0.72, 0.70], [0.81, 0.80]]),
    ]
    assert gate.gate(rows)["families"]["perceiver"]["configurations"] == 4


def test_rows_without_two_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="2 or more seeds"):
        gate.gate([_row("vit", [0.8]), _row("vit", [0.9])])
