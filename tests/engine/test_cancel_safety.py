"""Issue 9 items 1 and 7 (engine side): a cancel without an exchange verdict keeps the order live and is retried
with backoff; rate-limit refusals pause placements and never count as kill-switch rejections."""

from __future__ import annotations

from hlmm.engine.core import EngineCore
from hlmm.venue.base import (
    CancelFailed,
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    RejectReason,
)

from .helpers import REG, T0, coin_cfg

CLOID = "0x" + "ab" * 16


def live_engine(**risk: object) -> EngineCore:
    eng = EngineCore("BTC", REG.get("BTC"), coin_cfg(**risk), T0)
    eng.tracker.on_place(PlaceOrder("BTC", CLOID, True, 99_000.0, 0.001), T0)
    eng.on_venue(OrderAccepted(T0 + 0.1, "BTC", CLOID, 7))
    return eng


def cancels(acts: list) -> list[CancelOrder]:
    return [a for a in acts if isinstance(a, CancelOrder)]


def test_rate_limited_cancel_keeps_order_live_and_is_retried_with_backoff():
    eng = live_engine()
    acts = eng.kill(T0 + 1.0, "manual")
    assert [c.cloid for c in cancels(acts)] == [CLOID]
    t = T0 + 1.1
    delays = []
    for _ in range(5):
        eng.on_venue(CancelFailed(t, "BTC", CLOID, "429 Too Many Requests", rate_limited=True))
        o = eng.tracker.get(CLOID)
        assert o is not None and o.terminal is None and o.is_live and o.cancel_pending  # still resting, maybe
        assert cancels(eng.on_timer(t + 0.05)) == []  # not at once: backoff
        t0 = t
        while not cancels(eng.on_timer(t)):
            t += 0.05
            assert t - t0 < 10.0
        delays.append(t - t0)
    assert delays == sorted(delays) and delays[-1] > delays[0]  # backing off
    assert delays[-1] <= 4.5  # bounded
    assert not eng.tracker.get(CLOID).terminal
    # Only the exchange's verdict on the order ends it.
    eng.on_venue(CancelRejected(t + 0.1, "BTC", CLOID, "Order was never placed, already canceled, or filled."))
    assert eng.tracker.get(CLOID).terminal is not None
    assert cancels(eng.on_timer(t + 20.0)) == []


def test_rate_limit_rejections_do_not_kill_and_pause_placements():
    eng = live_engine(max_rejections_per_min=5)
    for k in range(40):
        cl = "0x" + f"{k:032x}"
        eng.tracker.on_place(PlaceOrder("BTC", cl, False, 101_000.0, 0.001), T0 + 1 + k * 0.1)
        eng.on_venue(OrderRejected(T0 + 1 + k * 0.1, "BTC", cl, RejectReason.RATE_LIMIT, "local request budget"))
    assert not eng.kill_switch.killed
    assert eng.rate_limited and eng.n_rate_limited == 40
    # Exchange verdicts on our orders still count.
    for k in range(10):
        cl = "0x" + f"{k + 100:032x}"
        eng.tracker.on_place(PlaceOrder("BTC", cl, False, 101_000.0, 0.001), T0 + 6 + k * 0.1)
        eng.on_venue(OrderRejected(T0 + 6 + k * 0.1, "BTC", cl, RejectReason.MARGIN, "Insufficient margin"))
    assert eng.kill_switch.killed


def test_rate_limit_pause_ends():
    eng = live_engine()
    eng.on_venue(CancelFailed(T0 + 1.0, "BTC", CLOID, "429", rate_limited=True))
    assert eng.rate_limited
    eng.on_timer(T0 + 60.0)
    assert not eng.rate_limited
