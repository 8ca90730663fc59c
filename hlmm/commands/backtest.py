"""``hlmm backtest``: run the engine on a synthetic or recorded market against the simulated exchange."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from hlmm.commands.common import EXIT_ERROR, EXIT_KILLED, EXIT_OK, add_config_args, config_from_args
from hlmm.config import Config
from hlmm.engine.runner import PRESET_COINS, MarketSource, RunnerError, run_backtest, source_from_args
from hlmm.engine.summary import format_summary


def add_source_args(p: argparse.ArgumentParser, default_duration: float = 3600.0) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", choices=sorted(PRESET_COINS), help="synthetic market preset (default: btc)")
    g.add_argument("--data", metavar="PATH", help="recorded market data (raw WS capture, CSV pair dir, synth output)")
    p.add_argument("--coin", help="coin to trade, e.g. BTC or hyna:HYPE (default: the preset's coin)")
    p.add_argument("--duration", type=float, default=default_duration, metavar="S", help="simulated seconds")
    p.add_argument("--seed", type=int, default=0, help="seed for the synthetic market and the simulator")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the results summary as JSON")
    p.add_argument("--log-dir", help="JSON-lines log directory (default: run.log_dir from the config)")
    add_config_args(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="backtest on a synthetic preset or a recording (simulated fills)")
    add_source_args(p)
    p.add_argument("--kill-state", metavar="PATH",
                   help="load and persist the kill state here (default: persist only, under state_dir/backtest)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report", metavar="DIR",
                   help="write a result directory (summary.json, series.json) and an HTML report into DIR")
    p.set_defaults(func=run)


def safe_name(coin: str) -> str:
    return coin.replace(":", "_")


def check_inputs(args: argparse.Namespace) -> tuple[Config, MarketSource]:
    """Validate config and source before anything runs; exit 2 with a clear message on bad input."""
    cfg = config_from_args(args)
    if args.duration is not None and not args.duration > 0:
        print(f"error: --duration must be > 0, got {args.duration}", file=sys.stderr)
        raise SystemExit(2)
    try:
        coin = args.coin or (None if args.data else PRESET_COINS[args.preset or "btc"])
        if coin is not None and coin not in cfg.coins:
            raise RunnerError(f"config has no [coins.\"{coin}\"] section (configured: {sorted(cfg.coins)})")
        src = source_from_args(args.preset, args.data, args.coin, args.duration, args.seed,
                               **_source_kwargs(args))
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return cfg, src


def _source_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "start_ts", None) is not None:
        kw["start_ts"] = args.start_ts  # paper: the synthetic market starts now
    if getattr(args, "synth_overrides", None):
        kw["overrides"] = args.synth_overrides
    if getattr(args, "warm_s", None) is not None:
        kw["warm_s"] = args.warm_s
    return kw


def write_json(path: str | Path, summary: dict[str, Any]) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")


def finish(summary: dict[str, Any], json_path: str | None) -> int:
    print(format_summary(summary))
    if json_path:
        write_json(json_path, summary)
        print(f"summary written to {json_path}")
    if not summary["pnl_check"]["balanced"]:
        print("error: PnL accounting does not balance (see pnl_check)", file=sys.stderr)
        return EXIT_ERROR
    if summary.get("kill"):
        print(f"killed by risk: {summary['kill']} (exit {EXIT_KILLED})", file=sys.stderr)
        return EXIT_KILLED
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from hlmm.logsetup import configure_logging, get_logger
    from hlmm.risk.store import KillStateStore

    cfg, src = check_inputs(args)
    log_dir = Path(args.log_dir) if args.log_dir else cfg.run.log_dir
    path = configure_logging(log_dir, file_name="backtest.jsonl", console="quiet")
    log = get_logger(mode="backtest", coin=src.coin)
    if args.kill_state:
        store, load = KillStateStore(args.kill_state), True
    else:
        store, load = KillStateStore(cfg.run.state_dir / "backtest" / f"kill_{safe_name(src.coin)}.json"), False
    print(f"backtest {src.coin}: {src.description}, {args.duration:g} s simulated; log {path}", file=sys.stderr)
    sampler = None
    if args.report:
        from hlmm.report.html import ReportSampler

        sampler = ReportSampler()
    try:
        res = run_backtest(
            src, cfg, seed=args.seed, duration_s=args.duration, kill_store=store, load_kill=load, log=log,
            progress=not args.no_progress and sys.stderr.isatty(),
            on_timer=sampler.on_timer if sampler is not None else None,
        )
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rc = finish(res.summary, args.json_path)
    if args.report:
        from hlmm.report.html import write_report, write_result_dir

        try:
            out = write_result_dir(res.engine, res.summary, args.report, sampler=sampler)
            page = write_report(out)
        except (OSError, ValueError) as e:
            print(f"error: cannot write the report to {args.report}: {e}", file=sys.stderr)
            return 1
        print(f"report written to {page}")
    return rc
