"""Live runner: the EngineCore on live Hyperliquid market data, against the real exchange (``live``) or the
simulated venue (``paper``).

One websocket carries market channels (l2Book, trades, bbo, activeAssetCtx) and, in live mode, the user channels
(orderUpdates, userFills, userEvents) for the adapter. Everything that touches the engine runs in one consumer
coroutine fed by a queue (market events, venue events, timer ticks, stop), so the engine is never re-entered:
:func:`hlmm.engine.session.run_session`, the same loop the paper runner runs.

Start-up: resolve the instrument from exchange meta -> Binance symbol (logged: which one, or why off) -> engine
(kill state restored) -> warm start from ``candleSnapshot`` -> venue start -> snapshot -> ``engine.sync``.
Live restart (loss limits): before the engine is built, the day's accounting is rebuilt from the exchange's fills
of the UTC day united with the fill journal (``hlmm.engine.day_restore``), the kill state is rebased onto that
quantity (``resume_state``) and the engine restores it (``restore_day``); every fill is journaled durably in the
state dir (next to the kill state) and a fill already journaled is never passed on again. Paper mode does none of
this (it starts flat with PnL 0, as a backtest).
Shutdown (duration, SIGINT/SIGTERM): engine cancels what it has, venue ``cancel_all`` backstop, wait for acks with
a timeout, kill state persisted, summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hlmm.config import Config
from hlmm.engine.runner import MetricsHook, RunnerError, kill_reason, start_metrics
from hlmm.engine.session import Item, NullLog, run_session
from hlmm.engine.summary import LIVE_STATS_MAX, RunStats, SummaryError, build_summary
from hlmm.logsetup import EventLog
from hlmm.market.instrument import InstrumentRegistry
from hlmm.market.parse import MARKET_CHANNELS, ParseError, parse_ws_message
from hlmm.risk.guard import min_order_note
from hlmm.risk.store import KillStateStore
from hlmm.venue.base import UserStreamVenue, Venue
from hlmm.venue.hyperliquid.validate import BadInputCounter

if TYPE_CHECKING:
    from hlmm.engine.core import EngineCore

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
    journal_dir: str | Path | None = None,
    guardian: bool = False,
    guardian_log: Any = None,
) -> LiveResult:
    """Run one coin live or paper on live market data for ``duration_s`` wall seconds (or until stopped).

    ``metrics_port`` (default ``run.metrics_port``; 0 = any free port) serves Prometheus ``/metrics`` on 127.0.0.1.
    ``journal_dir``: where the live fill journal lives (default: the kill store's directory; none without either).
    ``guardian`` (live only; ``hlmm run`` sets it): a separate guardian process (:mod:`hlmm.guardian`) cancels
    everything if this process dies or is silent for ``run.guardian_timeout_s``; ``guardian_log``: its log file."""
    # EngineCore is looked up at call time: the e2e harness observes the engine by patching the class.
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
    venue: Venue | None = None
    # The live adapter, which takes the user channels (orderUpdates, userFills, userEvents) of the one websocket;
    # None in paper (the simulator makes its own order events).
    user_stream: UserStreamVenue | None = None
    metrics: MetricsHook | None = None
    journal: Any = None
    guard: Any = None
    res: LiveResult | None = None
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
        cc = cfg.coin(coin)
        note = min_order_note(inst, cc.risk.max_position_usd, cc.strategy.max_order_fraction,
                              cc.risk.allow_min_order_over_cap)
        if note is not None:
            out(f"warning: {note}")  # the engine logs it too (min_order_over_cap)
        if mode == "live":
            summary = confirmation_summary(cfg, coin, network, wallet, inst, (sym, why), duration_s)
            out(summary)
            if confirm is not None and not confirm(summary):
                raise RunnerError("not confirmed by the operator; nothing was sent")
        start_ts = clock()
        kill_state = kill_store.load() if kill_store is not None else None
        restored: Any = None
        if mode == "live":
            account = (cfg.account.vault_address or wallet.account_address).lower()
            journal = _open_journal(journal_dir, kill_store, coin, account)
            kill_state, restored = await _restore_day(info, account, coin, start_ts, kill_state, kill_store,
                                                      journal, logger, out)
        # The engine uses exactly the reference symbol that runs (resolved above), or none ("off").
        engine = EngineCore(coin, inst, cfg.coin(coin), start_ts, kill_state=kill_state, log=log,
                            foreign_orders=cfg.run.foreign_orders, ref_symbol=sym or "off")
        if restored is not None:
            assert kill_state is not None  # _restore_day returns the rebased state with the day, or raises
            engine.restore_day(restored.position0, kill_state.day_anchor_px, restored.fills)
        metrics = start_metrics(metrics_port if metrics_port is not None else cfg.run.metrics_port, logger)
        if metrics is not None:
            out(f"metrics: http://127.0.0.1:{metrics.port}/metrics")
        candles = await warm_candles(info, coin, start_ts)
        engine.warm_start(candles=candles or None)
        out(f"warm start: {len(candles)} one-minute candles")

        q: asyncio.Queue[Item] = asyncio.Queue()
        stop = stop or asyncio.Event()
        # Malformed market messages (non-finite/non-positive numbers, crossed books, wrong types) never reach the
        # engine: counted per channel, the first of each logged (the summary's venue_stats carries the counts).
        bad_market = BadInputCounter(logger, "market", clock)
        stats = RunStats(coin, start_ts, max_points=LIVE_STATS_MAX)  # days-long sessions: bounded series
        engine.use_live_bounds()  # recorder series, finished orders, fill keys

        def on_ws(ts: float, channel: str, data: Any) -> None:
            if channel in MARKET_CHANNELS:
                try:
                    evs = parse_ws_message({"channel": channel, "data": data}, ts)
                except ParseError as e:
                    bad_market.note(channel, e.problem, data)
                    return
                for ev in evs:
                    q.put_nowait(("m", ev))
            elif channel == "error":
                logger.error("ws_error_channel", data=str(data)[:300])
            elif user_stream is not None:
                user_stream.on_ws_message(ts, channel, data)

        ws_seen_up = False

        def on_status(ts: float, connected: bool, detail: str) -> None:
            nonlocal ws_seen_up
            logger.info("ws_status", connected=connected, detail=detail)
            if connected:
                if ws_seen_up and metrics is not None:
                    metrics.ws_reconnect("hl")
                ws_seen_up = True
            if user_stream is not None:
                user_stream.on_ws_status(ts, connected, detail)

        ws = WsClient(ws_url, on_ws, on_status, clock=clock, log=log)
        for sub in ({"type": "l2Book", "coin": coin}, {"type": "trades", "coin": coin},
                    {"type": "bbo", "coin": coin}, {"type": "activeAssetCtx", "coin": coin}):
            await ws.subscribe(sub)

        if mode == "live":
            from hlmm.venue.hyperliquid.adapter import HyperliquidVenue
            from hlmm.venue.hyperliquid.nonce import NonceManager

            exchange = ExchangeClient(rest_url, wallet, NonceManager(), is_mainnet, cfg.account.vault_address)
            account = cfg.account.vault_address or wallet.account_address
            venue = user_stream = HyperliquidVenue(
                info, exchange, reg, account=account, coins=[coin], ws=ws, dead_man_s=cfg.run.dead_man_s,
                batch_interval_s=cfg.run.batch_interval_s, clock=clock, log=log)
            if guardian:
                guard = await _start_guardian(cfg, coin, inst.asset, wallet, exchange, account, rest_url,
                                              is_mainnet, engine, logger, out, stop, guardian_log)
        else:
            from hlmm.sim.exchange import SimExchange
            from hlmm.sim.latency import LatencyModel
            from hlmm.sim.venue import SimVenue

            venue = SimVenue(SimExchange(reg, LatencyModel(seed=0), queue="prob", seed=0), clock=clock)
        venue.set_event_sink(_fill_gate(journal, lambda ev: q.put_nowait(("v", ev)), logger))
        await ws.start()
        if not await ws.wait_connected(15.0):
            raise RunnerError(f"websocket {ws_url} did not connect: {ws.last_error}")
        await venue.start()

        if sym is not None:
            feed = BinanceFeed(sym, lambda rq: q.put_nowait(("m", rq)),
                               base_url=binance_base_url or binance_url(cfg, network), clock=clock, log=log)
            await feed.start()

        res = await _loop(engine, venue, stats, q, stop, cfg, coin, mode, duration_s, kill_store, logger,
                          install_signals, timer_interval_s, clock, out, metrics, bad_market, restored)
        return res
    finally:
        if guard is not None:
            # "done" only when the exchange showed nothing resting (or we never had an order): otherwise hand over.
            await guard.stop(clean=(res is not None and res.resting_after_shutdown == 0)
                             or not engine.tracker.all_orders(coin))
        if journal is not None:
            journal.close()
        if metrics is not None:
            await asyncio.to_thread(metrics.close)
        if feed is not None:
            await feed.close()
        if ws is not None:
            await ws.close()
        if exchange is not None:
            await exchange.close()
        await info.close()


async def _start_guardian(cfg: Config, coin: str, asset: int, wallet: Any, exchange: Any, account: str,
                          rest_url: str, is_mainnet: bool, engine: Any, log: Any, out: Callable[[str], None],
                          stop: asyncio.Event, log_path: Any) -> Any:
    """Start the guardian before any order can be sent; RunnerError if it cannot start (never trade unguarded)."""
    from hlmm.guardian.launcher import Guardian, GuardianError

    g = Guardian(wallet=wallet, url=rest_url, is_mainnet=is_mainnet, account=account,
                 vault=cfg.account.vault_address, coins={coin: asset}, timeout_s=cfg.run.guardian_timeout_s,
                 nonce_last=lambda: exchange.nonces.last,
                 known_orders=lambda: [(asset, o.oid) for o in engine.tracker.live(coin) if o.oid],
                 log=log, out=out, log_path=log_path, on_lost=stop.set)
    try:
        await g.start()
    except GuardianError as e:
        raise RunnerError(str(e)) from None
    return g


async def _loop(
    engine: EngineCore, venue: Venue, stats: RunStats, q: asyncio.Queue[Item], stop: asyncio.Event, cfg: Config,
    coin: str, mode: str, duration_s: float, kill_store: KillStateStore | None, log: EventLog, install_signals: bool,
    timer_interval_s: float, clock: Callable[[], float], out: Callable[[str], None],
    metrics: MetricsHook | None = None,
    bad_market: BadInputCounter | None = None,
    restored: Any = None,
) -> LiveResult:
    end_ts = stats.start_ts + duration_s

    def synced() -> None:
        # What the engine holds after the start-up sync (a restored day, an inherited position) is the opening
        # balance of this session's independent ledger, so the summary's PnL check stays meaningful.
        stats.set_opening(engine.portfolio)
        out(f"{mode} {coin}: running for {duration_s:g} s (Ctrl-C stops and cancels everything)")

    end = await run_session(
        engine, venue, stats, q, stop, coin=coin, clock=clock, end_ts=end_ts, timer_wall_s=timer_interval_s,
        resting=lambda: (o for o in engine.tracker.live(coin) if o.acked),
        drained=lambda: not engine.tracker.live(coin), drain_wall_s=DRAIN_WALL_S, feed_venue=mode == "paper",
        kill_store=kill_store, log=log, metrics=metrics, install_signals=install_signals,
        on_synced=synced,
        # paper: the simulated venue holds arrivals for their market data; none comes after the loop
        on_loop_end=getattr(venue, "end_feed", None) if mode == "paper" else None,
    )
    snap = end.snapshot
    summary: dict[str, Any] | None
    try:
        summary = build_summary(
            stats, end_ts=min(clock(), end_ts), max_position_usd=cfg.coin(coin).risk.max_position_usd,
            portfolio=engine.portfolio, kill=kill_reason(engine), wall_s=end.wall_s, mode=mode,
            venue_position=snap.position if snap is not None else None,
            extra={"stopped_by": end.stopped_by, "resting_after_shutdown": end.resting_after_shutdown,
                   "crossing_at_send": end.crossing_at_send, "crossing_own_at_send": end.crossing_own_at_send,
                   "venue_stats": _venue_stats(venue, bad_market), "day_restore": _restore_info(restored, engine)},
        )
    except SummaryError as e:
        log.warning("no_summary", error=str(e))
        summary = None
    return LiveResult(summary=summary, engine=engine, venue=venue, stats=stats, stopped_by=end.stopped_by,
                      resting_after_shutdown=end.resting_after_shutdown)


def _venue_stats(venue: Venue, bad_market: BadInputCounter | None = None) -> dict[str, Any]:
    out = dict(venue.diagnostics())
    if bad_market is not None and bad_market.counts:
        out["bad_market"] = dict(bad_market.counts)
    return out


def _open_journal(journal_dir: str | Path | None, kill_store: Any, coin: str, account: str) -> Any:
    """The live fill journal, next to the kill state unless told otherwise (None: no state dir at all)."""
    from hlmm.commands.backtest import safe_name
    from hlmm.engine.journal import DailyFillJournal

    d = Path(journal_dir) if journal_dir is not None else None
    if d is None and kill_store is not None and getattr(kill_store, "path", None) is not None:
        d = Path(kill_store.path).parent
    if d is None:
        return None
    # The account is part of the name: one state dir may serve several accounts; tids are per exchange.
    return DailyFillJournal(d, f"{safe_name(coin)}_{account[:12]}")


async def _restore_day(info: Any, account: str, coin: str, start_ts: float, kill_state: Any, kill_store: Any,
                       journal: Any, log: Any, out: Callable[[str], None]) -> tuple[Any, Any]:
    """Rebuild the UTC day so far (exchange fills + journal) and rebase the kill state onto it; refuse to start
    (RunnerError) when the exchange cannot tell us: a loss limit that does not know today's losses is no limit."""
    from hlmm.engine.day_restore import DayRestoreError, parse_book_mid, restore_day
    from hlmm.engine.journal import JournalError
    from hlmm.market.instrument import parse_coin
    from hlmm.risk.kill_switch import _day_bounds, resume_state, utc_day

    day_start, _ = _day_bounds(start_ts)
    try:
        jfills = journal.load_day(utc_day(start_ts)) if journal is not None else []
    except JournalError as e:
        raise RunnerError(f"fill journal is corrupt, inspect it (never delete it blindly): {e}") from None
    try:
        r = await restore_day(info, account, coin, parse_coin(coin).dex, day_start, jfills, log)
        mid = parse_book_mid(await info.l2_book(coin))
    except DayRestoreError as e:
        raise RunnerError(f"cannot rebuild today's PnL for the loss limits: {e}") from None
    except Exception as e:
        raise RunnerError(f"cannot read today's fills/position for the loss limits: {e}") from None
    state = resume_state(kill_state, start_ts, mid)
    if r.position0 != 0.0 and state.day_anchor_px is None:
        raise RunnerError(f"{coin}: a position of {r.position0} at the day's start and no mark to value it")
    if kill_store is not None:
        kill_store.save(state)
    if journal is not None:
        for f in r.fills:
            if not journal.seen(f):
                journal.append(f)
    log.info("day_restored", coin=coin, day=state.day, fills=len(r.fills), exchange_fills=r.n_exchange,
             journal_only=r.n_journal_only, bad=r.n_bad, position_now=r.position_now, position0=r.position0,
             anchor_px=state.day_anchor_px, peak_day_pnl=state.peak_pnl, killed=state.killed)
    if r.n_journal_only:
        log.warning("journal_only_fills", coin=coin, count=r.n_journal_only)
    out(f"day so far: {len(r.fills)} fill(s) of {coin} since 00:00 UTC, position at the day's start {r.position0:g}")
    return state, r


def _fill_gate(journal: Any, put: Callable[[Any], None], log: Any) -> Callable[[Any], None]:
    """Venue event sink: every new fill is journaled durably before the engine sees it; a fill the journal already
    holds (the same trade seen over WS and again from a REST resync, or from before a restart) is dropped, so it
    is applied exactly once."""
    if journal is None:
        return put
    from hlmm.engine.day_restore import is_valid_fill
    from hlmm.venue.base import Fill

    def sink(ev: Any) -> None:
        if isinstance(ev, Fill):
            if journal.seen(ev):
                if journal.same(ev):
                    log.info("duplicate_fill_dropped", coin=ev.coin, tid=ev.tid, oid=ev.oid)
                    return
                log.warning("journal_conflict", coin=ev.coin, tid=ev.tid, oid=ev.oid,
                            detail="same (tid, oid), another trade: passed on")
            elif is_valid_fill(ev):
                try:
                    fresh = journal.append(ev)
                except OSError as e:
                    log.error("journal_write_failed", error=str(e), tid=ev.tid, oid=ev.oid)
                else:
                    if not fresh and journal.same(ev):
                        # journaled on a day no longer held in memory (append re-read that day's file)
                        log.info("duplicate_fill_dropped", coin=ev.coin, tid=ev.tid, oid=ev.oid)
                        return
        put(ev)

    return sink


def _restore_info(restored: Any, engine: Any) -> dict[str, Any] | None:
    if restored is None:
        return None
    s = engine.kill_switch.state
    return {"fills": len(restored.fills), "exchange_fills": restored.n_exchange,
            "journal_only": restored.n_journal_only, "position0": restored.position0,
            "anchor_px": s.day_anchor_px, "day": s.day}
