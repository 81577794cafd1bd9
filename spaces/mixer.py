"""MLP-Mixer search space (Tolstikhin et al. 2021): patch size, width, depth, both MLP sizes."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["space"]


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    p = "mixer."
    return {
        "patch_size": ctx.patch_size(trial, p + "patch_size", (2, 4, 8)),
        "hidden_dim": ctx.choice(trial, p + "hidden_dim", (32, 64, 128, 256)),
        "num_blocks": ctx.choice(trial, p + "num_blocks", (2, 4, 8)),
        "tokens_mlp_dim": ctx.choice(trial, p + "tokens_mlp_dim", (16, 32, 64, 128)),
        "channels_mlp_dim": ctx.choice(trial, p + "channels_mlp_dim", (64, 128, 256, 512)),
        "dropout": ctx.choice(trial, p + "dropout", (0.0, 0.1)),
    }
