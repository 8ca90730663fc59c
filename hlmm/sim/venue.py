"""SimVenue: the async ``Venue`` for paper mode, backed by a ``SimExchange``.

Paper mode cannot look ahead: each market event is applied the moment it arrives (``feed_market``) at the current
clock, and actions reach the matching engine after the order latency, against the book we have by then. A background
task advances the exchange to the clock and hands events to the sink once their delivery time has come, so the
engine sees acks, fills and cancels with the same delays as in a backtest.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from hlmm.market.events import MarketEvent
from hlmm.sim.exchange import SimExchange
from hlmm.venue.base import AccountSnapshot, EventSink, VenueAction, VenueStatus

log = structlog.get_logger(__name__)
CLOSE_TIMEOUT_S = 2.0  # close() never waits longer than this for the delivery task


class SimVenueError(RuntimeError):
    """The venue cannot be used: not started, closed, or its delivery task failed."""


class SimVenue:
    """Async order venue over a simulated exchange. ``clock`` is injectable (tests use a fake clock)."""

    def __init__(self, exchange: SimExchange, clock: Callable[[], float] = time.time, poll_s: float = 0.02) -> None:
        if not math.isfinite(poll_s) or poll_s <= 0:
            raise SimVenueError(f"poll_s must be finite and > 0, got {poll_s!r}")
        self.exchange = exchange
        self._clock = clock
        self._poll_s = poll_s
        self._sink: EventSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self.error: BaseException | None = None

    # ---- Venue protocol -------------------------------------------------
    def set_event_sink(self, sink: EventSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        if self._closed:
            raise SimVenueError("SimVenue is closed")
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="sim-venue")
        if self._sink is not None:
            self._sink(VenueStatus(self._clock(), True, "sim venue started"))

    async def submit(self, actions: Sequence[VenueAction]) -> None:
        self._check()
        self.exchange.submit(actions, self._clock())
        self._poke()

    async def cancel_all(self, coin: str) -> None:
        self._check()
        self.exchange.cancel_all(coin, self._clock())
        self._poke()

    async def snapshot(self, coin: str) -> AccountSnapshot:
        self._check()
        now = self._clock()
        self.exchange.advance_to(now)
        return self.exchange.snapshot(coin, now)

    async def close(self) -> None:
        """Stop the delivery task. Bounded: the loop checks the closed flag, so a cancel that races a pending
        wake-up (lost by ``asyncio.wait_for`` on Python 3.11) cannot keep it running."""
        self._closed = True
        self._poke()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
            if not done:  # cannot happen with the flag checked in the loop; never hang the caller if it does
                log.error("sim_venue_close_timeout", timeout_s=CLOSE_TIMEOUT_S)
            else:
                with contextlib.suppress(asyncio.CancelledError):
                    task.result()
        if self.error is not None:
            log.error("sim_venue_closed_after_error", error=repr(self.error))

    def heartbeat(self, ts: float) -> None:
        return None  # nothing to supervise: the simulator runs in the engine's own loop

    @property
    def budget_left(self) -> int | None:
        return None  # the simulator has no request budget

    def diagnostics(self) -> dict[str, Any]:
        return {}

    # ---- paper runner hooks ------------------------------------------------
    def feed_market(self, ev: MarketEvent) -> None:
        """Apply a market event now (a paper sim cannot look ahead); due order arrivals go first."""
        now = self._clock()
        self.exchange.advance_to(now)
        self.exchange.on_market(ev, at=now)
        self._poke()

    def pump(self) -> int:
        """Advance the exchange to the clock and deliver every due event. Returns how many were delivered."""
        if self._sink is None:
            return 0
        now = self._clock()
        self.exchange.advance_to(now)
        events = self.exchange.pop_events(now)
        for ev in events:
            self._sink(ev)
        return len(events)

    # ---- internals -----------------------------------------------------------
    def _check(self) -> None:
        if self.error is not None:
            raise SimVenueError(f"sim venue delivery task failed: {self.error!r}") from self.error
        if self._closed:
            raise SimVenueError("SimVenue is closed")

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        # Loop on the closed flag and wait with asyncio.timeout (not wait_for, which on 3.11 can swallow a cancel
        # that arrives together with a wake-up): close() always ends this loop within one iteration.
        while not self._closed:
            try:
                self.pump()
            except Exception as e:  # a failing sink must not die silently: record it, submit() raises it
                self.error = e
                log.error("sim_venue_delivery_failed", error=repr(e))
                return
            nxt = self.exchange.next_time()
            delay = self._poll_s if nxt is None else min(self._poll_s, max(nxt - self._clock(), 0.0))
            wake.clear()
            if self._closed:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay if delay > 0 else 0.001):
                    await wake.wait()
