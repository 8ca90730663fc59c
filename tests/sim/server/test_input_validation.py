"""Input handling of the local exchange (issue 9 item 12): a bad price/size value is that order's error status in
a 200 reply (as Hyperliquid answers), never an HTTP 500 nor a dropped WS connection; a batch [valid, bad] answers
one status per order with the valid one resting; a body that does not deserialize (wrong JSON type) is refused as
a whole with 422 before anything of it is placed."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from hlmm.market.instrument import default_registry
from hlmm.sim.server import ExchangeCore, LocalExchangeServer, ServerConfig

from .conftest import KEY_A, KEY_B, Signer, book, order, order_action

BAD_NUMBERS = ["abc", "", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "1,5", "0x10", "sNaN"]


def signer(key: str = KEY_A) -> Signer:
    s = Signer(key)
    s.nonce = int(time.time() * 1000)
    return s


@pytest.fixture
async def server():
    """A server on a static BTC book 70000 @ 70001 (no market source: nothing moves, nothing fills by itself)."""
    core = ExchangeCore(default_registry(), ServerConfig(starting_usdc=100_000.0))
    core.on_market(book("BTC", 70_000.0, 70_001.0, t=time.time()), time.time())
    s = LocalExchangeServer(core, [], port=0, ip_weight_per_min=1_000_000)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def post(sess: aiohttp.ClientSession, url: str, path: str, body) -> tuple[int, object]:
    async with sess.post(url + path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
        try:
            return r.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return r.status, text


async def open_orders(sess, url: str, user: str) -> list:
    code, oo = await post(sess, url, "/info", {"type": "openOrders", "user": user})
    assert code == 200, oo
    return oo  # type: ignore[return-value]


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


def statuses(reply) -> list:
    assert isinstance(reply, dict) and reply.get("status") == "ok", reply
    assert reply["response"]["type"] == "order"
    return reply["response"]["data"]["statuses"]


@pytest.mark.parametrize("field", ["p", "s"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
async def test_http_bad_price_or_size_is_a_per_order_error(server, field, bad):
    w = order(0, True, "69990", "0.01")
    w[field] = bad
    s = signer()
    async with aiohttp.ClientSession() as sess:
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(w)))
        assert code == 200, (code, r)
        [st] = statuses(r)
        assert set(st) == {"error"}, st
        assert ("price" if field == "p" else "size") in st["error"].lower(), st
        assert await open_orders(sess, server.url, s.address) == []
        # the server is fine afterwards: a good order from the same signer rests
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(order(0, True, "69990", "0.01"))))
        assert code == 200 and "resting" in statuses(r)[0], r
    assert server.core.stats.get("internal_errors", 0) == 0


async def test_http_batch_valid_then_bad_gives_per_order_statuses(server):
    s = signer()
    good = order(0, True, "69990", "0.01")
    bad_px = order(0, True, "abc", "0.01")
    bad_sz = order(0, False, "70100", "lots")
    async with aiohttp.ClientSession() as sess:
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(good, bad_px, bad_sz)))
        assert code == 200, (code, r)
        sts = statuses(r)
        assert len(sts) == 3
        assert "resting" in sts[0], sts
        assert "error" in sts[1] and "price" in sts[1]["error"].lower(), sts
        assert "error" in sts[2] and "size" in sts[2]["error"].lower(), sts
        oo = await open_orders(sess, server.url, s.address)
        assert [(o["oid"], o["limitPx"], o["sz"]) for o in oo] == [(sts[0]["resting"]["oid"], "69990", "0.01")]
        # bad first, valid last: same answer shape, the valid one rests
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(bad_px, order(0, True, "69980",
                                                                                               "0.01"))))
        assert code == 200, (code, r)
        sts = statuses(r)
        assert "error" in sts[0] and "resting" in sts[1], sts
        assert len(await open_orders(sess, server.url, s.address)) == 2


async def test_http_undeserializable_batch_places_nothing(server):
    """A JSON type error anywhere in the batch (price as a number) refuses the whole body with 422, like
    Hyperliquid's deserializer: the valid order before it is not placed and the nonce is not used."""
    s = signer()
    good = order(0, True, "69990", "0.01")
    wrong_type = order(0, True, "69990", "0.01")
    wrong_type["p"] = 69990  # a number, not a string
    async with aiohttp.ClientSession() as sess:
        body = s.body(order_action(good, wrong_type))
        code, r = await post(sess, server.url, "/exchange", body)
        assert code == 422, (code, r)
        assert isinstance(r, str) and r.startswith("Failed to deserialize the JSON body into the target type"), r
        assert await open_orders(sess, server.url, s.address) == []
        # the nonce was not burnt: the same nonce is still good for a valid action
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(good), nonce=body["nonce"]))
        assert code == 200 and "resting" in statuses(r)[0], r


