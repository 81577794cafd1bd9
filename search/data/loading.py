"""``load_dataset``: check the fields, read the dataset with its loader, resize, split.

Every dataset is loaded whole, resized once to ``image_size`` and kept as uint8 ``[N, C, H, W]``
tensors (CIFAR-100 at 32x32 is ~180 MB). The datasets and what is known of each:
:data:`~search.data.facts.DATASET_FACTS`; how they are split: :mod:`search.data.splits`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from search.data.cifar import load_cifar
from search.data.digits import load_digits
from search.data.facts import DATASET_FACTS, DEFAULT_DATA_DIR
from search.data.fashion import load_fashion_mnist
from search.data.folder import load_imagefolder
from search.data.rules import check_dataset_fields, check_seed
from search.data.splits import (
    DatasetSplits,
    carve_validation,
    make_splits,
    split_off_test,
    take_subset,
)
from search.data.synthetic import make_synthetic
from search.errors import UserError

__all__ = ["load_dataset"]


def load_dataset(
    name: str,
    *,
    image_size: int,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_fraction: float = 0.1,
    train_subset: int | None = None,
    seed: int = 0,
    **synthetic: Any,
) -> DatasetSplits:
    """Load ``name`` (one of :data:`~search.data.facts.DATASETS`) resized to ``image_size``,
    split and described.

    ``data_dir``: folder for ``cifar10``/``cifar100`` (default
    :data:`~search.data.facts.DEFAULT_DATA_DIR`) and ``imagefolder`` (required). ``download``:
    fetch CIFAR through torchvision if the files are missing (never otherwise). ``val_fraction``
    of the training set becomes the validation set, stratified and seeded by ``seed`` (an
    imagefolder with its own ``val/`` and ``test/`` keeps them as given). ``**synthetic``:
    options of the ``synthetic`` dataset (:data:`~search.data.facts.SYNTHETIC_DEFAULTS`),
    rejected for the others. Bad values raise :class:`~search.errors.UserError` naming the field.
    """
    synthetic = check_dataset_fields(
        name,
        image_size=image_size,
        val_fraction=val_fraction,
        download=download,
        synthetic=synthetic,
        train_subset=train_subset,
        validation_required=False,
        options_field="dataset",
    )
    check_seed(seed, "dataset.seed")
    path = _data_dir(data_dir)
    hflip = DATASET_FACTS[name].hflip

    if name == "digits":
        x, y, class_names = load_digits()
        x = _resize(x, image_size)
        train_idx, test_idx = split_off_test(y)
        train, test = (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])
    elif name == "fashion_mnist":
        train, test, class_names = load_fashion_mnist(path, download)
        train = (_resize(train[0], image_size), train[1])
        test = (_resize(test[0], image_size), test[1])
    elif name in ("cifar10", "cifar100"):
        (train_x, train_y), (test_x, test_y), class_names = load_cifar(
            name, path if path is not None else DEFAULT_DATA_DIR, download
        )
        train = (_resize(train_x, image_size), train_y)
        test = (_resize(test_x, image_size), test_y)
    elif name == "imagefolder":
        if path is None:
            raise UserError(
                "dataset.data_dir: required for imagefolder (a folder of <class>/ subfolders)"
            )
        train_x, train_y, val_xy, test_x, test_y, class_names = load_imagefolder(path, image_size)
        train, test = (train_x, train_y), (test_x, test_y)
        if val_xy is not None:  # train/ val/ test/ layout: the given val/ is the val split
            train = take_subset(*train, train_subset, seed)
            return make_splits(name, train, val_xy, test, class_names, image_size, hflip)
    else:  # synthetic: its options checked and merged with the defaults above
        train, test, class_names = make_synthetic(image_size, seed, synthetic)

    train, val = carve_validation(*train, val_fraction, seed)
    train = take_subset(*train, train_subset, seed)
    return make_splits(name, train, val, test, class_names, image_size, hflip)


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """``dataset.data_dir`` as a path, ``~`` expanded (None stays None)."""
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise UserError(f"dataset.data_dir={data_dir!r}: expected a folder path")
    if data_dir is not None and "\0" in os.fspath(data_dir):
        raise UserError(f"dataset.data_dir={data_dir!r}: not a folder path (a NUL byte)")
    try:
        return None if data_dir is None else Path(data_dir).expanduser()
    except RuntimeError as exc:  # ~someone without a home here
        raise UserError(f"dataset.data_dir={data_dir!r}: cannot expand it ({exc})") from None


def _resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of uint8 ``[N, C, H, W]`` to ``size`` x ``size`` (antialiased when
    shrinking), in chunks so the float copy stays small."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    out = torch.empty(*x.shape[:2], size, size, dtype=torch.uint8)
    rows = max(1, (1 << 22) // max(1, x.shape[1] * max(size, x.shape[-1]) ** 2))
    for start in range(0, len(x), rows):
        chunk = x[start : start + rows].float()
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[start : start + rows] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out
