"""Binance USD-M futures reference feed: ``bookTicker`` (+ optional ``aggTrade``) over websocket -> ``RefQuote``.

The symbol is resolved in :mod:`hlmm.market.reference_symbols` (never a default: failure #3 was a feed
hard-wired to ``btcusdt`` while trading HYPE).

The feed only delivers quotes. Staleness maths is the strategy's (``ReferenceSignal``): a stale or disabled feed
contributes nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
import websockets

from hlmm.market.events import RefQuote
from hlmm.market.reference_symbols import (  # re-exported: the feed's historical home
    BINANCE_SYMBOLS,
    HIP3_SAME_UNDERLYING,
    BinanceFeedError,
    known_equivalent,
    reference_mismatch,
    resolve_binance_symbol,
)

__all__ = ["BINANCE_FUTURES_WS", "BINANCE_SYMBOLS", "HIP3_SAME_UNDERLYING", "BinanceFeed", "BinanceFeedError",
           "known_equivalent", "parse_book_ticker", "reference_mismatch", "resolve_binance_symbol"]

BINANCE_FUTURES_WS = "wss://fstream.binance.com"



def parse_book_ticker(symbol: str, data: Any, ts: float) -> RefQuote | None:
    """A ``bookTicker`` payload -> RefQuote, or None if malformed/crossed (never a half-valid quote)."""
    if not isinstance(data, dict):
        return None
    try:
        bid, ask = float(data["b"]), float(data["a"])
        bsz, asz = float(data.get("B", 0.0)), float(data.get("A", 0.0))
        t_ms = data.get("T") or data.get("E")
        tsx = float(t_ms) / 1000.0 if t_ms is not None else ts
    except (KeyError, TypeError, ValueError):
        return None
    if not (0.0 < bid <= ask < float("inf")):
        return None
    return RefQuote(symbol=symbol, ts=ts, ts_exchange=tsx, bid_px=bid, ask_px=ask, bid_sz=bsz, ask_sz=asz)


class BinanceFeed:
    """Combined-stream websocket for one symbol with reconnect (exponential backoff + jitter)."""

    def __init__(
        self,
        symbol: str,
        on_quote: Callable[[RefQuote], object],  # its result, if any, is ignored
        *,
        base_url: str = BINANCE_FUTURES_WS,
        agg_trades: bool = False,
        on_trade: Callable[[str, float, float, float, float, bool], None] | None = None,
        clock: Callable[[], float] = time.time,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        seed: int | None = None,
        log: Any = None,
    ) -> None:
        symbol = (symbol or "").strip().lower()
        if not symbol or not symbol.isalnum() or symbol == "off":
            raise BinanceFeedError(f"Binance symbol must be alphanumeric like 'btcusdt', got {symbol!r}")
        if not base_url.startswith(("ws://", "wss://")):
            raise BinanceFeedError(f"base_url must start with ws:// or wss://, got {base_url!r}")
        self.symbol = symbol
        streams = f"{symbol}@bookTicker" + (f"/{symbol}@aggTrade" if agg_trades else "")
        self.url = f"{base_url.rstrip('/')}/stream?streams={streams}"
        self._on_quote = on_quote
        self._on_trade = on_trade
        self._clock = clock
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._rng = random.Random(seed)
        self.log = log
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = False
        self.last_quote: RefQuote | None = None
        self.n_quotes = 0
        self.n_bad = 0
        self.n_connects = 0

    def is_stale(self, now: float, stale_s: float) -> bool:
        q = self.last_quote
        return q is None or now - q.ts > stale_s

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"binance {self.symbol}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _log(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.warning(event, **kw)

    def on_frame(self, raw: str | bytes) -> None:
        ts = self._clock()
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.n_bad += 1
            return
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        if not isinstance(data, dict):
            self.n_bad += 1
            return
        kind = data.get("e", "bookTicker" if "b" in data and "a" in data else None)
        if kind == "bookTicker":
            q = parse_book_ticker(self.symbol, data, ts)
            if q is None:
                self.n_bad += 1
                return
            self.last_quote = q
            self.n_quotes += 1
            self._on_quote(q)
        elif kind == "aggTrade" and self._on_trade is not None:
            try:
                self._on_trade(self.symbol, ts, float(data["T"]) / 1000.0, float(data["p"]), float(data["q"]),
                               bool(data["m"]))
            except (KeyError, TypeError, ValueError):
                self.n_bad += 1

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                async with websockets.connect(self.url, open_timeout=10.0, close_timeout=2.0) as conn:
                    self.connected = True
                    self.n_connects += 1
                    attempt = 0
                    async for raw in conn:
                        self.on_frame(raw)
                detail = "closed by peer"
            except asyncio.CancelledError:
                self.connected = False
                raise
            except Exception as e:
                detail = f"{type(e).__name__}: {e}"
            self.connected = False
            if self._closing:
                break
            delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** min(attempt, 30))
            delay *= 0.5 + 0.5 * self._rng.random()
            attempt += 1
            self._log("binance_reconnect", symbol=self.symbol, detail=detail, delay_s=round(delay, 3))
            await asyncio.sleep(delay)
