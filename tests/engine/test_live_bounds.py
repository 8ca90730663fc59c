"""Issue 9 item 10: what a long live session keeps is bounded - terminal orders, fill de-duplication keys (tracker,
portfolio, adapter), the recorder's and RunStats' series, the fill journal's days - and the bounds keep their
safety: a fill replayed within the window (the venue replays at most its 2000 most recent fills) is never applied
twice, and a fill of a day the journal no longer holds in memory is still refused from its day's file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hlmm.engine.core import EngineCore
from hlmm.engine.journal import DailyFillJournal
from hlmm.engine.live_runner import _fill_gate
from hlmm.engine.portfolio import Portfolio
from hlmm.engine.recent import LIVE_FILL_KEYS, RecentKeys
from hlmm.engine.recorder import LIVE_SERIES_MAX
from hlmm.engine.session import NullLog
from hlmm.engine.summary import LIVE_STATS_MAX, RunStats
from hlmm.engine.tracker import LIVE_KEEP_TERMINAL, OrderState, OrderTracker
from hlmm.venue.base import Fill, OrderAccepted, OrderCancelled, PlaceOrder

from .helpers import REG, coin_cfg

VENUE_REPLAY_MAX = 2000  # userFills (REST) and the userFills WS snapshot: the account's most recent fills


def _fill(tid: int, oid: int, cloid: str = "0x1", sz: float = 0.001, remaining: float = 1.0, ts: float = 1.0,
          is_buy: bool = True, px: float = 100.0) -> Fill:
    return Fill(ts=ts, coin="BTC", cloid=cloid, oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=0.0,
                is_maker=True, remaining=remaining)


def test_recent_keys_keeps_the_newest_and_refuses_duplicates() -> None:
    k = RecentKeys(100)
    for i in range(1_000):
        assert k.add(i)
        assert not k.add(i)
    assert len(k) == 100 and set(k) == set(range(900, 1_000))
    assert 899 not in k and 999 in k
    u = RecentKeys()  # unbounded
    for i in range(1_000):
        u.add(i)
    assert len(u) == 1_000
    u.resize(10)
    assert len(u) == 10
    with pytest.raises(ValueError):
        RecentKeys(0)


def test_tracker_keeps_at_most_n_terminal_orders_and_every_live_one() -> None:
    tr = OrderTracker(keep_terminal=50)
    tr.on_place(PlaceOrder(coin="BTC", cloid="0xlive", is_buy=True, px=99.0, sz=1.0), 0.0)
    tr.on_accepted(OrderAccepted(0.0, "BTC", "0xlive", 1))
    for i in range(2_000):
        c = f"0x{i:x}"
        tr.on_place(PlaceOrder(coin="BTC", cloid=c, is_buy=i % 2 == 0, px=100.0, sz=1.0), float(i))
        tr.on_accepted(OrderAccepted(float(i), "BTC", c, 10 + i))
        tr.on_cancelled(OrderCancelled(float(i) + 0.5, "BTC", c, 10 + i, "requested"))
    assert tr.n_terminal == 50
    assert [o.cloid for o in tr.live()] == ["0xlive"]
    assert tr.get(f"0x{1_999:x}") is not None and tr.get("0x0") is None  # the most recent are the ones kept
    assert tr.exposure(True) == 1.0


def test_tracker_fill_window_bounded_and_refuses_a_replayed_fill() -> None:
    tr = OrderTracker(max_fill_keys=LIVE_FILL_KEYS)
    tr.on_place(PlaceOrder(coin="BTC", cloid="0x1", is_buy=True, px=100.0, sz=1_000.0), 0.0)
    tr.on_accepted(OrderAccepted(0.0, "BTC", "0x1", 7))
    n = LIVE_FILL_KEYS + 5_000
    for tid in range(n):
        assert tr.on_fill(_fill(tid, 7, remaining=1_000.0 - 0.001 * (tid + 1))) is not None
    assert len(tr.fill_keys()) == LIVE_FILL_KEYS
    o = tr.get("0x1")
    assert o is not None
    filled = o.filled
    for tid in range(n - VENUE_REPLAY_MAX, n):  # the venue replays its most recent fills after a reconnect
        assert tr.on_fill(_fill(tid, 7)) is None
    assert tr.counts["duplicate_fills"] == VENUE_REPLAY_MAX and o.filled == filled


def test_tracker_set_bounds_evicts_at_once() -> None:
    tr = OrderTracker()
    for i in range(1_000):
        c = f"0x{i:x}"
        tr.on_place(PlaceOrder(coin="BTC", cloid=c, is_buy=True, px=100.0, sz=1.0), float(i))
        tr.on_cancelled(OrderCancelled(float(i), "BTC", c, None, "requested"))  # type: ignore[arg-type]
    assert tr.n_terminal == 1_000
    tr.set_bounds(keep_terminal=100, max_fill_keys=10)
    assert tr.n_terminal == 100 and all(o.state == OrderState.CANCELLED for o in tr.all_orders())


def test_portfolio_fill_window_bounded_and_replay_applied_once() -> None:
    p = Portfolio(max_fill_keys=LIVE_FILL_KEYS)
    n = LIVE_FILL_KEYS + 3_000
    for tid in range(n):
        assert p.on_fill(_fill(tid, 1_000 + tid % 50, is_buy=tid % 2 == 0))
    assert len(p.fill_keys()) == LIVE_FILL_KEYS
    pos, cash, nf = p.position, p.cash, p.n_fills
    for tid in range(n - VENUE_REPLAY_MAX, n):
        assert not p.on_fill(_fill(tid, 1_000 + tid % 50, is_buy=tid % 2 == 0))
    assert (p.position, p.cash, p.n_fills) == (pos, cash, nf)
    assert len(Portfolio().fill_keys()) == 0 and Portfolio()._keys.max_keys is None  # backtest: unbounded


def test_engine_live_bounds() -> None:
    eng = EngineCore("BTC", REG.get("BTC"), coin_cfg(), 1_000.0)
    assert eng.recorder.max_points is None and eng.portfolio._keys.max_keys is None  # backtest default
    eng.use_live_bounds()
    assert eng.recorder.max_points == LIVE_SERIES_MAX
    assert eng.tracker._keep_terminal == LIVE_KEEP_TERMINAL
    assert eng.tracker._fill_keys.max_keys == LIVE_FILL_KEYS == eng.portfolio._keys.max_keys
    assert LIVE_FILL_KEYS >= 5 * VENUE_REPLAY_MAX  # the window's safety margin over the venue's replay


def test_live_series_never_exceed_their_bounds() -> None:
    eng = EngineCore("BTC", REG.get("BTC"), coin_cfg(), 0.0)
    eng.use_live_bounds()
    rec = eng.recorder
    stats = RunStats("BTC", 0.0, max_points=LIVE_STATS_MAX)
    for i in range(50_000):
        ts = i * 0.05
        mid = 100.0 + (i % 13) * 0.01
        rec.quotes.append((ts, mid - 0.01, mid + 0.01, 3, 3))
        rec.on_position(ts, 0.0)
        if rec.sample_due(ts):
            rec.sample(ts, mid, 0.0)
        stats.on_mid(ts, mid)
        if i % 3 == 0:
            stats.on_venue(_fill(i, 5, ts=ts, is_buy=i % 2 == 0, px=mid))
        for name in ("quotes", "resting", "fills", "mids", "pnl", "position"):
            assert len(getattr(rec, name)) <= LIVE_SERIES_MAX + 1_000, name  # trimmed at every 1 s sample
        assert len(stats.mid_ts) <= LIVE_STATS_MAX and len(stats.fills) <= LIVE_STATS_MAX
    rec.trim()
    assert max(len(getattr(rec, n)) for n in ("quotes", "mids", "pnl", "position")) <= LIVE_SERIES_MAX
    assert len(stats._fill_keys) <= LIVE_STATS_MAX


def _day_ts(day: int) -> float:
    return datetime(2025, 9, day, 12, tzinfo=UTC).timestamp()


def test_journal_holds_two_days_and_still_refuses_a_forgotten_days_fill(tmp_path) -> None:
    j = DailyFillJournal(tmp_path, "BTC_acct")
    got: list[Fill] = []
    sink = _fill_gate(j, got.append, NullLog())
    tid = 0
    for day in range(1, 6):
        for _ in range(100):
            tid += 1
            sink(_fill(tid, 7, ts=_day_ts(day)))
        assert len(j.days_held()) <= 2
    assert j.days_held() == ["2025-09-04", "2025-09-05"]
    assert len(j._fills) == 200
    assert len(got) == 500
    got.clear()
    sink(_fill(1, 7, ts=_day_ts(1)))  # a fill of day 1 again (forgotten in memory, on disk in its file)
    sink(_fill(450, 7, ts=_day_ts(5)))  # and one of today
    assert got == []
    j.close()
