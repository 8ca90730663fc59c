"""Parquet market data format (``hlmm-parquet``, version 1): what ``hlmm record`` writes and replay reads.

Layout (hive-style partitions; see docs/data-format.md, section "Parquet recordings")::

    <root>/source=<hl|binance>/coin=<coin>/date=<YYYY-MM-DD>/<kind>-<HHMMSS>-<seq>.parquet

``coin`` in a directory name has ':' replaced by '_' (``hyna:HYPE`` -> ``coin=hyna_HYPE``: ':' is not portable
in file names); the ``coin`` column holds the real name. Binance rows live under the Hyperliquid coin they serve
(the Binance symbol is a column). Every file is zstd-compressed and carries ``hlmm_format``,
``hlmm_format_version`` and ``hlmm_kind`` in its key/value metadata. Times are int64 ns since the epoch:
``ts_ns`` = local receive time, ``ts_exchange_ns`` = the exchange's time (null where the feed has none), both
chosen so that the correctly rounded ``ns / 10**9`` is exactly the float the event carried (a write/read round
trip is lossless; see :func:`ts_to_ns`).

While recording, rows go first to an Arrow IPC *spool* (``<name>.parquet.spool``, one record batch per flush, so
a crash loses at most one flush interval); a spool becomes a Parquet file when its file is rotated or the
recorder stops. :func:`recover_spools` converts the spools a crash left behind.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from operator import attrgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from hlmm.data.replay import SourceError
from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, RefQuote, Trade

FORMAT_NAME = "hlmm-parquet"
FORMAT_VERSION = 1
SPOOL_SUFFIX = ".parquet.spool"
SOURCES = ("hl", "binance")
KINDS = ("book", "trades", "bbo", "asset_ctx", "ref", "gaps")

_LIST_F = pa.list_(pa.float64())
_LIST_I = pa.list_(pa.int32())

SCHEMAS: dict[str, pa.Schema] = {
    "book": pa.schema([
        ("ts_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()),
        ("bid_px", _LIST_F), ("bid_sz", _LIST_F), ("bid_n", _LIST_I),
        ("ask_px", _LIST_F), ("ask_sz", _LIST_F), ("ask_n", _LIST_I),
    ]),
    "trades": pa.schema([
        ("ts_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()),
        ("px", pa.float64()), ("sz", pa.float64()), ("side", pa.string()), ("tid", pa.int64()),
    ]),
    "bbo": pa.schema([
        ("ts_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()),
        ("bid_px", pa.float64()), ("bid_sz", pa.float64()), ("ask_px", pa.float64()), ("ask_sz", pa.float64()),
    ]),
    "asset_ctx": pa.schema([
        ("ts_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()),
        ("mark_px", pa.float64()), ("oracle_px", pa.float64()), ("funding", pa.float64()),
        ("open_interest", pa.float64()),
    ]),
    "ref": pa.schema([
        ("ts_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()), ("symbol", pa.string()),
        ("bid_px", pa.float64()), ("bid_sz", pa.float64()), ("ask_px", pa.float64()), ("ask_sz", pa.float64()),
    ]),
    # A gap: local time [ts_ns, end_ns] in which a feed delivered nothing usable (disconnect, silence).
    "gaps": pa.schema([
        ("ts_ns", pa.int64()), ("end_ns", pa.int64()), ("ts_exchange_ns", pa.int64()), ("coin", pa.string()),
        ("source", pa.string()), ("channel", pa.string()), ("reason", pa.string()),
    ]),
}  # fmt: skip
"""Column schema of each kind. Adding a column is a format version bump."""

_NAME_RE = re.compile(r"^(?P<kind>[a-z_]+)-(?P<hms>\d{6})-(?P<seq>\d+)\.parquet$")


class ParquetFormatError(SourceError):
    """A file or directory that is not a readable hlmm Parquet recording (names the path and the problem)."""


# ---- rows -----------------------------------------------------------------------------------


_NS = 1_000_000_000


def ts_to_ns(ts: float) -> int:
    """Integer ns whose correctly rounded ``ns / 10**9`` (:func:`ns_to_ts`) is exactly ``ts``.

    Exact for any epoch time (float spacing there is ~240 ns, far coarser than 1 ns)."""
    ns = round(ts * 1e9)
    if ns / _NS == ts:  # int / int is correctly rounded in Python
        return ns
    ns = round(Fraction(ts) * _NS)
    if ns / _NS != ts:
        raise ValueError(f"no integer ns maps exactly to ts={ts!r}")
    return ns


def ns_to_ts(ns: int) -> float:
    """Seconds of an ns column value (correctly rounded: the inverse of :func:`ts_to_ns`)."""
    return ns / _NS


_ns = ts_to_ns


def _opt_ns(ts: float | None) -> int | None:
    return None if ts is None else ts_to_ns(ts)


def event_row(ev: MarketEvent) -> tuple[str, dict[str, Any]]:
    """(kind, row) for a market event. Timer events carry no data and are refused."""
    if isinstance(ev, BookSnapshot):
        return "book", {
            "ts_ns": _ns(ev.ts), "ts_exchange_ns": _ns(ev.ts_exchange), "coin": ev.coin,
            "bid_px": [lv.px for lv in ev.bids], "bid_sz": [lv.sz for lv in ev.bids],
            "bid_n": [lv.n for lv in ev.bids],
            "ask_px": [lv.px for lv in ev.asks], "ask_sz": [lv.sz for lv in ev.asks],
            "ask_n": [lv.n for lv in ev.asks],
        }  # fmt: skip
    if isinstance(ev, Trade):
        return "trades", {
            "ts_ns": _ns(ev.ts), "ts_exchange_ns": _ns(ev.ts_exchange), "coin": ev.coin,
            "px": ev.px, "sz": ev.sz, "side": ev.side, "tid": ev.tid,
        }  # fmt: skip
    if isinstance(ev, Bbo):
        return "bbo", {
            "ts_ns": _ns(ev.ts), "ts_exchange_ns": _ns(ev.ts_exchange), "coin": ev.coin,
            "bid_px": ev.bid_px, "bid_sz": ev.bid_sz, "ask_px": ev.ask_px, "ask_sz": ev.ask_sz,
        }  # fmt: skip
    if isinstance(ev, AssetCtx):
        return "asset_ctx", {
            "ts_ns": _ns(ev.ts), "ts_exchange_ns": None, "coin": ev.coin, "mark_px": ev.mark_px,
            "oracle_px": ev.oracle_px, "funding": ev.funding, "open_interest": ev.open_interest,
        }  # fmt: skip
    if isinstance(ev, RefQuote):
        raise TypeError("RefQuote rows need the Hyperliquid coin they serve: use ref_row(ev, coin)")
    raise TypeError(f"no Parquet kind for {type(ev).__name__}")


def ref_row(ev: RefQuote, coin: str) -> dict[str, Any]:
    """Row of a cross-venue reference quote recorded for Hyperliquid coin ``coin``."""
    return {
        "ts_ns": _ns(ev.ts), "ts_exchange_ns": _ns(ev.ts_exchange), "coin": coin, "symbol": ev.symbol,
        "bid_px": ev.bid_px, "bid_sz": ev.bid_sz, "ask_px": ev.ask_px, "ask_sz": ev.ask_sz,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Gap:
    """Local-time interval with no usable data from ``source`` for ``coin`` on ``channel`` ('*' = every channel)."""

    source: str
    coin: str
    channel: str
    start_ts: float
    end_ts: float
    reason: str  # "disconnect", "silence", ...
    ts_exchange: float | None = None  # last exchange time seen before the gap, when known

    def row(self) -> dict[str, Any]:
        return {
            "ts_ns": _ns(self.start_ts), "end_ns": _ns(self.end_ts), "ts_exchange_ns": _opt_ns(self.ts_exchange),
            "coin": self.coin, "source": self.source, "channel": self.channel, "reason": self.reason,
        }  # fmt: skip


def rows_to_table(kind: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Columnar table of ``rows`` with the kind's schema (bad values raise pyarrow's typed errors)."""
    schema = SCHEMAS[kind]
    cols = {name: [r[name] for r in rows] for name in schema.names}
    return pa.Table.from_pydict(cols, schema=schema)


