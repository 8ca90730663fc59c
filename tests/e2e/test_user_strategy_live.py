"""Issue 10: a user strategy given as ``module:Class`` runs in live mode against the local exchange unchanged, and
a hostile one (10x max position at prices through the book) never gets an order above the per-order cap, through
the book or beyond the position limit onto the exchange: the OrderGuard is in the live path too."""

from __future__ import annotations

import json

import pytest

from hlmm.config import load_config_dict
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import COIN, KEY, MAX_POS_USD, Monitor, RecLog, check_accounting, make_server, run_bot, server_records

ADDR = Wallet.from_key(KEY).address
PER_ORDER_FRACTION = 0.25


def _cfg(url: str, state_dir: str, kind: str):
    return load_config_dict({
        "run": {"network": "local", "local_url": url, "state_dir": state_dir, "log_dir": state_dir},
        "coins": {COIN: {
            "risk": {"max_position_usd": MAX_POS_USD, "daily_loss_limit_usd": 500.0, "max_drawdown_usd": 300.0},
            "estimators": {"warmup_timeout_s": 2.0},
            "reference": {"binance_symbol": "off"},
            "strategy": {"kind": kind},
        }},
    })


@pytest.mark.parametrize("cls", ["OneLevel", "Hostile"])
async def test_user_strategy_runs_live_and_cannot_bypass_the_guard(tmp_path, cls):
    with make_server() as st:
        mon = Monitor(st, ADDR).start()
        log = RecLog()
        res = await run_bot(st, _cfg(st.url, str(tmp_path), f"tests.strategy.user_strategy:{cls}"), 15.0, log)
        mon.stop()
        rec = server_records(st, ADDR)
        acct = check_accounting(res, rec)

        def biggest() -> float:
            core = st.server.core  # type: ignore[union-attr]
            a = core.accounts.get(ADDR)
            return max((o.px * o.sz for o in a.ex.orders()), default=0.0) if a else 0.0

        max_order_usd = st.sync(biggest, 10)
        print(json.dumps({"scenario": f"user_{cls}", "max_order_usd": round(max_order_usd, 2),
                          "max_abs_position_usd": round(mon.max_abs_position_usd(), 2),
                          "crossing_at_send": (res.summary or {}).get("crossing_at_send"), **acct}))
        assert acct["sent"] > 0, "the strategy never quoted"
        # Per-order cap: 25 % of max position (priced at the order's own price; a little slack for the mid moving).
        assert max_order_usd <= PER_ORDER_FRACTION * MAX_POS_USD * 1.02 + 1e-9
        assert mon.max_abs_position_usd() <= MAX_POS_USD * 1.02 + PER_ORDER_FRACTION * MAX_POS_USD * 1.02
        assert (res.summary or {}).get("crossing_at_send") == 0
        assert rec["resting"] == 0 and res.resting_after_shutdown == 0
