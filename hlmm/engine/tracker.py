"""Order tracker: every order we ever sent, keyed by cloid, with a state machine that tolerates
late, duplicated and out-of-order venue events.

Intent is recorded *before* an action is sent (``on_place`` / ``on_cancel_sent`` / ``on_modify_sent``),
so an order can never exist at the venue without the tracker counting its exposure.

Modify is cancel-replace (Hyperliquid): the replacement keeps the cloid and gets a new oid. While a
modify is in flight both legs may still fill, so the exposure of a ``PENDING_MODIFY`` order is the old
leg's remaining size plus the new leg's size (never less than what can really fill).

Resolution rules for ambiguous events (why they are safe):
- a fill is always applied (fills are facts; the portfolio dedupes by (tid, oid) separately);
- an ack for a terminal order is ignored unless the order was only *presumed* gone (cancel rejected /
  missing from a snapshot); then the order is revived so the engine can cancel it;
- ``CancelRejected`` is the exchange's verdict that it has no such resting order ("never placed, already
  canceled, or filled"): the order becomes terminal but ``uncertain`` (late fills/acks still reach it);
- ``CancelFailed`` (429, request budget, transport, whole-action refusal) says nothing about the order: it stays
  live and cancel-pending; the failure count and time are kept so the engine retries with backoff;
- a rejected modify leaves the old leg in an unknown state: the order is flagged ``needs_cancel`` so
  the engine resolves it with a cancel rather than guessing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from hlmm.engine.recent import RecentKeys
from hlmm.venue.base import (
    CancelFailed,
    CancelRejected,
    Fill,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
)

_EPS = 1e-12
# Terminal orders a live session keeps (backtests keep 20000). Late events about a finished order (a fill racing
# its cancel, an ack after the final fill, a snapshot that still lists it) arrive within seconds; 500 orders are
# minutes of history even at the fastest requoting. An event about an order forgotten beyond that is counted as
# unknown and changes no exposure (a terminal order has none); a fill is still applied to the position by the
# portfolio, which de-duplicates on its own.
LIVE_KEEP_TERMINAL = 500


class TrackerError(ValueError):
    """Misuse of the tracker (duplicate cloid, modify of an unknown order, ...)."""


class OrderState(StrEnum):
    PENDING_NEW = "pending_new"
    RESTING = "resting"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_MODIFY = "pending_modify"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


TERMINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})


@dataclass(slots=True)
class PendingModify:
    """The replacement leg of an in-flight cancel-replace."""

    px: float
    sz: float
    ts: float
    reason: str


@dataclass(slots=True)
class TrackedOrder:
    """One order (one cloid) across its incarnations (oids)."""

    cloid: str
    coin: str
    is_buy: bool
    px: float  # price of the current incarnation
    sz: float  # size of the current incarnation
    remaining: float  # size of the current incarnation that can still fill
    tif: Tif
    reduce_only: bool
    created_ts: float
    updated_ts: float
    reason: str
    oid: int | None = None
    filled: float = 0.0  # cumulative over all incarnations
    acked: bool = False
    cancel_pending: bool = False
    cancel_reason: str = ""
    cancel_sent_ts: float = 0.0  # when the latest cancel request was handed to the venue
    cancel_failures: int = 0  # cancel requests in a row that got no verdict (refused/lost): the retry backoff
    cancel_failed_ts: float = 0.0  # when the latest of them failed
    modify: PendingModify | None = None
    terminal: OrderState | None = None
    uncertain: bool = False  # terminal only by presumption (cancel rejected / missing from snapshot)
    needs_cancel: bool = False  # state at the venue unknown: the engine should cancel it
    foreign: bool = False  # adopted from the venue, not placed by this engine
    old_oids: set[int] = field(default_factory=set)
    state: OrderState = OrderState.PENDING_NEW

    def refresh(self) -> None:
        """Derive ``state`` from the flags (one place defines the state machine's precedence)."""
        if self.terminal is not None:
            self.state = self.terminal
        elif self.cancel_pending:
            self.state = OrderState.PENDING_CANCEL
        elif self.modify is not None:
            self.state = OrderState.PENDING_MODIFY
        elif not self.acked:
            self.state = OrderState.PENDING_NEW
        elif self.filled > _EPS and self.remaining < self.sz - _EPS:
            self.state = OrderState.PARTIALLY_FILLED
        else:
            self.state = OrderState.RESTING

    @property
    def is_live(self) -> bool:
        return self.terminal is None

    @property
    def exposure(self) -> float:
        """Size that could still fill: remaining of the current leg plus the pending replacement."""
        if self.terminal is not None:
            return 0.0
        extra = self.modify.sz if self.modify is not None else 0.0
        return max(self.remaining, 0.0) + extra

    @property
    def target_px(self) -> float:
        """Price this order is heading to (the replacement's when a modify is in flight)."""
        return self.modify.px if self.modify is not None else self.px

    @property
    def target_sz(self) -> float:
        return self.modify.sz if self.modify is not None else self.remaining


class OrderTracker:
    """Keyed by cloid; records intent before sending; every order accounted for.

    Terminal orders are kept (bounded, oldest evicted) so late events still find them. ``max_fill_keys`` bounds
    the fill de-duplication to the most recent (tid, oid) keys (live: :data:`hlmm.engine.recent.LIVE_FILL_KEYS`,
    why that is safe is explained there); None keeps every key."""

    def __init__(self, keep_terminal: int = 20_000, max_fill_keys: int | None = None) -> None:
        self._live: dict[str, TrackedOrder] = {}
        self._done: OrderedDict[str, TrackedOrder] = OrderedDict()
        self._keep_terminal = keep_terminal
        self._fill_keys = RecentKeys(max_fill_keys)
        self.counts: dict[str, int] = {
            "placed": 0,
            "accepted": 0,
            "rejected": 0,
            "cancel_sent": 0,
            "cancelled": 0,
            "cancel_rejected": 0,
            "cancel_failed": 0,
            "modify_sent": 0,
            "modified": 0,
            "modify_rejected": 0,
            "filled": 0,
            "fills": 0,
            "duplicate_fills": 0,
            "late_events": 0,
            "unknown_events": 0,
            "revived": 0,
        }

    def set_bounds(self, keep_terminal: int, max_fill_keys: int | None) -> None:
        """Change the memory bounds (live sessions call this once the engine is built); evicts at once."""
        if keep_terminal < 0:
            raise TrackerError(f"keep_terminal must be >= 0, got {keep_terminal}")
        self._keep_terminal = keep_terminal
        self._fill_keys.resize(max_fill_keys)
        self._evict()

    @property
    def n_terminal(self) -> int:
        """Terminal orders currently kept."""
        return len(self._done)

    # ---- lookups --------------------------------------------------------
    def get(self, cloid: str) -> TrackedOrder | None:
        o = self._live.get(cloid)
        return o if o is not None else self._done.get(cloid)

    def __contains__(self, cloid: object) -> bool:
        return cloid in self._live or cloid in self._done

    def live(self, coin: str | None = None) -> list[TrackedOrder]:
        """Orders that are not terminal (incl. pending new/cancel/modify)."""
        if coin is None:
            return list(self._live.values())
        return [o for o in self._live.values() if o.coin == coin]

    def all_orders(self, coin: str | None = None) -> list[TrackedOrder]:
        """Every tracked order, live and terminal (terminal ones as far as they are still kept), oldest first."""
        out = [*self._done.values(), *self._live.values()]
        return out if coin is None else [o for o in out if o.coin == coin]

    def fill_keys(self) -> frozenset[tuple[int, int]]:
        """The (tid, oid) keys of every fill applied (duplicates are counted, not applied); the most recent ones
        only when the window is bounded."""
        return frozenset(self._fill_keys)  # type: ignore[arg-type]

    def exposure(self, is_buy: bool) -> float:
        """Sum of size that could still fill on a side (pending new/cancel/modify included)."""
        return sum(o.exposure for o in self._live.values() if o.is_buy == is_buy)

    def resting_counts(self) -> tuple[int, int]:
        """(bids, asks) acknowledged at the venue and not terminal (what the market can see)."""
        nb = na = 0
        for o in self._live.values():
            if o.acked:
                if o.is_buy:
                    nb += 1
                else:
                    na += 1
        return nb, na

    # ---- intents (call BEFORE sending) -----------------------------------
    def on_place(self, req: PlaceOrder, ts: float) -> TrackedOrder:
        if req.cloid in self._live or req.cloid in self._done:
            raise TrackerError(f"duplicate cloid {req.cloid}")
        if not (req.sz > 0 and req.px > 0):
            raise TrackerError(f"order {req.cloid}: px and sz must be > 0, got px={req.px} sz={req.sz}")
        o = TrackedOrder(
            cloid=req.cloid,
            coin=req.coin,
            is_buy=req.is_buy,
            px=req.px,
            sz=req.sz,
            remaining=req.sz,
            tif=req.tif,
            reduce_only=req.reduce_only,
            created_ts=ts,
            updated_ts=ts,
            reason=req.reason,
        )
        o.refresh()
        self._live[req.cloid] = o
        self.counts["placed"] += 1
        return o

    def on_cancel_sent(self, cloid: str, ts: float, reason: str = "") -> TrackedOrder:
        o = self._live.get(cloid)
        if o is None:
            raise TrackerError(f"cancel of unknown or finished order {cloid}")
        o.cancel_pending = True
        o.cancel_reason = reason
        o.cancel_sent_ts = ts
        o.needs_cancel = False
        o.updated_ts = ts
        o.refresh()
        self.counts["cancel_sent"] += 1
        return o

    def on_modify_sent(self, req: ModifyOrder, ts: float) -> TrackedOrder:
        o = self._live.get(req.cloid)
        if o is None:
            raise TrackerError(f"modify of unknown or finished order {req.cloid}")
        if req.new.cloid != req.cloid:
            raise TrackerError(f"modify must keep the cloid: {req.cloid} -> {req.new.cloid}")
        if req.new.is_buy != o.is_buy:
            raise TrackerError(f"modify must not change side of {req.cloid}")
        if o.modify is not None or o.cancel_pending or not o.acked:
            raise TrackerError(f"order {req.cloid} is {o.state}: only a resting order can be modified")
        o.modify = PendingModify(px=req.new.px, sz=req.new.sz, ts=ts, reason=req.reason or req.new.reason)
        o.updated_ts = ts
        o.refresh()
        self.counts["modify_sent"] += 1
        return o

    # ---- venue events ----------------------------------------------------
    def _event_order(self, cloid: str, ts: float) -> TrackedOrder | None:
        """The order an event is about, stamped with the event time; None (counted) for a cloid we never sent."""
        o = self.get(cloid)
        if o is None:
            self.counts["unknown_events"] += 1
            return None
        o.updated_ts = ts
        return o

    def on_accepted(self, ev: OrderAccepted) -> TrackedOrder | None:
        """Returns the order, or None when the cloid is unknown (foreign) or the ack is stale."""
        o = self._event_order(ev.cloid, ev.ts)
        if o is None:
            return None
        if ev.oid in o.old_oids:
            self.counts["late_events"] += 1
            return o
        if o.terminal is not None:
            if o.uncertain and o.terminal == OrderState.CANCELLED:
                # We presumed it gone, the venue says it rests: it is live again (and unwanted).
                self._revive(o)
                o.oid = ev.oid
                o.acked = True
                o.needs_cancel = True
                o.refresh()
                return o
            self.counts["late_events"] += 1  # e.g. an ack delivered after the final fill
            return o
        if o.modify is not None and o.acked and o.oid is not None and ev.oid != o.oid:
            self._apply_modify(o, ev.oid)
        elif o.modify is not None and o.oid is None and o.acked:
            # Old leg already confirmed cancelled; this ack is the replacement.
            self._apply_modify(o, ev.oid)
        else:
            o.oid = ev.oid
            o.acked = True
            self.counts["accepted"] += 1
        o.refresh()
        return o

    def on_rejected(self, ev: OrderRejected) -> TrackedOrder | None:
        o = self._event_order(ev.cloid, ev.ts)
        if o is None:
            return None
        if o.terminal is not None:
            self.counts["late_events"] += 1
            return o
        if o.modify is not None:
            self.counts["modify_rejected"] += 1
            o.modify = None
            if o.oid is None or ev.reason == RejectReason.UNKNOWN_ORDER:
                # The old leg is gone (cancelled or filled); the replacement never existed.
                self._finish(o, OrderState.CANCELLED, uncertain=True)
            else:
                # Whether the venue cancelled the old leg is not knowable from here: resolve by cancelling.
                o.needs_cancel = True
                o.refresh()
            return o
        if o.acked:
            # A reject for an order that already rests: nothing we sent is pending; keep it, count it.
            self.counts["late_events"] += 1
            return o
        self.counts["rejected"] += 1
        self._finish(o, OrderState.REJECTED)
        return o

    def on_cancelled(self, ev: OrderCancelled) -> TrackedOrder | None:
        o = self._event_order(ev.cloid, ev.ts)
        if o is None:
            return None
        if ev.oid in o.old_oids:
            self.counts["late_events"] += 1
            return o
        if o.terminal is not None:
            if o.uncertain:
                o.uncertain = False  # presumption confirmed
            else:
                self.counts["late_events"] += 1
            return o
        if o.modify is not None and o.oid is not None and ev.oid == o.oid and not o.cancel_pending:
            # The old leg of a cancel-replace left the book; wait for the replacement's ack/reject.
            o.old_oids.add(ev.oid)
            o.oid = None
            o.remaining = 0.0
            o.refresh()
            return o
        if o.oid is None:
            o.oid = ev.oid  # stays None for an order cancelled before it was sent ("no oid", never 0)
        self.counts["cancelled"] += 1
        self._finish(o, OrderState.CANCELLED)
        return o

    def on_cancel_rejected(self, ev: CancelRejected) -> TrackedOrder | None:
        o = self._event_order(ev.cloid, ev.ts)
        if o is None:
            return None
        self.counts["cancel_rejected"] += 1
        if o.terminal is not None:
            return o
        # "Never placed, already canceled, or filled": not on the book. Fills/cancel events may still arrive.
        if o.remaining <= _EPS and o.modify is None:
            self._finish(o, OrderState.FILLED)
        else:
            self._finish(o, OrderState.CANCELLED, uncertain=True)
        return o

    def on_cancel_failed(self, ev: CancelFailed) -> TrackedOrder | None:
        """A cancel got no verdict on the order (refused as a whole, rate-limited, lost): the order may still rest.
        It stays live and cancel-pending; the failure is counted for the engine's retry backoff."""
        o = self._event_order(ev.cloid, ev.ts)
        if o is None:
            return None
        self.counts["cancel_failed"] += 1
        if o.terminal is not None:
            return o  # a verdict (cancel, fill, rejection) already ended it: a failed retry changes nothing
        o.cancel_failures += 1
        o.cancel_failed_ts = ev.ts
        if not o.cancel_pending:
            o.needs_cancel = True  # a cancel we no longer count as pending: the engine must send one again
        o.refresh()
        return o

    def on_fill(self, f: Fill) -> TrackedOrder | None:
        """Apply a fill (deduplicated by (tid, oid)). Returns None for unknown cloids or duplicates."""
        key = (f.tid, f.oid)
        if key in self._fill_keys:
            self.counts["duplicate_fills"] += 1
            return None
        o = self.get(f.cloid)
        if o is None:
            self.counts["unknown_events"] += 1
            return None
        self._fill_keys.add(key)
        self.counts["fills"] += 1
        o.updated_ts = f.ts
        o.filled += f.sz
        if f.oid in o.old_oids:
            self.counts["late_events"] += 1  # a fill of a replaced leg: position changes, exposure already gone
            return o
        if o.terminal is not None:
            if o.terminal == OrderState.CANCELLED and f.remaining <= _EPS and f.oid == o.oid:
                o.terminal = OrderState.FILLED
                o.refresh()
            o.remaining = max(0.0, f.remaining) if f.oid == o.oid else o.remaining
            o.uncertain = False
            return o
        if o.modify is not None:
            if o.oid is not None and f.oid == o.oid:
                o.remaining = max(0.0, f.remaining)  # old leg filling while the modify is in flight
                o.refresh()
                return o
            self._apply_modify(o, f.oid)  # the replacement filled before its ack arrived
        elif o.oid is None:
            o.oid = f.oid
            o.acked = True
        o.remaining = max(0.0, f.remaining)
        if o.remaining <= _EPS:
            self.counts["filled"] += 1
            self._finish(o, OrderState.FILLED)
        else:
            o.refresh()
        return o

    def presume_gone(self, cloid: str, ts: float) -> TrackedOrder | None:
        """Venue truth (a snapshot) does not show this order: terminal, but late events may revive it."""
        o = self._live.get(cloid)
        if o is None:
            return None
        o.updated_ts = ts
        o.modify = None
        self._finish(o, OrderState.CANCELLED, uncertain=True)
        return o

    def adopt(self, coin: str, cloid: str, oid: int, is_buy: bool, px: float, sz: float, ts: float) -> TrackedOrder:
        """Track a resting order found at the venue (restart/foreign) so its exposure is counted."""
        o = self.get(cloid)
        if o is None:
            o = TrackedOrder(
                cloid=cloid, coin=coin, is_buy=is_buy, px=px, sz=sz, remaining=sz, tif=Tif.ALO,
                reduce_only=False, created_ts=ts, updated_ts=ts, reason="adopted", foreign=True,
            )
            self._live[cloid] = o
        elif o.terminal is not None:
            self._revive(o)
        o.oid, o.acked, o.px, o.remaining = oid, True, px, sz
        o.sz = max(o.sz, sz)
        o.modify = None
        o.updated_ts = ts
        o.refresh()
        return o

    # ---- internals -------------------------------------------------------
    def _apply_modify(self, o: TrackedOrder, new_oid: int) -> None:
        m = o.modify
        if m is None:
            return
        if o.oid is not None:
            o.old_oids.add(o.oid)
        o.oid = new_oid
        o.acked = True
        o.px, o.sz, o.remaining = m.px, m.sz, m.sz
        o.reason = m.reason
        o.modify = None
        self.counts["modified"] += 1

    def _finish(self, o: TrackedOrder, state: OrderState, uncertain: bool = False) -> None:
        o.terminal = state
        o.uncertain = uncertain
        o.cancel_pending = False
        o.needs_cancel = False
        o.modify = None
        if state != OrderState.FILLED or o.remaining < 0:
            o.remaining = max(o.remaining, 0.0)
        if state == OrderState.FILLED:
            o.remaining = 0.0
        o.refresh()
        self._live.pop(o.cloid, None)
        self._done[o.cloid] = o
        self._done.move_to_end(o.cloid)
        self._evict()

    def _evict(self) -> None:
        while len(self._done) > self._keep_terminal:
            self._done.popitem(last=False)

    def _revive(self, o: TrackedOrder) -> None:
        self._done.pop(o.cloid, None)
        o.terminal = None
        o.uncertain = False
        self._live[o.cloid] = o
        self.counts["revived"] += 1
