"""Reader for the CSV BBO + trades recordings of Hyperliquid's ``bbo`` and ``trades`` feeds
(``timestamp`` = local receive time in s, ``exchange_timestamp`` = Hyperliquid ms).

BBO file: ``timestamp,price,size,side,exchange_timestamp``, two rows (bid, ask) per message.
Trades file: ``timestamp,price,size,side,trade_id,exchange_timestamp``, side = aggressor buy/sell.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from hlmm.data.raw_ws import DEFAULT_MAX_TIDS, BoundedSet
from hlmm.market.events import Bbo, MarketEvent, Trade

_SIDES = {"buy": "B", "sell": "A", "B": "B", "A": "A"}
BBO_HEADER = ["timestamp", "price", "size", "side", "exchange_timestamp"]
TRADES_HEADER = ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"]


class CsvFormatError(ValueError):
    """A CSV file whose header or rows do not match the expected format; names file and line."""


@dataclass(slots=True)
class CsvStats:
    bbo_messages: int = 0
    partial_bbo: int = 0  # a lone bid or ask row (the recorder stopped between the two rows)
    trades: int = 0
    dup_trades: int = 0


def _rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    with open(path, newline="") as f:
        r = csv.reader(f)
        got = next(r, None)
        if got != header:
            raise CsvFormatError(f"{path}: header {got} != expected {header}")
        for i, row in enumerate(r, 2):
            if row:
                yield i, row


def _pos(x: str, path: Path, line: int, what: str) -> float:
    try:
        v = float(x)
    except ValueError:
        raise CsvFormatError(f"{path}:{line}: {what} is not a number: {x!r}") from None
    if not 0.0 < v < float("inf"):
        raise CsvFormatError(f"{path}:{line}: {what} must be finite and > 0, got {x!r}")
    return v


def read_bbo_csv(path: str | Path, coin: str = "BTC", stats: CsvStats | None = None) -> Iterator[Bbo]:
    """One Bbo per (timestamp, exchange_timestamp) pair of bid+ask rows. A lone row (seen at session ends)
    is dropped and counted: inventing the missing side would misstate the book."""
    p = Path(path)
    st = stats if stats is not None else CsvStats()
    group: list[tuple[int, list[str]]] = []

    def emit() -> Bbo | None:
        sides = {row[3]: (line, row) for line, row in group}
        if len(group) != 2 or set(sides) != {"bid", "ask"}:
            st.partial_bbo += 1
            return None
        bl, b = sides["bid"]
        al, a = sides["ask"]
        try:
            ts, tx = float(b[0]), int(b[4]) / 1000.0
        except ValueError:
            raise CsvFormatError(f"{p}:{bl}: bad timestamps {b[0]!r}, {b[4]!r}") from None
        st.bbo_messages += 1
        return Bbo(
            coin, ts, tx, _pos(b[1], p, bl, "bid price"), _pos(b[2], p, bl, "bid size"),
            _pos(a[1], p, al, "ask price"), _pos(a[2], p, al, "ask size"),
        )  # fmt: skip

    for line, row in _rows(p, BBO_HEADER):
        if len(row) != 5 or row[3] not in ("bid", "ask"):
            raise CsvFormatError(f"{p}:{line}: expected 5 fields with side bid/ask, got {row}")
        if group and (row[0] != group[0][1][0] or row[4] != group[0][1][4]):
            ev = emit()
            if ev is not None:
                yield ev
            group = []
        group.append((line, row))
    if group:
        ev = emit()
        if ev is not None:
            yield ev


def read_trades_csv(
    path: str | Path, coin: str = "BTC", stats: CsvStats | None = None, max_tids: int = DEFAULT_MAX_TIDS
) -> Iterator[Trade]:
    """Trades in file order; a trade_id seen before (re-sent on resubscribe) is dropped and counted."""
    p = Path(path)
    st = stats if stats is not None else CsvStats()
    seen = BoundedSet(max_tids)
    for line, row in _rows(p, TRADES_HEADER):
        if len(row) != 6:
            raise CsvFormatError(f"{p}:{line}: expected 6 fields, got {row}")
        side = _SIDES.get(row[3])
        if side is None:
            raise CsvFormatError(f"{p}:{line}: side must be buy/sell, got {row[3]!r}")
        try:
            tid, ts, tx = int(row[4]), float(row[0]), int(row[5]) / 1000.0
        except ValueError:
            raise CsvFormatError(f"{p}:{line}: bad trade_id or timestamps in {row}") from None
        if not seen.add(tid):
            st.dup_trades += 1
            continue
        st.trades += 1
        yield Trade(coin, ts, tx, _pos(row[1], p, line, "price"), _pos(row[2], p, line, "size"), side, tid)


def read_bbo_trades_csv(
    bbo_path: str | Path, trades_path: str | Path, coin: str = "BTC", stats: CsvStats | None = None
) -> Iterator[MarketEvent]:
    """BBO and trades merged by local receive time ``ts`` (ties: the BBO first). Sessions are not split:
    the recordings have gaps of minutes to days between sessions (see docs/data-format.md)."""
    st = stats if stats is not None else CsvStats()
    return heapq.merge(
        read_bbo_csv(bbo_path, coin, st), read_trades_csv(trades_path, coin, st), key=attrgetter("ts")
    )
