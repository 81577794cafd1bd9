"""search.sweep.proposer: family shares and anytime points, without Ray."""

from __future__ import annotations

import optuna
import pytest

from search.experiment import load_experiment
from search.results import trial_rows
from search.sweep import CostEstimator
from search.sweep.proposer import Proposer
from search.vocabulary import ANYTIME_ITERATIONS, ANYTIME_OF, TrialStatus
from spaces import joint

PERCEIVER_FIXED = {
    "perceiver.patch_size": [2],
    "perceiver.num_latents": [4],
    "perceiver.latent_dim": [16],
    "perceiver.num_iterations": [1, 2, 3],
    "perceiver.latent_heads": [1],
    "perceiver.share_weights": [True],
    "perceiver.pos_encoding": ["learned"],
    "perceiver.cross_heads": [1],
    "perceiver.dropout": [0.0],
    "optimizer": ["adamw"],
    "adamw.lr": [1e-3, 1e-3],
    "weight_decay": [0.01, 0.01],
    "label_smoothing": [0.0],
}  # three configurations: num_iterations 1, 2 or 3


def _proposer(families: object, space: dict[str, object] | None = None) -> Proposer:
    exp = load_experiment("smoke")
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1)
    )
    return Proposer(
        study,
        joint(exp.families, image_size=8, in_channels=3, overrides={**exp.space, **(space or {})}),
        objectives={"val_accuracy": "max", "flops": "min"},
        estimate_fn=CostEstimator(image_size=8, in_channels=3, num_classes=4),
        limits={},
        max_epochs=2,
        families=families,  # type: ignore[arg-type]
    )


def test_families_get_their_own_shares() -> None:
    proposer = _proposer({"perceiver": 3, "mixer": 1})
    families = []
    for _ in range(8):
        trial, proposal = proposer.propose()
        families.append(proposal["family"])
        proposer.finish(trial, {"val_accuracy": 0.5, "flops": 1e4, "epoch": 2})
    assert families.count("perceiver") == 6 and families.count("mixer") == 2
    assert families[:4].count("perceiver") == 3  # interleaved, not one family after another


def _anytime_result(iterations: int) -> dict[str, object]:
    points = [
        {
            "iterations": k,
            "val_accuracy": 0.5 + 0.1 * k,
            "test_accuracy": 0.4 + 0.1 * k,
            "flops": 1000.0 * k,
            "params": 500 + 10 * k,
        }
        for k in range(1, iterations + 1)
    ]
    return {**points[-1], "epoch": 2, "anytime": points}


def test_each_iteration_count_is_its_own_completed_trial() -> None:
    proposer = _proposer(("perceiver",), PERCEIVER_FIXED)
    trial, proposal = proposer.propose()
    while proposal["num_iterations"] != 3:  # a random sampler: draw until T = 3
        proposer.fail(trial, "not this one")
        trial, proposal = proposer.propose()
    assert proposer.finish(trial, _anytime_result(3)) == TrialStatus.COMPLETE
    study = proposer.study
    points = [t for t in study.trials if ANYTIME_OF in t.user_attrs]
    assert sorted(t.params["perceiver.num_iterations"] for t in points) == [1, 2]
    parent_id = f"optuna-{trial.number}"
    for t in points:
        k = t.user_attrs[ANYTIME_ITERATIONS]
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert t.values == [pytest.approx(0.5 + 0.1 * k), 1000.0 * k]
        assert t.user_attrs[ANYTIME_OF] == parent_id
        assert t.user_attrs["config"]["num_iterations"] == k
        assert t.user_attrs["train_time_s"] == 0.0  # the compute is the parent's
    rows = {r["trial_id"]: r for r in trial_rows(study)}
    assert rows[f"{parent_id}@k1"]["anytime_of"] == parent_id
    assert rows[f"{parent_id}@k1"]["status"] == "COMPLETE"
    assert rows[f"{parent_id}@k1"]["hp.num_iterations"] == 1
    # the points are measured configurations: never trained again (all three are measured)
    proposer.max_attempts = 5
    with pytest.raises(RuntimeError, match="already trained"):
        proposer.propose()
    assert [t.user_attrs["status"] for t in study.trials][-5:] == [TrialStatus.DUPLICATE] * 5


def test_anytime_points_take_no_turn() -> None:
    proposer = _proposer({"perceiver": 1, "mixer": 1}, PERCEIVER_FIXED)
    trial, proposal = proposer.propose()
    assert proposal["family"] == "perceiver"
    proposer.finish(trial, _anytime_result(int(proposal["num_iterations"])))
    assert proposer.next_family() == "mixer"


def test_a_sampler_stuck_on_a_trained_configuration_is_unstuck_by_uniform_draws() -> None:
    # PartialFixedSampler with every parameter fixed proposes one configuration forever, as GP
    # does on a categorical space (it learns nothing from a duplicate told PRUNED).
    proposer = _proposer(("perceiver",), PERCEIVER_FIXED)
    first, proposal = proposer.propose()
    fixed = dict(first.params)
    stuck = optuna.samplers.PartialFixedSampler(fixed, optuna.samplers.RandomSampler(seed=0))
    proposer.study.sampler = stuck
    proposer.finish(first, {"val_accuracy": 0.5, "flops": 1e4, "epoch": 2})
    proposer.explore_after = 3
    trial, again = proposer.propose()
    statuses = [t.user_attrs["status"] for t in proposer.study.trials[1:]]
    assert statuses[:3] == [TrialStatus.DUPLICATE] * 3  # the stuck sampler's own asks
    assert statuses[-1] == TrialStatus.RUNNING and len(statuses) >= 4
    assert again["num_iterations"] != proposal["num_iterations"]  # a new configuration
    assert all(t.params == fixed for t in proposer.study.trials[1:4])
    assert proposer.study.sampler is stuck  # the configured sampler proposes the next one
    proposer.finish(trial, {"val_accuracy": 0.6, "flops": 2e4, "epoch": 2})
    proposer.explore_after = 10**6  # never explore: the stuck sampler exhausts the attempts
    proposer.max_attempts = 4
    with pytest.raises(RuntimeError, match="already trained"):
        proposer.propose()


def test_every_accuracy_carries_the_wilson_interval_of_its_evaluation_set() -> None:
    proposer = _proposer(("perceiver",), PERCEIVER_FIXED)
    trial, proposal = proposer.propose()
    result = {**_anytime_result(int(proposal["num_iterations"])), "val_images": 200}
    result["test_images"] = 1000
    proposer.finish(trial, result)
    rows = trial_rows(proposer.study)
    assert rows and all(r["val_images"] == 200 and r["test_images"] == 1000 for r in rows)
    for r in rows:  # the parent and each anytime point, each from its own accuracies
        for split, n in (("val", 200), ("test", 1000)):
            acc, low, high = (r[f"{split}_accuracy{s}"] for s in ("", "_low", "_high"))
            assert low < acc < high
            half = 1.96 * (acc * (1 - acc) / n) ** 0.5  # the normal interval, close at this n
            assert high - low == pytest.approx(2 * half, rel=0.1)


def test_a_row_without_its_evaluation_set_size_has_no_interval() -> None:
    proposer = _proposer(("mixer",))
    trial, _ = proposer.propose()
    proposer.finish(trial, {"val_accuracy": 0.5, "flops": 1e4, "epoch": 2})
    (row,) = trial_rows(proposer.study)
    assert row["val_accuracy"] == 0.5
    assert row["val_accuracy_low"] is None and row["val_accuracy_high"] is None
