"""Honest figures (issue 11 item 7): the Sharpe with its standard error only from >= 100 stated intervals, and
markouts before and after fees, each checked on a small example whose expected numbers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from hlmm.engine.summary import SHARPE_MIN_INTERVALS, RunStats, build_summary, format_summary, sharpe_text
from hlmm.venue.base import Fill

ANN = math.sqrt(365 * 86400 / 60)  # annualisation at 60 s intervals: sqrt(525600) = 724.98276...


def _fill(ts: float, is_buy: bool, px: float, sz: float, tid: int, fee: float, maker: bool = True) -> Fill:
    return Fill(ts, "X", "0x" + "0" * 32, tid, tid, is_buy, px, sz, fee, maker, 0.0)


def _zigzag(n: int, max_points: int | None = None) -> RunStats:
    """Long 1 (bought at 100, no fee) from t = 0, and a mid at every 60 s grid point moving +2, -1, +2, -1, ...:
    the PnL (cash + position x mid = mid - 100) changes by exactly those amounts over the n intervals."""
    s = RunStats("X", 0.0, max_points=max_points)
    s.on_venue(_fill(0.0, True, 100.0, 1.0, 1, fee=0.0))
    px = 100.0
    for k in range(n + 1):
        s.on_mid(60.0 * k, px)
        px += 2.0 if k % 2 == 0 else -1.0
    return s


@pytest.mark.parametrize("max_points", [None, 4000])  # backtest, and live/paper's bounded (running-ledger) series
def test_sharpe_and_its_standard_error_by_hand(max_points: int | None) -> None:
    out = build_summary(_zigzag(120, max_points), end_ts=120 * 60.0, max_position_usd=1000.0)
    # 120 changes, 60 of +2 and 60 of -1: mean 0.5; deviations +-1.5, so var (ddof 1) = 120 * 2.25 / 119 = 270/119
    # SR per interval = 0.5 / sqrt(270/119) = 0.331942; SR^2 = 0.25 * 119/270 = 0.110185
    # SE per interval = sqrt((1 + 0.110185/2) / 120) = sqrt(1.055093 / 120) = 0.093768
    # annualised (x 724.98): Sharpe 240.652, SE 67.980
    assert out["sharpe_interval_s"] == 60.0 and out["sharpe_n_intervals"] == 120
    assert out["sharpe"] == pytest.approx(0.5 / math.sqrt(270 / 119) * ANN, rel=1e-12)
    assert out["sharpe"] == pytest.approx(240.652, abs=1e-3)
    assert out["sharpe_se"] == pytest.approx(math.sqrt((1 + 0.25 * 119 / 270 / 2) / 120) * ANN, rel=1e-12)
    assert out["sharpe_se"] == pytest.approx(67.980, abs=1e-3)
    assert sharpe_text(out) == "240.65 ± 67.9802 (120 intervals of 60 s)"
    assert "240.65 ± 67.9802" in format_summary(out)


def test_sharpe_from_exactly_100_intervals() -> None:
    out = build_summary(_zigzag(100), end_ts=100 * 60.0, max_position_usd=1000.0)
    # 50 of +2, 50 of -1: mean 0.5, var = 100 * 2.25 / 99; SR = 0.5 / sqrt(225/99) = 0.331662 -> x 724.98 = 240.450
    # SE = sqrt((1 + 0.331662^2 / 2) / 100) = sqrt(1.055000 / 100) = 0.102713 -> x 724.98 = 74.465
    assert SHARPE_MIN_INTERVALS == 100 and out["sharpe_n_intervals"] == 100
    assert out["sharpe"] == pytest.approx(240.450, abs=1e-3)
    assert out["sharpe_se"] == pytest.approx(74.465, abs=1e-3)


def test_sharpe_is_null_below_100_intervals_and_says_why() -> None:
    out = build_summary(_zigzag(99), end_ts=99 * 60.0, max_position_usd=1000.0)
    assert out["sharpe"] is None and out["sharpe_se"] is None
    assert out["sharpe_n_intervals"] == 99 and out["sharpe_interval_s"] == 60.0
    assert "n/a (< 100 intervals of 60 s: 99)" in format_summary(out)
    # a run just short of 100 intervals by time (99.99 min) is still too short: the interval is not shortened
    out = build_summary(_zigzag(100), end_ts=100 * 60.0 - 0.5, max_position_usd=1000.0)
    assert out["sharpe"] is None and out["sharpe_n_intervals"] == 99


def test_sharpe_is_null_when_pnl_is_flat() -> None:
    s = RunStats("X", 0.0)  # no fills: PnL is 0 throughout, the ratio is undefined
    for k in range(121):
        s.on_mid(60.0 * k, 100.0 + k % 2)
    out = build_summary(s, end_ts=120 * 60.0, max_position_usd=1000.0)
    assert out["sharpe"] is None and out["sharpe_se"] is None and out["sharpe_n_intervals"] == 120
    assert "n/a (PnL flat over 120 intervals of 60 s)" in format_summary(out)


def _three_fills() -> RunStats:
    s = RunStats("X", 0.0)
    for t, m in ((0, 100.00), (1, 100.01), (10, 99.98), (11, 99.97), (20, 100.02), (60, 100.03), (70, 99.99)):
        s.on_mid(float(t), m)
    # A: buy 2 @ 100 at t 0, maker rebate 0.002 USD on 200 USD -> fee -0.1 bp
    s.on_venue(_fill(0.0, True, 100.0, 2.0, 1, fee=-0.002))
    # B: sell 1 @ 100 at t 10, taker fee 0.045 USD on 100 USD -> fee 4.5 bp
    s.on_venue(_fill(10.0, False, 100.0, 1.0, 2, fee=0.045, maker=False))
    # C: buy 1 @ 100 at t 20, fee 0.015 USD on 100 USD -> 1.5 bp; its 60 s horizon (t 80) runs past the data (t 70)
    s.on_venue(_fill(20.0, True, 100.0, 1.0, 3, fee=0.015))
    return s


def test_markouts_gross_and_net_of_fees_by_hand() -> None:
    out = build_summary(_three_fills(), end_ts=70.0, max_position_usd=1000.0)
    # 1 s:  A mid(1) 100.01 -> +1; B sell, mid(11) 99.97 -> +3; C mid(21) = mid(20) 100.02 -> +2   gross (1+3+2)/3 = 2
    #       net: A 1 - (-0.1) = 1.1; B 3 - 4.5 = -1.5; C 2 - 1.5 = 0.5                          net 0.1/3 = 0.03333
    assert out["markout_1s"] == pytest.approx(2.0, abs=1e-9)
    assert out["markout_1s_net"] == pytest.approx(0.1 / 3, abs=1e-9)
    # 10 s: A mid(10) 99.98 -> -2; B sell, mid(20) 100.02 -> -2; C mid(30) = 100.02 -> +2      gross -2/3 = -0.66667
    #       net: A -2 + 0.1 = -1.9; B -2 - 4.5 = -6.5; C 2 - 1.5 = 0.5                           net -7.9/3 = -2.63333
    assert out["markout_10s"] == pytest.approx(-2 / 3, abs=1e-9)
    assert out["markout_10s_net"] == pytest.approx(-7.9 / 3, abs=1e-9)
    # 60 s: A mid(60) 100.03 -> +3; B sell, mid(70) 99.99 -> +1; C left out (t 80 > 70)          gross 4/2 = 2
    #       net: A 3 + 0.1 = 3.1; B 1 - 4.5 = -3.5                                                net -0.4/2 = -0.2
    assert out["markout_60s"] == pytest.approx(2.0, abs=1e-9)
    assert out["markout_60s_net"] == pytest.approx(-0.2, abs=1e-9)
    # fee per fill, plain average over all three: (-0.1 + 4.5 + 1.5) / 3 = 5.9/3 = 1.96667 bp
    assert out["fee_bps_per_fill"] == pytest.approx(5.9 / 3, abs=1e-9)
    assert out["markout_unit"] == "bps"
    text = format_summary(out)
    for label, value in (("markout 10 s gross (bps)", "-0.6667"), ("markout 10 s net (bps)", "-2.6333"),
                         ("fee per fill (bps, signed)", "1.9667")):  # fmt: skip
        assert f"{label:<28} {value}" in text, text


def test_markouts_without_fills_are_null() -> None:
    s = RunStats("X", 0.0)
    s.on_mid(0.0, 100.0)
    out = build_summary(s, end_ts=100.0, max_position_usd=1000.0)
    for k in ("markout_1s", "markout_1s_net", "markout_10s_net", "markout_60s_net", "fee_bps_per_fill"):
        assert out[k] is None, k


def test_a_backtest_of_over_100_minutes_reports_sharpe_with_its_se() -> None:
    from hlmm.config import load_config
    from hlmm.engine.runner import run_backtest, synthetic_source

    out = run_backtest(synthetic_source("hype_quiet", duration_s=6060.0, seed=1), load_config(None), seed=1,
                       duration_s=6060.0).summary  # fmt: skip
    n = out["sharpe_n_intervals"]
    assert n >= 100 and out["sharpe"] is not None and math.isfinite(out["sharpe"])
    sr = out["sharpe"] / ANN  # per interval
    assert out["sharpe_se"] == pytest.approx(math.sqrt((1 + sr * sr / 2) / n) * ANN, rel=1e-12)
    assert " ± " in format_summary(out)
