"""Synthetic market: determinism, validity on the instrument grid, book/trade consistency, rates, stale books."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.events import AssetCtx, BookSnapshot, Trade
from hlmm.market.instrument import default_registry
from hlmm.sim.synthetic import SyntheticMarket, SynthParams, SynthParamsError, preset

REG = default_registry()


def check_stream(evs: list, coin: str) -> None:
    """Every price valid, books uncrossed and sorted, trades at a level of the latest book, ts ordered; an
    AssetCtx (funding) comes after a book, with its mark inside that book's spread and a rate within the cap."""
    inst = REG.get(coin)
    book: BookSnapshot | None = None
    ctx: AssetCtx | None = None
    prev_ts = -math.inf
    for e in evs:
        assert e.ts >= prev_ts
        prev_ts = e.ts
        assert e.coin == coin
        if isinstance(e, AssetCtx):  # comes just before the book of its step, after the first book
            assert book is not None and e.mark_px == e.oracle_px and abs(e.funding) <= 0.04
            ctx = e
            continue
        if isinstance(e, BookSnapshot):
            if ctx is not None:
                tick = inst.tick_size(ctx.mark_px)
                assert ctx.ts == e.ts and e.bids[0].px - tick <= ctx.mark_px <= e.asks[0].px + tick
                ctx = None
            assert e.bids and e.asks
            assert e.bids[0].px < e.asks[0].px
            assert all(a.px > b.px for a, b in zip(e.bids, e.bids[1:], strict=False))
            assert all(a.px < b.px for a, b in zip(e.asks, e.asks[1:], strict=False))
            for lv in e.bids + e.asks:
                assert inst.is_valid_price(lv.px), lv
                assert inst.is_valid_size(lv.sz) and lv.n >= 1
            book = e
        else:
            assert ctx is None
            assert isinstance(e, Trade) and book is not None  # a book always comes first
            assert e.ts_exchange >= book.ts_exchange
            assert inst.is_valid_size(e.sz)
            if e.side == "B":
                assert e.px >= book.best_ask and e.px in {lv.px for lv in book.asks}  # type: ignore[operator]
            else:
                assert e.px <= book.best_bid and e.px in {lv.px for lv in book.bids}  # type: ignore[operator]
        assert math.isclose(e.ts - e.ts_exchange, 0.1, abs_tol=1e-6)


@pytest.mark.parametrize("name", ["btc", "hype_quiet"])
def test_deterministic_and_valid(name: str) -> None:
    p = preset(name, seed=3)
    a = list(SyntheticMarket(p).events(600))
    b = list(SyntheticMarket(p).events(600))
    assert a == b
    assert a != list(SyntheticMarket(preset(name, seed=4)).events(600))
    check_stream(a, p.coin)
    assert isinstance(a[0], BookSnapshot) and a[0].ts_exchange == 1_750_000_000.0
    assert abs(a[0].mid / p.start_px - 1) < 1e-3  # type: ignore[operator]
    assert all(len(e.bids) == p.levels for e in a if isinstance(e, BookSnapshot))


def test_prefix_consistent() -> None:
    """A shorter run is a prefix of a longer one (chunking does not change the stream)."""
    p = preset("btc", seed=5)
    short = list(SyntheticMarket(p).events(100))
    long = list(SyntheticMarket(p).events(2000))
    assert long[: len(short)] == short
    assert all(e.ts - 0.1 < 1_750_000_100.0 for e in short)  # exchange time = ts - md_latency_s


def test_btc_rates() -> None:
    p = preset("btc", seed=1)
    evs = list(SyntheticMarket(p).events(1800))
    books = [e for e in evs if isinstance(e, BookSnapshot)]
    trades = [e for e in evs if isinstance(e, Trade)]
    assert 3.0 <= len(trades) / 1800 <= 8.0  # several trades per second
    assert 1.6 <= len(books) / 1800 <= 2.0  # a snapshot every 0.5-0.6 s
    assert 0.3 < sum(t.side == "B" for t in trades) / len(trades) < 0.7
    assert 60_000 < books[-1].mid < 80_000  # type: ignore[operator]
    inst = REG.get("BTC")
    assert all(inst.tick_size(b.best_ask) == 1.0 for b in books)  # type: ignore[arg-type]
    # Sweep intensity decays with distance: most prints at the touch, some deeper.
    at_touch = deeper = 0
    book = books[0]
    for e in evs:
        if isinstance(e, BookSnapshot):
            book = e
        elif not isinstance(e, Trade):
            continue
        elif e.px in (book.best_bid, book.best_ask):
            at_touch += 1
        else:
            deeper += 1
    assert at_touch > deeper > 0


