"""Issue 9 items 1, 4, 7 (adapter side): a refused cancel is CancelFailed (no verdict), only the exchange's
per-order verdict is CancelRejected, and cancel_all cancels every known order without any /info request."""

from __future__ import annotations

from hlmm.venue.base import CancelFailed, CancelOrder, CancelRejected, OrderCancelled, PlaceOrder
from hlmm.venue.hyperliquid.adapter import HyperliquidVenue, _Order
from hlmm.venue.hyperliquid.errors import CancelResult, HyperliquidError, RateLimitError, classify_error
from tests.engine.helpers import REG

NEVER = "Order was never placed, already canceled, or filled."


class Info:
    def __init__(self) -> None:
        self.calls = 0

    async def open_orders(self, account: str, dex: str = "") -> list:
        self.calls += 1
        raise HyperliquidError("openOrders: HTTP 500")


class Exchange:
    def __init__(self) -> None:
        self.cancelled: list[int] = []
        self.mode = "ok"

    async def cancel(self, items: list) -> list:
        self.cancelled += [oid for _, oid in items]
        return [CancelResult(True) for _ in items]

    async def cancel_by_cloid(self, items: list) -> list:
        if self.mode == "429":
            raise RateLimitError("HTTP 429")
        return [CancelResult(False, NEVER, classify_error(NEVER)) if self.mode == "never"
                else CancelResult(False, "Too many cumulative requests sent", classify_error("Too many cumulative "
                                                                                            "requests sent"))
                for _ in items]


def venue() -> tuple[HyperliquidVenue, Info, Exchange, list]:
    info, ex, events = Info(), Exchange(), []
    v = HyperliquidVenue(info, ex, REG, account="0x" + "11" * 20, coins=["BTC"], batch_interval_s=0)
    v.set_event_sink(events.append)
    for k in range(5):
        cl = "0x" + f"{k:032x}"
        v._q_place.append(PlaceOrder("BTC", cl, True, 99_000.0 - k, 0.001))
    # pretend the places went out and rested (oids 100..104)
    for k, p in enumerate(list(v._q_place)):
        v._orders[p.cloid] = _Order("BTC", p.cloid, True, p.px, p.sz, remaining=p.sz)
        v._register_oid(p.cloid, 100 + k)
        v._acked.add((p.cloid, 100 + k))
    v._q_place.clear()
    return v, info, ex, events


async def test_cancel_all_cancels_known_orders_when_open_orders_fails():
    v, info, ex, events = venue()
    await v.cancel_all("BTC")
    assert sorted(ex.cancelled) == [100, 101, 102, 103, 104]
    assert len([e for e in events if isinstance(e, OrderCancelled)]) == 5
    assert info.calls == 1 and v.stats["cancel_all_info_failed"] == 1


async def test_rate_limited_cancel_is_cancel_failed_not_rejected():
    v, _, ex, events = venue()
    ex.mode = "429"
    await v.submit([CancelOrder("BTC", "0x" + f"{0:032x}")])
    assert [type(e) for e in events] == [CancelFailed]
    assert events[0].rate_limited and v.rate_limited and v.stats["rate_limited"] >= 1
    assert v._cancel_unsettled == {"0x" + f"{0:032x}"}
    events.clear()
    ex.mode = "budget"  # per-order rate-limit text: still no verdict on the order
    await v.submit([CancelOrder("BTC", "0x" + f"{1:032x}")])
    assert [type(e) for e in events] == [CancelFailed]
    events.clear()
    ex.mode = "never"  # the exchange's verdict: the order is not live
    await v.submit([CancelOrder("BTC", "0x" + f"{2:032x}")])
    assert [type(e) for e in events] == [CancelRejected]
