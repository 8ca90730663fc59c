"""Raw websocket capture: gzip text, one line per message: ``<local receive time, integer ns> <raw JSON>``.

The JSON is the exchange's message exactly as received, so a capture replays through the same parsers as
the live client (format_version 1, see docs/data-format.md). Synthetic streams use the same format.
"""

from __future__ import annotations

import gzip
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from hlmm.market.events import AssetCtx, BookSnapshot, MarketEvent, Trade
from hlmm.market.parse import MARKET_CHANNELS, ParseError, parse_ws_message

FORMAT_NAME = "hlmm-raw-ws"
FORMAT_VERSION = 1
DEFAULT_HISTORY_S = 2.0
# Written by ``hlmm record --raw`` at every (re)connection of the Hyperliquid feed: the reader then cuts
# subscription history exactly as the recorder did (trades older than the connection minus ``history_s``).
# Captures without it (other tools, the shared samples) fall back to the first-book rule.
CONNECTED_MARKER = '{"channel":"hlmmConnected","data":{}}'

"""Trades older than the first book by more than this are subscription history, not live flow."""
DEFAULT_MAX_TIDS = 200_000
_MAX_PENDING = 10_000


class RawWsFormatError(ValueError):
    """A capture line that is not ``<int ns> <json>``; names the file and line."""


class BoundedSet:
    """Remembers the last ``maxlen`` keys (FIFO eviction): enough to catch re-sent subscription batches."""

    def __init__(self, maxlen: int = DEFAULT_MAX_TIDS) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self._set: set[Any] = set()
        self._order: deque[Any] = deque()
        self._maxlen = maxlen

    def add(self, key: Any) -> bool:
        """Add ``key``; False when it was already present."""
        if key in self._set:
            return False
        self._set.add(key)
        self._order.append(key)
        if len(self._order) > self._maxlen:
            self._set.discard(self._order.popleft())
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._set)


@dataclass(slots=True)
class ReadStats:
    """What a reader dropped, so a replay can say how much of a file it used."""

    lines: int = 0
    events: int = 0
    dup_trades: int = 0
    history_trades: int = 0
    stale_books: int = 0  # duplicate or out-of-order book/bbo (exchange time not newer than the last one)
    skipped_lines: int = 0  # non-market channels and plain-text notices


# ---- writing --------------------------------------------------------------------------------


class RawWsWriter:
    """Append-only capture writer. ``flush()`` makes written lines survive a crash of the process."""

    def __init__(self, path: str | Path, compresslevel: int = 6) -> None:
        self.path = Path(path)
        # The writer owns the file for its lifetime (closed by close()/__exit__).
        self._f = gzip.open(self.path, "ab", compresslevel=compresslevel)  # noqa: SIM115
        self.lines = 0

    def write(self, ts_ns: int, raw_json: str | bytes) -> None:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or ts_ns < 0:
            raise ValueError(f"ts_ns must be a non-negative int (local receive time in ns), got {ts_ns!r}")
        raw = raw_json.encode() if isinstance(raw_json, str) else raw_json
        if b"\n" in raw or b"\r" in raw:
            raise ValueError("raw_json must be one line (a newline would split the message)")
        self._f.write(b"%d %s\n" % (ts_ns, raw))
        self.lines += 1

    def write_message(self, ts_ns: int, msg: Any) -> None:
        """Write a message object (serialized compactly with orjson)."""
        self.write(ts_ns, orjson.dumps(msg))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> RawWsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ts_to_ns(ts: float) -> int:
    """Integer ns whose correctly rounded ``ns / 10**9`` is exactly ``ts``, so events survive a round trip.

    ``ns / 1e9`` would round twice (ns -> float, then the division); int / int rounds once."""
    ns = round(Fraction(ts) * 1_000_000_000)
    if ns / 1_000_000_000 != ts:
        raise ValueError(f"no integer ns maps exactly to ts={ts!r}")
    return ns


