"""Paper runner (async): the same EngineCore against the async SimVenue, paced in real time.

The market source is replayed against a clock: simulated time = start + (wall elapsed) x ``speed``.
A ``speed`` above 1 runs the simulated market faster than real time (the demo uses it to show fills in
seconds on a sparse market). Everything that touches the engine runs in one consumer coroutine fed by
a queue (market events, venue events, timer ticks): :func:`hlmm.engine.session.run_session`, the same loop the
live runner runs, so the engine is never re-entered.

SIGINT/SIGTERM (when ``install_signals``) set the stop event: the engine cancels everything it has, the
venue cancels all resting orders as a backstop, remaining venue events are drained, then the summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hlmm.config import Config
from hlmm.engine.runner import (
    MarketSource,
    RunnerError,
    build_engine,
    kill_reason,
    peek_start,
    start_metrics,
)
from hlmm.engine.session import Item, run_session
from hlmm.engine.summary import LIVE_STATS_MAX, RunStats, build_summary
from hlmm.report.terminal import View, view_from_engine

DRAIN_WALL_S = 2.0


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
) -> PaperResult:
    """Paper-trade ``source`` for ``duration_s`` simulated seconds (or until stopped).

    ``metrics_port`` (0 = any free port) serves Prometheus ``/metrics`` on 127.0.0.1 while the session runs."""
    from hlmm.sim.exchange import SimExchange
    from hlmm.sim.latency import LatencyModel
    from hlmm.sim.venue import SimVenue

    coin = source.coin
    if source.start_ts is None:
        start_ts, events = peek_start(source.events)  # a recording: its own clock, paced from its start
    else:
        start_ts, events = source.start_ts, iter(source.events)
    clock = SimClock(start_ts, speed)
    engine = build_engine(cfg, coin, source.registry, start_ts, kill_store, log, load_kill)
    if source.warm_mids or source.warm_trades:
        engine.warm_start(mids=source.warm_mids, trades=source.warm_trades)
    exchange = SimExchange(source.registry, latency or LatencyModel(seed=seed), queue=queue, seed=seed)
    venue = SimVenue(exchange, clock=clock)
    stats = RunStats(coin, start_ts, max_points=LIVE_STATS_MAX)  # days-long sessions: bounded series
    engine.use_live_bounds()  # recorder series, finished orders, fill keys
    max_pos_usd = cfg.coin(coin).risk.max_position_usd
    stop = stop or asyncio.Event()
    q: asyncio.Queue[Item] = asyncio.Queue()
    venue.set_event_sink(lambda ev: q.put_nowait(("v", ev)))
    await venue.start()

    end_ts = start_ts + duration_s

    async def pump() -> None:
        for n, ev in enumerate(events):
            if ev.ts > end_ts or stop.is_set():
                break
            d = clock.wall_delay(ev.ts)
            if d > 0:
                await asyncio.sleep(d)
            elif n % 256 == 0:
                await asyncio.sleep(0)  # behind schedule: still let the consumer and venue run
            q.put_nowait(("m", ev))
        q.put_nowait(("end", None))

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
            engine, venue, stats, q, stop, coin=coin, clock=clock, end_ts=end_ts, timer_wall_s=timer_interval_s / speed,
            resting=lambda: venue.exchange.open_orders(coin), drained=drained, drain_wall_s=DRAIN_WALL_S,
            feed_venue=True, clamp_timer=True, kill_store=kill_store, log=log, metrics=metrics,
            tasks=(pump, painter) if ui is not None else (pump,), install_signals=install_signals,
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
                   "crossing_at_send": end.crossing_at_send, "crossing_own_at_send": end.crossing_own_at_send},
        )
        return PaperResult(summary=summary, engine=engine, venue=venue, stats=stats, stopped_by=end.stopped_by,
                           metrics_port=metrics.port if metrics is not None else None)
    finally:
        await venue.close()  # idempotent; closes the delivery task when the session failed half-way
        if metrics is not None:
            await asyncio.to_thread(metrics.close)
