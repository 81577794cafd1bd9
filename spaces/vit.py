"""ViT search space (Dosovitskiy et al. 2020): patch size, width, depth, heads, MLP ratio, pool."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["DIMENSIONS", "space"]

#: The named dimensions the report compares: tokens (patch size), width, transformer blocks.
DIMENSIONS: tuple[str, ...] = ("patch_size", "embed_dim", "depth")


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """Patch size, width, depth, heads, MLP ratio, pool, dropout."""
    f = ctx.family("vit")
    return {
        "patch_size": f.patch_size(trial, "patch_size", (2, 4, 8)),
        "embed_dim": f.choice(trial, "embed_dim", (32, 64, 128)),  # multiples of 8
        "depth": f.choice(trial, "depth", (2, 4, 6, 8)),
        "num_heads": f.choice(trial, "num_heads", (2, 4, 8)),  # divide every width
        "mlp_ratio": f.choice(trial, "mlp_ratio", (2.0, 4.0)),
        "pool": f.choice(trial, "pool", ("cls", "mean")),
        "dropout": f.choice(trial, "dropout", (0.0, 0.1)),
    }
