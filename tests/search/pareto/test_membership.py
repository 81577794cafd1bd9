"""search.pareto.membership: the probability that a configuration is on the front."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import norm

from search.pareto.membership import front_membership, pooled_seed_sd

OBJECTIVES = {"val_accuracy": "max", "flops": "min"}


def _row(tid: str, acc: float, flops: float, *, family: str = "vit", n: int = 1000,
         seeds: list[float] | None = None, status: str = "COMPLETE") -> dict[str, Any]:  # fmt: skip
    row = {"trial_id": tid, "family": family, "status": status, "val_accuracy": acc,
           "flops": flops, "val_images": n}  # fmt: skip
    if seeds is not None:
        row["val_accuracy_seeds"] = seeds
    return row


def test_two_configurations_closer_than_the_noise_are_not_separated() -> None:
    # one cost, 1 point apart on 1,000 images (binomial SE about 1.3 points each)
    m = front_membership([_row("a", 0.80, 1e6), _row("b", 0.79, 1e6)], OBJECTIVES)
    assert 0.1 < m.overall["b"] < m.overall["a"] < 0.9
    assert m.uncertain() == ["a", "b"]  # both, the nearer to 0.5 first
    # the exact answer for two rows of one cost: P(a's draw above b's)
    se = math.hypot(*(math.sqrt(p * (1 - p) / 1000) for p in (0.80, 0.79)))
    assert m.overall["a"] == pytest.approx(norm.cdf(0.01 / se), abs=0.03)


def test_a_clearly_separated_configuration_is_on_the_front_with_high_probability() -> None:
    rows = [_row("a", 0.90, 1e6, n=10_000), _row("b", 0.80, 1e6, n=10_000)]
    m = front_membership(rows, OBJECTIVES)
    assert m.overall["a"] >= 0.95 and m.overall["b"] <= 0.05
    assert m.uncertain() == []


def test_the_cheapest_configuration_is_always_on_the_front_and_costs_are_exact() -> None:
    rows = [_row("cheap", 0.50, 1e5), _row("big", 0.95, 1e7), _row("mid", 0.94, 1e6)]
    m = front_membership(rows, OBJECTIVES)
    assert m.overall["cheap"] == 1.0  # nothing is cheaper: noise in accuracy cannot beat it
    assert m.overall["mid"] == 1.0  # nothing as cheap is more accurate, in any draw
    assert 0.2 < m.overall["big"] < 0.9  # 1 point above mid on 1,000 images


def test_seed_data_widens_a_family_and_is_reported() -> None:
    close = [_row("a", 0.81, 1e6, n=10_000), _row("b", 0.80, 1e6, n=10_000)]
    alone = front_membership(close, OBJECTIVES)
    assert alone.overall["a"] > 0.9  # the binomial of 10,000 images alone: too sure
    assert alone.seed_sd == {"vit": None}
    seeded = [*close, _row("c", 0.70, 1e7, n=10_000, seeds=[0.67, 0.70, 0.73])]
    m = front_membership(seeded, OBJECTIVES)
    assert m.seed_sd["vit"] == pytest.approx(0.03)
    assert 0.5 < m.overall["a"] < 0.75  # a 3-point seed sd: a 1-point lead settles nothing
    assert 0.25 < m.overall["b"] < 0.5


def test_pooled_seed_sd_weights_each_configuration_by_its_degrees_of_freedom() -> None:
    rows = [_row("a", 0.8, 1, seeds=[0.78, 0.82]), _row("b", 0.8, 1, seeds=[0.8, 0.8, 0.8]),
            _row("c", 0.8, 1, family="gmlp", seeds=[0.9]), _row("d", 0.8, 1)]  # fmt: skip
    sd = pooled_seed_sd(rows, "val_accuracy")
    assert list(sd) == ["vit"]  # one seed is no spread
    assert sd["vit"] == pytest.approx(math.sqrt((0.0008 * 1 + 0.0 * 2) / 3))


def test_within_family_and_ineligible_rows() -> None:
    rows = [_row("v", 0.90, 1e6, n=10_000), _row("g", 0.80, 1e6, family="gmlp", n=10_000),
            _row("s", 0.99, 1e3, status="STOPPED")]  # fmt: skip
    m = front_membership(rows, OBJECTIVES)
    assert set(m.overall) == {"v", "g"}  # a stopped trial is on no front
    assert m.overall["g"] <= 0.05 and m.within_family["g"] == 1.0  # alone in its family
    assert m.seed_sd == {"gmlp": None, "vit": None}


def test_the_draws_are_reproducible() -> None:
    rows = [_row("a", 0.80, 1e6), _row("b", 0.79, 1e6)]
    assert front_membership(rows, OBJECTIVES) == front_membership(rows, OBJECTIVES)
