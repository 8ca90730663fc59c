"""Parquet format: lossless round trip, layout, metadata/version checks, spool recovery, replay hook."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.data.parquet import (
    FORMAT_VERSION,
    Gap,
    ParquetFormatError,
    SpoolFile,
    count_events,
    event_row,
    file_name,
    is_parquet_root,
    partition_dir,
    read_gaps,
    read_parquet_dir,
    read_parquet_file,
    read_table,
    recover_spools,
    ref_row,
    rows_to_table,
    write_events_parquet,
    write_table,
)
from hlmm.data.raw_ws import RawWsWriter, read_raw_ws, write_events
from hlmm.data.replay import SourceError, open_source
from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, RefQuote, Trade
from hlmm.sim.synthetic import SyntheticMarket, preset

T0 = 1_750_000_000.0


def _book(coin: str, ts: float, tx: float, mid: float = 100.0) -> BookSnapshot:
    return BookSnapshot(
        coin, ts, tx,
        (BookLevel(mid - 0.5, 1.25, 3), BookLevel(mid - 1.0, 2.0, 1)),
        (BookLevel(mid + 0.5, 0.75, 2),),
    )  # fmt: skip


def _events(coin: str = "BTC") -> list:
    return [
        _book(coin, T0 + 0.1234567, T0),
        Trade(coin, T0 + 0.2, T0 + 0.101, 100.5, 0.01, "B", 12345678901234),
        Bbo(coin, T0 + 0.3, T0 + 0.2, 99.5, 1.0, None, 0.0),
        AssetCtx(coin, T0 + 0.4, 100.1, 100.0, -0.0000125, 1234.5),
        _book(coin, T0 + 0.6, T0 + 0.5, 101.0),
    ]


def test_round_trip_every_kind_is_exact(tmp_path: Path) -> None:
    evs = _events("hyna:HYPE")
    files = write_events_parquet(tmp_path, evs)
    assert len(files) == 4  # book, trades, bbo, asset_ctx
    for f in files:
        rel = f.relative_to(tmp_path).parts
        assert rel[0] == "source=hl" and rel[1] == "coin=hyna_HYPE" and rel[2] == "date=2025-06-15"
        assert pq.ParquetFile(f).metadata.row_group(0).column(0).compression == "ZSTD"
        meta = pq.ParquetFile(f).schema_arrow.metadata
        assert meta[b"hlmm_format_version"] == str(FORMAT_VERSION).encode()
    back = list(read_parquet_dir(tmp_path, "hyna:HYPE"))
    assert back == sorted(evs, key=lambda e: e.ts)  # dataclass equality: every float bit-identical


def test_ns_columns_and_null_exchange_time(tmp_path: Path) -> None:
    write_events_parquet(tmp_path, _events())
    (f,) = (tmp_path / "source=hl/coin=BTC/date=2025-06-15").glob("asset_ctx-*.parquet")
    kind, t = read_table(f)
    assert kind == "asset_ctx"
    assert t.schema.field("ts_ns").type == pa.int64()
    assert t.column("ts_exchange_ns").to_pylist() == [None]
    (fb,) = (tmp_path / "source=hl/coin=BTC/date=2025-06-15").glob("book-*.parquet")
    _, tb = read_table(fb)
    assert tb.column("ts_ns").to_pylist()[0] / 1e9 == T0 + 0.1234567
    assert tb.column("bid_px").to_pylist()[0] == [99.5, 99.0]


def test_file_names_and_partitions() -> None:
    assert file_name("book", T0, 7) == "book-150640-000007.parquet"
    assert partition_dir("r", "binance", "hyna:BTC", T0).as_posix() == "r/source=binance/coin=hyna_BTC/date=2025-06-15"
    with pytest.raises(ValueError, match="source"):
        partition_dir("r", "okx", "BTC", T0)
    with pytest.raises(ValueError, match="kind"):
        file_name("candles", T0, 0)


def test_ref_and_gap_rows(tmp_path: Path) -> None:
    q = RefQuote("btcusdt", T0 + 1.5, T0 + 1.4, 100.0, 100.1, 3.0, 4.0)
    d = partition_dir(tmp_path, "binance", "BTC", T0)
    write_table(d / file_name("ref", T0, 1), rows_to_table("ref", [ref_row(q, "BTC")]), "ref", "binance")
    gap = Gap("hl", "BTC", "*", T0 + 2.0, T0 + 9.0, "disconnect: test", None)
    dh = partition_dir(tmp_path, "hl", "BTC", T0)
    write_table(dh / file_name("gaps", T0, 2), rows_to_table("gaps", [gap.row()]), "gaps", "hl")
    write_table(dh / file_name("trades", T0, 3), rows_to_table("trades", [event_row(_events()[1])[1]]), "trades",
                "hl")  # fmt: skip
    evs = list(read_parquet_dir(tmp_path, "BTC"))
    assert evs == [_events()[1], q]  # merged by local ts, gap rows are not events
    assert read_gaps(tmp_path, "BTC") == [gap]
    with pytest.raises(TypeError):
        event_row(q)


def test_refuses_foreign_and_newer_files(tmp_path: Path) -> None:
    d = partition_dir(tmp_path, "hl", "BTC", T0)
    d.mkdir(parents=True)
    plain = d / "trades-000000-000001.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    with pytest.raises(ParquetFormatError, match="hlmm_format"):
        list(read_parquet_file(plain))
    newer = rows_to_table("trades", [event_row(_events()[1])[1]])
    newer = newer.replace_schema_metadata({b"hlmm_format": b"hlmm-parquet", b"hlmm_format_version": b"99",
                                           b"hlmm_kind": b"trades"})  # fmt: skip
    pq.write_table(newer, plain)
    with pytest.raises(ParquetFormatError, match="not supported"):
        list(open_source(tmp_path, "BTC"))
    with pytest.raises(SourceError, match="no Parquet data for ETH"):
        open_source(tmp_path, "ETH")
    (d / "junk.parquet").write_bytes(b"nope")
    with pytest.raises(ParquetFormatError, match="file name"):
        open_source(tmp_path, "BTC")
    with pytest.raises(SourceError, match="Parquet"):
        list(open_source(d / "junk.parquet", "BTC"))


def test_spool_survives_a_crash(tmp_path: Path) -> None:
    d = partition_dir(tmp_path, "hl", "BTC", T0)
    sp = SpoolFile(d / file_name("trades", T0, 1), "trades", "hl", T0)
    rows = [event_row(Trade("BTC", T0 + i, T0 + i, 100.0, 1.0, "A", i))[1] for i in range(10)]
    sp.append(rows[:6])
    sp.flush()
    sp.append(rows[6:])
    sp.flush()
    # Simulate a crash mid-write: the process dies, the last batch is cut in half on disk.
    data = sp.spool_path.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data)
    sp.spool_path.write_bytes(data[: len(data) - 40])
    assert not is_parquet_root(tmp_path / "nothing")
    assert list(read_parquet_dir_safe(tmp_path)) == []  # spools are not read as data
    out = recover_spools(tmp_path)
    assert len(out) == 1 and not list(tmp_path.rglob("*.spool"))
    got = list(read_parquet_file(out[0]))
    assert [t.tid for t in got] == list(range(6))  # the complete first batch survived


def read_parquet_dir_safe(root: Path) -> list:
    try:
        return list(read_parquet_dir(root, "BTC"))
    except ParquetFormatError:
        return []


def test_synthetic_stream_same_via_raw_and_parquet(tmp_path: Path) -> None:
    evs = list(SyntheticMarket(preset("btc", seed=3), start_ts=T0).events(20.0))
    raw = tmp_path / "raw.raw.gz"
    with RawWsWriter(raw) as w:
        write_events(w, evs)
    via_raw = list(read_raw_ws(raw, "BTC"))
    write_events_parquet(tmp_path / "pq", via_raw)
    via_pq = list(open_source(tmp_path / "pq", "BTC"))
    assert via_pq == via_raw
    assert count_events(iter(via_pq))["BookSnapshot"] > 10


_px = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
_ts = st.floats(min_value=1.0e9, max_value=2.0e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    ts=_ts, dt=st.floats(min_value=0.0, max_value=5.0), px=_px, sz=_px, tid=st.integers(0, 2**62),
    side=st.sampled_from(["A", "B"]), n=st.integers(1, 1000),
)  # fmt: skip
def test_property_round_trip(tmp_path_factory: pytest.TempPathFactory, ts: float, dt: float, px: float, sz: float,
                             tid: int, side: str, n: int) -> None:  # fmt: skip
    root = tmp_path_factory.mktemp("p")
    tx = round((ts - dt) * 1000.0) / 1000.0  # Hyperliquid exchange times are whole ms
    evs = [
        Trade("BTC", ts, tx, px, sz, side, tid),
        BookSnapshot("BTC", ts, tx, (BookLevel(px, sz, n),), ()),
        Bbo("BTC", ts, tx, None, 0.0, px, sz),
    ]
    write_events_parquet(root, evs)
    assert sorted(read_parquet_dir(root, "BTC"), key=repr) == sorted(evs, key=repr)
