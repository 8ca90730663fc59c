"""Issue 11 item 2: staleness is judged on the engine's timer (a frozen book sends no next book), and at
``stale_book_s`` the stale policy applies: ``pull`` removes every quote, ``widen`` widens them. A trade printed
through a frozen book marks it stale at once and moves the fair price to the trade.

The market: the synthetic ``btc`` preset with an 8 s book freeze (books dropped, trades kept), replayed through the
backtest; the series checked are what the exchange held at every timer tick."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from hlmm.config import load_config
from hlmm.engine.runner import MarketSource, run_backtest, synthetic_source
from hlmm.market.events import Bbo, BookSnapshot, MarketEvent, Trade
from hlmm.market.state import MarketState

FREEZE_AT_S = 120.0
FREEZE_S = 8.0
STALE_S = 3.0
TIMER_S = 1.0
ROUND_TRIP_S = 0.6  # cancel latency + response latency of the default latency model, with slack


def _frozen(src: MarketSource, t0: float, t1: float) -> MarketSource:
    def events() -> Iterator[MarketEvent]:
        for ev in src.events:
            if isinstance(ev, BookSnapshot | Bbo) and t0 <= ev.ts_exchange < t1:
                continue  # the book freezes; trades go on
            yield ev

    return dataclasses.replace(src, events=events())


def _run(policy: str) -> tuple[list[tuple[float, int, float | None]], Any, float]:
    src = synthetic_source("btc", duration_s=FREEZE_AT_S + FREEZE_S + 30.0, seed=3, warm_s=120.0)
    start = src.start_ts
    assert start is not None
    t0, t1 = start + FREEZE_AT_S, start + FREEZE_AT_S + FREEZE_S
    cfg = load_config(None, [f"coins.BTC.strategy.stale_policy={policy}",
                             f"coins.BTC.strategy.stale_book_s={STALE_S}"])
    series: list[tuple[float, int, float | None]] = []

    def on_timer(ts: float, engine: Any, ex: Any) -> None:
        resting = ex.open_orders("BTC")
        asks = [o.px for o in resting if not o.is_buy]
        series.append((ts, len(resting), min(asks) if asks else None))

    res = run_backtest(_frozen(src, t0, t1), cfg, seed=3, timer_interval_s=TIMER_S, on_timer=on_timer)
    return series, res, t0



def test_pull_policy_removes_every_quote_within_stale_s_plus_one_timer_period() -> None:
    series, res, t0 = _run("pull")
    before = [n for ts, n, _ in series if t0 - 30.0 <= ts < t0]
    assert max(before) > 0, "the bot was not quoting before the freeze: the test proves nothing"
    deadline = t0 + STALE_S + TIMER_S + ROUND_TRIP_S
    during = [(ts, n) for ts, n, _ in series if deadline <= ts < t0 + FREEZE_S]
    assert during, "no timer tick inside the freeze after the deadline"
    assert all(n == 0 for _, n in during), f"quotes still resting on a frozen book: {during}"
    after = [n for ts, n, _ in series if ts > t0 + FREEZE_S + 5.0]
    assert max(after) > 0, "quoting did not resume when the book came back"
    assert res.engine.n_stale_episodes >= 1
    assert res.engine.guard.n_stale_pulls >= 1


def test_widen_policy_keeps_quotes_but_widens_them() -> None:
    series, res, t0 = _run("widen")
    deadline = t0 + STALE_S + TIMER_S + ROUND_TRIP_S
    during = [n for ts, n, _ in series if deadline <= ts < t0 + FREEZE_S]
    assert during and min(during) > 0, "widen must keep quoting"
    assert res.engine.n_stale_episodes >= 1
    assert res.engine.guard.n_stale_pulls == 0


def test_auto_policy_pulls_hip3_and_widens_the_others() -> None:
    from hlmm.market.instrument import default_registry
    from hlmm.risk.guard import resolve_stale_policy

    reg = default_registry()
    assert resolve_stale_policy("auto", reg.get("hyna:HYPE")) == "pull"
    assert resolve_stale_policy("auto", reg.get("BTC")) == "widen"
    assert resolve_stale_policy("widen", reg.get("hyna:HYPE")) == "widen"
    with pytest.raises(ValueError):
        resolve_stale_policy("maybe", reg.get("BTC"))


def test_trade_through_a_frozen_book_marks_it_stale_and_moves_fair_until_the_next_book() -> None:
    from hlmm.strategy.fair import fair_price
    from hlmm.strategy.params import StrategyParams

    m = MarketState("BTC", through_after_s=1.0)
    m.on_bbo(Bbo("BTC", 100.0, 100.0, 99.99, 1.0, 100.01, 1.0))
    m.on_trade(Trade("BTC", 100.5, 100.5, 100.05, 0.1, "B", 1))  # a sweep 0.5 s after the book: not stale
    assert m.through_px is None and not m.is_stale(100.5, 5.0)
    m.on_trade(Trade("BTC", 102.0, 102.0, 100.03, 0.1, "B", 2))  # 2 s after the book, 0.02 above its ask
    assert m.through_px == 100.03 and m.is_stale(102.0, 5.0)
    fp = fair_price(m, StrategyParams())
    assert fp is not None and fp.fair == pytest.approx(100.03) and fp.source == "trade_through"
    m.on_bbo(Bbo("BTC", 103.0, 103.0, 100.02, 1.0, 100.04, 1.0))  # the book comes back: fresh again
    assert m.through_px is None and not m.is_stale(103.0, 5.0)
    m.on_trade(Trade("BTC", 103.2, 102.5, 105.0, 0.1, "B", 3))  # printed before the book we hold: ignored
    assert m.through_px is None
