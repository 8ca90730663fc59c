"""Hyperliquid REST clients (aiohttp): ``InfoClient`` for /info reads, ``ExchangeClient`` for signed /exchange actions.

Every request has a timeout. HTTP 429 raises RateLimitError, 5xx ServerError, other 4xx ClientError, a timeout
RequestTimeout and a broken connection TransportError: callers never see a bare aiohttp exception.

Signed actions can optionally travel over the websocket ``post`` channel (``ExchangeClient.attach_ws``) with a REST
fallback. Re-sending the *same* signed body is idempotent: the exchange refuses a duplicate nonce, so a fallback
after a WS timeout can never place an order twice. If the fallback is refused for a duplicate nonce the first copy
did arrive and its result is unknown: :class:`UncertainOutcome` tells the caller to reconcile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.errors import (
    ActionError,
    CancelResult,
    ClientError,
    OrderResult,
    RateLimitError,
    RequestTimeout,
    ResponseFormatError,
    ServerError,
    TransportError,
    parse_cancel_response,
    parse_default_response,
    parse_order_response,
)
from hlmm.venue.hyperliquid.nonce import NonceManager
from hlmm.venue.hyperliquid.signing import signed_l1_request
from hlmm.venue.hyperliquid.wallet import Wallet

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
DEFAULT_TIMEOUT_S = 10.0


class UncertainOutcome(TransportError):
    """An action was (probably) received but its reply was lost: reconcile the affected orders."""


def ws_url_for(base_url: str) -> str:
    """``https://host`` -> ``wss://host/ws`` (``http`` -> ``ws``), the Hyperliquid convention."""
    u = base_url.rstrip("/")
    if u.startswith("https://"):
        return "wss://" + u[len("https://"):] + "/ws"
    if u.startswith("http://"):
        return "ws://" + u[len("http://"):] + "/ws"
    raise ValueError(f"base url must start with http:// or https://, got {base_url!r}")


class _Http:
    """A lazily created aiohttp session plus the status-code mapping shared by both clients."""

    def __init__(self, base_url: str, timeout_s: float, session: aiohttp.ClientSession | None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base url must start with http:// or https://, got {base_url!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0, got {timeout_s}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None
        self.n_requests = 0

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(json_serialize=lambda o: orjson.dumps(o).decode())
            self._own_session = True
        return self._session

    async def post(self, path: str, body: dict, timeout_s: float | None = None) -> Any:
        url = self.base_url + path
        data = orjson.dumps(body)
        to = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        self.n_requests += 1
        try:
            async with self._sess().post(url, data=data, headers={"Content-Type": "application/json"},
                                         timeout=to) as r:
                text = await r.text()
                status = r.status
        except TimeoutError:
            raise RequestTimeout(f"POST {path}: no reply within {timeout_s or self.timeout_s:g} s") from None
        except aiohttp.ClientError as e:
            raise TransportError(f"POST {path}: {type(e).__name__}: {e}") from None
        if status == 429:
            raise RateLimitError(f"HTTP 429 from {path}: {text[:300]}")
        if status >= 500:
            raise ServerError(status, text)
        if status >= 400:
            raise ClientError(status, text)
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ResponseFormatError(f"POST {path}: reply is not JSON: {text[:300]!r}") from None

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()


class InfoClient:
    """Reads from ``/info``. Query user data with the *account* address (not an agent's)."""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 session: aiohttp.ClientSession | None = None) -> None:
        self._http = _Http(base_url, timeout_s, session)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    async def post(self, body: dict, timeout_s: float | None = None) -> Any:
        return await self._http.post("/info", body, timeout_s)

    async def meta(self, dex: str = "") -> dict:
        return await self.post({"type": "meta", "dex": dex})

    async def perp_dexs(self) -> list[dict | None]:
        return await self.post({"type": "perpDexs"})

    async def meta_and_asset_ctxs(self, dex: str = "") -> list[Any]:
        return await self.post({"type": "metaAndAssetCtxs", "dex": dex})

    async def clearinghouse_state(self, user: str, dex: str = "") -> dict:
        return await self.post({"type": "clearinghouseState", "user": user, "dex": dex})

    async def open_orders(self, user: str, dex: str = "") -> list[dict]:
        return await self.post({"type": "openOrders", "user": user, "dex": dex})

    async def frontend_open_orders(self, user: str, dex: str = "") -> list[dict]:
        return await self.post({"type": "frontendOpenOrders", "user": user, "dex": dex})

    async def user_fills(self, user: str, aggregate_by_time: bool = False) -> list[dict]:
        body: dict = {"type": "userFills", "user": user}
        if aggregate_by_time:
            body["aggregateByTime"] = True
        return await self.post(body)

    async def user_rate_limit(self, user: str) -> dict:
        return await self.post({"type": "userRateLimit", "user": user})

    async def candle_snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        return await self.post({"type": "candleSnapshot",
                                "req": {"coin": coin, "interval": interval, "startTime": start_ms, "endTime": end_ms}})

    async def l2_book(self, coin: str) -> dict:
        return await self.post({"type": "l2Book", "coin": coin})

    async def order_status(self, user: str, oid: int | str) -> dict:
        """By oid (int) or cloid (``0x`` + 32 hex)."""
        ref: int | str = wire.normalize_cloid(oid.lower()) if isinstance(oid, str) else oid
        return await self.post({"type": "orderStatus", "user": user, "oid": ref})

    async def close(self) -> None:
        await self._http.close()


