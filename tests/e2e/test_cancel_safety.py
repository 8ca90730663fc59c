"""Issue 9 items 1 and 7 end to end (live mode against the local exchange): a rate-limit window does not kill the
bot, it resumes quoting after, and open orders stay bounded by the ladder while requests are refused."""

from __future__ import annotations

import json
import time

from hlmm.sim.server.faults import FaultStep
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import COIN, KEY, Monitor, RecLog, bot_config, make_server, run_bot, server_records
from .test_live_faults import fault_at

ADDR = Wallet.from_key(KEY).address
LADDER_BOUND = 10 + 4  # the default ladder (5 a side) twice over, plus a small bound for in-flight replacements


async def test_rate_limit_window_does_not_kill_and_quoting_resumes(tmp_path):
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        fault_at(st, 5.0, FaultStep(0, "rate_limit", {"kind": "address", "duration_s": 6.0}))
        t0 = time.time()
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 20.0, log)
        mon.stop()
        rec = server_records(st, ADDR)
        window_end = t0 + 11.0
        after = [r for t, _, r, _ in mon.samples if t > window_end + 1.0]
        print(json.dumps({"scenario": "rate_limit_6s", "kill": log.first("kill"),
                          "max_resting": max((r for _, _, r, _ in mon.samples), default=0),
                          "max_resting_after_window": max(after, default=0),
                          "address_rate_limited": rec["stats"].get("fault_rate_limit_address")}))
        assert log.first("kill") is None, "a rate-limit window killed the bot"
        assert max(after, default=0) > 0, "the bot did not resume quoting after the window"
        assert max((r for _, _, r, _ in mon.samples), default=0) <= LADDER_BOUND
        assert rec["resting"] == 0 and res.resting_after_shutdown == 0


async def test_kill_during_rate_limit_window_keeps_cancelling_until_nothing_rests(tmp_path):
    import asyncio

    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        # Every action refused (address budget) from 5 s to 13 s; the book freezes at 5 s so the stale-data limit
        # kills the bot inside the window: its cancels are refused and must be retried until they land.
        fault_at(st, 5.0, FaultStep(0, "rate_limit", {"kind": "address", "duration_s": 8.0}))
        fault_at(st, 5.0, FaultStep(0, "freeze_book", {"coin": COIN, "duration_s": 60.0}))
        t0 = time.time()
        window_end = t0 + 13.0
        stop = asyncio.Event()

        async def stop_later() -> None:
            while time.time() < window_end + 8.0:
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(stop_later())
        try:
            await run_bot(st, bot_config(st.url, str(tmp_path), stale_s=2.0), 40.0, log, stop=stop)
        finally:
            watcher.cancel()
        mon.stop()
        t_kill = log.first("kill")
        assert t_kill is not None and t_kill < window_end, "no kill inside the rate-limit window"
        resting_at_kill = max((r for t, _, r, _ in mon.samples if t_kill <= t <= t_kill + 0.5), default=0)
        zero = mon.first_time_resting_zero_after(window_end)
        before_stop = [r for t, _, r, _ in mon.samples if window_end + 5.0 <= t <= window_end + 7.5]
        pos_kill = next((p for t, p, _, _ in mon.samples if t >= t_kill), 0.0)
        pos_win = next((p for t, p, _, _ in mon.samples if t >= window_end + 1.0), 0.0)
        changes = sum(1 for a, b in zip(mon.samples, mon.samples[1:], strict=False)
                      if a[0] >= t_kill and abs(b[1] - a[1]) > 1e-9)
        print(json.dumps({"scenario": "kill_in_429_window", "resting_at_kill": resting_at_kill,
                          "zero_after_window_s": None if zero is None else round(zero - window_end, 2),
                          "resting_5s_after_window": max(before_stop, default=None),
                          "position_changes_after_kill": changes, "position_at_kill": pos_kill}))
        assert before_stop and max(before_stop) == 0, "orders still resting 5 s after the rate-limit window"
        # While every action is refused nothing can be cancelled (a fill then is the exchange's doing); once the window
        # ends nothing of ours rests, so nothing can fill.
        assert all(abs(p - pos_win) < 1e-9 for t, p, _, _ in mon.samples if t >= window_end + 1.0), "fill after window"
