"""Raw WS capture: writer/reader round trip, cleaning (tid de-dup, history, duplicate books), real capture."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from hlmm.data.raw_ws import (
    BoundedSet,
    RawWsFormatError,
    RawWsWriter,
    ReadStats,
    hl_num,
    read_raw_ws,
    ts_to_ns,
)
from hlmm.market.events import BookSnapshot, Trade
from hlmm.market.parse import ParseError

REAL = Path("../shared/data/real/hyperliquid_BTC_ws_raw_2025-01-26.gz")
T0 = 1_750_000_000_000  # ms


def book(coin: str, ms: int, bid: str = "100.0", ask: str = "101.0") -> dict:
    lv = [[{"n": 1, "px": bid, "sz": "1.5"}], [{"n": 2, "px": ask, "sz": "0.25"}]]
    return {"channel": "l2Book", "data": {"coin": coin, "levels": lv, "time": ms}}


def trades(coin: str, items: list[tuple[int, int]]) -> dict:
    """items: (tid, ms)."""
    data = [{"coin": coin, "hash": "0x0", "px": "100.5", "side": "B", "sz": "0.1", "tid": tid, "time": ms,
             "users": ["0x1", "0x2"]} for tid, ms in items]  # fmt: skip
    return {"channel": "trades", "data": data}


def write(path: Path, msgs: list[tuple[int, dict | bytes]]) -> None:
    with RawWsWriter(path) as w:
        for ms, m in msgs:
            w.write(ms * 1_000_000, m if isinstance(m, bytes) else orjson.dumps(m))


def test_round_trip_lines_exact(tmp_path: Path) -> None:
    p = tmp_path / "x.raw.gz"
    raw = '{"channel":"l2Book","data":{"coin":"BTC","levels":[[],[]],"time":1}}'
    with RawWsWriter(p) as w:
        w.write(1737918843893903000, raw)
        w.write(1737918843893903001, raw.encode())
        w.flush()
    with RawWsWriter(p) as w:  # append mode: a restarted recorder continues the file
        w.write(1737918843893903002, raw)
    with gzip.open(p, "rb") as f:
        lines = f.read().splitlines()
    assert lines == [b"1737918843893903000 " + raw.encode(), b"1737918843893903001 " + raw.encode(),
                     b"1737918843893903002 " + raw.encode()]  # fmt: skip


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    with RawWsWriter(tmp_path / "x.gz") as w:
        with pytest.raises(ValueError):
            w.write(1.5, "{}")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            w.write(-1, "{}")
        with pytest.raises(ValueError, match="one line"):
            w.write(1, '{"a":\n1}')


def test_reader_events_and_ts(tmp_path: Path) -> None:
    p = tmp_path / "c.raw.gz"
    write(p, [(T0, book("BTC", T0 - 300)), (T0 + 400, trades("BTC", [(7, T0 + 100)]))])
    evs = list(read_raw_ws(p))
    assert isinstance(evs[0], BookSnapshot) and evs[0].ts == T0 / 1e3 and evs[0].ts_exchange == (T0 - 300) / 1e3
    assert isinstance(evs[1], Trade) and evs[1].tid == 7 and evs[1].ts == (T0 + 400) / 1e3


def test_subscription_batch_and_duplicates_dropped(tmp_path: Path) -> None:
    p = tmp_path / "c.raw.gz"
    history = [(i, T0 - 60_000 + i * 1000) for i in range(1, 31)]  # 30 past trades, up to 60 s old
    recent = [(100, T0 - 500)]  # within history_s of the first book: live
    msgs: list[tuple[int, dict | bytes]] = [
        (T0 - 400, trades("BTC", history + recent)),  # subscription batch arrives before the first book
        (T0 + 100, book("BTC", T0)),
        (T0 + 200, book("BTC", T0)),  # duplicate snapshot (same exchange time)
        (T0 + 700, trades("BTC", [(101, T0 + 600)])),
        (T0 + 900, book("BTC", T0 + 500)),
        # reconnect: the resubscribe batch re-sends trades already seen, plus one new
        (T0 + 5000, trades("BTC", [(100, T0 - 500), (101, T0 + 600), (102, T0 + 4900)])),
        (T0 + 5100, b"Websocket connection established."),
        (T0 + 5200, {"channel": "subscriptionResponse", "data": {"method": "subscribe"}}),
    ]
    write(p, msgs)
    st = ReadStats()
    evs = list(read_raw_ws(p, stats=st))
    kinds = [(type(e).__name__, getattr(e, "tid", None)) for e in evs]
    assert kinds == [("Trade", 100), ("BookSnapshot", None), ("Trade", 101), ("BookSnapshot", None), ("Trade", 102)]
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    assert (st.history_trades, st.dup_trades, st.stale_books, st.skipped_lines) == (30, 2, 1, 2)


def test_coin_filter_and_trades_without_book(tmp_path: Path) -> None:
    p = tmp_path / "c.raw.gz"
    write(p, [
        (T0, book("hyna:HYPE", T0, "33.0", "33.01")),
        (T0 + 10, book("BTC", T0)),
        (T0 + 20, trades("BTC", [(1, T0 + 5)])),
        (T0 + 30, trades("ETH", [(1, T0 - 10_000), (2, T0 + 5)])),  # ETH has no book: judged vs capture start
    ])  # fmt: skip
    hype = list(read_raw_ws(p, "hyna:HYPE"))
    assert len(hype) == 1 and hype[0].coin == "hyna:HYPE"  # type: ignore[union-attr]
    assert [(type(e).__name__, e.coin) for e in read_raw_ws(p, "BTC")] == [("BookSnapshot", "BTC"), ("Trade", "BTC")]  # type: ignore[union-attr]
    eth = list(read_raw_ws(p, "ETH"))
    assert [e.tid for e in eth] == [2]  # type: ignore[union-attr]
    assert {e.coin for e in read_raw_ws(p)} == {"hyna:HYPE", "BTC", "ETH"}  # type: ignore[union-attr]


def test_bad_lines_raise_with_location(tmp_path: Path) -> None:
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"123 {\"channel\":\"l2Book\",\"data\":{}}\n")
    with pytest.raises(ParseError, match=r"bad\.gz:1"):
        list(read_raw_ws(p))
    with gzip.open(p, "wb") as f:
        f.write(b"notanumber {}\n")
    with pytest.raises(RawWsFormatError, match=r"bad\.gz:1"):
        list(read_raw_ws(p))
    with gzip.open(p, "wb") as f:
        f.write(b"1 {broken\n")
    with pytest.raises(RawWsFormatError, match="invalid JSON"):
        list(read_raw_ws(p))


def test_real_capture_cleaned() -> None:
    if not REAL.exists():
        pytest.skip("real capture not available")
    st = ReadStats()
    evs = list(read_raw_ws(REAL, "BTC", stats=st))
    books = [e for e in evs if isinstance(e, BookSnapshot)]
    trs = [e for e in evs if isinstance(e, Trade)]
    # 46 snapshots, one an exact re-send; 64 trade rows of which the 30-trade subscription batch is history.
    assert (len(books), len(trs)) == (45, 34)
    assert (st.stale_books, st.history_trades, st.dup_trades) == (1, 30, 0)
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    assert all(t.ts_exchange >= books[0].ts_exchange - 2.0 for t in trs)


def test_bounded_set_evicts_oldest() -> None:
    s = BoundedSet(2)
    assert s.add(1) and s.add(2) and not s.add(1)
    assert s.add(3) and 1 not in s and len(s) == 2


def test_number_and_time_helpers() -> None:
    assert hl_num(105055.0) == "105055.0"
    assert hl_num(0.6) == "0.6"
    assert hl_num(0.00001) == "0.00001"
    assert float(hl_num(1e-5)) == 1e-5
    for ts in (1750000000.6, 1737918843.893903, 1750000001.616, 0.1):
        assert ts_to_ns(ts) / 1e9 == ts
