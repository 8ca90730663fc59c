"""SimExchange: Hyperliquid's rules, queue position, latency, accounting."""

from __future__ import annotations

import itertools

import pytest

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, Trade
from hlmm.market.instrument import UnknownCoinError, default_registry
from hlmm.sim.exchange import ActionResult, SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.venue.base import (
    CancelOrder,
    CancelRejected,
    Fill,
    Funding,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
)

COIN = "HYPE"  # szDecimals 2, asset 159, tick 0.001 around 30
ZERO = LatencyModel(order_s=0.0, response_s=0.0)
_n = 0


def cloid() -> str:
    global _n
    _n += 1
    return f"0x{_n:032x}"


def book(t: float, bids: list[tuple[float, float]], asks: list[tuple[float, float]], coin: str = COIN) -> BookSnapshot:
    return BookSnapshot(
        coin, t + 0.05, t, tuple(BookLevel(p, s) for p, s in bids), tuple(BookLevel(p, s) for p, s in asks)
    )


def trade(t: float, px: float, sz: float, side: str, tid: int = 0) -> Trade:
    return Trade(COIN, t + 0.05, t, px, sz, side, tid or int(t * 1000))


def place(px: float, sz: float, is_buy: bool = True, tif: Tif = Tif.ALO, **kw: object) -> PlaceOrder:
    return PlaceOrder(COIN, kw.pop("cloid", None) or cloid(), is_buy, px, sz, tif, **kw)  # type: ignore[arg-type]


def make(queue: str = "risk_averse", latency: LatencyModel = ZERO, **kw: object) -> SimExchange:
    ex = SimExchange(default_registry(), latency=latency, queue=queue, **kw)  # type: ignore[arg-type]
    ex.on_market(book(1.0, [(29.99, 5.0), (29.98, 10.0)], [(30.01, 1.0), (30.02, 2.0)]))
    return ex


def run(ex: SimExchange, t: float) -> list:
    ex.advance_to(t)
    return ex.pop_events(t)


def send(ex: SimExchange, actions: list, t: float) -> list:
    ex.submit(actions, t)
    return run(ex, t)


# ---------------------------------------------------------------- rejections (exact texts)
def test_alo_cross_rejected_with_exact_message() -> None:
    ex = make()
    (ev,) = send(ex, [place(30.01, 1.0)], 2.0)
    assert isinstance(ev, OrderRejected)
    assert ev.reason == RejectReason.POST_ONLY_CROSS
    assert ev.message == "Post only order would have immediately matched, bbo was 29.99@30.01. asset=159"
    (ev,) = send(ex, [place(29.98, 1.0, is_buy=False)], 2.0)
    assert ev.message == "Post only order would have immediately matched, bbo was 29.99@30.01. asset=159"
    assert ex.open_orders(COIN) == []
    assert ex.stats["rejected_post_only_cross"] == 2


def test_alo_crossing_our_own_resting_order_is_rejected() -> None:
    ex = make()
    send(ex, [place(30.005, 1.0, is_buy=False)], 2.0)
    (ev,) = send(ex, [place(30.005, 1.0)], 2.0)
    assert isinstance(ev, OrderRejected) and ev.reason == RejectReason.POST_ONLY_CROSS
    assert "bbo was 29.99@30.005." in ev.message


@pytest.mark.parametrize(
    ("px", "sz", "reason", "msg"),
    [
        (29.9901, 1.0, RejectReason.TICK, "Price must be divisible by tick size."),
        (29.99, 1.001, RejectReason.SIZE, "Order has invalid size."),
        (29.99, 0.33, RejectReason.MIN_VALUE, "Order must have minimum value of $10."),
    ],
)
def test_instrument_rule_rejections(px: float, sz: float, reason: RejectReason, msg: str) -> None:
    ex = make()
    (ev,) = send(ex, [place(px, sz)], 2.0)
    assert isinstance(ev, OrderRejected) and ev.reason == reason and ev.message == msg


