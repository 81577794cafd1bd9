"""Loaded images -> :class:`DatasetSplits`: seeded stratified splits and the training images'
channel statistics.

The validation set is always carved from the training set (stratified, seeded by ``seed``:
:func:`carve_validation`). Datasets without an official test split (``digits``, a flat
``imagefolder``) get a stratified test split that does *not* depend on ``seed``
(:func:`split_off_test`), so test numbers stay comparable across seeds. Normalisation statistics
come from the final training images only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from search.data.facts import held_out_count
from search.errors import UserError

__all__ = [
    "TEST_FRACTION",
    "DatasetSplits",
    "carve_validation",
    "channel_stats",
    "make_splits",
    "split_off_test",
    "stratified_split",
    "take_subset",
]

#: Held-out test share for datasets without an official test split.
TEST_FRACTION = 0.2
_TEST_SPLIT_SEED = 0  # fixed: the test split must not move with `seed`
_SUBSET_SEED_OFFSET = 1  # the subset's draw is not the validation carve's


@dataclass(frozen=True, repr=False)
class DatasetSplits:
    """A dataset split into train/val/test, images uint8 ``[N, C, H, W]`` at ``image_size``.

    ``mean``/``std`` are per-channel statistics of ``train_x`` in [0, 1] units; ``hflip`` says
    whether a horizontal flip preserves the label.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool
    class_names: tuple[str, ...]
    name: str = ""

    def __repr__(self) -> str:
        return (
            f"DatasetSplits(name={self.name!r}, train={len(self.train_y)}, val={len(self.val_y)}, "
            f"test={len(self.test_y)}, num_classes={self.num_classes}, "
            f"shape={tuple(self.train_x.shape[1:])}, hflip={self.hflip})"
        )


def make_splits(
    name: str,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    class_names: Sequence[str],
    image_size: int,
    hflip: bool,
) -> DatasetSplits:
    """The :class:`DatasetSplits` of final ``(x, y)`` splits, statistics from ``train``."""
    train_x, train_y = train
    mean, std = channel_stats(train_x)
    return DatasetSplits(
        train_x=train_x.contiguous(),
        train_y=train_y.long(),
        val_x=val[0].contiguous(),
        val_y=val[1].long(),
        test_x=test[0].contiguous(),
        test_y=test[1].long(),
        num_classes=len(class_names),
        in_channels=train_x.shape[1],
        image_size=image_size,
        mean=mean,
        std=std,
        hflip=hflip,
        class_names=tuple(class_names),
        name=name,
    )


def split_off_test(y: Tensor) -> tuple[Tensor, Tensor]:
    """Indices ``(train, test)`` of a dataset without a test split: :data:`TEST_FRACTION` held
    out, stratified, the same for every ``seed``."""
    return stratified_split(y, TEST_FRACTION, _TEST_SPLIT_SEED)


def carve_validation(
    x: Tensor, y: Tensor, val_fraction: float, seed: int
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """``(train, val)`` ``(x, y)`` pairs: ``val_fraction`` of the training images, stratified
    and seeded by ``seed``. A split that leaves no training image, or (``val_fraction > 0``)
    no validation image, is a :class:`~search.errors.UserError`."""
    keep, held = stratified_split(y, val_fraction, seed)
    if len(keep) == 0:
        raise UserError(
            f"dataset.val_fraction={val_fraction!r}: leaves no training images "
            f"(only {len(y)} before the validation split)"
        )
    if val_fraction > 0 and len(held) == 0:
        raise UserError(
            f"dataset.val_fraction={val_fraction!r}: holds out no validation image of the "
            f"{len(y)} training images (every trial would have no val accuracy); raise "
            "it or add images"
        )
    return (x[keep], y[keep]), (x[held], y[held])


def take_subset(x: Tensor, y: Tensor, size: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """``size`` of the images ``(x, y)``, stratified and seeded by ``seed`` (all of them when
    ``size`` is None); more than there are is a :class:`~search.errors.UserError`."""
    if size is None:
        return x, y
    if size > len(y):
        raise UserError(
            f"dataset.train_subset={size}: only {len(y)} training images are left after the "
            f"validation split; use at most {len(y)}"
        )
    _, subset = stratified_split(y, size / len(y), seed + _SUBSET_SEED_OFFSET)
    return x[subset], y[subset]


def stratified_split(y: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices ``(kept, held)`` (each sorted) with ``round(fraction * N)`` held out.

    Each class contributes in proportion to its size (largest-remainder rounding, ties to the
    lower class id); which members are held out is a seeded random choice.
    """
    n = len(y)
    n_held = held_out_count(n, fraction)
    if n_held == 0:
        return torch.arange(n), torch.zeros(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    _, counts = torch.unique(y, sorted=True, return_counts=True)
    quota = counts.double() * n_held / n
    take = quota.floor().long()
    short = n_held - int(take.sum())
    if short > 0:
        take[torch.argsort(quota - take, descending=True, stable=True)[:short]] += 1
    perm = torch.randperm(n, generator=generator)
    grouped = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, random within class
    starts = torch.cumsum(counts, 0) - counts
    held = torch.cat([grouped[s : s + k] for s, k in zip(starts.tolist(), take.tolist())])
    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return mask.nonzero().squeeze(1), held.sort().values


def channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] units (exact integer sums, chunked)."""
    c = x.shape[1]
    if len(x) == 0:
        return (0.5,) * c, (0.25,) * c
    total = torch.zeros(c, dtype=torch.int64)
    squares = torch.zeros(c, dtype=torch.int64)
    rows = max(1, (1 << 22) // max(1, x[0].numel()))
    for chunk in x.split(rows):
        wide = chunk.to(torch.int32)
        total += wide.sum(dim=(0, 2, 3), dtype=torch.int64)
        squares += (wide * wide).sum(dim=(0, 2, 3), dtype=torch.int64)
    count = x.numel() // c
    mean = total.double() / (count * 255.0)
    var = (squares.double() / (count * 255.0**2) - mean * mean).clamp_(min=0.0)
    std = [s if s > 1e-6 else 1.0 for s in var.sqrt().tolist()]  # constant channel: leave as is
    return tuple(mean.tolist()), tuple(std)
