"""The one search space of the patch-MLP families (Mixer, FNet, gMLP), which share
``mixer.PatchClassifier`` and differ only in their blocks' MLP widths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from spaces._context import FamilyScope

__all__ = ["PATCH_MLP_DIMENSIONS", "patch_mlp_space"]

#: The named dimensions of every patch-MLP family: tokens (patch size), width, blocks.
PATCH_MLP_DIMENSIONS: tuple[str, ...] = ("patch_size", "hidden_dim", "num_blocks")


def patch_mlp_space(
    trial: optuna.Trial, f: FamilyScope, **mlp_widths: Sequence[int]
) -> dict[str, Any]:
    """Patch size, width, depth, then the family's MLP widths (``mlp_widths``: name -> choices,
    suggested in the order given), then dropout; names ``<family>.<name>``."""
    hp: dict[str, Any] = {
        "patch_size": f.patch_size(trial, "patch_size", (2, 4, 8)),
        "hidden_dim": f.choice(trial, "hidden_dim", (32, 64, 128, 256)),
        "num_blocks": f.choice(trial, "num_blocks", (2, 4, 8)),
    }
    for name, choices in mlp_widths.items():
        hp[name] = f.choice(trial, name, choices)
    hp["dropout"] = f.choice(trial, "dropout", (0.0, 0.1))
    return hp
