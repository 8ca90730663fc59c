"""``hlmm run`` / run_live against the loopback fake Hyperliquid: paper and live, plus the no-key refusal."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from hlmm.cli import main
from hlmm.config import load_config
from hlmm.engine.live_runner import run_live
from hlmm.venue.hyperliquid.wallet import Wallet
from tests.venue.hyperliquid.fake_hl import FakeHL

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


def test_live_refuses_without_key(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.delenv("HLMM_PRIVATE_KEY", raising=False)
    rc = main(["run", "--coin", "BTC", "--mode", "live", "--network", "local", "--duration", "1",
               "--state-dir", str(tmp_path), "--log-dir", str(tmp_path), "--set", "run.local_url=http://127.0.0.1:9"])
    assert rc == 2
    assert "HLMM_PRIVATE_KEY" in capsys.readouterr().err


async def _pusher(fake: FakeHL) -> None:
    t = 0
    while True:
        t += 1
        bid, ask = fake.books["BTC"]
        ms = int(time.time() * 1000)
        book = {"coin": "BTC", "time": ms, "levels": [[{"px": f"{bid - i:g}", "sz": "1.5", "n": 3} for i in range(5)],
                                                    [{"px": f"{ask + i:g}", "sz": "1.5", "n": 3} for i in range(5)]]}
        await fake.push("l2Book", book, {"coin": "BTC"})
        await asyncio.sleep(0.2)


async def _session(mode: str, tmp_path, out: list[str] | None = None, sets: tuple[str, ...] = (),
                   **kw) -> tuple[FakeHL, object, list[str]]:
    w = Wallet.from_key(KEY)
    fake = await FakeHL(w.address).start()
    cfg = load_config(None, [f"run.local_url={fake.url}", "coins.BTC.reference.binance_symbol=off",
                             "coins.BTC.estimators.warmup_timeout_s=1", *sets])
    out = out if out is not None else []
    push = asyncio.create_task(_pusher(fake))
    try:
        res = await asyncio.wait_for(run_live(cfg, "BTC", mode=mode, network="local", duration_s=3.0,
                                              wallet=w if mode == "live" else None, out=out.append, **kw), 60)
    finally:
        push.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await push
        await fake.stop()
    return fake, res, out


async def test_paper_session_on_live_data(tmp_path) -> None:
    fake, res, out = await _session("paper", tmp_path)
    assert res.summary is not None and res.stopped_by == "duration"
    assert res.resting_after_shutdown == 0
    assert fake.actions == []  # paper never signs anything
    assert res.stats.first_quote_ts is not None  # quoted on the live feed (simulated fills)
    assert any("reference feed: off" in line for line in out)
    assert res.engine.ref_symbol is None and res.engine.ref_signal is None  # the engine runs what was resolved
    assert res.engine.foreign_orders == "cancel"


async def test_live_session_signed_orders_and_clean_shutdown(tmp_path) -> None:
    fake, res, out = await _session("live", tmp_path)
    assert res.summary is not None
    types = [a["type"] for a in fake.actions]
    assert "scheduleCancel" in types  # dead man's switch armed
    assert "order" in types  # the engine quoted, every action's signature verified by the fake
    assert fake.orders == {}  # nothing left resting after shutdown
    assert res.resting_after_shutdown == 0
    text = "\n".join(out)
    assert "account" in text and "signer" in text and KEY[2:] not in text


async def test_live_session_serves_metrics_with_budget(tmp_path) -> None:
    import aiohttp

    out: list[str] = []
    scraped: list[str] = []

    async def scrape() -> None:  # the runner prints the metrics URL (port 0: any free port) through ``out``
        async with aiohttp.ClientSession() as s:
            for _ in range(300):
                line = next((x for x in out if x.startswith("metrics: ")), None)
                if line is not None:
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with s.get(line.split()[1], timeout=aiohttp.ClientTimeout(total=2)) as r:
                            text = await r.text()
                            if 'hlmm_position{coin="BTC"}' in text and "hlmm_request_budget_left" in text:
                                scraped.append(text)
                                return
                await asyncio.sleep(0.05)

    task = asyncio.create_task(scrape())
    try:
        _, res, _ = await _session("live", tmp_path, out=out, metrics_port=0)
    finally:
        await asyncio.wait_for(task, 30)
    assert scraped, "position gauge and request budget never served"
    assert res.resting_after_shutdown == 0


@pytest.mark.parametrize("cls", ["OneLevel", "Hostile"])
async def test_live_session_with_a_user_strategy(tmp_path, cls: str) -> None:
    """A ``module:Class`` strategy runs live unchanged; even a hostile one sends nothing above the per-order cap."""
    kind = f'coins.BTC.strategy.kind="tests.strategy.user_strategy:{cls}"'
    fake, res, _ = await _session("live", tmp_path, sets=(kind,))
    assert type(res.engine.strategy).__name__ == cls
    orders = [w for a in fake.actions if a["type"] == "order" for w in a["orders"]]
    assert orders and fake.orders == {} and res.resting_after_shutdown == 0
    max_usd = res.engine.cfg.risk.max_position_usd
    for w in orders:
        assert float(w["s"]) <= 0.25 * res.engine.inst.floor_size(max_usd / min(*fake.books["BTC"])) + 1e-9, w
