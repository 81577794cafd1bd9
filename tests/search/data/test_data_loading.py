"""search/data/loading.py: load_dataset refuses a bad value with a UserError naming the field."""

from __future__ import annotations

import pytest

from search.data import DATASETS, load_dataset
from search.errors import UserError


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "mnist"}, "dataset.name='mnist'"),
        ({"image_size": 0}, "dataset.image_size=0"),
        ({"image_size": 8.0}, "dataset.image_size=8.0"),
        ({"val_fraction": 1.0}, "dataset.val_fraction=1.0"),
        ({"val_fraction": -0.1}, "dataset.val_fraction=-0.1"),
        ({"seed": -1}, "dataset.seed=-1"),
        ({"download": "yes"}, "dataset.download='yes'"),
        ({"num_classes": 3}, "dataset.num_classes=3"),  # digits takes no synthetic options
        ({"name": "synthetic", "colour": 1}, "dataset.colour=1"),
        ({"name": "synthetic", "num_classes": 1}, "dataset.num_classes=1"),
        ({"name": "synthetic", "noise": -1.0}, "dataset.noise=-1.0"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict, field: str) -> None:
    args = {"name": "digits", "image_size": 8, **kwargs}
    with pytest.raises(UserError) as info:
        load_dataset(args.pop("name"), **args)
    assert field in str(info.value)
    if field.startswith("dataset.name"):
        assert all(name in str(info.value) for name in DATASETS)
