"""The small toolbox every space uses: choices filtered for validity, user overrides applied."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

__all__ = ["SpaceContext"]


@dataclass(frozen=True)
class SpaceContext:
    """What a space needs to know to propose only valid configurations.

    ``overrides`` maps a parameter name (``"perceiver.num_latents"``, ``"lr"``) to a list of
    choices (categorical parameters) or a ``[low, high]`` pair (numeric ranges).
    """

    image_size: int
    in_channels: int = 3
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def choice(self, trial: optuna.Trial, name: str, default: Sequence[Any]) -> Any:
        """Suggest a categorical; a single choice is fixed (recorded, not searched)."""
        choices = list(self.overrides.get(name, default))
        if not choices:
            raise ValueError(f"space.{name}: no choices left; give at least one")
        return trial.suggest_categorical(name, choices)

    def patch_size(self, trial: optuna.Trial, name: str, default: Sequence[int]) -> int:
        """Suggest a patch size among the choices that divide the image (valid by construction)."""
        wanted = list(self.overrides.get(name, default))
        valid = [p for p in wanted if self.image_size % p == 0]
        if not valid:
            raise ValueError(
                f"space.{name}={wanted}: none divides image_size={self.image_size}; allowed: "
                + ", ".join(
                    str(d) for d in range(1, self.image_size + 1) if self.image_size % d == 0
                )
            )
        return int(trial.suggest_categorical(name, valid))

    def log_float(self, trial: optuna.Trial, name: str, low: float, high: float) -> float:
        low, high = self.overrides.get(name, (low, high))
        if low == high:
            return float(trial.suggest_categorical(name, [float(low)]))
        return trial.suggest_float(name, float(low), float(high), log=True)
