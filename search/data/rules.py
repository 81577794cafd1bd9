"""A dataset's fields and the one check of each: ``search.experiment`` applies them when an
experiment loads, ``search.data.load_dataset`` when it is called (and the loaders the memory
check once they know the image count). No torch here, so loading an experiment stays fast. Each
refusal is a :class:`~search.errors.UserError` naming the field.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from search.data.facts import (
    DATASET_FACTS,
    DATASETS,
    DOWNLOADABLE_DATASETS,
    MIN_CLASSES,
    SYNTHETIC_DEFAULTS,
    held_out_count,
)
from search.errors import UserError

__all__ = [
    "MAX_DATASET_BYTES",
    "MAX_IMAGE_SIZE",
    "MAX_SEED",
    "MAX_VAL_FRACTION",
    "check_dataset_fields",
    "check_load_memory",
    "check_seed",
    "check_train_subset",
    "check_val_fraction",
    "training_split_size",
]

#: Largest ``dataset.image_size`` (images are held resized in memory, uint8).
MAX_IMAGE_SIZE = 1024
#: Largest ``seed`` (samplers take seeds below 2**32; a resume adds the trial count).
MAX_SEED = 2**31 - 1
#: Most memory the resized dataset may need while it loads (known sizes: digits, CIFAR,
#: synthetic; an image folder is checked when it is read).
MAX_DATASET_BYTES = 16 * 2**30
_MAX_SYNTHETIC_IMAGES = 10_000_000
_SYNTHETIC_BOUNDS = {
    "num_classes": (2, 10_000),
    "num_train": (1, _MAX_SYNTHETIC_IMAGES),
    "num_test": (1, _MAX_SYNTHETIC_IMAGES),
    "in_channels": (1, 64),
}
_MAX_NOISE = 10.0


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_seed(value: Any, field: str = "seed") -> int:
    """A seed: a whole number from 0 to :data:`MAX_SEED`."""
    if not _whole(value) or not 0 <= value <= MAX_SEED:
        raise UserError(
            f"{field}={value!r}: must be a whole number from 0 to {MAX_SEED} (2**31 - 1)"
        )
    return int(value)


def check_dataset_fields(
    name: Any,
    *,
    image_size: Any,
    val_fraction: Any,
    download: Any,
    synthetic: Mapping[str, Any],
    train_subset: Any = None,
    validation_required: bool = True,
    options_field: str = "dataset.synthetic",
) -> dict[str, Any]:
    """Check a dataset's fields; return its synthetic options merged with the defaults
    (empty for the other datasets, which take none). ``options_field`` is where the synthetic
    options are named: ``dataset.synthetic`` in an experiment, ``dataset`` for the data
    loader's keyword arguments."""
    if not isinstance(name, str) or name not in DATASETS:
        raise UserError(f"dataset.name={name!r}: not allowed; allowed: {', '.join(DATASETS)}")
    if not _whole(image_size) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(
            f"dataset.image_size={image_size!r}: must be a whole number between 1 and "
            f"{MAX_IMAGE_SIZE} (images are held resized in memory)"
        )
    native = DATASET_FACTS[name].native_size
    if native is not None and image_size > native:
        raise UserError(
            f"dataset.image_size={image_size}: {name} is stored at {native}x{native}; "
            f"upsampling adds compute, not information: use {native} or less"
        )
    problem = check_val_fraction(val_fraction, required=validation_required)
    if problem:
        raise UserError(problem)
    if not isinstance(download, bool):
        raise UserError(f"dataset.download={download!r}: expected true or false")
    if download and name not in DOWNLOADABLE_DATASETS:
        raise UserError(
            f"dataset.download=true: only {', '.join(DOWNLOADABLE_DATASETS)} download; "
            f"dataset.name={name} reads its images as they are (set dataset.download=false)"
        )
    if train_subset is not None:
        check_train_subset(train_subset, name, val_fraction, synthetic)
    if name != "synthetic":
        if synthetic:
            key = min(synthetic)
            raise UserError(
                f"{options_field}.{key}={synthetic[key]!r}: only dataset.name=synthetic takes "
                f"synthetic options; dataset.name={name} takes none (remove {options_field})"
            )
        return {}
    return _synthetic_options(synthetic, options_field)


