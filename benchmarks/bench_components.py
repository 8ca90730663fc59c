"""Quote-cycle components: microseconds per call of the functions a quote cycle runs, on real inputs.

    python benchmarks/bench_components.py                 # 30k-event capture of the btc synthetic stream
    python benchmarks/bench_components.py --events 60000 --preset hype_quiet

A short backtest runs first with the whole quote cycle (``EngineCore._quote``) timed inline; a second one captures
the components' calls (arguments copied at call time), each then replayed in a timed loop: ``compute_ladder``,
``reconcile``, ``Estimators.state`` and the intensity fit itself. CPU time, best of ``--repeat``. Speed is
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

from _machine import machine  # the script's directory is on sys.path

import hlmm.engine.core as core_mod
import hlmm.strategy.ladder as strat_mod
from hlmm.config import load_config
from hlmm.engine.runner import MarketSource, build_engine, run_backtest
from hlmm.market.instrument import default_registry
from hlmm.sim.synthetic import SyntheticMarket, preset


def _time_calls(calls: list[Callable[[], Any]], repeat: int) -> float:
    """Best-of-``repeat`` mean CPU microseconds per call (CPU time: the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for c in calls:
            c()
        best = min(best, (time.process_time() - t0) / max(1, len(calls)))
    return best * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--preset", default="btc")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {machine()}")

    reg = default_registry()
    mkt = SyntheticMarket(preset(args.preset, seed=args.seed), registry=reg)
    events = list(itertools.islice(mkt.events(args.events / 2.0), args.events))
    coin = events[0].coin
    cfg = load_config(None, [f'coins.{coin}.risk.daily_loss_limit_usd=1e9',
                             f'coins.{coin}.risk.max_drawdown_usd=1e9'])
    # Run 1, nothing captured: the whole quote cycle timed inline (CPU time).
    eng = build_engine(cfg, coin, reg, events[0].ts, None, None, False)
    quote_s: list[float] = []
    orig_quote = eng._quote

    def timed_quote(*a: Any) -> Any:
        t0 = time.process_time()
        r = orig_quote(*a)
        quote_s.append(time.process_time() - t0)
        return r

    eng._quote = timed_quote  # type: ignore[method-assign]
    run_backtest(MarketSource(coin, events, start_ts=events[0].ts, description="components"), cfg,
                 seed=args.seed, engine=eng)

    # Run 2: the components' inputs captured (copied at call time) for the replays below.
    eng = build_engine(cfg, coin, reg, events[0].ts, None, None, False)
    ladders: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    recs: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    states: list[float] = []
    orig_ladder, orig_rec = strat_mod.compute_ladder, core_mod.reconcile

    def cap_ladder(*a: Any, **kw: Any) -> Any:
        ladders.append(((a[0], a[1], a[2], copy.deepcopy(a[3]), a[4], *a[5:]), kw))  # kw: the strategy's cache
        return orig_ladder(*a, **kw)

    def cap_rec(desired: Any, live: Any, *a: Any, **kw: Any) -> Any:
        kw2 = dict(kw)
        kw2["cloid_factory"] = None
        recs.append(((desired, [copy.copy(o) for o in live], *a), kw2))
        return orig_rec(desired, live, *a, **kw)

    orig_state = eng.estimators.state

    def cap_state(ts: float) -> Any:
        states.append(ts)
        return orig_state(ts)

    strat_mod.compute_ladder, core_mod.reconcile = cap_ladder, cap_rec
    eng.estimators.state = cap_state  # type: ignore[method-assign]
    try:
        run_backtest(MarketSource(coin, events, start_ts=events[0].ts, description="components"), cfg,
                     seed=args.seed, engine=eng)
    finally:
        strat_mod.compute_ladder, core_mod.reconcile = orig_ladder, orig_rec
    print(f"captured on {len(events):,} {args.preset} events: {len(ladders):,} ladders, {len(recs):,} reconciles, "
          f"{len(states):,} estimator states")

    ladder_calls = [lambda a=a, k=k: orig_ladder(*a, **k) for a, k in ladders]
    rec_calls = [lambda a=a, k=k: orig_rec(*a, **k) for a, k in recs]
    # Estimators.state replayed on a fresh copy fed the same stream would be a backtest; instead time the fit
    # and the state assembly on the final estimator (fit forced each call, then cached calls).
    est = eng.estimators
    inten = est.intensity
    ts_last = states[-1] if states else events[-1].ts

    def forced_fit() -> None:
        inten._fit_ts = -float("inf")
        inten._maybe_fit()

    rows = [
        ("compute_ladder", _time_calls(ladder_calls, args.repeat)),
        ("reconcile", _time_calls(rec_calls, args.repeat)),
        ("intensity fit (forced)", _time_calls([forced_fit] * 2000, args.repeat)),
        ("Estimators.state (fit cached)", _time_calls([lambda: orig_state(ts_last)] * 5000, args.repeat)),
    ]
    if quote_s:
        rows.append((f"EngineCore._quote (whole cycle, inline, n={len(quote_s)})", 1e6 * sum(quote_s) / len(quote_s)))
    print(f"intensity trades in window: {inten.n_trades}")
    for name, us in rows:
        print(f"  {name:42s} {us:9.1f} us/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
