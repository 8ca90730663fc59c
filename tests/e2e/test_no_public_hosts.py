"""Issue 9 item 9: with ``--network local`` every endpoint follows the network, the Binance reference feed
included: ``hlmm run`` (live and paper, reference feed on) against the local exchange never resolves or connects
to a non-loopback host. The loopback guard (tests/netguard.py, an audit hook in every Python process the suite
starts) records and refuses any such attempt; these tests give the run its own guard log and check it is empty
while the run provably used its reference feed (the local server holds its Binance subscription)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import netguard

from .harness import COIN, KEY, MAX_POS_USD, Monitor, make_server
from .test_guardian import _wait

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _guarded_env(log: Path) -> dict[str, str]:
    return {**os.environ, netguard.ENV_LOG: str(log), "HLMM_PRIVATE_KEY": KEY}


def test_guard_refuses_and_records_a_public_lookup_in_a_subprocess(tmp_path):
    """The guard itself: a subprocess that resolves the public Binance host is refused and recorded (so an empty
    log below means nothing was attempted, not that nothing was watched)."""
    log = tmp_path / "guard.log"
    p = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('fstream.binance.com', 443)"],
                       env=_guarded_env(log), capture_output=True, timeout=60)
    assert p.returncode != 0 and b"netguard" in p.stderr
    seen = netguard.violations(str(log))
    assert len(seen) == 1 and "fstream.binance.com" in seen[0]


def _binance_subs(st) -> int:
    return st.sync(lambda: len(st.server._subs.get(("binance", COIN), ())), 5)  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["live", "paper"])
def test_local_run_never_leaves_loopback(tmp_path, mode):
    with make_server() as st:
        from hlmm.venue.hyperliquid.wallet import Wallet

        mon = Monitor(st, Wallet.from_key(KEY).address).start()
        cfg = tmp_path / "bot.toml"
        cfg.write_text(
            f'[run]\nnetwork = "local"\nlocal_url = "{st.url}"\nguardian_timeout_s = 5\n'
            f'[coins.{COIN}.risk]\nmax_position_usd = {MAX_POS_USD}\ndaily_loss_limit_usd = 500\n'
            f'max_drawdown_usd = 300\n[coins.{COIN}.estimators]\nwarmup_timeout_s = 2\n'
            f'[coins.{COIN}.reference]\nbinance_symbol = "btcusdt"\n')
        log = tmp_path / "guard.log"
        err = tmp_path / "run.err"
        with err.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "hlmm.cli", "run", "--coin", COIN, "--mode", mode,
                                     "--network", "local", "--duration", "90", "--config", str(cfg),
                                     "--state-dir", str(tmp_path / "state"), "--log-dir", str(tmp_path / "logs")],
                                    env=_guarded_env(log), stdout=subprocess.DEVNULL, stderr=f)
        try:
            # The run is really up: its reference feed is subscribed on the local server, and (live) it quotes.
            assert _wait(lambda: proc.poll() is not None or _binance_subs(st) > 0, 40), "no reference feed"
            assert proc.poll() is None, f"run exited early (rc {proc.poll()}): {err.read_text()[-2000:]}"
            if mode == "live":
                assert _wait(lambda: any(r > 0 for _, _, r, _ in mon.samples), 40), "never quoted"
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        finally:
            mon.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait(15)
        assert proc.returncode in (0, 130), err.read_text()[-2000:]
        assert netguard.violations(str(log)) == []
