"""``hlmm record``: record Hyperliquid market data (and Binance reference quotes) to Parquet partitions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from hlmm.market.instrument import InstrumentError, parse_coin


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record market data (l2Book, trades, bbo, activeAssetCtx, Binance) to Parquet")
    p.add_argument("--coins", required=True, help="comma-separated coins, e.g. BTC,hyna:HYPE")
    p.add_argument("--out", required=True, help="output directory (source=*/coin=*/date=*/*.parquet)")
    p.add_argument("--binance", default="auto", metavar="auto|off|SYMBOL|COIN=SYMBOL,...",
                   help="Binance bookTicker reference: auto = per-coin mapping (never a default symbol)")
    p.add_argument("--raw", action="store_true", help="also keep the raw WS capture (OUT/raw/*.raw.gz)")
    p.add_argument("--network", choices=("mainnet", "testnet", "local"), default="mainnet")
    p.add_argument("--local-url", default="http://127.0.0.1:8765", help="base URL of the local exchange server")
    p.add_argument("--binance-url", default=None,
                   help="Binance WS base (default: Binance futures; with --network local: the local server's)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: run)")
    p.add_argument("--flush-s", type=float, default=2.0, help="flush buffered rows to disk every S seconds")
    p.add_argument("--rotate-s", type=float, default=900.0, help="start a new file every S seconds")
    p.add_argument("--config", help="TOML config (for per-coin reference.binance_symbol)")
    p.set_defaults(func=run)


def _coins(spec: str) -> list[str]:
    coins = [c.strip() for c in spec.split(",") if c.strip()]
    if not coins:
        raise ValueError("--coins is empty")
    for c in coins:
        parse_coin(c)
    return coins


def run(args: argparse.Namespace) -> int:
    from hlmm.data.parquet import recover_spools
    from hlmm.data.recorder import Recorder, RecorderError, hl_ws_url, record, resolve_ref_symbols
    from hlmm.logsetup import configure_logging, get_logger
    from hlmm.venue.binance import BINANCE_FUTURES_WS

    cfg = None
    if args.config:
        from hlmm.commands.common import config_from_args

        cfg = config_from_args(args)
    try:
        coins = _coins(args.coins)
        refs, why = resolve_ref_symbols(coins, args.binance, cfg)
        url = hl_ws_url(args.network, args.local_url)
        if args.duration is not None and not args.duration > 0:
            raise RecorderError(f"--duration must be > 0, got {args.duration}")
    except (ValueError, InstrumentError) as e:
        print(f"hlmm record: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    recovered = recover_spools(out) if out.exists() else []
    log_path = configure_logging(out / "logs", file_name="record.jsonl", console="quiet")
    log = get_logger(mode="record")
    binance_url = args.binance_url
    if binance_url is None and refs:
        binance_url = (args.local_url.replace("http", "ws", 1).rstrip("/") + "/binance"
                       if args.network == "local" else BINANCE_FUTURES_WS)
    for line in why:
        print(f"reference: {line}", file=sys.stderr)
        log.info("reference_feed", detail=line)
    if recovered:
        print(f"recovered {len(recovered)} file(s) left by an interrupted recording", file=sys.stderr)
    try:
        rec = Recorder(out, coins, ref_symbols=refs, raw=args.raw, flush_s=args.flush_s, rotate_s=args.rotate_s)
    except RecorderError as e:
        print(f"hlmm record: {e}", file=sys.stderr)
        return 2
    print(f"recording {', '.join(coins)} from {url} to {out} (log {log_path}); Ctrl-C to stop", file=sys.stderr)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await record(rec, url, binance_url=binance_url if refs else None, duration_s=args.duration, stop=stop,
                     log=log)

    asyncio.run(main())
    rec.write_info({"network": args.network, "ws_url": url, "binance_url": binance_url})
    st = rec.stats
    print(f"recorded {sum(st.rows.values())} rows {dict(sorted(st.rows.items()))} in {len(st.files)} file(s); "
          f"gaps {st.gaps}, dup trades {st.dup_trades}, parse errors {st.parse_errors}", file=sys.stderr)
    return 0
