"""MO-ASHA (search/sweep/schedulers.py): the ranking functions, scripted scheduler decisions next to
Tune's own ASHA, and one small real ``tune.Tuner`` run."""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.sweep.schedulers import MultiObjectiveASHA, crowding_distance, keeps

CONTINUE = TrialScheduler.CONTINUE
STOP = TrialScheduler.STOP


@dataclass(frozen=True)
class FakeTrial:
    """Stand-in for ``ray.tune.experiment.Trial``: both schedulers only read ``trial_id``."""

    trial_id: str


def _mo_asha(**overrides: Any) -> MultiObjectiveASHA:
    kwargs: dict[str, Any] = {
        "metrics": ["val_accuracy", "flops"],
        "modes": ["max", "min"],
        "max_t": 9,
        "grace_period": 1,
        "reduction_factor": 3,
    }
    return MultiObjectiveASHA(**{**kwargs, **overrides})


def _result(epoch: int, acc: float, flops: float) -> dict[str, Any]:
    # Tune's ASHA counts ``training_iteration``; ours is told ``time_attr="epoch"`` (the default).
    return {"epoch": epoch, "training_iteration": epoch, "val_accuracy": acc, "flops": flops}


# --- pure functions ---------------------------------------------------------------------------


def test_crowding_distance_boundaries_and_interior() -> None:
    pts = np.array([[0.0, 4.0], [1.0, 3.0], [2.0, 1.5], [4.0, 0.0]])
    dist = crowding_distance(pts)
    assert math.isinf(dist[0]) and math.isinf(dist[3])
    # column ranges are both 4: row 1 -> (2-0)/4 + (4-1.5)/4, row 2 -> (4-1)/4 + (3-0)/4
    assert dist[1] == pytest.approx(0.5 + 0.625)
    assert dist[2] == pytest.approx(0.75 + 0.75)
    # The order of the rows does not change a row's distance.
    perm = [2, 0, 3, 1]
    assert crowding_distance(pts[perm]).tolist() == dist[perm].tolist()
    # One or two rows: all boundary.
    assert np.isinf(crowding_distance(pts[:2])).all()


def test_crowding_distance_duplicates_are_exact_ties() -> None:
    pts = np.array([[0.0, 4.0], [1.0, 3.0], [1.0, 3.0], [4.0, 0.0]])
    dist = crowding_distance(pts)
    assert dist[1] == dist[2] == pytest.approx((4 - 0) / 4 + (4 - 0) / 4)
    assert math.isinf(dist[0]) and math.isinf(dist[3])


def test_keeps_whole_fronts_then_crowding_in_the_partly_taken_front() -> None:
    pts = np.array(
        [
            [0.0, 4.0],  # 0: front 0, boundary
            [1.0, 3.0],  # 1: front 0, crowding 1.125
            [2.0, 1.5],  # 2: front 0, crowding 1.5
            [4.0, 0.0],  # 3: front 0, boundary
            [5.0, 5.0],  # 4: front 1
        ]
    )
    assert [keeps(pts, i, 2) for i in range(5)] == [True, False, False, True, False]
    assert [keeps(pts, i, 3) for i in range(5)] == [True, False, True, True, False]
    assert [keeps(pts, i, 4) for i in range(5)] == [True, True, True, True, False]
    assert [keeps(pts, i, 5) for i in range(5)] == [True] * 5
    # A dominated row is kept once the first front is used up, whatever its crowding.
    two_fronts = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 3.0]])
    assert [keeps(two_fronts, i, 3) for i in range(4)] == [True, True, True, False]
    with pytest.raises(IndexError):
        keeps(pts, 5, 2)


def test_keeps_breaks_exact_ties_for_the_earlier_row() -> None:
    # Two boundary points (both crowding inf): the earlier row wins the single place.
    pair = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert keeps(pair, 0, 1) and not keeps(pair, 1, 1)
    assert keeps(pair[::-1], 0, 1) and not keeps(pair[::-1], 1, 1)
    # Identical rows: the earliest ones take the places.
    same = np.ones((4, 2))
    assert [keeps(same, i, 2) for i in range(4)] == [True, True, False, False]


# --- scripted scheduler decisions -------------------------------------------------------------

