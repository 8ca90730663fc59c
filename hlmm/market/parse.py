"""Hyperliquid websocket payloads -> market events. Pure functions, shared by the live WS client, the
recorder and replay.

Inputs are already JSON-decoded (use :func:`decode` / orjson at the call site). ``ts`` is the local
receive time in float seconds (the engine clock); exchange times (ms) become ``ts_exchange`` in seconds.
Anything malformed raises :class:`ParseError` naming the channel and the problem: a half-parsed book is
never returned, nor a crossed one (best bid >= best ask: a venue book is never crossed, so the message is bad).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, Trade

MARKET_CHANNELS = frozenset({"l2Book", "trades", "bbo", "activeAssetCtx"})
"""Channels that carry market data and produce events."""

IGNORED_CHANNELS = frozenset({"subscriptionResponse", "pong"})
"""Control channels that carry no market data: parse to no events."""

_INF = math.inf


class ParseError(ValueError):
    """A payload that does not have Hyperliquid's shape. ``channel`` says which feed it came from."""

    def __init__(self, channel: str, problem: str) -> None:
        super().__init__(f"{channel}: {problem}")
        self.channel = channel
        self.problem = problem


class ExchangeErrorMessage(ParseError):
    """The exchange sent ``{"channel":"error","data":...}`` (e.g. a bad subscription)."""


