"""Training hyperparameters shared by every family (one distribution, so TPE learns across them)."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["TRAIN_KEYS", "training"]

#: Keys of a proposal that configure training; every other key is a model hyperparameter.
TRAIN_KEYS = frozenset(
    {"lr", "weight_decay", "optimizer", "batch_size", "warmup_epochs", "label_smoothing"}
)


def training(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """Learning rate, weight decay, optimizer, batch size (AdamW or LAMB)."""
    return {
        "lr": ctx.log_float(trial, "lr", 3e-4, 3e-3),
        "weight_decay": ctx.log_float(trial, "weight_decay", 1e-5, 1e-1),
        "optimizer": ctx.choice(trial, "optimizer", ("adamw", "lamb")),
        "batch_size": ctx.choice(trial, "batch_size", (64, 128)),
        "warmup_epochs": ctx.choice(trial, "warmup_epochs", (1,)),
        "label_smoothing": ctx.choice(trial, "label_smoothing", (0.0, 0.1)),
    }
