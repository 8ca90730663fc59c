"""Backtest runner clock merge, with a fake engine and a fake exchange (no dependency on their internals).

Checks: the exchange sees market events at ts_exchange before the engine sees them at ts; venue events
reach the engine at their delivery time; timers every simulated second; shutdown and drain; kill persistence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hlmm.config import load_config
from hlmm.engine.runner import MarketSource, RunnerError, run_backtest
from hlmm.market.events import BookLevel, BookSnapshot, Trade
from hlmm.market.state import MarketState
from hlmm.venue.base import AccountSnapshot, CancelOrder, Fill, OpenOrder, OrderAccepted, PlaceOrder

COIN = "BTC"
CL = "0x" + "a" * 32


def _book(ts: float, lat: float = 0.1, bid: float = 100.0) -> BookSnapshot:
    return BookSnapshot(COIN, ts + lat, ts, (BookLevel(bid, 1.0),), (BookLevel(bid + 1, 1.0),))


@dataclass
class FakeKill:
    killed: bool = False
    state: Any = None


@dataclass
class FakePortfolio:
    position: float = 0.0
    cash: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0

    def on_fill(self, f: Fill) -> None:
        s = f.sz if f.is_buy else -f.sz
        self.position += s
        self.cash -= s * f.px + f.fee
        self.fees += f.fee

    def pnl_total(self, mark: float) -> float:
        return self.cash + self.position * mark

    def unrealized(self, mark: float) -> float:
        return 0.0


@dataclass
class FakeEngine:
    log: list[tuple[str, float]] = field(default_factory=list)
    market: MarketState = field(default_factory=lambda: MarketState(COIN))
    portfolio: FakePortfolio = field(default_factory=FakePortfolio)
    kill_switch: FakeKill = field(default_factory=FakeKill)
    persist_needed: bool = False
    placed: bool = False
    persisted: int = 0

    def sync(self, snap: AccountSnapshot) -> list:
        self.log.append(("sync", snap.ts))
        return []

    def warm_start(self, **kw: Any) -> None:
        self.log.append(("warm", 0.0))

    def on_market(self, ev: Any) -> list:
        self.log.append(("market", ev.ts))
        if isinstance(ev, BookSnapshot):
            self.market.on_book(ev)
            if not self.placed:
                self.placed = True
                return [PlaceOrder(COIN, CL, True, 99.0, 0.5, reason="test")]
        return []

    def on_venue(self, ev: Any) -> list:
        self.log.append((type(ev).__name__, ev.ts))
        if isinstance(ev, Fill):
            self.portfolio.on_fill(ev)
            self.kill_switch.killed = True
            self.kill_switch.state = type("S", (), {"reason": "test kill"})()
            self.persist_needed = True
            return [CancelOrder(COIN, CL, "kill")]
        return []

    def on_timer(self, ts: float) -> list:
        self.log.append(("timer", ts))
        return []

    def shutdown(self, ts: float) -> list:
        self.log.append(("shutdown", ts))
        return []

    def mark_persisted(self) -> None:
        self.persist_needed = False
        self.persisted += 1

    @property
    def market_mid(self) -> float | None:
        return self.market.mid

    def crossings_at_send(self, actions: Any) -> tuple[int, int]:
        from hlmm.engine.reconcile import book_crossings

        return book_crossings(actions, self.market.best_bid, self.market.best_ask), 0


class FakeExchange:
    """Order arrives 0.15 s after submit; ack 0.1 s later; fills at 2.0 (exchange time), delivered +0.1."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float]] = []
        self.pending: list[tuple[float, str, Any]] = []  # (time, kind, payload)
        self.out: list[Any] = []
        self.resting: list[OpenOrder] = []

    def on_market(self, ev: Any) -> None:
        self.log.append(("market", ev.ts_exchange))

    def published(self, ev: Any) -> Any:
        return ev  # the book as published (this fake holds no orders in it)

    def submit(self, actions: list, ts: float) -> None:
        for a in actions:
            self.log.append(("submit", ts))
            if isinstance(a, PlaceOrder):
                self.pending.append((ts + 0.15, "arrive", a))

    def next_time(self) -> float | None:
        times = [p[0] for p in self.pending] + [e.ts for e in self.out]
        return min(times) if times else None

    def advance_to(self, t: float) -> None:
        for p in [p for p in self.pending if p[0] <= t]:
            self.pending.remove(p)
            self.log.append(("arrive", p[0]))
            a = p[2]
            self.resting.append(OpenOrder(COIN, a.cloid, 1, a.is_buy, a.px, a.sz))
            self.out.append(OrderAccepted(p[0] + 0.1, COIN, a.cloid, 1))
            self.out.append(Fill(p[0] + 1.0, COIN, a.cloid, 1, 7, True, a.px, a.sz, 0.01, True, 0.0))

    def pop_events(self, until: float) -> list:
        ready = sorted([e for e in self.out if e.ts <= until], key=lambda e: e.ts)
        for e in ready:
            self.out.remove(e)
            if isinstance(e, Fill):
                self.resting.clear()
        return ready

    def open_orders(self, coin: str) -> list[OpenOrder]:
        return list(self.resting)

    def snapshot(self, coin: str, ts: float) -> AccountSnapshot:
        pos = sum(0.5 for e in self.log if e[0] == "arrive") if any(e[0] == "arrive" for e in self.log) else 0.0
        return AccountSnapshot(ts, coin, pos, 99.0)


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    def load(self) -> None:
        return None

    def save(self, state: Any) -> None:
        self.saved.append(state)


