"""The fill journal in live (issue 9 item 6): every fill journaled durably before the engine sees it, keyed by
(tid, oid), never applied twice - not when the same fill arrives over WS and again from a REST resync, and not
when it comes back from the exchange's ``userFillsByTime`` after a restart. Plus the day rebuild at start-up."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest

from hlmm.engine.core import EngineCore, EngineError
from hlmm.engine.day_restore import (
    PAGE_MAX,
    DayRestoreError,
    fetch_day_fills,
    merge_fills,
    parse_book_mid,
    parse_exchange_fill,
    restore_day,
)
from hlmm.engine.journal import DailyFillJournal
from hlmm.engine.live_runner import _fill_gate
from hlmm.engine.session import NullLog
from hlmm.venue.base import Fill

from .helpers import REG, coin_cfg

DAY = datetime(2025, 9, 4, tzinfo=UTC).timestamp()
NOON = DAY + 12 * 3600.0


def fill(tid: int, oid: int = 7, ts: float = NOON, is_buy: bool = True, px: float = 100.0, sz: float = 1.0,
         fee: float = 0.01) -> Fill:
    return Fill(ts=ts, coin="BTC", cloid="0xab", oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=fee,
                is_maker=True, remaining=0.0)


def row(f: Fill, t_ms: int | None = None) -> dict:
    """The exchange's copy of ``f`` (userFills / userFillsByTime row)."""
    return {"coin": f.coin, "px": repr(f.px), "sz": repr(f.sz), "side": "B" if f.is_buy else "A",
            "time": int(f.ts * 1000) if t_ms is None else t_ms, "oid": f.oid, "tid": f.tid, "fee": repr(f.fee),
            "crossed": False, "cloid": f.cloid, "hash": "0x0", "startPosition": "0", "dir": "Open Long",
            "closedPnl": "0", "feeToken": "USDC"}


