"""The trader's side of the guardian (hlmm.guardian.launcher) with a real guardian process: the key travels only on
the pipe, "done" gives exit 0, a guardian that dies is noticed (on_lost), and a handover cancels without killing
the trader (this test process is the trader here)."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from hlmm.guardian.launcher import Guardian
from hlmm.venue.hyperliquid.wallet import Wallet

KEY = "0x" + "5a" * 32


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.events.append((level, event, kw))


def _guardian(url: str, wallet: Wallet, log: Log, **kw: Any) -> Guardian:
    return Guardian(wallet=wallet, url=url, is_mainnet=False, account=wallet.address, vault=None, coins={"BTC": 0},
                    timeout_s=30.0, nonce_last=lambda: 1, known_orders=lambda: [], log=log, out=lambda s: None,
                    **kw)


async def _until(cond, timeout_s: float = 20.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return bool(cond())


async def test_key_only_on_the_pipe_and_done_exits_0(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HLMM_PRIVATE_KEY", KEY)
    seen = tmp_path / "seen"
    shim = tmp_path / "python"  # records the guardian's argv and environment, then runs the real interpreter
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\nenv >> {seen}\nexec {sys.executable} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    log = Log()
    g = _guardian("http://127.0.0.1:9", Wallet.from_key(KEY), log, python=str(shim))
    await g.start()
    assert g.pid is not None and g.beats_sent >= 1
    text = seen.read_text()
    assert "hlmm.guardian" in text and KEY[2:] not in text and "HLMM_PRIVATE_KEY" not in text
    assert await g.stop(clean=True) == 0  # nothing is asked of the (unreachable) exchange


async def test_a_guardian_that_dies_is_noticed() -> None:
    lost = asyncio.Event()
    g = _guardian("http://127.0.0.1:9", Wallet.from_key(KEY), Log(), on_lost=lost.set)
    await g.start()
    assert g.proc is not None
    os.kill(g.proc.pid, 9)
    await asyncio.wait_for(lost.wait(), 20)
    await g.stop(clean=True)


async def test_handover_cancels_and_leaves_the_trader_alive() -> None:
    from tests.e2e.harness import make_server

    with make_server() as st:
        g = _guardian(st.url, Wallet.from_key(KEY), Log())
        await g.start()
        rc = await g.stop(clean=False, wait_s=30.0)
    assert rc == 3  # fired, and the exchange shows none of ours; and we (the trader) were not SIGKILLed
