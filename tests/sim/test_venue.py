"""SimVenue paper flow with a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hlmm.market.events import Bbo, BookLevel, BookSnapshot, Trade
from hlmm.market.instrument import default_registry
from hlmm.sim.exchange import SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.sim.venue import SimVenue, SimVenueError
from hlmm.venue.base import (
    Fill,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
    Venue,
    VenueEvent,
    VenueStatus,
)

COIN = "HYPE"


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def until(cond: Callable[[], bool], tries: int = 500) -> None:
    """Let the venue's task run until ``cond`` holds (bounded; no timing assertion)."""
    for _ in range(tries):
        if cond():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")


def snap(t: float) -> BookSnapshot:
    return BookSnapshot(COIN, t, t - 0.05, (BookLevel(29.99, 5.0),), (BookLevel(30.01, 5.0),))


@pytest.fixture
def setup() -> tuple[SimVenue, FakeClock, list[VenueEvent]]:
    clock = FakeClock(1000.0)
    ex = SimExchange(default_registry(), latency=LatencyModel(order_s=0.15, response_s=0.1), queue="risk_averse")
    venue = SimVenue(ex, clock=clock, poll_s=0.001)
    events: list[VenueEvent] = []
    venue.set_event_sink(events.append)
    return venue, clock, events


async def test_paper_flow_ack_fill_snapshot(setup: tuple[SimVenue, FakeClock, list[VenueEvent]]) -> None:
    venue, clock, events = setup
    as_venue: Venue = venue  # structural: SimVenue implements the Venue protocol
    assert all(callable(getattr(as_venue, m)) for m in ("set_event_sink", "start", "submit", "cancel_all", "close"))
    await venue.start()
    assert isinstance(events[0], VenueStatus) and events[0].healthy
    venue.feed_market(snap(1000.0))
    await venue.submit([PlaceOrder(COIN, "0x" + "1" * 32, True, 29.99, 1.0, Tif.ALO)])
    await asyncio.sleep(0.01)
    assert len(events) == 1  # nothing can arrive while the clock stands still
    clock.t = 1000.2  # arrived at 1000.15, ack due at 1000.25
    await asyncio.sleep(0.01)
    assert len(events) == 1
    assert (await venue.snapshot(COIN)).open_orders[0].px == 29.99
    clock.t = 1000.25
    await until(lambda: len(events) == 2)
    ack = events[1]
    assert isinstance(ack, OrderAccepted) and ack.ts == pytest.approx(1000.25)
    # A sell sweeps the level: applied at once at the current clock, the fill is delivered a response later.
    clock.t = 1001.0
    venue.feed_market(Trade(COIN, 1001.0, 1000.95, 29.99, 6.0, "A", 1))
    await asyncio.sleep(0.01)
    assert len(events) == 2
    clock.t = 1001.1
    await until(lambda: len(events) == 3)
    fill = events[2]
    assert isinstance(fill, Fill) and fill.ts == pytest.approx(1001.1) and fill.sz == 1.0
    s = await venue.snapshot(COIN)
    assert s.position == 1.0 and s.entry_px == 29.99 and s.open_orders == ()
    await venue.close()
    with pytest.raises(SimVenueError):
        await venue.submit([])


async def test_cancel_all_and_sink_failure_is_not_silent(setup: tuple[SimVenue, FakeClock, list[VenueEvent]]) -> None:
    venue, clock, events = setup
    await venue.start()
    venue.feed_market(snap(1000.0))
    await venue.submit([PlaceOrder(COIN, "0x" + "2" * 32, False, 30.05, 1.0)])
    await venue.cancel_all(COIN)
    clock.t = 1001.0
    await until(lambda: len(events) == 3)
    assert [type(e).__name__ for e in events] == ["VenueStatus", "OrderAccepted", "OrderCancelled"]

    def broken(ev: VenueEvent) -> None:
        raise RuntimeError("sink bug")

    venue.set_event_sink(broken)
    await venue.submit([PlaceOrder(COIN, "0x" + "3" * 32, False, 30.05, 1.0)])
    clock.t = 1002.0
    await until(lambda: venue.error is not None)
    with pytest.raises(SimVenueError, match="sink bug"):
        await venue.submit([])
    await venue.close()