def file_metadata(kind: str, source: str, extra: dict[str, str] | None = None) -> dict[bytes, bytes]:
    meta = {"hlmm_format": FORMAT_NAME, "hlmm_format_version": str(FORMAT_VERSION), "hlmm_kind": kind,
            "hlmm_source": source}
    meta.update(extra or {})
    return {k.encode(): v.encode() for k, v in meta.items()}


# ---- paths ----------------------------------------------------------------------------------


def coin_dir_name(coin: str) -> str:
    """'hyna:HYPE' -> 'hyna_HYPE' (the partition directory value)."""
    return coin.replace(":", "_")


def partition_dir(root: str | Path, source: str, coin: str, ts: float) -> Path:
    """``root/source=<source>/coin=<coin>/date=<UTC date of ts>``."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    day = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
    return Path(root) / f"source={source}" / f"coin={coin_dir_name(coin)}" / f"date={day}"


def file_name(kind: str, ts: float, seq: int) -> str:
    """``<kind>-<HHMMSS UTC of ts>-<seq, 6 digits>.parquet``: sorts in time order within a date."""
    if kind not in SCHEMAS:
        raise ValueError(f"kind must be one of {sorted(SCHEMAS)}, got {kind!r}")
    hms = datetime.fromtimestamp(ts, tz=UTC).strftime("%H%M%S")
    return f"{kind}-{hms}-{seq:06d}.parquet"


# ---- writing --------------------------------------------------------------------------------


def write_table(path: str | Path, table: pa.Table, kind: str, source: str, extra: dict[str, str] | None = None) -> Path:
    """Write ``table`` as a zstd Parquet file atomically (temp file + rename: a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata(file_metadata(kind, source, extra))
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, p)
    return p


