"""Index batches over a dataset held in memory."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["batches"]


def batches(
    x: Tensor | int,
    y: Tensor | None = None,
    batch_size: int = 128,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Tensor]:
    """Yield int64 index tensors over ``range(len(x))`` (``x`` a tensor or a length).

    ``y``, if given, must have the same length (checked once). With ``shuffle`` the order is a
    ``torch.randperm`` drawn from ``generator`` (the global RNG if None; indices then live on
    the generator's device), otherwise ``0..N-1`` in order. ``drop_last`` drops a final short
    batch. Use as ``for idx in batches(s.train_x, s.train_y, 256, shuffle=True, generator=g):
    xb, yb = s.train_x[idx], s.train_y[idx]``.
    """
    n = x if isinstance(x, int) else len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"batches: x has {n} items but y has {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batches: batch_size={batch_size!r}: need an integer >= 1")
    if shuffle:
        device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(n, generator=generator, device=device)
    else:
        order = torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
