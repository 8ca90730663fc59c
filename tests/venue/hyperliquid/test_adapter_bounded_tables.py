"""Issue 9 item 10: the adapter's per-order tables stay bounded in a long live session.

A stub exchange/info (plain objects, no network) answers every placement "resting" with a new oid and every cancel
"ok"; 50,000 place+cancel cycles must leave the tables at O(keep_finished), while late updates of recently
finished orders still de-duplicate and map back to their cloid."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from hlmm.market.instrument import Instrument, InstrumentRegistry
from hlmm.venue.base import CancelOrder, Fill, ModifyOrder, OrderAccepted, OrderCancelled, PlaceOrder
from hlmm.venue.hyperliquid.adapter import HyperliquidVenue
from hlmm.venue.hyperliquid.errors import CancelResult, OrderResult
from hlmm.venue.hyperliquid.wire import cloid_from_int


class StubExchange:
    def __init__(self) -> None:
        self.next_oid = 1_000

    def _oid(self) -> int:
        self.next_oid += 1
        return self.next_oid

    async def order(self, wires: list[Any]) -> list[OrderResult]:
        return [OrderResult("resting", oid=self._oid()) for _ in wires]

    async def batch_modify(self, items: list[Any]) -> list[OrderResult]:
        return [OrderResult("resting", oid=self._oid()) for _ in items]

    async def cancel_by_cloid(self, items: list[Any]) -> list[CancelResult]:
        return [CancelResult(True) for _ in items]

    async def cancel(self, items: list[Any]) -> list[CancelResult]:
        return [CancelResult(True) for _ in items]

    async def schedule_cancel(self, t: int | None) -> None:
        return None


class StubInfo:
    async def open_orders(self, account: str, dex: str = "") -> list[dict]:
        return []


def _venue(keep_finished: int = 500) -> tuple[HyperliquidVenue, list]:
    reg = InstrumentRegistry([Instrument("BTC", asset=0, sz_decimals=5)])
    v = HyperliquidVenue(StubInfo(), StubExchange(), reg, account="0x" + "ab" * 20, coins=["BTC"],
                         batch_interval_s=0.0, keep_finished=keep_finished)
    v.budget.cap = 10**9  # the request budget is not what this test is about
    events: list = []
    v.set_event_sink(events.append)
    return v, events


def _po(n: int) -> PlaceOrder:
    return PlaceOrder(coin="BTC", cloid=cloid_from_int(n), is_buy=n % 2 == 0, px=100_000.0 - (n % 7), sz=0.001)


def _table_bytes(v: HyperliquidVenue) -> int:
    return sum(sys.getsizeof(t) for t in (v._orders, v._oid_cloid, v._acked, v._ended, v._rejected, v._status_ref))


def test_50k_place_cancel_cycles_leave_tables_bounded() -> None:
    async def go() -> None:
        v, events = _venue(keep_finished=500)
        n_acc = n_can = 0
        for i in range(50_000):
            p = _po(i)
            await v.submit([p])
            await v.submit([CancelOrder(coin="BTC", cloid=p.cloid)])
            if i % 1000 == 999:
                n_acc += sum(isinstance(e, OrderAccepted) for e in events)
                n_can += sum(isinstance(e, OrderCancelled) for e in events)
                events.clear()
        n_acc += sum(isinstance(e, OrderAccepted) for e in events)
        n_can += sum(isinstance(e, OrderCancelled) for e in events)
        assert n_acc == 50_000 and n_can == 50_000  # every order still reported once
        sizes = v.table_sizes()
        bound = 3 * 500 + 10
        for name in ("orders", "oid_cloid", "acked", "ended", "status_ref", "rejected"):
            assert sizes[name] <= bound, (name, sizes)
        assert _table_bytes(v) < 1_000_000

    asyncio.run(go())


def test_modified_long_lived_order_keeps_only_recent_oids() -> None:
    async def go() -> None:
        v, _ = _venue(keep_finished=100)
        p = _po(1)
        await v.submit([p])
        for i in range(20_000):
            await v.submit([ModifyOrder(cloid=p.cloid, new=PlaceOrder(
                coin="BTC", cloid=p.cloid, is_buy=p.is_buy, px=p.px - (i % 5), sz=p.sz))])
            # place+cancel traffic alongside, so sweeps run
            q = _po(10 + i)
            await v.submit([q])
            await v.submit([CancelOrder(coin="BTC", cloid=q.cloid)])
        sizes = v.table_sizes()
        assert sizes["oid_cloid"] <= 2_000 and sizes["acked"] <= 2_000, sizes
        assert v._orders[p.cloid].remaining > 0  # the live order is never forgotten

    asyncio.run(go())


def test_late_updates_of_recently_finished_orders_still_dedup_and_map() -> None:
    async def go() -> None:
        v, events = _venue(keep_finished=200)
        placed: list[tuple[str, int]] = []
        for i in range(5_000):
            p = _po(i)
            await v.submit([p])
            oid = next(e.oid for e in reversed(events) if isinstance(e, OrderAccepted))
            placed.append((p.cloid, oid))
            await v.submit([CancelOrder(coin="BTC", cloid=p.cloid)])
        events.clear()
        cloid, oid = placed[-1]  # the most recently finished order
        # a late duplicate "canceled" update without cloid: mapped by oid, de-duplicated (no second event)
        v.on_ws_message(1.0, "orderUpdates", [{"order": {"coin": "BTC", "oid": oid, "sz": "0"},
                                                "status": "canceled"}])
        assert not [e for e in events if isinstance(e, OrderCancelled)]
        # a late fill without cloid maps back to the order's cloid
        v.on_ws_message(1.0, "userFills", {"fills": [{"coin": "BTC", "px": "100000", "sz": "0.001", "side": "B",
                                                       "tid": 77, "oid": oid, "fee": "0", "crossed": False}]})
        fills = [e for e in events if isinstance(e, Fill)]
        assert len(fills) == 1 and fills[0].cloid == cloid

    asyncio.run(go())


def test_seen_fills_window_bounded_and_a_replay_is_not_passed_on() -> None:
    """The adapter remembers the most recent fill keys only; the venue replays at most its 2000 most recent fills
    (userFills snapshot after a reconnect, REST resync), and such a replay is entirely de-duplicated."""
    from hlmm.venue.hyperliquid import adapter

    v, events = _venue()

    def msg(tids: range) -> dict:
        return {"fills": [{"coin": "BTC", "px": "100000", "sz": "0.001", "side": "B", "tid": t, "oid": 5,
                           "fee": "0", "crossed": False, "cloid": cloid_from_int(1)} for t in tids]}

    n = adapter._SEEN_FILLS_MAX + 5_000
    v.on_ws_message(1.0, "userFills", msg(range(n)))
    assert sum(isinstance(e, Fill) for e in events) == n
    assert v.table_sizes()["seen_fills"] == adapter._SEEN_FILLS_MAX
    events.clear()
    v.on_ws_message(2.0, "userFills", {"isSnapshot": True, **msg(range(n - 2_000, n))})
    assert not [e for e in events if isinstance(e, Fill)]
