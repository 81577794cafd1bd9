"""The one place where model hyperparameters are type-checked and validated.

Each family declares a small frozen dataclass (nanoGPT style) deriving from ``ModelConfig``;
its fields are the family's hyperparameters with their defaults, and a few class variables
declare the family's constraints. ``ModelConfig.resolve`` turns a user's dict into a
validated config or raises ``ValueError("<family>.<field>=<value>: <what is allowed>")``.
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

__all__ = ["ModelConfig", "check_positive_int", "divisors"]

_C = TypeVar("_C", bound="ModelConfig")


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in increasing order (what a patch size or head count may be)."""
    return [d for d in range(1, n + 1) if n % d == 0]


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _fail(family: str, name: str, value: Any, reason: str) -> ValueError:
    return ValueError(f"{family}.{name}={_fmt(value)}: {reason}")


def check_positive_int(family: str, name: str, value: Any) -> int:
    """Validate a size argument (image_size, in_channels, num_classes): an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail(family, name, value, "allowed: integers >= 1")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base class of the per-family hyperparameter dataclasses.

    Rules applied to every field, by its annotation: ``int`` fields are sizes or counts
    (>= 1); ``float`` fields named ``*dropout`` lie in [0, 1), other floats are > 0;
    ``str`` fields must be one of ``choices[field]``; ``tuple[int, ...]`` fields hold ints
    >= 1 (a list, or a comma-separated string such as ``"2048,1024"``, is accepted, since
    Optuna categoricals cannot hold tuples). Every family has ``patch_size``, which must
    divide ``image_size``.
    """

    family: ClassVar[str] = ""
    #: allowed values of the ``str`` fields
    choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: (divisor_field, field): ``field`` must be divisible by ``divisor_field``
    divides: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: int fields that must be even
    even: ClassVar[tuple[str, ...]] = ()
    #: (image_size, in_channels) this instance was resolved for; set on the instance by
    #: ``resolve`` (not a field: no hyperparameter, not compared, lost by ``replace``)
    _resolved_for: ClassVar[tuple[int, int] | None] = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The hyperparameter names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def resolve(cls: type[_C], *, image_size: int, in_channels: int = 3, **hparams: Any) -> _C:
        """Fill defaults, coerce and validate ``hparams``; return the config (of ``cls``)."""
        fam = cls.family
        image_size = check_positive_int(fam, "image_size", image_size)
        in_channels = check_positive_int(fam, "in_channels", in_channels)
        names = cls.field_names()
        for key in hparams:
            if key not in names:
                raise _fail(
                    fam,
                    key,
                    hparams[key],
                    f"unknown hyperparameter; allowed: {', '.join(sorted(names))}",
                )
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            raw = hparams.get(f.name, getattr(cls(), f.name))
            values[f.name] = cls._coerce(f.name, hints[f.name], raw)
        cfg = cls(**values)
        cfg._check_relations(image_size)
        cfg = cfg._finalize(image_size=image_size)
        object.__setattr__(cfg, "_resolved_for", (image_size, in_channels))  # frozen dataclass
        return cfg

    def resolved(self: _C, *, image_size: int, in_channels: int = 3) -> _C:
        """This config validated for ``image_size`` images: itself when ``resolve`` made it
        for these sizes (``build_model`` resolves once), otherwise resolved now."""
        if self._resolved_for == (image_size, in_channels):
            return self
        return type(self).resolve(image_size=image_size, in_channels=in_channels, **self.to_dict())

    @classmethod
    def _coerce(cls, name: str, hint: Any, value: Any) -> Any:
        fam = cls.family
        optional = type(None) in typing.get_args(hint)
        if optional:
            if value is None:
                return None
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        none_txt = " or None" if optional else ""
        if hint is bool:
            if not isinstance(value, bool):
                raise _fail(fam, name, value, f"wrong type; allowed: True, False{none_txt}")
            return value
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise _fail(fam, name, value, f"allowed: integers >= 1{none_txt}")
            return int(value)
        if hint is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if name.endswith("dropout"):
                if not ok or not 0.0 <= float(value) < 1.0:
                    raise _fail(fam, name, value, f"allowed: numbers in [0, 1){none_txt}")
            elif not ok or not float(value) > 0.0:
                raise _fail(fam, name, value, f"allowed: numbers > 0{none_txt}")
            return float(value)
        if hint is str:
            allowed = cls.choices.get(name, ())
            if value not in allowed:
                raise _fail(fam, name, value, f"allowed: {', '.join(map(repr, allowed))}")
            return value
        if typing.get_origin(hint) is tuple:
            return cls._coerce_int_tuple(name, value)
        raise TypeError(f"{fam}.{name}: unsupported annotation {hint!r}")  # pragma: no cover

    @classmethod
    def _coerce_int_tuple(cls, name: str, value: Any) -> tuple[int, ...]:
        reason = "allowed: a tuple of integers >= 1 (possibly empty), e.g. (2048, 1024)"
        items: Any = value
        if isinstance(value, str):
            try:
                items = [int(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise _fail(cls.family, name, value, reason) from None
        if not isinstance(items, (list, tuple)) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 1
            for v in items
        ):
            raise _fail(cls.family, name, value, reason)
        return tuple(int(v) for v in items)

    def _check_relations(self, image_size: int) -> None:
        fam = self.family
        patch = self.to_dict()["patch_size"]  # every family has one
        if image_size % patch:
            allowed = ", ".join(map(str, divisors(image_size)))
            raise _fail(
                fam,
                "patch_size",
                patch,
                f"does not divide image_size={image_size}; allowed: {allowed}",
            )
        for divisor_name, name in self.divides:
            divisor, value = getattr(self, divisor_name), getattr(self, name)
            if value % divisor:
                allowed = ", ".join(map(str, divisors(value)))
                raise _fail(
                    fam,
                    divisor_name,
                    divisor,
                    f"does not divide {name}={value}; allowed: {allowed}",
                )
        for name in self.even:
            value = getattr(self, name)
            if value % 2:
                raise _fail(fam, name, value, "must be even; allowed: even integers >= 2")

    def _finalize(self: _C, *, image_size: int) -> _C:
        """Hook for defaults that depend on the image size (e.g. Perceiver's max_freq)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """The hyperparameters as a plain dict, in declaration order."""
        return dataclasses.asdict(self)
