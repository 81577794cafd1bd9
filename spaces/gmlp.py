"""gMLP search space (Liu et al. 2021): patch size, width, depth, gating feed-forward size."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext
from spaces._patch_mlp import PATCH_MLP_DIMENSIONS, patch_mlp_space

__all__ = ["DIMENSIONS", "space"]

#: The named dimensions the report compares: tokens (patch size), width, spatial-gating blocks.
DIMENSIONS: tuple[str, ...] = PATCH_MLP_DIMENSIONS


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """The shared patch-MLP space with the gating feed-forward width ``ffn_dim``."""
    # even by construction: the spatial gating unit splits it in two halves
    return patch_mlp_space(trial, ctx.family("gmlp"), ffn_dim=(64, 128, 256, 512))
