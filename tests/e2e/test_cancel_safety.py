"""Issue 9 items 1 and 7 end to end (live mode against the local exchange): a rate-limit window does not kill the
bot, it resumes quoting after, and open orders stay bounded by the ladder while requests are refused."""

from __future__ import annotations

import json
import time

from hlmm.sim.server.faults import FaultStep
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import KEY, Monitor, RecLog, bot_config, make_server, run_bot, server_records
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

