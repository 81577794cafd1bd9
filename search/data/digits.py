"""The ``digits`` dataset: scikit-learn's 8x8 handwritten digits (1,797 images, bundled, no
download), as uint8 tensors."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["load_digits"]


def load_digits() -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """All the digits: uint8 images ``[1797, 1, 8, 8]`` (0..16 scaled to 0..255), int64 labels
    and the class names ``"0"``..``"9"``."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # values 0..16 -> 0..255
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round_().clamp_(0, 255)
    x = images.to(torch.uint8).unsqueeze(1)  # [1797, 1, 8, 8]
    y = torch.from_numpy(bunch.target).long()
    return x, y, tuple(str(i) for i in range(10))
