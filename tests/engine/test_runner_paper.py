"""Paper runner: paced SimVenue session; a stop (SIGINT/SIGTERM) cancels everything and reports."""

from __future__ import annotations

import asyncio
import os
import signal

from hlmm.config import load_config
from hlmm.engine.runner import MarketSource, synthetic_source
from hlmm.engine.runner_paper import SimClock, run_paper


def _src(seed: int = 1) -> MarketSource:
    return synthetic_source("hype_quiet", duration_s=600.0, seed=seed, start_ts=1_750_000_000.0,
                            overrides={"trade_rate_at_touch": 0.5})


def test_sim_clock_speed() -> None:
    w = [100.0]
    c = SimClock(1000.0, speed=10.0, wall=lambda: w[0])
    assert c() == 1000.0
    w[0] = 101.0
    assert c() == 1010.0
    assert c.wall_delay(1020.0) == 1.0


async def test_stop_cancels_everything() -> None:
    stop = asyncio.Event()
    cfg = load_config(None)

    async def later() -> None:
        await asyncio.sleep(1.0)
        stop.set()

    t = asyncio.create_task(later())
    res = await run_paper(_src(), cfg, duration_s=600.0, speed=20.0, stop=stop)
    await t
    s = res.summary
    assert res.stopped_by == "signal"
    assert s["n_orders_placed"] > 0
    assert s["resting_after_shutdown"] == 0
    assert not [o for o in res.engine.tracker.live() if o.state == "resting"]
    assert s["pnl_check"]["balanced"]
    assert s["duration_s"] < 600.0


async def test_sigterm_is_handled() -> None:
    cfg = load_config(None)
    loop = asyncio.get_running_loop()
    loop.call_later(0.8, os.kill, os.getpid(), signal.SIGTERM)
    res = await run_paper(_src(2), cfg, duration_s=600.0, speed=20.0, install_signals=True)
    assert res.stopped_by == "signal"
    assert res.summary["resting_after_shutdown"] == 0


async def test_runs_to_duration() -> None:
    cfg = load_config(None)
    res = await run_paper(_src(3), cfg, duration_s=20.0, speed=20.0)
    assert res.stopped_by == "duration"
    assert res.summary["time_to_first_quote_s"] is not None
    assert 15.0 <= res.summary["duration_s"] <= 20.0
