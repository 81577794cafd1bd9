"""MLP-Mixer search space (Tolstikhin et al. 2021): patch size, width, depth, both MLP sizes."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext
from spaces._patch_mlp import PATCH_MLP_DIMENSIONS, patch_mlp_space

__all__ = ["DIMENSIONS", "space"]

#: The named dimensions the report compares: tokens (patch size), width, token+channel
#: mixing blocks.
DIMENSIONS: tuple[str, ...] = PATCH_MLP_DIMENSIONS


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """The shared patch-MLP space with the token-mixing then the channel-mixing MLP width."""
    return patch_mlp_space(
        trial,
        ctx.family("mixer"),
        tokens_mlp_dim=(16, 32, 64, 128),
        channels_mlp_dim=(64, 128, 256, 512),
    )
