"""Paper runner (async): the same EngineCore against the async SimVenue, paced in real time.

The market source is replayed against a clock: simulated time = start + (wall elapsed) x ``speed``.
A ``speed`` above 1 runs the simulated market faster than real time (the demo uses it to show fills in
seconds on a sparse market). Everything that touches the engine runs in one consumer coroutine fed by
a queue (market events, venue events, timer ticks): :func:`hlmm.engine.session.run_session`, the same loop the
live runner runs, so the engine is never re-entered.

The simulated venue runs on the exchange clock, as in a backtest (``hlmm/sim/README.md``, "Paper mode"): each
market event reaches the venue at its receive time, stamped with its exchange time, *before* the engine sees it,
and results already due are delivered first (the backtest's tie order).

``virtual_time=True`` replaces the wall clock by a :class:`VirtualClock` that the replay driver moves from one due
item to the next (market events at their local ``ts``, the venue's releases and deliveries, timer ticks on the
``timer_interval_s`` grid), waiting for the session to finish each item first: the same session, venue and engine
code, deterministic and as fast as the engine runs. ``tests/engine/test_paper_equals_backtest.py`` holds it
against the backtest of the same recording.

SIGINT/SIGTERM (when ``install_signals``) set the stop event: the engine cancels everything it has, the
venue cancels all resting orders as a backstop, remaining venue events are drained, then the summary.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from hlmm.config import Config
from hlmm.engine.runner import (
    DRAIN_S,
    MarketSource,
    RunnerError,
    build_engine,
    kill_reason,
    peek_start,
    start_metrics,
)
from hlmm.engine.session import Item, run_session
from hlmm.engine.summary import LIVE_STATS_MAX, RunStats, build_summary
from hlmm.market.events import Bbo, BookSnapshot, Trade
from hlmm.report.terminal import View, view_from_engine

DRAIN_WALL_S = 2.0
_STAMPED = (BookSnapshot, Bbo, Trade)  # events with an exchange time (the backtest's feed "limit")


@dataclass(slots=True)
class PaperResult:
    summary: dict[str, Any]
    engine: Any
    venue: Any
    stats: RunStats
    stopped_by: str
    metrics_port: int | None = None


class SimClock:
    """Simulated time running ``speed`` times faster than the monotonic wall clock from ``start_ts``."""

    def __init__(self, start_ts: float, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise RunnerError(f"speed must be > 0, got {speed}")
        self.start_ts = start_ts
        self.speed = speed
        self._wall = wall
        self._w0 = wall()

    def __call__(self) -> float:
        return self.start_ts + (self._wall() - self._w0) * self.speed

    def wall_delay(self, sim_ts: float) -> float:
        """Wall seconds until simulated time ``sim_ts``."""
        return (sim_ts - self()) / self.speed


class VirtualClock:
    """Paper's clock in virtual time: it stands still until the replay driver moves it; it never goes back."""

    def __init__(self, start_ts: float) -> None:
        self.t = start_ts

    def __call__(self) -> float:
        return self.t

    def advance(self, t: float) -> None:
        if t > self.t:
            self.t = t


