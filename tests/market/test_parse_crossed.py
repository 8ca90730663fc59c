"""parse.py refuses crossed books (a venue book is never crossed: the message is bad, not the market)."""

from __future__ import annotations

import pytest

from hlmm.market.parse import ParseError, parse_bbo, parse_l2book


def _book(bid: str, ask: str) -> dict:
    return {"coin": "BTC", "time": 1, "levels": [[{"px": bid, "sz": "1", "n": 1}], [{"px": ask, "sz": "1", "n": 1}]]}


def _bbo(bid: str, ask: str) -> dict:
    return {"coin": "BTC", "time": 1, "bbo": [{"px": bid, "sz": "1", "n": 1}, {"px": ask, "sz": "1", "n": 1}]}


@pytest.mark.parametrize("bid,ask", [("101", "100"), ("100", "100")])
def test_crossed_or_locked_l2book_is_refused(bid: str, ask: str) -> None:
    with pytest.raises(ParseError, match="crossed"):
        parse_l2book(_book(bid, ask), 1.0)


@pytest.mark.parametrize("bid,ask", [("101", "100"), ("100", "100")])
def test_crossed_or_locked_bbo_is_refused(bid: str, ask: str) -> None:
    with pytest.raises(ParseError, match="crossed"):
        parse_bbo(_bbo(bid, ask), 1.0)


def test_normal_and_one_sided_books_pass() -> None:
    assert parse_l2book(_book("99", "100"), 1.0).mid == 99.5
    one = {"coin": "BTC", "time": 1, "levels": [[{"px": "99", "sz": "1", "n": 1}], []]}
    assert parse_l2book(one, 1.0).asks == ()
    assert parse_bbo({"coin": "BTC", "time": 1, "bbo": [None, {"px": "100", "sz": "1", "n": 1}]}, 1.0).bid_px is None
    assert parse_bbo(_bbo("99", "100"), 1.0).ask_px == 100.0
