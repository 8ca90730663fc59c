"""hlmm.venue.hyperliquid.validate: every venue message shape, good and bad, and once-per-kind counting."""

from __future__ import annotations

from typing import Any

import pytest

from hlmm.venue.hyperliquid import validate as v
from hlmm.venue.hyperliquid.errors import HyperliquidError
from hlmm.venue.hyperliquid.validate import BadInputCounter, BadMessage

FILL = {"coin": "BTC", "px": "60000.5", "sz": "0.01", "side": "B", "time": 1_700_000_000_000, "oid": 7, "tid": 11,
        "crossed": False, "fee": "-0.001", "builderFee": "0.002", "cloid": "0xABCDEF0123456789ABCDEF0123456789"}
BAD_NUMBERS = ["NaN", "nan", "inf", "-inf", float("nan"), float("inf"), None, True, [], {}, "", "1e", "abc"]


def test_bad_message_is_a_hyperliquid_error() -> None:
    e = BadMessage("fill", "px must be finite")
    assert isinstance(e, HyperliquidError) and e.kind == "fill" and str(e) == "bad fill: px must be finite"


def test_good_fill() -> None:
    m = v.fill(FILL)
    assert (m.tid, m.oid, m.coin, m.px, m.sz, m.is_buy, m.is_maker) == (11, 7, "BTC", 60000.5, 0.01, True, True)
    assert m.fee == pytest.approx(0.001) and m.cloid == "0xabcdef0123456789abcdef0123456789"
    assert m.time_ms == 1_700_000_000_000
    assert v.fill({**FILL, "side": "A", "crossed": True, "tid": "12"}).is_buy is False
    m2 = v.fill({k: x for k, x in FILL.items() if k not in ("builderFee", "cloid", "time")})
    assert m2.cloid is None and m2.fee == pytest.approx(-0.001) and m2.time_ms == 0


@pytest.mark.parametrize("field,value", [
    ("px", "NaN"), ("px", "0"), ("px", "-1"), ("px", "inf"), ("px", None), ("px", True),
    ("sz", "0"), ("sz", "-0.01"), ("sz", "NaN"), ("sz", [1]),
    ("fee", "NaN"), ("fee", "inf"), ("fee", {}), ("builderFee", "nan"),
    ("tid", "x"), ("tid", -1), ("tid", 1.5), ("tid", True), ("oid", None), ("oid", "12a"),
    ("side", "X"), ("side", None), ("coin", ""), ("coin", 5), ("crossed", "yes"), ("cloid", 5), ("time", "soon"),
])
def test_bad_fill(field: str, value: Any) -> None:
    with pytest.raises(BadMessage) as ei:
        v.fill({**FILL, field: value})
    assert ei.value.kind == "fill"


@pytest.mark.parametrize("msg", [None, [], "fill", 5])
def test_fill_not_an_object(msg: Any) -> None:
    with pytest.raises(BadMessage):
        v.fill(msg)


@pytest.mark.parametrize("x", BAD_NUMBERS)
def test_number_rejects_non_finite_and_wrong_types(x: Any) -> None:
    with pytest.raises(BadMessage):
        v.number(x, "k", "x")


def test_numbers_and_ids() -> None:
    assert v.number("-1.5", "k", "x") == -1.5 and v.number(3, "k", "x") == 3.0
    assert v.positive("0.1", "k", "x") == 0.1
    assert v.non_negative("0", "k", "x") == 0.0
    with pytest.raises(BadMessage):
        v.non_negative("-0.1", "k", "x")
    assert v.ident(5, "k", "x") == 5 and v.ident("12", "k", "x") == 12
    for bad in (True, -1, 1.0, "1.0", "-3", None):
        with pytest.raises(BadMessage):
            v.ident(bad, "k", "x")


def test_order_update() -> None:
    u = v.order_update({"order": {"coin": "BTC", "oid": 9, "cloid": "0xAB", "sz": "0.0", "side": "B"},
                        "status": "filled", "statusTimestamp": 1})
    assert (u.coin, u.oid, u.cloid, u.status, u.sz) == ("BTC", 9, "0xab", "filled", 0.0)
    assert v.order_update({"order": {"coin": "BTC", "oid": 9}, "status": "open"}).sz == 0.0
    for bad in ({"order": {"coin": "BTC", "oid": "x"}, "status": "open"},
                {"order": {"coin": "BTC", "oid": 1, "sz": "NaN"}, "status": "open"},
                {"order": {"coin": "BTC", "oid": 1, "sz": "-1"}, "status": "open"},
                {"order": {"coin": "BTC", "oid": 1}, "status": 3},
                {"order": "x", "status": "open"}, "update"):
        with pytest.raises(BadMessage) as ei:
            v.order_update(bad)
        assert ei.value.kind == "order_update"


def test_funding_and_non_user_cancel() -> None:
    f = v.funding({"coin": "BTC", "usdc": "-0.5", "fundingRate": "0.0001", "szi": "-0.2"})
    assert (f.coin, f.usdc, f.rate, f.szi) == ("BTC", -0.5, 0.0001, -0.2)
    for bad in ({"coin": "BTC", "usdc": "NaN", "fundingRate": "0", "szi": "0"},
                {"coin": "BTC", "usdc": "1", "szi": "0"}, None):
        with pytest.raises(BadMessage):
            v.funding(bad)
    assert v.non_user_cancel({"coin": "BTC", "oid": 3}) == ("BTC", 3)
    with pytest.raises(BadMessage):
        v.non_user_cancel({"coin": "BTC", "oid": "three"})


