"""Validation of every message the Hyperliquid adapter receives (user stream and REST replies). Pure functions.

Nothing from the venue is trusted: a NaN price, a size <= 0, a NaN fee, a string where a number belongs or a
missing field must never reach the engine (a fill with a NaN price raised deep in the portfolio and took the
process down with orders resting). Each function returns a typed, checked value or raises :class:`BadMessage`
naming the ``kind`` of message and the problem. The adapter drops a bad user-stream item (counting it, see
:class:`BadInputCounter`) and treats a bad REST reply like a failed request (``BadMessage`` is a
``HyperliquidError``): the data it carried is not believed, the request is retried later.

Numbers: Hyperliquid sends them as decimal strings; ints/floats are accepted too (never bools). Ids (oid, tid) are
non-negative integers (or digit strings). Cloids are returned lower-case.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hlmm.venue.hyperliquid.errors import HyperliquidError


class BadMessage(HyperliquidError):
    """A venue message without the documented shape or with impossible values. ``kind`` names the message."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(f"bad {kind}: {problem}")
        self.kind = kind
        self.problem = problem


# ---- scalars --------------------------------------------------------------------------------------------------
def number(x: Any, kind: str, what: str) -> float:
    """A finite number (decimal string, int or float; never a bool)."""
    if isinstance(x, bool) or not isinstance(x, str | int | float):
        raise BadMessage(kind, f"{what} is not a number: {x!r:.60}")
    try:
        v = float(x)
    except ValueError:
        raise BadMessage(kind, f"{what} is not a number: {x!r:.60}") from None
    if not math.isfinite(v):
        raise BadMessage(kind, f"{what} must be finite, got {x!r:.60}")
    return v


def positive(x: Any, kind: str, what: str) -> float:
    v = number(x, kind, what)
    if not v > 0:
        raise BadMessage(kind, f"{what} must be > 0, got {x!r:.60}")
    return v


def non_negative(x: Any, kind: str, what: str) -> float:
    v = number(x, kind, what)
    if v < 0:
        raise BadMessage(kind, f"{what} must be >= 0, got {x!r:.60}")
    return v


def ident(x: Any, kind: str, what: str) -> int:
    """A non-negative integer id (int or digit string)."""
    if isinstance(x, bool):
        raise BadMessage(kind, f"{what} is not an integer: {x!r:.60}")
    if isinstance(x, int):
        v = x
    elif isinstance(x, str) and x.isdigit():
        v = int(x)
    else:
        raise BadMessage(kind, f"{what} is not an integer: {x!r:.60}")
    if v < 0:
        raise BadMessage(kind, f"{what} must be >= 0, got {x!r:.60}")
    return v


def text(x: Any, kind: str, what: str) -> str:
    if not isinstance(x, str) or not x:
        raise BadMessage(kind, f"{what} must be a non-empty string, got {x!r:.60}")
    return x


def cloid(x: Any, kind: str) -> str | None:
    """An optional cloid, lower-cased (None when absent)."""
    if x is None:
        return None
    if not isinstance(x, str) or not x:
        raise BadMessage(kind, f"cloid must be a string, got {x!r:.60}")
    return x.lower()


def side(x: Any, kind: str) -> bool:
    """'B' (buy) -> True, 'A' (sell) -> False."""
    if x == "B":
        return True
    if x == "A":
        return False
    raise BadMessage(kind, f"side must be 'B' or 'A', got {x!r:.60}")


def obj(x: Any, kind: str, what: str) -> dict:
    if not isinstance(x, dict):
        raise BadMessage(kind, f"{what} must be an object, got {type(x).__name__}")
    return x


def array(x: Any, kind: str, what: str) -> list:
    if not isinstance(x, list):
        raise BadMessage(kind, f"{what} must be a list, got {type(x).__name__}")
    return x


# ---- messages -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FillMsg:
    tid: int
    oid: int
    coin: str
    px: float
    sz: float
    is_buy: bool
    fee: float  # fee + builderFee (may be negative: rebate)
    is_maker: bool
    cloid: str | None
    time_ms: int


def fill(f: Any) -> FillMsg:
    """One fill (userFills WS, userEvents fills, REST userFills)."""
    k = "fill"
    f = obj(f, k, "fill")
    crossed = f.get("crossed", False)
    if not isinstance(crossed, bool):
        raise BadMessage(k, f"crossed must be a boolean, got {crossed!r:.60}")
    bf = f.get("builderFee")
    return FillMsg(
        tid=ident(f.get("tid"), k, "tid"),
        oid=ident(f.get("oid"), k, "oid"),
        coin=text(f.get("coin"), k, "coin"),
        px=positive(f.get("px"), k, "px"),
        sz=positive(f.get("sz"), k, "sz"),
        is_buy=side(f.get("side"), k),
        fee=number(f.get("fee", 0), k, "fee") + (number(bf, k, "builderFee") if bf not in (None, "") else 0.0),
        is_maker=not crossed,
        cloid=cloid(f.get("cloid"), k),
        time_ms=ident(f.get("time", 0), k, "time"),
    )


@dataclass(frozen=True, slots=True)
class OrderUpdateMsg:
    coin: str
    oid: int
    cloid: str | None
    status: str
    sz: float  # remaining size


