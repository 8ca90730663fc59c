"""Issue 9 item 13: a session that ended by a kill exits 3 (documented, distinct from 1 = error and 2 = config) in
paper and live as in backtest, so a supervisor notices; nothing of ours rests after it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hlmm.commands.common import EXIT_KILLED
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import COIN, KEY, MAX_POS_USD, make_server, server_records

ADDR = Wallet.from_key(KEY).address


@pytest.mark.parametrize("mode", ["live", "paper"])
def test_killed_session_exits_3(tmp_path, mode):
    with make_server() as st:
        cfg = tmp_path / "bot.toml"
        cfg.write_text(
            f'[run]\nnetwork = "local"\nlocal_url = "{st.url}"\nguardian_timeout_s = 30\n'
            f'[coins.{COIN}.risk]\nmax_position_usd = {MAX_POS_USD}\ndaily_loss_limit_usd = 500\n'
            f'max_drawdown_usd = 300\nmax_data_stale_s = 0.001\n'  # any book is older than 1 ms: a kill
            f'[coins.{COIN}.estimators]\nwarmup_timeout_s = 1\n[coins.{COIN}.reference]\nbinance_symbol = "off"\n')
        p = subprocess.run([sys.executable, "-m", "hlmm.cli", "run", "--coin", COIN, "--mode", mode,
                            "--network", "local", "--duration", "60", "--config", str(cfg),
                            "--state-dir", str(tmp_path / "state"), "--log-dir", str(tmp_path / "logs")],
                           env={**os.environ, "HLMM_PRIVATE_KEY": KEY}, capture_output=True, timeout=120)
        assert p.returncode == EXIT_KILLED == 3, p.stderr.decode(errors="replace")[-2000:]
        assert b"killed by risk" in p.stderr
        assert server_records(st, ADDR)["resting"] == 0
