"""Summary maths: ledger balance, markouts, drawdown, Sharpe, uptime, rejections."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.engine.summary import Ledger, RunStats, SummaryError, build_summary, format_summary
from hlmm.venue.base import CancelOrder, Fill, Funding, ModifyOrder, OrderRejected, PlaceOrder, RejectReason


def _fill(
    ts: float, is_buy: bool, px: float, sz: float, tid: int, maker: bool = True, fee: float | None = None
) -> Fill:
    fee = px * sz * 0.00015 if fee is None else fee
    return Fill(ts, "BTC", "0x" + "0" * 32, tid, tid, is_buy, px, sz, fee, maker, 0.0)


def test_ledger_round_trip_realizes() -> None:
    led = Ledger()
    led.on_fill(True, 100.0, 2.0, 0.0)
    led.on_fill(False, 110.0, 1.0, 0.0)
    assert led.position == 1.0 and led.realized == pytest.approx(10.0)
    led.on_fill(False, 90.0, 3.0, 0.0)  # flips short 2 @ 90
    assert led.position == -2.0 and led.avg_entry == 90.0
    assert led.realized == pytest.approx(0.0)
    assert led.pnl_total(90.0) == pytest.approx(led.realized + led.unrealized(90.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(10, 1000), st.floats(0.001, 5), st.floats(-0.1, 0.5)),
        min_size=1,
        max_size=40,
    ),
    st.floats(10, 1000),
    st.lists(st.floats(-5, 5), max_size=5),
)
def test_ledger_balances(fills: list, mark: float, funding: list) -> None:
    led = Ledger()
    for b, px, sz, fee in fills:
        led.on_fill(b, px, sz, fee)
    for u in funding:
        led.on_funding(u)
    lhs = led.cash + led.position * mark
    rhs = led.realized + led.unrealized(mark) - led.fees + led.funding
    assert lhs == pytest.approx(rhs, abs=1e-6)


def _stats_with_path() -> RunStats:
    s = RunStats("BTC", start_ts=0.0)
    for i in range(0, 3601):
        s.on_mid(float(i), 100.0 + (i % 7) * 0.01)
    return s


def test_markout_sign_and_units() -> None:
    s = RunStats("X", 0.0)
    s.on_mid(0.0, 100.0)
    s.on_mid(5.0, 101.0)
    s.on_mid(100.0, 101.0)
    s.on_venue(_fill(4.5, True, 100.0, 1.0, 1))  # buy at 100; 1 s later mid 101 -> +100 bps
    s.on_venue(_fill(4.5, False, 100.0, 1.0, 2))  # sell at 100 -> -100 bps
    s.on_venue(_fill(4.6, True, 100.0, 1.0, 3))
    out = build_summary(s, end_ts=100.0, max_position_usd=1000.0)
    assert out["markout_1s"] == pytest.approx((100 - 100 + 100) / 3)
    assert out["markout_unit"] == "bps"
    assert out["markout_60s"] == pytest.approx(100 / 3)


def test_markout_excludes_fills_past_data_end() -> None:
    s = RunStats("X", 0.0)
    s.on_mid(0.0, 100.0)
    s.on_mid(10.0, 100.0)
    s.on_venue(_fill(9.5, True, 100.0, 1.0, 1))
    out = build_summary(s, end_ts=10.0, max_position_usd=1000.0)
    assert out["markout_1s"] is None and out["markout_10s"] is None


def test_duplicate_fill_counted_once_and_balance() -> None:
    s = _stats_with_path()
    f = _fill(10.0, True, 100.0, 0.5, 7)
    s.on_venue(f)
    s.on_venue(f)
    s.on_venue(_fill(20.0, False, 100.05, 0.2, 8, maker=False))
    out = build_summary(s, end_ts=3600.0, max_position_usd=1000.0)
    assert out["n_fills"] == 2
    assert out["maker_volume_usd"] == pytest.approx(50.0)
    assert out["taker_volume_usd"] == pytest.approx(20.01)
    chk = out["pnl_check"]
    assert chk["balanced"]
    assert chk["cash"] + chk["position"] * chk["mark"] == pytest.approx(out["pnl_total"], abs=0.005)
    assert out["max_abs_position"] == pytest.approx(0.5)
    json.dumps(out)  # serialisable


def test_portfolio_mismatch_is_flagged() -> None:
    class BadPortfolio:
        position = 0.5
        realized = fees = funding = 0.0

        def pnl_total(self, mark: float) -> float:
            return 1.23

        def unrealized(self, mark: float) -> float:
            return 0.0

    s = _stats_with_path()
    s.on_venue(_fill(10.0, True, 100.0, 0.5, 1))
    out = build_summary(s, end_ts=3600.0, max_position_usd=1000.0, portfolio=BadPortfolio())
    assert out["pnl_check"]["balanced"] is False


def test_drawdown_and_sharpe() -> None:
    s = RunStats("X", 0.0)
    s.on_venue(_fill(0.0, True, 100.0, 1.0, 1, fee=0.0))
    prices = [100.0, 110.0, 95.0, 105.0]
    for i, p in enumerate(prices):
        s.on_mid(float(i), p)
    out = build_summary(s, end_ts=4.0, max_position_usd=1000.0)
    assert out["max_drawdown"] == pytest.approx(15.0)
    assert out["sharpe"] is None and out["sharpe_se"] is None  # fewer than 100 intervals
    s2 = _stats_with_path()
    s2.on_venue(_fill(0.5, True, 100.0, 1.0, 1, fee=0.0))
    out2 = build_summary(s2, end_ts=3600.0, max_position_usd=1000.0)
    assert out2["sharpe_n_intervals"] == 60
    assert out2["sharpe"] is None or math.isfinite(out2["sharpe"])


def test_actions_quote_time_max_order_and_rejections() -> None:
    s = RunStats("hyna:HYPE", start_ts=100.0)
    s.on_mid(100.0, 33.0)
    cl = "0x" + "1" * 32
    p = PlaceOrder("hyna:HYPE", cl, True, 32.9, 0.38)
    s.on_actions([p, CancelOrder("hyna:HYPE", cl)], 103.5)
    s.on_actions([ModifyOrder(cl, PlaceOrder("hyna:HYPE", cl, True, 32.8, 0.5))], 104.0)
    s.on_actions([PlaceOrder("hyna:HYPE", cl, False, 33.0, 5.0, reduce_only=True)], 105.0)  # flatten: not a quote
    s.on_venue(OrderRejected(104.0, "hyna:HYPE", cl, RejectReason.POST_ONLY_CROSS, "Post only ..."))
    s.on_venue(Funding(104.0, "hyna:HYPE", 0.01, 0.0001, 0.0))
    out = build_summary(s, end_ts=110.0, max_position_usd=50.0, kill="manual")
    assert out["time_to_first_quote_s"] == pytest.approx(3.5)
    assert out["max_order_size"] == 0.5
    assert out["rejections"] == {"post_only_cross": 1}
    assert out["kill"] == "manual"
    assert out["funding"] == pytest.approx(0.01)
    assert out["pnl_total"] == pytest.approx(0.01)
    assert "post_only_cross=1" in format_summary(out)


def test_uptime_time_weighted_from_first_quote() -> None:
    s = RunStats("X", 0.0)
    s.on_mid(0.0, 1.0)
    s.on_resting(1.0, 1, 1)  # before first quote: ignored
    s.on_actions([PlaceOrder("X", "0x" + "2" * 32, True, 1.0, 10.0)], 2.0)
    s.on_resting(3.0, 1, 1)  # 2..3 not yet resting
    s.on_resting(5.0, 1, 0)  # 3..5 both
    s.on_resting(6.0, 1, 1)  # 5..6 one-sided
    out = build_summary(s, end_ts=6.0, max_position_usd=100.0)
    assert out["quote_uptime_both_sides"] == pytest.approx(2.0 / 4.0)


def test_no_market_data_raises() -> None:
    with pytest.raises(SummaryError):
        build_summary(RunStats("X", 0.0), end_ts=1.0, max_position_usd=1.0)
