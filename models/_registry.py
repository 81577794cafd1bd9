"""One ``ModelFamily`` record per family: its config, model factory and cost estimator.

Mixer, FNet and gMLP are one classifier, ``mixer.PatchClassifier``, with their own block
class (timm registers gMLP as ``MlpMixer`` with ``block_layer=SpatialGatingBlock``). A record
is named by its config class (``PerceiverConfig.family``); the records come in the order of
``families.FAMILIES`` and name exactly those families, or importing this module fails.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from torch import nn

from . import _estimate
from ._config import ModelConfig
from .families import FAMILIES
from .fnet import FNetBlock, FNetConfig
from .gmlp import GMlpBlock, GMlpConfig
from .mixer import MixerBlock, MixerConfig, PatchClassifier
from .perceiver import Perceiver, PerceiverConfig
from .vit import VisionTransformer, ViTConfig

__all__ = ["MODEL_FAMILIES", "ModelFactory", "ModelFamily", "model_family"]

#: ``factory(*, num_classes, image_size, in_channels, config) -> nn.Module``
ModelFactory = Callable[..., nn.Module]


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """What ``models`` knows of one family."""

    #: the hyperparameter dataclass; its ``family`` class variable is the family's name
    config: type[ModelConfig]
    #: builds the model from a resolved config
    factory: ModelFactory
    #: tallies the analytic parameters and FLOPs (``models.cost.estimate``)
    estimate: _estimate.Estimator
    #: the hyperparameter a trained model can be evaluated at every smaller value of (the
    #: Perceiver's iterations: ``perceiver.AtIterations``), or None
    anytime: str | None = None

    @property
    def name(self) -> str:
        """The family's name (its config's ``family``)."""
        return self.config.family


_RECORDS = (
    ModelFamily(PerceiverConfig, Perceiver, _estimate.perceiver_cost, anytime="num_iterations"),
    ModelFamily(ViTConfig, VisionTransformer, _estimate.vit_cost),
    ModelFamily(
        MixerConfig,
        functools.partial(PatchClassifier, block_layer=MixerBlock),
        _estimate.mixer_cost,
    ),
    ModelFamily(
        FNetConfig, functools.partial(PatchClassifier, block_layer=FNetBlock), _estimate.fnet_cost
    ),
    ModelFamily(
        GMlpConfig, functools.partial(PatchClassifier, block_layer=GMlpBlock), _estimate.gmlp_cost
    ),
)
#: family name -> its record, in the order of ``FAMILIES``.
MODEL_FAMILIES: dict[str, ModelFamily] = {r.name: r for r in _RECORDS}
if tuple(MODEL_FAMILIES) != FAMILIES:
    raise ImportError(
        f"models/_registry.py has records for {tuple(MODEL_FAMILIES)}; "
        f"models/families.py names {FAMILIES}: one record per family, in that order"
    )


def model_family(family: str) -> ModelFamily:
    """The record of ``family`` (ValueError if unknown)."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"family={family!r}: unknown model family; allowed: {', '.join(FAMILIES)}")
    return MODEL_FAMILIES[family]
