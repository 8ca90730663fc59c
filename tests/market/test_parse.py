"""Parsers on the real Hyperliquid capture, on hand-made fixtures and on malformed input."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import orjson
import pytest

from hlmm.market.events import Bbo, BookSnapshot, Trade
from hlmm.market.parse import (
    ExchangeErrorMessage,
    ParseError,
    parse_asset_ctx,
    parse_bbo,
    parse_l2book,
    parse_trades,
    parse_ws_message,
    parse_ws_raw,
)

REAL = Path("../shared/data/real/hyperliquid_BTC_ws_raw_2025-01-26.gz")
FIX = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> dict:
    return orjson.loads((FIX / name).read_bytes())


@pytest.fixture(scope="module")
def real_lines() -> list[tuple[int, bytes]]:
    if not REAL.exists():
        pytest.skip("real capture not available")
    out = []
    with gzip.open(REAL, "rb") as f:
        for line in f:
            ns, raw = line.rstrip(b"\n").split(b" ", 1)
            out.append((int(ns), raw))
    return out


def test_real_capture_counts_and_first_book(real_lines: list[tuple[int, bytes]]) -> None:
    books: list[BookSnapshot] = []
    trades: list[Trade] = []
    for ns, raw in real_lines:
        for ev in parse_ws_raw(raw, ns / 1e9):
            (books if isinstance(ev, BookSnapshot) else trades).append(ev)  # type: ignore[arg-type]
    assert len(books) == 46
    assert len(trades) == 64
    assert sum(t.side == "A" for t in trades) == 41
    assert sum(t.side == "B" for t in trades) == 23
    b = books[0]
    assert b.coin == "BTC"
    assert (b.bids[0].px, b.bids[0].n, b.bids[0].sz) == (105055.0, 5, 3.03622)
    assert (b.asks[0].px, b.asks[0].n, b.asks[0].sz) == (105056.0, 13, 6.34472)
    assert len(b.bids) == len(b.asks) == 20
    assert b.ts == real_lines[0][0] / 1e9
    assert b.ts_exchange == 1737918843.542
    for bk in books:
        assert all(x.px > y.px for x, y in zip(bk.bids, bk.bids[1:], strict=False))
        assert all(x.px < y.px for x, y in zip(bk.asks, bk.asks[1:], strict=False))
        assert bk.best_bid < bk.best_ask  # type: ignore[operator]
    live = [t for t in trades if t.ts_exchange >= books[0].ts_exchange]
    assert all(0.0 < t.ts - t.ts_exchange < 1.0 for t in live)  # live feed lag 0.26-0.51 s


def test_trades_fields(real_lines: list[tuple[int, bytes]]) -> None:
    ns, raw = real_lines[2]
    msg = orjson.loads(raw)
    trades = parse_trades(msg["data"], ns / 1e9)
    assert len(trades) == 30
    t = trades[0]
    assert (t.coin, t.px, t.sz, t.side, t.tid) == ("BTC", 105056.0, 0.00219, "B", 121451470284048)
    assert t.ts_exchange == 1737918794.873
    assert t.is_buy_aggressor


def test_bbo_fixture() -> None:
    [ev] = parse_ws_message(_fixture("bbo.json"), 10.0)
    assert ev == Bbo("BTC", 10.0, 1737918843.542, 105055.0, 3.03622, 105056.0, 6.34472)


def test_bbo_null_side() -> None:
    ev = parse_bbo(_fixture("bbo_one_sided.json")["data"], 1.0)
    assert ev.coin == "hyna:HYPE"
    assert ev.bid_px is None and ev.bid_sz == 0.0
    assert (ev.ask_px, ev.ask_sz) == (33.004, 41.31)


def test_asset_ctx_fixture() -> None:
    [ev] = parse_ws_message(_fixture("active_asset_ctx.json"), 5.0)
    assert ev.coin == "hyna:HYPE"  # type: ignore[union-attr]
    assert (ev.mark_px, ev.oracle_px, ev.funding, ev.open_interest) == (33.005, 33.012, -0.0000125, 152340.12)  # type: ignore[union-attr]
    assert ev.ts == 5.0


def test_control_channels_give_no_events() -> None:
    assert parse_ws_message({"channel": "pong"}, 1.0) == []
    sub = {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": {"type": "trades"}}}
    assert parse_ws_message(sub, 1.0) == []


def _book() -> dict:
    return {
        "coin": "BTC",
        "time": 1000,
        "levels": [[{"px": "100.0", "sz": "1.0", "n": 1}], [{"px": "101.0", "sz": "2.0", "n": 2}]],
    }


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda d: d.pop("coin"), "coin"),
        (lambda d: d.update(time="1000"), "time"),
        (lambda d: d.update(time=1.5), "time"),
        (lambda d: d.update(levels=[[]]), "levels"),
        (lambda d: d.update(levels=None), "levels"),
        (lambda d: d["levels"][0][0].pop("px"), "bid"),
        (lambda d: d["levels"][0][0].update(px="abc"), "bid"),
        (lambda d: d["levels"][1][0].update(px="nan"), "ask"),
        (lambda d: d["levels"][1][0].update(sz="-1"), "ask"),
        (lambda d: d["levels"][1][0].update(sz="inf"), "ask"),
        (lambda d: d["levels"][1][0].update(n="3"), "ask"),
        (lambda d: d["levels"][0].append("x"), "bid"),
    ],
)
def test_malformed_book(mutate, problem: str) -> None:  # type: ignore[no-untyped-def]
    d = copy.deepcopy(_book())
    mutate(d)
    with pytest.raises(ParseError) as ei:
        parse_l2book(d, 1.0)
    assert ei.value.channel == "l2Book"
    assert problem in str(ei.value)


def test_good_book_minimal() -> None:
    b = parse_l2book(_book(), 2.0)
    assert b.ts_exchange == 1.0 and b.mid == 100.5


@pytest.mark.parametrize(
    "data",
    [
        {"coin": "BTC"},
        [{"coin": "BTC", "px": "1", "sz": "1", "side": "S", "tid": 1, "time": 1}],
        [{"coin": "BTC", "px": "1", "sz": "1", "side": "B", "tid": "1", "time": 1}],
        [{"coin": "BTC", "px": "x", "sz": "1", "side": "B", "tid": 1, "time": 1}],
        [{"coin": "BTC", "px": "1", "sz": "0", "side": "B", "tid": 1, "time": 1}],
        [{"px": "1", "sz": "1", "side": "B", "tid": 1, "time": 1}],
        [{"coin": "BTC", "px": "1", "sz": "1", "side": "B", "tid": 1}],
        ["nope"],
    ],
)
def test_malformed_trades(data: object) -> None:
    with pytest.raises(ParseError) as ei:
        parse_trades(data, 1.0)  # type: ignore[arg-type]
    assert ei.value.channel == "trades"


@pytest.mark.parametrize(
    "data",
    [
        {"coin": "BTC", "time": 1, "bbo": [None]},
        {"coin": "BTC", "time": 1, "bbo": [{"px": "1"}, None]},
        {"coin": "BTC", "time": 1, "bbo": ["1", None]},
        {"coin": "BTC", "bbo": [None, None]},
    ],
)
def test_malformed_bbo(data: dict) -> None:
    with pytest.raises(ParseError) as ei:
        parse_bbo(data, 1.0)
    assert ei.value.channel == "bbo"


def test_malformed_asset_ctx() -> None:
    good = _fixture("active_asset_ctx.json")["data"]
    for key, value in [("markPx", None), ("oraclePx", "0"), ("funding", "nan"), ("openInterest", "-1")]:
        d = copy.deepcopy(good)
        d["ctx"][key] = value
        with pytest.raises(ParseError, match=key):
            parse_asset_ctx(d, 1.0)
    with pytest.raises(ParseError, match="ctx"):
        parse_asset_ctx({"coin": "BTC"}, 1.0)


def test_dispatch_errors() -> None:
    with pytest.raises(ExchangeErrorMessage, match="Already subscribed"):
        parse_ws_message({"channel": "error", "data": "Already subscribed"}, 1.0)
    with pytest.raises(ParseError, match="orderUpdates"):
        parse_ws_message({"channel": "orderUpdates", "data": []}, 1.0)
    with pytest.raises(ParseError):
        parse_ws_message(["l2Book"], 1.0)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_ws_raw(b"Websocket connection established.", 1.0)
