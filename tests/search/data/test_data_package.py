"""search/data/__init__.py: the package's public names, those needing torch imported on first
use, so that reading the dataset facts (loading an experiment) never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from search import data
from search.data import augment, batching, facts, loading, splits

ROOT = Path(__file__).resolve().parents[3]


def test_public_names_are_where_they_are_defined() -> None:
    assert data.AUGMENT_POLICIES == ("none", "translate", "crop_flip", "resized_crop")
    assert "AUGMENT_POLICIES" in data.__all__ and "default_augment" in data.__all__
    assert data.DATASETS is facts.DATASETS and data.DATASET_FACTS is facts.DATASET_FACTS
    assert data.default_augment is facts.default_augment
    assert data.Augmenter is augment.Augmenter and data.batches is batching.batches
    assert data.load_dataset is loading.load_dataset
    assert data.DatasetSplits is splits.DatasetSplits
    assert all(getattr(data, name) is not None for name in data.__all__)
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018


def test_reading_the_facts_imports_no_torch() -> None:
    code = (
        "import sys, search.data, search.data.facts, search.data.rules; "
        "print('torch' in sys.modules, search.data.DATASETS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == f"False {facts.DATASETS}"
