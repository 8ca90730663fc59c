"""Live runner: the EngineCore on live Hyperliquid market data, against the real exchange (``live``) or the
simulated venue (``paper``).

One websocket carries market channels (l2Book, trades, bbo, activeAssetCtx) and, in live mode, the user channels
(orderUpdates, userFills, userEvents) for the adapter. Everything that touches the engine runs in one consumer
coroutine fed by a queue (market events, venue events, timer ticks, stop), so the engine is never re-entered:
:func:`hlmm.engine.session.run_session`, the same loop the paper runner runs.

Start-up: resolve the instrument from exchange meta -> Binance symbol (logged: which one, or why off) -> engine
(kill state restored) -> warm start from ``candleSnapshot`` -> venue start -> snapshot -> ``engine.sync``.
Shutdown (duration, SIGINT/SIGTERM): engine cancels what it has, venue ``cancel_all`` backstop, wait for acks with
a timeout, kill state persisted, summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hlmm.config import Config
from hlmm.engine.runner import MetricsHook, RunnerError, kill_reason, start_metrics
from hlmm.engine.session import Item, NullLog, run_session
from hlmm.engine.summary import RunStats, SummaryError, build_summary
from hlmm.market.instrument import InstrumentRegistry
from hlmm.market.parse import MARKET_CHANNELS, ParseError, parse_ws_message

Network = Literal["mainnet", "testnet", "local"]
Mode = Literal["live", "paper"]

NETWORK_URLS = {
    "mainnet": "https://api.hyperliquid.xyz",
    "testnet": "https://api.hyperliquid-testnet.xyz",
}
WARM_CANDLES_S = 3600.0
DRAIN_WALL_S = 5.0  # wait this long for cancel acks at shutdown


@dataclass(slots=True)
class LiveResult:
    summary: dict[str, Any] | None
    engine: Any
    venue: Any
    stats: RunStats
    stopped_by: str
    resting_after_shutdown: int | None


def network_urls(cfg: Config, network: Network) -> tuple[str, str, bool]:
    """(REST base URL, WS URL, is_mainnet) for ``network`` (``local`` -> ``run.local_url``)."""
    from hlmm.venue.hyperliquid.rest import ws_url_for

    if network == "local":
        base = cfg.run.local_url.rstrip("/")
        return base, ws_url_for(base), False
    if network not in NETWORK_URLS:
        raise RunnerError(f"unknown network {network!r}; choose mainnet, testnet or local")
    base = NETWORK_URLS[network]
    return base, ws_url_for(base), network == "mainnet"


BINANCE_TESTNET_WS = "wss://stream.binancefuture.com"  # Binance USD-M futures testnet (testnet runs stay off mainnet)


def binance_url(cfg: Config, network: Network) -> str:
    """The reference feed's WS base for ``network``: it follows ``--network`` like every other endpoint.

    local -> the local server's Binance-style stream (``run.local_url`` + ``/binance``): a local run never dials a
    public host; mainnet -> Binance USD-M futures; testnet -> Binance's futures testnet."""
    from hlmm.venue.binance import BINANCE_FUTURES_WS

    if network == "local":
        base = cfg.run.local_url.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://"):] + "/binance"
        if base.startswith("http://"):
            return "ws://" + base[len("http://"):] + "/binance"
        return base + "/binance"
    if network == "testnet":
        return BINANCE_TESTNET_WS
    return BINANCE_FUTURES_WS


def load_wallet(cfg: Config) -> Any:
    """The signing wallet from HLMM_PRIVATE_KEY or the configured keystore; RunnerError if there is none."""
    from hlmm.venue.hyperliquid.wallet import Wallet, WalletError

    try:
        return Wallet.load(cfg.account.keystore_path, cfg.account.address)
    except WalletError as e:
        raise RunnerError(f"live mode needs a signing key: {e}") from None


def confirmation_summary(cfg: Config, coin: str, network: str, wallet: Any, inst: Any, ref: tuple[str | None, str],
                         duration_s: float) -> str:
    """What the operator confirms before live trading (never contains key material)."""
    cc = cfg.coin(coin)
    r = cc.risk
    lines = [
        f"LIVE trading on {network}: {coin} (asset {inst.asset}, szDecimals {inst.sz_decimals})",
        f"  account : {wallet.account_address}",
        f"  signer  : {wallet.address} ({'agent/API wallet' if wallet.is_agent else 'the account key itself'})",
    ]
    if cfg.account.vault_address:
        lines.append(f"  vault   : {cfg.account.vault_address}")
    lines += [
        f"  limits  : max position ${r.max_position_usd:g}, daily loss ${r.daily_loss_limit_usd:g}, "
        f"max drawdown ${r.max_drawdown_usd:g}",
        f"  ladder  : {cc.strategy.levels} levels/side; dead man's switch {cfg.run.dead_man_s:g} s; "
        f"foreign orders: {cfg.run.foreign_orders}",
        f"  reference: {ref[0] or 'off'} ({ref[1]})",
        f"  duration: {duration_s:g} s",
    ]
    return "\n".join(lines)


