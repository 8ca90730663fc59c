"""SimVenue: the async ``Venue`` for paper mode, backed by a ``SimExchange``.

Paper runs the simulated exchange on the **exchange clock**, like a backtest (see ``hlmm/sim/README.md``, "Paper
mode"): each market event is applied at its exchange stamp (``feed_market``), and an action batch that reaches
the matching engine at exchange time ``T`` (local send time + order latency) is *held* until the market data the
exchange had at ``T`` has arrived: until an event stamped past ``T`` is fed (the backtest's rule), or, on a silent
market, until the feed's observed latency (bounded by ``max_hold_s``) has passed - then it is matched with what
is known, and counted. Paper cannot look ahead, so a result is handed to the sink at ``max(delivery time, now)``
and stamped with the time it is actually handed over. A background task (or a virtual-time driver calling
``pump``) releases held batches and delivers due events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from hlmm.market.events import Bbo, BookSnapshot, MarketEvent, RefQuote, Trade
from hlmm.sim.exchange import SimExchange
from hlmm.venue.base import AccountSnapshot, EventSink, VenueAction, VenueEvent, VenueStatus

log = structlog.get_logger(__name__)
CLOSE_TIMEOUT_S = 2.0  # close() never waits longer than this for the delivery task
MAX_HOLD_S = 2.0  # longest wait for the market data of an order's arrival time (a silent or stalled feed)
LATENCY_WINDOW = 512  # feed latency = the largest (ts - ts_exchange) of this many recent stamped events
_STAMPED = (BookSnapshot, Bbo, Trade)


class SimVenueError(RuntimeError):
    """The venue cannot be used: not started, closed, or its delivery task failed."""


class SimVenue:
    """Async order venue over a simulated exchange. ``clock`` is injectable (tests use a fake clock)."""

    def __init__(self, exchange: SimExchange, clock: Callable[[], float] = time.time, poll_s: float = 0.02,
                 max_hold_s: float = MAX_HOLD_S, background: bool = True) -> None:
        """``background=False``: no delivery task; the caller drives ``pump`` (the virtual-time paper driver)."""
        if not math.isfinite(poll_s) or poll_s <= 0:
            raise SimVenueError(f"poll_s must be finite and > 0, got {poll_s!r}")
        if not math.isfinite(max_hold_s) or max_hold_s < 0:
            raise SimVenueError(f"max_hold_s must be finite and >= 0, got {max_hold_s!r}")
        self.exchange = exchange
        self._clock = clock
        self._poll_s = poll_s
        self._max_hold_s = max_hold_s
        self._background = background
        self._sink: EventSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self.error: BaseException | None = None
        self._known = -math.inf  # exchange time up to which the feed is complete (the backtest's "limit")
        self._released = -math.inf  # latest arrival time matched so far
        self._lat: deque[tuple[int, float]] = deque()  # sliding-window max of the feed latency (index, latency)
        self._n_stamped = 0
        self._feed_ended = False
        # held_by_data: released by market data stamped past the arrival (as the backtest does);
        # held_timeout: released after the bounded wait (silent market), matched with what was known;
        # late_market: a market event stamped at or before an arrival already matched (the wait was too short).
        self.stats: Counter[str] = Counter()

    # ---- Venue protocol -------------------------------------------------
    def set_event_sink(self, sink: EventSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        if self._closed:
            raise SimVenueError("SimVenue is closed")
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        if self._background:
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
        self._release_due(now)
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
    @property
    def max_hold_s(self) -> float:
        return self._max_hold_s

    @property
    def hold_s(self) -> float:
        """How long an arrival waits for its market data on a silent feed: the feed's recent largest latency,
        at most ``max_hold_s`` (``max_hold_s`` before any stamped event; 0 once the feed has ended)."""
        if self._feed_ended:
            return 0.0
        if not self._lat:
            return self._max_hold_s
        return max(0.0, min(self._lat[0][1], self._max_hold_s))  # a clock skewed ahead: no negative wait

    def feed_market(self, ev: MarketEvent) -> None:
        """Apply a market event at its exchange stamp, as the backtest does: arrivals stamped before the event
        are matched first (the data they waited for is complete up to here), then the event is applied.

        Only Hyperliquid events with an exchange stamp (book, BBO, trade) move the known exchange time; an
        ``AssetCtx`` (no exchange stamp) is applied at the known time, a ``RefQuote`` (another venue) is ignored.
        Results are delivered by ``pump`` (the background task, or whoever drives the venue)."""
        ex = self.exchange
        tp = type(ev)
        if tp in _STAMPED:
            te = ev.ts_exchange  # type: ignore[union-attr]
            self._observe_latency(ev.ts - te)
            limit = min(te, ev.ts)  # the backtest's limit: a clock skewed ahead counts as no latency
            if limit <= self._released:
                self.stats["late_market"] += 1
            while (ta := ex.next_arrival()) is not None and ta < limit:
                ex.advance_to(ta)
                self.stats["held_by_data"] += 1
                self._released = max(self._released, ta)
            if limit > self._known:
                self._known = limit
            ex.on_market(ev)
        elif tp is not RefQuote:  # AssetCtx, Timer: no exchange stamp; never releases a held arrival
            ex.on_market(ev, at=self._known if self._known > -math.inf else ev.ts)
        self._poke()

    def end_feed(self) -> None:
        """No more market data will come (the session is shutting down): arrivals are matched at their time."""
        self._feed_ended = True
        self._poke()

    def next_time(self) -> float | None:
        """Local time of the next thing ``pump`` would do: a held arrival's timeout or a result's delivery."""
        ta = self.exchange.next_arrival()
        td = self.exchange.next_delivery()
        t = min(math.inf if ta is None else ta + self.hold_s, math.inf if td is None else td)
        return None if t == math.inf else t

    def pump(self) -> int:
        """Release held arrivals whose wait is over and deliver every due event (stamped with the time it is
        handed over, never earlier than its delivery time). Returns how many were delivered."""
        if self._sink is None:
            return 0
        now = self._clock()
        self._release_due(now)
        events = self.exchange.pop_events(now)
        for ev in events:
            self._sink(_restamp(ev, now))
        return len(events)

    def _release_due(self, now: float) -> None:
        ex, hold = self.exchange, self.hold_s
        while (ta := ex.next_arrival()) is not None and ta + hold <= now:
            ex.advance_to(ta)
            if hold > 0:
                self.stats["held_timeout"] += 1
            self._released = max(self._released, ta)

    def _observe_latency(self, lat: float) -> None:
        # Sliding-window maximum (monotonic deque): O(1) amortised per event.
        i = self._n_stamped
        self._n_stamped += 1
        q = self._lat
        while q and q[-1][1] <= lat:
            q.pop()
        q.append((i, lat))
        if q[0][0] <= i - LATENCY_WINDOW:
            q.popleft()

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
            nxt = self.next_time()
            delay = self._poll_s if nxt is None else min(self._poll_s, max(nxt - self._clock(), 0.0))
            wake.clear()
            if self._closed:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay if delay > 0 else 0.001):
                    await wake.wait()


def _restamp(ev: VenueEvent, now: float) -> VenueEvent:
    """The engine receives ``ev`` now: a result held for its market data is not back-dated."""
    ts = getattr(ev, "ts", None)
    if ts is None or ts >= now:
        return ev
    return dataclasses.replace(ev, ts=now)
