"""EngineCore end to end on tiny scripted streams against the SimExchange."""

from __future__ import annotations

import math

import pytest

from hlmm.engine.core import EngineCore, EngineError
from hlmm.risk.store import KillStateStore
from hlmm.venue.base import (
    AccountSnapshot,
    CancelOrder,
    Fill,
    ModifyOrder,
    OpenOrder,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
)

from .helpers import REG, T0, Driver, book, coin_cfg, quiet_stream, trade

BTC = REG.get("BTC")


class ListLog:
    """Captures log calls (structlog-like)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []

    def _mk(level: str):
        def f(self, event: str, **kw):
            self.events.append((level, event, kw))

        return f

    debug = _mk("debug")
    info = _mk("info")
    warning = _mk("warning")
    error = _mk("error")

    def names(self) -> list[str]:
        return [e[1] for e in self.events]


def engine(cfg=None, log=None, kill_state=None, coin="BTC", start=T0) -> EngineCore:
    return EngineCore(coin, REG.get(coin), cfg or coin_cfg(), start, kill_state=kill_state, log=log)


def test_no_quote_before_ready_and_first_quote_after_timeout_on_quiet_market():
    cfg = coin_cfg(warmup_timeout_s=30.0)
    eng = engine(cfg)
    d = Driver(eng)
    d.send(eng.sync(d.ex.snapshot("BTC", T0)), T0)
    d.run(quiet_stream("BTC", T0, 40.0, 99_999.0, 100_001.0), until=T0 + 40.0)  # books only, no trades
    places = d.places()
    assert places, "never quoted on a quiet market"
    first = places[0][0]
    assert first >= T0 + 30.0 - 1e-9  # not before ready
    assert first <= T0 + 31.0  # ... but right after the warm-up timeout
    assert eng.recorder.first_quote_ts == pytest.approx(first)
    assert {p.is_buy for _, p in places} == {True, False}
    # nothing crossing at send, all post-only
    assert all(p.tif == Tif.ALO for _, p in places)


def test_quotes_two_sided_and_respects_caps_and_tracks_fills():
    eng = engine(coin_cfg(max_pos=5000.0, warmup_timeout_s=2.0))
    d = Driver(eng)
    evs = quiet_stream("BTC", T0, 60.0, 99_999.0, 100_001.0)
    # aggressive trades through our quotes every 2 s, alternating sides
    tid = 1
    for k in range(5, 60, 2):
        side = "A" if (k // 2) % 2 else "B"
        px = 99_900.0 if side == "A" else 100_100.0
        evs.append(trade("BTC", T0 + k + 0.25, px, 0.05, side, tid))
        tid += 1
    max_abs = [0.0]
    eff_max = BTC.floor_size(5000.0 / 100_000.0)
    cap = max(BTC.min_size_at(100_000.0), 0.25 * eff_max)

    def tick(t: float) -> None:
        pos = eng.portfolio.position
        max_abs[0] = max(max_abs[0], abs(pos))
        assert abs(pos) <= eff_max + cap + 1e-9
        for o in d.ex.open_orders("BTC"):
            assert o.sz <= cap + 1e-12

    d.on_tick = tick
    d.run(evs, until=T0 + 60.0)
    d.drain()
    assert eng.portfolio.n_fills > 0
    snap = d.ex.snapshot("BTC", d.now)
    assert eng.portfolio.position == pytest.approx(snap.position, abs=1e-9)
    mark = 100_000.0
    assert eng.portfolio.cash + eng.portfolio.position * mark == pytest.approx(eng.portfolio.pnl_total(mark), abs=1e-6)
    # every live tracked order is really open at the venue, and vice versa
    open_cloids = {o.cloid for o in d.ex.open_orders("BTC")}
    tracked = {o.cloid for o in eng.tracker.live("BTC") if o.acked and not o.cancel_pending}
    assert open_cloids == tracked
    assert all(a.reason for _, a in d.sent)  # every action carries a reason


def test_post_only_rejection_requotes_immediately_against_fresh_book():
    log = ListLog()
    eng = engine(coin_cfg(warmup_timeout_s=0.5), log=log)
    acts = []
    t = T0
    for k in range(4):
        t = T0 + k * 0.5
        acts += eng.on_market(book("BTC", t, 99_999.0, 100_001.0))
    places = [a for a in acts if isinstance(a, PlaceOrder)]
    bids = sorted((a for a in places if a.is_buy), key=lambda a: -a.px)
    assert bids and any(not a.is_buy for a in places)
    last_cycle = eng.requote.last_ts
    for i, a in enumerate(places):
        if a is not bids[0]:
            eng.on_venue(OrderAccepted(t + 0.01, "BTC", a.cloid, 100 + i))
    # the best bid dies as post-only (the book moved while it was in flight); well within min_interval_s
    eng.on_market(book("BTC", t + 0.02, 99_990.0, 99_992.0))
    out = eng.on_venue(OrderRejected(t + 0.03, "BTC", bids[0].cloid, RejectReason.POST_ONLY_CROSS,
                                     "Post only order would have immediately matched, bbo was 99990@99992. asset=0"))
    assert eng.requote.last_ts > last_cycle  # requoted at once
    assert "reject" in log.names()
    assert eng.recorder.rejections == {"post_only_cross": 1}
    new_bids = [q for a in out for q in [a.new if isinstance(a, ModifyOrder) else a]
                if isinstance(q, PlaceOrder) and q.is_buy]
    assert new_bids and all(q.px < 99_992.0 for q in new_bids)
    live = [o for o in eng.tracker.live() if not o.cancel_pending]
    assert any(o.is_buy for o in live) and any(not o.is_buy for o in live)


def test_alo_rejected_at_arrival_in_sim_is_replaced_next_cycle():
    """Latency race: the book moves through our bid while it is in flight; the sim rejects it (post-only);
    the engine must end up two-sided again without waiting for the max interval."""
    eng = engine(coin_cfg(warmup_timeout_s=1.0))
    d = Driver(eng)
    evs = quiet_stream("BTC", T0, 3.0, 99_999.0, 100_001.0, dt=0.25)
    d.run(evs, until=T0 + 3.0)
    d.drain(1.0)
    assert any(not o.is_buy for o in eng.tracker.live()) and any(o.is_buy for o in eng.tracker.live())
    # market drops hard: at the exchange first, at the engine 0.3 s later (slow feed)
    t1 = d.now + 0.01
    drop = [book("BTC", t1 + k * 0.25, 99_800.0, 99_802.0, lat=0.3) for k in range(20)]
    d.run(drop, until=t1 + 5.0)
    d.drain(1.0)
    assert eng.recorder.rejections.get("post_only_cross", 0) >= 1  # the race really happened
    live = [o for o in eng.tracker.live() if o.acked and not o.cancel_pending]
    assert any(o.is_buy for o in live) and any(not o.is_buy for o in live)
    open_bids = [o for o in d.ex.open_orders("BTC") if o.is_buy]
    assert open_bids and max(o.px for o in open_bids) < 99_802.0


def test_kill_cancels_everything_and_survives_restart(tmp_path):
    log = ListLog()
    cfg = coin_cfg(warmup_timeout_s=1.0)
    eng = engine(cfg, log=log)
    d = Driver(eng)
    d.run(quiet_stream("BTC", T0, 5.0, 99_999.0, 100_001.0), until=T0 + 5.0)
    d.drain(1.0)
    assert d.ex.open_orders("BTC")
    acts = eng.kill(d.now, "operator says stop")
    assert acts and all(isinstance(a, CancelOrder) and a.reason == "kill" for a in acts)
    d.send(acts, d.now)
    assert eng.persist_needed and eng.kill_switch.killed
    store = KillStateStore(tmp_path / "kill.json")
    store.save(eng.kill_switch.state)
    eng.mark_persisted()
    assert not eng.persist_needed
    n_places = len(d.places())
    d.run(quiet_stream("BTC", d.now + 0.01, 20.0, 99_999.0, 100_001.0), until=d.now + 20.0)
    d.drain(1.0)
    assert d.ex.open_orders("BTC") == []
    assert len(d.places()) == n_places  # no new quotes while killed
    assert "kill" in log.names() and eng.recorder.kill_reason.startswith("manual")
    # something that shows up resting later is cancelled too
    late = eng.on_venue(OrderAccepted(d.now, "BTC", "0x" + "cd" * 16, 999))
    assert late and isinstance(late[0], CancelOrder)

    # restart from the saved state: never quotes
    state = store.load()
    eng2 = engine(cfg, kill_state=state, start=d.now + 1)
    d2 = Driver(eng2)
    d2.send(eng2.sync(d2.ex.snapshot("BTC", d.now + 1)), d.now + 1)
    d2.run(quiet_stream("BTC", d.now + 1, 30.0, 99_999.0, 100_001.0), until=d.now + 31)
    assert d2.places() == [] and eng2.kill_switch.killed
    assert eng2.recorder.kill_reason == state.reason


def test_flatten_on_kill_sends_reduce_only_ioc():
    cfg = coin_cfg(warmup_timeout_s=0.5, flatten_on_kill=True)
    eng = engine(cfg)
    eng.on_market(book("BTC", T0, 99_999.0, 100_001.0))
    eng.sync(AccountSnapshot(ts=T0 + 0.1, coin="BTC", position=0.02, entry_px=100_000.0))
    assert eng.portfolio.position == 0.02
    acts = eng.kill(T0 + 0.2, "test")
    ioc = [a for a in acts if isinstance(a, PlaceOrder)]
    assert len(ioc) == 1 and ioc[0].tif == Tif.IOC and ioc[0].reduce_only and not ioc[0].is_buy
    assert ioc[0].sz == 0.02 and ioc[0].px <= 99_999.0


def test_sync_adopts_position_and_cancels_foreign_orders():
    log = ListLog()
    eng = engine(log=log)
    foreign = OpenOrder(coin="BTC", cloid="0x" + "11" * 16, oid=5, is_buy=True, px=90_000.0, sz=0.01)
    acts = eng.sync(AccountSnapshot(ts=T0, coin="BTC", position=-0.01, entry_px=100_500.0,
                                    open_orders=(foreign,)))
    assert eng.portfolio.position == -0.01 and eng.portfolio.avg_entry == 100_500.0
    assert [(a.cloid, a.reason) for a in acts if isinstance(a, CancelOrder)] == [(foreign.cloid, "foreign")]
    assert eng.tracker.exposure(True) == pytest.approx(0.01)  # counted until the cancel is confirmed
    with pytest.raises(EngineError):
        eng.sync(AccountSnapshot(ts=T0, coin="ETH", position=0.0, entry_px=0.0))


def test_duplicate_fill_not_double_counted():
    eng = engine()
    f = Fill(ts=T0, coin="BTC", cloid="0x" + "22" * 16, oid=1, tid=7, is_buy=True, px=100_000.0, sz=0.01, fee=0.15,
             is_maker=True, remaining=0.0)
    eng.on_venue(f)
    eng.on_venue(f)
    assert eng.portfolio.position == 0.01 and eng.portfolio.n_fills == 1


def test_stale_resting_order_cancelled_when_book_crosses_it():
    eng = engine(coin_cfg(warmup_timeout_s=0.5))
    acts = []
    for k in range(4):
        acts += eng.on_market(book("BTC", T0 + k * 0.5, 99_999.0, 100_001.0))
    for i, a in enumerate(acts):
        if isinstance(a, PlaceOrder):
            eng.on_venue(OrderAccepted(T0 + 2.0, "BTC", a.cloid, 100 + i))
    best_bid = max(o.px for o in eng.tracker.live() if o.is_buy)
    # within the min interval, a book whose ask is at/below our best bid: cancel at once
    out = eng.on_market(book("BTC", T0 + 2.05, best_bid - 2.0, best_bid))
    reasons = {a.reason for a in out if isinstance(a, CancelOrder)}
    assert "crosses book" in reasons


def test_unsupported_inputs_raise():
    with pytest.raises(EngineError):
        EngineCore("ETH", BTC, coin_cfg(), T0)
    eng = engine()
    with pytest.raises(EngineError):
        eng.on_market(object())  # type: ignore[arg-type]
    assert math.isfinite(eng.start_ts)


def test_unanswered_cancel_is_retried_and_reject_logs_what_was_rejected():
    log = ListLog()
    eng = engine(coin_cfg(warmup_timeout_s=100.0), log=log)  # not quoting: only the foreign order is live
    eng.on_market(book("BTC", T0, 99_999.0, 100_001.0))
    foreign = OpenOrder(coin="BTC", cloid="0x" + "33" * 16, oid=9, is_buy=False, px=101_000.0, sz=0.01)
    acts = eng.sync(AccountSnapshot(ts=T0 + 0.1, coin="BTC", position=0.0, entry_px=0.0, open_orders=(foreign,)))
    assert [a.cloid for a in acts if isinstance(a, CancelOrder)] == [foreign.cloid]
    assert not [a for a in eng.on_timer(T0 + 5.0) if isinstance(a, CancelOrder)]
    again = [a for a in eng.on_timer(T0 + 10.2) if isinstance(a, CancelOrder)]
    assert [a.cloid for a in again] == [foreign.cloid] and again[0].reason.startswith("cancel retry")
    p = PlaceOrder(coin="BTC", cloid="0x" + "44" * 16, is_buy=True, px=99_000.0, sz=0.01, reason="t")
    eng.tracker.on_place(p, T0 + 11.0)
    eng.on_venue(OrderRejected(T0 + 11.1, "BTC", p.cloid, RejectReason.MIN_VALUE, "Order must have minimum value"))
    rej = [kw for _, name, kw in log.events if name == "reject"][-1]
    assert rej["px"] == 99_000.0 and rej["sz"] == 0.01


def test_cloids_unique_across_restarts_and_coins():
    import re

    ids = set()
    for coin, start in (("BTC", T0), ("BTC", T0 + 0.001), ("ETH", T0), ("hyna:BTC", T0)):
        e = engine(coin=coin, start=start)
        for _ in range(3):
            c = e._new_cloid()
            assert re.fullmatch(r"0x[0-9a-f]{32}", c)
            ids.add(c)
    assert len(ids) == 12