def test_reduce_only_that_would_increase_is_rejected() -> None:
    ex = make()
    (ev,) = send(ex, [place(29.99, 1.0, reduce_only=True)], 2.0)
    assert ev.reason == RejectReason.REDUCE_ONLY and ev.message == "Reduce only order would increase position."


def test_ioc_without_match_is_rejected() -> None:
    ex = make()
    (ev,) = send(ex, [place(30.0, 1.0, tif=Tif.IOC)], 2.0)
    assert ev.reason == RejectReason.IOC_NO_MATCH
    assert ev.message == "Order could not immediately match against any resting orders."


def test_margin_counts_position_and_resting_orders() -> None:
    ex = make(starting_usdc=100.0, max_leverage=1.0)
    (ev,) = send(ex, [place(29.0, 2.0)], 2.0)  # 58 of 100
    assert isinstance(ev, OrderAccepted)
    (ev,) = send(ex, [place(28.0, 2.0)], 2.0)  # 58 + 56 > 100
    assert isinstance(ev, OrderRejected) and ev.reason == RejectReason.MARGIN
    assert ev.message == "Insufficient margin to place order."
    (ev,) = send(ex, [place(31.0, 2.0, is_buy=False)], 2.0)  # the other side does not add to the worst side
    assert isinstance(ev, OrderAccepted)


def test_unknown_coin_is_a_typed_error_at_submit() -> None:
    ex = make()
    with pytest.raises(UnknownCoinError):
        ex.submit([PlaceOrder("NOPE", cloid(), True, 1.0, 20.0)], 2.0)


def test_cancel_unknown_and_finished_orders() -> None:
    ex = make()
    (ev,) = send(ex, [CancelOrder(COIN, cloid())], 2.0)
    assert isinstance(ev, CancelRejected) and ev.message == "Order was never placed, already canceled, or filled."
    p = place(29.95, 1.0)
    send(ex, [p], 2.0)
    (ev,) = send(ex, [CancelOrder(COIN, p.cloid)], 2.1)
    assert isinstance(ev, OrderCancelled) and ev.reason == "requested" and ev.cloid == p.cloid
    (ev,) = send(ex, [CancelOrder(COIN, p.cloid)], 2.2)
    assert isinstance(ev, CancelRejected)
    assert ex.order_by_cloid(p.cloid).status == "canceled"  # type: ignore[union-attr]


def test_cancel_by_oid_when_set() -> None:
    """CancelOrder.oid set -> the Hyperliquid ``cancel`` {a, o} path: by oid, reported under the request's cloid."""
    ex = make()
    p = place(29.95, 1.0)
    (ack,) = send(ex, [p], 2.0)
    assert isinstance(ack, OrderAccepted)
    placeholder = "0x" + "f" * 32  # what the engine tracks a cloid-less order under
    (ev,) = send(ex, [CancelOrder(COIN, placeholder, reason="foreign", oid=ack.oid)], 2.1)
    assert isinstance(ev, OrderCancelled) and ev.oid == ack.oid and ev.cloid == placeholder
    assert not ex.open_orders(COIN)
    (ev,) = send(ex, [CancelOrder(COIN, placeholder, oid=ack.oid)], 2.2)  # already gone
    assert isinstance(ev, CancelRejected) and ev.cloid == placeholder
    (ev,) = send(ex, [CancelOrder(COIN, placeholder, oid=987_654)], 2.3)  # never existed
    assert isinstance(ev, CancelRejected)
    q = place(29.94, 1.0)
    (ack2,) = send(ex, [q], 2.4)
    (ev,) = send(ex, [CancelOrder("BTC", q.cloid, oid=ack2.oid)], 2.5)  # wrong coin: not cancelled
    assert isinstance(ev, CancelRejected) and len(ex.open_orders(COIN)) == 1


