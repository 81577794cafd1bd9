"""FNet search space (Lee-Thorp et al. 2021): patch size, width, depth, feed-forward size."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext
from spaces._patch_mlp import PATCH_MLP_DIMENSIONS, patch_mlp_space

__all__ = ["DIMENSIONS", "space"]

#: The named dimensions the report compares: tokens (patch size), width, Fourier mixing blocks.
DIMENSIONS: tuple[str, ...] = PATCH_MLP_DIMENSIONS


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """The shared patch-MLP space with the feed-forward width ``mlp_dim``."""
    return patch_mlp_space(trial, ctx.family("fnet"), mlp_dim=(64, 128, 256, 512))
