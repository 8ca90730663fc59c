"""One network per local exchange (issue 9 item 12): a server started for testnet (``--chain testnet``, the default)
refuses actions signed for mainnet and a mainnet server refuses testnet-signed ones, as Hyperliquid does (the
other network's signature recovers another address: ``User or API Wallet 0x<other> does not exist.``;
user-signed actions name their network in ``hyperliquidChain``). Signatures are made with
hlmm.venue.hyperliquid.signing, exactly as the bot and the SDK make them."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, ServerConfig
from hlmm.venue.hyperliquid.signing import recover_l1_signer

from .conftest import KEY_A, KEY_AGENT, KEY_B, Signer, book, order, order_action

T = time.time()
MSG_NO_USER_HEAD = "User or API Wallet 0x"


def core_for(mainnet: bool, **cfg) -> ExchangeCore:
    c = ExchangeCore(default_registry(), ServerConfig(starting_usdc=100_000.0, is_mainnet=mainnet, **cfg))
    c.on_market(book("BTC", 70_000.0, 70_001.0, t=T), T)
    return c


def signer(key: str, mainnet: bool, account: str | None = None) -> Signer:
    s = Signer(key, account=account, is_mainnet=mainnet)
    s.nonce = int(time.time() * 1000)
    return s


def rest(addr_core: ExchangeCore, s: Signer) -> dict:
    return addr_core.handle_exchange(s.body(order_action(order(0, True, "69990", "0.01"))), T)


def assert_refused(reply: dict, real: str) -> None:
    assert reply["status"] == "err", reply
    text = reply["response"]
    assert text.startswith(MSG_NO_USER_HEAD) and text.endswith("does not exist."), text
    assert real.lower() not in text.lower(), text  # the other network's signature names some other address


def n_open(core: ExchangeCore, addr: str) -> int:
    return len(core.handle_info({"type": "openOrders", "user": addr}, T))


@pytest.mark.parametrize("server_mainnet", [False, True], ids=["testnet-server", "mainnet-server"])
def test_other_network_l1_signature_of_a_trading_user_is_refused(server_mainnet):
    core = core_for(server_mainnet)
    right = signer(KEY_A, server_mainnet)
    wrong = signer(KEY_A, not server_mainnet)
    wrong.nonce = right.nonce + 10_000
    r = rest(core, right)
    assert "resting" in r["response"]["data"]["statuses"][0], r
    accounts = set(core.accounts)
    assert_refused(rest(core, wrong), right.address)
    assert_refused(core.handle_exchange(wrong.body({"type": "cancel", "cancels": [{"a": 0, "o": 1}]}), T),
                   right.address)
    assert set(core.accounts) == accounts  # no account for the stray address
    assert n_open(core, right.address) == 1
    assert core.stats.get("wrong_network_signatures") == 2
    assert "resting" in rest(core, right)["response"]["data"]["statuses"][0]  # the right network still works


@pytest.mark.parametrize("server_mainnet", [False, True], ids=["testnet-server", "mainnet-server"])
def test_other_network_first_action_of_a_known_user_is_refused(server_mainnet):
    """The very first action is already refused when the user is known: pre-created (``--account``), seen via
    /info (a bot reads its state before quoting), or on a server without auto-accounts."""
    a, b = signer(KEY_A, not server_mainnet), signer(KEY_B, not server_mainnet)
    core = core_for(server_mainnet, accounts={a.address.lower(): 5_000.0})
    core.account(a.address, create=True)
    core.handle_info({"type": "clearinghouseState", "user": b.address}, T)
    for s in (a, b):
        assert_refused(rest(core, s), s.address)
        assert n_open(core, s.address) == 0
    assert sorted(core.accounts) == [a.address.lower()]

    strict = core_for(server_mainnet, auto_accounts=False)
    c = signer(KEY_B, not server_mainnet)
    assert_refused(rest(strict, c), c.address)
    assert strict.accounts == {}


@pytest.mark.parametrize("server_mainnet", [False, True], ids=["testnet-server", "mainnet-server"])
def test_approve_agent_names_the_network(server_mainnet):
    core = core_for(server_mainnet)
    master = signer(KEY_A, server_mainnet)
    wrong_master = signer(KEY_A, not server_mainnet)
    wrong_master.nonce = master.nonce + 10_000
    assert core.handle_exchange(master.body({"type": "noop"}), T)["status"] == "ok"
    agent_addr = signer(KEY_AGENT, server_mainnet).address
    r = core.handle_exchange(wrong_master.approve(agent_addr), T)
    want = "Mainnet" if server_mainnet else "Testnet"
    assert r["status"] == "err" and want in r["response"], r
    assert agent_addr.lower() not in core.agents
    assert core.handle_exchange(master.approve(agent_addr), T) == {"status": "ok", "response": {"type": "default"}}
    agent = signer(KEY_AGENT, server_mainnet, account=master.address)
    wrong_agent = signer(KEY_AGENT, not server_mainnet, account=master.address)
    wrong_agent.nonce = agent.nonce + 10_000
    assert_refused(rest(core, wrong_agent), agent.address)
    assert "resting" in rest(core, agent)["response"]["data"]["statuses"][0]
    assert n_open(core, master.address) == 1


def test_the_two_signatures_recover_different_addresses():
    """Why refusing works: the same key signs a different digest per network (source "a" / "b")."""
    s = signer(KEY_A, False)
    body = s.body({"type": "noop"})
    as_testnet = recover_l1_signer(body["action"], body["nonce"], None, None, body["signature"], False)
    as_mainnet = recover_l1_signer(body["action"], body["nonce"], None, None, body["signature"], True)
    assert as_testnet == s.address.lower() and as_mainnet != as_testnet


async def _post(sess, url: str, body: dict) -> dict:
    async with sess.post(url + "/exchange", data=orjson.dumps(body)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


@pytest.mark.parametrize("chain", [None, "testnet", "mainnet"])
async def test_server_built_for_a_chain_accepts_only_it_over_http(chain, tmp_path):
    """``hlmm exchange`` (default testnet, or ``--chain``): over HTTP a known user's signature for the other network
    is refused, its own network's accepted; a restart with another ``--chain`` switches networks (the network is
    a start option, not state)."""
    from hlmm.sim.server.build import ServerOptions, build_server

    opts = ServerOptions(port=0, preset="btc", seed=1, state=str(tmp_path / "s.state"),
                         **({} if chain is None else {"chain": chain}))
    mainnet = chain == "mainnet"
    srv = build_server(opts)
    await srv.start()
    try:
        right, wrong = signer(KEY_A, mainnet), signer(KEY_A, not mainnet)
        wrong.nonce = right.nonce + 10_000
        async with aiohttp.ClientSession() as sess:
            assert await _post(sess, srv.url, right.body({"type": "noop"})) == {"status": "ok",
                                                                             "response": {"type": "default"}}
            assert_refused(await _post(sess, srv.url, wrong.body({"type": "noop"})), right.address)
    finally:
        await srv.stop()
    # same state, the other network
    other = "testnet" if mainnet else "mainnet"
    srv = build_server(ServerOptions(port=0, preset="btc", seed=1, state=str(tmp_path / "s.state"), chain=other))
    await srv.start()
    try:
        right, wrong = signer(KEY_A, not mainnet), signer(KEY_A, mainnet)
        right.nonce += 20_000
        wrong.nonce += 30_000
        async with aiohttp.ClientSession() as sess:
            assert (await _post(sess, srv.url, right.body({"type": "noop"})))["status"] == "ok"
            assert_refused(await _post(sess, srv.url, wrong.body({"type": "noop"})), right.address)
    finally:
        await srv.stop()


def test_cli_has_no_accept_both_mode():
    import argparse

    from hlmm.commands.exchange import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    assert ap.parse_args(["exchange"]).chain == "testnet"
    assert ap.parse_args(["exchange", "--chain", "mainnet"]).chain == "mainnet"
    with pytest.raises(SystemExit):
        ap.parse_args(["exchange", "--chain", "both"])