ROW = {"coin": "BTC", "side": "A", "limitPx": "61000", "sz": "0.02", "oid": 44, "timestamp": 1}


def test_open_orders() -> None:
    rows = v.open_orders([ROW, {**ROW, "oid": 45, "side": "B", "cloid": "0xAA"}])
    assert [(r.oid, r.is_buy, r.px, r.sz, r.cloid) for r in rows] == [(44, False, 61000.0, 0.02, None),
                                                                      (45, True, 61000.0, 0.02, "0xaa")]
    assert v.open_orders([]) == []


@pytest.mark.parametrize("bad", [
    {**ROW, "oid": "x"}, {**ROW, "limitPx": "NaN"}, {**ROW, "limitPx": "0"}, {**ROW, "sz": "0"},
    {**ROW, "side": "S"}, {k: x for k, x in ROW.items() if k != "limitPx"}, "row",
])
def test_one_bad_open_orders_row_makes_the_reply_bad(bad: Any) -> None:
    with pytest.raises(BadMessage) as ei:
        v.open_orders([ROW, bad])
    assert ei.value.kind == "open_orders"


def test_open_orders_reply_not_a_list() -> None:
    with pytest.raises(BadMessage):
        v.open_orders({"orders": []})


CH = {"assetPositions": [{"position": {"coin": "ETH", "szi": "1", "entryPx": "3000"}, "type": "oneWay"},
                         {"position": {"coin": "BTC", "szi": "-0.5", "entryPx": "60000"}, "type": "oneWay"}],
      "marginSummary": {"accountValue": "12345.6"}}


def test_clearinghouse() -> None:
    c = v.clearinghouse(CH, "BTC")
    assert (c.position, c.entry_px, c.account_value) == (-0.5, 60000.0, 12345.6)
    flat = v.clearinghouse({"assetPositions": []}, "BTC")
    assert (flat.position, flat.entry_px, flat.account_value) == (0.0, 0.0, 0.0)
    assert v.clearinghouse({"assetPositions": [{"position": {"coin": "BTC", "szi": "0", "entryPx": None}}]},
                           "BTC").entry_px == 0.0


@pytest.mark.parametrize("bad", [
    {"assetPositions": [{"position": {"coin": "BTC", "szi": "abc"}}]},
    {"assetPositions": [{"position": {"coin": "BTC", "szi": "NaN"}}]},
    {"assetPositions": [{"position": {"coin": "BTC", "szi": "1", "entryPx": "-5"}}]},
    {"assetPositions": [{"position": {"coin": "BTC", "szi": "1"}}], "marginSummary": {"accountValue": "NaN"}},
    {"assetPositions": "none"}, {"assetPositions": [5]}, {"assetPositions": [{"position": {"szi": "1"}}]},
    {"marginSummary": []}, [], None,
])
def test_bad_clearinghouse(bad: Any) -> None:
    with pytest.raises(BadMessage) as ei:
        v.clearinghouse(bad, "BTC")
    assert ei.value.kind == "clearinghouse"


def test_order_status() -> None:
    order = {"coin": "BTC", "oid": 5, "cloid": "0xCC", "sz": "0.1"}
    st = v.order_status({"status": "order", "order": {"status": "canceled", "statusTimestamp": 1, "order": order}})
    assert st is not None and (st.status, st.oid, st.cloid, st.sz) == ("canceled", 5, "0xcc", 0.1)
    assert v.order_status({"status": "unknownOid"}) is None
    for bad in (None, [], {"status": 5}, {"status": "order"}, {"status": "order", "order": {"order": {"oid": 1}}},
                {"status": "order", "order": {"status": "open", "order": {"oid": "x"}}}):
        with pytest.raises(BadMessage):
            v.order_status(bad)


def test_rate_limit() -> None:
    assert v.rate_limit({"nRequestsCap": 10_000, "nRequestsUsed": 12, "cumVlm": "0"}) == (10_000, 12)
    for bad in ({"nRequestsCap": "NaN", "nRequestsUsed": 0}, {"nRequestsUsed": 0}, None):
        with pytest.raises(BadMessage):
            v.rate_limit(bad)


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


def test_counter_logs_once_per_kind_and_counts_all() -> None:
    now = [10.0]
    log = Log()
    c = BadInputCounter(log, "hyperliquid", clock=lambda: now[0])
    assert not c.recent(60.0)
    assert [c.note("fill", "px nan", {"px": "NaN"}) for _ in range(3)] == [1, 2, 3]
    c.note("funding", "usdc nan")
    assert c.counts == {"fill": 3, "funding": 1} and c.total == 4
    assert [kw["kind"] for e, kw in log.events if e == "bad_input"] == ["fill", "funding"]
    assert log.events[0][1]["data"] == "{'px': 'NaN'}" and log.events[0][1]["source"] == "hyperliquid"
    assert c.recent(60.0)
    now[0] = 100.0
    assert not c.recent(60.0)
