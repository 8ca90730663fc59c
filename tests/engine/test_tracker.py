"""Order tracker state machine, incl. late, duplicate and out-of-order venue events."""

from __future__ import annotations

import pytest

from hlmm.engine.tracker import OrderState, OrderTracker, TrackerError
from hlmm.venue.base import (
    CancelRejected,
    Fill,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
)

C = "BTC"


def place(tr: OrderTracker, cloid: str = "0x1", is_buy: bool = True, px: float = 100.0, sz: float = 1.0):
    return tr.on_place(PlaceOrder(coin=C, cloid=cloid, is_buy=is_buy, px=px, sz=sz), 0.0)


def fill(cloid="0x1", oid=11, tid=1, sz=0.4, remaining=0.6, is_buy=True, px=100.0):
    return Fill(ts=1.0, coin=C, cloid=cloid, oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=0.0, is_maker=True,
                remaining=remaining)


def test_happy_path_pending_resting_partial_filled():
    tr = OrderTracker()
    o = place(tr)
    assert o.state == OrderState.PENDING_NEW and tr.exposure(True) == 1.0
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    assert o.state == OrderState.RESTING and o.oid == 11
    tr.on_fill(fill())
    assert o.state == OrderState.PARTIALLY_FILLED and tr.exposure(True) == pytest.approx(0.6)
    tr.on_fill(fill(tid=2, sz=0.6, remaining=0.0))
    assert o.state == OrderState.FILLED and tr.live() == [] and tr.exposure(True) == 0.0
    assert o.filled == pytest.approx(1.0)


def test_duplicate_fill_counted_once():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    assert tr.on_fill(fill()) is not None
    assert tr.on_fill(fill()) is None
    assert o.filled == pytest.approx(0.4) and tr.counts["duplicate_fills"] == 1


def test_reject_and_cancel_are_terminal():
    tr = OrderTracker()
    o = place(tr)
    tr.on_rejected(OrderRejected(0.1, C, "0x1", RejectReason.POST_ONLY_CROSS, "Post only order ..."))
    assert o.state == OrderState.REJECTED and tr.exposure(True) == 0.0
    o2 = place(tr, "0x2")
    tr.on_accepted(OrderAccepted(0.1, C, "0x2", 12))
    tr.on_cancel_sent("0x2", 0.2, "stale px")
    assert o2.state == OrderState.PENDING_CANCEL and tr.exposure(True) == 1.0  # can still fill
    tr.on_cancelled(OrderCancelled(0.3, C, "0x2", 12))
    assert o2.state == OrderState.CANCELLED and tr.exposure(True) == 0.0


def test_fill_after_cancel_request_then_cancel_rejected_because_filled():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_cancel_sent("0x1", 0.2)
    tr.on_fill(fill(sz=1.0, remaining=0.0))
    assert o.state == OrderState.FILLED
    tr.on_cancel_rejected(CancelRejected(0.4, C, "0x1", "Order was never placed, already canceled, or filled."))
    assert o.state == OrderState.FILLED and o.filled == 1.0


def test_cancel_rejected_before_fill_then_late_fill():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_cancel_sent("0x1", 0.2)
    tr.on_cancel_rejected(CancelRejected(0.3, C, "0x1", "Order was never placed, already canceled, or filled."))
    assert o.state == OrderState.CANCELLED and o.uncertain
    tr.on_fill(fill(sz=1.0, remaining=0.0))  # the fill that made the cancel fail, delivered late
    assert o.state == OrderState.FILLED and o.filled == 1.0 and not o.uncertain


def test_ack_after_fill_does_not_resurrect():
    tr = OrderTracker()
    o = place(tr)
    tr.on_fill(fill(sz=1.0, remaining=0.0))  # fill delivered before the ack
    assert o.state == OrderState.FILLED
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    assert o.state == OrderState.FILLED and tr.live() == [] and tr.counts["late_events"] == 1


def test_cancel_before_ack_out_of_order():
    tr = OrderTracker()
    o = place(tr)
    tr.on_cancel_sent("0x1", 0.05)
    tr.on_cancelled(OrderCancelled(0.3, C, "0x1", 11))
    tr.on_accepted(OrderAccepted(0.2, C, "0x1", 11))  # ack delivered after the cancel
    assert o.state == OrderState.CANCELLED and tr.live() == []


def test_presumed_gone_revived_by_ack():
    tr = OrderTracker()
    o = place(tr)
    tr.on_cancel_sent("0x1", 0.05)
    tr.on_cancel_rejected(CancelRejected(0.1, C, "0x1", "Order was never placed, already canceled, or filled."))
    tr.on_accepted(OrderAccepted(0.2, C, "0x1", 11))  # it rests after all: must be visible again
    assert o.is_live and o.needs_cancel and tr.exposure(True) == 1.0


