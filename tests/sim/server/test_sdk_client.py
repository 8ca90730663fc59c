"""Proof against the real client: the official hyperliquid-python-sdk drives the local exchange over HTTP and WS."""

from __future__ import annotations

import time

import eth_account
import pytest

pytest.importorskip("hyperliquid")

from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, LocalExchangeServer, ServerConfig, ServerThread
from hlmm.sim.server.market import synthetic_source

DEXES = ["", "hyna"]


def _wait(pred, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server():
    reg = default_registry()

    def make() -> LocalExchangeServer:
        core = ExchangeCore(reg, ServerConfig(starting_usdc=50_000.0))
        srcs = [synthetic_source("btc", reg, seed=3), synthetic_source("hype_quiet", reg, seed=4)]
        return LocalExchangeServer(core, srcs, port=0, speed=1.0, ip_weight_per_min=100_000)

    with ServerThread(make) as st:
        yield st


def test_sdk_meta_alo_order_updates_cancel_and_post_only_reject(server):
    info = Info(server.url, skip_ws=False, perp_dexs=DEXES)
    try:
        assert info.name_to_asset("BTC") == 0 and info.name_to_asset("hyna:HYPE") == 110000
        assert [u["name"] for u in info.meta(dex="hyna")["universe"]] == ["hyna:HYPE", "hyna:BTC"]
        book = _wait(lambda: (b := info.l2_snapshot("BTC"))["levels"][0] and b, what="BTC book")
        acct = eth_account.Account.create()
        updates: list = []
        info.subscribe({"type": "orderUpdates", "user": acct.address}, updates.append)
        ex = Exchange(acct, server.url, perp_dexs=DEXES)
        bid = float(book["levels"][0][0]["px"])
        cloid = Cloid.from_int(7)
        r = ex.order("BTC", True, 0.001, bid - 50, {"limit": {"tif": "Alo"}}, cloid=cloid)
        assert r["status"] == "ok", r
        resting = r["response"]["data"]["statuses"][0]["resting"]
        oid = resting["oid"]
        assert resting["cloid"] == cloid.to_raw()
        oo = info.open_orders(acct.address)
        assert [(o["oid"], o["coin"], o["side"]) for o in oo] == [(oid, "BTC", "B")]
        msg = _wait(lambda: next((m for m in updates if m["data"][0]["order"]["oid"] == oid), None),
                    what="orderUpdates message")
        assert msg["channel"] == "orderUpdates" and msg["data"][0]["status"] == "open"
        r = ex.cancel("BTC", oid)
        assert r == {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
        assert info.open_orders(acct.address) == []
        _wait(lambda: any(m["data"][0]["status"] == "canceled" for m in updates), what="canceled update")
        ask = float(info.l2_snapshot("BTC")["levels"][1][0]["px"])
        r = ex.order("BTC", True, 0.001, ask + 100, {"limit": {"tif": "Alo"}})
        err = r["response"]["data"]["statuses"][0]["error"]
        assert err.startswith("Post only order would have immediately matched, bbo was ")
        assert err.endswith(". asset=0")
        st = info.query_order_by_oid(acct.address, oid)
        assert st["status"] == "order" and st["order"]["status"] == "canceled"
    finally:
        info.disconnect_websocket()


def test_sdk_hip3_order_modify_schedule_cancel_and_state(server):
    info = Info(server.url, skip_ws=True, perp_dexs=DEXES)
    book = _wait(lambda: (b := info.l2_snapshot("hyna:HYPE"))["levels"][0] and b, what="hyna:HYPE book")
    acct = eth_account.Account.create()
    ex = Exchange(acct, server.url, perp_dexs=DEXES)
    bid = float(book["levels"][0][0]["px"])
    px = round(bid * 0.98, 3)
    r = ex.order("hyna:HYPE", True, 1.0, px, {"limit": {"tif": "Alo"}}, cloid=Cloid.from_int(9))
    oid = r["response"]["data"]["statuses"][0]["resting"]["oid"]
    r = ex.modify_order(oid, "hyna:HYPE", True, 1.0, round(px * 0.999, 3), {"limit": {"tif": "Alo"}},
                        cloid=Cloid.from_int(9))
    assert r["status"] == "ok", r
    new = r["response"]["data"]["statuses"][0]["resting"]
    assert new["oid"] != oid
    oo = info.frontend_open_orders(acct.address, dex="hyna")
    assert [o["oid"] for o in oo] == [new["oid"]]
    assert ex.update_leverage(5, "hyna:HYPE")["status"] == "ok"
    assert ex.schedule_cancel(int(time.time() * 1000) + 5_500)["status"] == "ok"
    _wait(lambda: info.frontend_open_orders(acct.address, dex="hyna") == [], timeout=15, what="scheduled cancel")
    st = info.query_order_by_cloid(acct.address, Cloid.from_int(9))
    assert st["order"]["status"] == "scheduledCancel"
    state = info.user_state(acct.address, dex="hyna")
    assert state["marginSummary"]["accountValue"] == "50000"
    limits = info.post("/info", {"type": "userRateLimit", "user": acct.address})
    assert limits["nRequestsUsed"] == 4 and limits["nRequestsCap"] == 10_000


def test_sdk_approve_agent_then_agent_trades_for_master(server):
    master = eth_account.Account.create()
    ex = Exchange(master, server.url, perp_dexs=DEXES)
    r, agent_key = ex.approve_agent()
    assert r == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(agent_key)
    ax = Exchange(agent, server.url, account_address=master.address, perp_dexs=DEXES)
    info = Info(server.url, skip_ws=True, perp_dexs=DEXES)
    bid = float(_wait(lambda: (b := info.l2_snapshot("BTC"))["levels"][0] and b)["levels"][0][0]["px"])
    r = ax.order("BTC", True, 0.001, bid - 100, {"limit": {"tif": "Alo"}})
    assert "resting" in r["response"]["data"]["statuses"][0], r
    assert len(info.open_orders(master.address)) == 1
    assert info.open_orders(agent.address) == []
    assert ax.cancel_by_cloid("BTC", Cloid.from_int(1))["response"]["data"]["statuses"][0] == {
        "error": "Order was never placed, already canceled, or filled."}