def _synthetic_options(options: Mapping[str, Any], field: str) -> dict[str, Any]:
    for key in options:
        if key not in SYNTHETIC_DEFAULTS:
            close = difflib.get_close_matches(key, list(SYNTHETIC_DEFAULTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"{field}.{key}={options[key]!r}: unknown synthetic option{hint}; allowed: "
                f"{', '.join(SYNTHETIC_DEFAULTS)}"
            )
    merged = {**SYNTHETIC_DEFAULTS, **options}
    for key, (low, high) in _SYNTHETIC_BOUNDS.items():
        value = merged[key]
        if not _whole(value) or not low <= value <= high:
            raise UserError(
                f"{field}.{key}={value!r}: expected a whole number from {low} to {high}"
            )
    noise = merged["noise"]
    number = isinstance(noise, (int, float)) and not isinstance(noise, bool)
    if not number or not math.isfinite(noise) or not 0 <= noise <= _MAX_NOISE:
        raise UserError(f"{field}.noise={noise!r}: expected a number from 0 to {_MAX_NOISE:g}")
    return merged


def training_split_size(name: str, val_fraction: float) -> int | None:
    """How many training images dataset ``name`` has after its validation carve, where known
    before it is read (the carve holds out :func:`~search.data.facts.held_out_count`)."""
    total = DATASET_FACTS[name].train_images
    return None if total is None else total - held_out_count(total, val_fraction)


def check_train_subset(
    value: Any, name: str, val_fraction: Any, synthetic: Mapping[str, Any]
) -> int:
    """``dataset.train_subset``: at least one image per class, at most the training split
    left after the validation carve (where both are known before the data are read)."""
    facts = DATASET_FACTS[name]
    if name == "synthetic":
        classes = int({**SYNTHETIC_DEFAULTS, **synthetic}.get("num_classes", MIN_CLASSES))
    else:
        classes = facts.num_classes or MIN_CLASSES
    if not _whole(value) or value < classes:
        raise UserError(
            f"dataset.train_subset={value!r}: must be a whole number of at least {classes} "
            f"(one image per class of {name}), or null for the whole training split"
        )
    number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    split = training_split_size(name, val_fraction) if number else None
    if split is not None and value > split:
        raise UserError(
            f"dataset.train_subset={value}: {name} has {split} training images after "
            f"dataset.val_fraction={val_fraction:g} holds out its validation images; "
            f"use at most {split}"
        )
    return int(value)


def check_load_memory(need: int, image_size: int) -> None:
    """Refuse loading images that need more than :data:`MAX_DATASET_BYTES` (``need`` bytes)."""
    if need > MAX_DATASET_BYTES:
        raise UserError(
            f"dataset.image_size={image_size}: loading the images at {image_size}x{image_size} "
            f"needs ~{need / 2**30:.1f} GiB of memory (limit {MAX_DATASET_BYTES / 2**30:g} GiB); "
            "lower dataset.image_size or use fewer images"
        )


#: ``dataset.val_fraction`` lies below this: most of the training set is left to train on.
MAX_VAL_FRACTION = 0.9


def check_val_fraction(value: Any, *, required: bool = True) -> str | None:
    """Why ``dataset.val_fraction=value`` is refused, or None if it is allowed.

    A sweep needs validation images (``required``: ``0 < value``); the data loader alone also
    takes 0 (no validation split).
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    low_ok = number and (value > 0 if required else value >= 0)
    if low_ok and value < MAX_VAL_FRACTION:
        return None
    opening = "(0" if required else "[0"
    return f"dataset.val_fraction={value!r}: expected a number in {opening}, {MAX_VAL_FRACTION:g})"