#: (trial, val_accuracy, flops) reported at epoch 1, in this order
RUNG1 = [
    ("accurate", 0.90, 1000.0),  # expensive, accurate
    ("mediocre1", 0.80, 1200.0),  # expensive, dominated by "accurate"
    ("mediocre2", 0.70, 1100.0),  # expensive, dominated by "accurate"
    ("cheap", 0.60, 10.0),  # cheap, less accurate: on the front
    ("middle", 0.65, 20.0),  # on the front between "cheap" and "accurate": no trial dominates it
    ("best", 0.95, 1000.0),  # dominates "accurate"
    ("cheapish", 0.50, 30.0),  # dominated by "cheap"
]
#: n recorded -> keep = ceil(n/3): 1, 1, 1, 2, 2, 2, 3
RUNG1_MO_ASHA = ["CONTINUE", "STOP", "STOP", "CONTINUE", "CONTINUE", "CONTINUE", "STOP"]
RUNG1_TUNE_ASHA = ["CONTINUE", "STOP", "STOP", "STOP", "STOP", "CONTINUE", "STOP"]


def _play_rung1(scheduler: Any) -> list[str]:
    decisions = []
    for name, acc, flops in RUNG1:
        trial = FakeTrial(name)
        scheduler.on_trial_add(None, trial)
        decisions.append(scheduler.on_trial_result(None, trial, _result(1, acc, flops)))
    return decisions


def test_rung_one_keeps_the_cheap_trial_that_tune_asha_stops() -> None:
    ours = _play_rung1(_mo_asha())
    tune_asha = _play_rung1(
        ASHAScheduler(
            metric="val_accuracy", mode="max", max_t=9, grace_period=1, reduction_factor=3
        )
    )
    assert ours == RUNG1_MO_ASHA
    assert tune_asha == RUNG1_TUNE_ASHA
    cheap = [name for name, _, _ in RUNG1].index("cheap")
    assert tune_asha[cheap] == STOP and ours[cheap] == CONTINUE


def test_milestones_and_debug_string() -> None:
    sched = _mo_asha()
    assert sched.debug_string() == (
        "MultiObjectiveASHA(val_accuracy:max, flops:min; epoch max_t=9): "
        "rung 1: 0 | rung 3: 0; stopped 0"
    )
    _play_rung1(sched)
    assert sched.debug_string().endswith("rung 1: 7 | rung 3: 0; stopped 3")
    assert "\n" not in sched.debug_string()
    wide = _mo_asha(max_t=100, grace_period=2, reduction_factor=4)
    assert "rung 2: 0 | rung 8: 0 | rung 32: 0;" in wide.debug_string()
    assert "no rungs" in _mo_asha(max_t=1).debug_string()


def test_second_rung_between_rungs_and_max_t() -> None:
    sched = _mo_asha()
    _play_rung1(sched)
    best, cheap, accurate = FakeTrial("best"), FakeTrial("cheap"), FakeTrial("accurate")
    # Epoch 2 reaches no new milestone (rung 1 is recorded already): nothing is decided.
    assert sched.on_trial_result(None, cheap, _result(2, 0.0, 1e9)) == CONTINUE
    assert sched.on_trial_result(None, cheap, _result(1, 0.0, 1e9)) == CONTINUE  # repeated epoch
    assert sched.debug_string().endswith("rung 1: 7 | rung 3: 0; stopped 3")
    # Rung 3, keep = 1 each time.
    assert sched.on_trial_result(None, best, _result(3, 0.96, 1000.0)) == CONTINUE
    # Both on the front and both boundary (crowding inf): the newcomer is not cut for the tie
    # with "best", already promoted -- the cheap model goes on beside the accurate one.
    assert sched.on_trial_result(None, cheap, _result(3, 0.62, 10.0)) == CONTINUE
    assert sched.on_trial_result(None, accurate, _result(3, 0.91, 1000.0)) == STOP  # dominated
    assert sched.debug_string().endswith("rung 1: 7 | rung 3: 3; stopped 4")
    # At or past max_t the trial goes on (Tune ends it) and nothing is recorded.
    assert sched.on_trial_result(None, best, _result(9, 0.0, 1e9)) == CONTINUE
    assert sched.on_trial_result(None, FakeTrial("late"), _result(12, 0.0, 1e9)) == CONTINUE
    assert sched.debug_string().endswith("rung 1: 7 | rung 3: 3; stopped 4")


def test_a_result_jumping_over_a_rung_is_recorded_at_the_highest_rung_reached() -> None:
    sched = _mo_asha()
    assert sched.on_trial_result(None, FakeTrial("a"), _result(4, 0.9, 100.0)) == CONTINUE
    assert sched.debug_string().endswith("rung 1: 0 | rung 3: 1; stopped 0")
    assert sched.on_trial_result(None, FakeTrial("b"), _result(3, 0.8, 200.0)) == STOP


