"""Ladder: size caps (property), BBO guard (property), the incident numbers, and behaviour units."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlmm.market.instrument import Instrument, default_registry
from hlmm.strategy.errors import StrategyInputError
from hlmm.strategy.ladder import apply_bbo_guard, compute_ladder, passive_bound, size_caps
from hlmm.strategy.params import StrategyParams
from hlmm.strategy.types import Quote

from .helpers import check_invariants, est, market

HYPE = default_registry().get("HYPE")
BTC = default_registry().get("BTC")
TS = 1000.5  # book stamped at 1000.0: fresh


# ---------------------------------------------------------------------------------------------------------
# random scenarios
# ---------------------------------------------------------------------------------------------------------
@st.composite
def scenario(draw: st.DrawFn, far_fair: bool = False):
    szd = draw(st.integers(0, 5))
    inst = Instrument("TST", 7, szd)
    lo = math.log10(10.0 ** -(6 - szd)) + 3.0  # at least ~1000 ticks in the price
    mid = 10 ** draw(st.floats(min_value=lo, max_value=5.3))
    bb = inst.round_bid(mid * (1 - draw(st.floats(min_value=0, max_value=0.003))))
    ba = inst.round_ask(mid * (1 + draw(st.floats(min_value=0, max_value=0.003))))
    if ba <= bb:
        ba = inst.next_passive_px(bb, False)
    lot_usd = mid * 10.0**-szd
    max_usd = max(lot_usd, 10.0) * 10 ** draw(st.floats(min_value=0.4, max_value=4.5))
    levels = draw(st.integers(1, 50))
    params = StrategyParams(
        levels=levels,
        gamma=10 ** draw(st.floats(min_value=-3, max_value=1.5)),
        level_spacing_bps=draw(st.floats(min_value=0.1, max_value=60)),
        size_profile=draw(st.sampled_from(["flat", "linear", "geometric"])),
        size_decay=draw(st.floats(min_value=0.05, max_value=1.0)),
        min_half_spread_bps=draw(st.floats(min_value=0, max_value=20)),
        max_half_spread_bps=draw(st.floats(min_value=20, max_value=300)),
        use_microprice=draw(st.booleans()),
        ref_weight=draw(st.floats(min_value=0, max_value=1)) if far_fair else 0.0,
        ref_max_adjust_bps=draw(st.floats(min_value=0, max_value=1500)) if far_fair else 5.0,
        max_order_fraction=draw(st.floats(min_value=0.01, max_value=1.0)),
        stale_widen_bps=draw(st.floats(min_value=0, max_value=50)),
    )
    estimate = est(
        sigma=draw(st.floats(min_value=0, max_value=0.01)),
        a=10 ** draw(st.floats(min_value=-2, max_value=1.7)),
        kappa=10 ** draw(st.floats(min_value=2, max_value=5)),
    )
    eff_guess = max_usd / mid
    frac = draw(st.floats(min_value=-1.0, max_value=1.0))
    position = inst.floor_size(abs(frac) * eff_guess) * (1 if frac >= 0 else -1)
    if draw(st.booleans()):
        position *= 1 + 1e-13  # float drift from summing fills
    m = market(
        inst.coin,
        bb,
        ba,
        bid_sz=10 ** draw(st.floats(min_value=-2, max_value=3)),
        ask_sz=10 ** draw(st.floats(min_value=-2, max_value=3)),
        ts=1000.0,
    )
    age = draw(st.sampled_from([0.1, 1.0, 30.0]))
    ref = draw(st.floats(min_value=-1500, max_value=1500)) if far_fair else 0.0
    reduce_only = draw(st.integers(0, 4)) == 0
    return inst, params, max_usd, m, estimate, position, 1000.0 + age, ref, reduce_only, bb, ba


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_size_caps_hold_for_random_params(sc) -> None:
    inst, params, max_usd, m, estimate, position, ts, ref, reduce_only, bb, ba = sc
    lad = compute_ladder(inst, params, max_usd, m, estimate, position, ts, ref, reduce_only)
    check_invariants(inst, params, max_usd, lad, position, reduce_only, bb, ba)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(far_fair=True))
def test_bbo_guard_holds_when_fair_is_far_from_the_book(sc) -> None:
    inst, params, max_usd, m, estimate, position, ts, ref, reduce_only, bb, ba = sc
    lad = compute_ladder(inst, params, max_usd, m, estimate, position, ts, ref, reduce_only)
    assert all(q.px < ba for q in lad.bids)
    assert all(q.px > bb for q in lad.asks)
    check_invariants(inst, params, max_usd, lad, position, reduce_only, bb, ba)


@st.composite
def guard_case(draw: st.DrawFn):
    szd = draw(st.integers(0, 5))
    inst = Instrument("TST", 7, szd)
    lo = math.log10(10.0 ** -(6 - szd)) + 2.0
    mid = 10 ** draw(st.floats(min_value=lo, max_value=5.5))
    bb = inst.round_bid(mid)
    ba = inst.round_ask(mid * (1 + draw(st.floats(min_value=0, max_value=0.01))))
    if ba <= bb:
        ba = inst.next_passive_px(bb, False)
    is_buy = draw(st.booleans())
    # A stale fair anywhere within +-5% of the book; quotes around it, inner first.
    fair = mid * (1 + draw(st.floats(min_value=-0.05, max_value=0.05)))
    n = draw(st.integers(1, 8))
    step = draw(st.floats(min_value=0, max_value=0.002))
    quotes = []
    for i in range(n):
        raw = fair * (1 - i * step) if is_buy else fair * (1 + i * step)
        px = inst.round_px(raw, is_buy)
        if quotes and ((px >= quotes[-1].px) if is_buy else (px <= quotes[-1].px)):
            continue
        sz = inst.min_size_at(px) + inst.floor_size(draw(st.floats(min_value=0, max_value=5)))
        quotes.append(Quote(is_buy, px, inst.floor_size(sz), i, "px: test; sz: test"))
    return inst, quotes, is_buy, bb, ba


@settings(max_examples=800, deadline=None)
@given(guard_case())
def test_apply_bbo_guard_never_crosses(case) -> None:
    inst, quotes, is_buy, bb, ba = case
    kept, dropped = apply_bbo_guard(inst, quotes, is_buy, bb, ba, None)
    assert len(kept) + len(dropped) == len(quotes)
    prev = None
    for q in kept:
        assert (q.px < ba) if is_buy else (q.px > bb)
        assert inst.is_valid_price(q.px) and inst.meets_min_value(q.px, q.sz)
        if prev is not None:
            assert (q.px < prev) if is_buy else (q.px > prev)
        prev = q.px
        orig = next(o for o in quotes if o.level == q.level)
        assert (q.px <= orig.px) if is_buy else (q.px >= orig.px)  # only ever moved passive
        if q.px != orig.px:
            assert "guard: moved" in q.reason
    bound = passive_bound(inst, is_buy, bb, ba)
    assert (bound < ba) if is_buy else (bound > bb)
    assert inst.is_valid_price(bound)


# ---------------------------------------------------------------------------------------------------------
# the incident numbers
# ---------------------------------------------------------------------------------------------------------
def test_incident_size_caps_hype_50usd() -> None:
    caps = size_caps(HYPE, 32.95, 50.0, 25)
    assert caps.eff_max_position == 1.51
    assert caps.min_size == 0.31
    assert caps.per_order_cap == 0.37  # floor(0.25 * 1.51) in lots
    assert caps.per_level_cap == 0.01  # 0.33 * 1.51 / 25 -> below min size: concentration needed
    assert size_caps(HYPE, 32.95, 50.0, 1).per_level_cap == 0.49
    assert size_caps(HYPE, 32.95, 50.0, 25, order_fraction=0.9).per_order_cap == 0.37  # never raised
    assert size_caps(HYPE, 32.95, 50.0, 25, order_fraction=0.1).per_order_cap == 0.31  # lowered, min size


@pytest.mark.parametrize("position", [0.0, 0.37, -0.74, 1.14, -1.51, 1.51])
@pytest.mark.parametrize("profile", ["flat", "linear", "geometric"])
def test_incident_concentration_never_exceeds_25pct(position: float, profile: str) -> None:
    params = StrategyParams(levels=25, size_profile=profile)
    m = market("HYPE", 32.94, 32.96)
    lad = compute_ladder(HYPE, params, 50.0, m, est(0.0008, 0.5, 1000.0), position, TS)
    assert lad.fair == pytest.approx(32.95)
    assert lad.bids or lad.asks
    for q in lad.bids + lad.asks:
        assert q.sz <= max(HYPE.min_size_at(q.px), 0.25 * 1.51) + 1e-12
        assert "concentrated 25->1" in q.reason
    assert any("concentration" in d for d in lad.dropped)
    check_invariants(HYPE, params, 50.0, lad, position, False, 32.94, 32.96)


def test_incident_stale_mid_bid_not_through_best_ask() -> None:
    # Book 32.977 @ 32.992; a stale fair of 32.999 (here via the reference adjustment) and a short
    # position that skews bids up: the raw bid is above the best ask, the guard keeps it below.
    m = market("HYPE", 32.977, 32.992)
    mid = 0.5 * (32.977 + 32.992)
    adj = (32.999 / mid - 1) * 1e4
    params = StrategyParams(levels=5, ref_weight=1.0, ref_max_adjust_bps=10.0)
    lad = compute_ladder(HYPE, params, 5000.0, m, est(0.0008, 0.5, 1000.0), -120.0, TS, adj)
    assert lad.fair == pytest.approx(32.999)
    assert lad.bids
    assert all(q.px < 32.992 for q in lad.bids)
    assert lad.bids[0].px == 32.991
    assert "guard: moved" in lad.bids[0].reason and "best ask 32.992" in lad.bids[0].reason
    check_invariants(HYPE, params, 5000.0, lad, -120.0, False, 32.977, 32.992)
    # the guard alone, on a bid computed from the stale mid
    bid = Quote(True, HYPE.round_bid(32.999 * (1 - 1e-4)), 0.37, 0, "px: stale; sz: test")
    kept, dropped = apply_bbo_guard(HYPE, [bid], True, 32.977, 32.992, 0.37)
    assert not dropped and kept[0].px == 32.991


# ---------------------------------------------------------------------------------------------------------
# behaviour
# ---------------------------------------------------------------------------------------------------------
def test_default_ladder_btc_shape_and_reasons() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    lad = compute_ladder(BTC, StrategyParams(), 100_000.0, m, est(), 0.0, TS)
    assert len(lad.bids) == len(lad.asks) == 5
    hs_bps = (100_000.0 - lad.bids[0].px) / 100_000.0 * 1e4
    assert 4.0 < hs_bps < 8.0  # GLFT ~5.6 bp with the BTC-like defaults
    assert lad.bids[1].px == pytest.approx(lad.bids[0].px - 50.0, abs=1.0)  # 5 bp spacing
    for key in ("fair=", "sigma=", "A=", "kappa=", "q=", "stale=False", "reduce_only=False"):
        assert key in lad.reason
    assert "per_level cap" in lad.bids[0].reason and "round_down" in lad.bids[0].reason
    assert "round_up" in lad.asks[0].reason
    check_invariants(BTC, StrategyParams(), 100_000.0, lad, 0.0, False, 99_999.0, 100_001.0)


def test_inventory_skew_moves_both_sides_down_when_long() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    flat = compute_ladder(BTC, StrategyParams(), 100_000.0, m, est(), 0.0, TS)
    long = compute_ladder(BTC, StrategyParams(), 100_000.0, m, est(), 0.5, TS)
    assert long.bids[0].px < flat.bids[0].px
    assert long.asks[0].px < flat.asks[0].px


def test_stale_book_widens() -> None:
    params = StrategyParams(stale_book_s=5.0, stale_widen_bps=10.0)
    m = market("BTC", 99_999.0, 100_001.0, ts=1000.0)
    fresh = compute_ladder(BTC, params, 100_000.0, m, est(), 0.0, 1001.0)
    stale = compute_ladder(BTC, params, 100_000.0, m, est(), 0.0, 1010.0)
    assert "stale=True" in stale.reason and "+10bp" in stale.reason
    assert fresh.bids[0].px - stale.bids[0].px == pytest.approx(100.0, abs=1.0)
    assert stale.asks[0].px - fresh.asks[0].px == pytest.approx(100.0, abs=1.0)


def test_half_spread_clamped() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    tight = compute_ladder(BTC, StrategyParams(min_half_spread_bps=3.0), 1e5, m, est(0.0, 1.0, 1e6), 0.0, TS)
    assert "hs=3.000bp" in tight.reason
    wide = compute_ladder(BTC, StrategyParams(max_half_spread_bps=20.0), 1e5, m, est(0.01, 0.01, 100.0), 0.0, TS)
    assert "hs=20.000bp" in wide.reason


@pytest.mark.parametrize(
    ("bid", "ask", "why"),
    [(None, 100.0, "no two-sided book"), (100.0, 100.0, "crossed/locked"), (101.0, 100.0, "crossed")],
)
def test_no_quotes_without_a_sane_book(bid, ask, why) -> None:
    from hlmm.market.state import MarketState

    m = MarketState("BTC", best_bid=bid, best_ask=ask, book_ts_exchange=1000.0)
    lad = compute_ladder(BTC, StrategyParams(), 1e5, m, est(), 0.0, TS)
    assert not lad.bids and not lad.asks and why in lad.reason


def test_no_quotes_when_estimators_not_ready_or_invalid() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    lad = compute_ladder(BTC, StrategyParams(), 1e5, m, est(ready=False), 0.0, TS)
    assert not lad.bids and "estimators not ready" in lad.reason
    for bad in (est(a=0.0), est(kappa=-1.0), est(sigma=math.nan)):
        lad = compute_ladder(BTC, StrategyParams(), 1e5, m, bad, 0.0, TS)
        assert not lad.bids and not lad.asks and "invalid estimates" in lad.reason


def test_bad_inputs_raise_typed_errors() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    base = {"max_position_usd": 1e5, "position": 0.0, "ts": TS, "ref_adjust_bps": 0.0}
    bad_args = [
        {"position": math.nan},
        {"max_position_usd": 0.0},
        {"max_position_usd": -5.0},
        {"ts": math.inf},
        {"ref_adjust_bps": math.nan},
        {"position": "1"},
    ]
    for bad in bad_args:
        a = base | bad
        with pytest.raises(StrategyInputError):
            compute_ladder(
                BTC, StrategyParams(), a["max_position_usd"], m, est(), a["position"], a["ts"], a["ref_adjust_bps"]
            )
    with pytest.raises(StrategyInputError, match="market state is for"):
        compute_ladder(HYPE, StrategyParams(), 100.0, m, est(), 0.0, TS)
    with pytest.raises(StrategyInputError):
        size_caps(HYPE, 32.95, 50.0, 0)
    with pytest.raises(StrategyInputError):
        size_caps(HYPE, math.nan, 50.0, 1)


def test_at_the_limit_only_the_reducing_side_quotes() -> None:
    m = market("HYPE", 32.94, 32.96)
    lad = compute_ladder(HYPE, StrategyParams(), 500.0, m, est(0.0008, 0.5, 1000.0), 15.17, TS)
    assert not lad.bids and lad.asks and "bids off" in lad.reason
    lad = compute_ladder(HYPE, StrategyParams(), 500.0, m, est(0.0008, 0.5, 1000.0), -20.0, TS)
    assert not lad.asks and lad.bids


def test_reduce_only() -> None:
    m = market("HYPE", 32.94, 32.96)
    e = est(0.0008, 0.5, 1000.0)
    lad = compute_ladder(HYPE, StrategyParams(), 5000.0, m, e, 0.7, TS, reduce_only=True)
    assert not lad.bids and lad.asks and sum(q.sz for q in lad.asks) <= 0.7 + 1e-12
    assert "reduce_only" in lad.reason
    lad = compute_ladder(HYPE, StrategyParams(), 5000.0, m, e, 0.0, TS, reduce_only=True)
    assert not lad.bids and not lad.asks
    lad = compute_ladder(HYPE, StrategyParams(), 5000.0, m, e, 0.2, TS, reduce_only=True)
    assert not lad.asks and any("no room" in d for d in lad.dropped)  # 0.2 < min size 0.31


def test_size_profiles() -> None:
    m = market("HYPE", 32.94, 32.96)
    e = est(0.0008, 0.5, 1000.0)
    for profile in ("linear", "geometric"):
        lad = compute_ladder(HYPE, StrategyParams(size_profile=profile, size_decay=0.5), 50_000.0, m, e, 0.0, TS)
        sizes = [q.sz for q in lad.bids]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


def test_levels_rounding_to_the_same_price_are_merged() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    params = StrategyParams(levels=10, level_spacing_bps=0.02)  # 0.2 USD apart, tick is 1 USD
    lad = compute_ladder(BTC, params, 1e6, m, est(), 0.0, TS)
    assert len({q.px for q in lad.bids}) == len(lad.bids) < 10
    assert any("merged" in d for d in lad.dropped)
    check_invariants(BTC, params, 1e6, lad, 0.0, False, 99_999.0, 100_001.0)


def test_too_small_max_position_quotes_nothing_with_reason() -> None:
    m = market("HYPE", 32.94, 32.96)
    lad = compute_ladder(HYPE, StrategyParams(), 20.0, m, est(0.0008, 0.5, 1000.0), 0.0, TS)
    assert not lad.bids and not lad.asks
    assert any("no level possible" in d for d in lad.dropped)


def test_microprice_and_reference_in_fair() -> None:
    m = market("BTC", 99_990.0, 100_010.0, bid_sz=3.0, ask_sz=1.0)
    p = StrategyParams(use_microprice=True, ref_weight=0.5, ref_max_adjust_bps=4.0)
    lad = compute_ladder(BTC, p, 1e5, m, est(), 0.0, TS, ref_adjust_bps=10.0)
    micro = (99_990.0 * 1.0 + 100_010.0 * 3.0) / 4.0
    assert lad.fair == pytest.approx(micro * (1 + 0.5 * 4.0 / 1e4))
    assert "microprice" in lad.reason


def test_pure_and_deterministic() -> None:
    m = market("HYPE", 32.94, 32.96)
    before = (m.best_bid, m.best_ask, m.n_updates)
    a = compute_ladder(HYPE, StrategyParams(levels=7), 800.0, m, est(0.0008, 0.5, 1000.0), 3.0, TS)
    b = compute_ladder(HYPE, StrategyParams(levels=7), 800.0, m, est(0.0008, 0.5, 1000.0), 3.0, TS)
    assert a == b and (m.best_bid, m.best_ask, m.n_updates) == before


def test_min_order_fraction_lowers_the_cap() -> None:
    m = market("BTC", 99_999.0, 100_001.0)
    params = StrategyParams(levels=1, min_order_fraction=0.05)
    lad = compute_ladder(BTC, params, 1e6, m, est(), 0.0, TS)
    eff = BTC.floor_size(1e6 / lad.fair)
    assert lad.bids and all(q.sz <= 0.05 * eff + 1e-12 for q in lad.bids + lad.asks)
