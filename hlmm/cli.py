"""``hlmm`` command line. Each subcommand lives in ``hlmm/commands/<name>.py`` with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hlmm import __version__
from hlmm.commands.common import EXIT_CODES_HELP

# Order here is the order shown in --help. A module that is not there yet is simply not offered.
COMMANDS = ("demo", "backtest", "paper", "run", "exchange", "record", "synth", "report", "version")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hlmm",
        description="Market maker for Hyperliquid perpetuals: live, paper and backtest on one engine.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"hlmm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"hlmm.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"hlmm.commands.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
