"""What the live adapter knows: per-order tables, send queues, health flags, counters, and the event emission
(with de-duplication) that every part of the adapter uses. The parts themselves (sending, account sync,
supervision) are mixins over this state, composed into ``HyperliquidVenue`` in ``adapter.py``."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hlmm.market.instrument import InstrumentRegistry
from hlmm.venue.base import (
    CancelOrder,
    EventSink,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    VenueEvent,
)
from hlmm.venue.hyperliquid.budget import RequestBudget
from hlmm.venue.hyperliquid.validate import BadInputCounter, BadMessage
from hlmm.venue.supervise import Backoff, TaskState

SCHEDULE_CANCEL_REFUSED = "cannot set scheduled cancel time"
SCHEDULE_CANCEL_MIN_S = 5.0  # the exchange refuses a scheduleCancel time less than 5 s after its own clock
DEAD_MAN_MARGIN_S = 1.5  # request latency + clock skew: a 5 s dead man's switch is sent as now + 6.5 s
CANCEL_CHECK_S = 1.0  # openOrders check period while a cancel has no verdict (refused, rate-limited)
USER_CHANNELS = frozenset({"orderUpdates", "userFills", "user"})
# Fill keys remembered for de-duplication (FIFO). Within a process a fill comes back only in a venue replay (the
# userFills WS snapshot after a reconnect, a REST userFills resync), which carries at most the account's 2000 most
# recent fills: any replayed fill is among the last 2000 keys seen, so 20000 is ten times the margin (the engine's
# own windows, hlmm.engine.recent.LIVE_FILL_KEYS, and the durable fill journal across restarts sit behind this).
_SEEN_FILLS_MAX = 20_000
DEGRADED_WINDOW_S = 60.0  # health reads "degraded" this long after a bad message or a task failure
TASK_BACKOFF = Backoff(base_s=0.5, max_s=10.0)  # restart delays of the supervised background tasks
RESYNC_BACKOFF = Backoff(base_s=0.25, max_s=5.0)  # retries of a failed resync (REST error or bad reply)
# Finished orders (cancelled, rejected, filled) kept so late user-stream updates and fills of recently finished
# orders still de-duplicate and map oid -> cloid; older ones are forgotten (the tracker keeps its own bounded
# history and counts anything later as a late/unknown event; a fill is de-duplicated by (tid, oid), not by this
# table). Late updates arrive within seconds: 500 orders are minutes of history even at the fastest requoting,
# and the tables (O(live + 2 * this)) reach their steady size within minutes, so the memory is flat after that.
KEEP_FINISHED = 500


class VenueError(RuntimeError):
    """The adapter cannot do what was asked (not started, unknown coin, ...)."""


class _NullLog:
    def _noop(self, event: str, **kw: Any) -> None:
        return None

    debug = info = warning = error = _noop



@dataclass(slots=True)
class _Order:
    """What the adapter knows about one order of ours (by cloid)."""

    coin: str
    cloid: str
    is_buy: bool
    px: float
    sz: float
    oid: int | None = None
    remaining: float = 0.0
    changed_ts: float = 0.0
    tif: str = "Alo"
    gen: int = 0  # bumped by every modify: one rejection event per request



class AdapterState:
    """State shared by the adapter's parts. The methods declared abstract here are implemented by one part and
    called by another (see ``adapter.py`` for the composition)."""

    def __init__(
        self,
        info: Any,
        exchange: Any,
        registry: InstrumentRegistry,
        *,
        account: str,
        coins: Iterable[str],
        ws: Any = None,
        clock: Callable[[], float] = time.time,
        batch_interval_s: float = 0.1,
        dead_man_s: float = 30.0,
        dead_man_refresh_s: float | None = None,
        watchdog_grace_s: float = 3.0,
        stall_s: float = 10.0,
        reconcile_interval_s: float = 30.0,
        budget_refresh_s: float = 60.0,
        budget_reserve: int = 200,
        uncertain_delay_s: float = 1.0,
        task_fail_bound_s: float = 15.0,
        keep_finished: int = KEEP_FINISHED,
        log: Any = None,
    ) -> None:
        self.info = info
        self.exchange = exchange
        self.registry = registry
        self.account = account.lower()
        self.coins = list(coins)
        for c in self.coins:
            registry.get(c)  # unknown coin -> UnknownCoinError now, not at the first order
        self.ws = ws
        self._clock = clock
        self.batch_interval_s = batch_interval_s
        if dead_man_s < 5:
            raise VenueError(f"dead_man_s must be >= 5 (exchange minimum), got {dead_man_s}")
        self.dead_man_s = dead_man_s
        self.dead_man_refresh_s = dead_man_refresh_s or max(1.0, dead_man_s / 3.0)
        self.watchdog_grace_s = watchdog_grace_s
        self.stall_s = stall_s
        self.reconcile_interval_s = reconcile_interval_s
        self.budget_refresh_s = budget_refresh_s
        self.uncertain_delay_s = uncertain_delay_s
        self.task_fail_bound_s = task_fail_bound_s
        self.log = log if log is not None else _NullLog()
        # Bad venue messages: dropped before the engine, counted per kind (first of each kind logged).
        self.bad_input = BadInputCounter(self.log, "hyperliquid", clock)
        # Supervised background tasks by name (watchdog, dead_man, reconcile, budget, flusher, resync, resolve).
        self.task_states: dict[str, TaskState] = {}
        self._resync_wanted = False  # a resync (with retries) is running or scheduled
        self._resync_failures = 0
        self.budget = RequestBudget(reserve=budget_reserve)
        self._sink: EventSink | None = None
        self._orders: dict[str, _Order] = {}
        self._oid_cloid: dict[int, str] = {}
        self._acked: set[tuple[str, int]] = set()
        self._ended: set[tuple[str, int | None]] = set()
        self._rejected: set[tuple[str, int]] = set()
        self._seen_fills: set[tuple[int, int]] = set()
        self._seen_fills_q: deque[tuple[int, int]] = deque()
        self._status_ref: dict[str, int] = {}  # cloid (placeholder) -> oid for orders we address by oid
        self.keep_finished = max(1, int(keep_finished))
        self._prune_at = 2 * self.keep_finished  # next table size that triggers a sweep (amortised O(1)/order)
        self._stale_prev: set[tuple[str, Any]] = set()  # non-current entries seen by the last sweep
        self._q_cancel: list[CancelOrder] = []
        self._q_modify: list[ModifyOrder] = []
        self._q_place: list[PlaceOrder] = []
        self._flush_wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._last_flush = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._closing = False
        self._t0_ms = 0
        # health
        self._ws_up = ws is None
        self._rest_failures = 0
        self._heartbeat_ts: float | None = None
        self._healthy = True
        self._unhealthy_since: float | None = None
        self._watchdog_fired = False
        self._resyncing = False
        # dead man's switch
        self.dead_man_supported: bool | None = None  # None: not tried yet
        self.dead_man_until_ms: int | None = None
        self.dead_man_detail = ""
        self._dead_man_sent = False
        # counters
        self.stats: dict[str, int] = {k: 0 for k in (
            "actions", "orders_sent", "cancels_sent", "modifies_sent", "rejected_local", "uncertain", "resyncs",
            "watchdog_cancel_all", "dead_man_refreshes", "fills", "duplicate_fills", "reconcile_mismatch",
            "bad_input", "task_failures", "reconciles",
            "cancel_failed", "rate_limited", "cancel_all_info_failed",
        )}
        self.rate_limited_until = 0.0  # health flag of its own: refused by a rate limit until then (not unhealthy)
        self._cancel_unsettled: set[str] = set()  # cloids whose cancel got no verdict: openOrders checked often

    def set_event_sink(self, sink: EventSink) -> None:
        self._sink = sink

    def prune(self) -> None:
        """Forget finished orders beyond the ``keep_finished`` most recent, and their leg entries.

        Kept: every live order (remaining > 0, or queued for sending) with its current (cloid, oid) leg, and the
        ``keep_finished`` most recently changed finished orders. Any other entry (an old oid of a modified order,
        a foreign placeholder, a leg of a forgotten order) is dropped once it has survived one whole sweep
        interval (two-generation scheme), so a late update still finds it for at least that long."""
        queued = ({p.cloid for p in self._q_place} | {m.cloid for m in self._q_modify}
                  | {c.cloid for c in self._q_cancel})
        finished = [o for o in self._orders.values() if o.remaining <= 0 and o.cloid not in queued]
        if len(finished) > self.keep_finished:
            finished.sort(key=lambda o: o.changed_ts)
            for o in finished[: len(finished) - self.keep_finished]:
                del self._orders[o.cloid]
        orders = self._orders

        def current(cloid: str, oid: int | None) -> bool:
            o = orders.get(cloid)
            return o is not None and (oid is None or o.oid is None or o.oid == oid)

        stale: set[tuple[str, Any]] = set()
        prev = self._stale_prev

        def keep(table: str, key: Any, is_current: bool) -> bool:
            if is_current:
                return True
            tag = (table, key)
            if tag in prev:
                return False
            stale.add(tag)
            return True

        self._oid_cloid = {oid: c for oid, c in self._oid_cloid.items()
                           if keep("oid", oid, current(c, oid) or c in queued)}
        self._status_ref = {c: oid for c, oid in self._status_ref.items()
                            if keep("ref", c, current(c, oid) or c in queued)}
        self._acked = {k for k in self._acked if keep("acked", k, current(*k))}
        self._ended = {k for k in self._ended if keep("ended", k, current(*k))}
        self._rejected = {k for k in self._rejected
                          if keep("rejected", k, (ko := orders.get(k[0])) is not None and ko.gen == k[1])}
        self._stale_prev = stale
        self._prune_at = len(self._orders) + len(self._oid_cloid) + 2 * self.keep_finished

    def table_sizes(self) -> dict[str, int]:
        """Sizes of the per-order tables (for tests and diagnostics)."""
        return {"orders": len(self._orders), "oid_cloid": len(self._oid_cloid), "acked": len(self._acked),
                "ended": len(self._ended), "rejected": len(self._rejected), "status_ref": len(self._status_ref),
                "seen_fills": len(self._seen_fills)}

    def _register_oid(self, cloid: str, oid: int) -> None:
        self._oid_cloid[oid] = cloid
        o = self._orders.get(cloid)
        if o is not None and o.oid != oid:
            o.oid = oid
            o.changed_ts = self._clock()

    def _emit(self, ev: VenueEvent) -> None:
        if self._sink is None:
            raise VenueError("no event sink set: call set_event_sink before start")
        self._sink(ev)

    def _emit_accepted(self, coin: str, cloid: str, oid: int) -> None:
        key = (cloid, oid)
        if key in self._acked or key in self._ended:
            return
        self._acked.add(key)
        self._emit(OrderAccepted(self._clock(), coin, cloid, oid))

    def _emit_cancelled(self, coin: str, cloid: str, oid: int | None, reason: str) -> None:
        """``oid`` None: not known here (never sent, or the reply had none) - the order's last oid if any, else
        None ("no oid"; never a made-up number)."""
        if oid is None:
            o = self._orders.get(cloid)
            oid = o.oid if o is not None else None
        key = (cloid, oid)
        self._cancel_unsettled.discard(cloid)
        if key in self._ended:
            return
        self._ended.add(key)
        o = self._orders.get(cloid)
        if o is not None and o.oid == oid:
            o.remaining = 0.0
            o.changed_ts = self._clock()
        self._emit(OrderCancelled(self._clock(), coin, cloid, oid, reason))

    def _emit_rejected(self, coin: str, cloid: str, reason: RejectReason, message: str) -> None:
        o = self._orders.get(cloid)
        key = (cloid, o.gen if o is not None else 0)
        if key in self._rejected:
            return
        self._rejected.add(key)
        if o is not None and o.gen == 0:
            o.remaining = 0.0  # a rejected placement never rests (a rejected modify may leave the old leg)
            o.changed_ts = self._clock()
        self._emit(OrderRejected(self._clock(), coin, cloid, reason, message))

    def _bad(self, kind: str, problem: str, data: Any = None) -> None:
        """A venue message failed validation: count it (per kind, in ``stats`` too), log the first of its kind."""
        n = self.bad_input.note(kind, problem, data)
        self.stats["bad_input"] += 1
        self.stats[f"bad_{kind}"] = n

    def _checked(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` from :mod:`validate`; a BadMessage is counted, then re-raised."""
        try:
            return fn(*args)
        except BadMessage as e:
            self._bad(e.kind, e.problem, args[0] if args else None)
            raise

    # ---- implemented by the parts (sender / account_sync / supervision) --------------------------------------
    def _rest_ok(self) -> None:
        raise NotImplementedError

    def _rest_failed(self, what: str, e: Exception) -> None:
        raise NotImplementedError

    def _spawn(self, fn: Callable[[], Awaitable[Any]], name: str = "task") -> None:
        raise NotImplementedError

    def _request_resync(self, why: str) -> None:
        raise NotImplementedError

    def _apply_status(self, coin: str, cloid: str, oid: int, status: str, sz: float) -> None:
        raise NotImplementedError

    def _update_health(self, detail: str) -> None:
        raise NotImplementedError

    def _compute_health(self) -> bool:
        raise NotImplementedError

    def _task_ok(self, name: str) -> None:
        raise NotImplementedError

    async def cancel_all(self, coin: str) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError
