"""ViT search space (Dosovitskiy et al. 2020): patch size, width, depth, heads, MLP ratio, pool."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["space"]


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    p = "vit."
    return {
        "patch_size": ctx.patch_size(trial, p + "patch_size", (2, 4, 8)),
        "embed_dim": ctx.choice(trial, p + "embed_dim", (32, 64, 128)),  # multiples of 8
        "depth": ctx.choice(trial, p + "depth", (2, 4, 6, 8)),
        "num_heads": ctx.choice(trial, p + "num_heads", (2, 4, 8)),  # divide every width
        "mlp_ratio": ctx.choice(trial, p + "mlp_ratio", (2.0, 4.0)),
        "pool": ctx.choice(trial, p + "pool", ("cls", "mean")),
        "dropout": ctx.choice(trial, p + "dropout", (0.0, 0.1)),
    }
