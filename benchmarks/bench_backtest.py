"""Backtest throughput: events/s on a fixed synthetic BTC stream (generated first, then timed).

    python benchmarks/bench_backtest.py                 # 1M events, full strategy
    python benchmarks/bench_backtest.py --events 200000 --profile
    python benchmarks/bench_backtest.py --engine null   # runner + simulated exchange only (attribution)

Target: >= 200k events/s on one core with the full strategy. Speed is measured here, never asserted in tests.
Per-component costs (ladder, reconcile, estimators): ``benchmarks/bench_components.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _machine import machine  # the script's directory is on sys.path

from hlmm.config import load_config
from hlmm.engine.runner import MarketSource, run_backtest
from hlmm.market.events import BookSnapshot, MarketEvent
from hlmm.market.instrument import default_registry
from hlmm.market.state import MarketState
from hlmm.sim.synthetic import SyntheticMarket, preset

TARGET = 200_000


def generate(n: int, seed: int) -> list[MarketEvent]:
    mkt = SyntheticMarket(preset("btc", seed=seed), registry=default_registry())
    # ~7 events per simulated second on the btc preset; ask for generously more time than needed
    return list(itertools.islice(mkt.events(n / 2.0), n))


@dataclass
class _Kill:
    killed: bool = False
    state: Any = None


@dataclass
class _Portfolio:
    position: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0

    def pnl_total(self, mark: float) -> float:
        return 0.0

    def unrealized(self, mark: float) -> float:
        return 0.0


@dataclass
class NullEngine:
    """Keeps the market state and never quotes: measures runner + exchange overhead."""

    market: MarketState = field(default_factory=lambda: MarketState("BTC"))
    portfolio: _Portfolio = field(default_factory=_Portfolio)
    kill_switch: _Kill = field(default_factory=_Kill)
    persist_needed: bool = False

    def sync(self, snap: Any) -> list:
        return []

    def on_market(self, ev: Any) -> list:
        if type(ev) is BookSnapshot:
            self.market.on_book(ev)
        return []

    def on_venue(self, ev: Any) -> list:
        return []

    def on_timer(self, ts: float) -> list:
        return []

    def shutdown(self, ts: float) -> list:
        return []

    def mark_persisted(self) -> None:
        self.persist_needed = False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--engine", choices=("full", "null"), default="full")
    ap.add_argument("--profile", action="store_true", help="cProfile the backtest and print the top functions")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    events = generate(args.events, args.seed)
    gen_s = time.perf_counter() - t0
    span = events[-1].ts - events[0].ts
    print(f"generated {len(events):,} events ({span / 3600:.1f} simulated hours) in {gen_s:.1f} s "
          f"({len(events) / gen_s:,.0f} events/s)")

    # Limits raised so the kill switch never stops quoting over the ~40 simulated hours: a killed engine does no
    # quote cycles and would flatter the figure.
    cfg = load_config(None, ["coins.BTC.risk.daily_loss_limit_usd=1e9", "coins.BTC.risk.max_drawdown_usd=1e9"])
    src = MarketSource("BTC", events, start_ts=events[0].ts, description=f"bench btc seed={args.seed}")
    kw: dict[str, Any] = {"seed": args.seed}
    if args.engine == "null":
        kw["engine"] = NullEngine()
    prof = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    res = run_backtest(src, cfg, **kw)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    s = res.summary
    eps = s["n_events"] / wall
    print(f"backtest ({args.engine} engine): {s['n_events']:,} events in {wall:.2f} s = {eps:,.0f} events/s "
          f"(target {TARGET:,}: {'met' if eps >= TARGET else 'NOT met'})")
    print(f"  fills {s['n_fills']:,}, orders placed {s['n_orders_placed']:,}, modified {s['n_orders_modified']:,}, "
          f"cancelled {s['n_orders_cancelled']:,}, pnl {s['pnl_total']:.2f} USD, "
          f"balanced {s['pnl_check']['balanced']}, kill {s['kill']}")
    rec = getattr(res.engine, "recorder", None)
    if rec is not None and rec.n_quote_cycles:
        print(f"  quote cycles {rec.n_quote_cycles:,} (one per {s['n_events'] / rec.n_quote_cycles:.1f} events, "
              f"{wall / rec.n_quote_cycles * 1e6:,.0f} us of wall time per cycle incl. everything else)")
    if prof:
        st = pstats.Stats(prof, stream=sys.stdout)
        st.sort_stats("tottime").print_stats(20)
        st.sort_stats("cumtime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