def test_hype_quiet_rates_and_stale_episodes() -> None:
    p = preset("hype_quiet", seed=1)
    assert p.coin == "hyna:HYPE" and REG.get(p.coin).sz_decimals == 2
    evs = list(SyntheticMarket(p).events(3 * 3600))
    books = [e for e in evs if isinstance(e, BookSnapshot)]
    trades = [e for e in evs if isinstance(e, Trade)]
    sweeps = len({t.ts_exchange for t in trades})
    assert 5 <= 3 * 3600 / sweeps <= 20  # one market order every 5-20 s
    gaps = [(a.ts_exchange, b.ts_exchange) for a, b in itertools.pairwise(books)
            if b.ts_exchange - a.ts_exchange > 3.0]  # fmt: skip
    assert len(gaps) >= 5  # stale episodes: the book stops updating
    assert all(p.stale_min_s - 1 <= b - a <= p.stale_max_s + 1 for a, b in gaps)
    # trades continue during at least one stale episode, against the frozen book
    assert any(a < t.ts_exchange < b for t in trades for a, b in gaps)
    assert 20 < books[-1].mid < 50  # type: ignore[operator]


def test_warm_history() -> None:
    m = SyntheticMarket(preset("hype_quiet", seed=2), start_ts=1_750_000_000.0)
    mids, trades = m.warm_history(600)
    assert mids and trades
    assert all(ts < 1_750_000_000.0 for ts, _ in mids) and all(t.ts < 1_750_000_000.0 for t in trades)
    assert mids[0][0] >= 1_750_000_000.0 - 600 - 1
    assert [ts for ts, _ in mids] == sorted(ts for ts, _ in mids)
    assert abs(mids[-1][1] / 33.0 - 1) < 0.01  # ends next to start_px: continuous with events()
    assert m.warm_history(600) == (mids, trades)
    assert m.warm_history(0) == ([], [])


def test_bad_params() -> None:
    with pytest.raises(SynthParamsError, match="sigma"):
        SynthParams(sigma=-1.0)
    with pytest.raises(SynthParamsError, match="levels"):
        SynthParams(levels=0)
    with pytest.raises(SynthParamsError, match="start_px"):
        SynthParams(start_px=float("nan"))
    with pytest.raises(SynthParamsError, match="unknown preset"):
        preset("doge")
    with pytest.raises(SynthParamsError, match="unknown SynthParams"):
        preset("btc", sigmaa=1.0)
    with pytest.raises(SynthParamsError, match="duration"):
        list(SyntheticMarket(preset("btc")).events(-1))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    start_px=st.sampled_from([0.5, 9.97, 33.0, 99.5, 999.9, 99_990.0, 250_000.0]),
    coin=st.sampled_from(["BTC", "ETH", "hyna:HYPE"]),
    spread=st.integers(1, 6),
    levels=st.integers(1, 20),
    sigma=st.sampled_from([1e-5, 3e-4, 2e-3]),
)
def test_property_valid_streams(seed: int, start_px: float, coin: str, spread: int, levels: int, sigma: float) -> None:
    """Any seed, price magnitude (incl. near a power of ten) and shape gives a valid, consistent stream."""
    p = SynthParams(coin=coin, start_px=start_px, sigma=sigma, spread_ticks=spread, levels=levels,
                    level_size=max(REG.get(coin).lot, 50.0 / start_px), trade_size=max(REG.get(coin).lot,
                    10.0 / start_px), trade_rate_at_touch=2.0, stale_rate=0.05, seed=seed)  # fmt: skip
    check_stream(list(SyntheticMarket(p).events(60)), coin)
