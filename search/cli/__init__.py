"""The ``paretotune`` command line: :mod:`~search.cli.main` parses and turns errors into one
line and an exit code; :mod:`~search.cli.commands` holds ``run``, ``resume``, ``reproduce`` and
``report`` (``cluster.cli`` adds ``submit`` and ``jobs``). The libraries' output is kept apart
from the command's own lines by :mod:`search.console`."""

from search.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
