"""The engine session shared by the paper and live runners: event routing, timer, stop, shutdown sequence."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hlmm.engine.session import run_session
from hlmm.engine.summary import RunStats
from hlmm.market.events import Bbo, RefQuote
from hlmm.venue.base import CancelOrder, VenueStatus

COIN = "BTC"
T0 = 1_000.0


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.persist_needed = False
        self.live: list[Any] = [object()]  # one order resting until the cancel ack comes back

    def sync(self, snap: Any) -> list[Any]:
        self.calls.append(("sync", snap.position))
        return []

    def on_market(self, ev: Any) -> list[Any]:
        self.calls.append(("market", ev))
        if isinstance(ev, Bbo) and ev.bid_px is not None and ev.ask_px is not None:
            self.market_mid = 0.5 * (ev.bid_px + ev.ask_px)  # the engine's market view (no own orders here)
        return []

    def on_venue(self, ev: Any) -> list[Any]:
        self.calls.append(("venue", ev))
        if isinstance(ev, VenueStatus) and ev.detail == "cancel ack":
            self.live = []
        return []

    def on_timer(self, t: float) -> list[Any]:
        self.calls.append(("timer", t))
        return []

    def crossings_at_send(self, actions: Any) -> tuple[int, int]:
        return 0, 0

    market_mid: float | None = None

    def shutdown(self, t: float) -> list[Any]:
        self.calls.append(("shutdown", t))
        return [CancelOrder(COIN, "c1", "shutdown")]

    def mark_persisted(self) -> None:
        self.persist_needed = False


class FakeVenue:
    def __init__(self, q: asyncio.Queue[Any], clock: Any) -> None:
        self.q, self.clock = q, clock
        self.log: list[str] = []
        self.fed: list[Any] = []
        self.heartbeats: list[float] = []

    async def snapshot(self, coin: str) -> Any:
        self.log.append("snapshot")
        return SimpleNamespace(position=0.5, open_orders=())

    async def submit(self, actions: list[Any]) -> None:
        self.log.append(f"submit{len(actions)}")

    async def cancel_all(self, coin: str) -> None:
        self.log.append("cancel_all")
        self.q.put_nowait(("v", VenueStatus(self.clock(), True, "cancel ack")))

    async def close(self) -> None:
        self.log.append("close")

    def feed_market(self, ev: Any) -> None:
        self.fed.append(ev)

    def heartbeat(self, t: float) -> None:
        self.heartbeats.append(t)

    # the rest of the Venue protocol (hlmm/venue/base.py)
    def set_event_sink(self, sink: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    @property
    def budget_left(self) -> int | None:
        return None

    def diagnostics(self) -> dict[str, Any]:
        return {}


def _setup() -> tuple[FakeEngine, FakeVenue, RunStats, asyncio.Queue[Any], list[float]]:
    now = [T0]
    q: asyncio.Queue[Any] = asyncio.Queue()
    return FakeEngine(), FakeVenue(q, lambda: now[0]), RunStats(COIN, T0), q, now


async def test_routes_events_filters_other_coins_and_shuts_down_in_order() -> None:
    engine, venue, stats, q, now = _setup()
    mine = Bbo(COIN, T0 + 1, T0 + 1, 99.0, 1.0, 101.0, 1.0)
    other = Bbo("ETH", T0 + 1, T0 + 1, 9.0, 1.0, 11.0, 1.0)
    ref = RefQuote("btcusdt", T0 + 1, T0 + 1, 100.0, 100.2)
    for ev in (mine, other, ref):
        q.put_nowait(("m", ev))
    q.put_nowait(("t", T0 + 5.0))  # past end_ts: clamped, then the session ends on its duration
    now[0] = T0 + 5.0
    synced: list[bool] = []

    end = await run_session(
        engine, venue, stats, q, asyncio.Event(), coin=COIN, clock=lambda: now[0], end_ts=T0 + 2.0,
        timer_wall_s=3600.0, resting=lambda: [], drained=lambda: not engine.live, drain_wall_s=2.0,
        feed_venue=True, clamp_timer=True, on_synced=lambda: synced.append(True),
    )

    assert synced == [True]
    assert end.stopped_by == "duration" and end.t_stop == T0 + 5.0
    assert end.resting_after_shutdown == 0 and end.snapshot.position == 0.5
    assert venue.fed == [mine, other, ref]  # a simulated venue sees every market event
    assert [c for c in engine.calls if c[0] == "market"] == [("market", mine), ("market", ref)]
    assert ("timer", T0 + 2.0) in engine.calls and venue.heartbeats == [T0 + 2.0]
    assert stats.n_events == 3 and stats.mid_px[0] == 100.0
    # shutdown -> its cancels sent -> cancel_all backstop -> acks drained -> final snapshot -> close
    assert venue.log == ["snapshot", "submit0", "submit1", "cancel_all", "snapshot", "close"]
    assert engine.calls[-2][0] == "shutdown" and engine.calls[-1][1].detail == "cancel ack"


async def test_stop_event_ends_the_session_and_extra_tasks_are_cancelled() -> None:
    engine, venue, stats, q, now = _setup()
    stop = asyncio.Event()
    cancelled: list[bool] = []

    async def extra() -> None:
        try:
            stop.set()
            await asyncio.sleep(3600.0)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    end = await run_session(
        engine, venue, stats, q, stop, coin=COIN, clock=lambda: now[0], end_ts=T0 + 60.0, timer_wall_s=3600.0,
        resting=lambda: [], drained=lambda: not engine.live, drain_wall_s=2.0, tasks=(extra,),
    )
    assert end.stopped_by == "signal"
    assert cancelled == [True]
    assert venue.fed == []
    assert "cancel_all" in venue.log and venue.log[-1] == "close"


async def test_failing_backstop_and_snapshot_are_logged_not_raised() -> None:
    engine, venue, stats, q, now = _setup()
    errors: list[str] = []

    class Log:
        def error(self, event: str, **kw: Any) -> None:
            errors.append(event)

    async def boom(coin: str) -> Any:
        raise RuntimeError("down")

    q.put_nowait(("end", None))
    snapshot = venue.snapshot

    async def first_snapshot_only(coin: str) -> Any:
        venue.snapshot = boom  # type: ignore[method-assign]
        return await snapshot(coin)

    venue.snapshot = first_snapshot_only  # type: ignore[method-assign]
    venue.cancel_all = boom  # type: ignore[method-assign]
    end = await run_session(
        engine, venue, stats, q, asyncio.Event(), coin=COIN, clock=lambda: now[0], end_ts=T0 + 60.0,
        timer_wall_s=3600.0, resting=lambda: [], drained=lambda: True, drain_wall_s=0.5, log=Log(),
    )
    assert end.stopped_by == "duration" and end.snapshot is None and end.resting_after_shutdown is None
    assert errors == ["shutdown_cancel_all_failed", "final_snapshot_failed"]
    assert venue.log[-1] == "close"
