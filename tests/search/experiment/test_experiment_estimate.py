"""search.experiment.estimate: a sweep's training FLOPs before it runs, from the space's own
proposals and the data budget."""

from __future__ import annotations

import pytest

from search.experiment import load_experiment
from search.experiment.estimate import TRAINING_FLOPS_PER_FORWARD, estimate_sweep


def test_training_flops_follow_trials_epochs_images_and_shares() -> None:
    exp = load_experiment("default")
    est = estimate_sweep(exp)
    assert est.train_images == 1222  # digits' 1,438 training images less 216 val
    assert set(est.median_flops) == set(exp.families)
    assert sum(est.shares.values()) == pytest.approx(1.0)
    per_trial = sum(est.shares[f] * est.median_flops[f] for f in est.median_flops)
    expected = TRAINING_FLOPS_PER_FORWARD * per_trial * 20 * 40 * 1222
    assert est.training_flops == pytest.approx(expected)
    longer = estimate_sweep(load_experiment("default", ["epochs=80"]))
    assert longer.training_flops == pytest.approx(2 * expected)
    # a subset trains on fewer images; bigger images cost more per image
    fashion = ["dataset.name=fashion_mnist", "dataset.val_fraction=0.1"]
    small = estimate_sweep(load_experiment("default", [*fashion, "dataset.train_subset=5000"]))
    assert small.train_images == 5000
    big = estimate_sweep(load_experiment("default", [*fashion, "dataset.image_size=28"]))
    assert big.train_images == 54_000
    assert big.median_flops["mixer"] > small.median_flops["mixer"]
    assert "training FLOPs" in big.describe() and "54,000 images" in big.describe()


def test_unknown_image_count_says_so() -> None:
    est = estimate_sweep(load_experiment("smoke"))  # synthetic: counted once generated
    assert est.training_flops is None
    assert "image count known once read" in est.describe()
