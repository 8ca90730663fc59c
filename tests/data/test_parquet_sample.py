"""The shipped sample data (data/sample/) backtests from the command line, raw and Parquet alike."""

from __future__ import annotations

from pathlib import Path

import orjson

from hlmm.cli import main
from hlmm.data.replay import open_source

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _backtest(tmp_path: Path, data: Path, coin: str, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    rc = main(["backtest", "--data", str(data), "--coin", coin, "--no-progress", "--log-dir", str(tmp_path / "logs"),
               "--json", str(out)])  # fmt: skip
    assert rc == 0
    return orjson.loads(out.read_bytes())


def test_sample_files_are_small_and_described() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 3_000_000
    assert (SAMPLE / "README.md").read_text().count("hlmm synth") >= 2


def test_btc_sample_backtests_identically_from_raw_and_parquet(tmp_path: Path) -> None:
    raw = _backtest(tmp_path, SAMPLE / "btc", "BTC", "raw")
    pq = _backtest(tmp_path, SAMPLE / "btc_parquet", "BTC", "pq")
    assert raw["n_fills"] > 0 and raw["kill"] is None and raw["pnl_check"]["balanced"]
    skip = {"wall_s", "events_per_s", "source"}
    assert {k: v for k, v in raw.items() if k not in skip} == {k: v for k, v in pq.items() if k not in skip}
    assert list(open_source(SAMPLE / "btc", "BTC")) == list(open_source(SAMPLE / "btc_parquet", "BTC"))


def test_hype_sample_backtest_runs(tmp_path: Path) -> None:
    s = _backtest(tmp_path, SAMPLE / "hype_quiet", "hyna:HYPE", "hype")
    assert s["coin"] == "hyna:HYPE" and s["n_events"] > 1000 and s["pnl_check"]["balanced"]
    assert s["duration_s"] > 850


def test_hype_sample_quotes_without_errors(tmp_path: Path) -> None:
    s = _backtest(tmp_path, SAMPLE / "hype_quiet", "hyna:HYPE", "hype2")
    assert s["kill"] is None and s["time_to_first_quote_s"] is not None
