"""Family name -> (config dataclass, model class). Private: use the functions in ``models``."""

from __future__ import annotations

from torch import nn

from ._config import ModelConfig
from .fnet import FNet, FNetConfig
from .gmlp import GMlp, GMlpConfig
from .mixer import MixerConfig, MlpMixer
from .perceiver import Perceiver, PerceiverConfig
from .vit import VisionTransformer, ViTConfig

__all__ = ["FAMILIES", "config_class", "model_class"]

_REGISTRY: dict[str, tuple[type[ModelConfig], type[nn.Module]]] = {
    "perceiver": (PerceiverConfig, Perceiver),
    "vit": (ViTConfig, VisionTransformer),
    "mixer": (MixerConfig, MlpMixer),
    "fnet": (FNetConfig, FNet),
    "gmlp": (GMlpConfig, GMlp),
}
FAMILIES: tuple[str, ...] = tuple(_REGISTRY)


def _entry(family: str) -> tuple[type[ModelConfig], type[nn.Module]]:
    if family not in _REGISTRY:
        raise ValueError(f"family={family!r}: unknown model family; allowed: {', '.join(FAMILIES)}")
    return _REGISTRY[family]


def config_class(family: str) -> type[ModelConfig]:
    """The hyperparameter dataclass of ``family`` (ValueError if unknown)."""
    return _entry(family)[0]


def model_class(family: str) -> type[nn.Module]:
    """The ``nn.Module`` class of ``family`` (ValueError if unknown)."""
    return _entry(family)[1]
