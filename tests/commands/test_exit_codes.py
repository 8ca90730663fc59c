"""Issue 9 item 13 (part): a session ended by the risk kill exits 3 (distinct from 1 = error, 2 = config/usage),
and ``hlmm --help`` documents the codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hlmm.cli import build_parser, main
from hlmm.commands.common import EXIT_KILLED


def test_backtest_killed_by_risk_exits_3(tmp_path: Path) -> None:
    rc = main(["backtest", "--preset", "btc", "--duration", "600", "--seed", "3", "--no-progress",
               "--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "s.json"),
               "--set", "coins.BTC.risk.daily_loss_limit_usd=0.01"])
    s = json.loads((tmp_path / "s.json").read_text()) if (tmp_path / "s.json").exists() else {}
    if not s.get("kill"):
        pytest.skip(f"this configuration did not trigger a kill (rc {rc})")
    assert rc == EXIT_KILLED == 3


def test_config_error_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--preset", "btc", "--duration", "10", "--no-progress",
              "--set", "coins.BTC.risk.max_position_usd=inf"])
    assert e.value.code == 2


def test_help_documents_exit_codes() -> None:
    epilog = build_parser().epilog or ""
    assert "3 killed by risk" in epilog and "2 config" in epilog and "1 error" in epilog
