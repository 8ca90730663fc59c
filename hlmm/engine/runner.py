"""Backtest runner: one coin, one simulated clock, as fast as Python allows, deterministic for a seed.

Clock model (see ``hlmm/sim/README.md``): the simulated exchange lives on exchange time and the engine on
local time. Each market event goes to the :class:`SimExchange` at ``ev.ts_exchange`` and to the
:class:`EngineCore` at ``ev.ts`` (later, by the market-data latency). Actions the engine returns at local
time ``t`` are submitted at ``t``; the exchange schedules their arrival and the responses; venue events
reach the engine at their delivery ``ts``. A timer fires every ``timer_interval_s`` of simulated time.

The four streams (exchange feed, exchange internal times, engine feed, timers) are merged on the one
clock; on equal times the order is: exchange feed, exchange internals, engine feed, timer - the
exchange always knows the market before our orders arrive at the same instant (the conservative choice).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hlmm.config import Config, ConfigError
from hlmm.engine.reconcile import book_crossings, own_crossings
from hlmm.engine.summary import RunStats, build_summary
from hlmm.market.events import Bbo, BookSnapshot, MarketEvent, Trade
from hlmm.market.instrument import InstrumentRegistry, default_registry
from hlmm.venue.base import ModifyOrder, PlaceOrder, VenueAction

PRESET_COINS = {"btc": "BTC", "btc_noflow": "BTC", "hype_quiet": "hyna:HYPE"}
DRAIN_S = 10.0  # after shutdown, deliver venue events for at most this much simulated time


class RunnerError(RuntimeError):
    """A run that cannot start or whose inputs are inconsistent."""


@dataclass(slots=True)
class MarketSource:
    """A market-data stream plus what the runner needs to start on it."""

    coin: str
    events: Iterable[MarketEvent]
    start_ts: float | None  # None: taken from the first event
    description: str
    warm_mids: list[tuple[float, float]] | None = None
    warm_trades: list[Trade] | None = None
    registry: InstrumentRegistry = field(default_factory=default_registry)
    synthetic: Any = None  # the SyntheticMarket, when synthetic (paper pacing re-creates it)


def synthetic_source(
    preset: str,
    *,
    coin: str | None = None,
    duration_s: float,
    seed: int = 0,
    start_ts: float = 1_750_000_000.0,
    warm_s: float = 600.0,
    overrides: dict[str, Any] | None = None,
    registry: InstrumentRegistry | None = None,
) -> MarketSource:
    """A seeded synthetic market (``hlmm.sim.synthetic`` preset) with a warm-start history."""
    from hlmm.sim.synthetic import SyntheticMarket
    from hlmm.sim.synthetic import preset as synth_preset

    kw: dict[str, Any] = dict(overrides or {})
    kw.setdefault("seed", seed)
    if coin is not None:
        kw["coin"] = coin
    try:
        params = synth_preset(preset, **kw)
    except (KeyError, ValueError, TypeError) as e:
        raise RunnerError(f"synthetic preset {preset!r}: {e}") from None
    reg = registry or default_registry()
    mkt = SyntheticMarket(params, registry=reg, start_ts=start_ts)
    mids, trades = mkt.warm_history(warm_s) if warm_s > 0 else (None, None)
    return MarketSource(
        coin=params.coin,
        events=mkt.events(duration_s),
        start_ts=mkt.start_ts,  # whole ms, as the generator stamps events
        description=f"synthetic {preset} seed={seed}",
        warm_mids=mids,
        warm_trades=trades,
        registry=reg,
        synthetic=mkt,
    )


def replay_source(path: str | Path, coin: str, registry: InstrumentRegistry | None = None) -> MarketSource:
    """A recorded stream (raw WS capture, CSV pair, or ``hlmm synth`` output) via ``hlmm.data.replay``."""
    from hlmm.data.replay import open_source

    p = Path(path)
    if not p.exists():
        raise RunnerError(f"data path {p} does not exist")
    return MarketSource(
        coin=coin, events=open_source(p, coin), start_ts=None, description=f"replay {p}",
        registry=registry or default_registry(),
    )


def source_from_args(
    preset: str | None, data: str | None, coin: str | None, duration_s: float, seed: int,
    overrides: dict[str, Any] | None = None, start_ts: float = 1_750_000_000.0, warm_s: float = 600.0,
) -> MarketSource:
    """The market source a command asked for: a recording (``data``) or a synthetic preset (default btc)."""
    if data is not None and preset is not None:
        raise RunnerError("give either --preset or --data, not both")
    if data is not None:
        if coin is None:
            raise RunnerError("--data needs --coin (which coin to read from the recording)")
        return replay_source(data, coin)
    preset = preset or "btc"
    if preset not in PRESET_COINS:
        raise RunnerError(f"unknown preset {preset!r}; choose from {sorted(PRESET_COINS)}")
    return synthetic_source(
        preset, coin=coin, duration_s=duration_s, seed=seed, overrides=overrides, start_ts=start_ts, warm_s=warm_s
    )


@dataclass(slots=True)
class BacktestResult:
    summary: dict[str, Any]
    engine: Any
    exchange: Any
    stats: RunStats


def peek_start(events: Iterable[MarketEvent]) -> tuple[float, Iterator[MarketEvent]]:
    it = iter(events)
    try:
        first = next(it)
    except StopIteration:
        raise RunnerError("the market source is empty") from None

    def chain() -> Iterator[MarketEvent]:
        yield first
        yield from it

    return first.ts, chain()


def count_resting(orders: Iterable[Any]) -> tuple[int, int]:
    nb = na = 0
    for o in orders:
        if o.is_buy:
            nb += 1
        else:
            na += 1
    return nb, na


def build_engine(
    cfg: Config, coin: str, registry: InstrumentRegistry, start_ts: float, kill_store: Any | None, log: Any | None,
    load_kill: bool = True,
) -> Any:
    """An EngineCore for ``coin``; a kill latched in ``kill_store`` is restored when ``load_kill``."""
    from hlmm.engine.core import EngineCore

    try:
        coin_cfg = cfg.coin(coin)
    except ConfigError as e:
        raise RunnerError(str(e)) from None
    if coin not in registry:
        raise RunnerError(f"no instrument for {coin!r}; known: {sorted(registry.coins())}")
    inst = registry.get(coin)
    kill_state = kill_store.load() if (kill_store is not None and load_kill) else None
    return EngineCore(coin, inst, coin_cfg, start_ts, kill_state=kill_state, log=log,
                      foreign_orders=cfg.run.foreign_orders)


class MetricsHook:
    """A runner's optional Prometheus endpoint (``run.metrics_port`` / ``--metrics-port``): served on 127.0.0.1, fed
    from the runner's 1 s timer, stopped at exit. A metrics failure is logged, never allowed to stop trading."""

    def __init__(self, port: int, log: Any | None = None) -> None:
        from hlmm.report.metrics import start_metrics_server

        try:
            self.sink, self._server = start_metrics_server(port)
        except OSError as e:
            raise RunnerError(f"cannot serve metrics on 127.0.0.1:{port}: {e}") from None
        self.port: int = int(self._server.server_port)
        self._log = log
        self._failed = False

    def update(self, engine: Any, ts: float, budget_left: float | None = None) -> None:
        try:
            self.sink.update_from_engine(engine, ts, budget_left=budget_left)
        except Exception as e:  # a gauge bug must not take the trading loop down; say it once
            if not self._failed and self._log is not None:
                self._log.error("metrics_update_failed", error=repr(e))
            self._failed = True

    def ws_reconnect(self, feed: str) -> None:
        self.sink.ws_reconnect(feed)

    def close(self) -> None:
        """Stop serving and release the port (blocks up to the server's 0.5 s poll interval)."""
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()


