"""``hlmm paper``: paper trading in real time (simulated fills) on a paced synthetic market or recording."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from hlmm.commands.backtest import add_source_args, check_inputs, finish, safe_name
from hlmm.commands.common import add_metrics_arg, metrics_port
from hlmm.config import Config
from hlmm.engine.runner import MarketSource, RunnerError
from hlmm.risk.store import KillStateStore


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="paper trading in real time against the simulated exchange")
    add_source_args(p, default_duration=300.0)
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--no-ui", action="store_true", help="no live terminal view")
    add_metrics_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hlmm.logsetup import configure_logging, get_logger
    if not args.speed > 0:
        print(f"error: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    args.start_ts = time.time()
    cfg, src = check_inputs(args)
    log_dir = Path(args.log_dir) if args.log_dir else cfg.run.log_dir
    configure_logging(log_dir, file_name="paper.jsonl", console="quiet" if not args.no_ui else "pretty")
    log = get_logger(mode="paper", coin=src.coin)
    # Paper behaves like live: a latched kill survives restarts until an operator resets it.
    store = KillStateStore(cfg.run.state_dir / "paper" / f"kill_{safe_name(src.coin)}.json")
    return run_session(args, cfg, src, store=store, load_kill=True, log=log, note=f"paper: {src.description}")


def run_session(
    args: argparse.Namespace, cfg: Config, src: MarketSource, *, store: KillStateStore | None, load_kill: bool,
    log: Any, note: str,
) -> int:
    """Run a paper session with or without the live view and print the summary (shared with ``demo``)."""
    from hlmm.engine.runner_paper import run_paper

    speed = args.speed
    port = metrics_port(args, cfg)
    try:
        if args.no_ui:
            res = asyncio.run(run_paper(src, cfg, duration_s=args.duration, speed=speed, seed=args.seed,
                                        kill_store=store, load_kill=load_kill, log=log, note=note,
                                        install_signals=True, metrics_port=port))
        else:
            from rich.console import Console
            from rich.live import Live

            from hlmm.report.terminal import View, render

            console = Console()
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                def paint(v: View) -> None:
                    live.update(render(v))

                res = asyncio.run(run_paper(src, cfg, duration_s=args.duration, speed=speed, seed=args.seed,
                                            kill_store=store, load_kill=load_kill, log=log, ui=paint, note=note,
                                            install_signals=True, metrics_port=port))
                from hlmm.report.terminal import view_from_engine

                live.update(render(view_from_engine(res.engine, res.stats, res.summary["duration_s"]
                                                    + res.stats.start_ts, duration_s=args.duration, note=note)))
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if res.stopped_by == "signal":
        print("stopped by signal: all orders cancelled", file=sys.stderr)
    return finish(res.summary, args.json_path)