def test_pump_without_task() -> None:
    clock = FakeClock(10.0)
    venue = SimVenue(SimExchange(default_registry(), latency=LatencyModel(0.0, 0.0)), clock=clock)
    events: list[VenueEvent] = []
    venue.set_event_sink(events.append)
    venue.feed_market(snap(10.0))
    venue.exchange.submit([PlaceOrder(COIN, "0x" + "4" * 32, True, 30.01, 1.0, Tif.IOC)], clock())
    # The order reached the exchange at 10.0, but the feed (0.05 s behind) is complete only up to 9.95: held.
    assert venue.pump() == 0 and venue.next_time() == pytest.approx(10.05)
    clock.t = 10.05  # the feed's latency has passed on a silent market: matched with what is known
    assert venue.pump() == 1 and isinstance(events[0], Fill) and not events[0].is_maker
    assert venue.stats["held_timeout"] == 1 and events[0].ts == 10.05


@pytest.mark.parametrize("poll_s", [0.001, 0.02, 5.0])
async def test_close_right_after_submit_never_hangs(poll_s: float) -> None:
    """Regression: on Python 3.11 ``wait_for`` could swallow the cancel of a close() that raced a wake-up from
    submit(), and close() then waited forever (seen in paper mode)."""
    for i in range(40):
        clock = FakeClock(1000.0)
        venue = SimVenue(SimExchange(default_registry(), latency=LatencyModel(order_s=0.0, response_s=0.0)),
                         clock=clock, poll_s=poll_s)
        venue.set_event_sink(lambda ev: None)
        await venue.start()
        venue.feed_market(snap(1000.0))
        if i % 2:
            await asyncio.sleep(0)  # let the loop reach its wait first (both interleavings are covered)
        await venue.submit([PlaceOrder(COIN, "0x" + f"{i + 1:032x}", True, 29.99, 1.0, Tif.ALO)])
        await asyncio.wait_for(venue.close(), timeout=5.0)
        with pytest.raises(SimVenueError):
            await venue.submit([])


async def test_close_is_idempotent_and_safe_before_start() -> None:
    venue = SimVenue(SimExchange(default_registry()), clock=FakeClock(1.0))
    await asyncio.wait_for(venue.close(), timeout=5.0)
    await asyncio.wait_for(venue.close(), timeout=5.0)
    with pytest.raises(SimVenueError):
        await venue.start()


def test_an_order_waits_for_the_market_data_of_its_arrival_time() -> None:
    """Paper on the exchange clock: an ALO that reaches the exchange at 1000.15 is matched against the book the
    exchange had then - including a BBO stamped 1000.10 that we only receive at 1000.30 (feed latency) - not against
    the stale book we held when the arrival time passed on our clock."""
    clock = FakeClock(1000.0)
    venue = SimVenue(SimExchange(default_registry(), latency=LatencyModel(order_s=0.15, response_s=0.1)),
                     clock=clock, max_hold_s=1.0)
    events: list[VenueEvent] = []
    venue.set_event_sink(events.append)
    venue.feed_market(Bbo(COIN, 1000.0, 999.7, 29.99, 5.0, 30.01, 5.0))  # the feed runs 0.3 s behind
    venue.exchange.submit([PlaceOrder(COIN, "0x" + "5" * 32, True, 30.00, 1.0, Tif.ALO)], clock())
    clock.t = 1000.26  # the arrival (1000.15) and its ack time (1000.25) have passed on our clock ...
    assert venue.pump() == 0  # ... but the exchange's data up to 1000.15 has not all arrived: held
    clock.t = 1000.3
    venue.feed_market(Bbo(COIN, 1000.3, 1000.1, 29.99, 5.0, 30.00, 5.0))  # the ask came down to our bid at 1000.10
    venue.feed_market(Bbo(COIN, 1000.35, 1000.2, 29.99, 5.0, 30.01, 5.0))  # stamped past the arrival: released
    clock.t = 1000.35
    assert venue.pump() == 1
    rej = events[0]
    assert isinstance(rej, OrderRejected) and rej.reason == RejectReason.POST_ONLY_CROSS
    assert rej.ts == 1000.35  # handed over late: stamped when the engine gets it, never back-dated
    assert venue.stats["held_by_data"] == 1 and venue.stats["held_timeout"] == 0
