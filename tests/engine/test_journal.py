"""Fills journal: append-only, keyed by (tid, oid), replays into a Portfolio without double counting."""

from __future__ import annotations

import pytest

from hlmm.engine.journal import FillJournal, JournalError
from hlmm.engine.portfolio import Portfolio
from hlmm.venue.base import Fill


def f(tid: int, oid: int = 1, is_buy: bool = True, px: float = 100.0, sz: float = 1.0) -> Fill:
    return Fill(ts=1.5, coin="hyna:HYPE", cloid="0x" + "0" * 31 + "1", oid=oid, tid=tid, is_buy=is_buy, px=px,
                sz=sz, fee=0.015, is_maker=True, remaining=0.0)


def test_append_load_replay_no_double_count(tmp_path):
    path = tmp_path / "fills.jsonl"
    with FillJournal(path, fsync=False) as j:
        assert j.load() == []
        assert j.append(f(1))
        assert j.append(f(2, is_buy=False, px=101.0))
        assert not j.append(f(1))  # duplicate key
    j2 = FillJournal(path)
    fills = j2.load()
    assert [x.tid for x in fills] == [1, 2] and fills[0] == f(1)
    p = Portfolio()
    assert j2.replay_into(p) == 2
    assert p.position == 0.0 and p.realized == pytest.approx(1.0)
    # the venue re-delivers the same fills after a restart: the portfolio ignores them
    assert not p.on_fill(f(1)) and not p.on_fill(f(2, is_buy=False, px=101.0))
    assert j2.append(f(3)) and not j2.append(f(2))
    j2.close()


def test_torn_tail_tolerated_corrupt_middle_raises(tmp_path):
    path = tmp_path / "fills.jsonl"
    with FillJournal(path, fsync=False) as j:
        j.load()
        j.append(f(1))
    with open(path, "ab") as fh:
        fh.write(b'{"ts": 1.0, "coin": "hyna:HY')  # crash mid-write
    j = FillJournal(path, fsync=False)
    assert [x.tid for x in j.load()] == [1] and j.torn_tail
    j.append(f(2))
    j.close()
    assert [x.tid for x in FillJournal(path).load()] == [1, 2]
    path.write_bytes(b"not json\n" + path.read_bytes())
    with pytest.raises(JournalError):
        FillJournal(path).load()