async def warm_candles(info: Any, coin: str, now: float, span_s: float = WARM_CANDLES_S) -> list[dict]:
    """1-minute candles of the last ``span_s`` (empty on failure: warm-up is then bounded by its timeout)."""
    try:
        c = await info.candle_snapshot(coin, "1m", int((now - span_s) * 1000), int(now * 1000))
    except Exception:
        return []
    return c if isinstance(c, list) else []


async def run_live(
    cfg: Config,
    coin: str,
    *,
    mode: Mode,
    network: Network,
    duration_s: float,
    kill_store: Any | None = None,
    log: Any | None = None,
    wallet: Any = None,
    confirm: Callable[[str], bool] | None = None,
    out: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    install_signals: bool = False,
    timer_interval_s: float = 1.0,
    registry: InstrumentRegistry | None = None,
    binance_base_url: str | None = None,
    clock: Callable[[], float] = time.time,
    metrics_port: int | None = None,
) -> LiveResult:
    """Run one coin live or paper on live market data for ``duration_s`` wall seconds (or until stopped).

    ``metrics_port`` (default ``run.metrics_port``; 0 = any free port) serves Prometheus ``/metrics`` on 127.0.0.1."""
    from hlmm.engine.core import EngineCore
    from hlmm.venue.binance import BinanceFeed, resolve_binance_symbol
    from hlmm.venue.hyperliquid.meta import MetaError, resolve_registry
    from hlmm.venue.hyperliquid.rest import ExchangeClient, InfoClient
    from hlmm.venue.hyperliquid.ws import WsClient

    if mode not in ("live", "paper"):
        raise RunnerError(f"mode must be live or paper, got {mode!r}")
    if not duration_s > 0:
        raise RunnerError(f"duration must be > 0, got {duration_s}")
    if coin not in cfg.coins:
        raise RunnerError(f"config has no [coins.\"{coin}\"] section (configured: {sorted(cfg.coins)})")
    if mode == "live" and wallet is None:
        wallet = load_wallet(cfg)  # before any connection: no key, no start
    rest_url, ws_url, is_mainnet = network_urls(cfg, network)
    logger = log if log is not None else NullLog()
    info = InfoClient(rest_url)
    exchange = None
    ws: Any = None
    feed: Any = None
    venue: Any = None
    metrics: MetricsHook | None = None
    try:
        try:
            reg = registry or await resolve_registry(info, [coin], hip3_fee_scale=cfg.run.hip3_fee_scale)
        except MetaError as e:
            raise RunnerError(f"cannot resolve {coin} on {network}: {e}") from None
        except Exception as e:
            raise RunnerError(f"cannot reach {rest_url} for exchange meta: {e}") from None
        inst = reg.get(coin)
        sym, why = resolve_binance_symbol(coin, cfg.coin(coin))
        logger.info("reference_feed", coin=coin, symbol=sym, why=why)
        out(f"reference feed: {sym or 'off'} ({why})")
        if mode == "live":
            summary = confirmation_summary(cfg, coin, network, wallet, inst, (sym, why), duration_s)
            out(summary)
            if confirm is not None and not confirm(summary):
                raise RunnerError("not confirmed by the operator; nothing was sent")
        start_ts = clock()
        kill_state = kill_store.load() if kill_store is not None else None
        # The engine uses exactly the reference symbol that runs (resolved above), or none ("off").
        engine = EngineCore(coin, inst, cfg.coin(coin), start_ts, kill_state=kill_state, log=log,
                            foreign_orders=cfg.run.foreign_orders, ref_symbol=sym or "off")
        metrics = start_metrics(metrics_port if metrics_port is not None else cfg.run.metrics_port, logger)
        if metrics is not None:
            out(f"metrics: http://127.0.0.1:{metrics.port}/metrics")
        candles = await warm_candles(info, coin, start_ts)
        engine.warm_start(candles=candles or None)
        out(f"warm start: {len(candles)} one-minute candles")

        q: asyncio.Queue[Item] = asyncio.Queue()
        stop = stop or asyncio.Event()
        stats = RunStats(coin, start_ts)

        def on_ws(ts: float, channel: str, data: Any) -> None:
            if channel in MARKET_CHANNELS:
                try:
                    for ev in parse_ws_message({"channel": channel, "data": data}, ts):
                        q.put_nowait(("m", ev))
                except ParseError as e:
                    logger.warning("bad_market_message", error=str(e))
            elif channel == "error":
                logger.error("ws_error_channel", data=str(data)[:300])
            elif venue is not None and hasattr(venue, "on_ws_message"):
                venue.on_ws_message(ts, channel, data)

        ws_seen_up = False

        def on_status(ts: float, connected: bool, detail: str) -> None:
            nonlocal ws_seen_up
            logger.info("ws_status", connected=connected, detail=detail)
            if connected:
                if ws_seen_up and metrics is not None:
                    metrics.ws_reconnect("hl")
                ws_seen_up = True
            if venue is not None and hasattr(venue, "on_ws_status"):
                venue.on_ws_status(ts, connected, detail)

        ws = WsClient(ws_url, on_ws, on_status, clock=clock, log=log)
        for sub in ({"type": "l2Book", "coin": coin}, {"type": "trades", "coin": coin},
                    {"type": "bbo", "coin": coin}, {"type": "activeAssetCtx", "coin": coin}):
            await ws.subscribe(sub)

        if mode == "live":
            from hlmm.venue.hyperliquid.adapter import HyperliquidVenue
            from hlmm.venue.hyperliquid.nonce import NonceManager

            exchange = ExchangeClient(rest_url, wallet, NonceManager(), is_mainnet, cfg.account.vault_address)
            account = cfg.account.vault_address or wallet.account_address
            venue = HyperliquidVenue(info, exchange, reg, account=account, coins=[coin], ws=ws,
                                     dead_man_s=cfg.run.dead_man_s, batch_interval_s=cfg.run.batch_interval_s,
                                     clock=clock, log=log)
        else:
            from hlmm.sim.exchange import SimExchange
            from hlmm.sim.latency import LatencyModel
            from hlmm.sim.venue import SimVenue

            venue = SimVenue(SimExchange(reg, LatencyModel(seed=0), queue="prob", seed=0), clock=clock)
        venue.set_event_sink(lambda ev: q.put_nowait(("v", ev)))
        await ws.start()
        if not await ws.wait_connected(15.0):
            raise RunnerError(f"websocket {ws_url} did not connect: {ws.last_error}")
        await venue.start()

        if sym is not None:
            feed = BinanceFeed(sym, lambda rq: q.put_nowait(("m", rq)),
                               base_url=binance_base_url or binance_url(cfg, network), clock=clock, log=log)
            await feed.start()

        return await _loop(engine, venue, stats, q, stop, cfg, coin, mode, duration_s, kill_store, logger,
                           install_signals, timer_interval_s, clock, out, metrics)
    finally:
        if metrics is not None:
            await asyncio.to_thread(metrics.close)
        if feed is not None:
            await feed.close()
        if ws is not None:
            await ws.close()
        if exchange is not None:
            await exchange.close()
        await info.close()


