"""Helpers shared by subcommands: config loading with clear errors."""

from __future__ import annotations

import argparse
import sys

from hlmm.config import Config, ConfigError, load_config

# Exit codes of backtest, paper and run (documented in README and `hlmm --help`): a supervisor must notice a kill.
EXIT_OK = 0
EXIT_ERROR = 1  # an error (incl. orders still resting after shutdown, unbalanced PnL accounting)
EXIT_USAGE = 2  # bad command line or config
EXIT_KILLED = 3  # the session ended because the risk kill switch fired (orders cancelled)
EXIT_CODES_HELP = ("exit codes: 0 ok, 1 error (or orders left resting), 2 config/usage error, "
                   "3 killed by risk (kill switch fired; orders cancelled), 130 interrupted")


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


def add_metrics_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus /metrics on 127.0.0.1:PORT (default: run.metrics_port)")


def metrics_port(args: argparse.Namespace, cfg: Config) -> int | None:
    """``--metrics-port`` if given, else ``run.metrics_port``; exits 2 on an invalid port."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        return cfg.run.metrics_port
    if not 0 <= port <= 65535:
        print(f"error: --metrics-port must be in 0..65535, got {port}", file=sys.stderr)
        raise SystemExit(2)
    return int(port)