def _ms(ts_exchange: float) -> int:
    ms = round(ts_exchange * 1000.0)
    if ms / 1000.0 != ts_exchange:
        raise ValueError(f"ts_exchange {ts_exchange!r} is not a whole millisecond (Hyperliquid times are ms)")
    return ms


def hl_num(x: float) -> str:
    """Number as Hyperliquid prints it: shortest round-trip decimal, at least one decimal ('105055.0')."""
    if not math.isfinite(x):
        raise ValueError(f"cannot format {x!r}")
    s = repr(float(x))
    if "e" in s or "E" in s:  # repr uses exponents for tiny/huge values; Hyperliquid never does
        s = f"{x:.10f}".rstrip("0")
        if s.endswith("."):
            s += "0"
    return s


_ZERO_HASH = "0x" + "0" * 64
_SYNTH_USERS = ["0x" + "1" * 40, "0x" + "2" * 40]


def book_message(ev: BookSnapshot) -> dict[str, Any]:
    """An ``l2Book`` message shaped like Hyperliquid's (key order as the exchange sends it)."""
    return {
        "channel": "l2Book",
        "data": {
            "coin": ev.coin,
            "levels": [
                [{"n": lv.n, "px": hl_num(lv.px), "sz": hl_num(lv.sz)} for lv in ev.bids],
                [{"n": lv.n, "px": hl_num(lv.px), "sz": hl_num(lv.sz)} for lv in ev.asks],
            ],
            "time": _ms(ev.ts_exchange),
        },
    }


def trades_message(trades: list[Trade]) -> dict[str, Any]:
    """A ``trades`` message; synthetic trades get a zero hash and placeholder users."""
    return {
        "channel": "trades",
        "data": [
            {
                "coin": t.coin,
                "hash": _ZERO_HASH,
                "px": hl_num(t.px),
                "side": t.side,
                "sz": hl_num(t.sz),
                "tid": t.tid,
                "time": _ms(t.ts_exchange),
                "users": _SYNTH_USERS,
            }
            for t in trades
        ],
    }


def asset_ctx_message(ev: AssetCtx) -> dict[str, Any]:
    """An ``activeAssetCtx`` message (the fields the parser reads; a synthetic ctx has no premium or volume)."""
    return {
        "channel": "activeAssetCtx",
        "data": {
            "coin": ev.coin,
            "ctx": {
                "funding": hl_num(ev.funding),
                "openInterest": hl_num(ev.open_interest),
                "oraclePx": hl_num(ev.oracle_px),
                "markPx": hl_num(ev.mark_px),
            },
        },
    }


def write_events(writer: RawWsWriter, events: Iterable[MarketEvent]) -> int:
    """Write books, trades and asset contexts as Hyperliquid messages; consecutive trades received together
    (same ``ts``) share one message, as on the real feed. Returns the number of lines written."""
    n0 = writer.lines
    batch: list[Trade] = []

    def flush_batch() -> None:
        if batch:
            writer.write_message(ts_to_ns(batch[0].ts), trades_message(batch))
            batch.clear()

    for ev in events:
        if isinstance(ev, Trade):
            if batch and batch[0].ts != ev.ts:
                flush_batch()
            batch.append(ev)
        elif isinstance(ev, BookSnapshot):
            flush_batch()
            writer.write_message(ts_to_ns(ev.ts), book_message(ev))
        elif isinstance(ev, AssetCtx):
            flush_batch()
            writer.write_message(ts_to_ns(ev.ts), asset_ctx_message(ev))
        else:
            raise TypeError(f"write_events supports BookSnapshot, Trade and AssetCtx, got {type(ev).__name__}")
    flush_batch()
    return writer.lines - n0


# ---- reading --------------------------------------------------------------------------------


def _coin_of(msg: dict) -> str | None:
    data = msg.get("data")
    return data.get("coin") if isinstance(data, dict) else None


