"""bench_search's summary: targets from random search's runs, trials to them, per budget."""

from __future__ import annotations

import pytest

from benchmarks import bench_search
from benchmarks.search_table.replay import ReplayResult


def _run(sampler: str, seed: int, hv: list[float], family_hv: list[float]) -> ReplayResult:
    compute = tuple(float(i + 1) for i in range(len(hv)))
    return ReplayResult(sampler, seed, (), 0, False, tuple(hv), compute, tuple(family_hv))


def test_budgets_count_the_trials_to_random_searchs_median_in_each_view() -> None:
    runs = [
        _run("random", 0, [0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.2, 0.2]),
        _run("random", 1, [0.1, 0.3, 0.5, 0.6], [0.2, 0.2, 0.2, 0.4]),
        _run("random", 2, [0.2, 0.2, 0.4, 0.5], [0.1, 0.3, 0.3, 0.3]),
        _run("tpe", 0, [0.5, 0.6, 0.6, 0.6], [0.3, 0.3, 0.3, 0.3]),
        _run("tpe", 1, [0.4, 0.5, 0.7, 0.7], [0.0, 0.1, 0.1, 0.1]),  # family view: never
    ]
    summary = bench_search.summarise(runs, ["random", "tpe"], trials=4, target_trials=4)
    overall, family = summary["views"]["hv"], summary["views"]["family_hv"]
    assert overall["target_hv"] == pytest.approx(0.5)  # median of 0.4, 0.6, 0.5
    assert overall["samplers"]["tpe"]["trials_to_target"] == [1, 2]
    assert overall["samplers"]["random"]["trials_to_target"] == [None, 3, 4]
    assert family["target_hv"] == pytest.approx(0.3)
    assert family["samplers"]["tpe"]["trials_to_target"] == [1, None]
    assert family["samplers"]["tpe"]["median_trials_to_target"] is None  # None counts as worst
    # at n = 4 only (the budgets below 4 are not printed for a 4-trial replay)
    assert list(overall["budgets"]) == ["4"]
    assert overall["budgets"]["4"]["median_trials"] == {"random": 4.0, "tpe": 1.5}
    assert summary["runs"]["tpe"]["seeds"] == 2


def test_no_random_search_no_target() -> None:
    summary = bench_search.summarise([_run("tpe", 0, [0.5], [0.5])], ["tpe"], 1, 1)
    assert summary["views"]["hv"]["target_hv"] is None
    assert summary["views"]["hv"]["budgets"] == {}
