"""The ``paretotune`` command line: ``run``, ``resume``, ``report``, ``submit``, ``jobs``.

Every subcommand is registered by the module that owns it through ``register(subparsers)``,
which adds a parser with ``set_defaults(func=handler)``; a handler takes the parsed
``argparse.Namespace`` and returns the exit code. The registering modules are found through
the ``paretotune.commands`` entry points (``pyproject.toml``): ``search.cli.commands`` (run, resume,
report, reproduce) and ``cluster.cli`` (submit, jobs). ``cluster`` builds on ``search``, so
``search`` never imports it; another package can add commands the same way.

Errors are one line on stderr, never a traceback (``--debug``, anywhere on the command line, or
``PARETOTUNE_DEBUG=1`` adds it): bad input (``ValueError``, ``UserError``, bad flags) is
``paretotune: error: <field or flag>...`` and exit code 2; anything else that goes wrong is
``paretotune: error: <Type>: <message> (see <where>...)`` and exit code 1. A handler names
where to look by setting ``args.where`` (the output directory). A sweep stopped by SIGINT or
SIGTERM (``search.sweep.interrupts``) prints one line naming ``paretotune resume DIR`` and exits
with 130 or 143.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, NoReturn
from urllib.parse import urlsplit

__all__ = ["build_parser", "main"]

_MAX_LINE = 1000  # characters of an unexpected error's message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (the default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("paretotune").strip()
        where = f"{command}: " if command else ""
        print(f"paretotune: error: {where}{message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paretotune",
        description="Multi-objective architecture search: Optuna proposes, Ray Tune schedules, "
        "DeepSpeed trains; results are Pareto fronts.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (any position)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for register in command_registrars():
        register(subparsers)
    return parser


#: The entry-point group whose members add subcommands: ``register(subparsers) -> None``.
COMMANDS_GROUP = "paretotune.commands"


def command_registrars() -> list[Callable[[Any], None]]:
    """The installed subcommand registrars, ``search.cli.commands`` first, then by name."""
    points = sorted(entry_points(group=COMMANDS_GROUP), key=lambda p: (p.name != "search", p.name))
    if not any(p.name == "search" for p in points):
        raise RuntimeError(
            f"no `{COMMANDS_GROUP}` entry points: paretotune is not installed (run `make setup`)"
        )
    return [p.load() for p in points]


def _one_line(exc: BaseException, limit: int | None = None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _check_flags(args: argparse.Namespace) -> None:
    """Flags every command shares, checked before the command runs: an empty ``--address`` is
    never "the default", and a Jobs address must at least parse (the cluster code checks the
    rest). run/resume check their Ray address in ``search.sweep.ray_cluster``."""
    from search.errors import UserError

    address = getattr(args, "address", None)
    if address is None:
        return
    if not address.strip():
        raise UserError(
            f"--address={address!r}: empty; give the cluster's address (run/resume: HOST:PORT, "
            "ray://HOST:10001 or auto; submit/jobs: http://HEAD:8265) or leave --address out"
        )
    if args.command in ("submit", "jobs"):
        text = address.strip()
        url = text if "://" in text else f"http://{text}"
        try:
            parts = urlsplit(url)
            _ = parts.port  # parses it
        except ValueError as exc:
            raise UserError(
                f"--address={text!r}: not a valid address ({exc}); expected http(s)://HEAD:8265"
            ) from None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    head = arguments[: arguments.index("--")] if "--" in arguments else arguments
    debug = "--debug" in head or os.environ.get("PARETOTUNE_DEBUG") == "1"
    if "--debug" in head:
        arguments.remove("--debug")
    args = build_parser().parse_args(arguments)
    args.debug = debug  # also: the libraries' output stays on the terminal (search.console)
    try:
        _check_flags(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # a sweep's stop signal says where to resume (search.sweep)
        print(f"paretotune: {str(exc) or 'interrupted'}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))
    except ValueError as exc:  # UserError is a ValueError: bad input
        if debug:
            traceback.print_exc()
        print(f"paretotune: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a failure at run time: one line, where to look
        if debug:
            traceback.print_exc()
        where = getattr(args, "where", None)
        if where is None:
            look = ""
        elif "://" in str(where) or os.path.exists(where):  # a URI: look there
            look = f"see {where}; "
        else:
            look = f"nothing was kept in {where}; "
        print(
            f"paretotune: error: {type(exc).__name__}: {_one_line(exc, _MAX_LINE)} "
            f"({look}--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
