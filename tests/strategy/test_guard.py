"""OrderGuard: property tests against every strategy (GLFT, Avellaneda–Stoikov, grid, a user class and a hostile
one), the GLFT pass-through, the minimum-order-over-cap rule (incident numbers) and the strategy config."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlmm.config import ConfigError, load_config_dict
from hlmm.market.instrument import default_registry
from hlmm.risk.guard import GuardError, OrderGuard
from hlmm.strategy.base import QuoteContext
from hlmm.strategy.ladder import LadderCache, compute_ladder
from hlmm.strategy.params import AvellanedaParams, GridParams, StrategyParams
from hlmm.strategy.strategies import AvellanedaStrategy, GlftStrategy, GridStrategy, make_strategy
from hlmm.strategy.types import DesiredLadder, Quote

from .helpers import est, market
from .test_ladder import scenario
from .user_strategy import Hostile, OneLevel

HYPE = default_registry().get("HYPE")
BTC = default_registry().get("BTC")
TS = 1000.5
EPS = 1e-9
KINDS = ("glft", "avellaneda", "grid", "user", "hostile")


def check_guarded(guard: OrderGuard, lad: DesiredLadder, max_usd: float, position: float, reduce_only: bool,
                  bb: float, ba: float) -> None:
    """Nothing unsafe leaves the guard, whatever the strategy asked for."""
    inst = guard.inst
    eff = guard.eff_max
    assert eff <= inst.floor_size(max_usd / bb) + EPS  # a strategy's fair can never inflate the limit
    frac = guard.frac
    for side, quotes in (("bid", lad.bids), ("ask", lad.asks)):
        total, prev = 0.0, None
        for q in quotes:
            assert q.is_buy == (side == "bid")
            assert inst.is_valid_price(q.px) and inst.is_valid_size(q.sz), q
            assert inst.meets_min_value(q.px, q.sz), q
            if guard.allow_min_over_cap:
                assert q.sz <= max(inst.min_size_at(q.px), frac * eff) + EPS, (q, eff)
            else:
                assert q.sz <= frac * eff + EPS, (q, eff)  # per-order cap, no exception
            assert q.sz <= 0.33 * eff / len(quotes) + EPS, (q, eff, len(quotes))  # per-level cap
            assert (q.px < ba) if q.is_buy else (q.px > bb), (q, bb, ba)  # never crosses/locks the book
            if prev is not None:
                assert (q.px < prev) if q.is_buy else (q.px > prev)
            prev = q.px
            total += q.sz
        tol = EPS * max(1.0, eff + abs(position))
        room = eff - position if side == "bid" else eff + position
        assert not quotes or total <= room + tol, (side, total, room)
        if reduce_only and quotes:
            assert (side == "ask" and position > 0) or (side == "bid" and position < 0), (side, position)
            assert total <= abs(position) + tol


def _strategy(kind: str, params: StrategyParams, inst, draw: st.DrawFn):
    if kind == "glft":
        return GlftStrategy(params, inst)
    if kind == "avellaneda":
        return AvellanedaStrategy(AvellanedaParams(
            gamma=10 ** draw(st.floats(-4, 1)), horizon_s=draw(st.floats(1, 600)), levels=draw(st.integers(1, 20)),
            level_spacing_bps=draw(st.floats(0.1, 50)), size_fraction=draw(st.floats(0.01, 1.0)),
            min_half_spread_bps=draw(st.floats(0, 5))), inst)
    if kind == "grid":
        offs = draw(st.lists(st.floats(0.01, 300), min_size=1, max_size=20))
        return GridStrategy(GridParams(offsets_bps=tuple(offs), size_usd=10 ** draw(st.floats(0, 5))), inst)
    if kind == "user":
        return OneLevel(OneLevel.Params(offset_bps=draw(st.floats(0.01, 100)), size_usd=10 ** draw(st.floats(0, 5))),
                        inst)
    return Hostile({"mult": draw(st.sampled_from([10.0, 1.0, 0.3]))}, inst)


@st.composite
def guarded_case(draw: st.DrawFn):
    inst, params, max_usd, m, estimate, position, ts, ref, reduce_only, bb, ba = draw(scenario())
    kind = draw(st.sampled_from(KINDS))
    strat = _strategy(kind, params, inst, draw)
    allow = draw(st.booleans())
    guard = OrderGuard(inst, params.max_order_fraction, allow)
    ctx = QuoteContext(inst, m, estimate, position, max_usd, ts, reduce_only, ref)
    return kind, strat, guard, ctx, bb, ba


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guarded_case())
def test_guard_output_is_safe_for_every_strategy(case) -> None:
    kind, strat, guard, ctx, bb, ba = case
    lad = guard.apply(strat.quote(ctx), ctx)
    check_guarded(guard, lad, ctx.max_position_usd, ctx.position, ctx.reduce_only, bb, ba)
    if kind == "hostile":
        assert all("guard:" in q.reason for q in lad.bids + lad.asks)  # every cut is recorded on the quote


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_guard_passes_the_glft_ladder_through_unchanged(sc) -> None:
    """The GLFT ladder already honours every rule: the guard returns it as is (the default path is unchanged),
    except a quote raised to the exchange minimum above the per-order cap, which it drops unless allowed."""
    inst, params, max_usd, m, estimate, position, ts, ref, reduce_only, _, _ = sc
    lad = compute_ladder(inst, params, max_usd, m, estimate, position, ts, ref, reduce_only)
    ctx = QuoteContext(inst, m, estimate, position, max_usd, ts, reduce_only, ref)
    assert OrderGuard(inst, params.max_order_fraction, True).apply(lad, ctx) is lad
    strict = OrderGuard(inst, params.max_order_fraction, False).apply(lad, ctx)
    assert set(strict.bids) <= set(lad.bids) and set(strict.asks) <= set(lad.asks)


def test_hostile_strategy_is_cut_to_the_caps() -> None:
    m = market("HYPE", 32.94, 32.96)
    ctx = QuoteContext(HYPE, m, est(0.0008, 0.5, 1000.0), 0.0, 5000.0, TS)
    guard = OrderGuard(HYPE)
    lad = guard.apply(Hostile({}, HYPE).quote(ctx), ctx)
    assert lad.bids and lad.asks
    assert guard.eff_max == HYPE.floor_size(5000.0 / 32.94)  # not the hostile fair
    assert all(q.px < 32.96 for q in lad.bids) and all(q.px > 32.94 for q in lad.asks)
    assert all(q.sz <= 0.25 * guard.eff_max + EPS for q in lad.bids + lad.asks)
    assert "guard: per-order cap" in lad.bids[0].reason and "guard: moved" in lad.bids[0].reason
    check_guarded(guard, lad, 5000.0, 0.0, False, 32.94, 32.96)
    # reduce-only while long: only asks, total <= position
    ctx = QuoteContext(HYPE, m, est(0.0008, 0.5, 1000.0), 0.7, 5000.0, TS, reduce_only=True)
    lad = guard.apply(Hostile({}, HYPE).quote(ctx), ctx)
    assert not lad.bids and lad.asks and sum(q.sz for q in lad.asks) <= 0.7 + EPS
    assert any("reduce-only" in d for d in lad.dropped)


def test_guard_refuses_what_is_not_a_ladder() -> None:
    m = market("HYPE", 32.94, 32.96)
    ctx = QuoteContext(HYPE, m, est(), 0.0, 500.0, TS)
    with pytest.raises(GuardError):
        OrderGuard(HYPE).apply("buy everything", ctx)  # type: ignore[arg-type]
    bad = DesiredLadder("BTC", TS, 1.0, (Quote(True, 1.0, 1.0, 0, "x"),), (), "x")
    with pytest.raises(GuardError):
        OrderGuard(HYPE).apply(bad, ctx)
    nan = DesiredLadder("HYPE", TS, 32.95, (Quote(True, math.nan, 1.0, 0, "x"),),
                        (Quote(False, math.inf, 1.0, 0, "x"),), "x")
    out = OrderGuard(HYPE).apply(nan, ctx)
    assert not out.bids and not out.asks and any("non-finite" in d for d in out.dropped)


# ---------------------------------------------------------------------------------------------------------
# the minimum order vs the per-order cap (incident numbers: HYPE at 32.95, min 10 USD = 0.31)
# ---------------------------------------------------------------------------------------------------------
def _glft_through_guard(max_usd: float, allow: bool) -> DesiredLadder:
    m = market("HYPE", 32.94, 32.96)
    params = StrategyParams(levels=25)
    ctx = QuoteContext(HYPE, m, est(0.0008, 0.5, 1000.0), 0.0, max_usd, TS)
    return OrderGuard(HYPE, params.max_order_fraction, allow).apply(GlftStrategy(params, HYPE).quote(ctx), ctx)


def test_seed_incident_50usd_still_quotes_037() -> None:
    lad = _glft_through_guard(50.0, False)
    assert lad.bids and lad.asks
    assert {q.sz for q in lad.bids + lad.asks} == {0.37}


def test_min_order_over_cap_does_not_quote_unless_allowed() -> None:
    lad = _glft_through_guard(39.0, False)  # eff 1.18, cap 0.29 < min size 0.31 (26% of max position)
    assert not lad.bids and not lad.asks
    assert "not quoting" in lad.reason and "allow_min_order_over_cap" in lad.reason
    assert any("exchange minimum order 10 USD" in d for d in lad.dropped)
    lad = _glft_through_guard(39.0, True)
    assert lad.bids and lad.asks and {q.sz for q in lad.bids + lad.asks} == {0.31}


# ---------------------------------------------------------------------------------------------------------
# config: strategy.kind, per-strategy models, the deprecated alias, per-instance caches
# ---------------------------------------------------------------------------------------------------------
def _cfg(strategy: dict, risk: dict | None = None):
    risk = {"max_position_usd": 100.0, "daily_loss_limit_usd": 10.0, "max_drawdown_usd": 5.0, **(risk or {})}
    return load_config_dict({"coins": {"BTC": {"strategy": strategy, "risk": risk}}})


def test_strategy_kind_in_config() -> None:
    assert _cfg({}).coins["BTC"].strategy.kind == "glft"
    assert _cfg({"kind": "grid", "grid": {"offsets_bps": [1.0, 2.0]}}).coins["BTC"].strategy.grid.offsets_bps == (1, 2)
    assert _cfg({}, {"allow_min_order_over_cap": True}).coins["BTC"].risk.allow_min_order_over_cap
    cases = [
        ({"kind": "glfd"}, "coins.BTC.strategy.kind"),
        ({"kind": "grid", "grid": {"offset_bps": [1.0]}}, "coins.BTC.strategy.grid.offset_bps"),
        ({"kind": "avellaneda", "avellaneda": {"gamma": -1}}, "coins.BTC.strategy.avellaneda.gamma"),
        ({"kind": "no_such_module_xyz:Cls"}, "cannot import module 'no_such_module_xyz'"),
        ({"kind": "tests.strategy.user_strategy:Nope"}, "has no class 'Nope'"),
        ({"kind": "tests.strategy.user_strategy:OneLevel", "custom": {"offset": 1}}, "strategy.custom.offset"),
        ({"kind": "missing/file.py:X"}, "no file missing/file.py"),
    ]
    for strat, msg in cases:
        with pytest.raises(ConfigError, match=r"coins\.BTC") as e:
            _cfg(strat)
        assert msg in str(e.value), (strat, str(e.value))
    cfg = _cfg({"kind": "tests.strategy.user_strategy:OneLevel", "custom": {"offset_bps": 7}})
    s = make_strategy(cfg.coins["BTC"].strategy, BTC)
    assert type(s).__name__ == "OneLevel" and s.p.offset_bps == 7  # imported by its dotted name


def test_min_order_fraction_is_a_deprecated_alias() -> None:
    with pytest.warns(FutureWarning, match="max_order_fraction"):
        cfg = _cfg({"min_order_fraction": 0.1})
    assert cfg.coins["BTC"].strategy.max_order_fraction == 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cfg({"max_order_fraction": 0.2}).coins["BTC"].strategy.max_order_fraction == 0.2
    with pytest.raises(ConfigError, match="set only one"):
        _cfg({"min_order_fraction": 0.1, "max_order_fraction": 0.2})


def test_ladder_caches_are_per_instance() -> None:
    import hlmm.strategy.ladder as lm

    assert not [n for n in ("_MEMOS", "_SIDE_LAST", "_GLFT_LAST", "_WEIGHTS") if hasattr(lm, n)]
    a, b = GlftStrategy(StrategyParams(), HYPE), GlftStrategy(StrategyParams(), HYPE)
    m = market("HYPE", 32.94, 32.96)
    ctx = QuoteContext(HYPE, m, est(0.0008, 0.5, 1000.0), 0.0, 500.0, TS)
    assert a.quote(ctx) == b.quote(ctx) == compute_ladder(HYPE, StrategyParams(), 500.0, m, ctx.est, 0.0, TS)
    assert a.cache.side_last and a.cache is not b.cache and a.cache.memo is not b.cache.memo
    assert isinstance(a.cache, LadderCache) and a.cache.inst is HYPE


def test_min_order_note_is_the_preflight_sentence() -> None:
    from hlmm.risk.guard import min_order_note

    assert min_order_note(HYPE, 50.0, 0.25, False) is None
    note = min_order_note(HYPE, 39.0, 0.25, False)
    assert note is not None and "will not quote" in note and "allow_min_order_over_cap" in note and ">= 40" in note
    assert "quoting the minimum anyway" in (min_order_note(HYPE, 39.0, 0.25, True) or "")
