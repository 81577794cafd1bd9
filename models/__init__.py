"""Image classifiers for the search: Perceiver, ViT, MLP-Mixer, FNet, gMLP (pure PyTorch).

Public API (see docs/models.md)::

    FAMILIES                                   # models/families.py: the names, torch-free
    MODEL_FAMILIES: dict[str, ModelFamily]     # one record per family: config, factory, cost
    build_model(family, *, num_classes, image_size, in_channels=3, **hparams) -> nn.Module
    default_hparams(family) -> dict
    resolve_hparams(family, *, image_size, in_channels=3, **hparams) -> dict
    PRESETS: dict[str, Preset]
    cost.estimate(...), cost.measure(...)

Bad hyperparameters raise ``ValueError("<family>.<field>=<value>: <what is allowed>")``.
The names that need torch are imported on first use, so ``models.FAMILIES`` imports no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .families import FAMILIES

if TYPE_CHECKING:
    from torch import nn

    from . import cost
    from ._registry import MODEL_FAMILIES, ModelFamily
    from .presets import PRESETS, Preset

__all__ = [
    "FAMILIES",
    "MODEL_FAMILIES",
    "PRESETS",
    "ModelFamily",
    "Preset",
    "build_model",
    "cost",
    "default_hparams",
    "resolve_hparams",
]

#: Public name -> the module (under ``models``) defining it, for the names needing torch.
_LAZY = {
    "MODEL_FAMILIES": "_registry",
    "ModelFamily": "_registry",
    "PRESETS": "presets",
    "Preset": "presets",
}


def __getattr__(name: str) -> Any:
    """Import a torch-needing public name on first use (PEP 562)."""
    if name == "cost":
        value: Any = importlib.import_module(f"{__name__}.cost")
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def default_hparams(family: str) -> dict[str, Any]:
    """Every model hyperparameter of ``family`` with its default value."""
    from ._registry import model_family

    return model_family(family).config().to_dict()


def resolve_hparams(
    family: str, *, image_size: int, in_channels: int = 3, **hparams: Any
) -> dict[str, Any]:
    """Defaults filled in, types coerced and constraints checked; raises ``ValueError``."""
    from ._registry import model_family

    cls = model_family(family).config
    return cls.resolve(image_size=image_size, in_channels=in_channels, **hparams).to_dict()


def build_model(
    family: str, *, num_classes: int, image_size: int, in_channels: int = 3, **hparams: Any
) -> nn.Module:
    """Build a ``family`` classifier mapping ``[B, in_channels, image_size, image_size]``
    images to ``[B, num_classes]`` logits."""
    from ._config import check_positive_int
    from ._registry import model_family

    record = model_family(family)
    check_positive_int(family, "num_classes", num_classes)
    # resolved once, here: the model takes this config as it is
    cfg = record.config.resolve(image_size=image_size, in_channels=in_channels, **hparams)
    return record.factory(
        num_classes=num_classes, image_size=image_size, in_channels=in_channels, config=cfg
    )
