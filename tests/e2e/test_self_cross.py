"""Issue 9 item 8 end to end (live mode against the local exchange): on gaps in the market (the server's ``jump``
fault moves every price by tens of basis points at once) the bot re-prices both sides, and no placement or modify
is ever rejected by the exchange because it crossed one of our own orders (server counter
``post_only_self_cross``); the bot's accounting still matches the server's."""

from __future__ import annotations

import json

from hlmm.sim.server.faults import FaultStep
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import KEY, RecLog, bot_config, check_accounting, make_server, run_bot, server_records
from .test_live_faults import fault_at

ADDR = Wallet.from_key(KEY).address


async def test_market_gaps_never_make_us_cross_our_own_orders(tmp_path):
    with make_server() as st:
        for i, at in enumerate((6.0, 9.0, 12.0, 15.0, 18.0, 21.0)):
            fault_at(st, at, FaultStep(0, "jump", {"bps": 40.0 if i % 2 == 0 else -40.0}))
        log = RecLog()
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 25.0, log)
        rec = server_records(st, ADDR)
        acct = check_accounting(res, rec)
        stats = rec["stats"]
        summ = res.summary or {}
        print(json.dumps({"scenario": "jumps", "jumps": stats.get("fault_jump"), "orders": stats.get("orders"),
                          "modifies": stats.get("modifies"), "self_cross": stats.get("post_only_self_cross", 0),
                          "crossing_at_send": summ.get("crossing_at_send"),
                          "crossing_own_at_send": summ.get("crossing_own_at_send"), **acct}))
        assert stats.get("fault_jump") == 6
        assert stats.get("modifies", 0) + stats.get("orders", 0) > 20, "the bot did not re-price"
        assert stats.get("post_only_self_cross", 0) == 0
        # Nothing was even sent across our own orders (pending, cancel-pending or the other leg of a modify).
        assert summ.get("crossing_own_at_send") == 0 and summ.get("crossing_at_send") == 0
        assert rec["resting"] == 0 and res.resting_after_shutdown == 0