# ---------------------------------------------------------------- queue position and resting fills
def test_risk_averse_queue_behind_five() -> None:
    ex = make("risk_averse")
    p = place(29.99, 1.0)
    (ack,) = send(ex, [p], 2.0)
    assert isinstance(ack, OrderAccepted)
    assert ex.order(ack.oid).ahead == 5.0  # type: ignore[union-attr]
    ex.on_market(trade(3.0, 29.99, 3.0, "A"))
    assert run(ex, 3.0) == []
    ex.on_market(trade(4.0, 29.99, 3.0, "A"))
    (f,) = run(ex, 4.0)
    assert isinstance(f, Fill) and f.is_maker and f.sz == 1.0 and f.px == 29.99 and f.remaining == 0.0
    assert f.oid == ack.oid and f.cloid == p.cloid and f.is_buy
    assert f.fee == pytest.approx(29.99 * 1.0 * 0.00015)


def test_trade_fills_at_most_what_is_left_after_the_queue() -> None:
    ex = make("risk_averse")
    (_ack,) = send(ex, [place(29.99, 3.0)], 2.0)
    ex.on_market(trade(3.0, 29.99, 6.0, "A"))  # 5 ahead, 1 left for us
    (f,) = run(ex, 3.0)
    assert f.sz == 1.0 and f.remaining == 2.0
    assert ex.open_orders(COIN)[0].sz == 2.0


def test_buy_aggressor_trade_does_not_fill_our_bid() -> None:
    ex = make("risk_averse")
    send(ex, [place(30.0, 1.0)], 2.0)
    ex.on_market(trade(3.0, 30.01, 10.0, "B"))
    assert run(ex, 3.0) == []


def test_book_shrink_does_not_double_count_trades() -> None:
    ex = make("prob")
    (ack,) = send(ex, [place(29.99, 1.0)], 2.0)
    ex.on_market(trade(3.0, 29.99, 3.0, "A"))
    # The next book shows the same 3.0 gone: explained by the trade, not by cancellations.
    ex.on_market(book(3.1, [(29.99, 2.0), (29.98, 10.0)], [(30.01, 1.0)]))
    assert ex.order(ack.oid).ahead == pytest.approx(2.0)  # type: ignore[union-attr]


def test_cancellations_advance_prob_but_not_risk_averse() -> None:
    aheads = {}
    for q in ("prob", "risk_averse"):
        ex = make(q)
        (ack,) = send(ex, [place(29.99, 1.0)], 2.0)
        ex.on_market(book(3.0, [(29.99, 8.0)], [(30.01, 1.0)]))  # 3 joined behind us
        ex.on_market(book(4.0, [(29.99, 4.0)], [(30.01, 1.0)]))  # 4 cancelled somewhere
        aheads[q] = ex.order(ack.oid).ahead  # type: ignore[union-attr]
        assert run(ex, 5.0) == []  # cancellations alone never fill
    assert aheads["risk_averse"] == 4.0  # clamped to the visible size only
    assert 1.0 <= aheads["prob"] < 4.0


def test_trade_through_our_price_fills_up_to_the_trade_size() -> None:
    ex = make("risk_averse")
    (_ack,) = send(ex, [place(29.985, 1.0)], 2.0)  # new level inside the book
    ex.on_market(trade(3.0, 29.98, 0.4, "A"))  # a sell printed below our bid
    (f,) = run(ex, 3.0)
    assert f.px == 29.985 and f.sz == 0.4 and f.is_maker and f.remaining == 0.6


def test_book_crossing_through_our_price_fills_at_our_price() -> None:
    ex = make("risk_averse")
    (ack,) = send(ex, [place(29.99, 2.0)], 2.0)
    ex.on_market(book(3.0, [(29.97, 5.0)], [(29.98, 3.0)]))
    (f,) = run(ex, 3.0)
    assert f.px == 29.99 and f.sz == 2.0 and f.is_maker and f.oid == ack.oid
    assert ex.position(COIN).position == 2.0


def test_bbo_crossing_and_queue_update() -> None:
    ex = make("risk_averse")
    (a1,) = send(ex, [place(30.05, 1.0, is_buy=False)], 2.0)  # outside visible asks: queue unknown
    assert ex.order(a1.oid).ahead is None  # type: ignore[union-attr]
    ex.on_market(Bbo(COIN, 3.05, 3.0, 30.0, 1.0, 30.05, 7.0))
    assert ex.order(a1.oid).ahead == 7.0  # type: ignore[union-attr]  # unknown -> everyone visible is ahead
    ex.on_market(Bbo(COIN, 4.05, 4.0, 30.06, 1.0, 30.07, 7.0))
    (f,) = run(ex, 4.0)
    assert f.px == 30.05 and not f.is_buy and f.sz == 1.0


