"""Reference lead-lag signal, GLFT coefficients and the fair price."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.events import RefQuote
from hlmm.strategy.errors import ReferenceInputError
from hlmm.strategy.fair import fair_price
from hlmm.strategy.glft import glft_bps
from hlmm.strategy.params import StrategyParams
from hlmm.strategy.reference import ReferenceSignal

from .helpers import market

ON = StrategyParams(ref_weight=1.0, ref_max_adjust_bps=20.0, ref_halflife_s=2.0)


def ref(ts: float, mid: float, half_spread: float = 0.5) -> RefQuote:
    return RefQuote("btcusdt", ts, ts, mid - half_spread, mid + half_spread)


# ---- reference signal ----------------------------------------------------------------------------------
def test_lead_lag_signal_then_decay_and_catch_up() -> None:
    s = ReferenceSignal(ON, stale_s=3.0)
    s.on_ref(ref(0.0, 100_000.0))
    s.on_mid(0.0, 100_050.0)  # constant basis of ~+5 bp: no signal
    s.on_ref(ref(1.0, 100_000.0))
    assert s.adjust_bps(1.0) == pytest.approx(0.0, abs=1e-9)
    s.on_ref(ref(1.0, 100_100.0))  # reference up 10 bp, our mid not yet
    assert s.adjust_bps(1.0) == pytest.approx(10.0, rel=1e-3)
    assert s.adjust_bps(3.0) == pytest.approx(5.0, rel=1e-3)  # one half-life later
    s.on_mid(1.2, 100_150.0)  # our mid catches up
    assert abs(s.adjust_bps(1.2)) < 1.0


def test_signal_is_bounded_disabled_stale_and_unknown() -> None:
    s = ReferenceSignal(ON, stale_s=3.0)
    assert s.adjust_bps(0.0) == 0.0  # nothing known
    s.on_ref(ref(0.0, 100.0))
    assert s.adjust_bps(0.0) == 0.0  # no mid yet
    s.on_mid(0.0, 100.0)
    s.on_ref(ref(0.5, 110.0))  # +10%: clamped
    assert s.adjust_bps(0.5) == 20.0
    assert s.adjust_bps(3.6) == 0.0  # ref quote older than stale_s
    assert "stale" in s.describe(3.6)
    off = ReferenceSignal(StrategyParams(ref_weight=0.0), stale_s=3.0)
    off.on_ref(ref(0.0, 100.0))
    off.on_mid(0.0, 100.0)
    off.on_ref(ref(0.5, 110.0))
    assert off.adjust_bps(0.5) == 0.0 and off.describe(0.5) == "ref: disabled"


def test_resumed_feed_is_reseeded() -> None:
    s = ReferenceSignal(ON, stale_s=3.0)
    s.on_ref(ref(0.0, 100.0))
    s.on_mid(0.0, 100.0)
    s.on_ref(ref(10.0, 103.0))  # after a 10 s gap: a new basis, not a lead
    assert s.adjust_bps(10.0) == 0.0


def test_bad_reference_input() -> None:
    s = ReferenceSignal(ON, stale_s=3.0)
    with pytest.raises(ReferenceInputError):
        s.on_mid(0.0, math.nan)
    with pytest.raises(ReferenceInputError):
        s.on_mid(0.0, -1.0)
    with pytest.raises(ReferenceInputError):
        s.on_ref(RefQuote("x", 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ReferenceInputError):
        ReferenceSignal(ON, stale_s=0.0)
    s.on_ref(RefQuote("x", 0.0, 0.0, 101.0, 100.0))  # crossed: ignored, counted
    s.on_ref(ref(1.0, 100.0))
    s.on_ref(ref(0.5, 200.0))  # late: ignored
    assert s.n_ignored == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.floats(min_value=0, max_value=5),
            st.floats(min_value=-0.02, max_value=0.02),
        ),
        min_size=1,
        max_size=40,
    ),
    st.floats(min_value=0, max_value=50),
)
def test_signal_always_bounded_and_finite(steps, max_bps) -> None:
    params = StrategyParams(ref_weight=1.0, ref_max_adjust_bps=max_bps, ref_halflife_s=1.5)
    s = ReferenceSignal(params, stale_s=2.0)
    t = 0.0
    px = 100.0
    for is_ref, dt, move in steps:
        t += dt
        px *= 1 + move
        if is_ref:
            s.on_ref(ref(t, px, 0.01))
        else:
            s.on_mid(t, px)
        a = s.adjust_bps(t + dt)
        assert math.isfinite(a) and abs(a) <= max_bps


# ---- GLFT ------------------------------------------------------------------------------------------------
def test_glft_numbers_and_monotonicity() -> None:
    btc = glft_bps(0.1, 0.25, 0.0004, 1.0, 2000.0)
    assert 4.0 < btc.half_spread_bps < 8.0 and 4.0 < btc.skew_bps_per_q < 10.0
    hype = glft_bps(0.1, 0.25, 0.0008, 0.5, 1000.0)
    assert 8.0 < hype.half_spread_bps < 20.0
    assert glft_bps(0.1, 0.25, 0.0, 1.0, 2000.0).skew_bps_per_q == 0.0
    assert glft_bps(0.1, 0.25, 0.0004, 1.0, 4000.0).half_spread_bps < btc.half_spread_bps  # more liquidity
    assert glft_bps(1.0, 0.25, 0.0004, 1.0, 2000.0).skew_bps_per_q > btc.skew_bps_per_q  # more risk aversion
    assert glft_bps(0.1, 0.25, 0.0008, 1.0, 2000.0).skew_bps_per_q == pytest.approx(2 * btc.skew_bps_per_q)
    assert btc.c1_bps == pytest.approx(1e4 / 2000.0, rel=0.1)  # ~1/kappa for small gamma
    for bad in (
        (0.0, 0.25, 0.0004, 1.0, 2000.0),
        (0.1, 0.25, -1.0, 1.0, 2000.0),
        (0.1, 0.25, 0.0004, 0.0, 2000.0),
        (0.1, 0.25, 0.0004, 1.0, math.inf),
    ):
        with pytest.raises(ValueError):
            glft_bps(*bad)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1e-4, max_value=1e3),
    st.floats(min_value=0.01, max_value=1.0),
    st.floats(min_value=0, max_value=0.05),
    st.floats(min_value=1e-3, max_value=1e3),
    st.floats(min_value=1.0, max_value=1e7),
)
def test_glft_is_finite_and_positive(gamma, delta, sigma, a, kappa) -> None:
    g = glft_bps(gamma, delta, sigma, a, kappa)
    assert math.isfinite(g.half_spread_bps) and g.half_spread_bps > 0
    assert math.isfinite(g.skew_bps_per_q) and g.skew_bps_per_q >= 0


# ---- fair price --------------------------------------------------------------------------------------
def test_fair_price_formula() -> None:
    m = market("BTC", 99_990.0, 100_010.0, bid_sz=1.0, ask_sz=3.0)
    assert fair_price(m, StrategyParams(), 7.0).fair == 100_000.0  # ref_weight 0: ignored
    f = fair_price(m, StrategyParams(ref_weight=0.5, ref_max_adjust_bps=5.0), -7.0)
    assert f.fair == pytest.approx(100_000.0 * (1 - 0.5 * 5.0 / 1e4)) and f.adjust_bps == -2.5
    micro = fair_price(m, StrategyParams(use_microprice=True))
    assert micro.source == "microprice" and micro.fair < 100_000.0  # more size on the ask: leans down
    from hlmm.market.state import MarketState

    assert fair_price(MarketState("BTC"), StrategyParams()) is None
