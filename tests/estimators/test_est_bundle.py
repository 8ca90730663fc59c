"""Estimators facade: bounded warm-up without trades, warm start from candles / history, readiness reasons."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from hlmm.estimators import EstimatorParams, Estimators, WarmStartError
from hlmm.market.events import Bbo, BookLevel, BookSnapshot, Trade

T0 = 1_757_000_000.0
COIN = "hyna:HYPE"
REAL = Path("../shared/data/real")


def book(ts: float, bid: float, ask: float) -> BookSnapshot:
    return BookSnapshot(COIN, ts, ts - 0.2, (BookLevel(bid, 10.0),), (BookLevel(ask, 10.0),))


def trade(ts: float, px: float, side: str = "B", tid: int = 0) -> Trade:
    return Trade(COIN, ts, ts - 0.2, px, 1.0, side, tid)


def gbm_candles(sigma: float, n: int, seed: int, interval_s: int = 60, start_ms: int = 1_756_000_000_000) -> list[dict]:
    """1-minute candles from a finely sampled GBM path, Hyperliquid candleSnapshot layout (strings)."""
    rng = np.random.default_rng(seed)
    steps = 60
    dt = interval_s / steps
    logp = math.log(40.0) + np.cumsum(rng.standard_normal(n * steps) * sigma * math.sqrt(dt))
    prev_close = 40.0
    out = []
    for i in range(n):
        seg = np.exp(logp[i * steps : (i + 1) * steps])
        t = start_ms + i * interval_s * 1000
        hi = max(float(seg.max()), prev_close)
        lo = min(float(seg.min()), prev_close)
        out.append(
            {"t": t, "T": t + interval_s * 1000 - 1, "s": "HYPE", "i": "1m", "o": f"{prev_close:.6f}",
             "h": f"{hi:.6f}", "l": f"{lo:.6f}", "c": f"{seg[-1]:.6f}", "v": "10.0", "n": 5}
        )
        prev_close = float(seg[-1])
    return out


def test_priors_with_no_data() -> None:
    p = EstimatorParams(sigma_prior=0.0005, intensity_a_prior=0.3, intensity_kappa_prior=800.0)
    est = Estimators(p, start_ts=T0)
    s = est.state(T0 + 1.0)
    assert (s.sigma, s.intensity_a, s.kappa) == (pytest.approx(0.0005), 0.3, 800.0)
    assert s.warmup == 0.0
    assert not s.ready
    assert s.reason == "warming 0.00"
    # Even with no events at all, readiness is bounded by the timeout.
    s = est.state(T0 + p.warmup_timeout_s)
    assert s.ready and s.reason == "timeout_priors_blend"
    assert s.sigma == pytest.approx(0.0005)


def test_quiet_market_ready_by_timeout_without_trades() -> None:
    """Failure 4: warm-up must not wait for trades. Only book updates, zero trades."""
    p = EstimatorParams(warmup_timeout_s=30.0)
    est = Estimators(p, start_ts=T0)
    rng = np.random.default_rng(5)
    mid = 40.0
    first_ready = None
    for i in range(1, 121):  # a book every 0.5 s for 60 s
        ts = T0 + 0.5 * i
        mid *= math.exp(0.0008 * math.sqrt(0.5) * rng.standard_normal())
        est.on_book(book(ts, mid - 0.01, mid + 0.01))
        s = est.state(ts)
        if s.ready and first_ready is None:
            first_ready = (ts, s)
    assert first_ready is not None
    ts, s = first_ready
    assert ts - T0 <= 30.0
    assert s.reason == "timeout_priors_blend"
    # The observed volatility is blended in, the intensity stays on its priors.
    assert 0.0 < est.vol.confidence < 1.0
    assert min(p.sigma_prior, est.vol.sigma_observed) <= s.sigma <= max(p.sigma_prior, est.vol.sigma_observed)
    assert s.intensity_a == p.intensity_a_prior and s.kappa == p.intensity_kappa_prior


def test_warm_start_from_candles_ready_immediately() -> None:
    true_sigma = 0.0006
    p = EstimatorParams(sigma_prior=0.0001, warmup_timeout_s=30.0)
    est = Estimators(p, start_ts=T0)
    assert est.warm_start(candles=gbm_candles(true_sigma, 240, seed=3)) is True
    s = est.state(T0 + 0.2)
    assert s.ready and s.reason == "warm_start"
    assert s.sigma == pytest.approx(true_sigma, rel=0.2)
    # A first quote within 5 s of start is possible; live mids then keep updating the estimate.
    est.on_book(book(T0 + 0.5, 40.0, 40.02))
    est.on_book(book(T0 + 1.0, 40.01, 40.03))
    assert est.state(T0 + 1.0).ready


def test_few_candles_do_not_mark_warm() -> None:
    p = EstimatorParams(warmup_min_samples=30)
    est = Estimators(p, start_ts=T0)
    assert est.warm_start(candles=gbm_candles(0.0005, 5, seed=1)) is False
    s = est.state(T0 + 1.0)
    assert not s.ready


def test_flat_candles_use_close_to_close() -> None:
    """Quiet HIP-3 market: candles without trades are flat (h == l); close-to-close still sees moves."""
    candles = []
    closes = [40.0, 40.2, 40.1, 40.3, 40.0] * 8
    for i, c in enumerate(closes):
        t = 1_756_000_000_000 + i * 60_000
        candles.append({"t": t, "T": t + 59_999, "o": str(c), "h": str(c), "l": str(c), "c": str(c), "v": "0", "n": 0})
    est = Estimators(EstimatorParams(), start_ts=T0)
    assert est.warm_start(candles=candles)
    assert est.vol.sigma_observed > 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"t": 0, "T": 59_999, "o": "1", "h": "1", "l": "1"},  # no close
        {"t": 0, "T": 59_999, "o": "1", "h": "0.5", "l": "1", "c": "1"},  # high < low
        {"t": 0, "T": 59_999, "o": "1", "h": "1", "l": "1", "c": "nan"},
        {"t": 0, "T": 59_999, "o": "-1", "h": "1", "l": "-1", "c": "1"},
        {"t": 60_000, "T": 0, "o": "1", "h": "1", "l": "1", "c": "1"},
    ],
)
def test_bad_candles_raise(bad: dict) -> None:
    est = Estimators(EstimatorParams(), start_ts=T0)
    with pytest.raises(WarmStartError):
        est.warm_start(candles=[bad])


def test_warm_start_from_mids_and_trades() -> None:
    p = EstimatorParams(intensity_window_s=300.0, intensity_min_trades=50)
    est = Estimators(p, start_ts=T0)
    rng = np.random.default_rng(9)
    mids = [(T0 - 300.0 + 0.5 * i, 40.0 * math.exp(0.0005 * rng.standard_normal())) for i in range(600)]
    trades = []
    for i, t in enumerate(np.sort(rng.uniform(T0 - 299.0, T0, 600)).tolist()):
        d = float(rng.exponential(1 / 2000.0))
        trades.append(trade(t, 40.0 * (1 + d), "B", tid=i))
    assert est.warm_start(mids=mids, trades=trades)
    s = est.state(T0 + 0.1)
    assert s.ready
    assert s.reason == "warm"  # both halves confident from history
    assert s.kappa == pytest.approx(2000.0, rel=0.35)
    assert s.intensity_a == pytest.approx(2.0, rel=0.35)


def test_live_data_becomes_warm() -> None:
    p = EstimatorParams(warmup_timeout_s=1000.0, intensity_min_trades=50)
    est = Estimators(p, start_ts=T0)
    rng = np.random.default_rng(2)
    mid = 40.0
    ts = T0
    reasons = set()
    while ts < T0 + 300.0:
        ts += 0.5
        mid *= math.exp(0.0005 * math.sqrt(0.5) * rng.standard_normal())
        est.on_bbo(Bbo(COIN, ts, ts - 0.1, mid - 0.005, 3.0, mid + 0.005, 3.0))
        if rng.random() < 0.8:
            d = float(rng.exponential(1 / 2000.0))
            side = "B" if rng.random() < 0.5 else "A"
            est.on_trade(trade(ts + 0.01, mid * (1 + d) if side == "B" else mid * (1 - d), side), mid)
        reasons.add(est.state(ts).reason.split()[0])
    s = est.state(ts)
    assert s.ready and s.reason == "warm"
    assert "warming" in reasons
    assert s.warmup >= p.ready_confidence


def test_trade_without_mid_is_skipped_and_one_sided_books_ignored() -> None:
    est = Estimators(EstimatorParams(), start_ts=T0)
    est.on_trade(trade(T0 + 1, 40.0), None)
    assert est.n_trades_without_mid == 1
    est.on_book(BookSnapshot(COIN, T0 + 2, T0 + 2, (BookLevel(39.9, 1.0),), ()))
    est.on_bbo(Bbo(COIN, T0 + 3, T0 + 3, None, 0.0, 40.1, 1.0))
    assert est.last_mid is None
    est.on_bbo(Bbo(COIN, T0 + 4, T0 + 4, 39.9, 1.0, 40.1, 1.0))
    assert est.last_mid == pytest.approx(40.0)
    est.on_trade(trade(T0 + 5, 40.1), None)  # uses the last mid
    assert est.intensity.n_trades == 1


def test_bad_book_mid_raises() -> None:
    est = Estimators(EstimatorParams(), start_ts=T0)
    with pytest.raises(ValueError):
        est.on_book(book(T0 + 1, float("nan"), 40.0))


def _real_session() -> tuple[list[tuple[float, float, float]], list[Trade]]:
    bbo_path = REAL / "hyperliquid_BTC_bbo_2025-09-01_to_09-07.csv"
    trades_path = REAL / "hyperliquid_BTC_trades_2025-09-01_to_09-07.csv"
    if not bbo_path.exists() or not trades_path.exists():
        pytest.skip("real data absent")
    quotes: dict[float, dict[str, float]] = {}
    with bbo_path.open() as f:
        last = None
        for row in csv.DictReader(f):
            ts = float(row["timestamp"])
            if last is not None and ts - last > 30.0:
                break  # first session only
            last = ts
            quotes.setdefault(ts, {})[row["side"]] = float(row["price"])
    bbo = [(ts, q["bid"], q["ask"]) for ts, q in sorted(quotes.items()) if "bid" in q and "ask" in q]
    lo, hi = bbo[0][0], bbo[-1][0]
    seen: set[int] = set()
    trades = []
    with trades_path.open() as f:
        for row in csv.DictReader(f):
            ts, tid = float(row["timestamp"]), int(row["trade_id"])
            if lo <= ts <= hi and tid not in seen:
                seen.add(tid)
                side = "B" if row["side"] == "buy" else "A"
                trades.append(Trade("BTC", ts, float(row["exchange_timestamp"]) / 1000, float(row["price"]),
                                    float(row["size"]), side, tid))
    return bbo, trades


def test_real_btc_session() -> None:
    bbo, trades = _real_session()
    p = EstimatorParams(sigma_prior=0.0002, intensity_kappa_prior=20000.0)
    est = Estimators(p, start_ts=bbo[0][0])
    events: list[tuple[float, int, object]] = [(ts, 0, (b, a)) for ts, b, a in bbo]
    events += [(t.ts, 1, t) for t in trades]
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, kind, ev in events:
        if kind == 0:
            b, a = ev  # type: ignore[misc]
            est.on_bbo(Bbo("BTC", ts, ts, b, 1.0, a, 1.0))
        else:
            est.on_trade(ev, None)  # type: ignore[arg-type]
    s = est.state(bbo[-1][0])
    assert s.ready
    # This session measures ~2.6e-5 per sqrt(second) at 1 s sampling (~14% annualised); generous bounds.
    assert 5e-6 < est.vol.sigma_observed < 1e-3
    assert p.intensity_kappa_min <= s.kappa <= p.intensity_kappa_max
    assert p.intensity_a_min <= s.intensity_a <= p.intensity_a_max
    assert all(math.isfinite(x) for x in (s.sigma, s.kappa, s.intensity_a))
