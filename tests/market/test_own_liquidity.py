"""Issue 11 item 3: our own resting orders are taken out of the venue's book before anything reads it (the venue,
the simulator and the local exchange publish them, as Hyperliquid's l2Book does)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.config import load_config
from hlmm.engine import core as core_mod
from hlmm.engine.runner import run_backtest, synthetic_source
from hlmm.market.events import Bbo, BookLevel, BookSnapshot
from hlmm.market.own_liquidity import bbo_with_own, bbo_without_own, with_own, without_own

TICK = 0.01


def _levels(prices: list[int], sizes: list[float]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(round(p * TICK, 2), s) for p, s in zip(prices, sizes, strict=False))


@st.composite
def books(draw: Any) -> tuple[BookSnapshot, dict[float, float], dict[float, float]]:
    n = draw(st.integers(1, 8))
    bid_p = sorted(draw(st.lists(st.integers(9000, 9999), min_size=n, max_size=n, unique=True)), reverse=True)
    ask_p = sorted(draw(st.lists(st.integers(10001, 11000), min_size=n, max_size=n, unique=True)))
    sz = st.floats(0.001, 100.0)
    book = BookSnapshot("X", 1.0, 1.0, _levels(bid_p, draw(st.lists(sz, min_size=n, max_size=n))),
                        _levels(ask_p, draw(st.lists(sz, min_size=n, max_size=n))))
    own_b = {round(p * TICK, 2): draw(sz) for p in draw(st.lists(st.integers(9000, 9999), max_size=4, unique=True))}
    own_a = {round(p * TICK, 2): draw(sz) for p in draw(st.lists(st.integers(10001, 11000), max_size=4,
                                                                 unique=True))}
    return book, own_b, own_a


@settings(max_examples=300, deadline=None)
@given(books())
def test_published_minus_own_is_the_market(case: tuple[BookSnapshot, dict[float, float], dict[float, float]]) -> None:
    book, own_b, own_a = case
    pub = with_own(book, own_b, own_a)
    assert [lv.px for lv in pub.bids] == sorted({lv.px for lv in pub.bids}, reverse=True)
    assert [lv.px for lv in pub.asks] == sorted({lv.px for lv in pub.asks})
    back, _ = without_own(pub, own_b, own_a)
    assert [lv.px for lv in back.bids] == [lv.px for lv in book.bids]
    assert [lv.px for lv in back.asks] == [lv.px for lv in book.asks]
    for a, b in zip(back.bids + back.asks, book.bids + book.asks, strict=True):
        assert abs(a.sz - b.sz) <= 1e-9 * max(1.0, b.sz)


def test_a_level_that_is_only_ours_disappears_and_a_shared_one_keeps_the_rest() -> None:
    book = BookSnapshot("X", 1.0, 1.0, (BookLevel(100.0, 2.0, 1), BookLevel(99.9, 5.0, 3)),
                        (BookLevel(100.1, 1.0, 1), BookLevel(100.2, 4.0, 2)))
    net, gone = without_own(book, {100.0: 2.0}, {100.2: 1.5})
    assert gone == 1
    assert net.bids == (BookLevel(99.9, 5.0, 3),)  # our bid was the whole best level: the market's best is 99.9
    assert net.asks == (BookLevel(100.1, 1.0, 1), BookLevel(100.2, 2.5, 1))


def test_bbo_only_keeps_the_touch_price_with_the_size_left() -> None:
    bbo = Bbo("X", 1.0, 1.0, 100.0, 2.0, 100.1, 1.0)
    assert bbo_without_own(bbo, {100.0: 0.5}, {}) == Bbo("X", 1.0, 1.0, 100.0, 1.5, 100.1, 1.0)
    assert bbo_without_own(bbo, {100.0: 2.0}, {}).bid_sz == 0.0  # only ours: unknown behind, no weight
    pub = bbo_with_own(bbo, {100.05: 1.0}, {100.1: 1.0})
    assert (pub.bid_px, pub.bid_sz, pub.ask_px, pub.ask_sz) == (100.05, 1.0, 100.1, 2.0)


def _own_best_count(monkeypatch: Any, subtract: bool) -> tuple[int, int]:
    """Timer ticks at which the engine's best bid or ask was a price where only our own order rested in the book it
    was last given (the published book minus the market's own levels at that moment)."""
    from hlmm.sim.exchange import SimExchange

    if not subtract:
        monkeypatch.setattr(core_mod, "without_own", lambda book, b, a: (book, 0))
        monkeypatch.setattr(core_mod, "bbo_without_own", lambda bbo, b, a: bbo)
    raw_of: dict[int, Any] = {}  # published event -> the market's own event (what the recording holds)
    last_raw: list[Any] = [None]
    published = SimExchange.published
    on_market = core_mod.EngineCore.on_market

    def spy_published(self: Any, ev: Any) -> Any:
        pub = published(self, ev)
        if isinstance(ev, BookSnapshot):
            raw_of[id(pub)] = ev
        return pub

    def spy_on_market(self: Any, ev: Any) -> Any:
        if isinstance(ev, BookSnapshot):
            last_raw[0] = raw_of.pop(id(ev), ev)
        return on_market(self, ev)

    monkeypatch.setattr(SimExchange, "published", spy_published)
    monkeypatch.setattr(core_mod.EngineCore, "on_market", spy_on_market)
    src = synthetic_source("hype_quiet", duration_s=600.0, seed=5, warm_s=120.0)
    coin = src.coin
    # A quiet HIP-3 book with a wide spread, quoted at the touch (as in benchmarks/bench_paper_vs_backtest.py
    # --touch): our orders often are the touch.
    cfg = load_config(None, [f"coins.{coin}.{o}" for o in (
        "strategy.min_half_spread_bps=0", "strategy.level_spacing_bps=1.0", "strategy.gamma=0.01",
        "requote.tolerance_bps=0.5", "requote.price_move_bps=0.5")])
    hits = ticks = 0

    def on_timer(ts: float, engine: Any, ex: Any) -> None:
        nonlocal hits, ticks
        raw = last_raw[0]
        if raw is None:
            return
        ticks += 1
        market_px = {lv.px for lv in raw.bids} | {lv.px for lv in raw.asks}
        m = engine.market
        for px in (m.best_bid, m.best_ask):
            if px is not None and px not in market_px:
                hits += 1  # a touch the market did not have: one of ours
                break

    run_backtest(src, cfg, seed=5, on_timer=on_timer)
    return hits, ticks


def test_engine_never_takes_its_own_order_for_the_market(monkeypatch: Any) -> None:
    with monkeypatch.context() as mp:
        before, ticks = _own_best_count(mp, subtract=False)
    after, _ = _own_best_count(monkeypatch, subtract=True)
    print({"ticks": ticks, "own_best_without_subtraction": before, "own_best_with_subtraction": after})
    assert before > 0, "our orders never made the touch: the scenario proves nothing"
    assert after == 0
