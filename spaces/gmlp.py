"""gMLP search space (Liu et al. 2021): patch size, width, depth, gating feed-forward size."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["space"]


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    p = "gmlp."
    return {
        "patch_size": ctx.patch_size(trial, p + "patch_size", (2, 4, 8)),
        "hidden_dim": ctx.choice(trial, p + "hidden_dim", (32, 64, 128, 256)),
        "num_blocks": ctx.choice(trial, p + "num_blocks", (2, 4, 8)),
        # even by construction: the spatial gating unit splits it in two halves
        "ffn_dim": ctx.choice(trial, p + "ffn_dim", (64, 128, 256, 512)),
        "dropout": ctx.choice(trial, p + "dropout", (0.0, 0.1)),
    }
