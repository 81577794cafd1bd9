"""A trial's model: built from its proposal, and its cost measured (params, FLOPs, latency).

An anytime trial (``training.anytime`` and a weight-shared Perceiver) is priced once per
iteration count: its :class:`Anytime` plan holds the k-iteration model's cost for every k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from spaces import ANYTIME_PARAM

if TYPE_CHECKING:
    from models.perceiver import Perceiver
    from search.data import DatasetSplits
    from search.experiment import Experiment

__all__ = ["Anytime", "build_model", "measure_cost", "plan_anytime"]


def build_model(
    family: str, model_hp: Mapping[str, Any], data: DatasetSplits, device: torch.device
) -> torch.nn.Module:
    """The proposal's model for ``data``'s images and classes, on ``device``."""
    import models

    return models.build_model(
        family,
        num_classes=data.num_classes,
        image_size=data.image_size,
        in_channels=data.in_channels,
        **model_hp,
    ).to(device)


def measure_cost(model: torch.nn.Module, data: DatasetSplits) -> dict[str, float]:
    """The model's cost metrics (``TrialProgress.cost``): params, FLOPs, latency."""
    from models.cost import measure

    cost = measure(model, (1, data.in_channels, data.image_size, data.image_size))
    return {
        "params": int(cost.params),
        "flops": int(cost.flops),
        "latency_ms": float(cost.latency_ms_b1) if cost.latency_ms_b1 is not None else math.nan,
        "latency_ms_b64": float(cost.latency_ms_b64)
        if cost.latency_ms_b64 is not None
        else math.nan,
    }


@dataclass(frozen=True)
class Anytime:
    """An anytime trial: a weight-shared Perceiver trained over its iteration counts
    1..``iterations`` and evaluated at each; ``costs[k - 1]`` is the k-iteration model's."""

    iterations: int
    loss: str  # "all": mean loss over every count; "sampled": one count per step
    costs: tuple[dict[str, float], ...]


def plan_anytime(
    family: str, model: torch.nn.Module, data: DatasetSplits, experiment: Experiment
) -> Anytime | None:
    """The trial's anytime plan (None unless ``training.anytime`` and a Perceiver)."""
    from models.perceiver import AtIterations, Perceiver

    if not experiment.training.anytime or family not in ANYTIME_PARAM:
        return None
    assert isinstance(model, Perceiver)
    if not model.config.share_weights:
        raise ValueError(
            "training.anytime=true: needs perceiver.share_weights=true (only then is iteration "
            "k of one model the k-iteration model); got share_weights=false"
        )
    total = model.config.num_iterations
    costs = [measure_cost(AtIterations(model, k), data) for k in range(1, total + 1)]
    for k, cost in enumerate(costs, 1):
        cost["params"] = _anytime_params(model, data, k)
    return Anytime(iterations=total, loss=experiment.training.anytime_loss, costs=tuple(costs))


def _anytime_params(model: Perceiver, data: DatasetSplits, k: int) -> int:
    """Parameters the k-iteration model has (the analytic count: a 1-iteration Perceiver has
    no second cross-attention)."""
    from models.cost import estimate

    hparams = {**model.config.to_dict(), "num_iterations": k}
    return int(
        estimate(
            "perceiver",
            image_size=data.image_size,
            in_channels=data.in_channels,
            num_classes=data.num_classes,
            **hparams,
        ).params
    )
