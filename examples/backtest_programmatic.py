"""Run a backtest from Python: a synthetic busy BTC-like hour through the full engine and simulated exchange.

    python examples/backtest_programmatic.py [seed]

The same thing from the command line: ``hlmm backtest --preset btc --duration 3600 --seed 7 --json out.json``.
"""

from __future__ import annotations

import sys

from hlmm.config import load_config
from hlmm.engine.runner import run_backtest, synthetic_source
from hlmm.engine.summary import format_summary


def main(seed: int = 7) -> int:
    # The embedded demo config has a [coins.BTC] section; override a parameter like the CLI's --set does.
    cfg = load_config(None, ["coins.BTC.strategy.gamma=0.2"])
    src = synthetic_source("btc", duration_s=3600.0, seed=seed)
    checks = {"n": 0}

    def on_timer(ts: float, engine: object, exchange: object) -> None:
        checks["n"] += 1  # invariants could be checked here every simulated second

    res = run_backtest(src, cfg, seed=seed, duration_s=3600.0, on_timer=on_timer)
    print(format_summary(res.summary))
    print(f"timer ticks: {checks['n']}, fills: {len(res.stats.fills)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 7))
