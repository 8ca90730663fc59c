"""Issue 9 item 13 (part): a non-finite number anywhere in the config (inf, -inf, nan) is a config error with
its field path - ``max_position_usd = inf`` would silently disable the position cap."""

from __future__ import annotations

import pytest

from hlmm.config import ConfigError, load_config, load_config_dict


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_non_finite_override_is_refused_with_its_path(value: str) -> None:
    with pytest.raises(ConfigError, match=r"coins\.BTC\.risk\.max_position_usd"):
        load_config(None, [f"coins.BTC.risk.max_position_usd={value}"])


def test_non_finite_float_in_raw_config_is_refused() -> None:
    raw = {"coins": {"BTC": {"risk": {"max_position_usd": 1000.0, "daily_loss_limit_usd": float("inf"),
                                      "max_drawdown_usd": 50.0}}}}
    with pytest.raises(ConfigError, match=r"daily_loss_limit_usd.*finite"):
        load_config_dict(raw)


def test_finite_config_still_loads() -> None:
    cfg = load_config(None, ["coins.BTC.risk.max_position_usd=1234.5"])
    assert cfg.coin("BTC").risk.max_position_usd == 1234.5