def test_same_fill_over_ws_and_rest_resync_is_passed_on_once(tmp_path) -> None:
    j = DailyFillJournal(tmp_path, "BTC_acct")
    got: list[object] = []
    sink = _fill_gate(j, got.append, NullLog())
    f = fill(1)
    sink(f)  # over WS
    sink(fill(1, ts=NOON + 2.0))  # the same trade again from the REST resync (stamped later)
    sink(fill(2))
    assert [x.tid for x in got] == [1, 2]  # type: ignore[attr-defined]
    j.close()
    lines = (tmp_path / "fills_BTC_acct_2025-09-04.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_after_a_restart_a_fill_is_applied_once(tmp_path) -> None:
    """Process 1 journals a fill; process 2 rebuilds the day from the exchange (which has it too) and the journal,
    then the WS delivers it once more: the engine holds it once."""
    j1 = DailyFillJournal(tmp_path, "BTC_acct")
    sink1 = _fill_gate(j1, lambda ev: None, NullLog())
    f1, f2 = fill(1, is_buy=True, px=100.0), fill(2, oid=8, is_buy=False, px=90.0, ts=NOON + 1)
    sink1(f1)
    sink1(f2)
    j1.close()

    j2 = DailyFillJournal(tmp_path, "BTC_acct")
    journal = j2.load_day("2025-09-04")
    exchange = [parse_exchange_fill(row(f), "BTC") for f in (f1, f2)]
    fills, only_journal = merge_fills([f for f in exchange if f is not None], journal, DAY)
    assert len(fills) == 2 and only_journal == 0
    eng = EngineCore("BTC", REG.get("BTC"), coin_cfg(), NOON + 60)
    assert eng.restore_day(0.0, None, fills + journal) == 2  # the same fills twice over: applied once
    assert eng.portfolio.pnl_total(90.0) == pytest.approx(-10.0 - 0.02)
    got: list[Fill] = []
    sink2 = _fill_gate(j2, got.append, NullLog())
    sink2(fill(2, oid=8, is_buy=False, px=90.0, ts=NOON + 61))  # the WS re-delivers it after the restart
    sink2(fill(3, oid=9, ts=NOON + 62))
    assert [f.tid for f in got] == [3]
    for f in got:
        eng.on_venue(f)
    assert eng.portfolio.n_fills == 3
    assert eng.portfolio.fill_keys() == {(1, 7), (2, 8), (3, 9)}


def test_reused_tid_with_another_trade_is_not_dropped(tmp_path) -> None:
    """A reset local exchange reuses tids: same (tid, oid), another trade -> passed on (and logged)."""
    j = DailyFillJournal(tmp_path, "BTC_acct")
    got: list[object] = []
    sink = _fill_gate(j, got.append, NullLog())
    sink(fill(1, px=100.0))
    sink(fill(1, px=101.0))
    assert len(got) == 2


def test_invalid_fill_is_not_journaled(tmp_path) -> None:
    j = DailyFillJournal(tmp_path, "BTC_acct")
    sink = _fill_gate(j, lambda ev: None, NullLog())
    sink(fill(1, px=math.nan))
    j.close()
    assert not (tmp_path / "fills_BTC_acct_2025-09-04.jsonl").exists()  # a NaN line would corrupt the journal


def test_journal_files_are_per_utc_day(tmp_path) -> None:
    j = DailyFillJournal(tmp_path, "BTC_acct")
    assert j.append(fill(1, ts=DAY - 1.0))
    assert j.append(fill(2, ts=DAY + 1.0))
    assert not j.append(fill(2, ts=DAY + 5.0))
    j.close()
    j2 = DailyFillJournal(tmp_path, "BTC_acct")
    assert [f.tid for f in j2.load_day("2025-09-04")] == [2]
    assert [f.tid for f in j2.load_day("2025-09-03")] == [1]


def test_parse_exchange_fill_validates_at_the_boundary() -> None:
    good = row(fill(5, px=101.5, sz=0.25, fee=-0.003))
    f = parse_exchange_fill(good, "BTC")
    assert f is not None and (f.tid, f.oid, f.px, f.sz, f.fee, f.is_buy) == (5, 7, 101.5, 0.25, -0.003, True)
    assert f.ts == pytest.approx(NOON)
    for bad in ({"px": "nan"}, {"sz": "0"}, {"sz": "-1"}, {"fee": "inf"}, {"side": "X"}, {"tid": None},
                {"time": "soon"}):
        assert parse_exchange_fill({**good, **bad}, "BTC") is None, bad
    assert parse_exchange_fill({**good, "coin": "ETH"}, "BTC") is None
    assert parse_exchange_fill("garbage", "BTC") is None


class FakeInfo:
    def __init__(self, rows: list[dict], positions: list[float]) -> None:
        self.rows, self.positions, self.calls = rows, list(positions), []

    async def post(self, body: dict) -> list[dict]:
        self.calls.append(body)
        start = body["startTime"]
        return [r for r in self.rows if r["time"] >= start][:PAGE_MAX]

    async def clearinghouse_state(self, user: str, dex: str = "") -> dict:
        p = self.positions.pop(0) if len(self.positions) > 1 else self.positions[0]
        return {"assetPositions": [{"type": "oneWay", "position": {"coin": "BTC", "szi": repr(p)}}]}


def test_fetch_day_fills_pages_and_deduplicates() -> None:
    t0 = int(DAY * 1000)
    rows = [row(fill(i, oid=i, ts=DAY + i // 3), t_ms=t0 + (i // 3) * 1000) for i in range(1, 2501)]
    rows.append({**rows[0], "coin": "ETH", "tid": 99999})
    rows.append({**rows[1], "px": "nan", "tid": 88888})
    info = FakeInfo(sorted(rows, key=lambda r: r["time"]), [0.0])
    fills, n_bad = asyncio.run(fetch_day_fills(info, "0xa", "BTC", t0, NullLog()))
    assert len(fills) == 2500 and n_bad == 1
    assert len(info.calls) == 2  # a full page, then the rest from the last fill's time


def test_restore_day_position_at_the_days_start_and_retry() -> None:
    rows = [row(fill(1, ts=NOON, is_buy=True, sz=2.0)), row(fill(2, ts=NOON + 1, is_buy=False, sz=0.5))]
    # Position 3.0 now; it read 2.5 first (a fill landed in between): retried until before == after.
    info = FakeInfo(rows, [2.5, 3.0, 3.0, 3.0])
    r = asyncio.run(restore_day(info, "0xa", "BTC", "", DAY, [], NullLog()))
    assert r.position_now == 3.0 and r.position0 == pytest.approx(1.5) and len(r.fills) == 2
    info = FakeInfo(rows, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    with pytest.raises(DayRestoreError):
        asyncio.run(restore_day(info, "0xa", "BTC", "", DAY, [], NullLog()))


def test_engine_restore_day_values_the_inherited_position_at_the_anchor() -> None:
    eng = EngineCore("BTC", REG.get("BTC"), coin_cfg(), NOON)
    eng.restore_day(1.5, 100.0, [fill(1, is_buy=True, px=104.0, sz=0.5, fee=0.0)])
    assert eng.portfolio.position == pytest.approx(2.0)
    assert eng.portfolio.pnl_total(100.0) == pytest.approx(-2.0)  # 1.5 x 0 + 0.5 x (100 - 104)
    with pytest.raises(EngineError):
        eng.restore_day(0.0, None, [])  # only on a fresh engine
    with pytest.raises(EngineError):
        EngineCore("BTC", REG.get("BTC"), coin_cfg(), NOON).restore_day(1.0, None, [])


def test_parse_book_mid() -> None:
    assert parse_book_mid({"levels": [[{"px": "99", "sz": "1"}], [{"px": "101", "sz": "1"}]]}) == 100.0
    assert parse_book_mid({"levels": [[], [{"px": "101", "sz": "1"}]]}) is None
    assert parse_book_mid({"levels": [[{"px": "102"}], [{"px": "101"}]]}) is None
    assert parse_book_mid(None) is None
