"""The async engine session shared by the paper runner and the live runner: one loop, every mode.

Everything that touches the engine runs in this one consumer coroutine, fed by a queue of ``(kind, item)``:
``("m", MarketEvent)``, ``("v", VenueEvent)``, ``("t", ts)`` (the timer below), ``("stop", None)`` (the stop
event: SIGINT/SIGTERM when ``install_signals``) and ``("end", None)`` (the market source ran out). So the engine
is never re-entered.

Start: ``engine.sync(venue snapshot)``. Every timer tick: venue heartbeat (if it has one), ``engine.on_timer``,
kill state persisted, resting counts and metrics updated; the session ends at ``end_ts`` (timer time).
Shutdown: the engine cancels what it knows, the venue's ``cancel_all`` is the backstop (foreign/cloid-less orders
too), venue events are drained until ``drained()`` or ``drain_wall_s``, the kill state is persisted, a final venue
snapshot is taken and the venue closed. The caller builds its summary from the returned :class:`SessionEnd`.

Every exit path runs that shutdown: an exception anywhere in the loop (a crash in ``engine.on_venue``, a bad event,
a cancelled session task) first cancels everything and waits for the acks (bounded), then is re-raised (a nonzero
exit). The extra tasks and the timer run supervised (restarted with backoff when they raise); one that is still
failing after ``task_fail_bound_s`` ends the session the same way (:class:`SessionTaskError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from hlmm.engine.runner import MetricsHook, count_resting, persist_kill
from hlmm.engine.summary import RunStats
from hlmm.logsetup import EventLog, NullLogger
from hlmm.market.events import Bbo, BookSnapshot, MarketEvent, RefQuote
from hlmm.risk.kill_switch import KillSwitch
from hlmm.risk.store import KillStateStore
from hlmm.venue.base import AccountSnapshot, MarketFedVenue, Venue, VenueAction, VenueEvent
from hlmm.venue.supervise import Backoff, TaskState, supervised

Item = tuple[str, Any]
TASK_BACKOFF = Backoff(base_s=0.25, max_s=5.0)


class SessionTaskError(RuntimeError):
    """A session task kept failing beyond its bound: the session shut down (everything cancelled) because of it."""


@dataclass(slots=True)
class SessionEnd:
    stopped_by: str  # "duration" (end_ts reached or the source ended) or "signal" (the stop event)
    t_stop: float  # clock() when the loop ended, before the shutdown
    wall_s: float  # wall seconds from the session start to the venue closed
    snapshot: AccountSnapshot | None  # the venue's final AccountSnapshot (None when it failed; logged)
    crossing_at_send: int = 0  # ALO placements/modify legs that crossed the book or our own orders when sent
    crossing_own_at_send: int = 0  # of which crossed one of our own orders (issue 9 item 8)

    @property
    def resting_after_shutdown(self) -> int | None:
        return len(self.snapshot.open_orders) if self.snapshot is not None else None


class SessionEngine(Protocol):
    """What the session needs of an engine (``EngineCore`` in every mode; tests pass a recording double)."""

    kill_switch: KillSwitch

    @property
    def persist_needed(self) -> bool: ...

    def mark_persisted(self) -> None: ...

    def sync(self, snap: AccountSnapshot) -> list[VenueAction]: ...

    def on_market(self, ev: MarketEvent) -> list[VenueAction]: ...

    def on_venue(self, ev: VenueEvent) -> list[VenueAction]: ...

    def on_timer(self, ts: float) -> list[VenueAction]: ...

    def shutdown(self, ts: float) -> list[VenueAction]: ...

    def crossings_at_send(self, actions: Sequence[VenueAction]) -> tuple[int, int]: ...

    @property
    def market_mid(self) -> float | None: ...


NullLog = NullLogger  # drops everything (sessions without a log sink)


async def run_session(
    engine: SessionEngine,
    venue: Venue,
    stats: RunStats,
    q: asyncio.Queue[Item],
    stop: asyncio.Event,
    *,
    coin: str,
    clock: Callable[[], float],
    end_ts: float,
    timer_wall_s: float | None,
    resting: Callable[[], Iterable[Any]],
    drained: Callable[[], bool],
    drain_wall_s: float,
    feed_venue: bool = False,
    clamp_timer: bool = False,
    kill_store: KillStateStore | None = None,
    log: EventLog | None = None,
    metrics: MetricsHook | None = None,
    tasks: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    install_signals: bool = False,
    on_synced: Callable[[], None] | None = None,
    task_fail_bound_s: float = 30.0,
    on_loop_end: Callable[[], None] | None = None,
    drain_step: Callable[[], bool] | None = None,
) -> SessionEnd:
    """Run ``engine`` against ``venue`` on the events of ``q`` until ``end_ts``, a stop or the end of the source,
    then shut down (see the module doc).

    ``timer_wall_s``: wall seconds between timer ticks (stamped ``clock()``); with ``clamp_timer`` a tick is
    stamped no later than ``end_ts``. ``resting()``: the resting orders counted each tick. ``drained()``: true when
    nothing is left to wait for at shutdown. ``feed_venue``: every market event also goes to
    ``venue.feed_market`` (a simulated venue). ``tasks``: extra coroutine functions run alongside (a market pump,
    a UI painter), cancelled when the loop ends.

    Virtual time (the paper runner's replay driver owns the clock): ``timer_wall_s=None`` runs no wall-clock
    ticker (the driver puts the ``("t", ts)`` items); every item taken from ``q`` is marked done
    (``q.task_done``), so the driver can ``await q.join()`` before it moves the clock; ``drain_step()`` is
    called at shutdown whenever ``q`` is empty, to move the clock to the venue's next event (False: nothing left
    within its bound). ``on_loop_end()`` runs when the loop ends, before the shutdown (on every exit path)."""
    log_: EventLog = log if log is not None else NullLogger()
    if feed_venue and not isinstance(venue, MarketFedVenue):
        raise TypeError(f"feed_venue needs a venue with feed_market, got {type(venue).__name__}")
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)

    crossing = {"book": 0, "own": 0}

    async def send(actions: list[VenueAction], t: float) -> None:
        # The same at-send checks as the backtest runner: crossing the book as the engine saw it, or our own
        # orders (the tracker already holds this batch). Both must stay 0.
        book, own = engine.crossings_at_send(actions)
        crossing["book"] += book
        crossing["own"] += own
        stats.on_actions(actions, t)
        await venue.submit(actions)
        if engine.persist_needed:
            persist_kill(engine, kill_store)

    async def ticker() -> None:
        assert timer_wall_s is not None
        while True:
            await asyncio.sleep(timer_wall_s)
            q.put_nowait(("t", clock()))

    async def stopper() -> None:
        await stop.wait()
        q.put_nowait(("stop", None))

    def task_failed(st: TaskState, e: BaseException) -> None:
        if st.failing_for() > task_fail_bound_s:
            q.put_nowait(("task_failed", st))

    running: list[asyncio.Task[None]] = []
    wall0 = time.perf_counter()
    stopped_by = "duration"
    error: BaseException | None = None
    try:
        for fn in (*tasks, *((ticker,) if timer_wall_s is not None else ()), stopper):
            name = getattr(fn, "__name__", "task")
            running.append(asyncio.create_task(supervised(name, fn, task_failed, TASK_BACKOFF, log=log_)))
        await send(engine.sync(await venue.snapshot(coin)), clock())
        if on_synced is not None:
            on_synced()
        while True:
            kind, item = await q.get()
            try:
                if kind == "m":
                    ev: MarketEvent = item
                    if feed_venue:
                        cast(MarketFedVenue, venue).feed_market(ev)  # checked at the start
                    stats.n_events += 1
                    t = type(ev)
                    if t is not RefQuote and getattr(ev, "coin", coin) != coin:
                        continue
                    acts = engine.on_market(ev)
                    if (t is BookSnapshot or t is Bbo) and (mid := engine.market_mid) is not None:
                        stats.on_mid(ev.ts, mid)  # the market's mid: our own orders taken out of the book
                    if acts:
                        await send(acts, ev.ts)
                elif kind == "v":
                    stats.on_venue(item)
                    acts = engine.on_venue(item)
                    if acts:
                        await send(acts, clock())
                elif kind == "t":
                    now = min(item, end_ts) if clamp_timer else item
                    venue.heartbeat(now)
                    acts = engine.on_timer(now)
                    if acts:
                        await send(acts, now)
                    persist_kill(engine, kill_store)
                    nb, na = count_resting(resting())
                    stats.on_resting(now, nb, na)
                    if metrics is not None:
                        metrics.update(engine, now, budget_left=venue.budget_left)
                    if now >= end_ts:
                        break
                elif kind == "end":
                    break
                elif kind == "stop":
                    stopped_by = "signal"
                    break
                elif kind == "task_failed":
                    st: TaskState = item
                    raise SessionTaskError(f"session task {st.name} failing for {st.failing_for():.1f} s: "
                                           f"{st.last_error}")
            finally:
                q.task_done()  # the virtual-time driver waits on q.join()
    except BaseException as e:  # incl. cancellation: every exit path cancels everything first
        error = e
        log_.error("session_failed", error=f"{type(e).__name__}: {e}"[:500], action="cancel all, then exit")
    finally:
        for tk in running:
            tk.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)

    if on_loop_end is not None:
        try:
            on_loop_end()
        except Exception as e:  # the shutdown below must run regardless
            log_.error("on_loop_end_failed", error=f"{type(e).__name__}: {e}"[:300])
    t_stop = clock()
    if error is None:
        snap = await _shutdown(engine, venue, q, coin, clock, drained, drain_wall_s, kill_store, log_, send, stats,
                               drain_step=drain_step)
        return SessionEnd(stopped_by=stopped_by, t_stop=t_stop, wall_s=time.perf_counter() - wall0, snapshot=snap,
                          crossing_at_send=crossing["book"] + crossing["own"], crossing_own_at_send=crossing["own"])
    # After a failure each step is guarded: the engine may be the broken part, the venue's cancel-all must still go.
    try:
        await _shutdown(engine, venue, q, coin, clock, drained, drain_wall_s, kill_store, log_, send, stats,
                        guarded=True, drain_step=drain_step)
    except BaseException as e2:  # the original error is the one to report
        log_.error("shutdown_after_failure_failed", error=f"{type(e2).__name__}: {e2}"[:500])
    raise error


async def _shutdown(engine: SessionEngine, venue: Venue, q: asyncio.Queue[Item], coin: str,
                    clock: Callable[[], float], drained: Callable[[], bool], drain_wall_s: float,
                    kill_store: KillStateStore | None, log: EventLog,
                    send: Callable[[list[VenueAction], float], Coroutine[Any, Any, None]], stats: RunStats,
                    guarded: bool = False, drain_step: Callable[[], bool] | None = None) -> AccountSnapshot | None:
    """The shutdown sequence (module doc). ``guarded`` (after a failure): a step that raises is logged and the next
    step still runs, so the venue's cancel-all, the bounded wait for acks and the kill-state save always happen."""

    async def step(what: str, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        if not guarded:
            return await fn()
        try:
            return await fn()
        except Exception as e:
            log.error("shutdown_step_failed", step=what, error=f"{type(e).__name__}: {e}"[:300])
            return None

    async def engine_cancels() -> None:
        await send(engine.shutdown(clock()), clock())

    async def persist() -> None:
        persist_kill(engine, kill_store)

    # Shutdown: the engine cancels what it knows; the venue's cancel-all is the backstop (foreign/cloid-less too).
    await step("engine_shutdown", engine_cancels)
    try:
        await venue.cancel_all(coin)
    except Exception as e:
        log.error("shutdown_cancel_all_failed", coin=coin, error=str(e))
    deadline = time.monotonic() + drain_wall_s
    while time.monotonic() < deadline:
        if drained():
            break
        if drain_step is not None and q.empty():
            if not drain_step():
                break
            await asyncio.sleep(0)  # let the venue's sink deliver what the step released
            continue
        try:
            kind, item = await asyncio.wait_for(q.get(), timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if kind == "v":
            stats.on_venue(item)

            async def on_venue(ev: Any = item) -> None:
                acts = engine.on_venue(ev)
                if acts:
                    await send(acts, clock())

            await step("drain", on_venue)
    await step("persist_kill", persist)
    snap: AccountSnapshot | None = None
    try:
        snap = await venue.snapshot(coin)
    except Exception as e:
        log.error("final_snapshot_failed", error=str(e))
    await step("venue_close", venue.close)
    return snap
