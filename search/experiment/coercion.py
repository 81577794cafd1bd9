"""Type-driven building of the schema's dataclasses from plain data: every field coerced to its
annotated type (bool, int, float, str, Literal, tuple, dict, a nested section) or refused with
one line naming the field, the value and what is allowed; an unknown key names the closest."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal

from search.errors import UserError

__all__ = ["build", "build_field"]


def build(cls: type, data: Any, prefix: str) -> Any:
    """An instance of dataclass ``cls`` from mapping ``data``; ``prefix`` names its section."""
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'experiment'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{prefix}{key}: unknown key{hint}; allowed: {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{prefix}{name}")
    return cls(**kwargs)


def build_field(cls: type, name: str, value: Any) -> Any:
    """Field ``name`` of dataclass ``cls`` from ``value``, checked as :func:`build` would."""
    return _coerce(typing.get_type_hints(cls)[name], value, name)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build(typing.cast(type, tp), value if value is not None else {}, f"{path}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        # by type too: `true` is not zero_stage 1, nor 1.0
        if not any(type(value) is type(a) and value == a for a in args):
            allowed = ", ".join(str(a) for a in args)
            raise UserError(f"{path}={value!r}: not allowed; allowed: {allowed}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{path}={value!r}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}={value!r}: expected a whole number")
        if abs(value) >= 2**63:
            raise UserError(f"{path}={value!r}: too large; expected a whole number below 2**63")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}={value!r}: expected a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise UserError(f"{path}={value!r}: expected a finite number")
        return number
    if tp is str:
        if not isinstance(value, str) or not value:
            raise UserError(f"{path}={value!r}: expected a non-empty string")
        if "\0" in value or len(value) > 4096:
            raise UserError(f"{path}={value[:80]!r}: expected text without NUL bytes (<= 4096)")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path}={value!r}: expected a list")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UserError(f"{path}={value!r}: expected a mapping")
        for key in value:
            if not isinstance(key, str) or not key:
                raise UserError(f"{path}: key {key!r} is not a name; keys are text")
        return dict(value)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # pragma: no cover
