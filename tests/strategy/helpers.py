"""Builders and the invariant checker shared by the strategy tests."""

from __future__ import annotations

from hlmm.estimators.state import EstimatorState
from hlmm.market.events import BookLevel, BookSnapshot
from hlmm.market.instrument import Instrument
from hlmm.market.state import MarketState
from hlmm.strategy.params import StrategyParams
from hlmm.strategy.types import DesiredLadder

EPS = 1e-9


def market(coin: str, bid: float, ask: float, bid_sz: float = 1.0, ask_sz: float = 1.0, ts: float = 1000.0):
    m = MarketState(coin)
    m.on_book(BookSnapshot(coin, ts, ts, (BookLevel(bid, bid_sz),), (BookLevel(ask, ask_sz),)))
    return m


def est(sigma: float = 0.0004, a: float = 1.0, kappa: float = 2000.0, ready: bool = True) -> EstimatorState:
    return EstimatorState(ts=1000.0, sigma=sigma, intensity_a=a, kappa=kappa, warmup=1.0, ready=ready, reason="test")


def check_invariants(
    inst: Instrument,
    params: StrategyParams,
    max_position_usd: float,
    lad: DesiredLadder,
    position: float,
    reduce_only: bool,
    best_bid: float,
    best_ask: float,
) -> None:
    """Every hard rule of the ladder (caps, room, validity, BBO) on one output."""
    assert lad.coin == inst.coin
    if not lad.bids and not lad.asks:
        assert lad.reason
        return
    eff = inst.floor_size(max_position_usd / lad.fair)
    frac = min(params.max_order_fraction, 0.25)
    for side, quotes in (("bid", lad.bids), ("ask", lad.asks)):
        total = 0.0
        prev = None
        for q in quotes:
            assert q.is_buy == (side == "bid")
            assert inst.is_valid_price(q.px), q
            assert inst.is_valid_size(q.sz), q
            assert inst.meets_min_value(q.px, q.sz), q
            # per-order cap: the 25% rule (or the lowered fraction), unless that is below the min size
            assert q.sz <= max(inst.min_size_at(q.px), frac * eff) + EPS, (q, eff)
            assert q.sz <= max(inst.min_size_at(q.px), 0.25 * eff) + EPS, (q, eff)
            # per-level cap with at least this many active levels
            assert q.sz <= 0.33 * eff / len(quotes) + EPS, (q, eff, len(quotes))
            assert q.reason and "px:" in q.reason and "sz:" in q.reason
            if prev is not None:  # distinct, ordered prices: inner first
                assert (q.px < prev) if q.is_buy else (q.px > prev), (prev, q)
            prev = q.px
            total += q.sz
        assert total <= 0.33 * eff + EPS
        room = eff - position if side == "bid" else eff + position
        # positions within float noise (1e-6 lot) of a whole lot count as that lot: relative tolerance
        tol = EPS * max(1.0, abs(eff) + abs(position))
        assert not quotes or total <= room + tol, (side, total, room)
        if reduce_only:
            reducing = (side == "ask" and position > 0) or (side == "bid" and position < 0)
            if not reducing:
                assert not quotes, (side, position)
            assert total <= abs(position) * (1 + EPS) + EPS
    if position >= eff:
        assert not lad.bids
    if position <= -eff:
        assert not lad.asks
    # BBO guard: nothing can cross or lock the book.
    assert all(q.px < best_ask for q in lad.bids)
    assert all(q.px > best_bid for q in lad.asks)
