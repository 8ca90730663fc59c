"""The local exchange serves market history from before its start (so clients can warm-start from
``candleSnapshot``), and publishes asset contexts only for coins that have a market."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from hlmm.config import load_config
from hlmm.engine.live_runner import run_live
from hlmm.market.instrument import default_registry
from hlmm.market.parse import parse_ws_message
from hlmm.sim.server import ExchangeCore, LocalExchangeServer, ServerConfig
from hlmm.sim.server.market import synthetic_source


async def _messages(url: str, subs: list[dict], seconds: float) -> list[dict]:
    """Everything the server sends on one connection with ``subs`` for ``seconds`` (bounded)."""
    out: list[dict] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url.replace("http", "ws") + "/ws") as ws:
        for sub in subs:
            await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": sub}).decode())
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(ws.receive(), left)
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith("{"):
                out.append(orjson.loads(msg.data))
    return out


async def test_candle_snapshot_holds_history_and_no_ctx_without_market() -> None:
    reg = default_registry()
    srv = LocalExchangeServer(ExchangeCore(reg, ServerConfig()), [synthetic_source("btc", reg, seed=3)], port=0,
                              speed=1.0, warm_history_s=1800.0)
    await srv.start()
    try:
        now_ms = int(time.time() * 1000)
        async with aiohttp.ClientSession() as s:
            req = {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": now_ms - 3_600_000,
                                                     "endTime": now_ms}}
            async with s.post(srv.url + "/info", json=req) as r:
                candles = await r.json()
        assert len(candles) >= 25  # ~30 minutes of one-minute candles, not the one since start
        assert all(c["t"] < now_ms for c in candles) and candles == sorted(candles, key=lambda c: c["t"])
        msgs = await _messages(srv.url, [{"type": "activeAssetCtx", "coin": "hyna:HYPE"},
                                         {"type": "activeAssetCtx", "coin": "BTC"}], seconds=2.5)
        ctx = [m for m in msgs if m.get("channel") == "activeAssetCtx"]
        assert ctx and {m["data"]["coin"] for m in ctx} == {"BTC"}  # none for the coin without a market
        for m in ctx:  # and what is published passes the strict parser
            assert parse_ws_message(m, time.time())
    finally:
        await srv.stop()


async def test_paper_run_against_the_server_quotes_within_5s() -> None:
    """Regression: candleSnapshot held one candle, so warm-up waited for its 30 s timeout on the quiet market."""
    reg = default_registry()
    srv = LocalExchangeServer(ExchangeCore(reg, ServerConfig()), [synthetic_source("hype_quiet", reg, seed=2)],
                              port=0, speed=1.0)
    await srv.start()
    try:
        cfg = load_config(None, [f"run.local_url={srv.url}"])
        assert cfg.coin("hyna:HYPE").estimators.warmup_timeout_s > 5  # the timeout is not what makes it quote
        out: list[str] = []
        res = await asyncio.wait_for(
            run_live(cfg, "hyna:HYPE", mode="paper", network="local", duration_s=5.0, out=out.append), 60)
    finally:
        await srv.stop()
    warm = next(line for line in out if line.startswith("warm start:"))
    assert int(warm.split()[2]) >= 15, warm
    assert res.stats.first_quote_ts is not None, "no quote within 5 s of start"
    assert res.stats.first_quote_ts - res.stats.start_ts <= 5.0
    assert res.resting_after_shutdown == 0
