"""Requote policy triggers."""

from __future__ import annotations

from hlmm.config import RequoteParams
from hlmm.engine.requote import RequotePolicy

P = RequoteParams(min_interval_s=0.25, max_interval_s=5.0, price_move_bps=1.0)


def test_first_then_min_interval_then_price_move_then_timer():
    r = RequotePolicy(P)
    assert r.decide(0.0, 100.0) == "first"
    r.mark_quoted(0.0, 100.0)
    assert r.decide(0.1, 101.0) is None  # big move but within min interval
    assert r.decide(0.3, 100.005) is None  # 0.5 bp: below threshold
    assert r.decide(0.3, 100.02) == "price_move"  # 2 bp
    assert r.decide(4.9, 100.0) is None
    assert r.decide(5.0, 100.0) == "timer"


def test_venue_events_rate_limited_but_urgent_and_cross_immediate():
    r = RequotePolicy(P)
    r.mark_quoted(10.0, 100.0)
    r.note_event("fill")
    assert r.decide(10.1, 100.0) is None
    assert r.decide(10.3, 100.0) == "fill"
    r.mark_quoted(10.3, 100.0)
    assert r.decide(10.31, 100.0) is None
    r.note_urgent("post_only_reject")
    assert r.decide(10.32, 100.0) == "post_only_reject"
    r.mark_quoted(10.32, 100.0)
    assert r.decide(10.33, 100.0, crosses=True) == "crosses_book"
