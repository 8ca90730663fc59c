"""open_source: files, directories, synthetic streams (synth -> raw file -> replay), manifest checks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hlmm.cli import main
from hlmm.data.replay import SourceError, open_source, register_reader
from hlmm.data.synth_files import write_synthetic
from hlmm.market.events import Bbo, BookSnapshot, Trade
from hlmm.sim.synthetic import SyntheticMarket, preset

REAL = Path("../shared/data/real")


def test_synth_file_replays_identically(tmp_path: Path) -> None:
    params = preset("btc", seed=7)
    path = write_synthetic(tmp_path, params, 120.0)
    replayed = list(open_source(tmp_path, "BTC"))
    direct = list(SyntheticMarket(params).events(120.0))
    assert replayed == direct
    assert list(open_source(path, "BTC")) == direct
    with pytest.raises(FileExistsError):
        write_synthetic(tmp_path, params, 1.0)


def test_cli_synth_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert main(["synth", "--preset", "hype_quiet", "--duration", "300", "--seed", "1", "--out", str(out)]) == 0
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["format_version"] == 1 and manifest["coin"] == "hyna:HYPE" and manifest["params"]["seed"] == 1
    evs = list(open_source(out, "hyna:HYPE"))
    assert evs == list(SyntheticMarket(preset("hype_quiet", seed=1)).events(300))
    assert main(["synth", "--preset", "btc", "--param", "nope=1", "--out", str(tmp_path / "t")]) == 2
    assert "nope" in capsys.readouterr().err


def test_directory_merges_two_coins_by_ts(tmp_path: Path) -> None:
    write_synthetic(tmp_path, preset("btc", seed=1, md_latency_s=0.25), 30.0)
    write_synthetic(tmp_path, preset("hype_quiet", seed=1), 30.0)
    btc = list(open_source(tmp_path, "BTC"))
    assert btc and {e.coin for e in btc} == {"BTC"}  # type: ignore[union-attr]
    # a directory of two files for one coin merges by ts
    d2 = tmp_path / "two"
    d2.mkdir()
    (d2 / "a.raw.gz").write_bytes((tmp_path / "BTC.raw.gz").read_bytes())
    write_synthetic(tmp_path / "x", preset("btc", seed=2, start_px=71_000.0), 30.0, start_ts=1_750_000_000.25)
    (d2 / "b.raw.gz").write_bytes((tmp_path / "x" / "BTC.raw.gz").read_bytes())
    merged = list(open_source(d2, "BTC"))
    assert len(merged) == len(btc) + len(list(open_source(tmp_path / "x", "BTC")))
    assert [e.ts for e in merged] == sorted(e.ts for e in merged)


def test_manifest_version_and_errors(tmp_path: Path) -> None:
    write_synthetic(tmp_path, preset("btc"), 2.0)
    (tmp_path / "manifest.json").write_bytes(orjson.dumps({"format": "hlmm-raw-ws", "format_version": 99}))
    with pytest.raises(SourceError, match="format_version"):
        list(open_source(tmp_path, "BTC"))
    with pytest.raises(SourceError, match="no such"):
        open_source(tmp_path / "missing", "BTC")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no market data"):
        open_source(empty, "BTC")
    (empty / "x.parquet").write_bytes(b"")
    with pytest.raises(SourceError, match="Parquet"):
        list(open_source(empty / "x.parquet", "BTC"))
    (empty / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="unknown format"):
        open_source(empty / "notes.txt", "BTC")


def test_register_reader_extension_point(tmp_path: Path) -> None:
    f = tmp_path / "a.fake"
    f.write_text("")
    register_reader(".fake", lambda path, coin: iter([Bbo(coin, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0)]))
    assert [e.coin for e in open_source(f, "ETH")] == ["ETH"]  # type: ignore[union-attr]


def test_real_directory() -> None:
    if not (REAL / "hyperliquid_BTC_ws_raw_2025-01-26.gz").exists():
        pytest.skip("real data not available")
    evs = list(open_source(REAL, "BTC"))
    kinds = {type(e) for e in evs}
    assert kinds == {Bbo, Trade, BookSnapshot}
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)
    assert list(open_source(REAL, "ETH")) == []  # the raw capture holds no ETH; CSVs are named for BTC
    csv_only = list(open_source(REAL / "hyperliquid_BTC_trades_2025-09-01_to_09-07.csv", "BTC"))
    assert sum(isinstance(e, Bbo) for e in csv_only) == 27_551