def test_missing_and_non_finite_metrics_count_as_worst() -> None:
    sched = _mo_asha()
    assert sched.on_trial_result(None, FakeTrial("ok"), _result(1, 0.1, 10.0)) == CONTINUE
    # Same cost, accuracy NaN / +inf / missing: each is worse than 0.1 and so dominated (keep 1).
    assert sched.on_trial_result(None, FakeTrial("nan"), _result(1, math.nan, 10.0)) == STOP
    assert sched.on_trial_result(None, FakeTrial("inf"), _result(1, math.inf, 10.0)) == STOP
    assert sched.on_trial_result(None, FakeTrial("none"), {"epoch": 1, "flops": 10.0}) == STOP
    other = _mo_asha()
    assert other.on_trial_result(None, FakeTrial("ok"), _result(1, 0.1, 10.0)) == CONTINUE
    # Same accuracy, cost missing / not a number: dominated.
    assert other.on_trial_result(None, FakeTrial("a"), {"epoch": 1, "val_accuracy": 0.1}) == STOP
    bad_cost = {"epoch": 1, "val_accuracy": 0.1, "flops": "n/a"}
    assert other.on_trial_result(None, FakeTrial("b"), bad_cost) == STOP
    # Reversed roles: a NaN-accuracy trial seen first is beaten by a finite one.
    rev = _mo_asha()
    assert rev.on_trial_result(None, FakeTrial("nan"), _result(1, math.nan, 10.0)) == CONTINUE
    assert rev.on_trial_result(None, FakeTrial("ok"), _result(1, 0.1, 10.0)) == CONTINUE


def test_failure_report_continues_and_records_nothing() -> None:
    sched = _mo_asha()
    first = FakeTrial("first")
    assert sched.on_trial_result(None, first, _result(1, 0.9, 10.0)) == CONTINUE
    failed = FakeTrial("failed")
    report = {**_result(1, 0.0, math.nan), "failure_reason": "CUDA out of memory"}
    assert sched.on_trial_result(None, failed, report) == CONTINUE
    assert sched.debug_string().endswith("rung 1: 1 | rung 3: 0; stopped 0")
    # Not recorded: the same trial's first real result at rung 1 is still decided (and stopped).
    assert sched.on_trial_result(None, failed, _result(1, 0.5, 20.0)) == STOP
    # A result without the time attribute decides nothing either.
    assert sched.on_trial_result(None, FakeTrial("x"), {"val_accuracy": 0.0}) == CONTINUE
    assert sched.debug_string().endswith("rung 1: 2 | rung 3: 0; stopped 1")


