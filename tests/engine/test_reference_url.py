"""Issue 9 item 9: the reference feed's endpoint follows --network (local never dials a public host)."""

from __future__ import annotations

from hlmm.config import load_config_dict
from hlmm.engine.live_runner import binance_url
from hlmm.venue.binance import BINANCE_FUTURES_WS


def _cfg(url: str = "http://127.0.0.1:8765"):
    return load_config_dict({"run": {"network": "local", "local_url": url},
                            "coins": {"BTC": {
        "risk": {"max_position_usd": 100.0, "daily_loss_limit_usd": 50.0, "max_drawdown_usd": 30.0},
        "reference": {"binance_symbol": "btcusdt"}}}})


def test_local_network_points_the_reference_feed_at_the_local_server() -> None:
    assert binance_url(_cfg(), "local") == "ws://127.0.0.1:8765/binance"
    assert binance_url(_cfg("http://[::1]:9000/"), "local") == "ws://[::1]:9000/binance"


def test_mainnet_and_testnet_endpoints() -> None:
    assert binance_url(_cfg(), "mainnet") == BINANCE_FUTURES_WS
    tn = binance_url(_cfg(), "testnet")
    assert tn != BINANCE_FUTURES_WS and "fstream.binance.com" not in tn
