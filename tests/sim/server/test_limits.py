"""Limits of the local exchange from the API reference §6 (issue 9 item 12): open orders per account
(1000 + 1 per $5M volume, at most 5000; reduce-only refused from 1000 open) and per-IP websocket limits
(10 connections, 30 new per minute, 10 distinct users across user feeds, 2000 messages per minute, 100 in-flight
posts). Exceeding one gives the exchange's error text; nothing is dropped silently."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import orjson
import pytest

from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, FaultStep, LocalExchangeServer, ServerConfig

from .conftest import KEY_A, Signer, book, order, order_action

T = time.time()


def signer() -> Signer:
    s = Signer(KEY_A)
    s.nonce = int(time.time() * 1000)
    return s


def rich_core(**cfg) -> ExchangeCore:
    c = ExchangeCore(default_registry(), ServerConfig(starting_usdc=100_000_000.0, **cfg))
    c.on_market(book("BTC", 70_000.0, 70_001.0, sz=1000.0, t=T), T)
    return c


def place(core: ExchangeCore, s: Signer, *orders: dict) -> list:
    r = core.handle_exchange(s.body(order_action(*orders)), T)
    assert r["status"] == "ok", r
    return r["response"]["data"]["statuses"]


def fill_bids(core: ExchangeCore, s: Signer, n: int) -> list[int]:
    """``n`` resting bids far below the touch, 40 per batch; their oids."""
    oids: list[int] = []
    while len(oids) < n:
        k = min(40, n - len(oids))
        sts = place(core, s, *[order(0, True, str(60_000 - (len(oids) + i) % 500), "0.001") for i in range(k)])
        assert all("resting" in st for st in sts), sts[:3]
        oids += [st["resting"]["oid"] for st in sts]
    return oids


def n_open(core: ExchangeCore, s: Signer) -> int:
    return len(core.handle_info({"type": "openOrders", "user": s.address}, T))


# ---------------------------------------------------------------------------------------------- open orders
def test_open_order_limit_formula():
    from hlmm.sim.server.limits import open_order_limit

    assert open_order_limit(0.0) == 1000
    assert open_order_limit(4_999_999.0) == 1000
    assert open_order_limit(5_000_000.0) == 1001
    assert open_order_limit(50_000_000.0) == 1010
    assert open_order_limit(4000 * 5_000_000.0) == 5000
    assert open_order_limit(1e15) == 5000
    assert open_order_limit(-1.0) == 1000


def test_default_cap_is_1000_open_orders():
    core, s = rich_core(), signer()
    oids = fill_bids(core, s, 1000)
    assert n_open(core, s) == 1000
    sts = place(core, s, order(0, True, "60000", "0.001"), order(0, False, "80000", "0.001"))
    assert sts == [{"error": "Too many open orders."}] * 2
    assert n_open(core, s) == 1000
    r = core.handle_exchange(s.body({"type": "cancel", "cancels": [{"a": 0, "o": oids[0]}]}), T)
    assert r["response"]["data"]["statuses"] == ["success"]
    [st] = place(core, s, order(0, True, "60000", "0.001"))
    assert "resting" in st, st  # room again after a cancel
    assert place(core, s, order(0, True, "60000", "0.001")) == [{"error": "Too many open orders."}]
    # modifying an open order does not add one: allowed at the cap
    m = {"oid": oids[1], "order": order(0, True, "59000", "0.001")}
    r = core.handle_exchange(s.body({"type": "batchModify", "modifies": [m]}), T)
    assert "resting" in r["response"]["data"]["statuses"][0], r
    assert n_open(core, s) == 1000


def test_volume_raises_the_cap_and_reduce_only_is_refused_from_1000_open():
    core, s = rich_core(), signer()
    # $10M+ of volume (two IOC trades of 72 BTC against a 1000-BTC-deep book) -> cap 1002, flat position
    [b] = place(core, s, order(0, True, "70100", "72", tif="Ioc"))
    [a] = place(core, s, order(0, False, "69900", "71.99", tif="Ioc"))
    assert "filled" in b and "filled" in a, (b, a)
    assert core.accounts[s.address.lower()].volume() >= 10_000_000
    fill_bids(core, s, 1000)
    # reduce-only (closing the 0.01 long) is refused from 1000 open even below the volume cap
    assert place(core, s, order(0, False, "80000", "0.01", reduce_only=True)) == [
        {"error": "Reduce only order rejected: too many open orders."}]
    sts = place(core, s, order(0, True, "60000", "0.001"), order(0, True, "60000", "0.001"),
                order(0, True, "60000", "0.001"))
    assert ["resting" in st for st in sts] == [True, True, False], sts
    assert sts[2] == {"error": "Too many open orders."}
    assert n_open(core, s) == 1002


async def test_configurable_cap_over_http_per_order_statuses():
    """``ServerConfig.open_order_base`` (``hlmm exchange --open-order-base``) shrinks the cap so fault-injection
    runs reach it quickly; a batch across the cap answers one status per order."""
    core, s = rich_core(open_order_base=3), signer()
    srv = LocalExchangeServer(core, [], port=0, ip_weight_per_min=1_000_000)
    await srv.start()
    try:
        body = s.body(order_action(*[order(0, True, str(60_000 - i), "0.001") for i in range(5)]))
        async with aiohttp.ClientSession() as sess, sess.post(srv.url + "/exchange", data=orjson.dumps(body)) as r:
            assert r.status == 200
            sts = (await r.json())["response"]["data"]["statuses"]
        assert ["resting" in st for st in sts] == [True, True, True, False, False], sts
        assert sts[3:] == [{"error": "Too many open orders."}] * 2
        assert core.stats.get("open_order_cap_rejects") == 2
    finally:
        await srv.stop()


def test_cli_flags_reach_the_server():
    import argparse

    from hlmm.commands.exchange import options_from_args, register
    from hlmm.sim.server.build import build_server

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["exchange", "--port", "0", "--open-order-base", "7", "--ws-max-connections", "2"])
    srv = build_server(options_from_args(args))
    assert srv.core.config.open_order_base == 7
    assert srv.ws_limits.max_connections == 2
    args = ap.parse_args(["exchange", "--open-order-base", "0"])
    with pytest.raises(ValueError):
        options_from_args(args)


# ---------------------------------------------------------------------------------------------- websocket
@pytest.fixture
async def server():
    core = rich_core()
    s = LocalExchangeServer(core, [], port=0, ip_weight_per_min=1_000_000, ws_idle_timeout_s=600.0)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def ws_url(server) -> str:
    return server.url.replace("http", "ws") + "/ws"


async def connect(sess, server) -> aiohttp.ClientWebSocketResponse:
    ws = await sess.ws_connect(ws_url(server))
    greet = await ws.receive(timeout=10)
    assert greet.data == "Websocket connection established."
    return ws


async def refusal(sess, server) -> tuple[int, str]:
    """Status and text of a websocket connection attempt the server refuses (a plain GET on /ws)."""
    async with sess.get(ws_url(server).replace("ws", "http", 1)) as r:
        return r.status, await r.text()


async def wait_conns(server, n: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while len([c for c in server._conns if c.kind == "hl"]) != n:
            await asyncio.sleep(0.02)


async def recv_channel(ws, channel: str, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"connection ended: {msg.type}")
            if msg.data.startswith("{"):
                m = orjson.loads(msg.data)
                if m.get("channel") == channel:
                    return m


async def test_ws_at_most_10_connections_per_ip(server):
    async with aiohttp.ClientSession() as sess:
        conns = [await connect(sess, server) for _ in range(10)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
            await sess.ws_connect(ws_url(server))
        assert ei.value.status == 429
        code, text = await refusal(sess, server)
        assert code == 429 and "too many websocket connections" in text.lower() and "10" in text, text
        # the 10 open ones still work
        for ws in conns:
            await ws.send_str('{"method":"ping"}')
            assert await recv_channel(ws, "pong") == {"channel": "pong"}
        await conns.pop().close()
        await wait_conns(server, 9)
        conns.append(await connect(sess, server))  # room again
        assert server.core.stats.get("ws_connections_refused", 0) >= 2
        for ws in conns:
            await ws.close()


def _second_loopback() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _second_loopback(), reason="no 127.0.0.2 on this host")
async def test_ws_connection_limit_is_per_ip(server):
    async with aiohttp.ClientSession() as sess:
        conns = [await connect(sess, server) for _ in range(10)]
        assert (await refusal(sess, server))[0] == 429
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=other) as sess2:
            ws = await connect(sess2, server)  # another IP has its own 10
            await ws.close()
        for w in conns:
            await w.close()


async def test_ws_at_most_30_new_connections_per_minute(server):
    async with aiohttp.ClientSession() as sess:
        for _ in range(30):
            ws = await connect(sess, server)
            await ws.close()
            await wait_conns(server, 0)
        code, text = await refusal(sess, server)
        assert code == 429 and "new websocket connections" in text.lower() and "30" in text, text


async def test_ws_at_most_10_users_across_user_subscriptions(server):
    users = ["0x%040x" % (i + 1) for i in range(11)]
    async with aiohttp.ClientSession() as sess:
        ws, ws2 = await connect(sess, server), await connect(sess, server)
        for u in users[:10]:
            await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {
                "type": "orderUpdates", "user": u}}).decode())
            ack = await recv_channel(ws, "subscriptionResponse")
            assert ack["data"]["subscription"]["user"] == u
        # another feed of a tracked user is fine
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {
            "type": "userFills", "user": users[0]}}).decode())
        assert (await recv_channel(ws, "subscriptionResponse"))["data"]["subscription"]["type"] == "userFills"
        # an 11th user, on the same or on another connection from this IP, is refused with an error frame
        for w in (ws, ws2):
            await w.send_str(orjson.dumps({"method": "subscribe", "subscription": {
                "type": "orderUpdates", "user": users[10]}}).decode())
            err = await recv_channel(w, "error")
            assert err["data"] == "Cannot track more than 10 total users.", err
        await ws.send_str('{"method":"ping"}')
        assert await recv_channel(ws, "pong") == {"channel": "pong"}  # still connected
        await ws.close()
        await ws2.close()


async def test_ws_subscription_cap():
    from hlmm.sim.server.limits import WsLimits

    srv = LocalExchangeServer(rich_core(), [], port=0, ws_limits=WsLimits(max_subscriptions=2))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as sess:
            ws = await connect(sess, srv)
            for sub in ({"type": "l2Book", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}):
                await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": sub}).decode())
                await recv_channel(ws, "subscriptionResponse")
            await ws.send_str(orjson.dumps({"method": "subscribe",
                                            "subscription": {"type": "bbo", "coin": "BTC"}}).decode())
            err = await recv_channel(ws, "error")
            assert "too many subscriptions" in err["data"].lower() and "2" in err["data"], err
            await ws.close()
    finally:
        await srv.stop()


async def test_ws_at_most_2000_messages_per_minute(server):
    async with aiohttp.ClientSession() as sess:
        ws = await connect(sess, server)
        for _ in range(2001):
            await ws.send_str('{"method":"ping"}')
        pongs = 0
        async with asyncio.timeout(30):
            while True:
                m = orjson.loads((await ws.receive()).data)
                if m["channel"] == "pong":
                    pongs += 1
                elif m["channel"] == "error":
                    assert "too many messages" in m["data"].lower() and "2000" in m["data"], m
                    break
        assert pongs == 2000
        assert not ws.closed
        await ws.close()


async def test_ws_at_most_100_inflight_posts(server):
    """Replies held back by a ``delay_ws`` fault stay in flight; the 101st post is answered with an error."""
    async with aiohttp.ClientSession() as sess:
        ws = await connect(sess, server)
        await server.apply_fault(FaultStep(0, "delay_ws", {"delay_ms": 5000, "duration_s": 60}))
        for i in range(101):
            await ws.send_str(orjson.dumps({"method": "post", "id": i, "request": {
                "type": "info", "payload": {"type": "exchangeStatus"}}}).decode())
        replies: dict[int, dict] = {}
        async with asyncio.timeout(30):
            while len(replies) < 101:
                m = await recv_channel(ws, "post")
                replies[m["data"]["id"]] = m["data"]["response"]
        assert all(replies[i]["type"] == "info" for i in range(100))
        assert replies[100]["type"] == "error" and "in-flight" in replies[100]["payload"], replies[100]
        await ws.close()
