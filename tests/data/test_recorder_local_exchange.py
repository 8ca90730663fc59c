"""Record from the local exchange server (127.0.0.1, accelerated market), replay the files, compare with an
independent subscriber; a websocket drop mid-recording becomes a gap row and the recording carries on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from hlmm.data.parquet import read_gaps
from hlmm.data.recorder import Recorder, record
from hlmm.data.replay import open_source
from hlmm.market.events import AssetCtx, Bbo, BookSnapshot, RefQuote, Trade
from hlmm.market.parse import parse_ws_message

server_mod = pytest.importorskip("hlmm.sim.server.build")


def _key(ev: Any) -> tuple:
    if isinstance(ev, Trade):
        return ("trade", ev.tid)
    if isinstance(ev, BookSnapshot):
        return ("book", ev.ts_exchange, ev.bids[:3], ev.asks[:3])
    if isinstance(ev, Bbo):
        return ("bbo", ev.ts_exchange, ev.bid_px, ev.ask_px)
    return (type(ev).__name__,)


async def test_record_local_exchange_and_replay(tmp_path: Path) -> None:
    from hlmm.venue.hyperliquid.ws import WsClient

    opts = server_mod.ServerOptions(port=0, preset="btc", speed=5.0, seed=7)
    server = server_mod.build_server(opts)
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}/ws"
        seen: list[Any] = []  # an independent subscriber on the same feed

        def on_msg(ts: float, channel: str, data: Any) -> None:
            if channel in ("l2Book", "trades", "bbo"):
                seen.extend(parse_ws_message({"channel": channel, "data": data}, ts))

        ref = WsClient(url, on_msg)
        for ch in ("l2Book", "trades", "bbo"):
            await ref.subscribe({"type": ch, "coin": "BTC"})
        await ref.start()
        assert await ref.wait_connected(5.0)
        rec = Recorder(tmp_path, ["BTC"], ref_symbols={"BTC": "btcusdt"}, flush_s=0.5, raw=True)
        stop = asyncio.Event()
        marks: dict[str, float] = {}

        async def script() -> None:
            await asyncio.sleep(4.0)
            marks["drop"] = time.time()
            await server.drop_ws("hl")  # both subscribers lose the feed; they reconnect on their own
            await asyncio.sleep(4.0)
            stop.set()

        task = asyncio.create_task(script())
        st = await asyncio.wait_for(
            record(rec, url, binance_url=f"ws://127.0.0.1:{server.port}/binance", stop=stop, tick_s=0.1), 60
        )
        await task
        await ref.close()
    finally:
        await server.stop()

    evs = list(open_source(tmp_path, "BTC"))
    counts = {k.__name__: sum(isinstance(e, k) for e in evs) for k in (BookSnapshot, Trade, Bbo, AssetCtx, RefQuote)}
    # 1. the files hold exactly what the recorder accepted
    assert counts["BookSnapshot"] == st.rows["book"] > 20
    assert counts["Trade"] == st.rows.get("trades", 0) > 0
    assert counts["Bbo"] == st.rows.get("bbo", 0)
    assert counts["AssetCtx"] == st.rows.get("asset_ctx", 0)
    assert counts["RefQuote"] == st.rows.get("ref", 0) > 0
    # 2. before the drop, the recording equals what an independent subscriber saw (same exchange times)
    rec_start = min(e.ts for e in evs)
    lo, hi = rec_start + 1.0, marks["drop"] - 0.5

    def window(src: list[Any]) -> set[tuple]:
        return {_key(e) for e in src if isinstance(e, (BookSnapshot, Trade, Bbo)) and lo <= e.ts_exchange <= hi}

    mine, theirs = window(evs), window(seen)
    assert len(mine) > 10 and mine == theirs
    # 3. the drop is a gap row, and data continues after the reconnect
    gaps = read_gaps(tmp_path, "BTC")
    disc = [g for g in gaps if g.source == "hl" and g.reason.startswith("disconnect")]
    assert len(disc) == 1 and disc[0].start_ts >= marks["drop"] - 0.5
    assert any(isinstance(e, BookSnapshot) and e.ts > disc[0].end_ts for e in evs)
    # 4. the raw capture replays to the same Hyperliquid events
    raw_evs = list(open_source(tmp_path / "raw", "BTC"))
    assert [e for e in evs if not isinstance(e, RefQuote)] == raw_evs
