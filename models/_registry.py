"""Family name -> (config dataclass, model factory). Private: use the functions in ``models``.

Mixer, FNet and gMLP are one classifier, ``mixer.PatchClassifier``, with their own block
class (timm registers gMLP as ``MlpMixer`` with ``block_layer=SpatialGatingBlock``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from ._config import ModelConfig
from .fnet import FNetBlock, FNetConfig
from .gmlp import GMlpBlock, GMlpConfig
from .mixer import MixerBlock, MixerConfig, PatchClassifier
from .perceiver import Perceiver, PerceiverConfig
from .vit import VisionTransformer, ViTConfig

__all__ = ["FAMILIES", "ModelFactory", "config_class", "model_factory"]

#: ``factory(*, num_classes, image_size, in_channels, config) -> nn.Module``
ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, tuple[type[ModelConfig], ModelFactory]] = {
    "perceiver": (PerceiverConfig, Perceiver),
    "vit": (ViTConfig, VisionTransformer),
    "mixer": (MixerConfig, functools.partial(PatchClassifier, block_layer=MixerBlock)),
    "fnet": (FNetConfig, functools.partial(PatchClassifier, block_layer=FNetBlock)),
    "gmlp": (GMlpConfig, functools.partial(PatchClassifier, block_layer=GMlpBlock)),
}
FAMILIES: tuple[str, ...] = tuple(_REGISTRY)


def _entry(family: str) -> tuple[type[ModelConfig], ModelFactory]:
    if family not in _REGISTRY:
        raise ValueError(f"family={family!r}: unknown model family; allowed: {', '.join(FAMILIES)}")
    return _REGISTRY[family]


def config_class(family: str) -> type[ModelConfig]:
    """The hyperparameter dataclass of ``family`` (ValueError if unknown)."""
    return _entry(family)[0]


def model_factory(family: str) -> ModelFactory:
    """What builds a ``family`` model from a resolved config (ValueError if unknown)."""
    return _entry(family)[1]
