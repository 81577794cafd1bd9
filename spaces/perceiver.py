"""Perceiver search space: latent size N, iterations, projection dim, patch size, and more.

Widths are multiples of 8 and head counts divide 8, so every proposal is valid by construction.
"""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["DIMENSIONS", "space"]

#: The named dimensions the report compares: latent array size N, cross+latent block
#: repeats, input projection width, patch size.
DIMENSIONS: tuple[str, ...] = ("num_latents", "num_iterations", "projection_dim", "patch_size")


def space(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """Patch size first (the Nyquist max_freq depends on it), then the latent array, depth,
    heads, weight sharing, the position encoding and, for Fourier features only, the bands."""
    f = ctx.family("perceiver")
    patch = f.patch_size(trial, "patch_size", (1, 2, 4))
    hp: dict[str, Any] = {
        "patch_size": patch,
        "projection_dim": f.choice(trial, "projection_dim", (16, 32, 64)),
        "num_latents": f.choice(trial, "num_latents", (16, 32, 64, 128)),
        "latent_dim": f.choice(trial, "latent_dim", (32, 64, 128)),
        "num_iterations": f.choice(trial, "num_iterations", (1, 2, 3, 4)),
        "self_per_cross": f.choice(trial, "self_per_cross", (1, 2, 4)),
        "latent_heads": f.choice(trial, "latent_heads", (1, 2, 4, 8)),
        # the paper's cross-attention is single-head; on small data more heads train faster
        "cross_heads": f.choice(trial, "cross_heads", (1, 2, 4)),
        "share_weights": f.choice(trial, "share_weights", (True, False)),
        "pos_encoding": f.choice(trial, "pos_encoding", ("fourier", "learned")),
        "dropout": f.choice(trial, "dropout", (0.0, 0.1)),
    }
    if hp["pos_encoding"] == "fourier":  # conditional: only the Fourier encoding has bands
        hp["num_freq_bands"] = f.choice(trial, "num_freq_bands", (4, 8))
        # Nyquist for the patch grid: the highest frequency the grid can represent.
        hp["max_freq"] = float(f.image_size // patch)
    return hp
