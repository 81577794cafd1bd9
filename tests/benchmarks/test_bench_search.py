"""bench_search's summary: targets from random search's runs, trials to them, per budget."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks import bench_search
from benchmarks.search_table.replay import ReplayResult, Table, TrialRecord, table_from_rows


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


def _table() -> Table:
    """One family: A and B on the front, C and D dominated (by A or B)."""
    points = {"A": (0.9, 100.0), "B": (0.5, 10.0), "C": (0.4, 50.0), "D": (0.8, 200.0)}
    return table_from_rows(
        {
            "config": json.dumps({"family": "mixer", "name": name}),
            "family": "mixer",
            "status": "COMPLETE",
            "val_accuracy": val,
            "flops": flops,
            "params": 1.0,
            "val_curve": json.dumps([val]),
            "time_curve": "[1.0]",
        }
        for name, (val, flops) in points.items()
    )


def _key(table: Table, name: str) -> str:
    return next(c for c in table.rows if json.loads(c)["name"] == name)


def test_the_oracle_counts_the_fewest_rows_that_reach_a_target() -> None:
    table = _table()
    assert bench_search.fewest_trials(table, 1.0, "hv") == 2  # A and B
    assert bench_search.fewest_trials(table, 1.0, "family_hv") == 2
    alone = max(table.hv([(r.val_accuracy, r.flops)]) for r in table.rows.values())
    assert 0 < alone < 1
    assert bench_search.fewest_trials(table, alone, "hv") == 1
    assert bench_search.fewest_trials(table, 1.01, "hv") is None


def test_front_stops_count_the_family_front_trials_a_rung_stopped() -> None:
    table = _table()
    assert table.family_front == {_key(table, "A"), _key(table, "B")}

    def record(name: str, status: str) -> TrialRecord:
        return TrialRecord(0, "mixer", _key(table, name), status, 1, 1.0, 0.0, 1.0, ())

    trials = (record("A", "STOPPED"), record("B", "COMPLETE"), record("C", "STOPPED"))
    res = ReplayResult("tpe", 0, trials, 0, False, (0.1, 0.2, 0.2), (1.0, 2.0, 3.0), (0, 0, 0))
    assert bench_search.front_stops(table, res) == (2, 1)
    summary = bench_search.summarise([res], ["tpe"], 3, 3, table)
    assert summary["runs"]["tpe"]["front_trained"] == [2]
    assert summary["runs"]["tpe"]["front_stopped"] == [1]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--samplers", "tpe", "cmaes"], "--samplers: sampler='cmaes'"),
        (["--grid", "fashion", "--table", "/nonexistent/table.csv"], "--table /nonexistent"),
        (["--set", "scheduler.grace_period=-1"], "error: scheduler.grace_period=-1: must be > 0"),
        (["--families", "mixer", "resnet"], "error: families: 'resnet' is not a family"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        bench_search.parse_args(argv)
    assert stop.value.code == 2
    assert named in capsys.readouterr().err.strip().splitlines()[-1]


def test_runs_csv_keeps_the_runs_seed_and_compute_apart_from_the_trials(tmp_path: Path) -> None:
    table = _table()

    def record(name: str, compute: float) -> TrialRecord:
        key = _key(table, name)
        return TrialRecord(0, "mixer", key, "COMPLETE", 1, compute, 0.0, 1.0, (), observed_seed=1)

    trials = (record("A", 2.0), record("B", 3.0))
    res = ReplayResult("tpe", 7, trials, 0, False, (0.5, 1.0), (2.0, 5.0), (0.5, 1.0))
    bench_search.write_runs([res], tmp_path / "runs.csv")
    with (tmp_path / "runs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["seed"] for r in rows] == ["7", "7"]  # the replay's, not the observed seed
    assert [r["observed_seed"] for r in rows] == ["1", "1"]
    assert [float(r["run_compute_s"]) for r in rows] == [2.0, 5.0]  # cumulative
    assert [float(r["compute_s"]) for r in rows] == [2.0, 3.0]  # the trial's own
