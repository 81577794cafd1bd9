"""The ``paretotune`` command line: ``run``, ``resume``, ``report``, ``submit``, ``jobs``.

Every subcommand is registered by the module that owns it through ``register(subparsers)``,
which adds a parser with ``set_defaults(func=handler)``; a handler takes the parsed
``argparse.Namespace`` and returns the exit code. User errors (``ValueError``, ``UserError``)
become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretotune",
        description="Multi-objective architecture search: Optuna proposes, Ray Tune schedules, "
        "DeepSpeed trains; results are Pareto fronts.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    from search import commands  # run, resume, report

    commands.register(subparsers)
    from cluster import cli as cluster_cli  # submit, jobs

    cluster_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("paretotune: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # UserError is a ValueError
        print(f"paretotune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
