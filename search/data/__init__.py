"""Datasets as in-memory uint8 tensors, seeded splits, and batched augmentation on the device.

One module per job:

- :mod:`~search.data.facts`: the one table of dataset facts (:data:`DATASET_FACTS`) and the
  names derived from it; torch-free.
- :mod:`~search.data.rules`: the one check of each dataset field; torch-free.
- :mod:`~search.data.loading`: :func:`load_dataset`, which reads with :mod:`~search.data.digits`,
  :mod:`~search.data.cifar`, :mod:`~search.data.folder` or :mod:`~search.data.synthetic` and
  splits with :mod:`~search.data.splits` (:class:`DatasetSplits`).
- :mod:`~search.data.augment`: :class:`Augmenter`; :mod:`~search.data.batching`: :func:`batches`.

The names that need torch are imported on first use, so reading the facts (loading an
experiment) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from search.data.facts import (
    AUGMENT_POLICIES,
    DATASET_FACTS,
    DATASETS,
    DEFAULT_DATA_DIR,
    DOWNLOADABLE_DATASETS,
    FOLDER_DATASETS,
    SYNTHETIC_DEFAULTS,
    DatasetFacts,
    DatasetName,
    default_augment,
    load_bytes,
    model_shape,
)

if TYPE_CHECKING:
    from search.data.augment import Augmenter
    from search.data.batching import batches
    from search.data.loading import load_dataset
    from search.data.splits import DatasetSplits

__all__ = [
    "AUGMENT_POLICIES",
    "DATASETS",
    "DATASET_FACTS",
    "DEFAULT_DATA_DIR",
    "DOWNLOADABLE_DATASETS",
    "FOLDER_DATASETS",
    "SYNTHETIC_DEFAULTS",
    "Augmenter",
    "DatasetFacts",
    "DatasetName",
    "DatasetSplits",
    "batches",
    "default_augment",
    "load_bytes",
    "load_dataset",
    "model_shape",
]

#: Public name -> the module (under ``search.data``) defining it, for the names needing torch.
_LAZY = {
    "Augmenter": "augment",
    "DatasetSplits": "splits",
    "batches": "batching",
    "load_dataset": "loading",
}


def __getattr__(name: str) -> Any:
    """Import a torch-needing public name on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
