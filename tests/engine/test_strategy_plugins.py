"""Strategy plug-ins through the engine: every kind runs in a backtest, a user ``module:Class`` runs in backtest
and paper unchanged, and a hostile strategy cannot get an order above the per-order cap or through the book."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from hlmm.cli import main
from hlmm.config import load_config
from hlmm.engine.runner import run_backtest, synthetic_source
from hlmm.engine.runner_paper import run_paper

USER = "tests.strategy.user_strategy"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_strategy.py"


def _backtest(tmp_path: Path, *sets: str) -> dict:
    out = tmp_path / "s.json"
    argv = ["backtest", "--preset", "btc", "--duration", "300", "--seed", "3", "--json", str(out), "--no-progress",
            "--set", f"run.log_dir={json.dumps(str(tmp_path / 'logs'))}",
            "--set", f"run.state_dir={json.dumps(str(tmp_path / 'state'))}"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("kind", ["grid", "avellaneda", f'"{USER}:OneLevel"', f'"{EXAMPLE}:MyStrategy"'])
def test_backtest_runs_for_every_strategy_kind(kind: str, tmp_path: Path) -> None:
    s = _backtest(tmp_path, f"coins.BTC.strategy.kind={kind}")
    assert s["n_orders_placed"] > 0 and s["pnl_check"]["balanced"]
    assert s["crossing_at_send"] == 0 and s["resting_after_shutdown"] == 0
    assert s["max_order_usd"] <= 0.25 * s["max_position_limit"] + 1e-6


def test_hostile_strategy_in_a_backtest_stays_within_every_cap(tmp_path: Path) -> None:
    s = _backtest(tmp_path, f'coins.BTC.strategy.kind="{USER}:Hostile"')
    assert s["n_orders_placed"] > 0
    assert s["crossing_at_send"] == 0 and s["crossing_own_at_send"] == 0
    assert s["max_order_usd"] <= 0.25 * s["max_position_limit"] * 1.01  # eff max at the best bid, sent near it
    assert s["max_abs_position_usd"] <= s["max_position_limit"] * 1.01


def test_user_strategy_runs_in_backtest_and_paper_unchanged() -> None:
    mod = importlib.import_module(USER)  # the module object the config imports (by its dotted name)
    cfg = load_config(None, [f'coins.hyna:HYPE.strategy.kind="{USER}:OneLevel"',
                             'coins.hyna:HYPE.strategy.custom.offset_bps=2.0'])
    n0 = mod.OneLevel.n_calls
    src = synthetic_source("hype_quiet", duration_s=120.0, seed=4, start_ts=1_750_000_000.0)
    res = run_backtest(src, cfg, seed=4)
    assert type(res.engine.strategy).__name__ == "OneLevel"
    assert mod.OneLevel.n_calls > n0 and res.summary["n_orders_placed"] > 0
    n1 = mod.OneLevel.n_calls

    import asyncio

    src = synthetic_source("hype_quiet", duration_s=600.0, seed=5, start_ts=1_750_000_000.0,
                           overrides={"trade_rate_at_touch": 0.5})
    pres = asyncio.run(run_paper(src, cfg, duration_s=20.0, speed=20.0))
    assert pres.stopped_by == "duration"
    assert type(pres.engine.strategy).__name__ == "OneLevel" and mod.OneLevel.n_calls > n1
    assert pres.summary["n_orders_placed"] > 0 and pres.summary["resting_after_shutdown"] == 0


@pytest.mark.parametrize("allow", [False, True])
def test_min_order_over_cap_in_a_backtest(allow: bool) -> None:
    """HYPE with a 39 USD max position: 25% is below the 10 USD minimum. No order at all unless allowed."""
    cfg = load_config(None, ["coins.hyna:HYPE.risk.max_position_usd=39",
                             f"coins.hyna:HYPE.risk.allow_min_order_over_cap={str(allow).lower()}"])
    src = synthetic_source("hype_quiet", duration_s=120.0, seed=4, start_ts=1_750_000_000.0)
    res = run_backtest(src, cfg, seed=4)
    s = res.summary
    if allow:
        assert s["n_orders_placed"] > 0
    else:
        assert s["n_orders_placed"] == 0 and s["n_fills"] == 0
        assert res.engine.last_ladder is not None and "not quoting" in res.engine.last_ladder.reason