def test_modify_cancel_replace_new_oid_same_cloid():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_fill(fill(sz=0.4, remaining=0.6))
    new = PlaceOrder(coin=C, cloid="0x1", is_buy=True, px=99.0, sz=1.0)
    tr.on_modify_sent(ModifyOrder(cloid="0x1", new=new), 0.2)
    assert o.state == OrderState.PENDING_MODIFY
    assert tr.exposure(True) == pytest.approx(1.6)  # old leg's remaining + new leg: both may fill
    tr.on_cancelled(OrderCancelled(0.3, C, "0x1", 11))  # old leg leaves the book
    assert o.state == OrderState.PENDING_MODIFY and tr.exposure(True) == pytest.approx(1.0)
    tr.on_accepted(OrderAccepted(0.3, C, "0x1", 12))
    assert o.state == OrderState.RESTING and o.oid == 12 and o.px == 99.0 and o.remaining == 1.0
    # late fill of the old oid: counted as filled, exposure of the new leg unchanged
    tr.on_fill(fill(oid=11, tid=5, sz=0.1, remaining=0.5))
    assert o.filled == pytest.approx(0.5) and o.remaining == 1.0 and o.is_live
    tr.on_cancelled(OrderCancelled(0.5, C, "0x1", 11))  # duplicate old-leg cancel: ignored
    assert o.is_live


def test_modify_ack_without_old_leg_cancel_and_new_leg_fill_before_ack():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_modify_sent(ModifyOrder("0x1", PlaceOrder(coin=C, cloid="0x1", is_buy=True, px=99.0, sz=2.0)), 0.2)
    tr.on_fill(fill(oid=12, tid=9, sz=0.5, remaining=1.5))  # new leg fills before its ack
    assert o.oid == 12 and o.remaining == 1.5 and o.state == OrderState.PARTIALLY_FILLED
    tr.on_accepted(OrderAccepted(0.3, C, "0x1", 12))
    assert o.oid == 12 and o.remaining == 1.5


def test_modify_rejected_marks_needs_cancel_or_gone():
    tr = OrderTracker()
    o = place(tr)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_modify_sent(ModifyOrder("0x1", PlaceOrder(coin=C, cloid="0x1", is_buy=True, px=101.0, sz=1.0)), 0.2)
    tr.on_rejected(OrderRejected(0.3, C, "0x1", RejectReason.POST_ONLY_CROSS, "Post only ..."))
    assert o.is_live and o.needs_cancel and o.modify is None
    o2 = place(tr, "0x2")
    tr.on_accepted(OrderAccepted(0.1, C, "0x2", 21))
    tr.on_modify_sent(ModifyOrder("0x2", PlaceOrder(coin=C, cloid="0x2", is_buy=True, px=99.0, sz=1.0)), 0.2)
    tr.on_rejected(OrderRejected(0.3, C, "0x2", RejectReason.UNKNOWN_ORDER, "gone"))
    assert o2.state == OrderState.CANCELLED


def test_misuse_raises():
    tr = OrderTracker()
    place(tr)
    with pytest.raises(TrackerError):
        place(tr)  # duplicate cloid
    with pytest.raises(TrackerError):
        tr.on_cancel_sent("0xnope", 0.0)
    with pytest.raises(TrackerError):  # not acked yet: cannot modify
        tr.on_modify_sent(ModifyOrder("0x1", PlaceOrder(coin=C, cloid="0x1", is_buy=True, px=1.0, sz=1.0)), 0.0)


def test_unknown_events_counted():
    tr = OrderTracker()
    assert tr.on_accepted(OrderAccepted(0.1, C, "0xzz", 1)) is None
    assert tr.on_fill(fill(cloid="0xzz")) is None
    assert tr.counts["unknown_events"] == 2


def test_all_orders_and_fill_keys_are_public_views():
    tr = OrderTracker()
    place(tr, "0x1")
    place(tr, "0x2", is_buy=False, px=101.0)
    tr.on_accepted(OrderAccepted(0.1, C, "0x1", 11))
    tr.on_fill(fill(tid=5, sz=1.0, remaining=0.0))
    tr.on_fill(fill(tid=5, sz=1.0, remaining=0.0))  # duplicate: one key
    assert {o.cloid for o in tr.all_orders()} == {"0x1", "0x2"}  # terminal and live
    assert [o.cloid for o in tr.all_orders("ETH")] == []
    assert tr.fill_keys() == frozenset({(5, 11)})
    keys = tr.fill_keys()
    tr.on_fill(fill(cloid="0x2", oid=12, tid=6, sz=0.1, remaining=0.9, is_buy=False, px=101.0))
    assert (6, 12) not in keys and (6, 12) in tr.fill_keys()  # a snapshot, not the internal set


def test_cancel_before_send_keeps_no_oid():
    """The live adapter cancels a still-queued placement without sending it: the venue has no oid for it, and the
    tracker must not invent one (None, never 0)."""
    tr = OrderTracker()
    o = place(tr)
    tr.on_cancel_sent("0x1", 0.05)
    tr.on_cancelled(OrderCancelled(0.1, C, "0x1", None, "requested"))  # type: ignore[arg-type]
    assert o.state == OrderState.CANCELLED and o.oid is None and tr.exposure(True) == 0.0
