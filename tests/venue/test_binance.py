"""Binance reference feed: symbol resolution (never a default symbol) and the bookTicker feed on loopback."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import websockets

from hlmm.config import CoinConfig, ReferenceParams
from hlmm.market.events import RefQuote
from hlmm.risk.params import RiskParams
from hlmm.venue.binance import BinanceFeed, BinanceFeedError, parse_book_ticker, resolve_binance_symbol


def cc(sym: str | None, allow_mismatch: bool = False) -> CoinConfig:
    return CoinConfig(risk=RiskParams(max_position_usd=100, daily_loss_limit_usd=10, max_drawdown_usd=5),
                      reference=ReferenceParams(binance_symbol=sym, allow_mismatch=allow_mismatch))


@pytest.mark.parametrize(("coin", "sym", "want"), [
    ("HYPE", "hypeusdt", "hypeusdt"),      # explicit same-name perpetual of a coin the table does not list
    ("BTC", "btcusdt", "btcusdt"),         # explicit, the table's own symbol
    ("BTC", "off", None),                  # off disables
    ("BTC", None, "btcusdt"),              # mapping
    ("ETH", None, "ethusdt"),
    ("SOL", None, "solusdt"),
    ("hyna:BTC", None, "btcusdt"),         # HIP-3 with the same underlying (explicit table)
    ("xyz:BTC", None, None),               # unknown HIP-3 dex: a name proves nothing
    ("hyna:HYPE", None, None),             # never btcusdt for HYPE
    ("HYPE", None, None),
    ("kPEPE", None, None),                 # 1000x unit: not the same instrument
    ("FOO", None, None),
])
def test_resolution(coin: str, sym: str | None, want: str | None) -> None:
    got, why = resolve_binance_symbol(coin, cc(sym))
    assert got == want
    assert coin in why and why
    if want is None:
        assert "off" in why


@pytest.mark.parametrize(("coin", "sym"), [
    ("hyna:HYPE", "btcusdt"),   # the seed's failure 3, by configuration
    ("HYPE", "btcusdt"),
    ("BTC", "ethusdt"),         # against the table
    ("hyna:BTC", "ethusdt"),
    ("xyz:BTC", "btcusdt"),     # a HIP-3 "BTC" off the table: its name proves nothing
    ("hyna:HYPE", "hypeusdt"),
    ("kPEPE", "pepeusdt"),      # 1000x unit
])
def test_mismatched_symbol_is_refused_unless_allowed(coin: str, sym: str) -> None:
    with pytest.raises(BinanceFeedError, match="allow_mismatch"):
        resolve_binance_symbol(coin, cc(sym))
    got, why = resolve_binance_symbol(coin, cc(sym, allow_mismatch=True))
    assert got == sym and "mismatch" in why


def test_config_refuses_mismatched_reference_with_its_field_path() -> None:
    from hlmm.config import ConfigError, load_config_dict

    def raw(sym: str, allow: bool = False) -> dict:
        return {"coins": {"hyna:HYPE": {
            "risk": {"max_position_usd": 50, "daily_loss_limit_usd": 10, "max_drawdown_usd": 5},
            "reference": {"binance_symbol": sym, "allow_mismatch": allow}}}}

    with pytest.raises(ConfigError, match=r"coins\.hyna:HYPE\.reference\.binance_symbol = 'btcusdt'"):
        load_config_dict(raw("btcusdt"))
    assert load_config_dict(raw("btcusdt", allow=True)).coins["hyna:HYPE"].reference.allow_mismatch
    assert load_config_dict(raw("off")).coins["hyna:HYPE"].reference.binance_symbol == "off"


def test_never_btcusdt_for_hype_any_way() -> None:
    for coin in ("HYPE", "hyna:HYPE", "xyz:HYPE"):
        assert resolve_binance_symbol(coin, None)[0] is None
        assert resolve_binance_symbol(coin, ReferenceParams())[0] is None


def test_parse_book_ticker() -> None:
    q = parse_book_ticker("btcusdt", {"e": "bookTicker", "s": "BTCUSDT", "b": "100.1", "B": "2", "a": "100.2",
                                      "A": "3", "T": 1_700_000_000_123, "E": 1_700_000_000_124}, 5.0)
    assert q == RefQuote("btcusdt", 5.0, 1_700_000_000.123, 100.1, 100.2, 2.0, 3.0)
    assert parse_book_ticker("btcusdt", {"b": "101", "a": "100"}, 1.0) is None  # crossed
    assert parse_book_ticker("btcusdt", {"b": "x", "a": "100"}, 1.0) is None
    with pytest.raises(BinanceFeedError):
        BinanceFeed("off", lambda q: None)
    with pytest.raises(BinanceFeedError):
        BinanceFeed("", lambda q: None)


async def test_feed_over_loopback_with_reconnect() -> None:
    paths: list[str] = []
    conns = 0

    async def handler(ws) -> None:
        nonlocal conns
        conns += 1
        paths.append(ws.request.path)
        for i in range(3):
            d = {"e": "bookTicker", "s": "ETHUSDT", "b": f"{2000 + i}", "B": "1", "a": f"{2000.5 + i}", "A": "1",
                 "T": 1_700_000_000_000 + i}
            await ws.send(orjson.dumps({"stream": "ethusdt@bookTicker", "data": d}).decode())
        await ws.send("not json")
        if conns == 1:
            await ws.close()  # the feed must reconnect
        else:
            await asyncio.sleep(5)

    got: list[RefQuote] = []
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        feed = BinanceFeed("ethusdt", got.append, base_url=f"ws://127.0.0.1:{port}", backoff_base_s=0.05, seed=1)
        await feed.start()
        for _ in range(300):
            if len(got) >= 6:
                break
            await asyncio.sleep(0.01)
        await feed.close()
    assert len(got) >= 6 and conns >= 2
    assert paths[0] == "/stream?streams=ethusdt@bookTicker"
    assert all(q.symbol == "ethusdt" and q.bid_px < q.ask_px for q in got)
    assert feed.n_bad >= 1
    assert not feed.is_stale(got[-1].ts + 1.0, 3.0) and feed.is_stale(got[-1].ts + 5.0, 3.0)
