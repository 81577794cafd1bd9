"""Fixtures of the search/data/ tests."""

from __future__ import annotations

import pytest

from search.data import DatasetSplits, load_dataset


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits", image_size=16, seed=0)
