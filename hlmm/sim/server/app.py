"""aiohttp shell of the local exchange: HTTP ``/info`` and ``/exchange``, WS ``/ws``, a Binance-style bookTicker
stream, the market clock, periodic work and fault injection. All exchange state lives in ``ExchangeCore``; this
module only does I/O and timing (every core call runs on the one event loop, so there are no races).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from hlmm.market.events import RefQuote, Timer
from hlmm.market.instrument import parse_coin
from hlmm.sim.server import journal, validate
from hlmm.sim.server.core import (
    SUB_CHANNEL,
    VALID_SUBSCRIPTIONS,
    ExchangeCore,
    RequestError,
    num,
)
from hlmm.sim.server.faults import FaultStep
from hlmm.sim.server.journal import StateError, StateStore, read_snapshot, tick_changes_state, write_snapshot
from hlmm.sim.server.limits import (
    MSG_WS_TOO_MANY_CONNECTIONS,
    MSG_WS_TOO_MANY_MESSAGES,
    MSG_WS_TOO_MANY_NEW,
    MSG_WS_TOO_MANY_POSTS,
    MSG_WS_TOO_MANY_SUBS,
    MSG_WS_TOO_MANY_USERS,
    IpWeightLimiter,
    RollingCount,
    WsLimits,
    action_weight,
    info_weight,
)
from hlmm.sim.server.market import MarketClock, MarketSource, retime, scale_prices

log = logging.getLogger(__name__)

GREETING = "Websocket connection established."
DEFAULT_PORT = 8765
_TICK_S = 0.05
_CTX_EVERY_S = 1.0
WARM_HISTORY_S = 1800.0  # wall seconds of market history served at start (30 one-minute candles)
MAX_HISTORY_SOURCE_S = 6 * 3600.0  # bound the generation cost at high speed-ups


class ServerError(RuntimeError):
    """The server cannot start or load its state."""


def save_state(core: ExchangeCore, path: str | Path) -> None:
    """Atomically write the core (accounts, orders, books, nonces) to ``path`` (a snapshot without a journal)."""
    write_snapshot(core, path, 0)


def load_state(path: str | Path) -> ExchangeCore:
    """Read a snapshot written by ``save_state``/``StateStore`` without its journal (pickle: only load files this
    tool wrote). ``StateStore(path).load()`` also replays the journal."""
    try:
        return read_snapshot(path)[1]
    except StateError as e:
        raise ServerError(str(e)) from None


@dataclass
class _Out:
    due: float
    text: str
    post: bool = False  # a WS post reply (counted in flight until sent)


class _Conn:
    """One websocket client: its subscriptions and an ordered send queue (delays/reordering apply here)."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, ip: str) -> None:
        self.ws = ws
        self.kind = kind
        self.ip = ip
        self.subs: dict[str, dict] = {}
        self.queue: asyncio.Queue[_Out | None] = asyncio.Queue()
        self.last_send = time.monotonic()
        self.task: asyncio.Task | None = None
        self.inflight = 0  # post replies queued, not yet sent


