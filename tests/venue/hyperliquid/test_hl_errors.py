"""Reply parsing and error-text -> RejectReason mapping (shapes from the API reference, §3)."""

from __future__ import annotations

import pytest

from hlmm.venue.base import RejectReason
from hlmm.venue.hyperliquid.errors import (
    ActionError,
    RateLimitError,
    ResponseFormatError,
    classify_error,
    parse_cancel_response,
    parse_default_response,
    parse_order_response,
    parse_post_only_bbo,
)

TABLE = [
    ("Post only order would have immediately matched, bbo was 64143@64144. asset=0", RejectReason.POST_ONLY_CROSS),
    ("Post only order would have immediately matched, bbo was {bbo}.", RejectReason.POST_ONLY_CROSS),
    ("Price must be divisible by tick size. asset=3", RejectReason.TICK),
    ("Order must have minimum value of $10.", RejectReason.MIN_VALUE),
    ("Order must have minimum value of 10 USDC.", RejectReason.MIN_VALUE),
    ("Order has invalid size.", RejectReason.SIZE),
    ("Insufficient margin to place order. asset=110000", RejectReason.MARGIN),
    ("Order would cause position to exceed margin tier limit at current leverage", RejectReason.MARGIN),
    ("Reduce only order would increase position.", RejectReason.REDUCE_ONLY),
    ("Order could not immediately match against any resting orders. asset=0", RejectReason.IOC_NO_MATCH),
    ("Order price too far from oracle", RejectReason.PRICE_BAND),
    ("Order price cannot be more than 80% away from the reference price", RejectReason.PRICE_BAND),
    ("Order would increase open interest while open interest is capped", RejectReason.OPEN_INTEREST_CAP),
    ("Too many cumulative requests sent (15401 > 14642) for cumulative volume traded $4643. Place taker orders to "
     "free up 1 request per USDC traded.", RejectReason.RATE_LIMIT),
    ("Invalid nonce: duplicate nonce 1700000000000", RejectReason.NONCE),
    ("Invalid nonce: nonce too low 5 < 6", RejectReason.NONCE),
    ("Order was never placed, already canceled, or filled.", RejectReason.UNKNOWN_ORDER),
    ("User or API Wallet 0xabc does not exist.", RejectReason.UNKNOWN),
    ("something brand new", RejectReason.UNKNOWN),
]


@pytest.mark.parametrize(("text", "reason"), TABLE)
def test_error_table(text: str, reason: RejectReason) -> None:
    assert classify_error(text) == reason


def test_post_only_bbo_extracted() -> None:
    assert parse_post_only_bbo("Post only order would have immediately matched, bbo was 64143@64144. asset=0") == (
        64143.0, 64144.0)
    assert parse_post_only_bbo("Post only order would have immediately matched, bbo was 30.01@30.02.") == (30.01, 30.02)
    assert parse_post_only_bbo("Post only order would have immediately matched, bbo was {bbo}.") is None


def test_order_statuses_all_kinds() -> None:
    resp = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"resting": {"oid": 77738308}},
        {"resting": {"oid": 5, "cloid": "0x" + "0" * 31 + "1"}},
        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
        {"error": "Post only order would have immediately matched, bbo was 1@2. asset=0"},
        "waitingForFill",
    ]}}}
    r = parse_order_response(resp, 5)
    assert [x.kind for x in r] == ["resting", "resting", "filled", "error", "waiting"]
    assert r[0].oid == 77738308 and r[1].cloid == "0x" + "0" * 31 + "1"
    assert r[2].total_sz == 0.02 and r[2].avg_px == 1891.4 and r[2].oid == 77747314
    assert r[3].reason == RejectReason.POST_ONLY_CROSS and r[3].bbo == (1.0, 2.0)


def test_short_statuses_take_the_batch_error() -> None:
    resp = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"error": "Order price too far from oracle"}]}}}
    r = parse_order_response(resp, 3)
    assert len(r) == 3 and all(x.reason == RejectReason.PRICE_BAND for x in r)
    empty = {"status": "ok", "response": {"type": "order", "data": {"statuses": []}}}
    r = parse_order_response(empty, 2)
    assert all(x.kind == "error" and x.reason == RejectReason.UNKNOWN for x in r)  # never a silent success


def test_whole_action_errors() -> None:
    with pytest.raises(ActionError) as e:
        parse_order_response({"status": "err", "response": "Invalid nonce: duplicate nonce 7"}, 1)
    assert e.value.reason == RejectReason.NONCE
    with pytest.raises(RateLimitError):
        parse_order_response({"status": "err", "response": "Too many cumulative requests sent (1 > 0)"}, 1)
    with pytest.raises(ActionError):
        parse_default_response({"status": "err", "response": "Cannot set scheduled cancel time until enough"})
    with pytest.raises(ResponseFormatError):
        parse_order_response({"status": "weird"}, 1)
    with pytest.raises(ResponseFormatError):
        parse_order_response({"status": "ok", "response": {"type": "order", "data": {"statuses": [{"x": 1}]}}}, 1)


def test_cancel_statuses() -> None:
    resp = {"status": "ok", "response": {"type": "cancel", "data": {"statuses": [
        "success", {"error": "Order was never placed, already canceled, or filled."}]}}}
    r = parse_cancel_response(resp, 2)
    assert r[0].ok and not r[1].ok and r[1].reason == RejectReason.UNKNOWN_ORDER
    r = parse_cancel_response({"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}, 2)
    assert r[0].ok and not r[1].ok  # a missing status is not a success
    parse_default_response({"status": "ok", "response": {"type": "default"}})
