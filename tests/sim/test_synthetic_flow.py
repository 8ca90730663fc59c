"""Synthetic informed flow, impact, bursts and funding (issue 11 item 6): determinism, the post-trade mid move
with and without informed flow, and funding paid on the hour in a backtest, from the synthetic generator and
from a raw WS capture carrying activeAssetCtx."""

from __future__ import annotations

import gzip
import math
import sys
from pathlib import Path

import orjson
import pytest

from hlmm.config import load_config
from hlmm.data.raw_ws import asset_ctx_message, book_message, trades_message
from hlmm.engine.runner import BacktestResult, replay_source, run_backtest, synthetic_source
from hlmm.market.events import AssetCtx, BookSnapshot, MarketEvent, Trade
from hlmm.sim.synthetic import SyntheticMarket, SynthParams, SynthParamsError, preset
from hlmm.venue.base import Funding

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from post_trade_move import measure

HOUR = 3600.0
# 1_750_000_000 is 3200 s past an hour; start 300 s before the next one so a short run crosses it.
NEAR_HOUR = (math.floor(1_750_000_000.0 / HOUR) + 1) * HOUR - 300.0

# Real BTC sessions (benchmarks/post_trade_move.py --real, per sweep): +0.06..+0.15 bp at 1 s,
# +0.01..+0.41 bp at 10 s (+0.07 and up on the six sessions longer than 2 min). Checked within 2 se of a short run.
REAL_1S = (0.06, 0.15)
REAL_10S = (0.07, 0.41)


def test_flow_is_deterministic_per_seed() -> None:
    p = preset("btc", seed=11)
    a = list(SyntheticMarket(p).events(300))
    assert a == list(SyntheticMarket(p).events(300))
    assert a != list(SyntheticMarket(preset("btc", seed=12)).events(300))
    assert any(isinstance(e, AssetCtx) for e in a)
    short = list(SyntheticMarket(p).events(100))  # look-ahead chunks do not change the stream
    assert a[: len(short)] == short
    m = SyntheticMarket(p)
    assert m.warm_history(300) == m.warm_history(300)


def test_flow_off_reproduces_the_market_without_informed_flow() -> None:
    """btc with toxicity, impact, bursts and funding switched off is btc_noflow, event for event."""
    off = preset("btc", seed=4, toxicity=0.0, impact_bp=0.0, burst_rate=0.0, ctx_interval_s=0.0)
    assert list(SyntheticMarket(off).events(300)) == list(SyntheticMarket(preset("btc_noflow", seed=4)).events(300))


def _move(p: SynthParams, seconds: float) -> dict:
    return measure(SyntheticMarket(p).events(seconds), "test")


def test_no_informed_flow_gives_no_post_trade_move() -> None:
    r = _move(preset("btc_noflow", seed=2), 1200.0)
    for h in ("sweep_h1", "sweep_h10"):
        assert abs(r[h]["mean_bp"]) < 3 * r[h]["se_bp"], r[h]  # zero within 3 standard errors
        assert r[h]["n"] > 2000


def test_calibrated_btc_gives_the_real_post_trade_move() -> None:
    r = _move(preset("btc", seed=2), 1200.0)
    lo, hi = REAL_1S
    m1, se1 = r["sweep_h1"]["mean_bp"], r["sweep_h1"]["se_bp"]
    assert m1 > 4 * se1  # clearly positive, as on the real sessions
    assert lo - 2 * se1 <= m1 <= hi + 2 * se1
    lo, hi = REAL_10S
    m10, se10 = r["sweep_h10"]["mean_bp"], r["sweep_h10"]["se_bp"]
    assert m10 > 2 * se10
    assert lo - 2 * se10 <= m10 <= hi + 2 * se10


def test_informed_sweeps_trade_ahead_of_the_latent_move() -> None:
    """toxicity = 1, no impact: every sweep's side is the sign of the mid move over the horizon."""
    r = _move(preset("btc", seed=3, toxicity=1.0, impact_bp=0.0, informed_horizon_s=10.0), 600.0)
    assert r["sweep_h10"]["mean_bp"] > 1.0  # ~ sqrt(2/pi) * sigma * sqrt(10 s) = 2 bp; mid is on a tick grid


def test_impact_moves_the_mid_with_the_aggressor() -> None:
    r = _move(preset("btc", seed=3, toxicity=0.0, impact_bp=0.05, burst_rate=0.0), 600.0)
    assert r["sweep_h1"]["mean_bp"] > 4 * r["sweep_h1"]["se_bp"]


