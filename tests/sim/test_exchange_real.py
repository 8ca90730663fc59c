"""SimExchange on real Hyperliquid BTC BBO + trades (skipped when ../shared/data/real is absent).

A touch-quoting loop runs through the first recorded session with realistic latency. Checks that every simulated
maker fill is backed by the tape: a sell print at or below our bid (buy print at or above our ask), or a book that
crossed our price, and that our at-price fills never exceed the volume printed at our prices.
"""

from __future__ import annotations

import csv
import heapq
from pathlib import Path

import pytest

from hlmm.market.events import Bbo, Trade
from hlmm.market.instrument import default_registry
from hlmm.sim.exchange import SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.venue.base import (
    CancelOrder,
    CancelRejected,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    Tif,
)

DATA = Path("../shared/data/real")
BBO = DATA / "hyperliquid_BTC_bbo_2025-09-01_to_09-07.csv"
TRADES = DATA / "hyperliquid_BTC_trades_2025-09-01_to_09-07.csv"
N_BBO = 3000  # messages from the first session (~4 minutes)


def _load() -> list[Bbo | Trade]:
    bbos: list[Bbo] = []
    with BBO.open() as f:
        rows = csv.DictReader(f)
        pending: dict[str, tuple[float, float]] = {}
        for r in rows:
            pending[r["side"]] = (float(r["price"]), float(r["size"]))
            if len(pending) == 2:
                (bp, bs), (ap, az) = pending["bid"], pending["ask"]
                te = int(r["exchange_timestamp"]) / 1000.0
                bbos.append(Bbo("BTC", float(r["timestamp"]), te, bp, bs, ap, az))
                pending = {}
                if len(bbos) >= N_BBO:
                    break
    t0, t1 = bbos[0].ts_exchange, bbos[-1].ts_exchange
    trades: list[Trade] = []
    seen: set[int] = set()
    with TRADES.open() as f:
        for r in csv.DictReader(f):
            te = int(r["exchange_timestamp"]) / 1000.0
            tid = int(r["trade_id"])
            if t0 <= te <= t1 and tid not in seen:
                seen.add(tid)
                side = "B" if r["side"] == "buy" else "A"
                trades.append(Trade("BTC", float(r["timestamp"]), te, float(r["price"]), float(r["size"]), side, tid))
    return list(heapq.merge(bbos, sorted(trades, key=lambda e: e.ts_exchange), key=lambda e: e.ts_exchange))


@pytest.mark.skipif(not (BBO.exists() and TRADES.exists()), reason="real data not present")
@pytest.mark.parametrize("queue", ["risk_averse", "prob"])
def test_touch_quoting_on_real_btc(queue: str) -> None:
    events = _load()
    ex = SimExchange(default_registry(), latency=LatencyModel(order_s=0.15, response_s=0.1), queue=queue)
    at_exchange: list[tuple[Fill, float]] = []
    ex.add_listener(lambda e, o, t: at_exchange.append((e, t)) if isinstance(e, Fill) else None)
    n = 0
    cur: dict[bool, str | None] = {True: None, False: None}  # side -> our order's cloid
    busy = {True: False, False: False}  # waiting for the result of a place or cancel
    side_of: dict[str, tuple[bool, float]] = {}
    rejects: list[OrderRejected] = []
    # The engine acts at local time (ts); the exchange applies market data at ts_exchange.
    ex_i = 0
    for ev in sorted(events, key=lambda e: e.ts):
        now = ev.ts
        while ex_i < len(events) and events[ex_i].ts_exchange <= now:
            ex.on_market(events[ex_i])
            ex_i += 1
        ex.advance_to(now)
        for r in ex.pop_events(now):
            is_buy = side_of[r.cloid][0]
            if isinstance(r, OrderAccepted):
                busy[is_buy] = False
            elif isinstance(r, Fill) and r.remaining > 0:
                continue
            else:  # final fill, reject, cancel, cancel rejected (it filled first): the side is free
                if isinstance(r, OrderRejected):
                    rejects.append(r)
                else:
                    assert isinstance(r, Fill | OrderCancelled | CancelRejected)
                cur[is_buy], busy[is_buy] = None, False
        if not isinstance(ev, Bbo) or ev.bid_px is None or ev.ask_px is None:
            continue
        actions: list[PlaceOrder | CancelOrder] = []
        for is_buy, px in ((True, ev.bid_px), (False, ev.ask_px)):
            if busy[is_buy]:
                continue
            c = cur[is_buy]
            if c is None:
                n += 1
                c = cur[is_buy] = f"0x{n:032x}"
                side_of[c] = (is_buy, px)
                busy[is_buy] = True
                actions.append(PlaceOrder("BTC", c, is_buy, px, 0.001, Tif.ALO))
            elif side_of[c][1] != px:
                busy[is_buy] = True
                actions.append(CancelOrder("BTC", c))
        if actions:
            ex.submit(actions, now)

    assert ex.stats["placed"] > 100
    assert at_exchange, "a touch quoter on 4 minutes of BTC gets some fills"
    trades_at: dict[float, list[Trade]] = {}
    bbo_at: dict[float, list[Bbo]] = {}
    for e in events:
        (trades_at if isinstance(e, Trade) else bbo_at).setdefault(e.ts_exchange, []).append(e)  # type: ignore[arg-type]
    for f, t in at_exchange:
        assert f.is_maker and 0 < f.sz <= 0.001 and f.fee == pytest.approx(f.px * f.sz * 0.00015)
        assert f.ts > t  # delivered a response latency after it happened
        if f.is_buy:
            by_tape = any(p.side == "A" and p.px <= f.px for p in trades_at.get(t, []))
            by_book = any(b.ask_px is not None and b.ask_px <= f.px for b in bbo_at.get(t, []))
        else:
            by_tape = any(p.side == "B" and p.px >= f.px for p in trades_at.get(t, []))
            by_book = any(b.bid_px is not None and b.bid_px >= f.px for b in bbo_at.get(t, []))
        assert by_tape or by_book, f"fill not backed by the tape or a crossed book: {f}"
    # Stale quotes die: ALOs that the market crossed while they were in flight are rejected, as live.
    assert rejects and all(r.message.startswith("Post only order would have immediately matched") for r in rejects)