def start_metrics(port: int | None, log: Any | None = None) -> MetricsHook | None:
    """A :class:`MetricsHook` on ``port`` (0: any free port), or None when metrics are off."""
    return None if port is None else MetricsHook(port, log)


def persist_kill(engine: Any, kill_store: Any | None) -> None:
    if engine.persist_needed:
        if kill_store is not None:
            kill_store.save(engine.kill_switch.state)
        engine.mark_persisted()


def kill_reason(engine: Any) -> str | None:
    ks = engine.kill_switch
    return ks.state.reason if ks.killed else None


def run_backtest(
    source: MarketSource,
    cfg: Config,
    *,
    seed: int = 0,
    duration_s: float | None = None,
    latency: Any = None,
    queue: str = "prob",
    kill_store: Any | None = None,
    load_kill: bool = True,
    log: Any | None = None,
    progress: bool = False,
    timer_interval_s: float = 1.0,
    on_timer: Callable[[float, Any, Any], None] | None = None,
    engine: Any = None,
    exchange: Any = None,
) -> BacktestResult:
    """Run ``source`` through the engine against a SimExchange. Returns the summary and the objects.

    ``on_timer(ts, engine, exchange)`` is called after every timer tick (tests check invariants there).
    ``engine``/``exchange`` may be injected (tests); by default an EngineCore and a SimExchange are built.
    ``kill_store`` persists the kill state whenever it changes; with ``load_kill`` a latched kill from an
    earlier run is restored first (the engine then never quotes).

    Three steps: :func:`_setup_backtest` (engine, venue, opening sync), :func:`_replay` (the event loop on one
    simulated clock) and :func:`_finish_backtest` (shutdown, drain, summary)."""
    run, events, end_limit = _setup_backtest(source, cfg, seed, duration_s, latency, queue, kill_store, load_kill,
                                             log, engine, exchange)
    _replay(run, events, end_limit, timer_interval_s, on_timer, _Progress(progress, duration_s, source.description))
    return _finish_backtest(run)