def test_clock_merge_order_and_summary() -> None:
    cfg = load_config(None)
    events = [_book(1000.0 + 0.5 * i) for i in range(10)]
    eng, ex, store = FakeEngine(), FakeExchange(), FakeStore()
    res = run_backtest(
        MarketSource(COIN, events, start_ts=1000.0, description="fake"), cfg, engine=eng, exchange=ex,
        kill_store=store,
    )
    # the exchange saw every book at its exchange time, before the engine saw it at local time
    x_times = [t for k, t in ex.log if k == "market"]
    assert x_times == [1000.0 + 0.5 * i for i in range(10)]
    e_times = [t for k, t in eng.log if k == "market"]
    assert e_times == pytest.approx([1000.1 + 0.5 * i for i in range(10)])
    # order placed on the first engine book (1000.1), arrives 1000.25, acked at 1000.35, fill 1001.35 (+0.1 → fill ts)
    assert ("submit", pytest.approx(1000.1)) in [(k, pytest.approx(t)) for k, t in ex.log if k == "submit"]
    kinds = [(k, round(t, 6)) for k, t in eng.log if k in ("OrderAccepted", "Fill")]
    assert kinds == [("OrderAccepted", 1000.35), ("Fill", 1001.25)]
    # timers each simulated second until the last engine event
    timers = [t for k, t in eng.log if k == "timer"]
    assert timers == [1001.0, 1002.0, 1003.0, 1004.0]
    # global engine log is time ordered
    ts = [t for k, t in eng.log if k not in ("sync", "warm", "shutdown")]
    assert ts == sorted(ts)
    assert eng.log[-1][0] == "shutdown"
    # kill persisted once, after the fill
    assert len(store.saved) == 1 and eng.persisted == 1
    s = res.summary
    assert s["n_fills"] == 1 and s["kill"] == "test kill"
    assert s["time_to_first_quote_s"] == pytest.approx(0.1)
    assert s["n_events"] == 10 and s["duration_s"] == pytest.approx(4.6)
    assert s["pnl_check"]["balanced"]
    assert s["crossing_at_send"] == 0


def test_duration_cuts_the_stream() -> None:
    cfg = load_config(None)
    events = [_book(1000.0 + 0.5 * i) for i in range(100)]
    res = run_backtest(
        MarketSource(COIN, events, start_ts=1000.0, description="fake"), cfg, engine=FakeEngine(),
        exchange=FakeExchange(), duration_s=5.0,
    )
    assert res.summary["n_events"] == 10  # ts 1000.1 .. 1004.6 <= 1005


def test_crossing_at_send_counted() -> None:
    class Crosser(FakeEngine):
        def on_market(self, ev: Any) -> list:
            super().on_market(ev)
            return [PlaceOrder(COIN, CL, True, 101.0, 0.5)] if len(self.log) == 2 else []

    cfg = load_config(None)
    res = run_backtest(
        MarketSource(COIN, [_book(1000.0)], start_ts=1000.0, description="fake"), cfg, engine=Crosser(),
        exchange=FakeExchange(),
    )
    assert res.summary["crossing_at_send"] == 1


def test_empty_source_is_an_error() -> None:
    with pytest.raises(RunnerError):
        run_backtest(MarketSource(COIN, [], start_ts=None, description="empty"), load_config(None),
                     engine=FakeEngine(), exchange=FakeExchange())


def test_trades_do_not_move_the_mid_series() -> None:
    cfg = load_config(None)
    events: list[Any] = [_book(1000.0), Trade(COIN, 1000.3, 1000.2, 100.0, 0.1, "A", 1), _book(1000.5, bid=101.0)]
    res = run_backtest(MarketSource(COIN, events, start_ts=1000.0, description="fake"), cfg, engine=FakeEngine(),
                       exchange=FakeExchange())
    assert res.stats.mid_px == [100.5, 101.5]


def test_build_engine_takes_foreign_orders_policy_from_config() -> None:
    from hlmm.config import load_config
    from hlmm.engine.runner import build_engine
    from hlmm.market.instrument import default_registry

    cfg = load_config(None, ["run.foreign_orders=adopt"])
    eng = build_engine(cfg, "BTC", default_registry(), 1_750_000_000.0, None, None)
    assert eng.foreign_orders == "adopt"
