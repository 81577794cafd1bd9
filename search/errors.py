"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """Bad input from the user (config, flags, paths). The message names the field and the fix."""
