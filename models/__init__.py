"""Image classifiers for the search: Perceiver, ViT, MLP-Mixer, FNet, gMLP (pure PyTorch).

Public API (see docs/models.md)::

    FAMILIES
    build_model(family, *, num_classes, image_size, in_channels=3, **hparams) -> nn.Module
    default_hparams(family) -> dict
    resolve_hparams(family, *, image_size, in_channels=3, **hparams) -> dict
    PRESETS: dict[str, Preset]
    cost.estimate(...), cost.measure(...)

Bad hyperparameters raise ``ValueError("<family>.<field>=<value>: <what is allowed>")``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from . import cost
from ._config import check_positive_int
from ._registry import FAMILIES, config_class, model_factory
from .presets import PRESETS, Preset

__all__ = [
    "FAMILIES",
    "PRESETS",
    "Preset",
    "build_model",
    "cost",
    "default_hparams",
    "resolve_hparams",
]


def default_hparams(family: str) -> dict[str, Any]:
    """Every model hyperparameter of ``family`` with its default value."""
    return config_class(family)().to_dict()


def resolve_hparams(
    family: str, *, image_size: int, in_channels: int = 3, **hparams: Any
) -> dict[str, Any]:
    """Defaults filled in, types coerced and constraints checked; raises ``ValueError``."""
    cfg = config_class(family).resolve(image_size=image_size, in_channels=in_channels, **hparams)
    return cfg.to_dict()


def build_model(
    family: str, *, num_classes: int, image_size: int, in_channels: int = 3, **hparams: Any
) -> nn.Module:
    """Build a ``family`` classifier mapping ``[B, in_channels, image_size, image_size]``
    images to ``[B, num_classes]`` logits."""
    cls = config_class(family)
    check_positive_int(family, "num_classes", num_classes)
    # resolved once, here: the model takes this config as it is
    cfg = cls.resolve(image_size=image_size, in_channels=in_channels, **hparams)
    return model_factory(family)(
        num_classes=num_classes, image_size=image_size, in_channels=in_channels, config=cfg
    )
