"""search/data/batching.py: index batches."""

from __future__ import annotations

import pytest
import torch

from search.data import batches


def test_batches_cover_indices_and_are_seeded() -> None:
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.zeros(10, dtype=torch.long)
    plain = list(batches(x, y, 4, shuffle=False))
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(b) for b in batches(10, None, 4, drop_last=True)] == [4, 4]
    one = list(batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(2)))
    two = list(batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(2)))
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert sorted(torch.cat(one).tolist()) == list(range(10))
    assert all(b.dtype == torch.int64 for b in one)
    with pytest.raises(ValueError):
        list(batches(x, y[:5], 4))
