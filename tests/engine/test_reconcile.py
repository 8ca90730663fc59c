"""Reconcile: tolerances, modify, cancel reasons, budget pairing, and the exposure invariant."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.config import RequoteParams
from hlmm.engine.reconcile import reconcile
from hlmm.engine.tracker import OrderTracker, TrackedOrder
from hlmm.market.instrument import default_registry
from hlmm.strategy.types import DesiredLadder, Quote
from hlmm.venue.base import CancelOrder, ModifyOrder, OrderAccepted, PlaceOrder

INST = default_registry().get("BTC")
P = RequoteParams(tolerance_bps=2.0, size_tolerance=0.2, max_actions_per_cycle=40)


def q(is_buy: bool, px: float, sz: float, lvl: int = 0) -> Quote:
    return Quote(is_buy=is_buy, px=px, sz=sz, level=lvl, reason="test")


def ladder(bids=(), asks=()) -> DesiredLadder:
    return DesiredLadder(coin="BTC", ts=0.0, fair=100_000.0, bids=tuple(bids), asks=tuple(asks), reason="t")


class Book:
    """A tracker with helpers to create orders in a given state."""

    def __init__(self) -> None:
        self.tr = OrderTracker()
        self.n = 0

    def order(self, is_buy: bool, px: float, sz: float, state: str = "resting") -> TrackedOrder:
        self.n += 1
        cloid = f"0x{self.n:032x}"
        o = self.tr.on_place(PlaceOrder(coin="BTC", cloid=cloid, is_buy=is_buy, px=px, sz=sz), 0.0)
        if state in ("resting", "pending_cancel"):
            self.tr.on_accepted(OrderAccepted(0.0, "BTC", cloid, self.n))
        if state == "pending_cancel":
            self.tr.on_cancel_sent(cloid, 0.0)
        return o


def kinds(plan):
    return [type(a).__name__ for a in plan.actions]


def test_keep_within_tolerance_and_place_missing():
    b = Book()
    b.order(True, 99_990.0, 0.01)
    desired = ladder([q(True, 99_991.0, 0.011)], [q(False, 100_010.0, 0.01)])  # 0.1 bp away, 10% size
    plan = reconcile(desired, b.tr.live(), INST, P, 1.0, 1.0, best_bid=99_995.0, best_ask=100_005.0)
    assert plan.kept == 1 and kinds(plan) == ["PlaceOrder"]
    assert plan.actions[0].is_buy is False and plan.actions[0].reason.startswith("place")


def test_modify_when_target_moved():
    b = Book()
    o = b.order(True, 99_900.0, 0.01)
    plan = reconcile(ladder([q(True, 99_990.0, 0.01)]), b.tr.live(), INST, P, 1.0, 1.0)
    assert kinds(plan) == ["ModifyOrder"]
    m = plan.actions[0]
    assert isinstance(m, ModifyOrder) and m.cloid == o.cloid and m.new.cloid == o.cloid and m.new.px == 99_990.0
    assert "stale px" in m.reason


def test_cancel_reasons():
    b = Book()
    cross = b.order(True, 100_010.0, 0.01)
    far = b.order(False, 101_000.0, 0.01)
    inside = b.order(False, 100_006.0, 0.01)
    desired = ladder([q(True, 99_990.0, 0.01)], [q(False, 100_020.0, 0.01), q(False, 100_030.0, 0.01, 1)])
    plan = reconcile(desired, b.tr.live(), INST, P, 1.0, 1.0, best_bid=99_995.0, best_ask=100_005.0)
    reasons = {a.cloid: a.reason for a in plan.actions if isinstance(a, CancelOrder)}
    assert reasons[cross.cloid] == "crosses book"
    # the two asks are re-used by modifies (fewer actions) -- none left to cancel
    assert far.cloid not in reasons and inside.cloid not in reasons
    assert plan.actions[0].cloid == cross.cloid  # dangerous first
    # with nothing to re-use them for, leftovers are cancelled with a reason
    plan = reconcile(ladder([q(True, 99_990.0, 0.01)], [q(False, 100_020.0, 0.01)]), [far, inside], INST, P, 1, 1)
    reasons = {a.cloid: a.reason for a in plan.actions if isinstance(a, CancelOrder)}
    assert reasons == {far.cloid: "not in ladder"}  # inside one modified to the target
    plan = reconcile(ladder(), [far, inside], INST, P, 1.0, 1.0, kill=True)
    assert {a.reason for a in plan.actions} == {"kill"} and len(plan.actions) == 2


def test_reduce_only_cancels_increasing_side_and_flags_placements():
    b = Book()
    bid = b.order(True, 99_990.0, 0.01)
    plan = reconcile(ladder([], [q(False, 100_010.0, 0.01)]), b.tr.live(), INST, P, 0.0, 0.02,
                     reduce_only=True, position=0.02)
    cancels = [a for a in plan.actions if isinstance(a, CancelOrder)]
    places = [a for a in plan.actions if isinstance(a, PlaceOrder)]
    assert cancels[0].cloid == bid.cloid and cancels[0].reason == "reduce-only"
    assert places and all(p.reduce_only and not p.is_buy for p in places)


def test_budget_truncation_pairs_bid_and_ask():
    bids = [q(True, 99_990.0 - 10 * i, 0.01, i) for i in range(5)]
    asks = [q(False, 100_010.0 + 10 * i, 0.01, i) for i in range(5)]
    plan = reconcile(ladder(bids, asks), [], INST, RequoteParams(max_actions_per_cycle=5), 1.0, 1.0)
    sides = [a.is_buy for a in plan.actions]
    assert len(plan.actions) == 4 and sides.count(True) == 2 and sides.count(False) == 2
    assert any("budget" in d for d in plan.deferred)
    # dangerous cancels take budget first, then complete pairs only
    b = Book()
    c1 = b.order(True, 100_006.0, 0.01)  # crosses the book's ask, below every new ask (so none crosses it)
    plan = reconcile(ladder(bids, asks), b.tr.live(), INST, RequoteParams(max_actions_per_cycle=4), 1.0, 1.0,
                     best_bid=99_995.0, best_ask=100_005.0)
    assert plan.actions[0].cloid == c1.cloid and plan.actions[0].reason == "crosses book"
    rest = plan.actions[1:]
    assert len(rest) == 2 and {a.is_buy for a in rest} == {True, False}


def test_exposure_counts_pending_cancel_and_defers():
    b = Book()
    b.order(True, 99_000.0, 0.05, state="pending_cancel")  # can still fill
    plan = reconcile(ladder([q(True, 99_990.0, 0.04)]), b.tr.live(), INST, P, 0.08, 1.0)
    assert plan.actions == [] and plan.deferred  # 0.05 + 0.04 > 0.08
    plan = reconcile(ladder([q(True, 99_990.0, 0.03)]), b.tr.live(), INST, P, 0.08, 1.0)
    assert kinds(plan) == ["PlaceOrder"]


def test_modify_beyond_room_becomes_cancel():
    b = Book()
    o = b.order(True, 99_000.0, 0.05)
    plan = reconcile(ladder([q(True, 99_990.0, 0.05)]), b.tr.live(), INST, P, 0.08, 1.0)
    assert kinds(plan) == ["CancelOrder"] and plan.actions[0].cloid == o.cloid


def test_over_room_cancels_outermost():
    b = Book()
    inner = b.order(True, 99_990.0, 0.05)
    outer = b.order(True, 99_900.0, 0.05)
    plan = reconcile(ladder([q(True, 99_990.0, 0.05), q(True, 99_900.0, 0.05, 1)]), b.tr.live(), INST, P, 0.06, 1)
    cancels = [a for a in plan.actions if isinstance(a, CancelOrder)]
    assert [c.cloid for c in cancels] == [outer.cloid] and cancels[0].reason == "over room"
    assert inner.is_live


# ---- property: placements never exceed the room ------------------------------------------------------------
order_st = st.tuples(
    st.booleans(),
    st.integers(min_value=-200, max_value=200),  # price offset in $ from 100000
    st.integers(min_value=1, max_value=50),  # size in 0.001
    st.sampled_from(["resting", "pending_new", "pending_cancel"]),
)
quote_st = st.lists(st.tuples(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=50)),
                    max_size=8)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(order_st, max_size=12),
    quote_st,
    quote_st,
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=1, max_value=40),
)
def test_placements_never_exceed_room(orders, qb, qa, room_b, room_a, budget):
    b = Book()
    for is_buy, off, sz, state in orders:
        b.order(is_buy, 100_000.0 + off, sz / 1000, state)
    bids = [q(True, 100_000.0 - off, sz / 1000, i) for i, (off, sz) in enumerate(sorted(set(qb)))]
    asks = [q(False, 100_000.0 + off, sz / 1000, i) for i, (off, sz) in enumerate(sorted(set(qa)))]
    live = b.tr.live()
    rb, ra = room_b / 1000, room_a / 1000
    params = RequoteParams(max_actions_per_cycle=budget)
    plan = reconcile(ladder(bids, asks), live, INST, params, rb, ra, best_bid=99_999.0, best_ask=100_001.0)
    assert len(plan.actions) <= budget
    exp = {True: sum(o.exposure for o in live if o.is_buy), False: sum(o.exposure for o in live if not o.is_buy)}
    added = {True: 0.0, False: 0.0}
    for a in plan.actions:
        if isinstance(a, PlaceOrder):
            added[a.is_buy] += a.sz
        elif isinstance(a, ModifyOrder):
            added[a.new.is_buy] += a.new.sz
    for side, room in ((True, rb), (False, ra)):
        if added[side] > 0:
            assert exp[side] + added[side] <= room + 1e-9
    # never two actions for one cloid; never a place/modify that crosses the book
    cloids = [a.cloid for a in plan.actions]
    assert len(cloids) == len(set(cloids))
    by_cloid = {o.cloid: o for o in live}
    for a in plan.actions:
        if isinstance(a, (ModifyOrder, CancelOrder)):
            assert a.cloid in by_cloid and not by_cloid[a.cloid].cancel_pending


@settings(max_examples=300, deadline=None)
@given(st.lists(order_st, max_size=12), quote_st, quote_st, st.integers(min_value=2, max_value=12))
def test_truncated_budget_never_leaves_one_sided_book(orders, qb, qa, budget):
    """With room to spare, a two-sided ladder yields a two-sided book after the plan, whatever the budget."""
    b = Book()
    for is_buy, off, sz, state in orders:
        if (is_buy and off >= 1) or (not is_buy and off <= -1):
            off = -off  # keep live orders on their own side of the book (crossing ones are covered above)
        b.order(is_buy, 100_000.0 + off, sz / 1000, state)
    bids = [q(True, 100_000.0 - off, sz / 1000, i) for i, (off, sz) in enumerate(sorted(set(qb)))]
    asks = [q(False, 100_000.0 + off, sz / 1000, i) for i, (off, sz) in enumerate(sorted(set(qa)))]
    if not bids or not asks:
        return
    live = b.tr.live()
    plan = reconcile(ladder(bids, asks), live, INST, RequoteParams(max_actions_per_cycle=budget), 100.0, 100.0,
                     best_bid=99_999.0, best_ask=100_001.0)
    cancelled = {a.cloid for a in plan.actions if isinstance(a, CancelOrder)}
    after = {True: 0, False: 0}
    for o in live:
        if not o.cancel_pending and o.cloid not in cancelled:
            after[o.is_buy] += 1
    for a in plan.actions:
        if isinstance(a, PlaceOrder):
            after[a.is_buy] += 1
    assert after[True] >= 1 and after[False] >= 1
