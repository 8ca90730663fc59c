"""``hlmm exchange``: run the local exchange server (Hyperliquid protocol on 127.0.0.1) with optional faults."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from hlmm.sim.server.app import ServerError
from hlmm.sim.server.build import ServerOptions, build_server
from hlmm.sim.server.faults import FaultError, load_scenario, parse_flag
from hlmm.sim.server.limits import OPEN_ORDER_BASE, WsLimits
from hlmm.sim.server.market import MarketSourceError
from hlmm.sim.synthetic import preset_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exchange", help="run a local exchange that speaks Hyperliquid's protocol (for live-mode tests)")
    p.add_argument("--port", type=int, default=8765, help="TCP port on --host (default 8765; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--preset", default="hype_quiet", choices=preset_names(), help="synthetic market preset")
    p.add_argument("--data", default=None, help="replay this recorded file/directory instead of the preset")
    p.add_argument("--coin", default=None, help="coin of --data (default BTC) or coin override for the preset")
    p.add_argument("--speed", type=float, default=1.0, help="market time acceleration (default 1 = real time)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the market and the exchange")
    p.add_argument("--faults", default=None, help="fault scenario file (TOML or JSON, list of {at_s, fault, params})")
    p.add_argument("--fault", action="append", default=[], metavar="KIND@AT[:k=v,...]",
                   help="one fault, e.g. --fault freeze_book@20:duration_s=15 (repeatable)")
    p.add_argument("--usdc", type=float, default=10_000.0, help="starting USDC of every new account")
    p.add_argument("--state", default=None,
                   help="state file (+ STATE.journal): loaded at start if present, every change journaled as it "
                        "happens, so a killed server (kill -9) restarts with its orders")
    p.add_argument("--chain", "--network-sig", dest="chain", default="testnet", choices=("mainnet", "testnet"),
                   help="the network whose signatures are accepted (default testnet: the SDK against a local URL "
                        "and hlmm --network local sign as testnet); the other network's are refused")
    p.add_argument("--account", action="append", default=[], metavar="ADDR[=USDC]", help="pre-create an account")
    p.add_argument("--agent", action="append", default=[], metavar="AGENT=MASTER", help="pre-approve an agent")
    p.add_argument("--no-auto-accounts", action="store_true",
                   help="only --account addresses (and their agents) may trade; others get 'does not exist'")
    p.add_argument("--budget-base", type=int, default=10_000, help="per-address request budget before volume")
    p.add_argument("--open-order-base", type=int, default=OPEN_ORDER_BASE,
                   help="open orders per account before the volume bonus (Hyperliquid 1000: +1 per $5M volume, "
                        "at most 5x; reduce-only refused from this many open)")
    p.add_argument("--ws-max-connections", type=int, default=WsLimits().max_connections,
                   help="websocket connections per IP (Hyperliquid 10; more get HTTP 429)")
    p.add_argument("--schedule-cancel-min-volume", type=float, default=0.0,
                   help="refuse scheduleCancel below this traded volume (Hyperliquid: 1000000)")
    p.add_argument("--ip-weight", type=int, default=1200, help="REST weight per IP per minute (HTTP 429 above)")
    p.add_argument("--binance", action="append", default=[], metavar="SYMBOL=COIN",
                   help="map a bookTicker symbol to a coin (default: symbol base = coin base)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--report", default=None, help="write a JSON report (orders, fills, faults) here at exit")
    p.set_defaults(func=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise ValueError(f"{what} {it!r}: expected KEY=VALUE")
        out[k.strip()] = v.strip()
    return out


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    faults = load_scenario(args.faults) if args.faults else []
    faults += [parse_flag(f) for f in args.fault]
    if args.open_order_base < 1:
        raise ValueError(f"--open-order-base must be >= 1, got {args.open_order_base}")
    accounts = {}
    for a in args.account:
        addr, _, usdc = a.partition("=")
        accounts[addr.strip().lower()] = float(usdc) if usdc else args.usdc
    return ServerOptions(
        port=args.port, host=args.host, preset=args.preset, data=args.data, coin=args.coin, speed=args.speed,
        seed=args.seed, faults=faults, usdc=args.usdc, state=args.state, chain=args.chain,
        auto_accounts=not args.no_auto_accounts, accounts=accounts,
        agents={k.lower(): v.lower() for k, v in _pairs(args.agent, "--agent").items()},
        budget_base=args.budget_base, open_order_base=args.open_order_base,
        ws_limits=WsLimits(max_connections=args.ws_max_connections),
        schedule_cancel_min_volume=args.schedule_cancel_min_volume,
        ip_weight_per_min=args.ip_weight,
        binance_map={k.lower(): v for k, v in _pairs(args.binance, "--binance").items()},
    )


async def _serve(opts: ServerOptions, duration: float | None, report: str | None) -> None:
    server = build_server(opts)
    await server.start()
    print(f"local exchange on {server.url} (ws {server.url.replace('http', 'ws')}/ws), "
          f"market {server.clock_src.labels if server.clock_src else []}, speed {opts.speed:g}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
    finally:
        rep = server.report()
        await server.stop()
        if report:
            with open(report, "w") as f:
                json.dump(rep, f, indent=1, default=str)
        print(f"stopped: {rep['orders']} resting={rep['resting']}", flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        opts = options_from_args(args)
    except (FaultError, ValueError) as e:
        print(f"hlmm exchange: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(opts, args.duration, args.report))
    except (MarketSourceError, ServerError, OSError) as e:
        print(f"hlmm exchange: {e}", file=sys.stderr)
        return 2
    return 0
