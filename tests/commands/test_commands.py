"""CLI: backtest/paper/demo end to end, JSON output, bad input exits 2, kill state survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hlmm.cli import main


def _common(tmp_path: Path) -> list[str]:
    return ["--set", f"run.log_dir={json.dumps(str(tmp_path / 'logs'))}",
            "--set", f"run.state_dir={json.dumps(str(tmp_path / 'state'))}"]


REQUIRED = (
    "pnl_total", "pnl_realized", "pnl_unrealized", "fees", "funding", "n_fills", "maker_volume_usd",
    "taker_volume_usd", "max_abs_position", "max_order_size", "max_position_limit", "max_drawdown", "sharpe",
    "markout_1s", "markout_10s", "markout_60s", "time_to_first_quote_s", "quote_uptime_both_sides", "rejections",
    "kill", "duration_s", "n_events", "events_per_s",
)


def test_backtest_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    rc = main(["backtest", "--preset", "btc", "--duration", "300", "--seed", "2", "--json", str(out), "--no-progress",
               *_common(tmp_path)])
    assert rc == 0
    s = json.loads(out.read_text())
    for k in REQUIRED:
        assert k in s, k
    assert s["coin"] == "BTC" and s["pnl_check"]["balanced"]
    assert "PnL total" in capsys.readouterr().out
    assert (tmp_path / "logs" / "backtest.jsonl").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "coins.BTC.risk.max_position_usd=-1"],
        ["--coin", "DOGE"],
        ["--preset", "btc", "--data", "x.gz"],
        ["--duration", "0"],
        ["--data", "/nonexistent/file.gz", "--coin", "BTC"],
        ["--config", "/nonexistent.toml"],
    ],
)
def test_bad_input_exits_2(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--no-progress", *_common(tmp_path), *argv])
    assert e.value.code == 2


def test_kill_state_survives_restart(tmp_path: Path) -> None:
    ks = tmp_path / "kill.json"
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    # market data "older" than 10 ms (the feed latency is 100 ms): the stale-data kill fires at once
    base = ["backtest", "--preset", "btc", "--duration", "60", "--no-progress", "--kill-state", str(ks),
            *_common(tmp_path)]
    assert main([*base, "--json", str(out1), "--set", "coins.BTC.risk.max_data_stale_s=0.01"]) == 3  # killed: exit 3
    s1 = json.loads(out1.read_text())
    assert s1["kill"] is not None and ks.exists()
    # a normal config, same kill state: still killed, never quotes
    assert main([*base, "--json", str(out2)]) == 3  # still killed (latched)
    s2 = json.loads(out2.read_text())
    assert s2["kill"] == s1["kill"]
    assert s2["n_orders_placed"] == 0 and s2["time_to_first_quote_s"] is None


def test_demo_quotes_and_fills(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    rc = main(["demo", "--duration", "30", "--speed", "10", "--no-ui", "--json", str(out), *_common(tmp_path)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["coin"] == "hyna:HYPE" and s["mode"] == "paper"
    assert s["time_to_first_quote_s"] is not None and s["time_to_first_quote_s"] <= 5.0
    assert s["n_fills"] > 0
    assert s["resting_after_shutdown"] == 0
    assert s["pnl_check"]["balanced"]


def test_demo_bad_config_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--no-ui", "--set", "coins.hyna:HYPE.strategy.levels=0", *_common(tmp_path)])
    assert e.value.code == 2


def test_paper_replay_of_real_capture(tmp_path: Path) -> None:
    real = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
    raw = real / "hyperliquid_BTC_ws_raw_2025-01-26.gz"
    if not raw.exists():
        pytest.skip("real capture not available")
    out = tmp_path / "p.json"
    rc = main(["paper", "--data", str(raw), "--coin", "BTC", "--duration", "25", "--speed", "20", "--no-ui",
               "--json", str(out), *_common(tmp_path)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["n_events"] > 40 and s["pnl_check"]["balanced"]
