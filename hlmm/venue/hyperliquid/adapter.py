"""The live Hyperliquid venue: implements the ``Venue`` protocol of ``hlmm/venue/base.py``.

Orders go out in batches (every ``batch_interval_s``): cancels first (``cancelByCloid``; ``cancel`` by oid for a
``CancelOrder`` that carries one, e.g. a foreign order without a cloid), then modifies
(``batchModify``), then ALO placements, then IOC/GTC placements in their own action (the exchange prefers ALO and
cancels in a block; mixing them would slow both). Replies become venue events at once; the user stream
(``orderUpdates``, ``userFills``, ``userEvents``) confirms and completes them. Every event is de-duplicated:
acks by (cloid, oid), terminal events by (cloid, oid), fills by (tid, oid) - the same fact may arrive from the
REST reply, ``orderUpdates``, ``userFills`` and ``userEvents``.

Safety:
- dead man's switch: ``scheduleCancel(now + max(dead_man_s, 5 s + 1.5 s))`` refreshed while healthy. The exchange
  refuses times under 5 s from *its* now ("Scheduled cancel time too early"), and the request takes time to arrive:
  ``DEAD_MAN_MARGIN_S`` keeps a 5 s setting valid. Any refusal (low-volume accounts: "Cannot set scheduled cancel
  time until enough volume traded", too early, too many triggers) or a lost reply means *not armed*: the internal
  watchdog then cancels all orders (REST, by oid) as soon as health has been lost for ``watchdog_grace_s``.
- health = websocket connected, REST working, and (if the runner calls :meth:`heartbeat`) the engine loop alive.
  Losing it emits ``VenueStatus(False)``; regaining it re-syncs (missed fills from REST, then an AccountSnapshot)
  before ``VenueStatus(True)`` - Hyperliquid does not replay order updates on resubscribe.
- a lost reply (timeout, disconnect) leaves orders *uncertain*: they are resolved with ``orderStatus`` by cloid.
- request budget: ``userRateLimit`` (nRequestsCap - nRequestsUsed) tracked locally per action (a batch of n
  counts n). Below ``budget_reserve`` new placements and modifies are refused locally (RATE_LIMIT) while cancels
  still go out - quotes throttle before the exchange refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hlmm.market.instrument import InstrumentError, InstrumentRegistry, parse_coin
from hlmm.venue.base import (
    AccountSnapshot,
    CancelFailed,
    CancelOrder,
    CancelRejected,
    EventSink,
    Fill,
    Funding,
    ModifyOrder,
    OpenOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
    VenueAction,
    VenueEvent,
    VenueStatus,
)
from hlmm.venue.hyperliquid import validate, wire
from hlmm.venue.hyperliquid.errors import (
    ActionError,
    HyperliquidError,
    OrderResult,
    RateLimitError,
)
from hlmm.venue.hyperliquid.validate import BadInputCounter, BadMessage
from hlmm.venue.supervise import Backoff, TaskState, supervised

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

# orderUpdates status -> OrderCancelled.reason (anything else ending in "Canceled" keeps its own name)
_CANCEL_REASONS = {
    "canceled": "requested",
    "marginCanceled": "margin",
    "selfTradeCanceled": "self_trade",
    "reduceOnlyCanceled": "reduce_only",
    "scheduledCancel": "scheduled_cancel",
    "siblingFilledCanceled": "sibling_filled",
    "delistedCanceled": "delisted",
    "liquidatedCanceled": "liquidated",
    "vaultWithdrawalCanceled": "vault_withdrawal",
    "openInterestCapCanceled": "open_interest_cap",
}
# orderUpdates / orderStatus rejection statuses -> RejectReason
_REJECT_REASONS = {
    "rejected": RejectReason.UNKNOWN,
    "badAloPxRejected": RejectReason.POST_ONLY_CROSS,
    "tickRejected": RejectReason.TICK,
    "minTradeNtlRejected": RejectReason.MIN_VALUE,
    "perpMarginRejected": RejectReason.MARGIN,
    "perpMaxPositionRejected": RejectReason.MARGIN,
    "reduceOnlyRejected": RejectReason.REDUCE_ONLY,
    "iocCancelRejected": RejectReason.IOC_NO_MATCH,
    "oracleRejected": RejectReason.PRICE_BAND,
    "badTriggerPxRejected": RejectReason.PRICE_BAND,
    "marketOrderNoLiquidityRejected": RejectReason.IOC_NO_MATCH,
    "positionIncreaseAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "positionFlipAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "tooAggressiveAtOpenInterestCapRejected": RejectReason.OPEN_INTEREST_CAP,
    "openInterestIncreaseRejected": RejectReason.OPEN_INTEREST_CAP,
    "insufficientSpotBalanceRejected": RejectReason.MARGIN,
}


def _row_oids(rows: Any, coin: str) -> set[int]:
    """The oids of ``coin`` in a raw openOrders reply, row by row: cancel-all must cancel every good row even when
    another row is malformed (the strict validator, which rejects the whole reply, is for snapshots)."""
    out: set[int] = set()
    for r in rows if isinstance(rows, list) else ():
        if not isinstance(r, dict) or r.get("coin") != coin:
            continue
        oid = r.get("oid")
        if isinstance(oid, int) and not isinstance(oid, bool) and oid >= 0:
            out.add(oid)
    return out


def _wire_reason(e: Exception) -> RejectReason:
    """Reject reason for an order refused locally before sending (bad price, size or cloid)."""
    msg = str(e)
    if "cloid" in msg:
        return RejectReason.UNKNOWN
    return RejectReason.TICK if "price" in msg else RejectReason.SIZE


class VenueError(RuntimeError):
    """The adapter cannot do what was asked (not started, unknown coin, ...)."""


class _NullLog:
    def _noop(self, event: str, **kw: Any) -> None:
        return None

    debug = info = warning = error = _noop


# ---- request budget ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class RequestBudget:
    """Address request budget: ``cap - used`` from userRateLimit, decremented locally per action item."""

    cap: int = 10_000
    used: int = 0
    reserve: int = 200  # kept for cancels: placements stop before the exchange starts refusing
    refreshed_ts: float = 0.0
    spent_locally: int = 0

    @property
    def remaining(self) -> int:
        return self.cap - self.used

    def refresh(self, cap: int, used: int, ts: float) -> None:
        self.cap, self.used, self.refreshed_ts = int(cap), int(used), ts
        self.spent_locally = 0

    def spend(self, n: int) -> None:
        self.used += n
        self.spent_locally += n

    def allows_quotes(self, n: int) -> bool:
        """Whether ``n`` more placements/modifies leave the reserve intact."""
        return self.remaining - n >= self.reserve

    def exhausted(self) -> None:
        """The exchange said the budget is gone: believe it until the next refresh."""
        self.used = max(self.used, self.cap)


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


class HyperliquidVenue:
    """Live venue. ``info``/``exchange`` are the REST clients, ``ws`` a WsClient whose user channels are routed to
    :meth:`on_ws_message` / :meth:`on_ws_status` by the owner (one connection serves market and user data)."""

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

    # ---- Venue protocol ---------------------------------------------------------------------------------
    def set_event_sink(self, sink: EventSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        """Budget, user-stream subscriptions, WS post transport, background tasks. Snapshot/sync is the runner's."""
        if self._started:
            return
        self._started = True
        self._t0_ms = int(self._clock() * 1000)
        await self.refresh_budget()
        if self.ws is not None:
            for sub in self.user_subscriptions():
                await self.ws.subscribe(sub)
            self.exchange.attach_ws(self.ws.post)
            self._ws_up = self.ws.connected
        await self.refresh_dead_man()
        for fn, name in (
            (self._flusher, "flusher"), (self._watchdog, "watchdog"), (self._dead_man_loop, "dead_man"),
            (self._reconcile_loop, "reconcile"), (self._budget_loop, "budget"),
        ):
            # Supervised: a loop that raises is logged, degrades health and is restarted with backoff.
            self._tasks.append(asyncio.create_task(self._supervise(name, fn), name=f"hl {name}"))

    async def submit(self, actions: Sequence[VenueAction]) -> None:
        ts = self._clock()
        for a in actions:
            if isinstance(a, PlaceOrder):
                self._orders[a.cloid] = _Order(a.coin, a.cloid, a.is_buy, a.px, a.sz, remaining=a.sz, changed_ts=ts,
                                               tif=str(a.tif))
                self._q_place.append(a)
            elif isinstance(a, CancelOrder):
                queued = next((p for p in self._q_place if p.cloid == a.cloid), None)
                if queued is not None:
                    # Never sent: drop it here; a cancel racing its own placement could leave it resting.
                    self._q_place.remove(queued)
                    self._emit_cancelled(a.coin, a.cloid, None, "requested")
                    continue
                self._q_modify = [m for m in self._q_modify if m.cloid != a.cloid]
                self._q_cancel.append(a)
            elif isinstance(a, ModifyOrder):
                o = self._orders.get(a.cloid)
                if o is not None:
                    o.gen += 1
                self._q_modify.append(a)
            else:
                raise VenueError(f"unsupported action {type(a).__name__}")
        if not actions:
            return
        if len(self._orders) + len(self._oid_cloid) > self._prune_at:
            self.prune()
        if self.batch_interval_s <= 0 or not self._started:
            await self.flush()
        else:
            self._flush_wakeup.set()

    async def cancel_all(self, coin: str) -> None:
        """Backstop: cancel every open order on ``coin`` by oid (so cloid-less orders go too). First every order this
        adapter knows to be (possibly) live - no /info request needed, so it works while openOrders fails - then
        whatever a fresh openOrders shows that we did not know. Raises HyperliquidError if a cancel action failed."""
        inst = self.registry.get(coin)
        for p in [p for p in self._q_place if p.coin == coin]:
            self._q_place.remove(p)
            self._emit_cancelled(coin, p.cloid, None, "requested")
        self._q_modify = [m for m in self._q_modify if m.new.coin != coin]
        known = sorted({o.oid for o in self._orders.values()
                        if o.coin == coin and o.oid is not None and (o.cloid, o.oid) not in self._ended})
        failure: HyperliquidError | None = None
        if known:
            try:
                await self._cancel_oids(coin, inst.asset, known)
            except HyperliquidError as e:
                failure = e
        try:
            rows = await self.info.open_orders(self.account, parse_coin(coin).dex)
        except HyperliquidError as e:
            self.stats["cancel_all_info_failed"] += 1
            self.log.warning("cancel_all_open_orders_failed", coin=coin, known=len(known), error=str(e))
            rows = []
        extra = sorted(_row_oids(rows, coin) - set(known))
        if extra:
            try:
                await self._cancel_oids(coin, inst.asset, extra)
            except HyperliquidError as e:
                failure = e
        if failure is not None:
            raise failure

    async def _cancel_oids(self, coin: str, asset: int, oids: list[int]) -> None:
        items = [(asset, oid) for oid in oids]
        self.budget.spend(len(items))
        self.stats["actions"] += 1
        self.stats["cancels_sent"] += len(items)
        results = await self.exchange.cancel(items)
        for (_, oid), r in zip(items, results, strict=True):
            cloid = self._oid_cloid.get(oid)
            if cloid is None:
                continue
            if r.ok:
                self._emit_cancelled(coin, cloid, oid, "requested")
            elif r.reason == RejectReason.UNKNOWN_ORDER:
                self._cancel_unsettled.discard(cloid)
                self._emit(CancelRejected(self._clock(), coin, cloid, r.error or "cancel failed"))

    async def snapshot(self, coin: str) -> AccountSnapshot:
        """Position and open orders of ``coin`` from clearinghouseState + openOrders (account address)."""
        self.registry.get(coin)
        dex = parse_coin(coin).dex
        ch, rows = await asyncio.gather(self.info.clearinghouse_state(self.account, dex),
                                        self.info.open_orders(self.account, dex))
        ts = self._clock()
        # A bad reply raises BadMessage (a HyperliquidError): the snapshot fails as if the request had failed.
        chs = self._checked(validate.clearinghouse, ch, coin)
        pos, entry, account_value = chs.position, chs.entry_px, chs.account_value
        opens: list[OpenOrder] = []
        for r in self._checked(validate.open_orders, rows):
            if r.coin != coin:
                continue
            oid = r.oid
            cloid = r.cloid or self._oid_cloid.get(oid)
            if cloid is None:
                cloid = await self._lookup_cloid(oid)
            if cloid is not None:
                cloid = cloid.lower()
                self._oid_cloid[oid] = cloid
                o = self._orders.get(cloid)
                if o is None:
                    self._orders[cloid] = _Order(coin, cloid, r.is_buy, r.px, r.sz, oid=oid, remaining=r.sz,
                                                 changed_ts=ts)
                else:
                    o.oid, o.remaining = oid, r.sz
            opens.append(OpenOrder(coin=coin, cloid=cloid, oid=oid, is_buy=r.is_buy, px=r.px, sz=r.sz))
        return AccountSnapshot(ts=ts, coin=coin, position=pos, entry_px=entry, open_orders=tuple(opens),
                               account_value=account_value)

    async def _lookup_cloid(self, oid: int) -> str | None:
        """openOrders rows carry no cloid: ask orderStatus (its order has one) for an oid we did not place."""
        try:
            st = self._checked(validate.order_status, await self.info.order_status(self.account, oid))
        except HyperliquidError as e:
            self.log.warning("cloid_lookup_failed", oid=oid, error=str(e))
            return None
        return st.cloid if st is not None else None

    async def close(self) -> None:
        """Stop background tasks; clear the dead man's switch if we set one (nothing of ours should rest now)."""
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._dead_man_sent:  # also after a lost reply: the exchange may hold a schedule we never heard about
            with contextlib.suppress(HyperliquidError, Exception):
                await self.exchange.schedule_cancel(None)
            self.dead_man_until_ms = None
            self._dead_man_sent = False

    # ---- bounded memory -----------------------------------------------------------------------------------
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

    # ---- extras used by the runner -----------------------------------------------------------------------
    def user_subscriptions(self) -> list[dict]:
        a = self.account
        return [{"type": "orderUpdates", "user": a}, {"type": "userFills", "user": a},
                {"type": "userEvents", "user": a}]

    def heartbeat(self, ts: float) -> None:
        """Called by the runner's event loop: lets the watchdog detect a stalled engine."""
        self._heartbeat_ts = ts

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def dead_man_armed(self) -> bool:
        return self.dead_man_until_ms is not None and self.dead_man_until_ms > self._clock() * 1000

    async def flush(self) -> None:
        """Send everything queued now (cancels, modifies, ALO, then IOC/GTC)."""
        async with self._flush_lock:
            self._last_flush = time.monotonic()
            cancels, self._q_cancel = self._q_cancel, []
            modifies, self._q_modify = self._q_modify, []
            places, self._q_place = self._q_place, []
            if cancels:
                await self._send_cancels(cancels)
            if modifies:
                await self._send_modifies(modifies)
            alo = [p for p in places if p.tif == Tif.ALO]
            other = [p for p in places if p.tif != Tif.ALO]
            if alo:
                await self._send_places(alo)
            if other:
                await self._send_places(other)

    async def refresh_budget(self) -> None:
        try:
            cap, used = self._checked(validate.rate_limit, await self.info.user_rate_limit(self.account))
            self.budget.refresh(cap, used, self._clock())
            self._rest_ok()
        except HyperliquidError as e:
            self._rest_failed("userRateLimit", e)

    def dead_man_target_ms(self, now: float) -> int:
        """The scheduleCancel time sent at ``now``: ``dead_man_s`` ahead, never under the exchange minimum + margin."""
        return int((now + max(self.dead_man_s, SCHEDULE_CANCEL_MIN_S + DEAD_MAN_MARGIN_S)) * 1000)

    async def refresh_dead_man(self) -> None:
        """Arm/extend scheduleCancel while healthy. Any refusal or lost reply leaves it *not armed* (the watchdog
        covers); the volume refusal is final for this session, others are retried at the next refresh."""
        if self.dead_man_supported is False or not self._healthy:
            return
        t_ms = self.dead_man_target_ms(self._clock())
        try:
            self.budget.spend(1)
            self._dead_man_sent = True
            await self.exchange.schedule_cancel(t_ms)
        except ActionError as e:
            self.dead_man_until_ms = None
            self.dead_man_detail = e.message
            if SCHEDULE_CANCEL_REFUSED in e.message.lower():
                self.dead_man_supported = False
                self.log.warning("dead_man_refused", detail=e.message, fallback="internal watchdog cancels all")
            else:
                self.log.warning("dead_man_not_armed", detail=e.message, fallback="internal watchdog cancels all")
            return
        except HyperliquidError as e:
            self.dead_man_until_ms = None  # unknown outcome: do not count on it
            self.dead_man_detail = f"no reply: {e}"
            self.log.warning("dead_man_not_armed", detail=str(e), fallback="internal watchdog cancels all")
            self._rest_failed("scheduleCancel", e)
            return
        self._rest_ok()
        self.dead_man_supported = True
        self.dead_man_until_ms = t_ms
        self.dead_man_detail = ""
        self.stats["dead_man_refreshes"] += 1

    # ---- sending ----------------------------------------------------------------------------------------
    def _local_reject(self, p: PlaceOrder, reason: RejectReason, message: str) -> None:
        self.stats["rejected_local"] += 1
        if reason == RejectReason.RATE_LIMIT:
            self._note_rate_limited(self._clock())
        self._emit_rejected(p.coin, p.cloid, reason, message)

    async def _send_places(self, places: list[PlaceOrder]) -> None:
        if not self.budget.allows_quotes(len(places)):
            for p in places:
                self._local_reject(p, RejectReason.RATE_LIMIT,
                                   f"local request budget: {self.budget.remaining} left, reserve {self.budget.reserve}")
            return
        wires, sent = [], []
        for p in places:
            try:
                wires.append(wire.order_to_wire(self.registry.get(p.coin), p))
                sent.append(p)
            except (InstrumentError, wire.WireError) as e:
                self._local_reject(p, _wire_reason(e), str(e))
        if not sent:
            return
        self.budget.spend(len(sent))
        self.stats["actions"] += 1
        self.stats["orders_sent"] += len(sent)
        try:
            results = await self.exchange.order(wires)
        except HyperliquidError as e:
            self._batch_failed([p.cloid for p in sent], [p.coin for p in sent], e, is_cancel=False)
            return
        self._rest_ok()
        for p, r in zip(sent, results, strict=True):
            self._apply_order_result(p, r)

    async def _send_modifies(self, modifies: list[ModifyOrder]) -> None:
        if not self.budget.allows_quotes(len(modifies)):
            for m in modifies:
                self._local_reject(m.new, RejectReason.RATE_LIMIT,
                                   f"local request budget: {self.budget.remaining} left, reserve {self.budget.reserve}")
            return
        items, sent = [], []
        for m in modifies:
            try:
                items.append((wire.normalize_cloid(m.cloid),
                              wire.order_to_wire(self.registry.get(m.new.coin), m.new)))
                sent.append(m)
            except (InstrumentError, wire.WireError) as e:
                self._local_reject(m.new, _wire_reason(e), str(e))
        if not sent:
            return
        ts = self._clock()
        for m in sent:
            o = self._orders.get(m.cloid)
            if o is not None:
                o.px, o.sz, o.remaining, o.changed_ts = m.new.px, m.new.sz, m.new.sz, ts
        self.budget.spend(len(sent))
        self.stats["actions"] += 1
        self.stats["modifies_sent"] += len(sent)
        try:
            results = await self.exchange.batch_modify(items)
        except HyperliquidError as e:
            self._batch_failed([m.cloid for m in sent], [m.new.coin for m in sent], e, is_cancel=False)
            return
        self._rest_ok()
        for m, r in zip(sent, results, strict=True):
            self._apply_order_result(m.new, r)

    async def _send_cancels(self, cancels: list[CancelOrder]) -> None:
        by_oid = [c for c in cancels if c.oid is not None]
        by_cloid = [c for c in cancels if c.oid is None]
        if by_cloid:
            await self._send_cancel_action(by_cloid, by_oid=False)
        if by_oid:
            await self._send_cancel_action(by_oid, by_oid=True)

    async def _send_cancel_action(self, cancels: list[CancelOrder], *, by_oid: bool) -> None:
        """One ``cancelByCloid`` or ``cancel`` ({a, o}) action. Cancels are never throttled locally: they reduce
        risk."""
        if by_oid:
            oid_items: list[tuple[int, int]] = []
            for c in cancels:
                if c.oid is None:
                    raise VenueError(f"cancel by oid without an oid: {c!r}")
                self._oid_cloid.setdefault(c.oid, c.cloid)  # user-stream updates of a cloid-less order map back
                self._status_ref[c.cloid] = c.oid  # a lost reply is resolved with orderStatus by this oid
                oid_items.append((self.registry.get(c.coin).asset, c.oid))
            n = len(oid_items)
        else:
            ok = []
            for c in cancels:
                try:
                    wire.normalize_cloid(c.cloid)
                    ok.append(c)
                except wire.WireError as e:
                    # Refused locally, nothing sent: such an order was never placed (a place is refused alike).
                    self._emit(CancelRejected(self._clock(), c.coin, c.cloid, str(e)))
            cancels = ok
            if not cancels:
                return
            cloid_items = [(self.registry.get(c.coin).asset, c.cloid) for c in cancels]
            n = len(cloid_items)
        self.budget.spend(n)
        self.stats["actions"] += 1
        self.stats["cancels_sent"] += n
        try:
            results = (await self.exchange.cancel(oid_items) if by_oid
                       else await self.exchange.cancel_by_cloid(cloid_items))
        except HyperliquidError as e:
            self._batch_failed([c.cloid for c in cancels], [c.coin for c in cancels], e, is_cancel=True)
            return
        self._rest_ok()
        for c, r in zip(cancels, results, strict=True):
            if r.ok:
                self._emit_cancelled(c.coin, c.cloid, c.oid, "requested")
            elif r.reason == RejectReason.UNKNOWN_ORDER:
                # The exchange's verdict on the order itself: never placed, already canceled, or filled.
                self._cancel_unsettled.discard(c.cloid)
                self._emit(CancelRejected(self._clock(), c.coin, c.cloid, r.error or "cancel failed"))
            else:
                # Any other per-cancel error (rate limit, padding, unknown text) says nothing about the order.
                self._cancel_failed(c.coin, c.cloid, r.error or "cancel failed",
                                    rate_limited=r.reason == RejectReason.RATE_LIMIT)

    def _batch_failed(self, cloids: list[str], coins: list[str], e: HyperliquidError, *, is_cancel: bool) -> None:
        """A whole action failed. Refusals are final; lost replies make the orders uncertain (resolved later)."""
        ts = self._clock()
        if isinstance(e, RateLimitError):
            self.budget.exhausted()
        if isinstance(e, ActionError | RateLimitError):
            msg = getattr(e, "message", str(e))
            reason = e.reason if isinstance(e, ActionError) else RejectReason.RATE_LIMIT
            self.log.warning("action_refused", n=len(cloids), cancel=is_cancel, reason=str(reason), message=msg)
            if isinstance(e, RateLimitError):
                self._note_rate_limited(ts)
            for cloid, coin in zip(cloids, coins, strict=True):
                if is_cancel:
                    # A refused request says nothing about the order: it may still rest (retried by the engine).
                    self._cancel_failed(coin, cloid, msg, rate_limited=isinstance(e, RateLimitError))
                else:
                    self._emit_rejected(coin, cloid, reason, msg)
            return
        # Transport/server error: the action may or may not have executed.
        self._rest_failed("exchange", e)
        self.stats["uncertain"] += len(cloids)
        self.log.warning("action_uncertain", n=len(cloids), cancel=is_cancel, error=str(e))
        self._spawn(functools.partial(self._resolve_later, list(zip(cloids, coins, strict=True)), is_cancel),
                    name="resolve")

    def _cancel_failed(self, coin: str, cloid: str, message: str, *, rate_limited: bool) -> None:
        self.stats["cancel_failed"] += 1
        if rate_limited:
            self._note_rate_limited(self._clock())
        self._cancel_unsettled.add(cloid)
        self._emit(CancelFailed(self._clock(), coin, cloid, message, rate_limited=rate_limited))

    def _note_rate_limited(self, ts: float) -> None:
        self.stats["rate_limited"] += 1
        self.rate_limited_until = max(self.rate_limited_until, ts + 5.0)

    @property
    def rate_limited(self) -> bool:
        """Refused by a rate limit (429 / request budget) in the last few seconds: its own health state."""
        return self._clock() < self.rate_limited_until

    def _apply_order_result(self, p: PlaceOrder, r: OrderResult) -> None:
        o = self._orders.get(p.cloid)
        if r.kind == "resting" and r.oid is not None:
            self._register_oid(p.cloid, r.oid)
            self._emit_accepted(p.coin, p.cloid, r.oid)
        elif r.kind == "filled" and r.oid is not None:
            self._register_oid(p.cloid, r.oid)
            if p.tif == Tif.IOC and r.total_sz < p.sz - 1e-12:
                # The IOC remainder was killed; the fills themselves arrive on the user stream.
                self._emit_cancelled(p.coin, p.cloid, r.oid, "ioc")
            elif o is not None:
                o.remaining = max(0.0, p.sz - r.total_sz)
        elif r.kind == "error":
            if p.tif == Tif.IOC and r.reason == RejectReason.IOC_NO_MATCH:
                self._emit_rejected(p.coin, p.cloid, r.reason, r.error or "")
            else:
                self._emit_rejected(p.coin, p.cloid, r.reason or RejectReason.UNKNOWN, r.error or "")
            if r.reason == RejectReason.RATE_LIMIT:
                self.budget.exhausted()

    async def _resolve_later(self, items: list[tuple[str, str]], is_cancel: bool) -> None:
        await asyncio.sleep(self.uncertain_delay_s)
        for cloid, coin in items:
            await self._resolve(cloid, coin, is_cancel)

    async def _resolve(self, cloid: str, coin: str, is_cancel: bool) -> None:
        """Learn the truth about ``cloid`` from orderStatus and emit what the engine has not heard yet."""
        try:
            st = await self.info.order_status(self.account, self._status_ref.get(cloid, cloid))
        except HyperliquidError as e:
            self._rest_failed("orderStatus", e)
            self.log.error("uncertain_unresolved", cloid=cloid, error=str(e))
            return  # the periodic reconciliation / next resync will settle it
        try:
            ost = self._checked(validate.order_status, st)
        except BadMessage as e:
            self.log.error("uncertain_unresolved", cloid=cloid, error=str(e))
            return  # a garbled reply says nothing about the order: reconciliation / the next resync settles it
        self._rest_ok()
        if ost is None:
            if is_cancel:
                self._emit(CancelRejected(self._clock(), coin, cloid, "order unknown to the exchange"))
            else:
                self._emit_rejected(coin, cloid, RejectReason.UNKNOWN, "order not found after a lost reply")
            return
        self._register_oid(cloid, ost.oid)
        self._apply_status(coin, cloid, ost.oid, ost.status, ost.sz)

    # ---- user stream ------------------------------------------------------------------------------------
    def on_ws_message(self, ts: float, channel: str, data: Any) -> None:
        """Route a user-channel message (orderUpdates, userFills, user)."""
        if channel == "orderUpdates":
            if not isinstance(data, list):
                self._bad("order_updates", f"data must be a list, got {type(data).__name__}", data)
                return
            for u in data:
                self._on_order_update(u)
        elif channel == "userFills":
            if not isinstance(data, dict) or not isinstance(data.get("fills", []), list):
                self._bad("user_fills", "data must be an object with a list of fills", data)
                return
            if data.get("isSnapshot"):
                return  # history: already in the start-up snapshot / REST backfill
            for f in data.get("fills", []):
                self._on_fill(f, ts)
        elif channel == "user":
            self._on_user_event(data, ts)

    def _on_order_update(self, raw: Any) -> None:
        try:
            u = validate.order_update(raw)
        except BadMessage as e:
            self._bad(e.kind, e.problem, raw)
            return
        oid = u.oid
        cloid = u.cloid or self._oid_cloid.get(oid)
        if cloid is None:
            self.log.warning("order_update_without_cloid", oid=oid, coin=u.coin, status=u.status)
            return
        self._register_oid(cloid, oid)
        self._apply_status(u.coin, cloid, oid, u.status, u.sz)

    def _apply_status(self, coin: str, cloid: str, oid: int, status: str, sz: float) -> None:
        o = self._orders.get(cloid)
        if status == "open":
            if o is not None and o.oid == oid:
                o.remaining = sz
            self._emit_accepted(coin, cloid, oid)
        elif status in ("filled", "triggered"):
            if o is not None and o.oid == oid:
                o.remaining = 0.0
        elif status in _REJECT_REASONS:
            if (cloid, oid) not in self._acked:
                self._emit_rejected(coin, cloid, _REJECT_REASONS[status], status)
        elif status in _CANCEL_REASONS or status.endswith("Canceled"):
            self._emit_cancelled(coin, cloid, oid, _CANCEL_REASONS.get(status, status))
        elif status.endswith("Rejected"):
            if (cloid, oid) not in self._acked:
                self._emit_rejected(coin, cloid, RejectReason.UNKNOWN, status)
        else:
            self.log.info("order_status_ignored", cloid=cloid, oid=oid, status=status)

    def _on_user_event(self, data: Any, ts: float) -> None:
        if not isinstance(data, dict):
            self._bad("user_event", f"data must be an object, got {type(data).__name__}", data)
            return
        if "fills" in data:
            if not isinstance(data["fills"], list):
                self._bad("user_event", "fills must be a list", data)
            else:
                for f in data["fills"]:
                    self._on_fill(f, ts)
        if "funding" in data:
            try:
                fu = validate.funding(data["funding"])
            except BadMessage as e:
                self._bad(e.kind, e.problem, data["funding"])
            else:
                self._emit(Funding(ts, fu.coin, fu.usdc, fu.rate, fu.szi))
        if "nonUserCancel" in data:
            items = data["nonUserCancel"]
            if not isinstance(items, list):
                self._bad("non_user_cancel", "nonUserCancel must be a list", items)
                items = []
            for c in items:
                try:
                    coin, oid = validate.non_user_cancel(c)
                except BadMessage as e:
                    self._bad(e.kind, e.problem, c)
                    continue
                cloid = self._oid_cloid.get(oid)
                if cloid is not None:
                    self._emit_cancelled(coin, cloid, oid, "venue")
        if "liquidation" in data:
            self.log.error("liquidation", data=str(data["liquidation"])[:500])
            self._request_resync("liquidation")

    def _on_fill(self, f: Any, ts: float) -> bool:
        """One fill dict (userFills / userEvents / REST userFills) -> Fill event, once per (tid, oid). A malformed
        fill (NaN price, size <= 0, NaN fee, ...) is counted and dropped: it never reaches the engine."""
        try:
            m = f if isinstance(f, validate.FillMsg) else validate.fill(f)
        except BadMessage as e:
            self._bad(e.kind, e.problem, f)
            return False
        tid, oid, coin, sz, px, is_buy, fee, is_maker = m.tid, m.oid, m.coin, m.sz, m.px, m.is_buy, m.fee, m.is_maker
        key = (tid, oid)
        if key in self._seen_fills:
            self.stats["duplicate_fills"] += 1
            return False
        self._seen_fills.add(key)
        self._seen_fills_q.append(key)
        if len(self._seen_fills_q) > _SEEN_FILLS_MAX:
            self._seen_fills.discard(self._seen_fills_q.popleft())
        cloid = (m.cloid or self._oid_cloid.get(oid) or "").lower()
        o = self._orders.get(cloid)
        remaining = 0.0
        if o is not None:
            o.remaining = max(0.0, o.remaining - sz)
            remaining = o.remaining
        self.stats["fills"] += 1
        self._emit(Fill(ts=ts, coin=coin, cloid=cloid, oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=fee,
                        is_maker=is_maker, remaining=remaining))
        return True

    # ---- health, resync, watchdog, dead man, reconciliation ---------------------------------------------
    def on_ws_status(self, ts: float, connected: bool, detail: str) -> None:
        """WsClient status callback: a disconnect makes us unhealthy; a reconnect triggers a resync."""
        was = self._ws_up
        self._ws_up = connected
        if not self._started or self._closing:
            return  # before start the runner's own snapshot/sync follows; after close nothing is resting
        if connected and not was:
            self._request_resync(f"ws {detail}")
        else:
            self._update_health(detail)

    def _rest_ok(self) -> None:
        if self._rest_failures:
            self._rest_failures = 0
            self._update_health("rest recovered")

    def _rest_failed(self, what: str, e: Exception) -> None:
        self._rest_failures += 1
        self.log.warning("rest_failed", what=what, error=str(e), consecutive=self._rest_failures)
        self._update_health(f"{what}: {e}")

    def _compute_health(self) -> bool:
        if not self._ws_up or self._rest_failures >= 3 or self._stuck_tasks():
            return False
        hb = self._heartbeat_ts
        return not (hb is not None and self._clock() - hb > self.stall_s)

    def _stuck_tasks(self) -> list[str]:
        """Supervised tasks failing for longer than ``task_fail_bound_s``: while any is, the venue is unhealthy
        (the engine stops quoting; the watchdog / dead man's switch cancels everything) until it recovers."""
        now = self._clock()
        return [n for n, st in self.task_states.items() if st.failing and st.failing_for(now) > self.task_fail_bound_s]

    @property
    def health(self) -> str:
        """``unhealthy`` (no quoting), ``degraded`` (bad venue messages dropped or a background task failed in the
        last ``DEGRADED_WINDOW_S``, or a task is still failing) or ``ok``."""
        if not self._healthy:
            return "unhealthy"
        now = self._clock()
        if self.bad_input.recent(DEGRADED_WINDOW_S, now) or any(
                st.failing or (st.last_fail_ts is not None and now - st.last_fail_ts <= DEGRADED_WINDOW_S)
                for st in self.task_states.values()):
            return "degraded"
        return "ok"

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

    def _update_health(self, detail: str) -> None:
        h = self._compute_health()
        if h == self._healthy or self._resyncing:
            return
        ts = self._clock()
        if not h:
            self._healthy = False
            self._unhealthy_since = ts
            self._watchdog_fired = False
            self.log.warning("venue_unhealthy", detail=detail, dead_man_armed=self.dead_man_armed)
            self._emit(VenueStatus(ts, False, detail))
        else:
            self._request_resync(detail)

    def _request_resync(self, why: str) -> None:
        """Resync now, retried with backoff until it succeeds (one such chain at a time; supervised)."""
        if self._resync_wanted or self._closing:
            return
        self._resync_wanted = True
        self._spawn(functools.partial(self._resync_until_done, why), name="resync")

    async def _resync_until_done(self, why: str) -> None:
        # An unexpected exception leaves _resync_wanted set: the supervisor restarts this chain (no second one).
        try:
            while not self._closing:
                if await self.resync(why):
                    self._resync_failures = 0
                    break
                self._resync_failures += 1
                await asyncio.sleep(RESYNC_BACKOFF.delay(self._resync_failures))
        except asyncio.CancelledError:
            self._resync_wanted = False
            raise
        self._resync_wanted = False

    async def resync(self, why: str) -> bool:
        """Missed fills (REST), then a fresh AccountSnapshot per coin, then VenueStatus(healthy). Returns whether
        it succeeded (a REST failure or a malformed reply: False, nothing emitted, health unchanged)."""
        if self._resyncing:
            return False
        self._resyncing = True
        self.stats["resyncs"] += 1
        try:
            try:
                raw = validate.array(await self.info.user_fills(self.account), "user_fills", "reply")
                ts = self._clock()
                fills: list[validate.FillMsg] = []
                for f in raw:
                    try:
                        fills.append(validate.fill(f))
                    except BadMessage as e:
                        self._bad(e.kind, e.problem, f)  # dropped: never reaches the engine
                for m in sorted(fills, key=lambda x: x.time_ms):
                    if m.time_ms >= self._t0_ms and m.coin in self.coins:
                        self._on_fill(m, ts)
                snaps = [await self.snapshot(c) for c in self.coins]
            except HyperliquidError as e:
                if isinstance(e, BadMessage) and e.kind == "user_fills":
                    self._bad(e.kind, e.problem)
                self._resyncing = False
                self._rest_failed("resync", e)
                return False
            self._rest_failures = 0
            for s in snaps:
                self._emit(s)
        finally:
            self._resyncing = False
        if self._compute_health():
            was = self._healthy
            self._healthy = True
            self._unhealthy_since = None
            self.log.info("venue_healthy", detail=why, resynced=True)
            self._emit(VenueStatus(self._clock(), True, f"resynced after {why}" if not was else f"resynced: {why}"))
        return True

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.watchdog_grace_s / 2))
            try:
                await self.watchdog_check()
            except Exception as e:  # the watchdog must outlive any single failure
                self._watchdog_fired = False
                self.log.error("watchdog_failed", error=repr(e))
            self._task_ok("watchdog")

    async def watchdog_check(self) -> None:
        """One watchdog step: cancel everything if health has been lost for the grace period with no armed
        dead man's switch (refused for low-volume accounts) to do it for us."""
        self._update_health("watchdog")
        if self._healthy or self._watchdog_fired or self._unhealthy_since is None:
            return
        if self._clock() - self._unhealthy_since < self.watchdog_grace_s or self.dead_man_armed:
            return
        self.log.error("watchdog_cancel_all", unhealthy_s=round(self._clock() - self._unhealthy_since, 2),
                       dead_man=self.dead_man_detail or "not armed")
        self.stats["watchdog_cancel_all"] += 1
        self._watchdog_fired = True  # set before awaiting: a concurrent check must not fire twice
        ok = True
        for c in self.coins:
            try:
                await self.cancel_all(c)
            except HyperliquidError as e:
                ok = False
                self.log.error("watchdog_cancel_all_failed", coin=c, error=str(e))
        self._watchdog_fired = ok

    async def _dead_man_loop(self) -> None:
        while True:
            await asyncio.sleep(self.dead_man_refresh_s)
            if self.dead_man_supported is not False:
                await self.refresh_dead_man()
            self._task_ok("dead_man")

    async def _budget_loop(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(min(self.budget_refresh_s, 1.0))
            # After a rate-limit refusal (budget believed exhausted) ask again soon, so quoting resumes when it ends.
            short = not self.budget.allows_quotes(1) and self._clock() - last >= 2.0
            if short or self._clock() - last >= self.budget_refresh_s:
                last = self._clock()
                await self.refresh_budget()
                self._task_ok("budget")

    async def _reconcile_loop(self) -> None:
        last = self._clock()
        while True:
            # While a cancel has no verdict (refused / rate-limited), check openOrders on a short timer.
            await asyncio.sleep(min(self.reconcile_interval_s, CANCEL_CHECK_S))
            due = self._clock() - last >= self.reconcile_interval_s or (
                self._cancel_unsettled and self._clock() - last >= CANCEL_CHECK_S)
            st = self.task_states.get("reconcile")
            # While this task is failing it also runs when unhealthy: it is its own recovery probe.
            if due and (self._healthy or (st is not None and st.failing)) and not self._resyncing:
                last = self._clock()
                await self.reconcile_once()
                self._task_ok("reconcile")

    async def reconcile_once(self) -> bool:
        """Compare exchange open orders with our view; emit a snapshot (engine re-sync) if they disagree for orders
        untouched in the last few seconds. Returns True when a mismatch was found."""
        now = self._clock()
        mismatch = False
        for c in self.coins:
            try:
                snap = await self.snapshot(c)
            except HyperliquidError as e:  # incl. a malformed reply (BadMessage): this round is skipped
                self._rest_failed("reconcile", e)
                return False
            self.stats["reconciles"] += 1
            venue = {oo.cloid for oo in snap.open_orders}
            # Gone from the exchange: settled (a late CancelRejected / the snapshot below tells the engine).
            self._cancel_unsettled -= {cl for cl in self._cancel_unsettled
                                       if (o := self._orders.get(cl)) is not None and o.coin == c and cl not in venue}
            ours = {o.cloid for o in self._orders.values()
                    if o.coin == c and o.oid is not None and (o.cloid, o.oid) in self._acked
                    and (o.cloid, o.oid) not in self._ended and o.remaining > 0}
            settled = {cl for cl in venue ^ ours
                       if (o := self._orders.get(cl or "")) is None or now - o.changed_ts > 5.0}
            if settled or any(oo.cloid is None for oo in snap.open_orders):
                mismatch = True
                self.stats["reconcile_mismatch"] += 1
                self.log.warning("reconcile_mismatch", coin=c, venue_only=sorted(str(x) for x in venue - ours),
                                 ours_only=sorted(ours - venue))
                self._emit(snap)
        return mismatch

    async def _flusher(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            wait = self.batch_interval_s - (time.monotonic() - self._last_flush)
            if wait > 0 and not self._q_cancel:
                await asyncio.sleep(wait)  # collect a batch; cancels never wait
            try:
                await self.flush()
            except Exception as e:  # never let the flusher die: orders would silently stop going out
                self.log.error("flush_failed", error=repr(e))
            self._task_ok("flusher")

    # ---- event emission with de-duplication ---------------------------------------------------------------
    # ---- supervision of background tasks ------------------------------------------------------------------
    def _task_state(self, name: str) -> TaskState:
        st = self.task_states.get(name)
        if st is None:
            st = self.task_states[name] = TaskState(name, self._clock, self._task_recovered)
        return st

    def _task_ok(self, name: str) -> None:
        st = self.task_states.get(name)
        if st is not None:
            st.ok()

    def _task_failed(self, st: TaskState, e: BaseException) -> None:
        self.stats["task_failures"] += 1
        self._update_health(f"task {st.name} failing: {st.last_error}")

    def _task_recovered(self, st: TaskState) -> None:
        self.log.info("task_recovered", task=st.name)
        self._update_health(f"task {st.name} recovered")

    def _supervise(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Coroutine[Any, Any, Any]:
        """``fn`` run under :func:`supervised`: failures logged, counted, health degraded (unhealthy once the task
        has been failing for ``task_fail_bound_s``), restarted with backoff."""
        return supervised(name, fn, self._task_failed, TASK_BACKOFF, state=self._task_state(name), log=self.log)

    def _spawn(self, fn: Callable[[], Awaitable[Any]], name: str = "task") -> None:
        """A background one-shot (resync, resolver), supervised: retried with backoff until it completes."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        t = loop.create_task(self._supervise(name, fn), name=f"hl {name}")
        self._tasks.append(t)
        t.add_done_callback(lambda x: self._tasks.remove(x) if x in self._tasks else None)

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
