"""Post-only rejection rate, fills and PnL of the same recording as backtest and as paper (issue 11 item 1).

    python benchmarks/bench_paper_vs_backtest.py hype            # data/sample/hype_quiet
    python benchmarks/bench_paper_vs_backtest.py btc 0 --touch   # real BTC session 0 (../shared/data/real)
    python benchmarks/bench_paper_vs_backtest.py btc 0 --speed 20  # paper paced in real time (wall clock, x20)

Paper runs on a virtual clock unless ``--speed`` is given. ``--touch`` quotes at the touch, where latency races
(post-only rejections) are frequent. Rate = post-only rejections / (placements + modifies).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from hlmm.config import load_config
from hlmm.data.replay import open_source
from hlmm.engine.runner import MarketSource, run_backtest
from hlmm.engine.runner_paper import run_paper
from hlmm.market.events import Bbo, MarketEvent

ROOT = Path(__file__).resolve().parents[1]
REAL_BBO = Path("../shared/data/real/hyperliquid_BTC_bbo_2025-09-01_to_09-07.csv")
TOUCH = {
    "BTC": ["strategy.min_half_spread_bps=0", "strategy.level_spacing_bps=0.1", "strategy.gamma=0.01",
            "requote.tolerance_bps=0.05", "requote.price_move_bps=0.05", "reference.binance_symbol=off"],
    "hyna:HYPE": ["strategy.min_half_spread_bps=0", "strategy.level_spacing_bps=1.0", "strategy.gamma=0.01",
                  "requote.tolerance_bps=0.5", "requote.price_move_bps=0.5"],
}


def btc_session(i: int) -> list[MarketEvent]:
    """Session ``i`` of the real BTC CSV pair (sessions are > 30 s apart), clipped to its BBO window."""
    sessions: list[list[MarketEvent]] = [[]]
    for ev in open_source(REAL_BBO, "BTC"):
        if sessions[-1] and ev.ts - sessions[-1][-1].ts > 30.0:
            if len(sessions) > i:
                break
            sessions.append([])
        sessions[-1].append(ev)
    s = sessions[i]
    bbo = [e.ts for e in s if isinstance(e, Bbo)]
    return [e for e in s if bbo[0] <= e.ts <= bbo[-1]]


def rate(s: dict[str, Any]) -> str:
    n = s["n_orders_placed"] + s["n_orders_modified"]
    r = s["rejections"].get("post_only_cross", 0)
    return f"post_only {r}/{n} = {100.0 * r / max(n, 1):.1f}%  fills={s['n_fills']}  pnl={s['pnl_total']:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", choices=["hype", "btc"])
    ap.add_argument("session", nargs="?", type=int, default=0)
    ap.add_argument("--touch", action="store_true")
    ap.add_argument("--speed", type=float, default=None)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    coin = "BTC" if a.data == "btc" else "hyna:HYPE"
    events = btc_session(a.session) if a.data == "btc" else list(open_source(ROOT / "data/sample/hype_quiet", coin))
    cfg = load_config(None, [f"coins.{coin}.{o}" for o in TOUCH[coin]] if a.touch else None)
    dur = events[-1].ts - events[0].ts
    bt = run_backtest(MarketSource(coin, list(events), None, "bt"), cfg, seed=a.seed).summary
    print(f"{a.data}{a.session if a.data == 'btc' else ''} {dur:.0f} s  backtest: {rate(bt)}")
    kw: dict[str, Any] = {"virtual_time": True} if a.speed is None else {"speed": a.speed}
    w = time.perf_counter()
    pp = asyncio.run(run_paper(MarketSource(coin, list(events), None, "paper"), cfg, duration_s=dur + 1.0,
                               seed=a.seed, **kw)).summary
    mode = "virtual" if a.speed is None else f"x{a.speed:g}"
    print(f"{' ' * len(a.data)}   paper ({mode}, {time.perf_counter() - w:.1f} s wall): {rate(pp)}  "
          f"late_market={pp.get('late_market')} silent_waits={pp.get('silent_waits')}")


if __name__ == "__main__":
    main()
