"""The network shell of the recorder against a loopback fake Hyperliquid websocket that drops once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import websockets

from hlmm.data.parquet import read_gaps
from hlmm.data.raw_ws import book_message, trades_message
from hlmm.data.recorder import Recorder, record
from hlmm.data.replay import open_source
from hlmm.market.events import BookLevel, BookSnapshot, Trade


async def test_record_over_websocket_survives_a_drop(tmp_path: Path) -> None:
    sent = {"book": 0, "trades": 0}
    connections = 0
    subs: list[Any] = []

    async def handler(conn: Any) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        await conn.send("Websocket connection established.")
        # wait for the four subscriptions of BTC
        for _ in range(4):
            msg = orjson.loads(await conn.recv())
            subs.append(msg["subscription"])
            await conn.send(orjson.dumps({"channel": "subscriptionResponse", "data": msg}).decode())
        for _ in range(15 if first else 10_000):
            now_ms = int(time.time() * 1000)
            book = BookSnapshot("BTC", 0.0, now_ms / 1000.0, (BookLevel(100.0, 1.0, 1),), (BookLevel(101.0, 1.0, 1),))
            await conn.send(orjson.dumps(book_message(book)).decode())
            sent["book"] += 1
            if sent["book"] % 3 == 0:
                tid = sent["book"]
                await conn.send(orjson.dumps(trades_message([Trade("BTC", 0.0, now_ms / 1000.0, 100.5, 0.1, "B",
                                                                   tid)])).decode())  # fmt: skip
                sent["trades"] += 1
            await asyncio.sleep(0.02)
        # first connection: drop without a close handshake, like a network fault

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        rec = Recorder(tmp_path, ["BTC"], flush_s=0.5, raw=True)
        stop = asyncio.Event()

        async def stopper() -> None:
            while sent["book"] < 40:
                await asyncio.sleep(0.05)
            stop.set()

        task = asyncio.create_task(stopper())
        st = await asyncio.wait_for(record(rec, f"ws://127.0.0.1:{port}/ws", stop=stop, tick_s=0.05), 30)
        await task
    assert connections == 2
    assert {s["type"] for s in subs} == {"l2Book", "trades", "bbo", "activeAssetCtx"}
    assert st.rows["book"] >= 30  # books delivered before the stop; same-ms duplicates are dropped
    evs = list(open_source(tmp_path, "BTC"))
    assert sum(isinstance(e, BookSnapshot) for e in evs) == st.rows["book"]
    assert sum(isinstance(e, Trade) for e in evs) == st.rows["trades"]
    gaps = read_gaps(tmp_path, "BTC")
    assert len(gaps) == 1 and gaps[0].reason.startswith("disconnect") and gaps[0].end_ts > gaps[0].start_ts
    assert list(open_source(tmp_path / "raw", "BTC")) == evs  # the raw capture replays identically