@dataclass(slots=True)
class _BacktestRun:
    """One backtest's state, shared by its three steps."""

    coin: str
    engine: Any
    ex: Any
    stats: RunStats
    kill_store: Any | None
    start_ts: float
    seed: int
    description: str
    max_pos_usd: float
    now: float
    wall0: float = 0.0
    n_events: int = 0
    crossing_at_send: int = 0
    crossing_own_at_send: int = 0
    tracker: Any = None

    def send(self, actions: list[VenueAction], t: float) -> None:
        # Failure #5 check: an ALO that crosses the book *as the engine saw it* when sending is our bug,
        # not a latency race. Count it; the scenario tests require zero.
        market = self.engine.market
        self.crossing_at_send += book_crossings(actions, market.best_bid, market.best_ask)
        # Issue 9 item 8: a placement that crosses one of our own orders is the same bug (counted in both).
        if self.tracker is not None and any(isinstance(a, PlaceOrder | ModifyOrder) for a in actions):
            own = own_crossings(actions, self.tracker.live(self.coin))
            self.crossing_own_at_send += own
            self.crossing_at_send += own
        self.stats.on_actions(actions, t)
        self.ex.submit(actions, t)
        if self.engine.persist_needed:
            persist_kill(self.engine, self.kill_store)


def _setup_backtest(
    source: MarketSource, cfg: Config, seed: int, duration_s: float | None, latency: Any, queue: str,
    kill_store: Any | None, load_kill: bool, log: Any | None, engine: Any, exchange: Any,
) -> tuple[_BacktestRun, Iterator[MarketEvent], float]:
    """Engine and simulated venue for ``source``, warm-started and synced with the venue's opening snapshot."""
    coin = source.coin
    if source.start_ts is None:
        start_ts, events = peek_start(source.events)
    else:
        start_ts, events = source.start_ts, iter(source.events)
    end_limit = start_ts + duration_s if duration_s is not None else math.inf

    if engine is None:
        engine = build_engine(cfg, coin, source.registry, start_ts, kill_store, log, load_kill)
    if exchange is None:
        from hlmm.sim.exchange import SimExchange
        from hlmm.sim.latency import LatencyModel

        exchange = SimExchange(source.registry, latency or LatencyModel(seed=seed), queue=queue, seed=seed)
    if source.warm_mids or source.warm_trades:
        engine.warm_start(mids=source.warm_mids, trades=source.warm_trades)
    run = _BacktestRun(coin=coin, engine=engine, ex=exchange, stats=RunStats(coin, start_ts), kill_store=kill_store,
                       start_ts=start_ts, seed=seed, description=source.description,
                       max_pos_usd=cfg.coin(coin).risk.max_position_usd, now=start_ts,
                       tracker=getattr(engine, "tracker", None))  # a test double may have no tracker
    run.send(engine.sync(exchange.snapshot(coin, start_ts)), start_ts)
    return run, events, end_limit