class SpoolFile:
    """One output file being recorded: an Arrow IPC stream of record batches, turned into Parquet on close.

    ``append_batch`` + ``flush`` put a batch on disk (os-level flush), so a crash loses at most the rows not yet
    flushed; :func:`recover_spools` finishes what a crash left behind."""

    def __init__(self, path: str | Path, kind: str, source: str, opened_ts: float) -> None:
        self.path = Path(path)  # the final .parquet path
        self.kind, self.source, self.opened_ts = kind, source, opened_ts
        self.spool_path = self.path.with_name(self.path.name.removesuffix(".parquet") + SPOOL_SUFFIX)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(self.spool_path), "wb")
        self._writer = ipc.new_stream(self._sink, SCHEMAS[kind])
        self.rows = 0

    @property
    def bytes_written(self) -> int:
        return self._sink.tell()

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self._writer.write_table(rows_to_table(self.kind, rows))
            self.rows += len(rows)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> Path | None:
        """Finish the spool and convert it to Parquet; returns the Parquet path (None when no rows)."""
        self._writer.close()
        self._sink.close()
        return spool_to_parquet(self.spool_path, self.path, self.kind, self.source)


def _read_spool(spool: Path) -> tuple[pa.Schema | None, list[pa.RecordBatch]]:
    """Complete batches of a (possibly truncated) IPC stream."""
    batches: list[pa.RecordBatch] = []
    try:
        reader = ipc.open_stream(pa.OSFile(str(spool), "rb"))
    except (pa.ArrowInvalid, OSError):
        return None, batches  # crashed before the schema reached the disk
    try:
        while True:
            batches.append(reader.read_next_batch())
    except StopIteration:
        pass
    except (pa.ArrowInvalid, OSError):
        pass  # truncated last batch: a crash mid-write; the complete batches before it are kept
    return reader.schema, batches


def spool_to_parquet(spool: Path, out: Path, kind: str, source: str) -> Path | None:
    schema, batches = _read_spool(spool)
    rows = sum(b.num_rows for b in batches)
    if rows == 0:
        spool.unlink(missing_ok=True)
        return None
    table = pa.Table.from_batches(batches, schema=schema)
    write_table(out, table, kind, source)
    spool.unlink()
    return out


def recover_spools(root: str | Path) -> list[Path]:
    """Convert every spool under ``root`` (left by a crash) to Parquet; returns the files written."""
    out: list[Path] = []
    for spool in sorted(Path(root).rglob("*" + SPOOL_SUFFIX)):
        final = spool.with_name(spool.name.removesuffix(SPOOL_SUFFIX) + ".parquet")
        m = _NAME_RE.match(final.name)
        src = next((part.split("=", 1)[1] for part in spool.parts if part.startswith("source=")), None)
        if m is None or m["kind"] not in SCHEMAS or src not in SOURCES:
            raise ParquetFormatError(f"{spool}: not a recorder spool (bad name or directory)")
        p = spool_to_parquet(spool, final, m["kind"], src)
        if p is not None:
            out.append(p)
    return out


