"""Post-only rejections caused by our own orders (issue 9 item 8), on a replay.

    python benchmarks/bench_self_cross.py [--data data/sample/hype_quiet] [--coin hyna:HYPE] [--seeds 0-9]

For every post-only rejection the simulated exchange emits, it looks at the book the exchange checked: when the
price it crossed is one of *our own* resting orders (the rejection's bbo text names our order as the best price),
it is a self-cross. Prints per seed: post-only rejections, self-crosses, all rejections, and crossing_at_send.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hlmm.config import load_config
from hlmm.engine.runner import replay_source, run_backtest
from hlmm.sim.exchange import SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.venue.base import OrderRejected, RejectReason


def run(data: str, coin: str, seed: int) -> dict[str, Any]:
    cfg = load_config(None)
    src = replay_source(data, coin)
    ex = SimExchange(src.registry, LatencyModel(seed=seed), queue="prob", seed=seed)
    counts = {"post_only": 0, "self_cross": 0}

    def listener(ev: Any, order: Any, t: float) -> None:
        if not isinstance(ev, OrderRejected) or ev.reason != RejectReason.POST_ONLY_CROSS or order is None:
            return
        counts["post_only"] += 1
        c = ex._coins[order.coin]  # the exchange's own view at the moment it judged the order
        if order.is_buy:
            own, mkt = c.best_own_ask, c.best_ask()
            hit = own is not None and order.px >= own and (mkt is None or own <= mkt)
        else:
            own, mkt = c.best_own_bid, c.best_bid()
            hit = own is not None and order.px <= own and (mkt is None or own >= mkt)
        if hit:
            counts["self_cross"] += 1

    ex.add_listener(listener)
    res = run_backtest(src, cfg, seed=seed, exchange=ex)
    s = res.summary
    return {**counts, "rejections": sum(s["rejections"].values()) if isinstance(s["rejections"], dict) else 0,
            "crossing_at_send": s["crossing_at_send"], "fills": len(res.stats.fills)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/sample/hype_quiet")
    ap.add_argument("--coin", default="hyna:HYPE")
    ap.add_argument("--seeds", default="0-9")
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    tot: dict[str, int] = {}
    for seed in range(int(lo), int(hi or lo) + 1):
        r = run(a.data, a.coin, seed)
        print(f"seed {seed}: {r}")
        for k, v in r.items():
            tot[k] = tot.get(k, 0) + v
    print(f"total: {tot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
