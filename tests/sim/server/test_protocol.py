"""ExchangeCore: Hyperliquid's request/response shapes, signatures, agents, nonces, budgets, scheduleCancel."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.instrument import default_registry
from hlmm.sim.server.core import ExchangeCore, RequestError, ServerConfig
from hlmm.sim.server.limits import IpWeightLimiter, NonceError, NonceSet, action_weight, info_weight

from .conftest import KEY_AGENT, NOW, Signer, book, order, order_action

T = NOW + 1.0
CLOID = "0x" + "ab" * 16


def place(core: ExchangeCore, s: Signer, *orders: dict, t: float = T) -> list:
    r = core.handle_exchange(s.body(order_action(*orders)), t)
    assert r["status"] == "ok", r
    return r["response"]["data"]["statuses"]


def test_alo_rests_then_cancel_and_unknown_cancel(core, alice):
    [st0] = place(core, alice, order(0, True, "69990", "0.01", cloid=CLOID))
    oid = st0["resting"]["oid"]
    assert st0["resting"]["cloid"] == CLOID
    oo = core.handle_info({"type": "openOrders", "user": alice.address}, T)
    got = [(o["oid"], o["limitPx"], o["side"], o["sz"], o["cloid"]) for o in oo]
    assert got == [(oid, "69990", "B", "0.01", CLOID)]
    r = core.handle_exchange(alice.body({"type": "cancel", "cancels": [{"a": 0, "o": oid}]}), T)
    assert r == {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
    r = core.handle_exchange(alice.body({"type": "cancel", "cancels": [{"a": 0, "o": oid}]}), T)
    assert r["response"]["data"]["statuses"] == [{"error": "Order was never placed, already canceled, or filled."}]
    st = core.handle_info({"type": "orderStatus", "user": alice.address, "oid": oid}, T)
    assert st["status"] == "order" and st["order"]["status"] == "canceled"
    assert core.handle_info({"type": "orderStatus", "user": alice.address, "oid": 1}, T) == {"status": "unknownOid"}


def test_alo_crossing_is_rejected_with_bbo_text(core, alice):
    [st0] = place(core, alice, order(0, True, "70001", "0.01"))
    assert st0 == {"error": "Post only order would have immediately matched, bbo was 70000@70001. asset=0"}


def test_tick_lot_min_value_rules(core, alice):
    sts = place(core, alice, order(0, True, "69990.5", "0.01"), order(0, True, "69990", "0.000001"),
                order(0, True, "69990", "0.0001"))
    assert sts == [{"error": "Price must be divisible by tick size."}, {"error": "Order has invalid size."},
                   {"error": "Order must have minimum value of $10."}]


def test_ioc_taker_fill_and_user_fills(core, alice):
    [st0] = place(core, alice, order(0, True, "70010", "0.01", tif="Ioc"))
    assert st0["filled"]["totalSz"] == "0.01" and st0["filled"]["avgPx"] == "70001"
    fills = core.handle_info({"type": "userFills", "user": alice.address}, T)
    assert len(fills) == 1 and fills[0]["crossed"] is True and fills[0]["dir"] == "Open Long"
    state = core.handle_info({"type": "clearinghouseState", "user": alice.address}, T)
    assert state["assetPositions"][0]["position"]["szi"] == "0.01"
    rl = core.handle_info({"type": "userRateLimit", "user": alice.address}, T)
    assert rl["nRequestsUsed"] == 1 and rl["nRequestsCap"] == 10_000 + 700  # 700.01 USDC traded


def test_hip3_asset_ids_and_meta(core, alice):
    meta = core.handle_info({"type": "meta", "dex": "hyna"}, T)
    assert [u["name"] for u in meta["universe"]] == ["hyna:HYPE", "hyna:BTC"]
    first = core.handle_info({"type": "meta"}, T)["universe"]
    assert first[159]["name"] == "HYPE" and first[2].get("isDelisted")
    assert core.handle_info({"type": "perpDexs"}, T)[0] is None
    [st0] = place(core, alice, order(110000, False, "33.05", "1"))
    oid = st0["resting"]["oid"]
    oo = core.handle_info({"type": "frontendOpenOrders", "user": alice.address, "dex": "hyna"}, T)
    assert oo[0]["coin"] == "hyna:HYPE" and oo[0]["oid"] == oid and oo[0]["tif"] == "Alo"
    assert core.handle_info({"type": "openOrders", "user": alice.address}, T) == []  # first dex only
    mids = core.handle_info({"type": "allMids", "dex": "hyna"}, T)
    assert mids == {"hyna:HYPE": "33.005"}


def test_l2book_merges_resting_orders(core, alice):
    place(core, alice, order(0, True, "70000", "0.5"), order(0, False, "70005", "0.25"))
    b = core.handle_info({"type": "l2Book", "coin": "BTC"}, T)
    assert b["levels"][0][0] == {"px": "70000", "sz": "1.5", "n": 2}
    assert {"px": "70005", "sz": "1.25", "n": 2} in b["levels"][1]


def test_batch_modify_new_oid_same_cloid(core, alice):
    [st0] = place(core, alice, order(0, True, "69990", "0.01", cloid=CLOID))
    oid = st0["resting"]["oid"]
    w = order(0, True, "69991", "0.01")
    r = core.handle_exchange(alice.body({"type": "batchModify", "modifies": [{"oid": oid, "order": w}]}), T)
    new = r["response"]["data"]["statuses"][0]["resting"]
    assert new["oid"] != oid and new["cloid"] == CLOID
    r = core.handle_exchange(alice.body({"type": "batchModify", "modifies": [{"oid": oid, "order": w}]}), T)
    assert r["response"]["data"]["statuses"] == [{"error": "Cannot modify canceled or filled order"}]
    r = core.handle_exchange(alice.body({"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": CLOID}]}), T)
    assert r["response"]["data"]["statuses"] == ["success"]


def test_unknown_signer_without_auto_accounts():
    c = ExchangeCore(default_registry(), ServerConfig(auto_accounts=False))
    s = Signer(KEY_AGENT)
    r = c.handle_exchange(s.body({"type": "noop"}), T)
    assert r == {"status": "err", "response": f"User or API Wallet {s.address} does not exist."}


def test_agent_trades_for_master_after_approve(core, alice):
    agent = Signer(KEY_AGENT, account=alice.address)
    assert core.handle_exchange(alice.approve(agent.address), T) == {"status": "ok",
                                                                     "response": {"type": "default"}}
    place(core, agent, order(0, True, "69990", "0.01"))
    assert len(core.handle_info({"type": "openOrders", "user": alice.address}, T)) == 1
    assert core.handle_info({"type": "openOrders", "user": agent.address}, T) == []


def test_tampered_action_recovers_another_address():
    c = ExchangeCore(default_registry(), ServerConfig(auto_accounts=False, accounts={}))
    s = Signer("0x" + "44" * 32)
    c.config.accounts[s.address] = 1000.0
    c.account(s.address, create=True)
    body = s.body(order_action(order(0, True, "69990", "0.01")))
    body["action"]["orders"][0]["p"] = "69991"
    r = c.handle_exchange(body, T)
    assert r["status"] == "err" and r["response"].startswith("User or API Wallet 0x")
    assert s.address not in r["response"]


def test_nonce_rules(core, alice):
    n = alice.next_nonce()
    assert core.handle_exchange(alice.body({"type": "noop"}, nonce=n), T)["status"] == "ok"
    assert core.handle_exchange(alice.body({"type": "noop"}, nonce=n), T) == {
        "status": "err", "response": f"Invalid nonce: duplicate nonce {n}"}
    low = int(T * 1000) - 2 * 86_400_000
    r = core.handle_exchange(alice.body({"type": "noop"}, nonce=low), T)
    assert r["response"] == f"Invalid nonce: nonce too low {low} < {low}"
    high = int(T * 1000) + 86_400_000
    assert core.handle_exchange(alice.body({"type": "noop"}, nonce=high), T)["response"].startswith(
        f"Invalid nonce: nonce too high {high} > ")
    for _ in range(100):
        core.handle_exchange(alice.body({"type": "noop"}), T)
    r = core.handle_exchange(alice.body({"type": "noop"}, nonce=n - 1), T)  # never used, below the kept 100
    assert r["response"] == f"Invalid nonce: nonce too low {n - 1} < {n + 1}"


def test_address_budget_exhaustion():
    c = ExchangeCore(default_registry(), ServerConfig(address_budget_base=3))
    c.on_market(book("BTC", 70_000.0, 70_001.0), NOW)
    s = Signer(KEY_AGENT)
    for _ in range(3):
        assert c.handle_exchange(s.body({"type": "noop"}), T)["status"] == "ok"
    assert c.handle_exchange(s.body({"type": "noop"}), T)["status"] == "ok"  # one per 10 s when exhausted
    r = c.handle_exchange(s.body({"type": "noop"}), T + 1)
    assert r == {"status": "err", "response": "Too many cumulative requests sent (5 > 3) for cumulative volume "
                 "traded $0. Place taker orders to free up 1 request per USDC traded."}
    assert c.handle_exchange(s.body({"type": "noop"}), T + 11)["status"] == "ok"


def test_schedule_cancel_gate_early_and_fire(alice):
    c = ExchangeCore(default_registry(), ServerConfig(schedule_cancel_min_volume=1_000_000))
    c.on_market(book("BTC", 70_000.0, 70_001.0), NOW)
    r = c.handle_exchange(alice.body({"type": "scheduleCancel", "time": int(T * 1000) + 10_000}), T)
    assert r == {"status": "err", "response": "Cannot set scheduled cancel time until enough volume traded. "
                 "Required: $1000000. Traded: $0."}
    c.config.schedule_cancel_min_volume = 0.0
    r = c.handle_exchange(alice.body({"type": "scheduleCancel", "time": int(T * 1000) + 1000}), T)
    assert r["response"] == "Scheduled cancel time too early, must be at least 5 seconds from now."
    place(c, alice, order(0, True, "69990", "0.01"), order(0, False, "70010", "0.01"))
    assert c.handle_exchange(alice.body({"type": "scheduleCancel", "time": int(T * 1000) + 6000}), T)["status"] == "ok"
    c.drain()
    c.tick(T + 5.0)
    assert c.resting_count() == 2
    c.tick(T + 6.0)
    assert c.resting_count() == 0
    ups = [u for ch, _, d in c.drain() if ch == "orderUpdates" for u in d]
    assert {u["status"] for u in ups} == {"scheduledCancel"} and len(ups) == 2


def test_update_leverage_and_bad_requests(core, alice):
    ok = core.handle_exchange(alice.body({"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 5}), T)
    assert ok == {"status": "ok", "response": {"type": "default"}}
    bad = core.handle_exchange(alice.body({"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 99}), T)
    assert bad == {"status": "err", "response": "Invalid leverage value"}
    with pytest.raises(RequestError):
        core.handle_info({"type": "nope"}, T)
    with pytest.raises(RequestError):
        core.handle_exchange({"action": {"type": "noop"}}, T)


def test_fault_reject_fraction(core, alice):
    core.reject_fraction = 1.0
    [st0] = place(core, alice, order(0, True, "69990", "0.01"))
    assert "error" in st0
    core.reject_fraction = 0.0
    core.forced_rate_limit = True
    r = core.handle_exchange(alice.body({"type": "noop"}), T)
    assert r["status"] == "err" and r["response"].startswith("Too many cumulative requests sent")


def test_order_updates_and_fill_messages_on_maker_fill(core, alice):
    place(core, alice, order(0, True, "70000", "0.01"))
    core.drain()
    # The market trades through our bid: a maker fill.
    core.on_market(book("BTC", 69_990.0, 69_995.0, t=T + 1), T + 1)
    out = core.drain()
    chans = [ch for ch, _, _ in out]
    assert "userFills" in chans and "user" in chans
    [upd] = [d for ch, _, d in out if ch == "orderUpdates"]
    assert upd[0]["status"] == "filled"
    [uf] = [d for ch, _, d in out if ch == "userFills"]
    assert uf["fills"][0]["crossed"] is False and uf["fills"][0]["px"] == "70000"


def test_candles_and_meta_ctxs(core):
    from hlmm.market.events import Trade

    core.on_market(Trade("BTC", T, T, 70_000.5, 0.1, "B", 1), T)
    core.on_market(Trade("BTC", T + 1, T + 1, 70_002.0, 0.2, "A", 2), T + 1)
    start = int(T * 1000) - 120_000
    cs = core.handle_info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": start}}, T)
    assert sum(c["n"] for c in cs) == 2 and cs[-1]["c"] == "70002"
    meta, ctxs = core.handle_info({"type": "metaAndAssetCtxs"}, T)
    assert len(meta["universe"]) == len(ctxs) and ctxs[0]["midPx"] == "70000.5"


def test_limits_helpers():
    assert info_weight("l2Book") == 2 and info_weight("meta") == 20 and info_weight("userFills", 100) == 25
    assert action_weight(1) == 1 and action_weight(79) == 2
    lim = IpWeightLimiter(per_minute=30)
    assert lim.charge("1", 20, 0.0) and not lim.charge("1", 20, 1.0) and lim.charge("1", 20, 60.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=300))
def test_nonce_set_matches_reference_model(seq):
    ns, used = NonceSet(size=10), []
    for n in seq:
        kept = sorted(used)[-10:]
        expect_ok = n not in kept and (len(kept) < 10 or n > kept[0])
        try:
            ns.use(n)
            ok = True
        except NonceError:
            ok = False
        assert ok == expect_ok
        if ok:
            used.append(n)
    assert len(ns) == min(10, len(used))
