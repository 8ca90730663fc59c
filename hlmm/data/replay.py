"""Open recorded or synthetic market data as one ts-ordered event stream.

A source is a file or a directory. Every file in it is read by the reader registered for its suffix and
all streams are merged by local receive time ``ts`` (heapq.merge), so feed latency is preserved. Formats:
docs/data-format.md. Extension point: :func:`register_reader` (the recorder adds Parquet this way).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path

import orjson

from hlmm.data.csv_hl import read_bbo_trades_csv
from hlmm.data.raw_ws import FORMAT_NAME, FORMAT_VERSION, read_raw_ws
from hlmm.market.events import MarketEvent
from hlmm.market.instrument import parse_coin

MANIFEST = "manifest.json"

SourceReader = Callable[[Path, str], Iterator[MarketEvent]]
"""(file, coin) -> events of that coin in ts order."""


class SourceError(ValueError):
    """A path that is not a readable market data source (missing, unknown format, unsupported version)."""


def _read_raw(path: Path, coin: str) -> Iterator[MarketEvent]:
    return read_raw_ws(path, coin)


def _read_parquet(path: Path, coin: str) -> Iterator[MarketEvent]:
    from hlmm.data.parquet import read_parquet_file  # lazy: pyarrow only when Parquet is read

    return read_parquet_file(path, coin)


_READERS: dict[str, SourceReader] = {".gz": _read_raw, ".parquet": _read_parquet}


def register_reader(suffix: str, reader: SourceReader) -> None:
    """Read files ending in ``suffix`` (e.g. '.parquet') with ``reader``; replaces an existing entry."""
    if not suffix.startswith("."):
        raise ValueError(f"suffix must start with '.', got {suffix!r}")
    _READERS[suffix.lower()] = reader


def _reader_for(path: Path) -> SourceReader | None:
    name = path.name.lower()
    if name.endswith(".csv.gz"):
        return None  # compressed CSV is not the raw WS format
    # The longest registered suffix wins ('.raw.gz' before '.gz').
    for suffix in sorted(_READERS, key=len, reverse=True):
        if name.endswith(suffix):
            return _READERS[suffix]
    return None


def _names_coin(name: str, coin: str) -> bool:
    token = re.escape(coin.replace(":", "_"))
    return re.search(rf"(^|[_.\-]){token}([_.\-]|$)", name) is not None


def _csv_pair(path: Path) -> tuple[Path, Path] | None:
    """(bbo, trades) for a CSV that is one half of a pair, else None."""
    name = path.name
    if "bbo" in name:
        other = path.with_name(name.replace("bbo", "trades"))
        return (path, other) if other.exists() else None
    if "trades" in name:
        other = path.with_name(name.replace("trades", "bbo"))
        return (other, path) if other.exists() else None
    return None


def check_manifest(directory: Path) -> dict | None:
    """Validate ``manifest.json`` if the directory has one; refuse a newer format_version than we read."""
    mpath = directory / MANIFEST
    if not mpath.exists():
        return None
    try:
        manifest = orjson.loads(mpath.read_bytes())
    except orjson.JSONDecodeError as e:
        raise SourceError(f"{mpath}: invalid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SourceError(f"{mpath}: format must be {FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise SourceError(f"{mpath}: format_version {version!r} not supported (this hlmm reads <= {FORMAT_VERSION})")
    return manifest


def source_streams(path: str | Path, coin: str) -> list[Iterator[MarketEvent]]:
    """One ts-ordered iterator per file of the source (not yet merged)."""
    parse_coin(coin)
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: no such file or directory")
    if p.is_file():
        if p.suffix.lower() == ".csv":
            pair = _csv_pair(p)
            if pair is None:
                raise SourceError(f"{p}: a CSV source needs its bbo/trades partner file next to it")
            return [read_bbo_trades_csv(pair[0], pair[1], coin)]
        reader = _reader_for(p)
        if reader is None:
            raise SourceError(f"{p}: unknown format (known: {sorted(_READERS)} and bbo/trades CSV pairs)")
        return [reader(p, coin)]
    from hlmm.data.parquet import is_parquet_root, read_parquet_dir

    if is_parquet_root(p):  # an ``hlmm record`` directory: source=*/coin=*/date=*/*.parquet
        return [read_parquet_dir(p, coin)]
    check_manifest(p)
    streams: list[Iterator[MarketEvent]] = []
    for f in sorted(p.iterdir()):
        if not f.is_file():
            continue
        if f.suffix.lower() == ".csv":
            # The CSVs carry no coin column: the coin is taken from the file name (e.g. ..._BTC_bbo_...csv).
            if "bbo" in f.name and _names_coin(f.name, coin):
                pair = _csv_pair(f)
                if pair is not None:
                    streams.append(read_bbo_trades_csv(pair[0], pair[1], coin))
            continue
        reader = _reader_for(f)
        if reader is not None:
            streams.append(reader(f, coin))
    if not streams:
        raise SourceError(f"{p}: no market data files for {coin}")
    return streams


def open_source(path: str | Path, coin: str) -> Iterator[MarketEvent]:
    """All events of ``coin`` in a file or directory, merged by local receive time ``ts``."""
    streams = source_streams(path, coin)
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=attrgetter("ts"))
