"""The aiohttp shell: WS protocol (greeting, ping, subscribe acks/errors, snapshots, post), Binance stream, and
fault injection (drop, freeze, pause, restart with state, rate limits, reorder). Loopback only, bounded waits."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, LocalExchangeServer, ServerConfig
from hlmm.sim.server.faults import FaultError, FaultStep, load_scenario, parse_flag, parse_scenario
from hlmm.sim.server.market import synthetic_source

from .conftest import KEY_A, Signer, order, order_action


@pytest.fixture
async def server(tmp_path):
    reg = default_registry()
    core = ExchangeCore(reg, ServerConfig())
    s = LocalExchangeServer(core, [synthetic_source("btc", reg, seed=5)], port=0, speed=4.0,
                            state_path=tmp_path / "state.bin", ip_weight_per_min=100_000)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def recv_json(ws, channel: str, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"connection ended: {msg.type}")
            if msg.data.startswith("{"):
                m = orjson.loads(msg.data)
                if m.get("channel") == channel:
                    return m


async def post(sess, url: str, path: str, body) -> tuple[int, object]:
    async with sess.post(url + path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
        try:
            return r.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return r.status, text


async def best_bid(sess, url: str) -> float:
    async with asyncio.timeout(10):
        while True:
            _, b = await post(sess, url, "/info", {"type": "l2Book", "coin": "BTC"})
            if b["levels"][0]:
                return float(b["levels"][0][0]["px"])
            await asyncio.sleep(0.1)


def signer_now() -> Signer:
    s = Signer(KEY_A)
    import time

    s.nonce = int(time.time() * 1000)
    return s


async def test_ws_protocol_basics(server):
    async with aiohttp.ClientSession() as sess, sess.ws_connect(server.url.replace("http", "ws") + "/ws") as ws:
        greet = await ws.receive()
        assert greet.data == "Websocket connection established."
        await ws.send_str('{"method":"ping"}')
        assert await recv_json(ws, "pong") == {"channel": "pong"}
        sub = {"type": "l2Book", "coin": "BTC"}
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": sub}).decode())
        ack = await recv_json(ws, "subscriptionResponse")
        assert ack["data"] == {"method": "subscribe", "subscription": sub}
        book = await recv_json(ws, "l2Book")
        assert book["data"]["coin"] == "BTC" and len(book["data"]["levels"]) == 2
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": sub}).decode())
        assert (await recv_json(ws, "error"))["data"].startswith("Already subscribed")
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book"}}).decode())
        assert (await recv_json(ws, "error"))["data"].startswith("Invalid subscription")
        user = signer_now().address
        await ws.send_str(orjson.dumps({"method": "subscribe",
                                        "subscription": {"type": "userFills", "user": user}}).decode())
        snap = await recv_json(ws, "userFills")
        assert snap["data"]["isSnapshot"] is True and snap["data"]["user"] == user
        await ws.send_str(orjson.dumps({"method": "post", "id": 7, "request": {
            "type": "info", "payload": {"type": "l2Book", "coin": "BTC"}}}).decode())
        p = await recv_json(ws, "post")
        assert p["data"]["id"] == 7 and p["data"]["response"]["type"] == "info"
        assert p["data"]["response"]["payload"]["type"] == "l2Book"
        s = signer_now()
        bid = await best_bid(sess, server.url)
        body = s.body(order_action(order(0, True, f"{bid - 20:.0f}", "0.001")))
        await ws.send_str(orjson.dumps({"method": "post", "id": 8, "request": {"type": "action",
                                                                               "payload": body}}).decode())
        p = await recv_json(ws, "post")
        assert p["data"]["id"] == 8 and "resting" in p["data"]["response"]["payload"]["response"]["data"][
            "statuses"][0]
        await ws.send_str(orjson.dumps({"method": "unsubscribe", "subscription": sub}).decode())
        assert (await recv_json(ws, "subscriptionResponse"))["data"]["method"] == "unsubscribe"


async def test_binance_book_ticker_stream(server):
    async with aiohttp.ClientSession() as sess:
        url = server.url.replace("http", "ws") + "/binance/stream?streams=btcusdt@bookTicker"
        async with sess.ws_connect(url) as ws:
            m = await recv_json_any(ws)
            assert m["stream"] == "btcusdt@bookTicker" and float(m["data"]["b"]) < float(m["data"]["a"])
        async with sess.ws_connect(server.url.replace("http", "ws") + "/binance/ws/btcusdt@bookTicker") as ws:
            m = await recv_json_any(ws)
            assert m["e"] == "bookTicker" and m["s"] == "BTCUSDT"


async def recv_json_any(ws, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.TEXT
        return orjson.loads(msg.data)


async def test_drop_ws_and_freeze_book(server):
    async with aiohttp.ClientSession() as sess:
        ws = await sess.ws_connect(server.url.replace("http", "ws") + "/ws")
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book",
                                                                                "coin": "BTC"}}).decode())
        await recv_json(ws, "l2Book")
        await server.apply_fault(FaultStep(0, "drop_ws", {"target": "all"}))
        async with asyncio.timeout(5):
            while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass
        assert ws.closed
        await server.apply_fault(FaultStep(0, "freeze_book", {"coin": "BTC", "duration_s": 1.5}))
        _, b0 = await post(sess, server.url, "/info", {"type": "l2Book", "coin": "BTC"})
        ws = await sess.ws_connect(server.url.replace("http", "ws") + "/ws")
        await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {"type": "l2Book",
                                                                                "coin": "BTC"}}).decode())
        first = await recv_json(ws, "l2Book")  # the (stale) snapshot on subscribe
        assert first["data"]["time"] == b0["time"]
        await asyncio.sleep(0.8)
        _, b1 = await post(sess, server.url, "/info", {"type": "l2Book", "coin": "BTC"})
        assert b1["time"] == b0["time"]  # frozen: time kept old
        nxt = await recv_json(ws, "l2Book")  # first push after the freeze ends is fresh
        assert nxt["data"]["time"] > b0["time"]
        await ws.close()


async def test_restart_keeps_orders_and_pause_holds_requests(server):
    async with aiohttp.ClientSession() as sess:
        s = signer_now()
        bid = await best_bid(sess, server.url)
        code, r = await post(sess, server.url, "/exchange",
                             s.body(order_action(order(0, True, f"{bid - 30:.0f}", "0.001"))))
        assert code == 200 and "resting" in r["response"]["data"]["statuses"][0]
        await server.restart(0.3)
        _, oo = await post(sess, server.url, "/info", {"type": "openOrders", "user": s.address})
        assert len(oo) == 1
        code, r = await post(sess, server.url, "/exchange", s.body({"type": "noop"}))
        assert r == {"status": "ok", "response": {"type": "default"}}
        pause = asyncio.create_task(server.pause(0.5))
        await asyncio.sleep(0.05)
        req = asyncio.create_task(post(sess, server.url, "/info", {"type": "meta"}))
        await asyncio.sleep(0.2)
        assert not req.done()  # held while paused
        await pause
        code, meta = await asyncio.wait_for(req, 5)
        assert code == 200 and meta["universe"][0]["name"] == "BTC"


async def test_rate_limit_and_reject_faults(server):
    async with aiohttp.ClientSession() as sess:
        await server.apply_fault(FaultStep(0, "rate_limit", {"kind": "ip", "duration_s": 0.3}))
        code, _ = await post(sess, server.url, "/info", {"type": "meta"})
        assert code == 429
        await asyncio.sleep(0.4)
        assert (await post(sess, server.url, "/info", {"type": "meta"}))[0] == 200
        await server.apply_fault(FaultStep(0, "reject_orders", {"fraction": 1.0, "duration_s": 0.3}))
        s = signer_now()
        bid = await best_bid(sess, server.url)
        _, r = await post(sess, server.url, "/exchange", s.body(order_action(order(0, True, f"{bid - 30:.0f}",
                                                                                  "0.001"))))
        assert "error" in r["response"]["data"]["statuses"][0]
        await asyncio.sleep(0.4)
        _, r = await post(sess, server.url, "/exchange", s.body(order_action(order(0, True, f"{bid - 30:.0f}",
                                                                                  "0.001"))))
        assert "resting" in r["response"]["data"]["statuses"][0]


async def test_reorder_loses_no_messages(server):
    async with aiohttp.ClientSession() as sess, sess.ws_connect(server.url.replace("http", "ws") + "/ws") as ws:
        await ws.receive()
        await server.apply_fault(FaultStep(0, "reorder_ws", {"window_ms": 100, "duration_s": 2}))
        await server.apply_fault(FaultStep(0, "delay_ws", {"delay_ms": 50, "duration_s": 2}))
        for i in range(20):
            await ws.send_str(orjson.dumps({"method": "post", "id": i, "request": {
                "type": "info", "payload": {"type": "exchangeStatus"}}}).decode())
        ids = [(await recv_json(ws, "post"))["data"]["id"] for _ in range(20)]
        assert sorted(ids) == list(range(20))


def test_scenario_files_and_flags(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[[faults]]\nat_s = 5\nfault = "freeze_book"\nparams = { duration_s = 3, coin = "BTC" }\n'
                 '[[faults]]\nat_s = 1\nfault = "drop_ws"\n')
    steps = load_scenario(p)
    assert [(s.at_s, s.fault) for s in steps] == [(1.0, "drop_ws"), (5.0, "freeze_book")]
    assert steps[1].params == {"coin": "BTC", "duration_s": 3}
    j = tmp_path / "s.json"
    j.write_text('[{"at_s": 2, "fault": "restart", "params": {"down_s": 1}}]')
    assert load_scenario(j)[0].params == {"down_s": 1}
    assert parse_flag("reject_orders@3:fraction=0.25").params == {"fraction": 0.25, "duration_s": 10.0}
    for bad in ([{"at_s": 1, "fault": "meteor"}], [{"at_s": -1, "fault": "pause"}],
                [{"at_s": 1, "fault": "pause", "params": {"x": 1}}],
                [{"at_s": 1, "fault": "reject_orders", "params": {"fraction": 2}}]):
        with pytest.raises(FaultError):
            parse_scenario(bad)