def test_modify_gets_new_oid_same_cloid_and_loses_priority() -> None:
    ex = make("risk_averse")
    p = place(29.99, 1.0)
    (ack,) = send(ex, [p], 2.0)
    ex.on_market(trade(3.0, 29.99, 4.0, "A"))  # 1 left ahead of us
    new = PlaceOrder(COIN, p.cloid, True, 29.99, 1.0, Tif.ALO)
    evs = send(ex, [ModifyOrder(p.cloid, new)], 4.0)
    assert [type(e) for e in evs] == [OrderCancelled, OrderAccepted]
    assert evs[0].oid == ack.oid and evs[0].reason == "modify"
    assert evs[1].cloid == p.cloid and evs[1].oid != ack.oid
    assert ex.order(evs[1].oid).ahead == 5.0  # type: ignore[union-attr]  # back of the visible queue
    ex.on_market(trade(5.0, 29.99, 3.0, "A"))  # would have filled the original
    assert run(ex, 5.0) == []
    assert [o.oid for o in ex.open_orders(COIN)] == [evs[1].oid]


def test_modify_of_filled_order_is_rejected() -> None:
    ex = make()
    p = place(29.99, 1.0)
    send(ex, [p], 2.0)
    ex.on_market(book(3.0, [(29.97, 5.0)], [(29.98, 3.0)]))  # crossed: filled
    run(ex, 3.0)
    (ev,) = send(ex, [ModifyOrder(p.cloid, PlaceOrder(COIN, p.cloid, True, 29.9, 1.0))], 4.0)
    assert isinstance(ev, OrderRejected) and ev.reason == RejectReason.UNKNOWN_ORDER


def test_modify_into_a_cross_loses_both_legs() -> None:
    ex = make()
    p = place(29.99, 1.0)
    (_ack,) = send(ex, [p], 2.0)
    evs = send(ex, [ModifyOrder(p.cloid, PlaceOrder(COIN, p.cloid, True, 30.01, 1.0))], 3.0)
    assert [type(e) for e in evs] == [OrderCancelled, OrderRejected]
    assert evs[1].reason == RejectReason.POST_ONLY_CROSS
    assert ex.open_orders(COIN) == []


# ---------------------------------------------------------------- taker orders
def test_ioc_walks_visible_levels_with_taker_fee() -> None:
    ex = make()
    p = place(30.02, 2.5, tif=Tif.IOC)
    evs = send(ex, [p], 2.0)
    assert [(e.px, e.sz, e.is_maker) for e in evs] == [(30.01, 1.0, False), (30.02, 1.5, False)]
    assert evs[0].fee == pytest.approx(30.01 * 0.00045) and evs[1].remaining == 0.0
    assert len({e.tid for e in evs}) == 2
    # Our taker consumed the local copy: only 0.5 is left at 30.02 until the next snapshot.
    evs = send(ex, [place(30.02, 2.0, tif=Tif.IOC)], 2.5)
    assert [type(e) for e in evs] == [Fill, OrderCancelled]
    assert evs[0].sz == 0.5 and evs[1].reason == "ioc"
    ex.on_market(book(3.0, [(29.99, 5.0)], [(30.01, 1.0)]))
    assert isinstance(send(ex, [place(30.01, 1.0, tif=Tif.IOC)], 3.0)[0], Fill)


def test_gtc_crossing_takes_then_rests() -> None:
    ex = make()
    p = place(30.02, 4.0, tif=Tif.GTC)
    evs = send(ex, [p], 2.0)
    assert [type(e) for e in evs] == [Fill, Fill, OrderAccepted]
    (oo,) = ex.open_orders(COIN)
    assert oo.sz == 1.0 and oo.px == 30.02 and oo.cloid == p.cloid
    assert ex.position(COIN).position == 3.0


