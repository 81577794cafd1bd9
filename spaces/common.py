"""Training hyperparameters shared by every family: one distribution, so a sampler learns
across families until a family has a history of its own (``search.sweep.samplers``)."""

from __future__ import annotations

from typing import Any

import optuna

from spaces._context import SpaceContext

__all__ = ["LR_RANGES", "OPTIMIZERS", "TRAIN_KEYS", "training"]

#: Keys of a proposal that configure training; every other key is a model hyperparameter.
TRAIN_KEYS = frozenset(
    {"lr", "weight_decay", "optimizer", "batch_size", "warmup_epochs", "label_smoothing"}
)


#: Learning-rate range per optimizer (log-uniform), searched under ``<optimizer>.lr``. LAMB
#: scales each step by the trust ratio ||w|| / ||update|| (~0.01-0.1 at init), so it needs a
#: learning rate about ten times AdamW's (measured on digits: docs/benchmarks.md).
LR_RANGES: dict[str, tuple[float, float]] = {"adamw": (5e-4, 5e-3), "lamb": (3e-3, 3e-2)}
#: The optimizers a trial can train with, each named once (the ranges above): the space
#: proposes them, the experiment's checks allow them, ``search.trial.optim`` builds them.
OPTIMIZERS: tuple[str, ...] = tuple(LR_RANGES)


def training(trial: optuna.Trial, ctx: SpaceContext) -> dict[str, Any]:
    """Optimizer (AdamW or LAMB) first, then its own learning-rate range; weight decay, batch
    size, warmup and label smoothing are shared by every family."""
    optimizer = ctx.choice(trial, "optimizer", OPTIMIZERS)
    return {
        "optimizer": optimizer,
        "lr": ctx.log_float(trial, f"{optimizer}.lr", *LR_RANGES[optimizer]),
        "weight_decay": ctx.log_float(trial, "weight_decay", 1e-4, 1e-1),
        "batch_size": ctx.choice(trial, "batch_size", (64, 128)),
        "warmup_epochs": ctx.choice(trial, "warmup_epochs", (1,)),
        "label_smoothing": ctx.choice(trial, "label_smoothing", (0.0, 0.1)),
    }
