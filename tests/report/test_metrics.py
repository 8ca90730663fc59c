"""Metrics: pure mapping from a real engine after a short backtest, sink publishing, /metrics over loopback."""

from __future__ import annotations

import math
import urllib.request

import pytest

from hlmm.config import load_config
from hlmm.engine.runner import run_backtest, synthetic_source
from hlmm.report.metrics import (
    ESTIMATOR_FIELDS,
    PNL_PARTS,
    EngineMetrics,
    MetricsSink,
    engine_metrics,
    start_metrics_server,
)


@pytest.fixture(scope="module")
def backtest():
    cfg = load_config(None, [])
    sink = MetricsSink()
    snaps: list[EngineMetrics] = []

    def on_timer(ts: float, engine, _ex) -> None:
        snaps.append(sink.update_from_engine(engine, ts, budget_left=9000.0))

    src = synthetic_source("btc", duration_s=120.0, seed=2, warm_s=300.0)
    res = run_backtest(src, cfg, seed=2, duration_s=120.0, on_timer=on_timer)
    return res, sink, snaps


def test_mapping_matches_the_engine(backtest) -> None:
    res, _sink, snaps = backtest
    assert len(snaps) >= 100
    eng = res.engine
    last = engine_metrics(eng, snaps[-1].ts)
    pf = eng.portfolio
    assert last.position == pf.position
    assert set(last.pnl) == set(PNL_PARTS)
    assert math.isclose(last.pnl["total"], last.pnl["realized"] + last.pnl["unrealized"] - last.pnl["fees"]
                        + last.pnl["funding"], abs_tol=1e-6)  # fmt: skip
    assert set(last.estimators) == set(ESTIMATOR_FIELDS)
    assert last.fills["buy"] + last.fills["sell"] == len(eng.recorder.fills)
    quoting = [s for s in snaps if s.quotes["bid"] and s.quotes["ask"]]
    assert quoting, "the engine quoted both sides at some point"
    assert all(s.quoted_spread_bps > 0 for s in quoting)
    assert all(s.book_age_s >= 0 for s in snaps if not math.isnan(s.book_age_s))
    assert not last.killed and last.kill_reason is None


def test_sink_exposes_every_metric(backtest) -> None:
    _res, sink, snaps = backtest
    text = sink.exposition().decode()
    for name in ("hlmm_position", "hlmm_pnl_usd", "hlmm_quotes", "hlmm_spread_bps", "hlmm_estimator",
                 "hlmm_estimator_ready", "hlmm_killed", "hlmm_request_budget_left", "hlmm_fills_total",
                 "hlmm_actions_total", "hlmm_book_age_seconds", "hlmm_drawdown_usd"):  # fmt: skip
        assert f"\n{name}" in text or text.startswith(name), name
    n_fills = snaps[-1].fills["buy"] + snaps[-1].fills["sell"]  # as of the last update (fills may follow it)
    got = sum(sink.fills.labels("BTC", side)._value.get() for side in ("buy", "sell"))
    assert got == n_fills > 0  # counters advance by deltas: no double counting across updates
    assert 'hlmm_pnl_usd{coin="BTC",part="fees"}' in text


def test_counters_kill_reason_and_events() -> None:
    sink = MetricsSink()
    base = dict(coin="X", ts=1.0, position=0.0, position_usd=0.0, max_position_usd=100.0,
                pnl={p: 0.0 for p in PNL_PARTS}, drawdown_usd=0.0, mid=10.0, fair=10.0, quotes={"bid": 1, "ask": 1},
                resting={"bid": 1, "ask": 1}, quoted_spread_bps=5.0, market_spread_bps=2.0, book_age_s=0.1,
                estimators={k: 1.0 for k in ESTIMATOR_FIELDS}, estimator_ready=True, warmup_reason="ready",
                killed=False, kill_reason=None)  # fmt: skip
    sink.update(EngineMetrics(**base, rejections={"post_only": 2}))
    sink.update(EngineMetrics(**base, rejections={"post_only": 5, "tick": 1}))
    assert sink.rejections.labels("X", "post_only")._value.get() == 5
    assert sink.rejections.labels("X", "tick")._value.get() == 1
    sink.update(EngineMetrics(**{**base, "killed": True, "kill_reason": "max_drawdown"}))
    text = sink.exposition().decode()
    assert 'hlmm_kill_reason{coin="X",reason="max_drawdown"} 1.0' in text and 'hlmm_killed{coin="X"} 1.0' in text
    sink.observe_tick_to_order("X", 0.0004)
    sink.ws_reconnect("hl")
    text = sink.exposition().decode()
    assert 'hlmm_tick_to_order_seconds_count{coin="X"} 1.0' in text
    assert 'hlmm_ws_reconnects_total{feed="hl"} 1.0' in text


def test_metrics_server_on_loopback() -> None:
    sink, server = start_metrics_server(0)
    try:
        sink.ws_reconnect("binance")
        port = server.server_port
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'hlmm_ws_reconnects_total{feed="binance"} 1.0' in body
    finally:
        server.shutdown()
    with pytest.raises(ValueError):
        start_metrics_server(70000)
