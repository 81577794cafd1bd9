"""The sampler replay (``benchmarks/search_table/replay.py``) on small synthetic tables.

The tables are built here over the real joint space (two families, a 24-point grid, 9 epochs,
MO-ASHA rungs at epochs 1 and 3) with made-up curves, so every test runs in seconds.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from benchmarks.search_table import build
from benchmarks.search_table.replay import (
    ReplayResult,
    Table,
    load_table,
    parse_variant,
    replay,
    replay_space,
    table_from_rows,
)
from search.experiment import Experiment, load_experiment

EPOCHS = 9
RUNGS = (1, 3)  # grace 1, eta 3, below max_t 9
FAMILIES = ("mixer", "fnet")
MODEL_GRID = {
    f: {**build.MODEL_GRID[f], "patch_size": [1, 2], "hidden_dim": [32, 64], "num_blocks": [2]}
    for f in FAMILIES
}

RawRow = dict[str, Any]


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(
        "default",
        [f"epochs={EPOCHS}", f"families=[{', '.join(FAMILIES)}]", "scheduler.grace_period=1"],
    )


@pytest.fixture(scope="module")
def space(experiment: Experiment) -> Callable[..., Any]:
    return replay_space(experiment, build.space_overrides(MODEL_GRID))


@pytest.fixture(scope="module")
def raw_rows(space: Callable[..., Any]) -> list[RawRow]:
    """One made-up row per grid point: a rising val curve, distinct epoch times."""
    rng = np.random.default_rng(7)
    rows = []
    for i, params in enumerate(build.grid_points(FAMILIES, MODEL_GRID)):
        proposal = space(optuna.trial.FixedTrial(params))
        final = float(rng.uniform(0.5, 1.0))
        curve = [round(final * (1 - math.exp(-(e + 1) / rng.uniform(1, 4))), 6) for e in range(9)]
        times = [round(0.5 + i + 0.01 * e, 4) for e in range(EPOCHS)]
        rows.append(
            {
                "key": build.config_key(params),
                "family": params["family"],
                "config": json.dumps(proposal, sort_keys=True),
                "status": "COMPLETE",
                "val_accuracy": curve[-1],
                "flops": float(rng.integers(10_000, 1_000_000)),
                "params": 1000.0 + i,
                "val_curve": json.dumps(curve),
                "time_curve": json.dumps(times),
            }
        )
    return rows


@pytest.fixture(scope="module")
def table(raw_rows: list[RawRow]) -> Table:
    return table_from_rows(raw_rows)


@pytest.fixture(scope="module")
def run(
    table: Table, space: Callable[..., Any], experiment: Experiment
) -> Callable[..., ReplayResult]:
    def go(sampler: str = "tpe", seed: int = 0, trials: int = 12, tab: Table = table) -> Any:
        return replay(tab, space, experiment, sampler=sampler, seed=seed, num_trials=trials)

    return go


def _edited(
    rows: list[RawRow], config: str, edit: Callable[[list[float]], list[float]]
) -> list[RawRow]:
    """``rows`` with the val curve (and final val) of ``config`` replaced by ``edit(curve)``."""
    out = []
    for row in rows:
        if row["config"] == config:
            curve = edit(json.loads(row["val_curve"]))
            row = {**row, "val_curve": json.dumps(curve), "val_accuracy": curve[-1]}
        out.append(row)
    return out


def test_same_seed_same_curve_another_seed_another(run: Callable[..., ReplayResult]) -> None:
    first, again, other = run(seed=0), run(seed=0), run(seed=1)
    assert first.hv == again.hv and first.trials == again.trials
    assert [t.config for t in first.trials] != [t.config for t in other.trials]
    assert first.hv != other.hv
    assert all(a <= b <= 1.0 for a, b in zip(first.hv, first.hv[1:]))


def test_every_proposal_hits_a_row_with_lr_snapped(
    table: Table, space: Callable[..., Any], experiment: Experiment
) -> None:
    assert table.snap({"lr": 1.3e-3})["lr"] == 1e-3
    assert table.snap({"lr": 1.5e-3})["lr"] == 2e-3  # log midpoint: 1.41e-3
    assert table.snap({"lr": 3.5e-3})["lr"] == 4e-3
    result = replay(table, space, experiment, sampler="random", seed=3, num_trials=20)
    assert len(result.trials) == 20 and not result.exhausted
    assert all(t.config in table.rows for t in result.trials)


def test_early_stopping_reads_only_the_rung_prefix(
    raw_rows: list[RawRow], run: Callable[..., ReplayResult]
) -> None:
    base = run(sampler="random", seed=2, trials=16)
    stopped = [t for t in base.trials if t.status == "STOPPED"]
    assert stopped and {t.epochs for t in stopped} <= set(RUNGS)
    rows = raw_rows
    for t in stopped:  # after its rung, a stopped trial's curve is never read: make it perfect
        rows = _edited(rows, t.config, functools.partial(_perfect_after, t.epochs))
    for t in base.trials:  # between the rungs and the last epoch, no curve is read
        rows = _edited(rows, t.config, _scrambled)
    poisoned = run(sampler="random", seed=2, trials=16, tab=table_from_rows(rows))
    # Same trials, values, epochs and times (the hypervolume's yardstick, the whole table's
    # front, did change: it reads every row's final value).
    assert poisoned.trials == base.trials


def _perfect_after(epoch: int, curve: list[float]) -> list[float]:
    return curve[:epoch] + [1.0] * (len(curve) - epoch)


def _scrambled(curve: list[float]) -> list[float]:
    read = {*RUNGS, EPOCHS}
    return [v if e in read else 0.0 for e, v in enumerate(curve, 1)]


def test_compute_sums_only_the_trained_epochs(
    table: Table, run: Callable[..., ReplayResult]
) -> None:
    result = run(sampler="random", seed=2, trials=16)
    assert {t.status for t in result.trials} == {"COMPLETE", "STOPPED"}
    for t in result.trials:
        times = table.rows[t.config].time_curve
        assert t.epochs == EPOCHS if t.status == "COMPLETE" else t.epochs in RUNGS
        assert t.compute_s == pytest.approx(sum(times[: t.epochs]))
        assert t.finished_s - t.started_s == pytest.approx(t.compute_s)
    assert result.compute_s[-1] == pytest.approx(sum(t.compute_s for t in result.trials))
    full = sum(sum(table.rows[t.config].time_curve) for t in result.trials)
    assert result.compute_s[-1] < full


def test_duplicates_are_recorded_and_cost_nothing(
    table: Table, run: Callable[..., ReplayResult]
) -> None:
    result = run(sampler="random", seed=0, trials=18)
    assert result.duplicates > 0
    configs = [t.config for t in result.trials]
    assert len(configs) == 18 == len(set(configs))  # each trained once, duplicates not trained
    assert result.compute_s[-1] == pytest.approx(
        sum(sum(table.rows[c].time_curve[: t.epochs]) for c, t in zip(configs, result.trials))
    )


def test_two_at_a_time_a_new_trial_when_a_slot_frees(run: Callable[..., ReplayResult]) -> None:
    result = run(sampler="tpe", seed=4, trials=12)
    starts = sorted(t.started_s for t in result.trials)
    finishes = {t.finished_s for t in result.trials}
    assert starts[:2] == [0.0, 0.0]
    assert all(s in finishes for s in starts[2:])
    for t in result.trials:  # never more than 2 running at once
        running = [u for u in result.trials if u.started_s <= t.started_s < u.finished_s]
        assert len(running) <= 2


def test_family_shares_are_equal(run: Callable[..., ReplayResult]) -> None:
    result = run(sampler="nsga2", seed=5, trials=12)
    families = [t.family for t in result.trials]
    assert families.count("mixer") == families.count("fnet") == 6


def test_whole_table_reaches_hypervolume_one(table: Table) -> None:
    points = [(r.val_accuracy, r.flops) for r in table.rows.values()]
    assert table.hv(points) == pytest.approx(1.0)
    assert dataclasses.is_dataclass(table)


def test_family_view_is_the_mean_of_each_familys_share(
    table: Table, run: Callable[..., ReplayResult]
) -> None:
    by_family: dict[str, list[tuple[float, float]]] = {}
    for r in table.rows.values():
        by_family.setdefault(r.family, []).append((r.val_accuracy, r.flops))
    assert table.family_hv(by_family) == pytest.approx(1.0)
    assert table.family_hv({"mixer": by_family["mixer"]}) == pytest.approx(0.5)  # fnet: 0
    result = run(sampler="random", seed=2, trials=16)
    assert len(result.family_hv) == len(result.hv) == 16
    assert all(a <= b <= 1.0 for a, b in zip(result.family_hv, result.family_hv[1:]))
    found: dict[str, list[tuple[float, float]]] = {}
    for t in result.trials:
        found.setdefault(t.family, []).extend(t.points)  # COMPLETE trials only
    assert all(bool(t.points) == (t.status == "COMPLETE") for t in result.trials)
    assert result.family_hv[-1] == pytest.approx(table.family_hv(found))


def test_a_table_read_for_some_families_measures_against_theirs_alone(
    raw_rows: list[RawRow], tmp_path: Path
) -> None:
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(raw_rows[0]))
        writer.writeheader()
        writer.writerows(raw_rows)
    mixer = load_table(path, ["mixer"])
    assert {r.family for r in mixer.rows.values()} == {"mixer"}
    assert set(mixer.family_front_hv) == {"mixer"}
    points = [(r.val_accuracy, r.flops) for r in mixer.rows.values()]
    assert mixer.hv(points) == pytest.approx(1.0) == mixer.family_hv({"mixer": points})
    assert len(load_table(path).rows) == len(raw_rows)


# ---------------------------------------------------------------------------------------------
# Seeded rows (two seeds' curves) and anytime rows (one point per iteration count)


def _seeded(rows: list[RawRow]) -> list[RawRow]:
    """``rows`` as trained with two seeds: seed 0 the row's curve lowered by 0.1, seed 1 raised
    by 0.1, so the mean stays the row's curve; the epoch times are both seeds'."""
    out = []
    for row in rows:
        curve = json.loads(row["val_curve"])
        seeds = [[round(v - 0.1, 6) for v in curve], [round(v + 0.1, 6) for v in curve]]
        finals = [c[-1] for c in seeds]
        out.append(
            {
                **row,
                "replicates": 2,
                "val_curves": json.dumps(seeds),
                "val_accuracy_seeds": json.dumps(finals),
            }
        )
    return out


@pytest.fixture(scope="module")
def seeded(raw_rows: list[RawRow]) -> Table:
    return table_from_rows(_seeded(raw_rows))


def test_a_seeded_trial_observes_one_seed_at_its_share_of_the_time(
    seeded: Table, space: Callable[..., Any], experiment: Experiment
) -> None:
    result = replay(seeded, space, experiment, sampler="random", seed=1, num_trials=16)
    assert {t.observed_seed for t in result.trials} == {0, 1}  # drawn per trial
    for t in result.trials:
        row = seeded.rows[t.config]
        assert t.compute_s == pytest.approx(sum(row.time_curve[: t.epochs]) / 2)
        if t.status == "COMPLETE":  # the front counts the mean, whatever the seed showed
            assert t.points == ((row.val_accuracy, row.flops),)
            assert row.final(t.observed_seed) == pytest.approx(
                row.val_accuracy + (0.1 if t.observed_seed else -0.1)
            )


def test_the_means_variant_observes_the_mean_at_every_seeds_cost(
    seeded: Table, space: Callable[..., Any], experiment: Experiment
) -> None:
    result = replay(
        seeded, space, experiment, sampler="random", seed=1, num_trials=16, observe="mean"
    )
    assert {t.observed_seed for t in result.trials} == {None}
    for t in result.trials:
        assert t.compute_s == pytest.approx(sum(seeded.rows[t.config].time_curve[: t.epochs]))


def test_what_the_sampler_sees_is_the_observed_seed(
    seeded: Table, space: Callable[..., Any], experiment: Experiment
) -> None:
    """The study's values are the drawn seed's final (seed mode) or the mean (means mode)."""
    from benchmarks.search_table import replay as replay_module

    seen: dict[str, list[float]] = {}
    original = replay_module._ReplayProposer.finish

    def spy(self: Any, handle: str, status: str, result: dict[str, Any]) -> None:
        if status == "COMPLETE":
            seen.setdefault(observe, []).append(result["val_accuracy"])
        original(self, handle, status, result)

    for observe in ("seed", "mean"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(replay_module._ReplayProposer, "finish", spy)
            res = replay(
                seeded, space, experiment, sampler="random", seed=1, num_trials=16, observe=observe
            )
        done = [t for t in res.trials if t.status == "COMPLETE"]
        expected = [seeded.rows[t.config].final(t.observed_seed) for t in done]
        assert seen[observe] == pytest.approx(expected)
    assert seen["seed"] != pytest.approx(seen["mean"])


def test_variant_names() -> None:
    assert parse_variant("tpe") == ("tpe", "seed")
    assert parse_variant("gp-means") == ("gp", "mean")
    with pytest.raises(ValueError, match="sampler='cmaes'; allowed: random"):
        parse_variant("cmaes")


def test_anytime_points_join_their_familys_front(raw_rows: list[RawRow]) -> None:
    """A row with anytime points adds every iteration count's point; the yardsticks count them."""
    row = raw_rows[0]
    cheap = {"iterations": 1, "val_accuracy": 0.3, "flops": 1.0}  # the cheapest point of all
    full = {"iterations": 2, "val_accuracy": row["val_accuracy"], "flops": row["flops"]}
    rows = [{**row, "anytime": json.dumps([cheap, full])}, *raw_rows[1:]]
    plain, anytime = table_from_rows(raw_rows), table_from_rows(rows)
    target = anytime.rows[json.dumps(json.loads(row["config"]), sort_keys=True)]
    assert target.front_points() == ((0.3, 1.0), (row["val_accuracy"], row["flops"]))
    assert target.config in anytime.family_front  # its cheap point is on the front
    assert anytime.family_front_hv[target.family] > plain.family_front_hv[target.family]
    every = {f: [p for r in anytime.rows.values() if r.family == f for p in r.front_points()]
             for f in anytime.family_front_hv}  # fmt: skip
    assert anytime.family_hv(every) == pytest.approx(1.0)


def test_the_family_front_is_each_familys_non_dominated_rows(table: Table) -> None:
    for family in table.family_front_hv:
        rows = [r for r in table.rows.values() if r.family == family]
        best = max(rows, key=lambda r: r.val_accuracy)
        cheapest = min(rows, key=lambda r: r.flops)
        on = {r.config for r in rows if r.config in table.family_front}
        assert {best.config, cheapest.config} <= on
        for r in rows:  # a row off the front is dominated by one on it
            dominated = any(
                o.val_accuracy >= r.val_accuracy and o.flops <= r.flops and o is not r for o in rows
            )
            assert (r.config in on) != dominated
