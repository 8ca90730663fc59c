"""Issue 9 item 10: the report series are bounded in live/paper (backtests keep everything).

RunStats in bounded mode keeps at most ``max_points`` mids (thinned evenly over the run, the current mid always
last) and the most recent fills/funding, with a running ledger so PnL, position and volumes stay exact; the
engine's recorder keeps a ring of its most recent points with running fill counters."""

from __future__ import annotations

import math

from hlmm.config import load_config
from hlmm.engine.recorder import LIVE_SERIES_MAX, EngineRecorder
from hlmm.engine.runner import synthetic_source
from hlmm.engine.runner_paper import run_paper
from hlmm.engine.summary import LIVE_STATS_MAX, RunStats, build_summary
from hlmm.venue.base import Fill, Funding


def _fill(i: int, ts: float, px: float) -> Fill:
    return Fill(ts=ts, coin="BTC", cloid=f"0x{i:032x}", oid=i, tid=10_000_000 + i, is_buy=i % 3 != 0, px=px,
                sz=0.01, fee=0.001, is_maker=i % 5 != 0, remaining=0.0)


def _feed(stats: RunStats, n_mids: int, fill_every: int) -> None:
    for i in range(n_mids):
        ts = 1_000.0 + i * 0.1
        mid = 100.0 + (i % 97) * 0.01 + (0.005 if i % 2 else 0.0)
        stats.on_mid(ts, mid)
        if i % fill_every == 0:
            stats.on_venue(_fill(i, ts, mid))
        if i % 50_000 == 0:
            stats.on_venue(Funding(ts, "BTC", 0.5, 0.0001, 0.0))


def test_run_stats_bounded_mode_keeps_few_points_and_exact_totals() -> None:
    full = RunStats("BTC", 1_000.0)
    small = RunStats("BTC", 1_000.0, max_points=1_000)
    for s in (full, small):
        _feed(s, 200_000, fill_every=2)
    assert len(small.mid_ts) <= 1_000 and len(small.mid_px) == len(small.mid_ts) == len(small.mid_pnl)
    assert len(small.fills) <= 1_000 and len(small._fill_keys) <= 1_000
    assert small.mid_px[-1] == full.mid_px[-1] and small.mid_ts[-1] == full.mid_ts[-1]  # the mark is current
    assert small.mid_ts == sorted(small.mid_ts)
    assert small.mid_ts[0] == full.mid_ts[0]  # thinned over the whole run, not a window of the end
    end = full.mid_ts[-1]
    a = build_summary(full, end_ts=end, max_position_usd=1e9)
    b = build_summary(small, end_ts=end, max_position_usd=1e9)
    assert b["n_fills"] == a["n_fills"] == 100_000
    for k in ("pnl_total", "position", "fees", "funding", "maker_volume_usd", "taker_volume_usd",
              "max_abs_position"):
        assert math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-6), (k, a[k], b[k])
    assert b["pnl_check"]["balanced"]
    assert b["max_drawdown"] <= a["max_drawdown"] + 1e-6  # thinned series: never more than the full one


def test_run_stats_unbounded_by_default() -> None:
    s = RunStats("BTC", 1_000.0)
    _feed(s, 30_000, fill_every=10)
    assert len(s.mid_ts) == 30_000 and len(s.fills) == 3_000


def test_engine_recorder_bounded_ring_and_counters() -> None:
    rec = EngineRecorder(start_ts=0.0, max_points=500)
    for i in range(20_000):
        ts = float(i)
        rec.quotes.append((ts, 99.0, 101.0, 3, 3))
        rec.on_fill(ts, i % 2 == 0, 100.0, 0.1, 0.0, True, 100.0)
        rec.on_position(ts, 0.1 * (i % 7))
        rec.on_resting(ts, i % 3, 3)
        rec.sample(ts, 100.0, 1.0)
    for name in ("quotes", "resting", "fills", "mids", "pnl", "position"):
        assert len(getattr(rec, name)) <= 500, name
    assert rec.quotes[-1][0] == 19_999.0  # the most recent points are the ones kept
    assert rec.n_fills_buy == rec.n_fills_sell == 10_000
    assert math.isclose(rec.fill_volume_usd, 20_000 * 10.0)


def test_engine_recorder_unbounded_by_default() -> None:
    rec = EngineRecorder(start_ts=0.0)
    for i in range(5_000):
        rec.quotes.append((float(i), 99.0, 101.0, 3, 3))
        rec.sample(float(i), 100.0, 1.0)
    assert len(rec.quotes) == 5_000 and len(rec.mids) == 5_000


async def test_paper_session_uses_bounded_series() -> None:
    src = synthetic_source("hype_quiet", duration_s=60.0, seed=3, start_ts=1_750_000_000.0)
    res = await run_paper(src, load_config(None), duration_s=10.0, speed=20.0)
    assert res.stats.max_points == LIVE_STATS_MAX
    assert res.engine.recorder.max_points == LIVE_SERIES_MAX
    assert res.summary["pnl_check"]["balanced"]
