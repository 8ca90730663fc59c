"""Hyperliquid websocket client (``websockets``): subscriptions, heartbeat, reconnect, and ``post`` requests.

- Delivers every data message as ``on_message(ts_local, channel, data)``; ``ts_local`` is ``clock()`` at receipt.
- Ignores the plain-text greeting ``Websocket connection established.``, ``pong`` and subscription acks.
- Heartbeat: ``{"method":"ping"}`` when nothing was sent for ``ping_interval_s`` (the server drops a connection
  it has heard nothing from for 60 s) and when nothing was received for ``silence_s``; a connection silent for
  ``dead_s`` even after a ping is closed and replaced.
- Reconnects forever with exponential backoff and jitter, re-sending every subscription. Hyperliquid does not
  replay order updates on resubscribe, so every disconnect and reconnect is reported through
  ``on_status(ts, connected, detail)``: the owner must re-sync orders and position from REST after a reconnect.
- ``post(request_type, payload, timeout, fallback)``: WS post with id matching; on timeout or disconnect the
  ``fallback`` coroutine (normally the REST call) is awaited instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import websockets

from hlmm.venue.hyperliquid.errors import ClientError, RateLimitError, RequestTimeout, ServerError, TransportError
from hlmm.venue.supervise import Backoff, TaskState, supervised

GREETING = "Websocket connection established."
PING_INTERVAL_S = 50.0

OnMessage = Callable[[float, str, Any], None]
OnStatus = Callable[[float, bool, str], None]


class _NullLog:
    def _noop(self, event: str, **kw: Any) -> None:
        return None

    debug = info = warning = error = _noop


class WsClient:
    """One websocket connection with automatic reconnect. Create, ``subscribe``, then ``await start()``."""

    def __init__(
        self,
        url: str,
        on_message: OnMessage,
        on_status: OnStatus | None = None,
        *,
        ping_interval_s: float = PING_INTERVAL_S,
        silence_s: float = 20.0,
        dead_s: float = 35.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        log: Any = None,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"websocket url must start with ws:// or wss://, got {url!r}")
        if not 0 < silence_s < dead_s:
            raise ValueError(f"need 0 < silence_s < dead_s, got {silence_s}, {dead_s}")
        self.url = url
        self._on_message = on_message
        self._on_status = on_status
        self.ping_interval_s = ping_interval_s
        self.silence_s = silence_s
        self.dead_s = dead_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._clock = clock
        self._rng = random.Random(seed)
        self.log = log if log is not None else _NullLog()
        self._subs: list[dict] = []
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._ids = itertools.count(1)
        self._posts: dict[int, asyncio.Future[Any]] = {}
        self._last_send = 0.0
        self._last_recv = 0.0
        # counters (tests and the status line read them)
        self.n_connects = 0
        self.n_disconnects = 0
        self.n_pings = 0
        self.n_fallbacks = 0
        self.n_bad_frames = 0
        self.n_loop_failures = 0
        self.last_error = ""

    # ---- public API -----------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscriptions(self) -> list[dict]:
        return list(self._subs)

    async def subscribe(self, subscription: dict) -> None:
        """Remember ``subscription`` (re-sent after every reconnect) and send it now if connected."""
        if subscription in self._subs:
            return
        self._subs.append(subscription)
        if self.connected:
            with contextlib.suppress(Exception):  # a failure here means a reconnect, which resubscribes
                await self._send({"method": "subscribe", "subscription": subscription})

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            # Supervised: _run handles connection errors itself; anything else escaping it (a bug) is logged and
            # the loop restarted with backoff instead of leaving the bot without market and user data.
            self._task = asyncio.create_task(
                supervised("ws", self._run, self._run_failed, Backoff(self.backoff_base_s, self.backoff_max_s),
                           log=self.log), name=f"ws {self.url}")

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def post(
        self, request_type: str, payload: dict, timeout_s: float,
        fallback: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """Send a WS post request; returns the info ``data`` or the action reply. Falls back on timeout/disconnect."""
        if request_type not in ("info", "action"):
            raise ValueError(f"request_type must be 'info' or 'action', got {request_type!r}")
        conn = self._conn
        if conn is None or not self.connected:
            if fallback is None:
                raise TransportError("websocket not connected")
            self.n_fallbacks += 1
            return await fallback()
        pid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._posts[pid] = fut
        try:
            await self._send({"method": "post", "id": pid, "request": {"type": request_type, "payload": payload}})
            resp = await asyncio.wait_for(fut, timeout_s)
        except (TimeoutError, TransportError, websockets.ConnectionClosed, OSError) as e:
            if fallback is None:
                if isinstance(e, TimeoutError):
                    raise RequestTimeout(f"ws post {request_type}: no reply within {timeout_s:g} s") from None
                raise TransportError(f"ws post {request_type}: {type(e).__name__}: {e}") from None
            self.n_fallbacks += 1
            self.log.warning("ws_post_fallback", request_type=request_type, error=type(e).__name__)
            return await fallback()
        finally:
            self._posts.pop(pid, None)
        return self._post_result(resp)

    async def close(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._fail_posts("websocket closed")

    # ---- internals ------------------------------------------------------------------------------------
    def _run_failed(self, st: TaskState, e: BaseException) -> None:
        self.n_loop_failures += 1
        was_up = self._conn is not None or self.connected
        self._down(was_up, f"ws loop failed: {st.last_error}")

    @staticmethod
    def _post_result(resp: Any) -> Any:
        if not isinstance(resp, dict):
            raise ServerError(0, f"bad ws post response {resp!r:.200}")
        kind, payload = resp.get("type"), resp.get("payload")
        if kind == "error":
            text = str(payload)
            if "429" in text or "rate limit" in text.lower():
                raise RateLimitError(f"ws post: {text}")
            raise ClientError(0, text)
        if kind == "info":
            return payload.get("data") if isinstance(payload, dict) else payload
        if kind == "action":
            return payload
        raise ServerError(0, f"unknown ws post response type {kind!r}")

    async def _send(self, msg: dict) -> None:
        conn = self._conn
        if conn is None:
            raise TransportError("websocket not connected")
        await conn.send(orjson.dumps(msg).decode())
        self._last_send = time.monotonic()

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * (2 ** min(attempt, 30)))
        return base * (0.5 + 0.5 * self._rng.random())  # jitter: many clients must not reconnect in lockstep

    def _status(self, connected: bool, detail: str) -> None:
        if self._on_status is not None:
            try:
                self._on_status(self._clock(), connected, detail)
            except Exception as e:  # the owner's bug must not kill the connection loop
                self.log.error("ws_status_callback_failed", error=repr(e))

    def _fail_posts(self, why: str) -> None:
        for fut in self._posts.values():
            if not fut.done():
                fut.set_exception(TransportError(why))
        self._posts.clear()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            detail = "closed"
            was_up = False
            try:
                async with websockets.connect(
                    self.url, ping_interval=None, open_timeout=self.open_timeout_s, max_size=None,
                    close_timeout=2.0,
                ) as conn:
                    self._conn = conn
                    now = time.monotonic()
                    self._last_recv = self._last_send = now
                    for sub in self._subs:
                        await self._send({"method": "subscribe", "subscription": sub})
                    attempt = 0
                    was_up = True
                    self.n_connects += 1
                    self._connected.set()
                    self._status(True, "connected" if self.n_connects == 1 else "reconnected")
                    hb = asyncio.create_task(self._heartbeat(conn))
                    try:
                        async for raw in conn:
                            self._last_recv = time.monotonic()
                            self._on_raw(raw)
                    finally:
                        hb.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await hb
                    detail = "connection closed by peer"
            except asyncio.CancelledError:
                self._down(was_up, "closed by owner")
                raise
            except Exception as e:
                detail = f"{type(e).__name__}: {e}"
            self._down(was_up, detail)
            if self._closing:
                break
            delay = self._backoff(attempt)
            attempt += 1
            self.log.warning("ws_reconnect", url=self.url, detail=detail, delay_s=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)

    def _down(self, was_up: bool, detail: str) -> None:
        self._conn = None
        self._connected.clear()
        self.last_error = detail
        self._fail_posts(f"websocket disconnected: {detail}")
        if was_up:
            self.n_disconnects += 1
            self._status(False, detail)

    async def _heartbeat(self, conn: Any) -> None:
        tick = min(1.0, self.silence_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - self._last_recv >= self.dead_s:
                self.log.warning("ws_dead", url=self.url, silent_s=round(now - self._last_recv, 1))
                await conn.close(code=4000, reason="heartbeat timeout")
                return
            if now - self._last_send >= self.ping_interval_s or (
                now - self._last_recv >= self.silence_s and now - self._last_send >= self.silence_s / 2
            ):
                self.n_pings += 1
                with contextlib.suppress(Exception):
                    await self._send({"method": "ping"})

    def _on_raw(self, raw: str | bytes) -> None:
        ts = self._clock()
        if raw == GREETING or (isinstance(raw, bytes) and raw == GREETING.encode()):
            return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.n_bad_frames += 1
            self.log.warning("ws_bad_frame", frame=str(raw)[:200])
            return
        if not isinstance(msg, dict):
            self.n_bad_frames += 1
            return
        channel = msg.get("channel")
        if channel in ("pong", "subscriptionResponse"):
            return
        data = msg.get("data")
        if channel == "post":
            if isinstance(data, dict):
                pid = data.get("id")
                fut = self._posts.get(pid) if isinstance(pid, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(data.get("response"))
            return
        if not isinstance(channel, str):
            self.n_bad_frames += 1
            return
        try:
            self._on_message(ts, channel, data)
        except Exception as e:  # a consumer bug must not kill the feed; it is logged loudly
            self.log.error("ws_consumer_failed", channel=channel, error=repr(e))