def decode(raw: str | bytes) -> Any:
    """Decode one websocket frame with orjson; bad JSON raises ParseError."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ParseError("?", f"invalid JSON: {e}") from None


def _num(x: Any, channel: str, what: str) -> float:
    # Hyperliquid sends numbers as strings; float() also accepts 'nan'/'inf', which the range check rejects.
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParseError(channel, f"{what} is not a number: {x!r}") from None
    if not 0.0 < v < _INF:
        raise ParseError(channel, f"{what} must be finite and > 0, got {x!r}")
    return v


def _time_s(x: Any, channel: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ParseError(channel, f"time must be integer milliseconds, got {x!r}")
    return x / 1000.0


def _coin(data: Any, channel: str) -> str:
    if not isinstance(data, dict):
        raise ParseError(channel, f"data must be an object, got {type(data).__name__}")
    coin = data.get("coin")
    if not isinstance(coin, str) or not coin:
        raise ParseError(channel, f"missing or bad coin: {coin!r}")
    return coin


def _levels(side: Any, channel: str, what: str) -> tuple[BookLevel, ...]:
    if not isinstance(side, list):
        raise ParseError(channel, f"{what} must be a list, got {type(side).__name__}")
    try:
        out = tuple([BookLevel(float(lv["px"]), float(lv["sz"]), lv["n"]) for lv in side])
    except (KeyError, TypeError, ValueError) as e:
        raise ParseError(channel, f"bad {what} level ({type(e).__name__}: {e})") from None
    for lv in out:
        # One comparison chain per level rejects nan, inf, zero and negative values.
        if not (0.0 < lv.px < _INF and 0.0 < lv.sz < _INF) or isinstance(lv.n, bool) or not isinstance(lv.n, int):
            raise ParseError(channel, f"bad {what} level px={lv.px!r} sz={lv.sz!r} n={lv.n!r}")
    return out


def parse_l2book(data: dict, ts: float) -> BookSnapshot:
    """``l2Book`` data ``{"coin","time","levels":[bids best first, asks best first]}`` -> BookSnapshot."""
    coin = _coin(data, "l2Book")
    levels = data.get("levels")
    if not isinstance(levels, list) or len(levels) != 2:
        raise ParseError("l2Book", f"{coin}: levels must be [bids, asks], got {type(levels).__name__}")
    bids = _levels(levels[0], "l2Book", "bid")
    asks = _levels(levels[1], "l2Book", "ask")
    if bids and asks and bids[0].px >= asks[0].px:
        raise ParseError("l2Book", f"{coin}: crossed book, best bid {bids[0].px!r} >= best ask {asks[0].px!r}")
    return BookSnapshot(
        coin=coin,
        ts=ts,
        ts_exchange=_time_s(data.get("time"), "l2Book"),
        bids=bids,
        asks=asks,
    )


def parse_trades(data: list, ts: float) -> list[Trade]:
    """``trades`` data (a list of trades, aggressor side 'B'/'A') -> Trade events in message order."""
    if not isinstance(data, list):
        raise ParseError("trades", f"data must be a list, got {type(data).__name__}")
    out: list[Trade] = []
    for t in data:
        if not isinstance(t, dict):
            raise ParseError("trades", f"trade must be an object, got {type(t).__name__}")
        side = t.get("side")
        if side != "B" and side != "A":
            raise ParseError("trades", f"side must be 'B' or 'A', got {side!r}")
        tid = t.get("tid")
        if isinstance(tid, bool) or not isinstance(tid, int):
            raise ParseError("trades", f"tid must be an integer, got {tid!r}")
        out.append(
            Trade(
                coin=_coin(t, "trades"),
                ts=ts,
                ts_exchange=_time_s(t.get("time"), "trades"),
                px=_num(t.get("px"), "trades", "px"),
                sz=_num(t.get("sz"), "trades", "sz"),
                side=side,
                tid=tid,
            )
        )
    return out


def _bbo_side(lv: Any, what: str) -> tuple[float | None, float]:
    if lv is None:
        return None, 0.0
    if not isinstance(lv, dict):
        raise ParseError("bbo", f"{what} must be a level or null, got {type(lv).__name__}")
    return _num(lv.get("px"), "bbo", f"{what} px"), _num(lv.get("sz"), "bbo", f"{what} sz")


def parse_bbo(data: dict, ts: float) -> Bbo:
    """``bbo`` data ``{"coin","time","bbo":[bid|null, ask|null]}`` -> Bbo (a null side is px None, sz 0)."""
    coin = _coin(data, "bbo")
    pair = data.get("bbo")
    if not isinstance(pair, list) or len(pair) != 2:
        raise ParseError("bbo", f"{coin}: bbo must be [bid|null, ask|null], got {pair!r}")
    bid_px, bid_sz = _bbo_side(pair[0], "bid")
    ask_px, ask_sz = _bbo_side(pair[1], "ask")
    if bid_px is not None and ask_px is not None and bid_px >= ask_px:
        raise ParseError("bbo", f"{coin}: crossed, bid {bid_px!r} >= ask {ask_px!r}")
    return Bbo(coin, ts, _time_s(data.get("time"), "bbo"), bid_px, bid_sz, ask_px, ask_sz)


def _signed(x: Any, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParseError("activeAssetCtx", f"{what} is not a number: {x!r}") from None
    if not math.isfinite(v):
        raise ParseError("activeAssetCtx", f"{what} must be finite, got {x!r}")
    return v


def parse_asset_ctx(data: dict, ts: float) -> AssetCtx:
    """``activeAssetCtx`` data ``{"coin","ctx":{markPx, oraclePx, funding, openInterest, ...}}`` -> AssetCtx.

    The message has no exchange time, so AssetCtx carries only ``ts``. Funding may be negative."""
    coin = _coin(data, "activeAssetCtx")
    ctx = data.get("ctx")
    if not isinstance(ctx, dict):
        raise ParseError("activeAssetCtx", f"{coin}: ctx must be an object, got {type(ctx).__name__}")
    oi = ctx.get("openInterest", "0")
    open_interest = _signed(oi, "openInterest")
    if open_interest < 0:
        raise ParseError("activeAssetCtx", f"openInterest must be >= 0, got {oi!r}")
    return AssetCtx(
        coin=coin,
        ts=ts,
        mark_px=_num(ctx.get("markPx"), "activeAssetCtx", "markPx"),
        oracle_px=_num(ctx.get("oraclePx"), "activeAssetCtx", "oraclePx"),
        funding=_signed(ctx.get("funding"), "funding"),
        open_interest=open_interest,
    )


def parse_ws_message(msg: dict, ts: float) -> list[MarketEvent]:
    """Dispatch one decoded message on ``channel``. Control channels give []; unknown channels and the
    exchange's ``error`` channel raise (callers route user/order channels elsewhere first)."""
    if not isinstance(msg, dict):
        raise ParseError("?", f"message must be an object, got {type(msg).__name__}")
    channel = msg.get("channel")
    data: Any = msg.get("data")  # untrusted: each parser checks its shape and raises ParseError
    if channel == "l2Book":
        return [parse_l2book(data, ts)]
    if channel == "trades":
        # list is invariant; this list is fresh and the caller owns it, so list[Trade] is a list[MarketEvent].
        return parse_trades(data, ts)  # type: ignore[return-value]
    if channel == "bbo":
        return [parse_bbo(data, ts)]
    if channel == "activeAssetCtx":
        return [parse_asset_ctx(data, ts)]
    if channel in IGNORED_CHANNELS:
        return []
    if channel == "error":
        raise ExchangeErrorMessage("error", f"exchange error: {data!r}")
    raise ParseError(str(channel), "not a market data channel")


def parse_ws_raw(raw: str | bytes, ts: float) -> list[MarketEvent]:
    """Decode (orjson) and parse one raw frame."""
    return parse_ws_message(decode(raw), ts)
