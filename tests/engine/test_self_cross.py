"""Issue 9 item 8: no placement or modify leg crosses one of our own orders of the other side that may still be
on the book (pending, resting, cancel-pending, either leg of a pending modify, or earlier in the same batch)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.config import RequoteParams
from hlmm.engine.reconcile import own_crossings, reconcile
from hlmm.engine.tracker import OrderTracker
from hlmm.venue.base import ModifyOrder, OrderAccepted, PlaceOrder

from .test_reconcile import INST, Book, P, ladder, q


def _new_prices(plan, is_buy):
    out = []
    for a in plan.actions:
        p = a.new if isinstance(a, ModifyOrder) else a
        if isinstance(p, PlaceOrder) and p.is_buy == is_buy:
            out.append(p.px)
    return out


def test_fast_up_move_bid_waits_for_our_ask_to_move():
    """The replay case: price jumps up; the new bid would sit at/above our still-resting ask."""
    b = Book()
    b.order(True, 99_990.0, 0.01)
    ask = b.order(False, 100_010.0, 0.01)
    desired = ladder([q(True, 100_020.0, 0.01)], [q(False, 100_040.0, 0.01)])
    plan = reconcile(desired, b.tr.live(), INST, P, 1.0, 1.0, best_bid=100_000.0, best_ask=100_030.0)
    assert _new_prices(plan, True) == []  # the bid move is deferred ...
    assert any("would cross our own ask @100010.0" in d for d in plan.deferred)
    assert _new_prices(plan, False) == [100_040.0]  # ... while the ask moves away first
    # Once the exchange confirms the ask's move, the bid follows.
    for a in plan.actions:
        b.tr.on_modify_sent(a, 0.1) if isinstance(a, ModifyOrder) else None
    b.tr.on_accepted(OrderAccepted(0.2, "BTC", ask.cloid, 777))
    plan2 = reconcile(desired, b.tr.live(), INST, P, 1.0, 1.0, best_bid=100_000.0, best_ask=100_030.0)
    assert _new_prices(plan2, True) == [100_020.0]
    assert own_crossings(plan2.actions, b.tr.live()) == 0


def test_cancel_pending_and_pending_new_orders_block_a_crossing_placement():
    for state in ("pending_cancel", "pending_new"):
        b = Book()
        b.order(False, 100_010.0, 0.01, state=state)
        plan = reconcile(ladder([q(True, 100_010.0, 0.01)], []), b.tr.live(), INST, P, 1.0, 1.0)
        assert _new_prices(plan, True) == [], state
        assert plan.deferred


def test_a_batch_never_crosses_itself():
    """Desired ladder with overlapping sides (a buggy strategy): the later leg of the same batch is deferred."""
    plan = reconcile(ladder([q(True, 100_000.0, 0.01)], [q(False, 99_990.0, 0.01)]), [], INST, P, 1.0, 1.0)
    assert len(plan.actions) == 1 and plan.deferred
    tr = OrderTracker()
    for a in plan.actions:
        tr.on_place(a, 0.0)
    assert own_crossings(plan.actions, tr.live()) == 0


def test_own_crossings_counts_both_legs_of_a_pending_modify():
    b = Book()
    o = b.order(False, 100_050.0, 0.01)
    new = PlaceOrder(coin="BTC", cloid=o.cloid, is_buy=False, px=100_010.0, sz=0.01)
    b.tr.on_modify_sent(ModifyOrder(cloid=o.cloid, new=new), 0.1)
    bid = PlaceOrder(coin="BTC", cloid="0x" + "ab" * 16, is_buy=True, px=100_020.0, sz=0.01)
    b.tr.on_place(bid, 0.2)
    assert own_crossings([bid], b.tr.live()) == 1  # crosses the new leg 100_010 even though the old is 100_050


prices = st.integers(min_value=99_900, max_value=100_100).map(float)


@settings(max_examples=300, deadline=None)
@given(own=st.lists(st.tuples(st.booleans(), prices, st.sampled_from(["resting", "pending_new", "pending_cancel"])),
                    max_size=6),
       bids=st.lists(prices, max_size=4, unique=True), asks=st.lists(prices, max_size=4, unique=True))
def test_property_no_plan_crosses_our_own_orders(own, bids, asks):
    b = Book()
    for is_buy, px, state in own:
        b.order(is_buy, px, 0.01, state=state)
    desired = ladder([q(True, p, 0.01, i) for i, p in enumerate(sorted(bids, reverse=True))],
                     [q(False, p, 0.01, i) for i, p in enumerate(sorted(asks))])
    live_before = b.tr.live()
    plan = reconcile(desired, live_before, INST, RequoteParams(max_actions_per_cycle=40), 1.0, 1.0)
    for a in plan.actions:
        if isinstance(a, PlaceOrder):
            b.tr.on_place(a, 1.0)
        elif isinstance(a, ModifyOrder):
            b.tr.on_modify_sent(a, 1.0)
    assert own_crossings(plan.actions, b.tr.live()) == 0


def test_backtest_on_a_jumpy_quiet_market_never_sends_across_our_own_orders():
    """Quiet HIP-3 HYPE with frequent gaps (a jump every ~20 s): the replay case of the issue. Before the own-order
    guard, ~70 placements per 30 min were sent across our own orders; now none, in the same simulated venue."""
    from hlmm.config import load_config
    from hlmm.engine.runner import run_backtest, synthetic_source

    src = synthetic_source("hype_quiet", duration_s=900.0, seed=1, overrides={"jump_rate": 0.05, "jump_std": 0.002})
    s = run_backtest(src, load_config(None), seed=1).summary
    assert s["n_fills"] > 20
    assert s["crossing_own_at_send"] == 0 and s["crossing_at_send"] == 0