def test_bursts_keep_the_mean_rate_and_cluster_trades() -> None:
    def counts(p: SynthParams) -> list[int]:
        c = [0] * 1800
        for e in SyntheticMarket(p).events(1800):
            if isinstance(e, Trade):
                c[int(e.ts_exchange - 1_750_000_000.0)] += 1
        return c

    calm = counts(preset("btc", seed=5, burst_rate=0.0))
    bursty = counts(preset("btc", seed=5, burst_rate=1 / 30, burst_mult=8.0))

    def var_over_mean(c: list[int]) -> float:
        m = sum(c) / len(c)
        return sum((x - m) ** 2 for x in c) / len(c) / m

    assert 0.8 < sum(bursty) / sum(calm) < 1.25
    assert var_over_mean(bursty) > 1.5 * var_over_mean(calm)


@pytest.mark.parametrize(("field", "value"), [("toxicity", 1.5), ("toxicity", -0.1), ("informed_horizon_s", 0.0),
                                              ("informed_horizon_s", 120.0), ("impact_bp", -1.0), ("burst_mult", 0.5),
                                              ("burst_mean_s", 0.0), ("ctx_interval_s", 7200.0),
                                              ("premium_std", -1e-4), ("premium_reversion_s", 0.0)])  # fmt: skip
def test_bad_flow_params(field: str, value: float) -> None:
    with pytest.raises(SynthParamsError, match=field):
        preset("btc", **{field: value})


def test_funding_rate_follows_hyperliquid_formula() -> None:
    """Inside the clamp band the rate is the interest 0.01 %/8 h per hour; far outside it tracks the premium."""
    band = [e for e in SyntheticMarket(preset("btc", seed=1, premium_std=0.0)).events(60) if isinstance(e, AssetCtx)]
    assert band and all(e.funding == pytest.approx(1e-4 / 8) for e in band)
    hot = preset("btc", seed=1, premium_mean=0.01, premium_std=0.0)  # +1 %/8 h: F8 = P + clamp(...) = P - 0.05 %
    ctx = [e for e in SyntheticMarket(hot).events(60) if isinstance(e, AssetCtx)]
    assert all(e.funding == pytest.approx((0.01 - 5e-4) / 8) for e in ctx)
    capped = preset("btc", seed=1, premium_mean=0.05, premium_std=0.0)
    assert all(e.funding <= 0.04 for e in SyntheticMarket(capped).events(30) if isinstance(e, AssetCtx))


def _exchange_time(e: MarketEvent) -> float:
    return e.ts if isinstance(e, AssetCtx) else e.ts_exchange  # type: ignore[union-attr]


def _check_hourly_funding(res: BacktestResult, events: list[MarketEvent]) -> list[Funding]:
    """Each Funding is -szi * oracle * rate of the AssetCtx in force at the first event of the hour (the
    exchange pays then), with an open position; the summary's funding is their sum."""
    fundings = list(res.stats.funding)
    ctxs = [e for e in events if isinstance(e, AssetCtx)]
    for f in fundings:
        hour = math.floor(f.ts / HOUR) * HOUR
        trigger = min(t for e in events if (t := _exchange_time(e)) >= hour)
        c = [x for x in ctxs if x.ts <= trigger][-1]
        assert f.szi != 0.0
        assert f.usdc == pytest.approx(-f.szi * c.oracle_px * c.funding, rel=1e-9)
        assert f.rate == c.funding
    assert res.summary["funding"] == pytest.approx(sum(f.usdc for f in fundings), abs=1e-12)
    return fundings


def test_funding_paid_on_the_hour_in_a_synthetic_backtest() -> None:
    src = synthetic_source("btc", duration_s=600.0, seed=7, start_ts=NEAR_HOUR, warm_s=300.0)
    events = list(SyntheticMarket(src.synthetic.params, start_ts=NEAR_HOUR).events(600.0))
    res = run_backtest(src, load_config(None), seed=7)
    fundings = _check_hourly_funding(res, events)
    assert len(fundings) == 1  # the position is open at the hour (seed 7): paid once
    assert NEAR_HOUR + 300.0 <= fundings[0].ts < NEAR_HOUR + 310.0


def test_funding_from_active_asset_ctx_in_a_raw_capture(tmp_path: Path) -> None:
    """A raw WS recording with activeAssetCtx feeds funding into the backtest the same way."""
    p = preset("btc", seed=7)
    events = list(SyntheticMarket(p, start_ts=NEAR_HOUR).events(600.0))
    path = tmp_path / "btc_capture.gz"
    with gzip.open(path, "wb") as f:
        for ev in events:
            if isinstance(ev, BookSnapshot):
                msg = book_message(ev)
            elif isinstance(ev, Trade):
                msg = trades_message([ev])
            else:
                assert isinstance(ev, AssetCtx)
                msg = asset_ctx_message(ev)
            f.write(b"%d %s\n" % (round(ev.ts * 1e9), orjson.dumps(msg)))
    replayed = list(replay_source(path, "BTC").events)
    assert sum(isinstance(e, AssetCtx) for e in replayed) == sum(isinstance(e, AssetCtx) for e in events)
    res = run_backtest(replay_source(path, "BTC"), load_config(None), seed=7)
    fundings = _check_hourly_funding(res, replayed)
    assert len(fundings) == 1
