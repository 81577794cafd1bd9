"""search/data/splits.py: seeded stratified splits (validation from train, a fixed test split)
and the training images' channel statistics."""

from __future__ import annotations

import pytest
import torch
from _data_helpers import SYN, rows, stats

from search.data import DatasetSplits, load_dataset
from search.data.splits import stratified_split


def test_split_same_seed_same_split_other_seed_differs(digits: DatasetSplits) -> None:
    again = load_dataset("digits", image_size=16, seed=0)
    other = load_dataset("digits", image_size=16, seed=1)
    assert torch.equal(again.train_x, digits.train_x) and torch.equal(again.val_y, digits.val_y)
    assert not torch.equal(other.val_x, digits.val_x)
    assert torch.equal(other.test_x, digits.test_x)  # the test split does not move with seed


def test_val_is_carved_from_train_and_splits_are_disjoint() -> None:
    full = load_dataset("synthetic", image_size=8, val_fraction=0.0, seed=3, **SYN)
    split = load_dataset("synthetic", image_size=8, val_fraction=0.25, seed=3, **SYN)
    assert len(full.val_y) == 0 and len(split.val_y) == 20 and len(split.train_y) == 60
    train, val, test = rows(split.train_x), rows(split.val_x), rows(split.test_x)
    assert len(train) == 60 and len(val) == 20  # noisy images: all distinct
    assert train | val == rows(full.train_x)  # val comes out of train, nothing lost
    assert not train & val and not (train | val) & test
    assert torch.bincount(split.val_y).tolist() == [5, 5, 5, 5]  # stratified


def test_stratified_split_helper_partitions_indices() -> None:
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 7)
    kept, held = stratified_split(y, 0.2, seed=5)
    assert len(held) == round(0.2 * 87)
    assert torch.equal(torch.sort(torch.cat([kept, held])).values, torch.arange(87))
    assert torch.bincount(y[held], minlength=3).tolist() == [10, 6, 1]
    assert torch.equal(held, stratified_split(y, 0.2, seed=5)[1])
    assert not torch.equal(held, stratified_split(y, 0.2, seed=6)[1])


def test_normalisation_stats_from_training_images_only(digits: DatasetSplits) -> None:
    mean, std = stats(digits.train_x)
    assert digits.mean == pytest.approx(mean.tolist(), abs=1e-9)
    assert digits.std == pytest.approx(std.tolist(), abs=1e-9)
    everything = torch.cat([digits.train_x, digits.val_x, digits.test_x])
    all_mean, _ = stats(everything)
    assert abs(digits.mean[0] - float(all_mean[0])) > 1e-6
