"""Shared helpers for engine tests: configs, scripted market streams and a tiny backtest driver."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from hlmm.config import CoinConfig, RequoteParams
from hlmm.engine.core import EngineCore
from hlmm.estimators.params import EstimatorParams
from hlmm.market.events import BookLevel, BookSnapshot, MarketEvent, Trade
from hlmm.market.instrument import default_registry
from hlmm.risk.params import RiskParams
from hlmm.sim.exchange import SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.venue.base import ModifyOrder, PlaceOrder, VenueAction

REG = default_registry()
T0 = 1_700_000_000.0


def coin_cfg(max_pos: float = 5000.0, warmup_timeout_s: float = 5.0, **risk: object) -> CoinConfig:
    rp = {"max_position_usd": max_pos, "daily_loss_limit_usd": 1e6, "max_drawdown_usd": 1e6, **risk}
    return CoinConfig(
        risk=RiskParams(**rp),
        estimators=EstimatorParams(warmup_timeout_s=warmup_timeout_s),
        requote=RequoteParams(min_interval_s=0.25, max_interval_s=5.0),
    )


def book(coin: str, ts: float, bid: float, ask: float, sz: float = 1.0, lat: float = 0.05, tick: float = 1.0,
         n: int = 5) -> BookSnapshot:
    bids = tuple(BookLevel(bid - i * tick, sz) for i in range(n))
    asks = tuple(BookLevel(ask + i * tick, sz) for i in range(n))
    return BookSnapshot(coin=coin, ts=ts + lat, ts_exchange=ts, bids=bids, asks=asks)


def trade(coin: str, ts: float, px: float, sz: float, side: str, tid: int, lat: float = 0.05) -> Trade:
    return Trade(coin=coin, ts=ts + lat, ts_exchange=ts, px=px, sz=sz, side=side, tid=tid)


def quiet_stream(coin: str, t0: float, dur: float, bid: float, ask: float, dt: float = 0.5,
                 tick: float = 1.0) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    k = 0
    while k * dt < dur:
        out.append(book(coin, t0 + k * dt, bid, ask, tick=tick))
        k += 1
    return out


class Driver:
    """A tiny backtest loop: market -> sim at ts_exchange and engine at ts; venue events -> engine; 1 s timers."""

    def __init__(self, engine: EngineCore, latency: LatencyModel | None = None, queue: str = "risk_averse") -> None:
        self.engine = engine
        self.ex = SimExchange(REG, latency or LatencyModel(order_s=0.15, response_s=0.10), queue=queue, seed=1)
        self.sent: list[tuple[float, VenueAction]] = []
        self.venue_events: list[object] = []
        self.now = engine.start_ts
        self.next_timer = engine.start_ts + 1.0
        self.on_tick: Callable[[float], None] | None = None

    def send(self, acts: list[VenueAction], t: float) -> None:
        if not acts:
            return
        for a in acts:
            self.sent.append((t, a))
        self.ex.submit(acts, t)

    def places(self) -> list[tuple[float, PlaceOrder]]:
        out = []
        for t, a in self.sent:
            p = a.new if isinstance(a, ModifyOrder) else a
            if isinstance(p, PlaceOrder):
                out.append((t, p))
        return out

    def run(self, events: Iterable[MarketEvent], until: float) -> None:
        evs = sorted(events, key=lambda e: e.ts)
        to_sim = sorted(evs, key=lambda e: e.ts_exchange)
        i = j = 0
        eng = self.engine
        while True:
            tx = to_sim[i].ts_exchange if i < len(to_sim) else math.inf
            te = evs[j].ts if j < len(evs) else math.inf
            tn = self.ex.next_time() or math.inf
            t = min(tx, te, tn, self.next_timer)
            if t > until:
                break
            self.now = max(self.now, t)
            if tx == t:
                self.ex.on_market(to_sim[i])
                i += 1
            elif tn == t:
                self.ex.advance_to(t)
                for v in self.ex.pop_events(t):
                    self.venue_events.append(v)
                    self.send(eng.on_venue(v), t)
            elif te == t:
                self.send(eng.on_market(evs[j]), t)
                j += 1
            else:
                self.send(eng.on_timer(t), t)
                if self.on_tick is not None:
                    self.on_tick(t)
                self.next_timer += 1.0

    def drain(self, seconds: float = 2.0) -> None:
        """Let in-flight actions and their answers settle (no new market data)."""
        end = self.now + seconds
        while True:
            tn = self.ex.next_time()
            if tn is None or tn > end:
                break
            self.now = max(self.now, tn)
            self.ex.advance_to(self.now)
            for v in self.ex.pop_events(self.now):
                self.venue_events.append(v)
                self.send(self.engine.on_venue(v), self.now)