WsPost = Callable[[str, dict, float, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class ExchangeClient:
    """Signs L1 actions and posts them to ``/exchange``; returns typed results."""

    def __init__(
        self,
        base_url: str,
        wallet: Wallet,
        nonce_mgr: NonceManager,
        is_mainnet: bool,
        vault_address: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._http = _Http(base_url, timeout_s, session)
        self.wallet = wallet
        self.nonces = nonce_mgr
        self.is_mainnet = is_mainnet
        self.vault_address = vault_address.lower() if vault_address else None
        self._ws_post: WsPost | None = None
        self.n_actions = 0

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def attach_ws(self, ws_post: WsPost | None) -> None:
        """Send actions through ``ws_post(request_type, payload, timeout, fallback)`` (None: REST only)."""
        self._ws_post = ws_post

    def sign(self, action: dict, expires_after: int | None = None) -> dict:
        """The complete signed /exchange body for ``action`` with a fresh nonce."""
        return signed_l1_request(self.wallet, action, self.nonces.next(), self.vault_address, expires_after,
                                 self.is_mainnet)

    async def post_body(self, body: dict, timeout_s: float | None = None) -> Any:
        """POST an already signed body over REST (raw reply)."""
        return await self._http.post("/exchange", body, timeout_s)

    async def send(self, action: dict, expires_after: int | None = None, timeout_s: float | None = None) -> Any:
        """Sign and send; over the websocket when attached (REST fallback). Returns the raw reply."""
        body = self.sign(action, expires_after)
        self.n_actions += 1
        if self._ws_post is None:
            return await self.post_body(body, timeout_s)
        fell_back = False

        async def fallback() -> Any:
            nonlocal fell_back
            fell_back = True
            return await self.post_body(body, timeout_s)

        try:
            return await self._ws_post("action", body, timeout_s or self._http.timeout_s, fallback)
        except ActionError as e:
            if fell_back and "duplicate nonce" in e.message.lower():
                raise UncertainOutcome(f"{action.get('type')}: WS reply lost, REST resend says the nonce was used") \
                    from None
            raise

    # ---- typed actions ----------------------------------------------------------------------------------
    async def order(self, wires: list[dict], grouping: str = "na") -> list[OrderResult]:
        resp = await self.send(wire.order_action(wires, grouping))
        return parse_order_response(resp, len(wires))

    async def cancel(self, items: list[tuple[int, int]]) -> list[CancelResult]:
        resp = await self.send(wire.cancel_action(items))
        return parse_cancel_response(resp, len(items))

    async def cancel_by_cloid(self, items: list[tuple[int, str]]) -> list[CancelResult]:
        resp = await self.send(wire.cancel_by_cloid_action(items))
        return parse_cancel_response(resp, len(items))

    async def batch_modify(self, items: list[tuple[int | str, dict]]) -> list[OrderResult]:
        resp = await self.send(wire.batch_modify_action(items))
        return parse_order_response(resp, len(items))

    async def schedule_cancel(self, time_ms: int | None) -> None:
        parse_default_response(await self.send(wire.schedule_cancel_action(time_ms)))

    async def update_leverage(self, asset: int, is_cross: bool, leverage: int) -> None:
        parse_default_response(await self.send(wire.update_leverage_action(asset, is_cross, leverage)))

    async def noop(self) -> None:
        parse_default_response(await self.send(wire.noop_action()))

    async def close(self) -> None:
        await self._http.close()


async def gather_settled(*aws: Awaitable[Any]) -> list[Any]:
    """``asyncio.gather`` that returns exceptions as values (used for concurrent, independent reads)."""
    return list(await asyncio.gather(*aws, return_exceptions=True))
