"""Tick-to-signed-order latency: from a market event entering EngineCore to the signed /exchange body being ready.

Drives EngineCore with a synthetic BTC market (``hlmm.sim.synthetic`` preset ``btc``), acknowledges every action
at once (so the engine keeps requoting), and for every tick that produced placements/modifies/cancels times
``engine.on_market`` + wire building + signing (the same calls the live adapter makes; network excluded).

    python benchmarks/bench_tick_to_order.py [--duration 1800]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from _machine import machine  # the script's directory is on sys.path

from hlmm.config import load_config
from hlmm.engine.core import EngineCore
from hlmm.engine.runner import synthetic_source
from hlmm.venue.base import CancelOrder, ModifyOrder, OrderAccepted, OrderCancelled, PlaceOrder
from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.nonce import NonceManager
from hlmm.venue.hyperliquid.rest import ExchangeClient
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=1800.0, help="simulated seconds of market data")
    args = ap.parse_args()
    cfg = load_config(None, ["coins.BTC.reference.binance_symbol=off"])
    src = synthetic_source("btc", duration_s=args.duration, seed=3)
    inst = src.registry.get("BTC")
    eng = EngineCore("BTC", inst, cfg.coin("BTC"), src.start_ts)
    eng.warm_start(mids=src.warm_mids, trades=src.warm_trades)
    ex = ExchangeClient("http://127.0.0.1:1", Wallet.from_key(KEY), NonceManager(), is_mainnet=False)
    oids = itertools.count(1)
    live_oid: dict[str, int] = {}

    def to_bodies(acts: list) -> list[dict]:
        """What the adapter does before posting: wires per action type, one signed body per action type."""
        places = [wire.order_to_wire(inst, a) for a in acts if isinstance(a, PlaceOrder)]
        mods = [(a.cloid, wire.order_to_wire(inst, a.new)) for a in acts if isinstance(a, ModifyOrder)]
        cancels = [(inst.asset, a.cloid) for a in acts if isinstance(a, CancelOrder)]
        bodies = []
        if cancels:
            bodies.append(ex.sign(wire.cancel_by_cloid_action(cancels)))
        if mods:
            bodies.append(ex.sign(wire.batch_modify_action(mods)))
        if places:
            bodies.append(ex.sign(wire.order_action(places)))
        return bodies

    def ack(acts: list, ts: float) -> None:
        for a in acts:
            if isinstance(a, PlaceOrder | ModifyOrder):
                cl = a.cloid
                live_oid[cl] = next(oids)
                more = eng.on_venue(OrderAccepted(ts, "BTC", cl, live_oid[cl]))
            else:
                more = eng.on_venue(OrderCancelled(ts, "BTC", a.cloid, live_oid.get(a.cloid, 0)))
            if more:
                to_bodies(more)
                ack(more, ts)

    lat: list[float] = []
    n_events = n_orders = 0
    next_timer = src.start_ts + 1.0
    pc = time.perf_counter
    for ev in src.events:
        n_events += 1
        t0 = pc()
        acts = eng.on_market(ev)
        if acts:
            bodies = to_bodies(acts)
            t1 = pc()
            if bodies:
                lat.append(t1 - t0)
                n_orders += len(acts)
            ack(acts, ev.ts)
        if ev.ts >= next_timer:
            acts = eng.on_timer(ev.ts)
            if acts:
                to_bodies(acts)
                ack(acts, ev.ts)
            next_timer = ev.ts + 1.0
    a = np.array(lat) * 1e6
    print(f"machine: {machine()}")
    print(f"market events: {n_events}, ticks producing actions: {len(a)}, actions: {n_orders}")
    if len(a):
        print(f"tick-to-signed-order µs: p50 {np.percentile(a, 50):.0f}  p90 {np.percentile(a, 90):.0f}  "
              f"p99 {np.percentile(a, 99):.0f}  max {a.max():.0f}")


if __name__ == "__main__":
    main()
