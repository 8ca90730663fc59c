"""Differential test (issue 10 item 6): the shipped samples and a synthetic hour-slice replay to exactly the
summaries recorded before ``run_backtest`` was split into setup / loop / teardown. A refactor of the backtest path
must leave every figure unchanged; a deliberate behaviour change regenerates the golden file in the same commit
and says why (``python tests/engine/test_backtest_golden.py --write``)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from hlmm.config import load_config
from hlmm.engine.runner import replay_source, run_backtest, synthetic_source

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "backtest_summaries.json"
VOLATILE = {"wall_s", "events_per_s", "source"}  # wall-clock figures, and the path as given
CASES: dict[str, tuple[str, str, int]] = {
    "btc": ("data/sample/btc", "BTC", 3),
    "btc_parquet": ("data/sample/btc_parquet", "BTC", 3),
    "hype_quiet": ("data/sample/hype_quiet", "hyna:HYPE", 3),
}


def summaries() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (path, coin, seed) in CASES.items():
        s = run_backtest(replay_source(ROOT / path, coin), load_config(None), seed=seed).summary
        out[name] = {k: v for k, v in s.items() if k not in VOLATILE}
    s = run_backtest(synthetic_source("btc", duration_s=600.0, seed=7), load_config(None), seed=7).summary
    out["synthetic_btc_600s"] = {k: v for k, v in s.items() if k not in VOLATILE}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):  # bit-exact on one machine; 1e-12 across CPUs' libm
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("name", [*CASES, "synthetic_btc_600s"])
def test_backtest_summary_matches_the_recorded_one(name: str) -> None:
    want = json.loads(GOLDEN.read_text())[name]
    got = summaries_cache()[name]
    diff = {k: (want.get(k), got.get(k)) for k in set(want) | set(got) if not _same(want.get(k), got.get(k))}
    assert not diff, f"{name}: summary changed: {diff}"


_CACHE: dict[str, dict[str, Any]] = {}


def summaries_cache() -> dict[str, dict[str, Any]]:
    if not _CACHE:
        _CACHE.update(summaries())
    return _CACHE


if __name__ == "__main__" and "--write" in sys.argv:
    s = summaries()
    GOLDEN.write_text(json.dumps({k: {kk: vv for kk, vv in v.items()} for k, v in s.items()}, indent=1,
                                 sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
