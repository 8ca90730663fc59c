"""Market data recorder: websocket messages -> Parquet partitions (+ optional raw WS capture).

The :class:`Recorder` is the testable core: it is fed ``(local receive ns, message)`` pairs and connection status
changes, and writes files; it never reads a clock (the caller passes times) and opens no socket. The network shell
(:func:`record`) subscribes through the hlmm WS clients and feeds it. Files and their format: ``hlmm.data.parquet``
and docs/data-format.md.

Durability: rows are buffered in memory and flushed every ``flush_s`` (default 2 s) to the current spool file of
their partition, so a crash loses at most one flush interval; files rotate after ``rotate_s`` or ``rotate_bytes``
and at UTC midnight. What a disconnect or a silent feed costs is recorded as gap rows, never papered over.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hlmm.data.parquet import Gap, SpoolFile, event_row, file_name, partition_dir, ref_row
from hlmm.data.raw_ws import CONNECTED_MARKER, BoundedSet, RawWsWriter
from hlmm.market.events import RefQuote, Trade
from hlmm.market.parse import MARKET_CHANNELS, ParseError, parse_ws_message
from hlmm.venue.binance import parse_book_ticker as binance_book_ticker

HL, BINANCE = "hl", "binance"
BOOK_CHANNELS = frozenset({"l2Book", "bbo"})
"""Channels expected to update continuously; silence longer than ``silence_s`` on one is a gap."""


class RecorderError(ValueError):
    """Bad recorder input (unknown coin, malformed message, times going backwards by a lot)."""


@dataclass(slots=True)
class RecordStats:
    """What was recorded (rows written per kind) and what was dropped, and why."""

    rows: dict[str, int] = field(default_factory=dict)  # by kind, summed over coins
    rows_by_coin: dict[str, dict[str, int]] = field(default_factory=dict)
    messages: int = 0
    dup_trades: int = 0
    history_trades: int = 0
    stale_books: int = 0  # book/bbo not newer (exchange time) than the previous one
    ignored: int = 0  # control channels, unsubscribed coins, non-market messages
    parse_errors: int = 0
    gaps: int = 0
    flushes: int = 0
    files: list[str] = field(default_factory=list)  # Parquet files finished
    raw_files: list[str] = field(default_factory=list)

    def add(self, coin: str, kind: str, n: int = 1) -> None:
        self.rows[kind] = self.rows.get(kind, 0) + n
        per = self.rows_by_coin.setdefault(coin, {})
        per[kind] = per.get(kind, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": dict(self.rows), "rows_by_coin": {c: dict(v) for c, v in self.rows_by_coin.items()},
            "messages": self.messages, "dup_trades": self.dup_trades, "history_trades": self.history_trades,
            "stale_books": self.stale_books, "ignored": self.ignored, "parse_errors": self.parse_errors,
            "gaps": self.gaps, "flushes": self.flushes, "files": len(self.files), "raw_files": len(self.raw_files),
        }  # fmt: skip


@dataclass(slots=True)
class _Stream:
    """Rows of one (source, coin, kind) partition: an in-memory buffer and the spool file being written."""

    source: str
    coin: str
    kind: str
    buf: list[dict[str, Any]] = field(default_factory=list)
    buf_ts: list[float] = field(default_factory=list)
    spool: SpoolFile | None = None
    day: str = ""


def parse_book_ticker(msg: Any, ts: float) -> RefQuote:
    """Binance USD-M ``bookTicker`` (plain or combined-stream wrapped) -> RefQuote (symbol from the message);
    malformed or crossed raises ParseError."""
    data = msg.get("data", msg) if isinstance(msg, dict) else None
    sym = data.get("s") if isinstance(data, dict) else None
    if not isinstance(sym, str) or not sym:
        raise ParseError("bookTicker", f"no symbol in {str(msg)[:80]!r}")
    q = binance_book_ticker(sym.lower(), data, ts)
    if q is None:
        raise ParseError("bookTicker", f"{sym}: malformed or crossed quote {str(data)[:120]!r}")
    return q


class Recorder:
    """Buffers parsed market messages per (source, coin, kind) partition and writes Parquet (see module doc).

    ``coins``: Hyperliquid coins recorded (messages for others are ignored). ``ref_symbols``: coin -> Binance
    symbol for coins with a reference feed. Times are integer ns of local receive time, supplied by the caller.
    """

    def __init__(
        self,
        out_dir: str | Path,
        coins: Iterable[str],
        *,
        ref_symbols: dict[str, str] | None = None,
        raw: bool = False,
        flush_s: float = 2.0,
        rotate_s: float = 900.0,
        rotate_bytes: int = 64_000_000,
        silence_s: float = 10.0,
        history_s: float = 2.0,
        max_tids: int = 200_000,
    ) -> None:
        self.coins = list(dict.fromkeys(coins))
        if not self.coins:
            raise RecorderError("no coins to record")
        if not (flush_s > 0 and rotate_s > 0 and rotate_bytes > 0 and silence_s > 0 and history_s >= 0):
            raise RecorderError("flush_s, rotate_s, rotate_bytes, silence_s must be > 0 and history_s >= 0")
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ref_symbols = {c: s.lower() for c, s in (ref_symbols or {}).items()}
        unknown = set(self.ref_symbols) - set(self.coins)
        if unknown:
            raise RecorderError(f"reference symbols given for coins not recorded: {sorted(unknown)}")
        self._coins_of_symbol: dict[str, list[str]] = {}
        for c, s in self.ref_symbols.items():
            self._coins_of_symbol.setdefault(s, []).append(c)
        self._coin_set = set(self.coins)
        self.raw = raw
        self.flush_s, self.rotate_s, self.rotate_bytes = flush_s, rotate_s, rotate_bytes
        self.silence_s, self.history_s = silence_s, history_s
        self.stats = RecordStats()
        self._streams: dict[tuple[str, str, str], _Stream] = {}
        self._seq = 0
        self._seen_tids = BoundedSet(max_tids)
        self._last_tx: dict[tuple[str, str], float] = {}  # (coin, channel) -> last exchange time (book/bbo)
        self._last_local: dict[tuple[str, str, str], tuple[float, float | None]] = {}  # silence tracking
        self._connected_at: dict[str, float] = {}  # source -> local time of the last (re)connect
        self._down_since: dict[str, tuple[float, str]] = {}  # source -> (local time, detail) while disconnected
        self._raw: dict[str, RawWsWriter] = {}
        self._raw_opened: dict[str, float] = {}
        self._next_flush: float | None = None
        self._last_ts = -math.inf
        self.closed = False

    # ---- input ----------------------------------------------------------------------------

    def _clock(self, ts_ns: int) -> float:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int) or ts_ns < 0:
            raise RecorderError(f"ts_ns must be a non-negative int (local receive ns), got {ts_ns!r}")
        if self.closed:
            raise RecorderError("recorder is closed")
        ts = ts_ns / 1_000_000_000
        self._last_ts = max(self._last_ts, ts)
        if self._next_flush is None:
            self._next_flush = ts + self.flush_s
        return ts

    def _raw_write(self, source: str, ts_ns: int, raw: bytes | str | Any) -> None:
        w = self._raw.get(source)
        if w is None:
            d = self.out / "raw"
            d.mkdir(exist_ok=True)
            stamp = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y%m%d-%H%M%S")
            self._seq += 1
            w = RawWsWriter(d / f"{source}-{stamp}-{self._seq:06d}.raw.gz")
            self._raw[source], self._raw_opened[source] = w, ts_ns / 1e9
        if isinstance(raw, (bytes, str)):
            w.write(ts_ns, raw)
        else:
            w.write_message(ts_ns, raw)

    def on_hl_message(self, ts_ns: int, message: bytes | str | dict[str, Any]) -> int:
        """One Hyperliquid WS message (raw text/bytes as received, or already decoded). Returns rows buffered."""
        ts = self._clock(ts_ns)
        self.stats.messages += 1
        msg: Any = None
        bad_json = False
        if isinstance(message, (bytes, str)):
            if message.lstrip()[:1] in (b"{", "{"):
                try:
                    msg = orjson.loads(message)
                except orjson.JSONDecodeError:
                    bad_json = True
        else:
            msg = message
        channel = msg.get("channel") if isinstance(msg, dict) else None
        if channel in MARKET_CHANNELS and HL not in self._connected_at:
            self._mark_connected(HL, ts_ns, ts)  # no on_status before the data: its first message starts it
        if self.raw:
            self._raw_write(HL, ts_ns, message)
        if msg is None:
            if bad_json:
                self.stats.parse_errors += 1
            else:
                self.stats.ignored += 1  # "Websocket connection established."
            return 0
        if channel not in MARKET_CHANNELS:
            # subscriptionResponse/pong, and user channels when the client is shared: not market data.
            self.stats.ignored += 1
            return 0
        try:
            events = parse_ws_message(msg, ts)
        except ParseError:
            # A malformed message is counted and dropped: the raw capture (if on) keeps it for inspection.
            self.stats.parse_errors += 1
            return 0
        n = 0
        for ev in events:
            coin = ev.coin  # type: ignore[union-attr]
            if coin not in self._coin_set:
                self.stats.ignored += 1
                continue
            if isinstance(ev, Trade):
                if not self._seen_tids.add((coin, ev.tid)):
                    self.stats.dup_trades += 1
                    continue
                if ev.ts_exchange < self._connected_at[HL] - self.history_s:
                    self.stats.history_trades += 1  # the subscription's batch of past trades
                    continue
            elif channel in BOOK_CHANNELS:
                key = (coin, channel)
                prev = self._last_tx.get(key)
                if prev is not None and ev.ts_exchange <= prev:  # type: ignore[union-attr]
                    self.stats.stale_books += 1
                    continue
                self._last_tx[key] = ev.ts_exchange  # type: ignore[union-attr]
                self._check_silence(HL, coin, channel, ts, ev.ts_exchange)  # type: ignore[union-attr]
            kind, row = event_row(ev)
            self._buffer(HL, coin, kind, row, ts)
            n += 1
        return n

    def on_binance_message(self, ts_ns: int, message: bytes | str | dict[str, Any]) -> int:
        """One Binance bookTicker message; rows are written under every coin that uses its symbol."""
        ts = self._clock(ts_ns)
        self.stats.messages += 1
        if self.raw:
            self._raw_write(BINANCE, ts_ns, message)
        try:
            msg = orjson.loads(message) if isinstance(message, (bytes, str)) else message
            if isinstance(msg, dict) and "result" in msg and "id" in msg:
                self.stats.ignored += 1  # a subscribe ack
                return 0
            q = parse_book_ticker(msg, ts)
        except (orjson.JSONDecodeError, ParseError):
            self.stats.parse_errors += 1
            return 0
        coins = self._coins_of_symbol.get(q.symbol)
        if not coins:
            self.stats.ignored += 1
            return 0
        self._connected_at.setdefault(BINANCE, ts)
        for coin in coins:
            self._check_silence(BINANCE, coin, "bookTicker", ts, q.ts_exchange)
            self._buffer(BINANCE, coin, "ref", ref_row(q, coin), ts)
        return len(coins)

    def on_ref_quote(self, ts_ns: int, q: RefQuote) -> int:
        """An already parsed reference quote (from :class:`hlmm.venue.binance.BinanceFeed`)."""
        self._clock(ts_ns)
        coins = self._coins_of_symbol.get(q.symbol.lower())
        if not coins:
            self.stats.ignored += 1
            return 0
        self._connected_at.setdefault(BINANCE, q.ts)
        for coin in coins:
            self._check_silence(BINANCE, coin, "bookTicker", q.ts, q.ts_exchange)
            self._buffer(BINANCE, coin, "ref", ref_row(q, coin), q.ts)
        return len(coins)

    def on_binance_raw(self, ts_ns: int, message: bytes | str) -> None:
        """Keep a Binance frame in the raw capture (``raw`` mode); the parsed quote comes via on_ref_quote."""
        self._clock(ts_ns)
        self.stats.messages += 1
        if self.raw:
            self._raw_write(BINANCE, ts_ns, message)

    def on_status(self, ts_ns: int, source: str, connected: bool, detail: str = "") -> None:
        """Connection state of a feed. A disconnect opens a gap for every coin of the source; the reconnect
        closes it (one gap row per coin, channel '*')."""
        ts = self._clock(ts_ns)
        if source not in (HL, BINANCE):
            raise RecorderError(f"source must be {HL!r} or {BINANCE!r}, got {source!r}")
        if not connected:
            self._down_since.setdefault(source, (ts, detail or "disconnect"))
            return
        self._mark_connected(source, ts_ns, ts)
        down = self._down_since.pop(source, None)
        if down is not None:
            self._close_outage(source, down, ts)

    def _mark_connected(self, source: str, ts_ns: int, ts: float) -> None:
        """A (re)connection: trades older than this minus ``history_s`` are the subscription's history. The raw
        capture gets a marker line at the same ns, so its reader applies the very same cut (raw and Parquet
        copies of one recording replay identically)."""
        self._connected_at[source] = ts
        if self.raw and source == HL:
            self._raw_write(HL, ts_ns, CONNECTED_MARKER)

    def _close_outage(self, source: str, down: tuple[float, str], ts: float) -> None:
        start, why = down
        coins = self.coins if source == HL else list(self.ref_symbols)
        for coin in coins:
            self._gap(Gap(source, coin, "*", start, ts, f"disconnect: {why}"))
        # Silence is measured from the reconnect: the outage is already a gap.
        for k in [k for k in self._last_local if k[0] == source]:
            del self._last_local[k]

    def _check_silence(self, source: str, coin: str, channel: str, ts: float, tx: float | None) -> None:
        key = (source, coin, channel)
        prev = self._last_local.get(key)
        if prev is not None and ts - prev[0] > self.silence_s:
            self._gap(Gap(source, coin, channel, prev[0], ts, "silence", prev[1]))
        self._last_local[key] = (ts, tx)

    def _gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        self._buffer(gap.source, gap.coin, "gaps", gap.row(), gap.start_ts)

    def _buffer(self, source: str, coin: str, kind: str, row: dict[str, Any], ts: float) -> None:
        key = (source, coin, kind)
        st = self._streams.get(key)
        if st is None:
            st = self._streams[key] = _Stream(source, coin, kind)
        st.buf.append(row)
        st.buf_ts.append(ts)
        self.stats.add(coin, kind)

    # ---- time-driven work -----------------------------------------------------------------

    def tick(self, ts_ns: int) -> bool:
        """Call often (e.g. every 0.5 s and after messages): flushes when due. Returns True if it flushed."""
        ts = self._clock(ts_ns)
        if self._next_flush is not None and ts >= self._next_flush:
            self.flush(ts)
            return True
        return False

    def flush(self, ts: float | None = None) -> None:
        """Write every buffered row to its spool file and push it to the OS; rotate files that are due."""
        now = self._last_ts if ts is None else ts
        for st in self._streams.values():
            self._flush_stream(st, now)
        for source, w in list(self._raw.items()):
            w.flush()
            if now - self._raw_opened[source] >= self.rotate_s:
                w.close()
                self.stats.raw_files.append(str(w.path))
                del self._raw[source]
        self.stats.flushes += 1
        self._next_flush = now + self.flush_s

    def _flush_stream(self, st: _Stream, now: float) -> None:
        i = 0
        rows, tss = st.buf, st.buf_ts
        while i < len(rows):
            t0 = tss[i]
            day = datetime.fromtimestamp(t0, tz=UTC).strftime("%Y-%m-%d")
            if st.spool is not None and (st.day != day or self._due(st.spool, now)):
                self._finish(st)
            if st.spool is None:
                st.spool, st.day = self._open(st, t0), day
            # Rows up to the next UTC midnight go into this file (date partitions never straddle a day).
            midnight = (math.floor(t0 / 86400.0) + 1) * 86400.0
            j = i + 1
            while j < len(rows) and tss[j] < midnight:
                j += 1
            st.spool.append(rows[i:j])
            i = j
        if st.spool is not None:
            st.spool.flush()
            if self._due(st.spool, now):
                self._finish(st)
        st.buf, st.buf_ts = [], []

    def _due(self, spool: SpoolFile, now: float) -> bool:
        return now - spool.opened_ts >= self.rotate_s or spool.bytes_written >= self.rotate_bytes

    def _open(self, st: _Stream, ts: float) -> SpoolFile:
        d = partition_dir(self.out, st.source, st.coin, ts)
        while True:
            self._seq += 1
            path = d / file_name(st.kind, ts, self._seq)
            if not path.exists():  # a restart into the same directory must not overwrite
                return SpoolFile(path, st.kind, st.source, ts)

    def _finish(self, st: _Stream) -> None:
        if st.spool is not None:
            p = st.spool.close()
            if p is not None:
                self.stats.files.append(str(p))
            st.spool = None

    def close(self, ts_ns: int | None = None) -> RecordStats:
        """Close open gaps, flush everything and turn every spool into a Parquet file. Idempotent."""
        if self.closed:
            return self.stats
        ts = self._clock(ts_ns) if ts_ns is not None else self._last_ts
        if not math.isfinite(ts):
            ts = 0.0
        for source, down in list(self._down_since.items()):
            self._close_outage(source, down, ts)
        self._down_since.clear()
        self.flush(ts)
        for st in self._streams.values():
            self._finish(st)
        for w in self._raw.values():
            w.close()
            self.stats.raw_files.append(str(w.path))
        self._raw.clear()
        self.closed = True
        return self.stats

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_info(self, extra: dict[str, Any] | None = None) -> Path:
        """``recording.json`` at the root: coins, reference symbols, stats (informational; readers ignore it)."""
        info = {"coins": self.coins, "ref_symbols": self.ref_symbols, "stats": self.stats.as_dict(), **(extra or {})}
        p = self.out / "recording.json"
        p.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        return p


# ---- network shell ----------------------------------------------------------------------------

HL_SUBSCRIPTIONS = ("l2Book", "trades", "bbo", "activeAssetCtx")


def resolve_ref_symbols(coins: Iterable[str], binance: str, cfg: Any = None) -> tuple[dict[str, str], list[str]]:
    """Coin -> Binance symbol for ``--binance``: 'auto' (resolve_binance_symbol per coin, config-aware), 'off',
    one SYMBOL (only with a single coin: a symbol is never applied to several coins by accident) or
    'COIN=SYMBOL,...' (SYMBOL may be 'off'). Returns (mapping, one line per coin saying why)."""
    from hlmm.venue.binance import resolve_binance_symbol

    coins = list(coins)
    spec = binance.strip()
    out: dict[str, str] = {}
    why: list[str] = []
    if spec.lower() == "off":
        return {}, [f"{c}: reference feed off (--binance off)" for c in coins]
    if spec.lower() == "auto":
        for c in coins:
            coin_cfg = None
            if cfg is not None and c in getattr(cfg, "coins", {}):
                coin_cfg = cfg.coins[c]
            sym, reason = resolve_binance_symbol(c, coin_cfg)
            why.append(reason)
            if sym is not None:
                out[c] = sym
        return out, why
    if "=" in spec:
        for item in spec.split(","):
            c, sep, sym = item.partition("=")
            c, sym = c.strip(), sym.strip().lower()
            if not sep or c not in coins or not sym:
                raise RecorderError(f"--binance {item!r}: expected COIN=SYMBOL with COIN in {coins}")
            if sym != "off":
                out[c] = sym
            why.append(f"{c}: --binance {sym}")
        return out, why
    if len(coins) != 1:
        raise RecorderError("--binance SYMBOL needs exactly one coin; use COIN=SYMBOL,... for several")
    if not spec.isalnum():
        raise RecorderError(f"--binance {spec!r}: a symbol is alphanumeric, like btcusdt")
    return {coins[0]: spec.lower()}, [f"{coins[0]}: --binance {spec.lower()}"]


def hl_ws_url(network: str, local_url: str = "http://127.0.0.1:8765") -> str:
    """Websocket URL of a Hyperliquid network ('mainnet', 'testnet', 'local' = ``local_url``)."""
    from hlmm.venue.hyperliquid.rest import MAINNET_URL, TESTNET_URL, ws_url_for

    urls = {"mainnet": MAINNET_URL, "testnet": TESTNET_URL, "local": local_url}
    if network not in urls:
        raise RecorderError(f"network must be one of {sorted(urls)}, got {network!r}")
    return ws_url_for(urls[network])


async def record(
    recorder: Recorder,
    ws_url: str,
    *,
    binance_url: str | None = None,
    duration_s: float | None = None,
    stop: Any = None,
    tick_s: float = 0.25,
    log: Any = None,
) -> RecordStats:
    """Record until ``duration_s`` elapses or ``stop`` (an asyncio.Event) is set; then close the recorder.

    Thin on purpose: WsClient (reconnects, heartbeats) and BinanceFeed do the network work; every message,
    status change and timer tick is handed to ``recorder`` with a local receive time in ns."""
    import asyncio
    import time

    from hlmm.venue.binance import BinanceFeed
    from hlmm.venue.hyperliquid.ws import WsClient

    last_ns = [time.time_ns()]

    def clock() -> float:
        # The WS client stamps a message with clock() and calls on_message right away: keep the ns it used.
        last_ns[0] = time.time_ns()
        return last_ns[0] / 1e9

    def on_message(_ts: float, channel: str, data: Any) -> None:
        recorder.on_hl_message(last_ns[0], {"channel": channel, "data": data})

    closing = [False]

    def on_status(_ts: float, connected: bool, detail: str) -> None:
        if not closing[0]:  # our own close at the end is not a gap in the data
            recorder.on_status(last_ns[0], HL, connected, detail)

    stop_ev = stop if stop is not None else asyncio.Event()
    ws = WsClient(ws_url, on_message, on_status, clock=clock, log=log)
    for coin in recorder.coins:
        for ch in HL_SUBSCRIPTIONS:
            await ws.subscribe({"type": ch, "coin": coin})

    class _Feed(BinanceFeed):
        def on_frame(self, raw: str | bytes) -> None:
            recorder.on_binance_raw(clock_ns(), raw)
            super().on_frame(raw)

    def clock_ns() -> int:
        last_ns[0] = time.time_ns()
        return last_ns[0]

    feeds = []
    if binance_url is not None:
        for sym in sorted(set(recorder.ref_symbols.values())):
            feeds.append(_Feed(sym, lambda q: recorder.on_ref_quote(last_ns[0], q), base_url=binance_url,
                               clock=clock, log=log))  # fmt: skip
    feed_up = {id(f): False for f in feeds}
    await ws.start()
    for f in feeds:
        await f.start()
    t_end = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop_ev.is_set() and (t_end is None or time.monotonic() < t_end):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_ev.wait(), tick_s)
            now = clock_ns()
            for f in feeds:  # BinanceFeed has no status callback: poll its flag for gap bookkeeping
                if f.connected != feed_up[id(f)]:
                    feed_up[id(f)] = f.connected
                    recorder.on_status(now, BINANCE, f.connected, f"binance {f.symbol}")
            recorder.tick(now)
    finally:
        closing[0] = True
        await ws.close()
        for f in feeds:
            await f.close()
        stats = recorder.close(clock_ns())
    return stats


__all__ = ["BINANCE", "HL", "RecordStats", "Recorder", "RecorderError", "parse_book_ticker"]
