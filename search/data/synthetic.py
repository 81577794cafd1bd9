"""The ``synthetic`` dataset: seeded class-dependent patterns plus noise, for tests and smoke
runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from search.data.facts import synthetic_bytes
from search.data.rules import check_load_memory

__all__ = ["make_synthetic"]


def make_synthetic(
    image_size: int, seed: int, options: Mapping[str, Any]
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[str, ...]]:
    """``(train, test, class_names)`` drawn from ``seed`` with ``options`` (checked, every
    option of :data:`~search.data.facts.SYNTHETIC_DEFAULTS` given); refused if they would need
    too much memory.

    Each class: a smooth random mean image (a 4x4 pattern upsampled); a sample is its class
    mean plus Gaussian pixel noise. Balanced labels in random order.
    """
    check_load_memory(synthetic_bytes(options, image_size), image_size)
    num_classes, in_channels = options["num_classes"], options["in_channels"]
    noise = options["noise"]
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, in_channels, 4, 4, generator=g)
    means = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear")

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
        x = means[y] + noise * torch.randn(n, in_channels, image_size, image_size, generator=g)
        return x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8), y

    train = draw(options["num_train"])
    test = draw(options["num_test"])
    return train, test, tuple(f"class_{i}" for i in range(num_classes))