def test_self_trade_cancels_our_resting_order() -> None:
    ex = make()
    a = place(30.005, 1.0, is_buy=False)
    send(ex, [a], 2.0)
    evs = send(ex, [place(30.01, 1.0, tif=Tif.IOC)], 2.1)
    assert isinstance(evs[0], OrderCancelled) and evs[0].cloid == a.cloid and evs[0].reason == "self_trade"
    assert isinstance(evs[1], Fill) and evs[1].px == 30.01


def test_execute_returns_exchange_style_statuses() -> None:
    ex = make()
    res = ex.execute([place(29.9, 1.0), place(30.02, 2.0, tif=Tif.IOC), place(30.5, 1.0)], 2.0)
    assert res[0].status == "resting" and res[0].oid is not None
    assert res[1] == ActionResult("filled", res[1].oid, res[1].cloid, 2.0, pytest.approx((30.01 + 30.02) / 2))
    assert res[2].status == "error" and res[2].error is not None and res[2].error.startswith("Post only order")


# ---------------------------------------------------------------- latency and clocks
def test_latency_order_not_on_book_before_arrival_and_ack_after_response() -> None:
    ex = make(latency=LatencyModel(order_s=0.15, response_s=0.1))
    p = place(29.95, 1.0)
    ex.submit([p], 10.0)
    assert ex.next_time() == pytest.approx(10.15)
    ex.advance_to(10.149)
    assert ex.open_orders(COIN) == []
    ex.advance_to(10.15)
    assert [o.cloid for o in ex.open_orders(COIN)] == [p.cloid]
    assert ex.next_time() == pytest.approx(10.25)
    assert ex.pop_events(10.249) == []
    (ack,) = ex.pop_events(10.25)
    assert isinstance(ack, OrderAccepted) and ack.ts == pytest.approx(10.25)


def test_alo_valid_at_submit_but_crossing_at_arrival_is_rejected() -> None:
    ex = make(latency=LatencyModel(order_s=0.15, response_s=0.1))
    ex.submit([place(30.0, 1.0)], 10.0)  # fine against 29.99@30.01 ...
    ex.on_market(book(10.1, [(29.99, 5.0)], [(30.0, 2.0)]))  # ... but the ask dropped before it arrived
    ex.advance_to(10.2)
    (ev,) = ex.pop_events(11.0)
    assert isinstance(ev, OrderRejected) and ev.reason == RejectReason.POST_ONLY_CROSS
    assert ev.message == "Post only order would have immediately matched, bbo was 29.99@30. asset=159"
    assert ev.ts == pytest.approx(10.25)


def test_market_event_after_arrival_is_applied_after_the_order() -> None:
    ex = make(latency=LatencyModel(order_s=0.15, response_s=0.1))
    ex.submit([place(30.0, 1.0)], 10.0)  # arrives 10.15, before the book at 10.2 crosses it
    ex.on_market(book(10.2, [(29.99, 5.0)], [(29.995, 2.0)]))
    evs = ex.pop_events(11.0)
    assert [type(e) for e in evs] == [OrderAccepted, Fill]
    assert evs[1].ts == pytest.approx(10.3)


def test_batches_keep_order_under_jitter_and_are_deterministic() -> None:
    def stream(seed: int) -> list:
        ex = make(latency=LatencyModel(order_s=0.05, response_s=0.05, jitter_s=0.05), seed=seed)
        out = []
        for i in range(20):
            p = place(float(f"{29.9 - 0.01 * i:.2f}"), 1.0, cloid=f"0x{i + 1:032x}")
            ex.submit([p], 10.0 + 0.001 * i)
            ex.submit([CancelOrder(COIN, p.cloid)], 10.0 + 0.001 * i + 0.0005)
        ex.advance_to(100.0)
        out = ex.pop_events(100.0)
        assert all(a.ts <= b.ts for a, b in itertools.pairwise(out))
        assert [type(e) for e in out] == [OrderAccepted, OrderCancelled] * 20  # cancel never overtakes its place
        return [e.ts for e in out]

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)