async def _loop(
    engine: Any, venue: Any, stats: RunStats, q: asyncio.Queue[Item], stop: asyncio.Event, cfg: Config,
    coin: str, mode: str, duration_s: float, kill_store: Any, log: Any, install_signals: bool,
    timer_interval_s: float, clock: Callable[[], float], out: Callable[[str], None],
    metrics: MetricsHook | None = None,
) -> LiveResult:
    end_ts = stats.start_ts + duration_s
    end = await run_session(
        engine, venue, stats, q, stop, coin=coin, clock=clock, end_ts=end_ts, timer_wall_s=timer_interval_s,
        resting=lambda: (o for o in engine.tracker.live(coin) if o.acked),
        drained=lambda: not engine.tracker.live(coin), drain_wall_s=DRAIN_WALL_S, feed_venue=mode == "paper",
        kill_store=kill_store, log=log, metrics=metrics, install_signals=install_signals,
        on_synced=lambda: out(f"{mode} {coin}: running for {duration_s:g} s (Ctrl-C stops and cancels everything)"),
    )
    snap = end.snapshot
    summary: dict[str, Any] | None
    try:
        summary = build_summary(
            stats, end_ts=min(clock(), end_ts), max_position_usd=cfg.coin(coin).risk.max_position_usd,
            portfolio=engine.portfolio, kill=kill_reason(engine), wall_s=end.wall_s, mode=mode,
            venue_position=snap.position if snap is not None else None,
            extra={"stopped_by": end.stopped_by, "resting_after_shutdown": end.resting_after_shutdown,
                   "venue_stats": _venue_stats(venue)},
        )
    except SummaryError as e:
        log.warning("no_summary", error=str(e))
        summary = None
    return LiveResult(summary=summary, engine=engine, venue=venue, stats=stats, stopped_by=end.stopped_by,
                      resting_after_shutdown=end.resting_after_shutdown)


def _venue_stats(venue: Any) -> dict[str, Any]:
    st = getattr(venue, "stats", None)
    return dict(st) if isinstance(st, dict) else {}