class LocalExchangeServer:
    """The local Hyperliquid-protocol exchange. ``await start()``, ``await stop()``; ``url`` is the REST base URL."""

    def __init__(
        self,
        core: ExchangeCore,
        sources: list[MarketSource] | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        speed: float = 1.0,
        faults: list[FaultStep] | None = None,
        state_path: str | Path | None = None,
        ip_weight_per_min: int = 1200,
        ws_idle_timeout_s: float = 60.0,
        binance_map: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        warm_history_s: float = WARM_HISTORY_S,
        store: StateStore | None = None,
        ws_limits: WsLimits | None = None,
    ) -> None:
        """``state_path`` alone journals this ``core`` from scratch there; ``store`` (a loaded ``StateStore``, see
        ``build_server``) continues an existing journal."""
        if not (math.isfinite(warm_history_s) and warm_history_s >= 0):
            raise ServerError(f"warm_history_s must be finite and >= 0, got {warm_history_s!r}")
        self.warm_history_s = warm_history_s
        self.core = core
        self.sources = list(sources or [])
        self.host, self.port = host, port
        self.speed = speed
        self.faults = sorted(faults or [], key=lambda f: f.at_s)
        self.state_path = Path(state_path) if state_path else (store.path if store is not None else None)
        self._store_loaded = store is not None
        self.store = store if store is not None else (StateStore(self.state_path) if self.state_path else None)
        self.ws_limits = ws_limits or WsLimits()
        self._ws_new = RollingCount()
        self._ws_msgs = RollingCount()
        self.ip_limit = IpWeightLimiter(ip_weight_per_min)
        self.ws_idle_timeout_s = ws_idle_timeout_s
        self.binance_map = {k.lower(): v for k, v in (binance_map or {}).items()}
        self.clock = clock
        self._rng = random.Random(seed)
        self._conns: set[_Conn] = set()
        self._subs: dict[tuple[str, str], set[_Conn]] = {}
        self._running = asyncio.Event()
        self._up = True
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._t0 = 0.0
        self._ws_delay_s = 0.0
        self._ws_delay_until = 0.0
        self._reorder_window_s = 0.0
        self._reorder_until = 0.0
        self._ip_limited_until = 0.0
        self.fault_log: list[dict] = []  # (time, fault, params) as applied
        self.clock_src = MarketClock(self.sources, speed) if self.sources else None
        self.binance_seq = 0
        self._px_scale: dict[str, float] = {}  # the jump fault: coin (or '*') -> price factor

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/info", self._http_info)
        app.router.add_post("/exchange", self._http_exchange)
        app.router.add_get("/ws", self._ws_hl)
        app.router.add_get("/binance/ws/{stream}", self._ws_binance)
        app.router.add_get("/binance/stream", self._ws_binance)
        app.router.add_get("/health", self._http_health)
        return app

    async def start(self) -> None:
        if self.store is not None:
            self.store.start(self.core, time.monotonic(), fresh=not self._store_loaded)
        self._running.set()
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._start_site()
        self._t0 = self.clock()
        if self.clock_src is not None:
            self.clock_src.start(self._t0)
            self._seed_history(self._t0)
            self._tasks.append(asyncio.create_task(self._market_loop(), name="market"))
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="tick"))
        if self.faults:
            self._tasks.append(asyncio.create_task(self._fault_loop(), name="faults"))

    def _seed_history(self, wall0: float) -> None:
        """Serve candles/recent trades from before the start: each source's history, mapped onto the wall clock
        like its live events (``wall0 + (ts - start) / speed``). Without it ``candleSnapshot`` holds a minute or
        two and a client's warm start waits for its timeout."""
        if self.warm_history_s <= 0:
            return
        span = min(self.warm_history_s * self.speed, MAX_HISTORY_SOURCE_S)
        for src in self.sources:
            if src.history is None or src.start_ts is None or src.coin not in self.core.books:
                continue
            mids, trades = src.history(span)
            st, sp = src.start_ts, self.speed
            n = self._do("h", wall0, (
                src.coin, [(wall0 + (t - st) / sp, m) for t, m in mids],
                [replace(tr, ts=wall0 + (tr.ts - st) / sp, ts_exchange=wall0 + (tr.ts_exchange - st) / sp)
                 for tr in trades]))
            self.core.count("history_trades", n)

    async def _start_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:  # ephemeral port: read back what the OS gave us
            server = self._site._server  # aiohttp exposes no public accessor
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._up = True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.drop_ws("all")
        if self.store is not None:
            self.store.close(self.core)  # final snapshot, empty journal
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ state changes (journaled)
    def _do(self, kind: str, now: float, payload: Any = None) -> Any:
        """Apply one state-changing input to the core, journaling it first when the server has a state file."""
        if self.store is not None:
            self.store.record(kind, now, payload)
        return journal.apply(self.core, kind, now, payload)

    def _info(self, body: Any) -> Any:
        """One info request (RequestError -> 422); a user seen for the first time is journaled (it tells a
        wrong-network signature apart from a new account)."""
        u = body.get("user") if isinstance(body, dict) else None
        new_user = validate.is_address(u) and u.lower() not in self.core.seen_users  # type: ignore[union-attr]
        now = self.clock()
        out = self.core.handle_info(body, now)
        if new_user and self.store is not None and u.lower() in self.core.seen_users:  # type: ignore[union-attr]
            self.store.record("u", now, u.lower())  # type: ignore[union-attr]
        return out

    # ------------------------------------------------------------------ HTTP
    def _ip(self, request: web.Request) -> str:
        return request.remote or "?"

    async def _gate(self) -> None:
        """Hold requests while paused."""
        if not self._running.is_set():
            await self._running.wait()

    def _charge_ip(self, ip: str, weight: int) -> bool:
        now = self.clock()
        if now < self._ip_limited_until:
            return False
        ok = self.ip_limit.charge(ip, weight, now)
        if not ok:
            self.core.count("ip_rate_limited")
        return ok

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RequestError("Failed to parse the request body as JSON") from None

    async def _http_info(self, request: web.Request) -> web.Response:
        await self._gate()
        try:
            body = await self._read_json(request)
        except RequestError as e:
            return web.Response(status=400, text=str(e))
        t = body.get("type") if isinstance(body, dict) else None
        if not self._charge_ip(self._ip(request), info_weight(t if isinstance(t, str) else "")):
            return web.json_response(None, status=429)
        try:
            out = self._info(body)
        except RequestError as e:
            return web.Response(status=422, text=str(e))
        except Exception:  # a bug of this server, not bad input (bad input is a RequestError)
            log.exception("local exchange: /info handler failed")
            self.core.count("internal_errors")
            return web.Response(status=500, text="Internal server error")
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def _http_exchange(self, request: web.Request) -> web.Response:
        await self._gate()
        try:
            body = await self._read_json(request)
        except RequestError as e:
            return web.Response(status=400, text=str(e))
        code, out = self._exchange(body, self._ip(request))
        if code != 200:
            return web.Response(status=code, text=out) if isinstance(out, str) else web.json_response(out, status=code)
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    def _exchange(self, body: Any, ip: str) -> tuple[int, Any]:
        action = body.get("action") if isinstance(body, dict) else None
        n = 1
        if isinstance(action, dict):
            for k in ("orders", "cancels", "modifies"):
                if isinstance(action.get(k), list):
                    n = len(action[k])
        if not self._charge_ip(ip, action_weight(n)):
            return 429, None
        try:
            out = self._do("x", self.clock(), body)
        except RequestError as e:
            return 422, str(e)
        except Exception:  # a bug of this server, not bad input (bad input is a RequestError)
            log.exception("local exchange: /exchange handler failed")
            self.core.count("internal_errors")
            return 500, "Internal server error"
        finally:
            self._dispatch()
        return 200, out

    async def _http_health(self, request: web.Request) -> web.Response:
        return web.json_response(self.report())

    # ------------------------------------------------------------------ WS (Hyperliquid)
    def _ip_conns(self, ip: str) -> list[_Conn]:
        return [c for c in self._conns if c.kind == "hl" and c.ip == ip]

    def _ws_refusal(self, ip: str) -> str | None:
        """Why a new Hyperliquid WS connection from ``ip`` is refused (reference §6 per-IP limits), or None."""
        lim = self.ws_limits
        if len(self._ip_conns(ip)) >= lim.max_connections:
            return MSG_WS_TOO_MANY_CONNECTIONS.format(n=lim.max_connections)
        if self._ws_new.count(ip, time.monotonic()) >= lim.new_connections_per_min:
            return MSG_WS_TOO_MANY_NEW.format(n=lim.new_connections_per_min)
        return None

    async def _ws_hl(self, request: web.Request) -> web.StreamResponse:
        ip = self._ip(request)
        refusal = self._ws_refusal(ip)
        if refusal is not None:
            self.core.count("ws_connections_refused")
            return web.Response(status=429, text=refusal)
        self._ws_new.add(ip, time.monotonic())
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Conn(ws, "hl", ip)
        self._add_conn(conn)
        self._send(conn, GREETING)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._gate()
                mono = time.monotonic()
                self._ws_msgs.add(conn.ip, mono)
                if self._ws_msgs.count(conn.ip, mono) > self.ws_limits.messages_per_min:
                    self.core.count("ws_messages_refused")
                    self._send_json(conn, {"channel": "error", "data": MSG_WS_TOO_MANY_MESSAGES.format(
                        n=self.ws_limits.messages_per_min)})
                    continue
                try:
                    self._on_ws_text(conn, msg.data)
                except Exception:  # a bug of this server: answer, log, keep the connection
                    log.exception("local exchange: websocket message handler failed")
                    self.core.count("internal_errors")
                    self._send_json(conn, {"channel": "error", "data": "Internal server error"})
        finally:
            self._remove_conn(conn)
        return ws

    def _on_ws_text(self, conn: _Conn, text: str) -> None:
        try:
            m = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._send_json(conn, {"channel": "error", "data": f"Error parsing JSON into valid websocket request: "
                                                                f"{text[:200]}"})
            return
        method = m.get("method") if isinstance(m, dict) else None
        if method == "ping":
            self._send_json(conn, {"channel": "pong"})
        elif method in ("subscribe", "unsubscribe"):
            self._on_subscribe(conn, method, m.get("subscription"))
        elif method == "post":
            self._on_post(conn, m)
        else:
            self._send_json(conn, {"channel": "error", "data": f"Error parsing JSON into valid websocket request: "
                                                                f"{text[:200]}"})

    def _sub_key(self, sub: Any) -> tuple[str, str] | None:
        """(channel, routing key) for a valid subscription, else None."""
        if not isinstance(sub, dict) or sub.get("type") not in VALID_SUBSCRIPTIONS:
            return None
        t = sub["type"]
        for f in VALID_SUBSCRIPTIONS[t]:
            if not isinstance(sub.get(f), str):
                return None
        if t == "l2Book" and sub.get("nSigFigs") not in (None, 2, 3, 4, 5):
            return None
        if "coin" in VALID_SUBSCRIPTIONS[t]:
            if sub["coin"] not in self.core.registry:
                return None
            return SUB_CHANNEL[t], sub["coin"]
        if "user" in VALID_SUBSCRIPTIONS[t]:
            u = sub["user"]
            if len(u) != 42 or not u.startswith("0x"):
                return None
            return SUB_CHANNEL[t], u.lower()
        dex = sub.get("dex") or ""
        try:
            self.core.dex_index(dex)
        except RequestError:
            return None
        return SUB_CHANNEL[t], dex

    def _on_subscribe(self, conn: _Conn, method: str, sub: Any) -> None:
        key = self._sub_key(sub)
        sjson = orjson.dumps(sub).decode() if sub is not None else "null"
        if key is None:
            self._send_json(conn, {"channel": "error", "data": f"Invalid subscription {sjson}"})
            return
        skey = orjson.dumps(sub, option=orjson.OPT_SORT_KEYS).decode()
        if method == "subscribe":
            if skey in conn.subs:
                self._send_json(conn, {"channel": "error", "data": f"Already subscribed: {sjson}"})
                return
            refusal = self._sub_refusal(conn, sub)
            if refusal is not None:
                self.core.count("ws_subscriptions_refused")
                self._send_json(conn, {"channel": "error", "data": refusal})
                return
            conn.subs[skey] = sub
            self._subs.setdefault(key, set()).add(conn)
            self._send_json(conn, {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}})
            for channel, data in self.core.subscription_snapshot(sub):
                self._send_json(conn, {"channel": channel, "data": data})
        else:
            if skey not in conn.subs:
                self._send_json(conn, {"channel": "error", "data": f"Already unsubscribed: {sjson}"})
                return
            del conn.subs[skey]
            if not any(self._sub_key(s) == key for s in conn.subs.values()):
                self._subs.get(key, set()).discard(conn)
            self._send_json(conn, {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}})

    def _sub_refusal(self, conn: _Conn, sub: dict) -> str | None:
        """Per-IP subscription limits (reference §6): total subscriptions, distinct users of user feeds."""
        lim = self.ws_limits
        conns = self._ip_conns(conn.ip)
        if sum(len(c.subs) for c in conns) >= lim.max_subscriptions:
            return MSG_WS_TOO_MANY_SUBS.format(n=lim.max_subscriptions)
        user = sub.get("user")
        if isinstance(user, str):
            users = {s["user"].lower() for c in conns for s in c.subs.values() if isinstance(s.get("user"), str)}
            if user.lower() not in users and len(users) >= lim.max_users:
                return MSG_WS_TOO_MANY_USERS.format(n=lim.max_users)
        return None

    def _on_post(self, conn: _Conn, m: dict) -> None:
        pid = m.get("id")
        req = m.get("request")
        if isinstance(pid, bool) or not isinstance(pid, int) or not isinstance(req, dict):
            self._send_json(conn, {"channel": "error", "data": "Invalid post request"})
            return
        kind, payload = req.get("type"), req.get("payload")
        response: dict[str, Any]
        if sum(c.inflight for c in self._ip_conns(conn.ip)) >= self.ws_limits.max_inflight_posts:
            self.core.count("ws_posts_refused")
            response = {"type": "error", "payload": MSG_WS_TOO_MANY_POSTS.format(n=self.ws_limits.max_inflight_posts)}
        elif kind == "info":
            t = payload.get("type") if isinstance(payload, dict) else None
            if not self._charge_ip(conn.ip, info_weight(t if isinstance(t, str) else "")):
                response = {"type": "error", "payload": "429 Too Many Requests"}
            else:
                try:
                    data = self._info(payload)
                    response = {"type": "info", "payload": {"type": t, "data": data}}
                except RequestError as e:
                    response = {"type": "error", "payload": f"422 Unprocessable Entity: {e}"}
        elif kind == "action":
            code, out = self._exchange(payload, conn.ip)
            if code == 200:
                response = {"type": "action", "payload": out}
            elif code == 429:
                response = {"type": "error", "payload": "429 Too Many Requests"}
            else:
                reason = "Unprocessable Entity" if code == 422 else "Internal Server Error"
                response = {"type": "error", "payload": f"{code} {reason}: {out}"}
        else:
            response = {"type": "error", "payload": f"Unknown post request type {kind!r}"}
        self._send(conn, orjson.dumps({"channel": "post", "data": {"id": pid, "response": response}}).decode(),
                   post=True)

    # ------------------------------------------------------------------ WS (Binance-style bookTicker)
    async def _ws_binance(self, request: web.Request) -> web.StreamResponse:
        if "stream" in request.match_info:
            streams, combined = [request.match_info["stream"]], False
        else:
            streams, combined = request.query.get("streams", "").split("/"), True
        symbols = []
        for s in streams:
            sym, _, kind = s.partition("@")
            if kind == "bookTicker":
                symbols.append(sym.lower())
        coins = [self._binance_coin(s) for s in symbols]
        if not symbols or any(c is None for c in coins):
            raise web.HTTPBadRequest(text=f"unknown stream(s) {streams}; known symbols map to coins with a market")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        conn = _Conn(ws, "binance", self._ip(request))
        conn.subs = {s: {"symbol": s, "coin": c, "combined": combined} for s, c in zip(symbols, coins, strict=True)}
        self._add_conn(conn)
        for c in coins:
            self._subs.setdefault(("binance", c), set()).add(conn)  # type: ignore[arg-type]
        try:
            async for _ in ws:
                pass
        finally:
            self._remove_conn(conn)
        return ws

    def _binance_coin(self, symbol: str) -> str | None:
        if symbol in self.binance_map:
            return self.binance_map[symbol]
        base = symbol.upper().removesuffix("USDT")
        # Prefer a coin with a market: the first dex's coin, then HIP-3 coins with the same base.
        cands = [c for c in self.core.registry.coins() if parse_coin(c).base.upper() == base]
        with_mkt = [c for c in cands if self.core.books[c].true_mid is not None] or cands
        with_mkt.sort(key=lambda c: (":" in c, c))
        return with_mkt[0] if with_mkt else None

    def _publish_binance(self, coin: str, now: float) -> None:
        conns = self._subs.get(("binance", coin))
        mid = self.core.books[coin].true_mid
        if not conns or mid is None:
            return
        self.binance_seq += 1
        half = mid * 0.5e-4  # one basis point wide, derived from the simulated mid
        t_ms = round(now * 1000)
        for conn in list(conns):
            for sym, sub in conn.subs.items():
                if sub["coin"] != coin:
                    continue
                data = {"e": "bookTicker", "u": self.binance_seq, "s": sym.upper(), "b": num(mid - half, 6),
                        "B": "10", "a": num(mid + half, 6), "A": "10", "T": t_ms, "E": t_ms}
                self._send_json(conn, {"stream": f"{sym}@bookTicker", "data": data} if sub["combined"] else data)

    # ------------------------------------------------------------------ connections and sending
    def _add_conn(self, conn: _Conn) -> None:
        self._conns.add(conn)
        conn.task = asyncio.create_task(self._sender(conn))
        self.core.count(f"ws_connections_{conn.kind}")

    def _remove_conn(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        for s in self._subs.values():
            s.discard(conn)
        if conn.task is not None:
            conn.queue.put_nowait(None)

    def _send_json(self, conn: _Conn, obj: Any) -> None:
        self._send(conn, orjson.dumps(obj).decode())

    def _send(self, conn: _Conn, text: str, post: bool = False) -> None:
        now = time.monotonic()
        due = now + self._ws_delay_s if self.clock() < self._ws_delay_until else now
        conn.queue.put_nowait(_Out(due, text, post))
        if post:
            conn.inflight += 1

    async def _sender(self, conn: _Conn) -> None:
        held: list[_Out] = []
        try:
            while True:
                item = await conn.queue.get()
                if item is None:
                    return
                if self.clock() < self._reorder_until and self._reorder_window_s > 0:
                    # Collect a window of messages and send them shuffled.
                    held = [item]
                    end = time.monotonic() + self._reorder_window_s
                    while (rem := end - time.monotonic()) > 0:
                        try:
                            nxt = await asyncio.wait_for(conn.queue.get(), rem)
                        except TimeoutError:
                            break
                        if nxt is None:
                            return
                        held.append(nxt)
                    self._rng.shuffle(held)
                else:
                    held = [item]
                for out in held:
                    wait = out.due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not self._running.is_set():
                        await self._running.wait()
                    if conn.ws.closed:
                        return
                    await conn.ws.send_str(out.text)
                    conn.last_send = time.monotonic()
                    if out.post:
                        conn.inflight -= 1
                held = []
        except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
            return

    def _dispatch(self) -> None:
        """Broadcast the core's pending messages to subscribers."""
        for channel, key, data in self.core.drain():
            conns = self._subs.get((channel, key))
            if not conns:
                continue
            text = orjson.dumps({"channel": channel, "data": data}).decode()
            for conn in list(conns):
                self._send(conn, text)

    async def drop_ws(self, target: str = "all") -> int:
        """Close websocket connections (``all``, ``hl`` or ``binance``); returns how many were closed."""
        n = 0
        for conn in list(self._conns):
            if target in ("all", conn.kind):
                n += 1
                self._remove_conn(conn)
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1006 if target != "all" else 1001)
        return n

    # ------------------------------------------------------------------ loops
    async def _market_loop(self) -> None:
        assert self.clock_src is not None
        while True:
            nxt = self.clock_src.next()
            if nxt is None:
                return  # source exhausted: the market stays where it is (a stale book)
            due, ev = nxt
            delay = due - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self._running.is_set():
                t = self.clock()
                await self._running.wait()
                self.clock_src.shift(self.clock() - t)
            now = self.clock()
            factor = self._px_scale.get(getattr(ev, "coin", None) or "", self._px_scale.get("*", 1.0))
            if factor != 1.0 and not isinstance(ev, RefQuote | Timer):
                ev = scale_prices(ev, factor, self.core.registry.get(ev.coin))
            self._do("m", now, retime(ev, now))
            self.core.flush_books(now)
            self._publish_binance(ev.coin, now)  # type: ignore[union-attr]
            self._dispatch()

    async def _tick_loop(self) -> None:
        last_ctx = 0.0
        while True:
            await asyncio.sleep(_TICK_S)
            if not self._running.is_set():
                continue
            now = self.clock()
            if self.store is not None and tick_changes_state(self.core, now):
                self._do("t", now)
            else:
                self.core.tick(now)  # publication only: nothing to journal
            if now - last_ctx >= _CTX_EVERY_S:
                last_ctx = now
                self._do("c", now)
            self._dispatch()
            if self.store is not None:
                self.store.maybe_compact(self.core, time.monotonic())
            mono = time.monotonic()
            for conn in list(self._conns):
                if conn.kind == "hl" and mono - conn.last_send > self.ws_idle_timeout_s:
                    self._remove_conn(conn)  # Hyperliquid closes connections it has sent nothing to for 60 s
                    with contextlib.suppress(Exception):
                        await conn.ws.close()

    async def _fault_loop(self) -> None:
        for step in self.faults:
            delay = self._t0 + step.at_s - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.apply_fault(step)

    # ------------------------------------------------------------------ faults
    async def apply_fault(self, step: FaultStep) -> None:
        """Apply one fault now (scenario steps call this at their ``at_s``; tests may call it directly)."""
        p = step.params
        now = self.clock()
        self.fault_log.append({"t": now - self._t0, "fault": step.fault, "params": dict(p)})
        self.core.count(f"fault_{step.fault}")
        if step.fault == "drop_ws":
            await self.drop_ws(p["target"])
        elif step.fault == "delay_ws":
            self._ws_delay_s, self._ws_delay_until = p["delay_ms"] / 1000.0, now + p["duration_s"]
        elif step.fault == "reorder_ws":
            self._reorder_window_s, self._reorder_until = p["window_ms"] / 1000.0, now + p["duration_s"]
        elif step.fault == "freeze_book":
            self._do("f", now, {"freeze": [p["coin"], now + p["duration_s"]]})
        elif step.fault == "reject_orders":
            self._do("f", now, {"reject_fraction": p["fraction"]})
            self._later(p["duration_s"], lambda: self._do("f", self.clock(), {"reject_fraction": 0.0}))
        elif step.fault == "rate_limit":
            if p["kind"] == "ip":
                self._ip_limited_until = now + p["duration_s"]
            else:
                self._do("f", now, {"forced_rate_limit": True})
                self._later(p["duration_s"], lambda: self._do("f", self.clock(), {"forced_rate_limit": False}))
        elif step.fault == "pause":
            await self.pause(p["duration_s"])
        elif step.fault == "restart":
            await self.restart(p["down_s"])
        elif step.fault == "jump":
            key = p.get("coin") or "*"
            self._px_scale[key] = self._px_scale.get(key, self._px_scale.get("*", 1.0)) * (1 + p["bps"] / 1e4)

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            fn()

        self._tasks.append(asyncio.create_task(run()))

    async def pause(self, seconds: float) -> None:
        """Freeze everything (market, replies, WS sends) for ``seconds``, then resume where it stopped."""
        self._running.clear()
        await asyncio.sleep(seconds)
        self._running.set()

    async def restart(self, down_s: float, state_path: str | Path | None = None) -> None:
        """Crash-and-restart with state kept: snapshot to disk, drop every connection, stop listening for
        ``down_s``, reload the state from disk, listen again."""
        path = Path(state_path) if state_path else (self.state_path or Path(f".hlmm-exchange-{self.port}.state"))
        use_store = self.store is not None and path == self.store.path
        if use_store:
            self.store.compact(self.core, time.monotonic())  # type: ignore[union-attr]
        else:
            save_state(self.core, path)
        self._running.clear()
        self._up = False
        await self.drop_ws("all")
        if self._site is not None:
            await self._site.stop()
        await asyncio.sleep(down_s)
        self.core = self.store.load() if use_store else load_state(path)  # type: ignore[union-attr]
        self.core.count("restarts")
        if self.clock_src is not None:
            self.clock_src.shift(down_s)
        await self._start_site()
        self._running.set()

    # ------------------------------------------------------------------ reporting
    def report(self) -> dict:
        return {"time": self.clock(), "uptime_s": self.clock() - self._t0, "up": self._up,
                "accounts": sorted(self.core.accounts), "resting": self.core.resting_count(),
                "orders": self.core.order_counts(), "stats": dict(self.core.stats),
                "ws_connections": len(self._conns), "faults": list(self.fault_log),
                "market": self.clock_src.labels if self.clock_src else []}


class ServerThread:
    """Run a ``LocalExchangeServer`` on its own event loop in a background thread (for synchronous clients such as
    the official SDK, and for tests). Use as a context manager; ``call(coro_fn)`` runs a coroutine on its loop."""

    def __init__(self, make: Callable[[], LocalExchangeServer]) -> None:
        self._make = make
        self.loop = asyncio.new_event_loop()
        self.server: LocalExchangeServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="local-exchange", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()

        async def boot() -> LocalExchangeServer:
            s = self._make()
            await s.start()
            return s

        self.server = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(30)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def call(self, fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def sync(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run a plain function on the server loop (safe access to the core)."""

        async def run() -> Any:
            return fn()

        return self.call(run, timeout)

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.call(self.server.stop, 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