def write_events_parquet(
    root: str | Path, events: Sequence[MarketEvent], source: str = "hl", seq: int = 0
) -> list[Path]:
    """Write events (not Timer) as one file per (coin, kind) partition; for tests and conversions."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    first_ts: dict[tuple[str, str, str], float] = {}
    for ev in events:
        if isinstance(ev, RefQuote):
            raise TypeError("write RefQuote rows with ref_row(ev, coin) and a Recorder")
        kind, row = event_row(ev)
        key = (ev.coin, kind, partition_dir(root, source, ev.coin, ev.ts).name)  # type: ignore[union-attr]
        groups.setdefault(key, []).append(row)
        first_ts.setdefault(key, ev.ts)
    out = []
    for (coin, kind, _), rows in groups.items():
        t0 = first_ts[(coin, kind, _)]
        path = partition_dir(root, source, coin, t0) / file_name(kind, t0, seq)
        out.append(write_table(path, rows_to_table(kind, rows), kind, source))
    return out


# ---- reading --------------------------------------------------------------------------------


def read_table(path: str | Path) -> tuple[str, pa.Table]:
    """(kind, table) of one recorder file; refuses other files and newer format versions."""
    p = Path(path)
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise ParquetFormatError(f"{p}: not a Parquet file ({e})") from None
    meta = {k.decode(): v.decode() for k, v in (pf.schema_arrow.metadata or {}).items()}
    if meta.get("hlmm_format") != FORMAT_NAME:
        raise ParquetFormatError(f"{p}: metadata hlmm_format is {meta.get('hlmm_format')!r}, not {FORMAT_NAME!r}")
    try:
        version = int(meta.get("hlmm_format_version", ""))
    except ValueError:
        version = -1
    if not 1 <= version <= FORMAT_VERSION:
        raise ParquetFormatError(
            f"{p}: hlmm_format_version {meta.get('hlmm_format_version')!r} not supported "
            f"(this hlmm reads <= {FORMAT_VERSION})"
        )
    kind = meta.get("hlmm_kind", "")
    if kind not in SCHEMAS:
        raise ParquetFormatError(f"{p}: unknown hlmm_kind {kind!r}")
    table = pf.read()
    missing = [n for n in SCHEMAS[kind].names if n not in table.column_names]
    if missing:
        raise ParquetFormatError(f"{p}: kind {kind!r} lacks columns {missing}")
    return kind, table


def _col(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist()


_ts = ns_to_ts


def table_events(kind: str, table: pa.Table, coin: str | None = None) -> list[MarketEvent]:
    """Events of one table (rows of other coins skipped), sorted by local ``ts`` (stable)."""
    if kind == "gaps":
        return []
    n = table.num_rows
    coins = _col(table, "coin")
    ts = _col(table, "ts_ns")
    tx = _col(table, "ts_exchange_ns")
    keep = [i for i in range(n) if coin is None or coins[i] == coin]
    out: list[MarketEvent] = []
    if kind == "book":
        bp, bs, bn = _col(table, "bid_px"), _col(table, "bid_sz"), _col(table, "bid_n")
        ap, az, an = _col(table, "ask_px"), _col(table, "ask_sz"), _col(table, "ask_n")
        for i in keep:
            out.append(BookSnapshot(
                coins[i], _ts(ts[i]), _ts(tx[i]),
                tuple(map(BookLevel, bp[i], bs[i], bn[i])), tuple(map(BookLevel, ap[i], az[i], an[i])),
            ))  # fmt: skip
    elif kind == "trades":
        px, sz, side, tid = _col(table, "px"), _col(table, "sz"), _col(table, "side"), _col(table, "tid")
        for i in keep:
            out.append(Trade(coins[i], _ts(ts[i]), _ts(tx[i]), px[i], sz[i], side[i], tid[i]))
    elif kind == "bbo":
        bp, bs, ap, az = (_col(table, c) for c in ("bid_px", "bid_sz", "ask_px", "ask_sz"))
        for i in keep:
            out.append(Bbo(coins[i], _ts(ts[i]), _ts(tx[i]), bp[i], bs[i], ap[i], az[i]))
    elif kind == "asset_ctx":
        mk, orc, fu, oi = (_col(table, c) for c in ("mark_px", "oracle_px", "funding", "open_interest"))
        for i in keep:
            out.append(AssetCtx(coins[i], _ts(ts[i]), mk[i], orc[i], fu[i], oi[i]))
    elif kind == "ref":
        sym = _col(table, "symbol")
        bp, bs, ap, az = (_col(table, c) for c in ("bid_px", "bid_sz", "ask_px", "ask_sz"))
        for i in keep:
            out.append(RefQuote(sym[i], _ts(ts[i]), _ts(tx[i]), bp[i], ap[i], bs[i], az[i]))
    else:
        raise ParquetFormatError(f"unknown kind {kind!r}")
    out.sort(key=attrgetter("ts"))
    return out


def read_parquet_file(path: str | Path, coin: str | None = None) -> Iterator[MarketEvent]:
    """Events of one recorder file (of ``coin`` when given) in local-ts order."""
    kind, table = read_table(path)
    yield from table_events(kind, table, coin)


def _coin_dirs(root: Path, coin: str) -> list[Path]:
    want = f"coin={coin_dir_name(coin)}"
    return [d for d in sorted(root.glob("source=*/" + want)) if d.is_dir()]


def parquet_files(root: str | Path, coin: str) -> dict[tuple[str, str], list[Path]]:
    """Files of ``coin`` grouped by (source, kind), each list in time order (date dir, then file name)."""
    r = Path(root)
    groups: dict[tuple[str, str], list[Path]] = {}
    for cdir in _coin_dirs(r, coin):
        source = cdir.parent.name.split("=", 1)[1]
        for f in sorted(cdir.glob("date=*/*.parquet")):
            m = _NAME_RE.match(f.name)
            if m is None:
                raise ParquetFormatError(f"{f}: file name is not <kind>-<HHMMSS>-<seq>.parquet")
            groups.setdefault((source, m["kind"]), []).append(f)
    return groups


def is_parquet_root(path: str | Path) -> bool:
    """True for a directory laid out as ``source=*/coin=*/date=*``."""
    p = Path(path)
    return p.is_dir() and any(d.is_dir() for d in p.glob("source=*"))


def _chain(files: list[Path], coin: str) -> Iterator[MarketEvent]:
    # Files of one (source, kind) are written one after the other, so chaining keeps ts order; only one file
    # per group is in memory at a time.
    for f in files:
        yield from read_parquet_file(f, coin)


def read_parquet_dir(root: str | Path, coin: str) -> Iterator[MarketEvent]:
    """All market events of ``coin`` under a recording root (Hyperliquid and Binance reference quotes),
    merged by local receive time ``ts`` so feed latency is preserved. Gap rows are not events: see
    :func:`read_gaps`."""
    r = Path(root)
    if not r.is_dir():
        raise ParquetFormatError(f"{r}: not a directory")
    groups = parquet_files(r, coin)
    streams = [_chain(files, coin) for (_, kind), files in sorted(groups.items()) if kind != "gaps"]
    if not streams:  # checked here, not on first next(): a wrong coin fails when the source is opened
        raise ParquetFormatError(f"{r}: no Parquet data for {coin}")
    return heapq.merge(*streams, key=attrgetter("ts"))


def read_gaps(root: str | Path, coin: str) -> list[Gap]:
    """Gap rows recorded for ``coin``, sorted by start."""
    out: list[Gap] = []
    for (_, kind), files in parquet_files(root, coin).items():
        if kind != "gaps":
            continue
        for f in files:
            _, t = read_table(f)
            for row in t.to_pylist():
                if row["coin"] == coin:
                    tx = row["ts_exchange_ns"]
                    out.append(Gap(row["source"], row["coin"], row["channel"], _ts(row["ts_ns"]),
                                   _ts(row["end_ns"]), row["reason"], None if tx is None else _ts(tx)))
    out.sort(key=attrgetter("start_ts"))
    return out


def count_events(events: Iterator[MarketEvent]) -> dict[str, int]:
    """Events by type name (for comparing a recording with its replay)."""
    out: dict[str, int] = {}
    for ev in events:
        k = type(ev).__name__
        out[k] = out.get(k, 0) + 1
    return out