def read_raw_ws(
    path: str | Path,
    coin: str | None = None,
    *,
    history_s: float = DEFAULT_HISTORY_S,
    max_tids: int = DEFAULT_MAX_TIDS,
    stats: ReadStats | None = None,
) -> Iterator[MarketEvent]:
    """Events of a capture in file (receive) order, ``ts`` = local ns / 1e9.

    Cleaning, per coin: trades are de-duplicated by tid (bounded memory); trades whose exchange time is more
    than ``history_s`` before the coin's first book/bbo are subscription history and dropped (a capture with
    no book uses its first line's local time instead); a book/bbo whose exchange time is not newer than the
    previous one of its kind is a duplicate and dropped. Non-market channels and plain-text lines are skipped.
    """
    st = stats if stats is not None else ReadStats()
    seen_tids = BoundedSet(max_tids)
    first_book: dict[str, float] = {}
    last_time: dict[tuple[str, str], float] = {}
    pending: list[Trade] = []  # trades of coins with no book yet: judged once their first book arrives
    first_local: float | None = None
    connected: float | None = None  # local time of the latest CONNECTED_MARKER

    def live(t: Trade, ref: float) -> bool:
        if connected is not None:
            ref = connected
        if t.ts_exchange < ref - history_s:
            st.history_trades += 1
            return False
        return True

    with gzip.open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            st.lines += 1
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            sp = line.find(b" ")
            try:
                ns = int(line[:sp]) if sp > 0 else None
            except ValueError:
                ns = None
            if ns is None:
                raise RawWsFormatError(f"{path}:{lineno}: expected '<int ns> <json>', got {line[:60]!r}")
            ts = ns / 1_000_000_000
            if first_local is None:
                first_local = ts
            payload = line[sp + 1 :]
            if not payload.startswith(b"{"):
                st.skipped_lines += 1  # e.g. "Websocket connection established."
                continue
            try:
                msg = orjson.loads(payload)
            except orjson.JSONDecodeError as e:
                raise RawWsFormatError(f"{path}:{lineno}: invalid JSON: {e}") from None
            channel = msg.get("channel")
            if channel == "hlmmConnected":
                connected = ts
                for t in pending:  # trades held for a first book: the connection decides now
                    if live(t, ts):
                        st.events += 1
                        yield t
                pending = []
                continue
            if channel not in MARKET_CHANNELS:
                st.skipped_lines += 1
                continue
            if coin is not None and channel != "trades" and _coin_of(msg) != coin:
                continue
            try:
                events = parse_ws_message(msg, ts)
            except ParseError as e:
                raise ParseError(e.channel, f"{path}:{lineno}: {e.problem}") from None
            for ev in events:
                if isinstance(ev, Trade):
                    if coin is not None and ev.coin != coin:
                        continue
                    if not seen_tids.add((ev.coin, ev.tid)):
                        st.dup_trades += 1
                        continue
                    ref = first_book.get(ev.coin)
                    if connected is not None:
                        if live(ev, connected):
                            st.events += 1
                            yield ev
                        continue
                    if ref is None:
                        if len(pending) >= _MAX_PENDING:
                            raise RawWsFormatError(f"{path}:{lineno}: {_MAX_PENDING} trades before any book")
                        pending.append(ev)
                        continue
                    if live(ev, ref):
                        st.events += 1
                        yield ev
                    continue
                if channel != "activeAssetCtx":
                    key = (ev.coin, channel)  # type: ignore[union-attr]
                    tx = ev.ts_exchange  # type: ignore[union-attr]
                    prev = last_time.get(key)
                    if prev is not None and tx <= prev:
                        st.stale_books += 1
                        continue
                    last_time[key] = tx
                    c = ev.coin  # type: ignore[union-attr]
                    if c not in first_book:
                        first_book[c] = tx
                        keep = [t for t in pending if t.coin == c]
                        if keep:
                            pending = [t for t in pending if t.coin != c]
                            for t in keep:
                                if live(t, tx):
                                    st.events += 1
                                    yield t
                st.events += 1
                yield ev
    for t in pending:  # coins that never got a book: judge against the capture's start
        if live(t, first_book.get(t.coin, first_local or t.ts)):
            st.events += 1
            yield t
