"""CSV BBO + trades reader on the shared real files and on small hand-made files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hlmm.data.csv_hl import CsvFormatError, CsvStats, read_bbo_csv, read_bbo_trades_csv, read_trades_csv
from hlmm.market.events import Bbo, Trade

REAL = Path("../shared/data/real")
BBO = REAL / "hyperliquid_BTC_bbo_2025-09-01_to_09-07.csv"
TRADES = REAL / "hyperliquid_BTC_trades_2025-09-01_to_09-07.csv"


def test_real_files() -> None:
    if not (BBO.exists() and TRADES.exists()):
        pytest.skip("real CSV files not available")
    st = CsvStats()
    evs = list(read_bbo_trades_csv(BBO, TRADES, "BTC", stats=st))
    bbos = [e for e in evs if isinstance(e, Bbo)]
    trs = [e for e in evs if isinstance(e, Trade)]
    assert 27_400 <= len(bbos) <= 27_600
    assert st.bbo_messages == len(bbos) and st.partial_bbo == 5  # lone rows at session ends
    assert st.dup_trades == 10 and len(trs) == 12_261 - 10
    assert len({t.tid for t in trs}) == len(trs)
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    assert all(b.bid_px < b.ask_px for b in bbos)  # type: ignore[operator]
    assert all(107_000 < b.bid_px < 112_000 for b in bbos)  # type: ignore[operator]
    assert {t.side for t in trs} == {"A", "B"}
    first = bbos[0]
    assert (first.ts, first.ts_exchange, first.bid_px, first.bid_sz, first.ask_px, first.ask_sz) == (
        1756707631.227671, 1756707630.446, 107947.0, 16.89663, 107948.0, 1.43191)  # fmt: skip


def test_small_files_merge_and_sides(tmp_path: Path) -> None:
    b = tmp_path / "x_bbo.csv"
    t = tmp_path / "x_trades.csv"
    b.write_text(
        "timestamp,price,size,side,exchange_timestamp\n"
        "10.5,100.0,1.0,bid,10000\n10.5,101.0,2.0,ask,10000\n"
        "11.5,100.0,1.0,bid,11000\n"  # lone row: dropped
        "12.5,101.0,3.0,ask,12000\n12.5,99.0,4.0,bid,12000\n"  # ask row first is fine
    )
    t.write_text(
        "timestamp,price,size,side,trade_id,exchange_timestamp\n"
        "11.0,101.0,0.5,buy,7,10900\n12.0,100.0,0.25,sell,8,11900\n13.0,100.0,0.25,sell,8,11900\n"
    )
    st = CsvStats()
    evs = list(read_bbo_trades_csv(b, t, "ETH", st))
    assert [type(e).__name__ for e in evs] == ["Bbo", "Trade", "Trade", "Bbo"]
    assert evs[1] == Trade("ETH", 11.0, 10.9, 101.0, 0.5, "B", 7)
    assert evs[2].side == "A"  # type: ignore[union-attr]
    assert evs[3] == Bbo("ETH", 12.5, 12.0, 99.0, 4.0, 101.0, 3.0)
    assert (st.partial_bbo, st.dup_trades) == (1, 1)


def test_bad_csv(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text("time,price\n1,2\n")
    with pytest.raises(CsvFormatError, match="header"):
        list(read_bbo_csv(p))
    p.write_text("timestamp,price,size,side,trade_id,exchange_timestamp\n1,2,3,hold,4,5\n")
    with pytest.raises(CsvFormatError, match=r"b\.csv:2"):
        list(read_trades_csv(p))
    p.write_text("timestamp,price,size,side,trade_id,exchange_timestamp\n1,-2,3,buy,4,5\n")
    with pytest.raises(CsvFormatError, match="price"):
        list(read_trades_csv(p))