async def test_info_bad_input_is_422_not_500(server):
    async with aiohttp.ClientSession() as sess:
        for body in ({"type": "l2Book", "coin": 5}, {"type": "openOrders", "user": "not-an-address"},
                     {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": "x"}},
                     {"type": "orderStatus", "user": "0x" + "ab" * 20, "oid": "abc"}, ["meta"]):
            code, r = await post(sess, server.url, "/info", body)
            assert code == 422, (body, code, r)
        code, _ = await post(sess, server.url, "/info", {"type": "meta"})
        assert code == 200
    assert server.core.stats.get("internal_errors", 0) == 0


async def test_ws_post_bad_price_keeps_the_connection(server):
    a, b = signer(KEY_A), signer(KEY_B)
    async with aiohttp.ClientSession() as sess, sess.ws_connect(server.url.replace("http", "ws") + "/ws") as ws:
        assert (await ws.receive()).data == "Websocket connection established."
        for i, (s, w) in enumerate([(a, order(0, True, "abc", "0.01")), (b, order(0, True, "69990", "nan"))]):
            await ws.send_str(orjson.dumps({"method": "post", "id": 100 + i, "request": {
                "type": "action", "payload": s.body(order_action(w))}}).decode())
            p = await recv_channel(ws, "post")
            assert p["data"]["id"] == 100 + i
            resp = p["data"]["response"]
            assert resp["type"] == "action", resp
            [st] = statuses(resp["payload"])
            assert set(st) == {"error"}, st
        # a batch [valid, bad] over WS post: per-order statuses, the valid one rests
        await ws.send_str(orjson.dumps({"method": "post", "id": 200, "request": {
            "type": "action", "payload": a.body(order_action(order(0, True, "69990", "0.01"),
                                                             order(0, True, "1e400", "0.01")))}}).decode())
        p = await recv_channel(ws, "post")
        sts = statuses(p["data"]["response"]["payload"])
        assert "resting" in sts[0] and "error" in sts[1], sts
        # an undeserializable body is an error reply on the same connection
        await ws.send_str(orjson.dumps({"method": "post", "id": 201, "request": {
            "type": "action", "payload": {"action": {"type": "order", "orders": "x"}, "nonce": "n"}}}).decode())
        p = await recv_channel(ws, "post")
        assert p["data"]["id"] == 201 and p["data"]["response"]["type"] == "error", p
        # garbage frames do not drop it either
        for junk in ("{not json", '{"method":"post","id":3,"request":{"type":"action","payload":null}}',
                     '{"method":"post","id":4,"request":"x"}', '[1,2]', '{"method":"subscribe"}'):
            await ws.send_str(junk)
        await ws.send_str('{"method":"ping"}')
        assert await recv_channel(ws, "pong") == {"channel": "pong"}
        assert not ws.closed
    async with aiohttp.ClientSession() as sess:
        oo = await open_orders(sess, server.url, a.address)
        assert [(o["limitPx"], o["sz"]) for o in oo] == [("69990", "0.01")]
    assert server.core.stats.get("internal_errors", 0) == 0


async def test_http_modify_with_bad_price_keeps_the_order(server):
    s = signer()
    async with aiohttp.ClientSession() as sess:
        code, r = await post(sess, server.url, "/exchange", s.body(order_action(order(0, True, "69990", "0.01"))))
        oid = statuses(r)[0]["resting"]["oid"]
        mods = [{"oid": oid, "order": order(0, True, "abc", "0.01")}, {"oid": oid, "order": order(0, True, "69991",
                                                                                                  "-0")}]
        code, r = await post(sess, server.url, "/exchange", s.body({"type": "batchModify", "modifies": mods}))
        assert code == 200, (code, r)
        assert r["status"] == "ok", r
        sts = r["response"]["data"]["statuses"]
        assert len(sts) == 2 and all(set(st) == {"error"} for st in sts), sts
        oo = await open_orders(sess, server.url, s.address)
        assert [(o["oid"], o["limitPx"]) for o in oo] == [(oid, "69990")]
