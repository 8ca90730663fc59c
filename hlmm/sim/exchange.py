"""Simulated Hyperliquid exchange: one account, L2 matching with the exchange's rules, queue and latency models.

"A simulated fill must never be easier than a real one." The sim runs on the **exchange clock**: market events are
applied at their ``ts_exchange`` (or an explicit ``at``); an action submitted at engine time ``t`` arrives at
``t + order latency`` and is matched against the book as of then; every result is delivered at
``exchange time + response latency`` with ``ts`` = that delivery time. See ``hlmm/sim/README.md`` for the model.

Hot path: ``on_market`` is called for every market event of a backtest. It stores references to the event's levels
(no copies) and only looks at our orders when we have some on the touched side and price range.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, RefQuote, Timer, Trade
from hlmm.market.instrument import Instrument, InstrumentRegistry, float_to_wire
from hlmm.market.own_liquidity import bbo_with_own, with_own
from hlmm.sim.latency import LatencyModel
from hlmm.sim.queue import QueueModel, depth_update, make_queue_model
from hlmm.venue.base import (
    AccountSnapshot,
    CancelOrder,
    CancelRejected,
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
)

# Hyperliquid's texts (see ../shared/reference/hyperliquid-api.md §3).
MSG_POST_ONLY = "Post only order would have immediately matched, bbo was {bid}@{ask}. asset={asset}"
MSG_REDUCE_ONLY = "Reduce only order would increase position."
MSG_IOC_NO_MATCH = "Order could not immediately match against any resting orders."
MSG_MARGIN = "Insufficient margin to place order."
MSG_CANCEL_UNKNOWN = "Order was never placed, already canceled, or filled."
MSG_MODIFY_FINISHED = "Cannot modify canceled or filled order"  # observed live text (no trailing period)
MSG_DUPLICATE_CLOID = "Duplicate cloid: an open order already uses this cloid."  # sim-only guard, see README

_EPS = 1e-10  # float-noise guard for sizes (lots are >= 1e-6)
_RECENT_TRADES = 4096  # trade keys remembered per coin to drop replayed duplicates
_HOUR = 3600.0


class SimExchangeError(ValueError):
    """Bad input to the simulated exchange (unknown action type, non-finite time, ...)."""


@dataclass(slots=True)
class SimOrder:
    """Exchange-side state of one order (queryable by the local exchange server)."""

    oid: int
    cloid: str | None
    coin: str
    is_buy: bool
    px: float
    sz: float  # remaining
    orig_sz: float
    tif: Tif
    reduce_only: bool
    submit_ts: float  # engine time of the submit
    arrival_ts: float  # exchange time the order reached the matching engine
    status: str = "open"  # Hyperliquid orderStatus vocabulary: open, filled, canceled, badAloPxRejected, ...
    status_ts: float = 0.0
    message: str = ""  # reject/cancel text
    filled_sz: float = 0.0
    avg_fill_px: float = 0.0
    # queue state (resting orders only)
    ahead: float | None = None  # visible size with priority over us; None = unknown
    level_qty: float | None = None  # visible size at our price when last seen
    traded: float = 0.0  # volume traded at our price since level_qty was seen

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def side(self) -> str:
        return "B" if self.is_buy else "A"


@dataclass(slots=True)
class SimPosition:
    """Per-coin account state: signed position, average entry, realised PnL, fees and funding in USD."""

    position: float = 0.0
    entry_px: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    volume: float = 0.0  # traded notional
    n_fills: int = 0


@dataclass(frozen=True, slots=True)
class ActionResult:
    """Synchronous outcome of one action (what the HTTP reply of the real exchange would say)."""

    status: Literal["resting", "filled", "error", "success"]
    oid: int | None = None
    cloid: str | None = None
    total_sz: float = 0.0
    avg_px: float = 0.0
    error: str | None = None


Listener = Callable[[VenueEvent, SimOrder | None, float], None]


def _dadd(a: float, b: float) -> float:
    """Exact sum of two decimal-valued floats (sizes/positions never accumulate binary noise)."""
    return float(Decimal(repr(a)) + Decimal(repr(b)))


def _fmt_px(px: float | None) -> str:
    return "None" if px is None else float_to_wire(px)


@dataclass(slots=True)
class _Coin:
    """Book copy, our resting orders by price, and account state for one coin."""

    coin: str
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    used_bid: dict[float, float] = field(default_factory=dict)  # liquidity our taker orders took, until refreshed
    used_ask: dict[float, float] = field(default_factory=dict)
    book_ts: float = -math.inf
    own_bids: dict[float, list[SimOrder]] = field(default_factory=dict)
    own_asks: dict[float, list[SimOrder]] = field(default_factory=dict)
    best_own_bid: float | None = None
    best_own_ask: float | None = None
    pos: SimPosition = field(default_factory=SimPosition)
    mark_px: float | None = None
    oracle_px: float | None = None
    funding_rate: float | None = None
    next_funding_t: float = math.inf
    last_trade_px: float | None = None
    recent_trades: set[tuple] = field(default_factory=set)
    recent_order: deque[tuple] = field(default_factory=deque)  # eviction order (a dict popped from the front
    # degrades: its iterator walks the deleted slots)

    def mark(self) -> float | None:
        if self.mark_px is not None:
            return self.mark_px
        if self.bids and self.asks:
            return 0.5 * (self.bids[0].px + self.asks[0].px)
        return self.last_trade_px

    def best_bid(self) -> float | None:
        """Best bid of our local book copy (after our own taker consumption)."""
        if not self.used_bid:
            return self.bids[0].px if self.bids else None
        for lv in self.bids:
            if lv.sz - self.used_bid.get(lv.px, 0.0) > _EPS:
                return lv.px
        return None

    def best_ask(self) -> float | None:
        if not self.used_ask:
            return self.asks[0].px if self.asks else None
        for lv in self.asks:
            if lv.sz - self.used_ask.get(lv.px, 0.0) > _EPS:
                return lv.px
        return None


class SimExchange:
    """Matching engine for one account on recorded/synthetic L2 data with Hyperliquid's rules.

    Usage in a backtest: feed market events in ``ts_exchange`` order with ``on_market``; call ``submit`` with the
    engine's local time; call ``advance_to(t)`` before handing the engine anything at ``t``; collect results with
    ``pop_events(t)``. ``next_time()`` tells the runner when the sim next has something to do.
    """

    def __init__(
        self,
        registry: InstrumentRegistry,
        latency: LatencyModel = LatencyModel(),  # noqa: B008 - frozen; we work on a fresh copy
        queue: str | QueueModel = "prob",
        starting_usdc: float = 10_000.0,
        max_leverage: float | None = None,
        seed: int = 0,
    ) -> None:
        if not math.isfinite(starting_usdc) or starting_usdc < 0:
            raise SimExchangeError(f"starting_usdc must be finite and >= 0, got {starting_usdc!r}")
        if max_leverage is not None and (not math.isfinite(max_leverage) or max_leverage <= 0):
            raise SimExchangeError(f"max_leverage must be finite and > 0, got {max_leverage!r}")
        self.registry = registry
        # Own random stream, mixed with the exchange seed, so runs are reproducible and independent.
        self.latency = latency.fresh(seed=(latency.seed * 1_000_003 + seed) & 0xFFFFFFFF)
        self.queue: QueueModel = make_queue_model(queue)
        self.starting_usdc = float(starting_usdc)
        self.max_leverage = max_leverage
        self.seed = seed
        self.stats: Counter[str] = Counter()
        self._coins: dict[str, _Coin] = {}
        self._orders: dict[int, SimOrder] = {}
        self._open_by_cloid: dict[str, SimOrder] = {}
        self._last_by_cloid: dict[str, SimOrder] = {}
        self._pending: list[tuple[float, int, tuple[VenueAction, ...], str | None, float]] = []
        self._out: list[tuple[float, int, VenueEvent]] = []
        self._seq = 0
        self._next_oid = 1
        self._next_tid = 1
        self._last_arrival = -math.inf
        self._last_delivery = -math.inf
        self._listeners: list[Listener] = []
        self.now = -math.inf  # latest exchange time processed

    # ------------------------------------------------------------------ queries
    def add_listener(self, fn: Listener) -> None:
        """``fn(event, order, exchange_ts)`` is called when an event is created (at exchange time), before its
        delivery. The order object is live state: copy what you need."""
        self._listeners.append(fn)

    def order(self, oid: int) -> SimOrder | None:
        return self._orders.get(oid)

    def order_by_cloid(self, cloid: str) -> SimOrder | None:
        """The latest order that used ``cloid`` (the replacement after a modify)."""
        return self._last_by_cloid.get(cloid)

    def orders(self, coin: str | None = None) -> Iterator[SimOrder]:
        return (o for o in self._orders.values() if coin is None or o.coin == coin)

    def position(self, coin: str) -> SimPosition:
        return self._coin(coin).pos

    def book(self, coin: str) -> tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]:
        """The recorded book as last seen (bids, asks), without our taker consumption."""
        c = self._coin(coin)
        return c.bids, c.asks

    def mark(self, coin: str) -> float | None:
        return self._coin(coin).mark()

    def account_value(self) -> float:
        """Cash + realised PnL - fees + funding + unrealised PnL at mark, over all coins."""
        v = self.starting_usdc
        for c in self._coins.values():
            p = c.pos
            v += p.realized_pnl - p.fees + p.funding
            if p.position:
                m = c.mark()
                if m is not None:
                    v += p.position * (m - p.entry_px)
        return v

    def open_orders(self, coin: str) -> list[OpenOrder]:
        c = self._coin(coin)
        out = [o for side in (c.own_bids, c.own_asks) for lst in side.values() for o in lst]
        out.sort(key=lambda o: o.oid)
        return [OpenOrder(o.coin, o.cloid, o.oid, o.is_buy, o.px, o.sz) for o in out]

    def snapshot(self, coin: str, ts: float) -> AccountSnapshot:
        """Exchange truth now (fills not yet delivered to the engine are included, as a REST query would)."""
        self.registry.get(coin)
        p = self._coin(coin).pos
        return AccountSnapshot(
            ts=ts,
            coin=coin,
            position=p.position,
            entry_px=p.entry_px,
            open_orders=tuple(self.open_orders(coin)),
            account_value=self.account_value(),
        )

    # ------------------------------------------------------------------ clock
    def next_time(self) -> float | None:
        """Earliest pending order arrival or event delivery time."""
        a = self._pending[0][0] if self._pending else math.inf
        d = self._out[0][0] if self._out else math.inf
        t = min(a, d)
        return None if t == math.inf else t

    def next_arrival(self) -> float | None:
        """Exchange time of the earliest action batch still in flight (None when none is)."""
        return self._pending[0][0] if self._pending else None

    def next_delivery(self) -> float | None:
        """Delivery time of the earliest result not yet popped (None when none is)."""
        return self._out[0][0] if self._out else None

    def advance_to(self, t: float) -> None:
        """Process every pending action batch that has arrived by exchange time ``t`` (inclusive)."""
        while self._pending and self._pending[0][0] <= t:
            self._run_batch(heapq.heappop(self._pending))

    def pop_events(self, until_ts: float) -> list[VenueEvent]:
        """Events with delivery ``ts <= until_ts``, in delivery order."""
        out: list[VenueEvent] = []
        while self._out and self._out[0][0] <= until_ts:
            out.append(heapq.heappop(self._out)[2])
        return out

    # ------------------------------------------------------------------ orders in
    def submit(self, actions: Sequence[VenueAction], ts: float) -> None:
        """Send one batch at engine time ``ts``; it reaches the exchange after the order latency.

        Batches arrive in send order (one connection): a later batch never overtakes an earlier one."""
        if not actions:
            return
        batch = tuple(actions)
        for a in batch:
            if isinstance(a, (PlaceOrder, CancelOrder)):
                self.registry.get(a.coin)
            elif isinstance(a, ModifyOrder):
                self.registry.get(a.new.coin)
            else:
                raise SimExchangeError(f"unknown venue action {type(a).__name__}")
        self._schedule(batch, None, ts)

    def cancel_all(self, coin: str, ts: float) -> None:
        """Cancel every open order of ``coin`` (arrives after the order latency like any action)."""
        self.registry.get(coin)
        self._schedule((), coin, ts)

    def execute(self, actions: Sequence[VenueAction], t: float) -> list[ActionResult]:
        """Apply a batch at exchange time ``t`` now (no order latency) and return per-action results, as the
        exchange's HTTP reply would. For the local exchange server; events are still queued for delivery."""
        self._check_time(t)
        self.advance_to(t)
        return self._process(tuple(actions), None, t, t)

    def _schedule(self, batch: tuple[VenueAction, ...], cancel_coin: str | None, ts: float) -> None:
        self._check_time(ts)
        arrival = max(ts + self.latency.order_delay(), self._last_arrival)
        self._last_arrival = arrival
        self._seq += 1
        heapq.heappush(self._pending, (arrival, self._seq, batch, cancel_coin, ts))
        self.stats["batches"] += 1

    @staticmethod
    def _check_time(t: float) -> None:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise SimExchangeError(f"time must be a finite number of seconds, got {t!r}")

    def _run_batch(self, item: tuple[float, int, tuple[VenueAction, ...], str | None, float]) -> None:
        arrival, _, batch, cancel_coin, submit_ts = item
        self._process(batch, cancel_coin, arrival, submit_ts)

    def _delivery(self, t: float) -> float:
        # Results leave the exchange in the order they were produced (one connection).
        d = max(t + self.latency.response_delay(), self._last_delivery)
        self._last_delivery = d
        return d

    def _emit(self, ev: VenueEvent, order: SimOrder | None, t: float) -> None:
        self._seq += 1
        heapq.heappush(self._out, (ev.ts, self._seq, ev))
        for fn in self._listeners:
            fn(ev, order, t)

    def _process(
        self, batch: tuple[VenueAction, ...], cancel_coin: str | None, t: float, submit_ts: float
    ) -> list[ActionResult]:
        if t > self.now:
            self.now = t
        d = self._delivery(t)  # one reply per batch
        results: list[ActionResult] = []
        if cancel_coin is not None:
            c = self._coin(cancel_coin)
            for o in sorted(
                (o for s in (c.own_bids, c.own_asks) for lst in s.values() for o in lst), key=lambda o: o.oid
            ):
                self._cancel(c, o, "requested", "canceled", t, d)
        for a in batch:
            if isinstance(a, PlaceOrder):
                results.append(self._place(a, t, d, submit_ts))
            elif isinstance(a, CancelOrder):
                results.append(self._cancel_request(a, t, d))
            else:
                results.append(self._modify(a, t, d, submit_ts))
        return results

    # ------------------------------------------------------------------ order handling
    def _reject(
        self, p: PlaceOrder, reason: RejectReason, status: str, msg: str, t: float, d: float, submit_ts: float
    ) -> ActionResult:
        o = SimOrder(
            oid=self._new_oid(),
            cloid=p.cloid,
            coin=p.coin,
            is_buy=p.is_buy,
            px=p.px,
            sz=0.0,
            orig_sz=p.sz,
            tif=p.tif,
            reduce_only=p.reduce_only,
            submit_ts=submit_ts,
            arrival_ts=t,
            status=status,
            status_ts=t,
            message=msg,
        )
        self._orders[o.oid] = o
        self._last_by_cloid[p.cloid] = o
        self.stats["rejected"] += 1
        self.stats[f"rejected_{reason.value}"] += 1
        self._emit(OrderRejected(d, p.coin, p.cloid, reason, msg), o, t)
        return ActionResult("error", None, p.cloid, error=msg)

    def _new_oid(self) -> int:
        oid = self._next_oid
        self._next_oid += 1
        return oid

    def _validate(self, p: PlaceOrder, inst: Instrument, c: _Coin) -> tuple[RejectReason, str, str] | None:
        """(reason, orderStatus, message) for the first rule the order breaks, or None."""
        if p.cloid in self._open_by_cloid:
            return RejectReason.UNKNOWN, "rejected", MSG_DUPLICATE_CLOID
        err = inst.check_order(p.px, p.sz)
        if err is not None:
            if err.startswith("Price"):
                return RejectReason.TICK, "tickRejected", err
            if err.startswith("Order has invalid size"):
                return RejectReason.SIZE, "rejected", err
            return RejectReason.MIN_VALUE, "minTradeNtlRejected", err
        if p.reduce_only:
            pos = c.pos.position
            if pos == 0 or (pos > 0) == p.is_buy:
                return RejectReason.REDUCE_ONLY, "reduceOnlyRejected", MSG_REDUCE_ONLY
        if p.tif == Tif.ALO:
            # The real book contains our own resting orders too: crossing them is a post-only reject as well.
            bid = _max_opt(c.best_bid(), c.best_own_bid)
            ask = _min_opt(c.best_ask(), c.best_own_ask)
            if (p.is_buy and ask is not None and p.px >= ask) or (not p.is_buy and bid is not None and p.px <= bid):
                msg = MSG_POST_ONLY.format(bid=_fmt_px(bid), ask=_fmt_px(ask), asset=inst.asset)
                return RejectReason.POST_ONLY_CROSS, "badAloPxRejected", msg
        if not p.reduce_only and not self._margin_ok(p):
            return RejectReason.MARGIN, "perpMarginRejected", MSG_MARGIN
        return None

    def crosses_own(self, coin: str, is_buy: bool, px: float) -> bool:
        """True when a post-only order at ``px`` would be rejected because of one of *our own* resting orders:
        it crosses our best other-side order and that order is at or inside the market's best (a self-cross)."""
        c = self._coins.get(coin)
        if c is None:
            return False
        if is_buy:
            own, mkt = c.best_own_ask, c.best_ask()
            return own is not None and px >= own and (mkt is None or own <= mkt)
        own, mkt = c.best_own_bid, c.best_bid()
        return own is not None and px <= own and (mkt is None or own >= mkt)

    def _margin_ok(self, p: PlaceOrder) -> bool:
        """Initial margin of positions plus resting orders (worst side per coin) must fit in account value."""
        need = 0.0
        for coin, c in self._coins.items():
            if coin != p.coin and not c.pos.position and not c.own_bids and not c.own_asks:
                continue
            inst = self.registry.get(coin)
            lev = self.max_leverage if self.max_leverage is not None else float(inst.max_leverage)
            mark = c.mark()
            base = c.pos.position * (mark if mark is not None else p.px)
            buy = sum(o.px * o.sz for lst in c.own_bids.values() for o in lst)
            sell = sum(o.px * o.sz for lst in c.own_asks.values() for o in lst)
            if coin == p.coin:
                if p.is_buy:
                    buy += p.px * p.sz
                else:
                    sell += p.px * p.sz
            need += max(abs(base + buy), abs(base - sell)) / lev
        return need <= self.account_value() + 1e-9

    def _place(self, p: PlaceOrder, t: float, d: float, submit_ts: float) -> ActionResult:
        inst = self.registry.get(p.coin)
        c = self._coin(p.coin)
        self.stats["placed"] += 1
        bad = self._validate(p, inst, c)
        if bad is not None:
            return self._reject(p, bad[0], bad[1], bad[2], t, d, submit_ts)
        return self._execute(p, inst, c, t, d, submit_ts)

    def _execute(self, p: PlaceOrder, inst: Instrument, c: _Coin, t: float, d: float, submit_ts: float) -> ActionResult:
        o = SimOrder(
            oid=self._new_oid(),
            cloid=p.cloid,
            coin=p.coin,
            is_buy=p.is_buy,
            px=p.px,
            sz=p.sz,
            orig_sz=p.sz,
            tif=p.tif,
            reduce_only=p.reduce_only,
            submit_ts=submit_ts,
            arrival_ts=t,
            status_ts=t,
        )
        self._orders[o.oid] = o
        self._last_by_cloid[p.cloid] = o
        if p.tif != Tif.ALO:
            self._self_trade(c, o, t, d)
            marketable = self._marketable(c, o)
            if marketable:
                self._walk(c, o, inst, t, d)
            if p.tif == Tif.IOC:
                if not marketable:
                    o.status, o.status_ts, o.message = "iocCancelRejected", t, MSG_IOC_NO_MATCH
                    self.stats["rejected"] += 1
                    self.stats[f"rejected_{RejectReason.IOC_NO_MATCH.value}"] += 1
                    self._emit(OrderRejected(d, p.coin, p.cloid, RejectReason.IOC_NO_MATCH, MSG_IOC_NO_MATCH), o, t)
                    return ActionResult("error", None, p.cloid, error=MSG_IOC_NO_MATCH)
                if o.is_open and o.sz > _EPS:
                    o.status, o.status_ts = "canceled", t
                    self.stats["cancels"] += 1
                    self._emit(OrderCancelled(d, o.coin, p.cloid, o.oid, "ioc"), o, t)
                return ActionResult("filled", o.oid, p.cloid, o.filled_sz, o.avg_fill_px)
        if o.is_open and o.sz > _EPS:
            self._rest(c, o)
            self.stats["accepted"] += 1
            self._emit(OrderAccepted(d, o.coin, p.cloid, o.oid), o, t)
            return ActionResult("resting", o.oid, p.cloid)
        if o.filled_sz > 0:
            return ActionResult("filled", o.oid, p.cloid, o.filled_sz, o.avg_fill_px)
        return ActionResult("error", None, p.cloid, error=o.message or o.status)

    def _marketable(self, c: _Coin, o: SimOrder) -> bool:
        if o.is_buy:
            ask = c.best_ask()
            return ask is not None and o.px >= ask
        bid = c.best_bid()
        return bid is not None and o.px <= bid

    def _self_trade(self, c: _Coin, o: SimOrder, t: float, d: float) -> None:
        """Expire-maker self-trade prevention: our resting orders this taker would hit are cancelled."""
        if o.is_buy and c.best_own_ask is not None and o.px >= c.best_own_ask:
            hit = [x for px, lst in c.own_asks.items() if px <= o.px for x in lst]
        elif not o.is_buy and c.best_own_bid is not None and o.px <= c.best_own_bid:
            hit = [x for px, lst in c.own_bids.items() if px >= o.px for x in lst]
        else:
            return
        for x in sorted(hit, key=lambda x: x.oid):
            self.stats["self_trade_cancels"] += 1
            self._cancel(c, x, "self_trade", "selfTradeCanceled", t, d)

    def _walk(self, c: _Coin, o: SimOrder, inst: Instrument, t: float, d: float) -> None:
        """Taker: consume visible levels of our local book copy (never more than shown), at their prices."""
        levels, used = (c.asks, c.used_ask) if o.is_buy else (c.bids, c.used_bid)
        for lv in levels:
            if o.sz <= _EPS or not o.is_open:
                break
            if (o.is_buy and lv.px > o.px) or (not o.is_buy and lv.px < o.px):
                break
            avail = lv.sz - used.get(lv.px, 0.0)
            if avail <= _EPS:
                continue
            q = self._fill(c, o, lv.px, min(avail, o.sz), False, t, d)
            if q > 0:
                used[lv.px] = used.get(lv.px, 0.0) + q

    def _rest(self, c: _Coin, o: SimOrder) -> None:
        """Join the queue behind the visible size at our price (0 ahead on a new level, unknown out of view)."""
        qty = self._visible_qty(c, o.px, o.is_buy)
        o.ahead = qty
        o.level_qty = qty
        o.traded = 0.0
        side = c.own_bids if o.is_buy else c.own_asks
        side.setdefault(o.px, []).append(o)
        if o.cloid is not None:
            self._open_by_cloid[o.cloid] = o
        if o.is_buy:
            if c.best_own_bid is None or o.px > c.best_own_bid:
                c.best_own_bid = o.px
        elif c.best_own_ask is None or o.px < c.best_own_ask:
            c.best_own_ask = o.px

    @staticmethod
    def _visible_qty(c: _Coin, px: float, is_buy: bool) -> float | None:
        levels = c.bids if is_buy else c.asks
        if not levels:
            return 0.0
        best, worst = levels[0].px, levels[-1].px
        if (is_buy and px > best) or (not is_buy and px < best):
            return 0.0  # better than the best: a new level
        if (is_buy and px < worst) or (not is_buy and px > worst):
            return None  # outside the visible depth: unknown
        for lv in levels:
            if lv.px == px:
                return lv.sz
        return 0.0

    def _unrest(self, c: _Coin, o: SimOrder) -> None:
        side = c.own_bids if o.is_buy else c.own_asks
        lst = side.get(o.px)
        if lst is None or o not in lst:
            return
        lst.remove(o)
        if not lst:
            del side[o.px]
            if o.is_buy:
                c.best_own_bid = max(side) if side else None
            else:
                c.best_own_ask = min(side) if side else None
        if o.cloid is not None and self._open_by_cloid.get(o.cloid) is o:
            del self._open_by_cloid[o.cloid]

    def _cancel(self, c: _Coin, o: SimOrder, reason: str, status: str, t: float, d: float, count: bool = True,
                as_cloid: str | None = None) -> None:
        self._unrest(c, o)
        o.status, o.status_ts = status, t
        if count:  # the replaced leg of a modify is not counted as a cancel
            self.stats["cancels"] += 1
        self._emit(OrderCancelled(d, o.coin, as_cloid or o.cloid or "", o.oid, reason), o, t)

    def _cancel_request(self, a: CancelOrder, t: float, d: float) -> ActionResult:
        if a.oid is not None:
            # Hyperliquid ``cancel`` {a, o}: by oid (orders without a cloid). The events carry the cloid the request
            # used, which is what the engine tracks the order under (a placeholder for cloid-less orders).
            o = self._orders.get(a.oid)
            if o is None or not o.is_open or o.coin != a.coin:
                self.stats["cancel_rejected"] += 1
                self._emit(CancelRejected(d, a.coin, a.cloid, MSG_CANCEL_UNKNOWN), None, t)
                return ActionResult("error", None, a.cloid, error=MSG_CANCEL_UNKNOWN)
            self._cancel(self._coin(a.coin), o, "requested", "canceled", t, d, as_cloid=a.cloid)
            return ActionResult("success", o.oid, a.cloid)
        o = self._open_by_cloid.get(a.cloid)
        if o is None or o.coin != a.coin:
            self.stats["cancel_rejected"] += 1
            self._emit(CancelRejected(d, a.coin, a.cloid, MSG_CANCEL_UNKNOWN), None, t)
            return ActionResult("error", None, a.cloid, error=MSG_CANCEL_UNKNOWN)
        self._cancel(self._coin(a.coin), o, "requested", "canceled", t, d)
        return ActionResult("success", o.oid, a.cloid)

    def _modify(self, m: ModifyOrder, t: float, d: float, submit_ts: float) -> ActionResult:
        """Cancel-replace: the old leg leaves the book (OrderCancelled reason 'modify'), the new order gets a new
        oid, keeps the cloid and joins the back of the queue. If the new order breaks a rule the old leg is gone
        anyway (conservative: the quote is lost) and the new one is rejected."""
        p = m.new
        self.stats["modifies"] += 1
        old = self._open_by_cloid.get(m.cloid)
        if old is None or old.coin != p.coin:
            self.stats["modify_rejected"] += 1
            self._emit(OrderRejected(d, p.coin, p.cloid, RejectReason.UNKNOWN_ORDER, MSG_MODIFY_FINISHED), None, t)
            return ActionResult("error", None, p.cloid, error=MSG_MODIFY_FINISHED)
        c = self._coin(p.coin)
        self._cancel(c, old, "modify", "canceled", t, d, count=False)
        return self._place(p, t, d, submit_ts)

    # ------------------------------------------------------------------ fills and accounting
    def _fill(self, c: _Coin, o: SimOrder, px: float, qty: float, is_maker: bool, t: float, d: float) -> float:
        """Execute ``qty`` (floored to lots; capped by reduce-only) of ``o`` at ``px``. Returns the filled size."""
        inst = self.registry.get(o.coin)
        pos = c.pos
        if o.reduce_only:
            reducing = (pos.position < 0) if o.is_buy else (pos.position > 0)
            cap = abs(pos.position) if reducing else 0.0
            if cap <= _EPS:
                if o.is_open:
                    self._cancel(c, o, "reduce_only", "reduceOnlyCanceled", t, d)
                return 0.0
            qty = min(qty, cap)
        q = min(inst.floor_size(max(qty, 0.0) + _EPS), o.sz)
        if q <= 0:
            return 0.0
        notional = px * q
        fee = inst.fee(notional, is_maker)
        self._apply_position(pos, o.is_buy, px, q)
        pos.fees += fee
        pos.volume += notional
        pos.n_fills += 1
        o.avg_fill_px = (o.avg_fill_px * o.filled_sz + px * q) / (o.filled_sz + q)
        o.filled_sz = _dadd(o.filled_sz, q)
        o.sz = _dadd(o.sz, -q)
        o.status_ts = t
        tid = self._next_tid
        self._next_tid += 1
        self.stats["fills"] += 1
        self.stats["maker_fills" if is_maker else "taker_fills"] += 1
        if o.sz <= _EPS:
            o.sz = 0.0
            self._unrest(c, o)
            o.status = "filled"
        self._emit(Fill(d, o.coin, o.cloid or "", o.oid, tid, o.is_buy, px, q, fee, is_maker, o.sz), o, t)
        if o.reduce_only and o.is_open and c.pos.position == 0:
            self._cancel(c, o, "reduce_only", "reduceOnlyCanceled", t, d)
        return q

    @staticmethod
    def _apply_position(pos: SimPosition, is_buy: bool, px: float, q: float) -> None:
        p0 = pos.position
        signed = q if is_buy else -q
        new = _dadd(p0, signed)
        if p0 == 0 or (p0 > 0) == is_buy:
            pos.entry_px = (abs(p0) * pos.entry_px + q * px) / abs(new)
        else:
            closed = min(q, abs(p0))
            pos.realized_pnl += closed * (px - pos.entry_px) * (1.0 if p0 > 0 else -1.0)
            if new == 0:
                pos.entry_px = 0.0
            elif (new > 0) != (p0 > 0):
                pos.entry_px = px  # flipped: the remainder opened at this price
        pos.position = new

    # ------------------------------------------------------------------ market data in
    def _coin(self, coin: str) -> _Coin:
        c = self._coins.get(coin)
        if c is None:
            c = self._coins[coin] = _Coin(coin)
        return c

    def published(self, ev: MarketEvent) -> MarketEvent:
        """``ev`` as Hyperliquid publishes it: its l2Book and bbo include our own resting orders (the engine takes
        them out again, ``hlmm.market.own_liquidity``). Call after :meth:`on_market` has applied ``ev``."""
        tp = type(ev)
        if tp is not BookSnapshot and tp is not Bbo:
            return ev
        c = self._coins.get(ev.coin)  # type: ignore[union-attr]
        if c is None or not (c.own_bids or c.own_asks):
            return ev
        bids = {px: s for px, lst in c.own_bids.items() if (s := sum(o.sz for o in lst)) > 0}
        asks = {px: s for px, lst in c.own_asks.items() if (s := sum(o.sz for o in lst)) > 0}
        if tp is BookSnapshot:
            return with_own(ev, bids, asks)  # type: ignore[arg-type]
        return bbo_with_own(ev, bids, asks)  # type: ignore[arg-type]

    def on_market(self, ev: MarketEvent, at: float | None = None) -> None:
        """Apply a market event at exchange time ``at`` (default ``ev.ts_exchange``).

        Pending actions that arrived strictly before that time are matched first, against the earlier book."""
        tp = type(ev)
        if tp is Timer or tp is AssetCtx:
            t = ev.ts if at is None else at
        elif tp is RefQuote:
            return  # another venue's book: nothing to match
        else:
            t = ev.ts_exchange if at is None else at  # type: ignore[union-attr]
        if self._pending and self._pending[0][0] < t:
            while self._pending and self._pending[0][0] < t:
                self._run_batch(heapq.heappop(self._pending))
        if t > self.now:
            self.now = t
        if tp is Timer:
            return
        c = self._coin(ev.coin)  # type: ignore[union-attr]
        if tp is Trade:
            self._on_trade(c, ev, t)  # type: ignore[arg-type]
        elif tp is BookSnapshot:
            if ev.ts_exchange < c.book_ts:  # type: ignore[union-attr]
                self.stats["stale_book"] += 1
                return
            c.book_ts = ev.ts_exchange  # type: ignore[union-attr]
            c.bids, c.asks = ev.bids, ev.asks  # type: ignore[union-attr]
            if c.used_bid:
                c.used_bid.clear()
            if c.used_ask:
                c.used_ask.clear()
            if c.own_bids or c.own_asks:
                self._after_book(c, t, None)
        elif tp is Bbo:
            if ev.ts_exchange < c.book_ts:  # type: ignore[union-attr]
                self.stats["stale_book"] += 1
                return
            c.book_ts = ev.ts_exchange  # type: ignore[union-attr]
            self._apply_bbo(c, ev)  # type: ignore[arg-type]
            if c.own_bids or c.own_asks:
                self._after_book(c, t, ev)  # type: ignore[arg-type]
        elif tp is AssetCtx:
            c.mark_px, c.oracle_px, c.funding_rate = ev.mark_px, ev.oracle_px, ev.funding  # type: ignore[union-attr]
            if c.next_funding_t == math.inf:
                c.next_funding_t = (math.floor(t / _HOUR) + 1) * _HOUR
        if t >= c.next_funding_t:
            self._pay_funding(c, t)

    @staticmethod
    def _apply_bbo(c: _Coin, ev: Bbo) -> None:
        """Top of book replaces our copy's top; deeper levels from the last snapshot are kept."""
        b = ev.bid_px
        if b is None:
            c.bids = ()
        elif not c.bids or c.bids[0].px != b or c.bids[0].sz != ev.bid_sz:
            c.bids = (BookLevel(b, ev.bid_sz), *(lv for lv in c.bids if lv.px < b))
            c.used_bid.pop(b, None)
        a = ev.ask_px
        if a is None:
            c.asks = ()
        elif not c.asks or c.asks[0].px != a or c.asks[0].sz != ev.ask_sz:
            c.asks = (BookLevel(a, ev.ask_sz), *(lv for lv in c.asks if lv.px > a))
            c.used_ask.pop(a, None)

    def _after_book(self, c: _Coin, t: float, bbo: Bbo | None) -> None:
        """A new book: fill our orders the market crossed, then move queue positions."""
        d: float | None = None
        best_ask = c.asks[0].px if c.asks else None
        best_bid = c.bids[0].px if c.bids else None
        if c.best_own_bid is not None and best_ask is not None and best_ask <= c.best_own_bid:
            d = self._delivery(t)
            for o in self._orders_through(c.own_bids, lambda px: px >= best_ask, reverse=True):
                self.stats["crossed_fills"] += 1
                self._fill(c, o, o.px, o.sz, True, t, d)
        if c.best_own_ask is not None and best_bid is not None and best_bid >= c.best_own_ask:
            d = d if d is not None else self._delivery(t)
            for o in self._orders_through(c.own_asks, lambda px: px <= best_bid, reverse=False):
                self.stats["crossed_fills"] += 1
                self._fill(c, o, o.px, o.sz, True, t, d)
        for is_buy, side in ((True, c.own_bids), (False, c.own_asks)):
            if not side:
                continue
            if bbo is None:
                levels = c.bids if is_buy else c.asks
                qty_at = {lv.px: lv.sz for lv in levels}
                edge = levels[-1].px if levels else None
            else:
                top = bbo.bid_px if is_buy else bbo.ask_px
                qty_at = {} if top is None else {top: bbo.bid_sz if is_buy else bbo.ask_sz}
                edge = top
            for px, lst in side.items():
                if edge is not None and ((is_buy and px < edge) or (not is_buy and px > edge)):
                    continue  # not visible: no information about our level
                new_qty = qty_at.get(px, 0.0)
                for o in lst:
                    if new_qty == o.level_qty and not o.traded:
                        continue  # nothing changed at our level (the common case)
                    o.ahead = depth_update(self.queue, o.ahead, o.level_qty, o.traded, new_qty)
                    o.level_qty = new_qty
                    o.traded = 0.0

    @staticmethod
    def _orders_through(
        side: dict[float, list[SimOrder]], pred: Callable[[float], bool], reverse: bool
    ) -> list[SimOrder]:
        """Our resting orders at prices matching ``pred``, best price first, then time priority."""
        return [o for px in sorted((px for px in side if pred(px)), reverse=reverse) for o in list(side[px])]

    def _on_trade(self, c: _Coin, ev: Trade, t: float) -> None:
        key = (ev.tid, ev.ts_exchange, ev.px, ev.sz, ev.side)
        rt = c.recent_trades
        if key in rt:
            self.stats["duplicate_trades"] += 1
            return
        rt.add(key)
        c.recent_order.append(key)
        if len(rt) > _RECENT_TRADES:
            rt.discard(c.recent_order.popleft())
        c.last_trade_px = ev.px
        if ev.side == "A":  # seller hit the bids
            if c.best_own_bid is None or ev.px > c.best_own_bid:
                return
            orders = self._orders_through(c.own_bids, lambda px: px >= ev.px, reverse=True)
        elif ev.side == "B":
            if c.best_own_ask is None or ev.px < c.best_own_ask:
                return
            orders = self._orders_through(c.own_asks, lambda px: px <= ev.px, reverse=False)
        else:
            raise SimExchangeError(f"trade side must be 'A' or 'B', got {ev.side!r}")
        # The printed size is all the liquidity this aggressor took at this price: our orders can only have
        # replaced part of it, so all our fills from one trade add up to at most its size.
        budget = ev.sz
        own_at_px = 0.0
        # Draw a response delay only when something can fill (keeps the random stream tied to real events).
        if not any(o.px != ev.px or (o.ahead is not None and o.ahead < ev.sz - _EPS) for o in orders):
            for o in orders:
                if o.ahead is not None:
                    o.ahead = max(o.ahead - ev.sz, 0.0)
                o.traded += ev.sz
            return
        d = self._delivery(t)
        for o in orders:
            if o.px != ev.px:
                # Traded through our price: the whole level at our price was consumed before this print.
                o.ahead = 0.0
                if budget > _EPS:
                    self.stats["through_fills"] += 1
                    budget -= self._fill(c, o, o.px, min(o.sz, budget), True, t, d)
                continue
            if o.ahead is not None:
                avail = budget - o.ahead - own_at_px
                if avail > _EPS:
                    q = self._fill(c, o, o.px, min(o.sz, avail), True, t, d)
                    own_at_px += q
                o.ahead = max(o.ahead - ev.sz, 0.0)
            o.traded += ev.sz

    def _pay_funding(self, c: _Coin, t: float) -> None:
        """Hourly funding at the latest rate: longs pay ``rate * oracle * size`` when the rate is positive."""
        n = math.floor(t / _HOUR) - math.floor(c.next_funding_t / _HOUR) + 1
        c.next_funding_t = (math.floor(t / _HOUR) + 1) * _HOUR
        p = c.pos
        if not p.position or c.funding_rate is None:
            return
        px = c.oracle_px if c.oracle_px is not None else c.mark()
        if px is None:
            return
        usdc = -p.position * px * c.funding_rate * n
        p.funding += usdc
        self.stats["fundings"] += 1
        self._emit(Funding(self._delivery(t), c.coin, usdc, c.funding_rate, p.position), None, t)


def _max_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _min_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
