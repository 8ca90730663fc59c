"""run_session: any exception in the loop runs the shutdown path (engine cancels, venue cancel-all, bounded wait
for acks, kill state, close) before it propagates; session tasks are supervised."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hlmm.engine import session as session_mod
from hlmm.engine.session import run_session
from hlmm.market.events import Bbo
from hlmm.venue.base import VenueStatus
from tests.engine.test_session import COIN, T0, FakeEngine, _setup


class Boom(RuntimeError):
    pass


async def _run(engine: Any, venue: Any, stats: Any, q: Any, now: list[float], **kw: Any) -> Any:
    # Bounded: a session that fails to end fails its test instead of hanging the suite.
    return await asyncio.wait_for(run_session(
        engine, venue, stats, q, asyncio.Event(), coin=COIN, clock=lambda: now[0], end_ts=T0 + 60.0,
        timer_wall_s=3600.0, resting=lambda: [], drained=lambda: not engine.live, drain_wall_s=2.0, **kw), 20.0)


class Store:
    def __init__(self) -> None:
        self.saved = 0

    def save(self, state: Any) -> None:
        self.saved += 1


async def test_an_engine_exception_runs_the_shutdown_then_propagates() -> None:
    engine, venue, stats, q, now = _setup()

    class Crashing(FakeEngine):
        def on_venue(self, ev: Any) -> list[Any]:
            if isinstance(ev, VenueStatus) and ev.detail == "crash":
                raise Boom("engine bug")
            return super().on_venue(ev)

    engine = Crashing()
    engine.kill_switch = type("KS", (), {"state": None})()  # type: ignore[attr-defined]
    engine.persist_needed = True
    store = Store()
    q.put_nowait(("v", VenueStatus(T0, True, "crash")))
    with pytest.raises(Boom, match="engine bug"):
        await _run(engine, venue, stats, q, now, kill_store=store)
    # same sequence as a normal shutdown: cancels sent, cancel-all backstop, acks drained, snapshot, close
    assert venue.log == ["snapshot", "submit0", "submit1", "cancel_all", "snapshot", "close"]
    assert any(c[0] == "shutdown" for c in engine.calls) and engine.calls[-1][1].detail == "cancel ack"
    assert store.saved == 1


async def test_a_market_handler_exception_also_cancels() -> None:
    engine, venue, stats, q, now = _setup()

    def on_market(ev: Any) -> list[Any]:
        raise Boom("market bug")

    engine.on_market = on_market  # type: ignore[method-assign]
    q.put_nowait(("m", Bbo(COIN, T0 + 1, T0 + 1, 99.0, 1.0, 101.0, 1.0)))
    with pytest.raises(Boom):
        await _run(engine, venue, stats, q, now)
    assert "cancel_all" in venue.log and venue.log[-1] == "close"


async def test_a_broken_engine_shutdown_still_lets_the_venue_cancel_all() -> None:
    engine, venue, stats, q, now = _setup()

    def on_market(ev: Any) -> list[Any]:
        raise Boom("market bug")

    def shutdown(t: float) -> list[Any]:
        raise KeyError("shutdown bug too")

    engine.on_market = on_market  # type: ignore[method-assign]
    engine.shutdown = shutdown  # type: ignore[method-assign]
    q.put_nowait(("m", Bbo(COIN, T0 + 1, T0 + 1, 99.0, 1.0, 101.0, 1.0)))
    with pytest.raises(Boom):  # the original error is the one reported
        await _run(engine, venue, stats, q, now)
    assert "cancel_all" in venue.log and venue.log[-1] == "close"


async def test_cancelling_the_session_cancels_everything_first() -> None:
    engine, venue, stats, q, now = _setup()
    task = asyncio.create_task(_run(engine, venue, stats, q, now))
    for _ in range(200):
        if "snapshot" in venue.log:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "cancel_all" in venue.log and venue.log[-1] == "close"


async def test_a_failing_task_is_restarted() -> None:
    engine, venue, stats, q, now = _setup()
    runs: list[int] = []
    stop = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise Boom("task bug")
        stop.set()

    end = await asyncio.wait_for(run_session(
        engine, venue, stats, q, stop, coin=COIN, clock=lambda: now[0], end_ts=T0 + 60.0, timer_wall_s=3600.0,
        resting=lambda: [], drained=lambda: not engine.live, drain_wall_s=2.0, tasks=(flaky,)), 20.0)
    assert end.stopped_by == "signal" and len(runs) == 3


async def test_a_task_failing_past_its_bound_ends_the_session_with_cancel_all() -> None:
    engine, venue, stats, q, now = _setup()

    async def broken() -> None:
        await asyncio.sleep(0.01)
        raise Boom("always")

    with pytest.raises(session_mod.SessionTaskError, match="broken"):
        await _run(engine, venue, stats, q, now, tasks=(broken,), task_fail_bound_s=0.0)
    assert "cancel_all" in venue.log and venue.log[-1] == "close"