# ---------------------------------------------------------------- accounting
def test_position_entry_and_pnl_in_snapshot() -> None:
    ex = make(starting_usdc=1000.0)
    send(ex, [place(30.02, 3.0, tif=Tif.IOC)], 2.0)  # buy 1 @ 30.01 + 2 @ 30.02
    pos = ex.position(COIN)
    assert pos.position == 3.0 and pos.entry_px == pytest.approx((30.01 + 2 * 30.02) / 3)
    ex.on_market(book(3.0, [(30.5, 5.0)], [(30.6, 5.0)]))
    send(ex, [place(30.5, 4.0, is_buy=False, tif=Tif.IOC)], 3.0)  # close 3, open 1 short
    pos = ex.position(COIN)
    assert pos.position == -1.0 and pos.entry_px == 30.5
    assert pos.realized_pnl == pytest.approx(3 * 30.5 - (30.01 + 2 * 30.02))
    fees = (30.01 + 2 * 30.02 + 4 * 30.5) * 0.00045
    assert pos.fees == pytest.approx(fees)
    snap = ex.snapshot(COIN, 3.5)
    assert snap.position == -1.0 and snap.entry_px == 30.5 and snap.ts == 3.5
    mark = (30.5 + 30.6) / 2
    assert snap.account_value == pytest.approx(1000.0 + pos.realized_pnl - fees + (-1.0) * (mark - 30.5))


def test_reduce_only_is_capped_at_the_position() -> None:
    ex = make()
    send(ex, [place(30.01, 1.0, tif=Tif.IOC)], 2.0)
    ex.on_market(book(3.0, [(30.0, 5.0)], [(30.02, 5.0)]))
    evs = send(ex, [place(30.0, 3.0, is_buy=False, tif=Tif.IOC, reduce_only=True)], 3.0)
    assert sum(e.sz for e in evs if isinstance(e, Fill)) == 1.0
    assert ex.position(COIN).position == 0.0


def test_funding_paid_hourly_on_position() -> None:
    ex = SimExchange(default_registry(), latency=ZERO)
    ex.on_market(book(3590.0, [(29.99, 5.0)], [(30.01, 5.0)]))
    send(ex, [place(30.01, 1.0, tif=Tif.IOC)], 3590.0)
    ex.on_market(AssetCtx(COIN, 3595.0, mark_px=30.0, oracle_px=30.0, funding=0.0001))
    ex.on_market(book(3601.0, [(29.99, 5.0)], [(30.01, 5.0)]))
    (ev,) = ex.pop_events(3700.0)
    assert isinstance(ev, Funding) and ev.usdc == pytest.approx(-30.0 * 0.0001) and ev.szi == 1.0


def test_stale_and_duplicate_market_events_are_ignored() -> None:
    ex = make("risk_averse")
    send(ex, [place(29.99, 1.0)], 2.0)
    ex.on_market(book(0.5, [(29.0, 1.0)], [(29.5, 1.0)]))  # older than the book we have: would cross us
    assert ex.stats["stale_book"] == 1 and run(ex, 3.0) == []
    t = trade(3.0, 29.99, 5.0, "A", tid=77)
    ex.on_market(t)
    ex.on_market(t)  # replayed after a resubscribe
    assert ex.stats["duplicate_trades"] == 1 and run(ex, 3.0) == []


def test_listener_sees_events_at_exchange_time() -> None:
    ex = make(latency=LatencyModel(order_s=0.1, response_s=0.2))
    seen: list[tuple[str, float, int | None]] = []
    ex.add_listener(lambda ev, o, t: seen.append((type(ev).__name__, t, o.oid if o else None)))
    ex.submit([place(29.95, 1.0)], 1.0)
    ex.advance_to(2.0)
    assert seen == [("OrderAccepted", pytest.approx(1.1), 1)]
    o = ex.order(1)
    assert o is not None and o.status == "open" and o.orig_sz == 1.0 and o.submit_ts == 1.0
