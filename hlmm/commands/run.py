"""``hlmm run``: trade one coin on live Hyperliquid market data, live (signed orders) or paper (simulated fills).

``--network local`` talks to ``run.local_url`` (the ``hlmm exchange`` server). Live mode refuses to start without a
key (HLMM_PRIVATE_KEY or ``account.keystore_path``), prints the account, signer and limits, and asks for
confirmation on mainnet unless ``--yes``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from hlmm.commands.common import (
    EXIT_ERROR,
    EXIT_KILLED,
    EXIT_OK,
    add_config_args,
    add_metrics_arg,
    config_from_args,
    metrics_port,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run on live market data: --mode live (real orders) or paper (simulated fills)")
    p.add_argument("--coin", required=True, help="coin to trade, e.g. BTC or hyna:HYPE")
    p.add_argument("--mode", choices=("live", "paper"), default="paper", help="live orders or simulated fills")
    p.add_argument("--network", choices=("mainnet", "testnet", "local"), default=None,
                   help="exchange network (default: run.network from the config)")
    p.add_argument("--duration", type=float, default=300.0, metavar="S", help="wall seconds to run (default 300)")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the results summary as JSON")
    p.add_argument("--state-dir", help="kill-state directory (default: run.state_dir from the config)")
    p.add_argument("--log-dir", help="JSON-lines log directory (default: run.log_dir from the config)")
    p.add_argument("--yes", action="store_true", help="skip the mainnet confirmation prompt")
    add_metrics_arg(p)
    add_config_args(p)
    p.set_defaults(func=run)


def _prompt(summary: str) -> bool:
    if not sys.stdin.isatty():
        print("error: mainnet needs confirmation: run in a terminal or pass --yes", file=sys.stderr)
        return False
    ans = input("Start LIVE trading with real funds? Type 'yes' to continue: ")
    return ans.strip().lower() == "yes"


def run(args: argparse.Namespace) -> int:
    from hlmm.commands.backtest import safe_name, write_json
    from hlmm.engine.live_runner import run_live
    from hlmm.engine.runner import RunnerError
    from hlmm.engine.summary import format_summary
    from hlmm.logsetup import configure_logging, get_logger
    from hlmm.risk.store import KillStateStore

    cfg = config_from_args(args)
    if not args.duration > 0:
        print(f"error: --duration must be > 0, got {args.duration}", file=sys.stderr)
        return 2
    if args.coin not in cfg.coins:
        print(f"error: config has no [coins.\"{args.coin}\"] section (configured: {sorted(cfg.coins)})",
              file=sys.stderr)
        return 2
    network = args.network or cfg.run.network
    state_dir = Path(args.state_dir) if args.state_dir else cfg.run.state_dir
    log_dir = Path(args.log_dir) if args.log_dir else cfg.run.log_dir
    configure_logging(log_dir, file_name=f"run_{args.mode}.jsonl", console="quiet")
    log = get_logger(mode=args.mode, coin=args.coin, network=network)
    # A latched kill survives restarts until an operator resets it; live and paper keep separate state.
    store = KillStateStore(state_dir / args.mode / network / f"kill_{safe_name(args.coin)}.json")
    confirm = None
    if args.mode == "live" and network == "mainnet" and not args.yes:
        confirm = _prompt
    try:
        res = asyncio.run(run_live(cfg, args.coin, mode=args.mode, network=network, duration_s=args.duration,
                                   kill_store=store, log=log, confirm=confirm,
                                   out=lambda s: print(s, file=sys.stderr), install_signals=True,
                                   metrics_port=metrics_port(args, cfg), guardian=args.mode == "live",
                                   guardian_log=log_dir / "guardian.jsonl"))
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if res.stopped_by == "signal":
        print("stopped by signal: orders cancelled", file=sys.stderr)
    if res.resting_after_shutdown:
        print(f"WARNING: {res.resting_after_shutdown} order(s) still resting after shutdown", file=sys.stderr)
    if res.summary is None:
        print("no market data was seen: no summary", file=sys.stderr)
        return 1
    print(format_summary(res.summary))
    if args.json_path:
        write_json(args.json_path, res.summary)
    if res.resting_after_shutdown:
        return EXIT_ERROR
    if res.summary.get("kill"):
        print(f"killed by risk: {res.summary['kill']} (exit {EXIT_KILLED})", file=sys.stderr)
        return EXIT_KILLED
    return EXIT_OK
