"""A small fake Hyperliquid (aiohttp, 127.0.0.1 only) for adapter/REST/WS tests.

/info, /exchange (signatures verified with ``recover_l1_signer``), /ws (greeting, subscribe, ping, post). Message
shapes follow ``../shared/reference/hyperliquid-api.md``. Deliberately simple: ALO rejection on cross, min value,
resting orders, cancels, batchModify (new oid, same cloid), scheduleCancel (optionally refused), fills on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from hlmm.venue.hyperliquid.signing import recover_l1_signer

META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
                     {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
                     {"name": "OLD", "szDecimals": 2, "maxLeverage": 3, "isDelisted": True}]}
META_HYNA = {"universe": [{"name": "hyna:HYPE", "szDecimals": 2, "maxLeverage": 10},
                          {"name": "hyna:BTC", "szDecimals": 5, "maxLeverage": 20}]}
PERP_DEXS = [None, {"name": "hyna", "fullName": "Hyena", "deployer": "0x" + "11" * 20}]
SCHEDULE_TOO_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."
SCHEDULE_REFUSAL = "Cannot set scheduled cancel time until enough volume traded. Required: $1000000. Traded: $12.5."


class FakeHL:
    def __init__(self, signer: str, account: str | None = None) -> None:
        self.signer = signer.lower()
        self.account = (account or signer).lower()
        self.books: dict[str, tuple[float, float]] = {"BTC": (100000.0, 100001.0), "hyna:HYPE": (30.0, 30.01)}
        self.coins: dict[int, str] = {0: "BTC", 1: "ETH", 110000: "hyna:HYPE", 110001: "hyna:BTC"}
        self.orders: dict[int, dict] = {}
        self.next_oid = 1000
        self.next_tid = 1
        self.position: dict[str, tuple[float, float]] = {}
        self.fills: list[dict] = []
        self.nonces: set[int] = set()
        self.actions: list[dict] = []
        self.info_requests: list[dict] = []
        self.cap, self.used = 10_500, 100
        self.refuse_schedule = False
        self.schedule_error: str | None = None  # any other refusal text, e.g. "Too many scheduled cancel ..."
        self.schedule_times: list[int | None] = []
        self.ignore_posts = False
        self.http_status: int | None = None  # force an HTTP status on /exchange
        self.exchange_delay_s = 0.0
        self.ws_clients: list[tuple[web.WebSocketResponse, list[dict]]] = []
        self.n_ws_connects = 0
        self.pings = 0
        self.app = web.Application()
        self.app.router.add_post("/info", self._info_http)
        self.app.router.add_post("/exchange", self._exchange_http)
        self.app.router.add_get("/ws", self._ws)
        self.runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> FakeHL:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        await self.drop_ws()
        if self.runner is not None:
            await self.runner.cleanup()

    async def drop_ws(self) -> None:
        for ws, _ in list(self.ws_clients):
            with contextlib.suppress(Exception):
                await ws.close()
        self.ws_clients.clear()

    # ---- pushes -----------------------------------------------------------------------------------------
    async def push(self, channel: str, data: Any, match: dict | None = None) -> None:
        sub_type = {"user": "userEvents"}.get(channel, channel)
        msg = orjson.dumps({"channel": channel, "data": data}).decode()
        for ws, subs in list(self.ws_clients):
            if any(s.get("type") == sub_type and all(s.get(k) == v for k, v in (match or {}).items()) for s in subs):
                with contextlib.suppress(Exception):
                    await ws.send_str(msg)

    async def _order_update(self, o: dict, status: str) -> None:
        order = {"coin": o["coin"], "side": "B" if o["is_buy"] else "A", "limitPx": o["px"], "sz": o["sz"],
                 "oid": o["oid"], "timestamp": 1, "origSz": o["orig_sz"]}
        if o.get("cloid"):
            order["cloid"] = o["cloid"]
        await self.push("orderUpdates", [{"order": order, "status": status, "statusTimestamp": 2}])

    async def fill(self, oid: int, sz: float, *, crossed: bool = False, tid: int | None = None,
                   via: str = "userFills", snapshot: bool = False) -> dict:
        o = self.orders[oid]
        tid = tid if tid is not None else self.next_tid
        self.next_tid += 1
        f = {"coin": o["coin"], "px": o["px"], "sz": f"{sz:g}", "side": "B" if o["is_buy"] else "A", "time": 10**13,
             "startPosition": "0", "dir": "Open Long", "closedPnl": "0", "hash": "0x0", "oid": oid,
             "crossed": crossed, "fee": "-0.0001" if not crossed else "0.01", "tid": tid, "feeToken": "USDC"}
        self.fills.append(f)
        left = float(o["sz"]) - sz
        pos, _entry = self.position.get(o["coin"], (0.0, 0.0))
        self.position[o["coin"]] = (pos + (sz if o["is_buy"] else -sz), float(o["px"]))
        if left <= 1e-12:
            del self.orders[oid]
            await self._order_update(o, "filled")
        else:
            o["sz"] = f"{left:g}"
        if via == "userFills":
            await self.push("userFills", {"isSnapshot": snapshot, "user": self.account, "fills": [f]})
        else:
            await self.push("user", {"fills": [f]})
        return f

    # ---- /info ------------------------------------------------------------------------------------------
    async def _info_http(self, req: web.Request) -> web.Response:
        body = await req.json()
        return web.json_response(self.info(body))

    def info(self, body: dict) -> Any:
        self.info_requests.append(body)
        t = body.get("type")
        if t == "meta":
            return META_HYNA if body.get("dex") == "hyna" else META
        if t == "perpDexs":
            return PERP_DEXS
        if t == "userRateLimit":
            return {"cumVlm": "500.0", "nRequestsUsed": self.used, "nRequestsCap": self.cap, "nRequestsSurplus": 0}
        if t == "clearinghouseState":
            aps = [{"type": "oneWay", "position": {"coin": c, "szi": f"{p:g}", "entryPx": f"{e:g}"}}
                   for c, (p, e) in self.position.items() if p]
            return {"assetPositions": aps, "marginSummary": {"accountValue": "1000.0"}, "time": 1}
        if t == "openOrders":
            return [{"coin": o["coin"], "limitPx": o["px"], "oid": o["oid"], "side": "B" if o["is_buy"] else "A",
                     "sz": o["sz"], "timestamp": 1} for o in self.orders.values()]
        if t == "userFills":
            return list(self.fills)
        if t == "userFillsByTime":  # the live runner rebuilds the UTC day from it at start-up
            start, end = body.get("startTime", 0), body.get("endTime") or 2**62
            return [f for f in self.fills if start <= f.get("time", 0) <= end][:2000]
        if t == "orderStatus":
            ref = body.get("oid")
            for o in self.orders.values():
                if o["oid"] == ref or o.get("cloid") == ref:
                    return {"status": "order", "order": {"order": {"coin": o["coin"], "oid": o["oid"],
                                                                   "cloid": o.get("cloid"), "sz": o["sz"]},
                                                         "status": "open", "statusTimestamp": 1}}
            return {"status": "unknownOid"}
        if t == "candleSnapshot":
            return [{"t": 1000 * 60 * i, "T": 1000 * 60 * (i + 1) - 1, "s": body["req"]["coin"], "i": "1m",
                     "o": "100", "h": "101", "l": "99", "c": f"{100 + (i % 3) * 0.1:.1f}", "v": "1", "n": 3}
                    for i in range(30)]
        if t == "l2Book":
            bid, ask = self.books.get(body["coin"], (1.0, 2.0))
            return {"coin": body["coin"], "time": 1, "levels": [[{"px": f"{bid:g}", "sz": "1", "n": 1}],
                                                                 [{"px": f"{ask:g}", "sz": "1", "n": 1}]]}
        return {"error": f"unknown info type {t}"}

    # ---- /exchange --------------------------------------------------------------------------------------
    async def _exchange_http(self, req: web.Request) -> web.Response:
        if self.exchange_delay_s:
            await asyncio.sleep(self.exchange_delay_s)
        if self.http_status is not None:
            return web.Response(status=self.http_status, text="forced")
        body = await req.json()
        return web.json_response(await self.exchange(body))

    async def exchange(self, body: dict) -> Any:
        action, nonce = body["action"], body["nonce"]
        signer = recover_l1_signer(action, nonce, body.get("vaultAddress"), body.get("expiresAfter"),
                                   body["signature"], False)
        if signer != self.signer:
            return {"status": "err", "response": f"User or API Wallet {signer} does not exist."}
        if nonce in self.nonces:
            return {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
        self.nonces.add(nonce)
        self.actions.append(action)
        t = action["type"]
        if t == "order":
            self.used += len(action["orders"])
            return {"status": "ok", "response": {"type": "order", "data": {
                "statuses": [await self._place(w) for w in action["orders"]]}}}
        if t == "cancelByCloid":
            self.used += len(action["cancels"])
            st = []
            for c in action["cancels"]:
                o = next((o for o in self.orders.values() if o.get("cloid") == c["cloid"]), None)
                st.append(await self._cancel(o))
            return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": st}}}
        if t == "cancel":
            self.used += len(action["cancels"])
            st = [await self._cancel(self.orders.get(c["o"])) for c in action["cancels"]]
            return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": st}}}
        if t == "batchModify":
            self.used += len(action["modifies"])
            st = []
            for m in action["modifies"]:
                ref = m["oid"]
                o = next((o for o in self.orders.values() if o["oid"] == ref or o.get("cloid") == ref), None)
                if o is None:
                    st.append({"error": "Cannot modify canceled or filled order"})
                    continue
                del self.orders[o["oid"]]
                await self._order_update(o, "canceled")
                st.append(await self._place(m["order"]))
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": st}}}
        if t == "scheduleCancel":
            self.used += 1
            if self.refuse_schedule:
                return {"status": "err", "response": SCHEDULE_REFUSAL}
            if self.schedule_error is not None:
                return {"status": "err", "response": self.schedule_error}
            t_req = action.get("time")
            if t_req is not None and t_req < time.time() * 1000 + 5000:  # the exchange's own clock, at arrival
                return {"status": "err", "response": SCHEDULE_TOO_EARLY}
            self.schedule_times.append(t_req)
            return {"status": "ok", "response": {"type": "default"}}
        if t == "noop":
            return {"status": "ok", "response": {"type": "default"}}
        return {"status": "err", "response": f"unknown action {t}"}

    async def _place(self, w: dict) -> dict:
        coin = self.coins[w["a"]]
        px, sz = float(w["p"]), float(w["s"])
        bid, ask = self.books.get(coin, (0.0, float("inf")))
        tif = w["t"]["limit"]["tif"]
        if tif == "Alo" and ((w["b"] and px >= ask) or (not w["b"] and px <= bid)):
            return {"error": f"Post only order would have immediately matched, bbo was {bid:g}@{ask:g}. "
                             f"asset={w['a']}"}
        if px * sz < 10:
            return {"error": "Order must have minimum value of $10."}
        oid = self.next_oid
        self.next_oid += 1
        o = {"coin": coin, "oid": oid, "cloid": w.get("c"), "is_buy": w["b"], "px": w["p"], "sz": w["s"],
             "orig_sz": w["s"]}
        self.orders[oid] = o
        await self._order_update(o, "open")
        res: dict = {"oid": oid}
        if w.get("c"):
            res["cloid"] = w["c"]
        return {"resting": res}

    async def _cancel(self, o: dict | None) -> Any:
        if o is None:
            return {"error": "Order was never placed, already canceled, or filled."}
        del self.orders[o["oid"]]
        await self._order_update(o, "canceled")
        return "success"

    # ---- /ws --------------------------------------------------------------------------------------------
    async def _ws(self, req: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        subs: list[dict] = []
        entry = (ws, subs)
        self.ws_clients.append(entry)
        self.n_ws_connects += 1
        await ws.send_str("Websocket connection established.")
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                m = orjson.loads(msg.data)
                method = m.get("method")
                if method == "subscribe":
                    subs.append(m["subscription"])
                    await ws.send_str(orjson.dumps({"channel": "subscriptionResponse", "data": m}).decode())
                elif method == "ping":
                    self.pings += 1
                    await ws.send_str('{"channel":"pong"}')
                elif method == "post" and not self.ignore_posts:
                    r = m["request"]
                    if r["type"] == "action":
                        resp = {"type": "action", "payload": await self.exchange(r["payload"])}
                    else:
                        resp = {"type": "info", "payload": {"type": r["payload"]["type"],
                                                            "data": self.info(r["payload"])}}
                    await ws.send_str(orjson.dumps({"channel": "post", "data": {"id": m["id"],
                                                                                "response": resp}}).decode())
        finally:
            if entry in self.ws_clients:
                self.ws_clients.remove(entry)
        return ws