async def run_paper(
    source: MarketSource,
    cfg: Config,
    *,
    duration_s: float,
    speed: float = 1.0,
    seed: int = 0,
    latency: Any = None,
    queue: str = "prob",
    kill_store: Any | None = None,
    load_kill: bool = True,
    log: Any | None = None,
    ui: Callable[[View], None] | None = None,
    ui_interval_s: float = 0.25,
    note: str = "",
    timer_interval_s: float = 1.0,
    stop: asyncio.Event | None = None,
    install_signals: bool = False,
    metrics_port: int | None = None,
    virtual_time: bool = False,
    hold_s: float | None = None,
) -> PaperResult:
    """Paper-trade ``source`` for ``duration_s`` simulated seconds (or until stopped).

    ``metrics_port`` (0 = any free port) serves Prometheus ``/metrics`` on 127.0.0.1 while the session runs.
    ``virtual_time``: no wall-clock pacing (module doc); ``speed`` is then unused. ``hold_s``: the longest an item
    waits for the next market event on a silent feed (simulated seconds; default ``sim.venue.MAX_HOLD_S``)."""
    from hlmm.sim.exchange import SimExchange
    from hlmm.sim.latency import LatencyModel
    from hlmm.sim.venue import MAX_HOLD_S, SimVenue

    coin = source.coin
    if source.start_ts is None:
        start_ts, events = peek_start(source.events)  # a recording: its own clock, paced from its start
    else:
        start_ts, events = source.start_ts, iter(source.events)
    clock = VirtualClock(start_ts)  # the session's clock: simulated time, moved by the driver below
    wall = None if virtual_time else SimClock(start_ts, speed)  # real-time pacing of the replay
    engine = build_engine(cfg, coin, source.registry, start_ts, kill_store, log, load_kill)
    if source.warm_mids or source.warm_trades:
        engine.warm_start(mids=source.warm_mids, trades=source.warm_trades)
    exchange = SimExchange(source.registry, latency or LatencyModel(seed=seed), queue=queue, seed=seed)
    # The driver below decides when the exchange moves (the backtest's order), so the venue holds nothing itself
    # and runs no delivery task of its own.
    venue = SimVenue(exchange, clock=clock, max_hold_s=0.0, background=False)
    stats = RunStats(coin, start_ts, max_points=LIVE_STATS_MAX)  # days-long sessions: bounded series
    engine.use_live_bounds()  # recorder series, finished orders, fill keys
    max_pos_usd = cfg.coin(coin).risk.max_position_usd
    stop = stop or asyncio.Event()
    q: asyncio.Queue[Item] = asyncio.Queue()
    venue.set_event_sink(lambda ev: q.put_nowait(("v", ev)))
    await venue.start()

    end_ts = start_ts + duration_s

    ex = exchange
    drain_until = [math.inf]
    wait_s = MAX_HOLD_S if hold_s is None else hold_s

    async def wait_until(t: float) -> None:
        # Real time: the replay is only "received" when the paced clock reaches an event's local ts.
        if wall is not None:
            d = wall.wall_delay(t)
            if d > 0:
                await asyncio.sleep(d)

    async def drive() -> None:
        """The backtest's event loop (``runner._replay``) on the paper session: one simulated clock, every market
        event to the exchange at its exchange time (after every internal time strictly before it) and to the engine
        at its local time; results delivered at their delivery time; ties: exchange feed, exchange internals,
        engine feed, timer. Each item is handed to the session and fully handled (``q.join``) before the clock
        moves on. Paper cannot look ahead: an internal item at ``t`` waits (real time) until the next event has been
        received - its exchange time then says whether the exchange saw it first - or, on a silent market, until
        ``wait_s`` has passed; an event that turns up later than that (stamped before ``t``) is counted
        (``late_market``) and applied when it arrives."""
        assert isinstance(clock, VirtualClock)
        inf = math.inf
        to_eng: deque[Any] = deque()  # events the exchange has seen, waiting for their local ts
        next_timer = start_ts + timer_interval_s
        it = iter(events)
        while not stop.is_set():
            ev = next(it, None)
            final = ev is None or ev.ts > end_ts
            if final:
                limit = ev_ts = inf
            else:
                assert ev is not None
                limit = min(cast(Bbo, ev).ts_exchange, ev.ts) if type(ev) in _STAMPED else ev.ts
                ev_ts = ev.ts
            while not stop.is_set():
                if final and not to_eng:
                    break
                te = to_eng[0].ts if to_eng else inf
                tn = ex.next_time()
                tn = inf if tn is None else tn
                t = min(te, tn, next_timer)
                if t >= limit:
                    if ev_ts <= t + wait_s:
                        break  # received in time: the exchange sees it before anything at t
                    venue.stats["late_market"] += 1  # a stalled feed: t goes ahead without it
                elif ev_ts > t + wait_s:
                    venue.stats["silent_waits"] += 1  # a silent market: t goes ahead after the bounded wait
                await wait_until(min(t + wait_s, max(t, ev_ts)))
                t = max(t, clock())  # out-of-order stamps: the clock never goes back
                clock.advance(t)
                if tn <= t:
                    venue.pump()  # arrivals up to t are matched, results due by t delivered
                elif te <= t:
                    q.put_nowait(("m", to_eng.popleft()))
                else:
                    q.put_nowait(("t", t))
                    next_timer += timer_interval_s
                await q.join()
            if final or stop.is_set():
                break
            assert ev is not None
            await wait_until(ev_ts)
            clock.advance(limit)
            ex.on_market(ev)
            to_eng.append(ex.published(ev))  # with our own orders in the book, as Hyperliquid publishes it
        # As the backtest: the run ends with the last market event (only the shutdown drain comes after it).
        q.put_nowait(("end", None))

    def drain_step() -> bool:
        tv = ex.next_time()
        if tv is None or tv > drain_until[0]:
            return False
        clock.advance(tv)
        venue.pump()
        return True

    def loop_end() -> None:
        drain_until[0] = clock() + DRAIN_S

    async def painter() -> None:
        assert ui is not None
        while True:
            ui(view_from_engine(engine, stats, clock(), duration_s=duration_s, note=note))
            await asyncio.sleep(ui_interval_s)

    def drained() -> bool:
        return not venue.exchange.open_orders(coin) and q.empty() and venue.exchange.next_time() is None

    metrics = None
    try:
        metrics = start_metrics(metrics_port, log)
        end = await run_session(
            engine, venue, stats, q, stop, coin=coin, clock=clock, end_ts=end_ts,
            timer_wall_s=None, resting=lambda: venue.exchange.open_orders(coin), drained=drained,
            drain_wall_s=DRAIN_WALL_S, feed_venue=False, clamp_timer=True, kill_store=kill_store, log=log,
            metrics=metrics, tasks=(drive, *((painter,) if ui is not None else ())), install_signals=install_signals,
            on_loop_end=loop_end, drain_step=drain_step,
        )
        snap = end.snapshot
        summary = build_summary(
            stats,
            end_ts=min(end.t_stop, end_ts) if end.stopped_by == "duration" else end.t_stop,
            max_position_usd=max_pos_usd,
            portfolio=engine.portfolio,
            kill=kill_reason(engine),
            wall_s=end.wall_s,
            mode="paper",
            venue_position=snap.position if snap is not None else None,
            extra={"source": source.description, "speed": speed, "stopped_by": end.stopped_by,
                   "resting_after_shutdown": end.resting_after_shutdown,
                   "crossing_at_send": end.crossing_at_send, "crossing_own_at_send": end.crossing_own_at_send,
                   "late_market": venue.stats["late_market"], "silent_waits": venue.stats["silent_waits"]},
        )
        return PaperResult(summary=summary, engine=engine, venue=venue, stats=stats, stopped_by=end.stopped_by,
                           metrics_port=metrics.port if metrics is not None else None)
    finally:
        await venue.close()  # idempotent; closes the delivery task when the session failed half-way
        if metrics is not None:
            await asyncio.to_thread(metrics.close)
