"""Portfolio accounting: the PnL identity holds for any fill sequence; fills dedupe by (tid, oid)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.engine.portfolio import Portfolio, PortfolioError
from hlmm.venue.base import Fill, Funding


def mk(tid: int, is_buy: bool, px: float, sz: float, fee: float = 0.0, oid: int = 1) -> Fill:
    return Fill(ts=0.0, coin="BTC", cloid="0x1", oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=fee,
                is_maker=True, remaining=0.0)


def test_round_trip_realized_and_fees():
    p = Portfolio()
    assert p.on_fill(mk(1, True, 100.0, 2.0, fee=0.03))
    assert p.position == 2.0 and p.avg_entry == 100.0
    assert p.on_fill(mk(2, False, 101.0, 1.0, fee=0.015))
    assert p.realized == pytest.approx(1.0) and p.position == 1.0 and p.avg_entry == 100.0
    assert p.unrealized(102.0) == pytest.approx(2.0)
    assert p.pnl_total(102.0) == pytest.approx(1.0 + 2.0 - 0.045)
    assert p.cash + p.position * 102.0 == pytest.approx(p.pnl_total(102.0))


def test_flip_sets_entry_at_fill_price_and_duplicate_ignored():
    p = Portfolio()
    p.on_fill(mk(1, True, 100.0, 1.0))
    assert p.on_fill(mk(2, False, 90.0, 3.0))
    assert p.position == -2.0 and p.avg_entry == 90.0 and p.realized == pytest.approx(-10.0)
    assert not p.on_fill(mk(2, False, 90.0, 3.0))
    assert p.position == -2.0 and p.n_fills == 2
    assert p.on_fill(mk(2, False, 90.0, 1.0, oid=7))  # same tid, other oid: a different fill


def test_funding_and_adopt_keep_identity():
    p = Portfolio()
    p.adopt(1.5, 200.0)
    assert p.position == 1.5 and p.avg_entry == 200.0
    p.on_funding(Funding(ts=0.0, coin="BTC", usdc=-0.25, rate=0.0001, szi=1.5))
    assert p.funding == -0.25
    assert p.cash + p.position * 210.0 == pytest.approx(p.pnl_total(210.0))
    p.adopt(0.5, 205.0)
    assert p.cash + p.position * 210.0 == pytest.approx(p.pnl_total(210.0))


def test_bad_fill_raises():
    with pytest.raises(PortfolioError):
        Portfolio().on_fill(mk(1, True, math.nan, 1.0))
    with pytest.raises(PortfolioError):
        Portfolio().on_fill(mk(1, True, 100.0, 0.0))


fills_st = st.lists(
    st.tuples(
        st.booleans(),
        st.floats(min_value=0.5, max_value=150_000.0, allow_nan=False),
        st.integers(min_value=1, max_value=100_000).map(lambda n: n / 1000),
        st.floats(min_value=-0.5, max_value=5.0, allow_nan=False),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(fills_st, st.floats(min_value=0.5, max_value=150_000.0), st.floats(min_value=-3, max_value=3))
def test_pnl_identity_random_fills(fills, mark, funding):
    p = Portfolio()
    for i, (b, px, sz, fee, dup) in enumerate(fills):
        f = mk(i, b, px, sz, fee)
        assert p.on_fill(f)
        if dup:
            assert not p.on_fill(f)
    p.on_funding(Funding(ts=0.0, coin="BTC", usdc=funding, rate=0.0, szi=p.position))
    lhs = p.cash + p.position * mark
    rhs = p.realized + p.unrealized(mark) - p.fees + p.funding
    scale = max(1.0, sum(px * sz for _, px, sz, _, _ in fills))
    assert abs(lhs - rhs) <= 1e-9 * scale
    assert p.pnl_total(mark) == pytest.approx(rhs, abs=1e-9 * scale)
    assert p.n_fills == len(fills)
    net = sum(sz if b else -sz for b, _, sz, _, _ in fills)
    assert p.position == pytest.approx(net, abs=1e-6)
