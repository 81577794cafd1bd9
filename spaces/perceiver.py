"""Perceiver search space: latent size N, iterations, projection dim, patch size, and more.

Widths are multiples of 8 and head counts divide 8, so every proposal is valid by construction.
"""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["space"]


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    p = "perceiver."
    patch = ctx.patch_size(trial, p + "patch_size", (1, 2, 4))
    hp: dict[str, Any] = {
        "patch_size": patch,
        "projection_dim": ctx.choice(trial, p + "projection_dim", (16, 32, 64)),
        "num_latents": ctx.choice(trial, p + "num_latents", (16, 32, 64, 128)),
        "latent_dim": ctx.choice(trial, p + "latent_dim", (32, 64, 128)),
        "num_iterations": ctx.choice(trial, p + "num_iterations", (1, 2, 3, 4)),
        "self_per_cross": ctx.choice(trial, p + "self_per_cross", (1, 2, 4)),
        "latent_heads": ctx.choice(trial, p + "latent_heads", (1, 2, 4, 8)),
        # the paper's cross-attention is single-head; on small data more heads train faster
        "cross_heads": ctx.choice(trial, p + "cross_heads", (1, 2, 4)),
        "share_weights": ctx.choice(trial, p + "share_weights", (True, False)),
        "pos_encoding": ctx.choice(trial, p + "pos_encoding", ("fourier", "learned")),
        "dropout": ctx.choice(trial, p + "dropout", (0.0, 0.1)),
    }
    if hp["pos_encoding"] == "fourier":  # conditional: only the Fourier encoding has bands
        hp["num_freq_bands"] = ctx.choice(trial, p + "num_freq_bands", (4, 8))
        # Nyquist for the patch grid: the highest frequency the grid can represent.
        hp["max_freq"] = float(ctx.image_size // patch)
    return hp