def test_pickle_round_trip_preserves_decisions(tmp_path: Path) -> None:
    sched = _mo_asha()
    _play_rung1(sched)
    copy = pickle.loads(pickle.dumps(sched))
    restored = _mo_asha()
    sched.save(str(tmp_path / "scheduler.pkl"))
    restored.restore(str(tmp_path / "scheduler.pkl"))
    assert copy.debug_string() == restored.debug_string() == sched.debug_string()
    later = [
        ("late_cheap", 1, 0.55, 5.0, CONTINUE),  # the cheapest yet: on the front
        ("late_bad", 1, 0.10, 2000.0, STOP),  # n=9, keep 3
        ("best", 3, 0.96, 1000.0, CONTINUE),
        ("cheap", 3, 0.62, 10.0, CONTINUE),  # on the rung's front beside "best"
    ]
    for name, epoch, acc, flops, expected in later:
        result = _result(epoch, acc, flops)
        assert sched.on_trial_result(None, FakeTrial(name), result) == expected
        assert copy.on_trial_result(None, FakeTrial(name), result) == expected
        assert restored.on_trial_result(None, FakeTrial(name), result) == expected
    # The copies are independent of the original.
    assert copy.on_trial_result(None, FakeTrial("only_copy"), _result(1, 0.99, 1.0)) == CONTINUE
    assert sched.debug_string().endswith("rung 1: 9 | rung 3: 2; stopped 4")
    assert copy.debug_string().endswith("rung 1: 10 | rung 3: 2; stopped 4")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metrics": ["val_accuracy"], "modes": ["max"]}, "metrics: .*at least 2"),
        ({"metrics": ["a", "a"]}, "metrics: .*distinct"),
        ({"modes": ["max"]}, "modes: .*one mode per metric"),
        ({"modes": ["max", "minimize"]}, "modes: got 'minimize'.*'max' or 'min'"),
        ({"max_t": 0}, "max_t: got 0; an integer >= 1"),
        ({"grace_period": 0}, "grace_period: got 0; an integer >= 1"),
        ({"reduction_factor": 1}, "reduction_factor: got 1; an integer >= 2"),
        ({"reduction_factor": 2.5}, "reduction_factor: got 2.5; an integer >= 2"),
    ],
    ids=["one-metric", "same-metric", "modes-len", "mode-name", "max_t", "grace", "rf1", "rf2.5"],
)
def test_invalid_arguments(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        _mo_asha(**overrides)
    assert "\n" not in str(info.value)


# --- one real Tune run ------------------------------------------------------------------------

#: trial name -> (val_accuracy per epoch 1..9, flops), run one at a time in this order
CURVES: dict[str, tuple[list[float], float]] = {
    "a80": ([0.80] * 9, 1000.0),
    "a85": ([0.85] * 9, 1000.0),  # dominates a80
    "a90": ([0.90] * 9, 1000.0),  # dominates a85
    "cheap": ([0.60] * 9, 10.0),  # rung 1 n=4 keep 2 and rung 3 n=4 keep 2: on the front
    "fading": ([0.95, 0.70] + [0.50] * 7, 1000.0),  # best at rung 1, dominated at rung 3
    "mediocre": ([0.70] * 9, 1200.0),  # dominated at rung 1 (n=6, keep 2)
}
LAST_EPOCH = {"a80": 9, "a85": 9, "a90": 9, "cheap": 9, "fading": 3, "mediocre": 1}


def _scripted_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    curve, flops = CURVES[config["name"]]
    for epoch, acc in enumerate(curve, start=1):
        tune.report({"epoch": epoch, "val_accuracy": acc, "flops": flops})


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    import ray

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_ADDRESS", raising=False)  # a private local instance, never someone's
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        # The trainable is defined here; workers unpickle it by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            yield
        finally:
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
            ray.shutdown()


def test_real_tune_run_stops_dominated_trials_and_keeps_the_cheap_one(
    ray_session: None, tmp_path: Path
) -> None:
    from ray import tune

    tuner = tune.Tuner(
        _scripted_trainable,
        param_space={"name": tune.grid_search(list(CURVES))},
        tune_config=tune.TuneConfig(scheduler=_mo_asha(), max_concurrent_trials=1),
        run_config=tune.RunConfig(name="moasha", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()
    assert not grid.errors
    last: dict[str, int] = {}
    for i in range(len(grid)):
        result = grid[i]
        assert result.config is not None and result.metrics is not None
        last[result.config["name"]] = result.metrics["epoch"]
    assert last == LAST_EPOCH
    assert last["cheap"] == 9
    stopped_early = sorted(name for name, epoch in last.items() if epoch < 9)
    assert stopped_early == ["fading", "mediocre"]


def test_group_by_ranks_a_trial_only_against_its_own_family() -> None:
    sched = MultiObjectiveASHA(
        metrics=["val_accuracy", "flops"],
        modes=["max", "min"],
        max_t=9,
        grace_period=1,
        reduction_factor=3,
        group_by="family",
    )
    fast = SimpleNamespace(trial_id="mixer-1", config={"family": "mixer"})
    slow = SimpleNamespace(trial_id="perceiver-1", config={"family": "perceiver"})
    slow2 = SimpleNamespace(trial_id="perceiver-2", config={"family": "perceiver"})
    assert sched.on_trial_result(None, fast, {"epoch": 1, "val_accuracy": 0.9, "flops": 1e5}) == (
        TrialScheduler.CONTINUE
    )
    # dominated by the mixer, but the first perceiver at its rung: it goes on
    r = sched.on_trial_result(None, slow, {"epoch": 1, "val_accuracy": 0.3, "flops": 1e7})
    assert r == TrialScheduler.CONTINUE
    # a second perceiver dominated by the first one is cut
    r = sched.on_trial_result(None, slow2, {"epoch": 1, "val_accuracy": 0.2, "flops": 2e7})
    assert r == TrialScheduler.STOP
    # without groups the mixer dominates the first perceiver, which is then cut
    mixed = MultiObjectiveASHA(
        metrics=["val_accuracy", "flops"], modes=["max", "min"], max_t=9, reduction_factor=3
    )
    mixed.on_trial_result(None, fast, {"epoch": 1, "val_accuracy": 0.9, "flops": 1e5})
    r = mixed.on_trial_result(None, slow, {"epoch": 1, "val_accuracy": 0.3, "flops": 1e7})
    assert r == TrialScheduler.STOP


def test_trials_and_the_scheduler_read_the_same_rungs() -> None:
    from search.experiment import load_experiment
    from search.experiment.rungs import judged_epochs
    from search.sweep import make_scheduler

    default = load_experiment("default")  # 40 epochs, grace 10, factor 3
    assert judged_epochs(default) == (10, 30)
    scheduler = make_scheduler(default)
    assert isinstance(scheduler, MultiObjectiveASHA) and scheduler._milestones == (10, 30)
    assert judged_epochs(load_experiment("default", ["scheduler.name=none"])) == ()
    assert judged_epochs(load_experiment("default", ["epochs=8"])) == ()  # grace 10 > 8 epochs
