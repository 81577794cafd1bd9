"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

__all__ = ["UserError", "reason"]


class UserError(ValueError):
    """Bad input from the user (config, flags, paths). The message names the field and the fix."""


def reason(exc: BaseException) -> str:
    """One line of an exception: its strerror, else its first line (SQLAlchemy appends
    background links on further lines)."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    text = getattr(exc, "strerror", None) or str(orig if orig is not None else exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