def _replay(
    run: _BacktestRun, events: Iterator[MarketEvent], end_limit: float, timer_interval_s: float,
    on_timer: Callable[[float, Any, Any], None] | None, bar: _Progress,
) -> None:
    """The event loop: every market event reaches the exchange at its exchange time and the engine at its local
    time; venue events and timer ticks interleave in clock order on one simulated clock."""
    coin, engine, ex, stats = run.coin, run.engine, run.ex, run.stats
    kill_store, start_ts = run.kill_store, run.start_ts
    send = run.send
    ex_on_market, ex_next, ex_advance, ex_pop = ex.on_market, ex.next_time, ex.advance_to, ex.pop_events
    eng_market, eng_venue = engine.on_market, engine.on_venue
    stats_venue = stats.on_venue
    mid_ts, mid_px = stats.mid_ts, stats.mid_px

    INF = math.inf
    to_eng: deque[MarketEvent] = deque()  # events the exchange has seen, waiting for their local ts
    next_timer = start_ts + timer_interval_s
    now = run.now
    n_events = 0
    last_mid = math.nan
    mid_seen = -INF

    tn = ex_next()
    if tn is None:
        tn = INF

    run.wall0 = time.perf_counter()
    final = False
    try:
        while True:
            ev = next(events, None)
            if ev is None or ev.ts > end_limit:
                final, limit = True, INF
            else:
                cls = type(ev)
                # Timer/AssetCtx carry no exchange time: the exchange "sees" them when we do.
                if cls is BookSnapshot or cls is Trade or cls is Bbo:
                    limit = cast("BookSnapshot | Trade | Bbo", ev).ts_exchange
                else:
                    limit = ev.ts
                if limit > ev.ts:
                    limit = ev.ts
            # Everything internal that happens strictly before the next exchange-feed time, in clock order.
            # Ties: exchange internals before the engine feed before the timer.
            while True:
                te = to_eng[0].ts if to_eng else INF
                if final and not to_eng:
                    break
                t = te
                if tn < t:
                    t = tn
                if next_timer < t:
                    t = next_timer
                if t >= limit:
                    break
                if t < now:
                    t = now  # out-of-order stamps in a recording: the clock never goes back
                now = t
                if tn <= t:
                    ex_advance(t)
                    for vev in ex_pop(t):
                        stats_venue(vev)
                        acts = eng_venue(vev)
                        if acts:
                            send(acts, t)
                elif te <= t:
                    e = to_eng.popleft()
                    n_events += 1
                    acts = eng_market(e)
                    ce = type(e)
                    # The market's mid as the engine holds it (our own orders taken out of the published book).
                    if (ce is BookSnapshot or ce is Bbo) and (m := engine.market_mid) is not None:
                        mid_seen = t
                        if m != last_mid:
                            mid_ts.append(t)
                            mid_px.append(m)
                            last_mid = m
                    if not acts:
                        continue  # the exchange was not touched: its next time is unchanged
                    send(acts, t)
                else:
                    acts = engine.on_timer(t)
                    if acts:
                        send(acts, t)
                    persist_kill(engine, kill_store)
                    nb, na = count_resting(ex.open_orders(coin))
                    stats.on_resting(t, nb, na)
                    if on_timer is not None:
                        on_timer(t, engine, ex)
                    bar.update(t - start_ts)
                    next_timer += timer_interval_s
                tn = ex_next()
                if tn is None:
                    tn = INF
            if final:
                break
            if limit > now:
                now = limit
            assert ev is not None  # `final` (the only way ev is None) broke out above
            ex_on_market(ev)
            to_eng.append(ex.published(ev))  # with our own orders in the book, as Hyperliquid publishes it
            tn = ex_next()
            if tn is None:
                tn = INF
    finally:
        bar.close()
    stats.mid_last_seen = mid_seen
    run.now = now
    run.n_events = n_events


def _finish_backtest(run: _BacktestRun) -> BacktestResult:
    """Shutdown: cancel what rests, let the venue answer (bounded simulated time), then the summary."""
    coin, engine, ex, stats, now = run.coin, run.engine, run.ex, run.stats, run.now
    end_ts = now
    run.send(engine.shutdown(end_ts), end_ts)
    deadline = end_ts + DRAIN_S
    while True:
        tn = ex.next_time()
        if tn is None or tn > deadline:
            break
        tn = max(tn, now)
        now = tn
        ex.advance_to(tn)
        for vev in ex.pop_events(tn):
            stats.on_venue(vev)
            acts = engine.on_venue(vev)
            if acts:
                run.send(acts, tn)
    persist_kill(engine, run.kill_store)
    wall = time.perf_counter() - run.wall0
    stats.n_events = run.n_events
    snap = ex.snapshot(coin, now)
    summary = build_summary(
        stats,
        end_ts=end_ts,
        max_position_usd=run.max_pos_usd,
        portfolio=engine.portfolio,
        kill=kill_reason(engine),
        wall_s=wall,
        mode="backtest",
        venue_position=snap.position,
        extra={
            "source": run.description,
            "seed": run.seed,
            "crossing_at_send": run.crossing_at_send,
            "crossing_own_at_send": run.crossing_own_at_send,
            "resting_after_shutdown": len(ex.open_orders(coin)),
        },
    )
    return BacktestResult(summary=summary, engine=engine, exchange=ex, stats=stats)


class _Progress:
    """Optional rich progress bar over simulated time (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: float | None, description: str) -> None:
        self._p: Any = None
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(
            TextColumn("[bold]backtest[/] {task.description}"), BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} s simulated"), TimeElapsedColumn(), transient=True,
        )
        self._task = self._p.add_task(description, total=total or None)
        self._p.start()
        self._last = 0.0

    def update(self, done_s: float) -> None:
        if self._p is not None and done_s - self._last >= 30.0:
            self._last = done_s
            self._p.update(self._task, completed=done_s)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
