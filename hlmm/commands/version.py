"""``hlmm version``."""

from __future__ import annotations

import argparse
import platform

from hlmm import __version__


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="print version information")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"hlmm {__version__} (Python {platform.python_version()})")
    return 0