def order_update(u: Any) -> OrderUpdateMsg:
    """One ``orderUpdates`` item ``{"order": {...}, "status": ..., "statusTimestamp": ...}``."""
    k = "order_update"
    u = obj(u, k, "update")
    o = obj(u.get("order"), k, "order")
    sz = o.get("sz")
    return OrderUpdateMsg(
        coin=text(o.get("coin"), k, "coin"),
        oid=ident(o.get("oid"), k, "oid"),
        cloid=cloid(o.get("cloid"), k),
        status=text(u.get("status"), k, "status"),
        sz=0.0 if sz is None else non_negative(sz, k, "sz"),
    )


@dataclass(frozen=True, slots=True)
class FundingMsg:
    coin: str
    usdc: float
    rate: float
    szi: float


def funding(f: Any) -> FundingMsg:
    k = "funding"
    f = obj(f, k, "funding")
    return FundingMsg(coin=text(f.get("coin"), k, "coin"), usdc=number(f.get("usdc"), k, "usdc"),
                      rate=number(f.get("fundingRate"), k, "fundingRate"), szi=number(f.get("szi"), k, "szi"))


def non_user_cancel(c: Any) -> tuple[str, int]:
    """One ``nonUserCancel`` item -> (coin, oid)."""
    k = "non_user_cancel"
    c = obj(c, k, "item")
    return text(c.get("coin"), k, "coin"), ident(c.get("oid"), k, "oid")


@dataclass(frozen=True, slots=True)
class OpenOrderRow:
    coin: str
    oid: int
    cloid: str | None
    is_buy: bool
    px: float
    sz: float


def open_order(r: Any) -> OpenOrderRow:
    k = "open_orders"
    r = obj(r, k, "row")
    return OpenOrderRow(coin=text(r.get("coin"), k, "coin"), oid=ident(r.get("oid"), k, "oid"),
                        cloid=cloid(r.get("cloid"), k), is_buy=side(r.get("side"), k),
                        px=positive(r.get("limitPx"), k, "limitPx"), sz=positive(r.get("sz"), k, "sz"))


def open_orders(rows: Any) -> list[OpenOrderRow]:
    """A REST ``openOrders`` reply. One bad row makes the whole reply bad: a snapshot missing an order of ours
    would tell the engine that order is gone while it still rests."""
    return [open_order(r) for r in array(rows, "open_orders", "reply")]


@dataclass(frozen=True, slots=True)
class Clearinghouse:
    position: float
    entry_px: float
    account_value: float


def clearinghouse(ch: Any, coin: str) -> Clearinghouse:
    """A REST ``clearinghouseState`` reply: ``coin``'s position and entry price, the account value."""
    k = "clearinghouse"
    ch = obj(ch, k, "reply")
    pos, entry = 0.0, 0.0
    for ap in array(ch.get("assetPositions", []), k, "assetPositions"):
        p = obj(obj(ap, k, "assetPosition").get("position"), k, "position")
        if text(p.get("coin"), k, "coin") != coin:
            continue
        pos = number(p.get("szi"), k, "szi")
        e = p.get("entryPx")
        entry = 0.0 if e in (None, "") else non_negative(e, k, "entryPx")
    ms = obj(ch.get("marginSummary", {}), k, "marginSummary")
    av = ms.get("accountValue")
    return Clearinghouse(pos, entry, 0.0 if av in (None, "") else number(av, k, "accountValue"))


@dataclass(frozen=True, slots=True)
class OrderStatusMsg:
    status: str
    oid: int
    cloid: str | None
    sz: float


def order_status(st: Any) -> OrderStatusMsg | None:
    """A REST ``orderStatus`` reply: the order's status, or None when the exchange does not know the order
    (``{"status": "unknownOid"}``). Anything else malformed raises: it says nothing about the order."""
    k = "order_status"
    st = obj(st, k, "reply")
    s = text(st.get("status"), k, "status")
    if s != "order":
        return None
    outer = obj(st.get("order"), k, "order")
    o = obj(outer.get("order"), k, "order.order")
    sz = o.get("sz")
    return OrderStatusMsg(status=text(outer.get("status"), k, "order status"), oid=ident(o.get("oid"), k, "oid"),
                          cloid=cloid(o.get("cloid"), k), sz=0.0 if sz is None else non_negative(sz, k, "sz"))


def rate_limit(r: Any) -> tuple[int, int]:
    """A REST ``userRateLimit`` reply -> (nRequestsCap, nRequestsUsed)."""
    k = "rate_limit"
    r = obj(r, k, "reply")
    return ident(r.get("nRequestsCap"), k, "nRequestsCap"), ident(r.get("nRequestsUsed"), k, "nRequestsUsed")


# ---- counting -------------------------------------------------------------------------------------------------
class BadInputCounter:
    """Counts bad messages per kind and logs the first of each kind in full (later ones only count: a venue that
    sends garbage every 100 ms must not flood the log). ``counts`` is the running count per kind."""

    def __init__(self, log: Any, source: str, clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.source = source
        self._clock = clock
        self.counts: dict[str, int] = {}
        self.last_ts: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def note(self, kind: str, problem: str, data: Any = None) -> int:
        """Count one bad message of ``kind``; returns the running count of that kind."""
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        self.last_ts = self._clock()
        if n == 1:
            self.log.warning("bad_input", source=self.source, kind=kind, problem=problem,
                             data=None if data is None else str(data)[:300],
                             note="first of its kind: later ones are only counted")
        return n

    def recent(self, window_s: float, now: float | None = None) -> bool:
        """Whether a bad message arrived in the last ``window_s`` seconds."""
        if self.last_ts is None:
            return False
        return (self._clock() if now is None else now) - self.last_ts <= window_s
