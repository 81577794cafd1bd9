"""The small toolbox every space uses: choices filtered for validity, user overrides applied.

Overrides are checked where they are used (:func:`check_override`), so a malformed one is a
``ValueError("space.<name>=<value>: <what is allowed>")`` and never an Optuna or arithmetic
error deep inside a trial; ``search.experiment`` runs the same checks when an experiment loads.
``ctx.family("vit")`` gives the same helpers with names scoped to one family (``vit.depth``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from models._config import divisors

__all__ = ["MAX_CHOICES", "FamilyScope", "OverrideKind", "SpaceContext", "check_override"]

#: How a parameter is searched: ``choice`` (categorical), ``patch`` (a categorical of patch
#: sizes, filtered to those dividing the image) or ``range`` (log-uniform ``[low, high]``).
OverrideKind = Literal["choice", "patch", "range"]

#: The most choices one categorical override may list.
MAX_CHOICES = 1000
_MAX_PATCH = 4096


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_override(name: str, value: Any, kind: OverrideKind) -> list[Any]:
    """The override of parameter ``name`` as a list, or ``ValueError`` naming ``space.<name>``.

    ``choice``: a non-empty list of at most :data:`MAX_CHOICES` scalars (Optuna categoricals
    hold ``None``, booleans, integers, finite floats and strings). ``patch``: the same, of
    integers >= 1. ``range``: ``[low, high]``, two finite numbers with ``0 < low <= high``
    (log-uniform; ``low == high`` fixes the value).
    """
    where = f"space.{name}={value!r}"
    if not isinstance(value, (list, tuple)):
        what = " ([low, high]: a log-uniform range)" if kind == "range" else ""
        raise ValueError(f"{where}: expected a non-empty list of choices{what}")
    items = list(value)
    if kind == "range":
        if len(items) != 2 or not all(_is_number(v) for v in items):
            raise ValueError(f"{where}: expected [low, high], two numbers (log-uniform range)")
        low, high = (float(v) for v in items)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{where}: expected finite numbers, e.g. [1.0e-3, 3.0e-3]")
        if low <= 0:
            raise ValueError(f"{where}: low must be > 0 (the range is log-uniform)")
        if low > high:
            raise ValueError(f"{where}: low > high; allowed: [low, high] with 0 < low <= high")
        return items
    if not items:
        raise ValueError(f"{where}: expected a non-empty list of choices")
    if len(items) > MAX_CHOICES:
        raise ValueError(f"{where}: {len(items)} choices; allowed: at most {MAX_CHOICES}")
    for item in items:
        scalar = item is None or isinstance(item, (bool, int, float, str))
        if not scalar:
            raise ValueError(
                f"{where}: choice {item!r} is a {type(item).__name__}; allowed: numbers, "
                "strings, true/false or null"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where}: choice {item!r}: allowed: finite numbers")
        if isinstance(item, int) and abs(item) >= 2**63:
            raise ValueError(f"{where}: choice {item!r}: allowed: integers below 2**63")
        if isinstance(item, str) and len(item) > 1000:
            raise ValueError(f"{where}: choice {item[:20]!r}...: allowed: text up to 1000 long")
        if kind == "patch" and (
            isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= _MAX_PATCH
        ):
            raise ValueError(f"{where}: patch size {item!r}: allowed: integers 1..{_MAX_PATCH}")
    return items


@dataclass(frozen=True)
class SpaceContext:
    """What a space needs to know to propose only valid configurations.

    ``overrides`` maps a parameter name (``"perceiver.num_latents"``, ``"adamw.lr"``) to a list
    of choices (categorical parameters) or a ``[low, high]`` pair (numeric ranges).
    """

    image_size: int
    in_channels: int = 3
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def family(self, family: str) -> FamilyScope:
        """The helpers below with names scoped to ``family``: ``ctx.family("fnet").choice(trial,
        "hidden_dim", ...)`` suggests ``fnet.hidden_dim``."""
        return FamilyScope(self, family)

    def _override(self, name: str, kind: OverrideKind, default: Sequence[Any]) -> list[Any]:
        if name not in self.overrides:
            return list(default)
        return check_override(name, self.overrides[name], kind)

    def choice(self, trial: optuna.Trial, name: str, default: Sequence[Any]) -> Any:
        """Suggest a categorical; a single choice is fixed (recorded, not searched)."""
        choices = self._override(name, "choice", default)
        if not choices:
            raise ValueError(f"space.{name}: no choices left; give at least one")
        return trial.suggest_categorical(name, choices)

    def patch_size(self, trial: optuna.Trial, name: str, default: Sequence[int]) -> int:
        """Suggest a patch size among the choices that divide the image (valid by construction)."""
        wanted = self._override(name, "patch", default)
        valid = [p for p in wanted if self.image_size % p == 0]
        if not valid:
            raise ValueError(
                f"space.{name}={wanted}: none divides image_size={self.image_size}; allowed: "
                + ", ".join(map(str, divisors(self.image_size)))
            )
        return int(trial.suggest_categorical(name, valid))

    def log_float(self, trial: optuna.Trial, name: str, low: float, high: float) -> float:
        """Suggest a log-uniform float in ``[low, high]`` (an override ``[x, x]`` fixes it)."""
        low, high = (float(v) for v in self._override(name, "range", (low, high)))
        if low == high:
            return float(trial.suggest_categorical(name, [low]))
        return trial.suggest_float(name, low, high, log=True)


@dataclass(frozen=True)
class FamilyScope:
    """A :class:`SpaceContext` whose parameter names are prefixed ``<family>.``, so a family's
    space names each parameter once (``"num_latents"`` suggests ``perceiver.num_latents``)."""

    context: SpaceContext
    family: str

    @property
    def image_size(self) -> int:
        """The side of the (square) input images."""
        return self.context.image_size

    def name(self, name: str) -> str:
        """The full parameter name: ``<family>.<name>``."""
        return f"{self.family}.{name}"

    def choice(self, trial: optuna.Trial, name: str, default: Sequence[Any]) -> Any:
        """:meth:`SpaceContext.choice` of ``<family>.<name>``."""
        return self.context.choice(trial, self.name(name), default)

    def patch_size(self, trial: optuna.Trial, name: str, default: Sequence[int]) -> int:
        """:meth:`SpaceContext.patch_size` of ``<family>.<name>``."""
        return self.context.patch_size(trial, self.name(name), default)
