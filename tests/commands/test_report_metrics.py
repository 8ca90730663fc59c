"""Report and metrics hooks: ``hlmm backtest --report DIR`` and the Prometheus endpoint of paper/live sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from hlmm.cli import main
from hlmm.config import load_config
from hlmm.engine.runner import synthetic_source
from hlmm.engine.runner_paper import run_paper


def _common(tmp_path: Path) -> list[str]:
    return ["--set", f"run.log_dir={json.dumps(str(tmp_path / 'logs'))}",
            "--set", f"run.state_dir={json.dumps(str(tmp_path / 'state'))}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backtest_report_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    rc = main(["backtest", "--preset", "btc", "--duration", "120", "--no-progress", "--report", str(out),
               *_common(tmp_path)])
    assert rc == 0
    page = out / "report.html"
    assert (out / "summary.json").exists() and (out / "series.json").exists()
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "<html" in html.lower()
    series = json.loads((out / "series.json").read_text())
    assert series  # the sampler's timeline went in
    assert f"report written to {page}" in capsys.readouterr().out


async def _scrape_until(port: int, needle: str, stop: asyncio.Event, tries: int = 200) -> str | None:
    async with aiohttp.ClientSession() as s:
        for _ in range(tries):
            if stop.is_set():
                return None
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with s.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    text = await r.text()
                    if needle in text:
                        return text
            await asyncio.sleep(0.05)
    return None


async def test_paper_session_serves_metrics_and_releases_the_port() -> None:
    cfg = load_config(None, ["coins.BTC.reference.binance_symbol=off"])
    src = synthetic_source("btc", duration_s=40.0, seed=4)
    port = _free_port()
    done = asyncio.Event()
    run = asyncio.create_task(run_paper(src, cfg, duration_s=40.0, speed=20.0, metrics_port=port))
    try:
        text = await asyncio.wait_for(_scrape_until(port, 'hlmm_position{coin="BTC"}', done), 30)
    finally:
        res = await asyncio.wait_for(run, 60)
        done.set()
    assert text is not None, "the position gauge was never served"
    assert 'hlmm_max_position_usd{coin="BTC"}' in text
    assert res.metrics_port == port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # stopped at exit: nothing listens any more


def test_bad_metrics_port_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["paper", "--preset", "btc", "--duration", "1", "--no-ui", "--metrics-port", "70000",
              *_common(tmp_path)])
    assert e.value.code == 2
