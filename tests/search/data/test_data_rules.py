"""search/data/rules.py: the one check of each dataset field."""

from __future__ import annotations

import pytest

from search.data.facts import DOWNLOADABLE_DATASETS
from search.data.rules import (
    MAX_DATASET_BYTES,
    check_dataset_fields,
    check_load_memory,
    check_val_fraction,
)
from search.errors import UserError


@pytest.mark.parametrize(
    ("value", "required", "ok"),
    [
        (0.15, True, True),
        (0.0, True, False),
        (0.0, False, True),
        (0.9, False, False),
        (True, False, False),
        ("0.1", True, False),
        (-0.1, False, False),
    ],
)
def test_one_val_fraction_rule(value: object, required: bool, ok: bool) -> None:
    problem = check_val_fraction(value, required=required)
    assert (problem is None) == ok
    if problem:
        assert problem.startswith(f"dataset.val_fraction={value!r}: expected a number in ")


def test_only_the_downloadable_datasets_download() -> None:
    fields = {"image_size": 8, "val_fraction": 0.1, "download": True, "synthetic": {}}
    for name in DOWNLOADABLE_DATASETS:
        assert check_dataset_fields(name, **fields) == {}
    with pytest.raises(UserError) as info:
        check_dataset_fields("imagefolder", **fields)
    assert str(info.value).startswith(
        "dataset.download=true: only fashion_mnist, cifar10, cifar100 download"
    )


def test_load_memory_limit() -> None:
    check_load_memory(MAX_DATASET_BYTES, 8)  # at the limit: allowed
    with pytest.raises(UserError) as info:
        check_load_memory(MAX_DATASET_BYTES + 2**29, 8)
    assert str(info.value) == (
        "dataset.image_size=8: loading the images at 8x8 needs ~16.5 GiB of memory (limit 16 "
        "GiB); lower dataset.image_size or use fewer images"
    )
