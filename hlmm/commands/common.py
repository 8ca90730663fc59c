"""Helpers shared by subcommands: config loading with clear errors."""

from __future__ import annotations

import argparse
import sys

from hlmm.config import Config, ConfigError, load_config


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: the embedded demo config)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set coins.BTC.strategy.gamma=0.2 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Load and validate; on error print the message and exit 2 before anything connects."""
    try:
        return load_config(getattr(args, "config", None), getattr(args, "overrides", []))
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None
