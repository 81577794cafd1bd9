"""search/data/facts.py: the one table of dataset facts, the names derived from it, and what the
experiment validator computes from it; every dataset loads as its facts say."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path

import pytest
from _data_helpers import SYN, write_cifar10, write_cifar100, write_fashion, write_pngs

from search.data import load_dataset
from search.data.facts import (
    AUGMENT_POLICIES,
    DATA_DIR_REQUIRED,
    DATASET_FACTS,
    DATASETS,
    DOWNLOADABLE_DATASETS,
    FOLDER_DATASETS,
    MIN_CLASSES,
    SYNTHETIC_DEFAULTS,
    DatasetName,
    default_augment,
    load_bytes,
    model_shape,
    synthetic_bytes,
)


def test_every_dataset_name_comes_from_the_table() -> None:
    assert DATASETS == tuple(DATASET_FACTS) == typing.get_args(DatasetName)
    assert all(facts.name == name for name, facts in DATASET_FACTS.items())
    assert FOLDER_DATASETS == tuple(n for n in DATASETS if DATASET_FACTS[n].reads_folder)
    assert FOLDER_DATASETS == ("fashion_mnist", "cifar10", "cifar100", "imagefolder")
    assert DOWNLOADABLE_DATASETS == ("fashion_mnist", "cifar10", "cifar100")
    # a folder dataset with a system folder (Debian's package) needs no data_dir
    assert DATA_DIR_REQUIRED == ("cifar10", "cifar100", "imagefolder")
    assert set(DOWNLOADABLE_DATASETS) <= set(FOLDER_DATASETS)  # a download lands in data_dir
    assert all(facts.augment in AUGMENT_POLICIES for facts in DATASET_FACTS.values())
    with pytest.raises(TypeError):
        DATASET_FACTS["mnist"] = DATASET_FACTS["digits"]  # type: ignore[index]


#: Writes a small copy of a folder dataset into the given folder.
_WRITERS: dict[str, Callable[[Path], object]] = {
    "fashion_mnist": write_fashion,
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
    "imagefolder": lambda root: write_pngs(root, {"a": 6, "b": 6, "c": 6}),
}


@pytest.mark.parametrize("name", DATASETS)
def test_each_dataset_loads_as_its_facts_say(name: str, tmp_path: Path) -> None:
    facts = DATASET_FACTS[name]
    options = SYN if name == "synthetic" else {}
    assert (name in _WRITERS) == facts.reads_folder
    if facts.reads_folder:
        _WRITERS[name](tmp_path)
    data_dir = tmp_path if facts.reads_folder else None
    s = load_dataset(name, image_size=8, data_dir=data_dir, **options)
    assert s.name == name and s.hflip is facts.hflip
    assert default_augment(name) == facts.augment
    in_channels, num_classes = model_shape(name, options)
    assert s.in_channels == in_channels
    if facts.in_channels is not None:
        assert s.in_channels == facts.in_channels
    if facts.num_classes is not None or name == "synthetic":
        assert s.num_classes == num_classes
        assert facts.num_classes in (None, s.num_classes)
    else:  # the data decide: the shape the validator assumes is the cheapest head
        assert num_classes == MIN_CLASSES <= s.num_classes
    images = len(s.train_y) + len(s.val_y) + len(s.test_y)
    kept = sum(x.numel() for x in (s.train_x, s.val_x, s.test_x))
    need = load_bytes(name, 8, options)
    if facts.images is None and name != "synthetic":
        assert need is None  # known once the folder is read
    else:
        assert need is not None and need >= kept
    if facts.images is not None and not facts.reads_folder:  # bundled: every image counted
        assert images == facts.images and need == kept


def test_what_the_experiment_validator_reads() -> None:
    assert load_bytes("digits", 8, {}) == 1797 * 1 * 8 * 8
    assert load_bytes("cifar10", 32, {}) == load_bytes("cifar100", 32, {}) == 60_000 * 3 * 32 * 32
    assert load_bytes("imagefolder", 224, {}) is None
    assert load_bytes("synthetic", 16, {}) == (1000 + 200 + 8 * 1000) * 3 * 16 * 16
    options = {"num_train": 50, "num_test": 70, "in_channels": 1}
    assert load_bytes("synthetic", 16, options) == synthetic_bytes(
        {**SYNTHETIC_DEFAULTS, **options}, 16
    )
    assert load_bytes("mnist", 8, {}) is None
    assert model_shape("digits", {}) == (1, 10)
    assert model_shape("cifar10", {}) == (3, 10)
    assert model_shape("cifar100", {}) == (3, 100)
    assert model_shape("imagefolder", {}) == (3, 2)
    assert model_shape("synthetic", {}) == (3, 10)
    assert model_shape("synthetic", {"in_channels": 1, "num_classes": 7}) == (1, 7)


def test_default_augment_per_dataset() -> None:
    assert default_augment("digits") == "none"
    assert default_augment("synthetic") == "none"
    assert default_augment("cifar10") == "crop_flip"
    assert default_augment("cifar100") == "crop_flip"
    assert default_augment("imagefolder") == "resized_crop"
    assert all(default_augment(name) in AUGMENT_POLICIES for name in DATASETS)
    with pytest.raises(ValueError) as info:
        default_augment("mnist")
    assert "'mnist'" in str(info.value) and all(name in str(info.value) for name in DATASETS)


def test_describe_dataset_names_the_data_budget() -> None:
    from search.data.facts import describe_dataset

    fashion = {"name": "fashion_mnist", "image_size": 14, "val_fraction": 0.1}
    assert describe_dataset({**fashion, "train_subset": 10_000}) == (
        "Fashion-MNIST at 14x14, 10,000 training images (a stratified subset), 6,000 val"
    )
    assert describe_dataset(fashion) == "Fashion-MNIST at 14x14, 54,000 training images, 6,000 val"
    digits = {"name": "digits", "image_size": 8, "val_fraction": 0.15}
    assert describe_dataset(digits) == "digits at 8x8, 1,222 training images, 216 val"
    # counts unknown before the data are read: only what is known
    assert describe_dataset({"name": "synthetic", "image_size": 8}) == "synthetic at 8x8"
