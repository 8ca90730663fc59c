"""HTML report: result dir round trip, self-contained output with every plot, pure helpers, the command."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from hlmm.cli import main
from hlmm.config import load_config
from hlmm.engine.recorder import EngineRecorder
from hlmm.engine.runner import run_backtest, synthetic_source
from hlmm.report.html import (
    ReportSampler,
    ResultDirError,
    decimate,
    drawdown,
    load_result_dir,
    markout_curve,
    nice_ticks,
    render_html,
    write_report,
    write_result_dir,
)


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = load_config(None, [])
    sampler = ReportSampler()
    res = run_backtest(synthetic_source("btc", duration_s=180.0, seed=4, warm_s=300.0), cfg, seed=4,
                       duration_s=180.0, on_timer=sampler.on_timer)  # fmt: skip
    assert sampler.estimators
    return write_result_dir(res.engine, res.summary, tmp_path_factory.mktemp("res"), sampler=sampler)


def test_result_dir_round_trip(result_dir: Path) -> None:
    summary, doc = load_result_dir(result_dir)
    assert summary["coin"] == "BTC" and doc["format_version"] == 1 and doc["coin"] == "BTC"
    s = doc["series"]
    assert len(s["fills"]) == summary["n_fills"] > 0
    assert s["quotes"] and s["mids"] and s["pnl"] and s["estimators"]
    assert all(len(q) == 5 for q in s["quotes"])


def test_report_is_self_contained_with_every_plot(result_dir: Path) -> None:
    p = write_report(result_dir)
    text = p.read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text and "<link" not in text and "@import" not in text
    urls = set(re.findall(r"https?://[^\"' )<]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # nothing to fetch: works offline
    for title in ("Mid, our best bid/ask and fills", "Inventory", "PnL (USD, at mid)", "Drawdown", "Markout curve",
                  "Quoted spread", "Estimator: sigma", "Estimator: kappa", "Summary JSON"):  # fmt: skip
        assert title in text, title
    assert text.count("<svg") >= 9
    assert "NaN" not in re.sub(r"<pre>.*</pre>", "", text, flags=re.S)  # no NaN leaked into SVG coordinates


def test_rejection_timeline_and_empty_inputs() -> None:
    rec = EngineRecorder(start_ts=100.0)
    doc = {"format": "hlmm-result", "format_version": 1, "coin": "X", "start_ts": 100.0,
           "series": {"quotes": [], "fills": [], "mids": [], "pnl": [], "position": [], "resting": [],
                      "rejections": {"post_only_cross": 2},
                      "rejection_events": [[101.0, "post_only_cross", 1], [105.0, "post_only_cross", 1]]}}  # fmt: skip
    html_text = render_html({"coin": "X", "kill": "max_drawdown"}, doc)
    assert "Rejection timeline" in html_text and "post_only_cross" in html_text
    assert rec.quotes == []


def test_markout_curve_by_hand() -> None:
    mids = [[0.0, 100.0], [1.0, 101.0], [2.0, 99.0]]
    fills = [[0.0, True, 100.0, 1.0, 0.0, True, 100.0], [0.0, False, 100.0, 1.0, 0.0, True, 100.0]]
    curve = markout_curve(fills, mids, horizons=(0.0, 1.0, 2.0, 5.0))
    assert curve[0] == (0.0, 0.0, 2)
    assert curve[1] == (1.0, 0.0, 2)  # +100 bps buy, -100 bps sell
    only_buy = markout_curve(fills[:1], mids, horizons=(1.0, 2.0, 5.0))
    assert only_buy[0][1] == pytest.approx(100.0) and only_buy[1][1] == pytest.approx(-100.0)
    assert math.isnan(only_buy[2][1]) and only_buy[2][2] == 0  # past the end of data: left out


def test_markout_curve_net_of_fees_by_hand() -> None:
    mids = [[0.0, 100.0], [1.0, 101.0], [2.0, 99.0]]
    # buy 1 @ 100 with a 0.02 USD rebate (-2 bp of 100 USD); sell 2 @ 100 paying 0.1 USD (+5 bp of 200 USD)
    fills = [[0.0, True, 100.0, 1.0, -0.02, True, 100.0], [0.0, False, 100.0, 2.0, 0.1, False, 100.0]]
    gross = markout_curve(fills, mids, horizons=(1.0,))
    net = markout_curve(fills, mids, horizons=(1.0,), net=True)
    assert gross[0][1] == pytest.approx(0.0)  # (+100 - 100) / 2
    assert net[0][1] == pytest.approx(-1.5) and net[0][2] == 2  # ((100 + 2) + (-100 - 5)) / 2 = -3/2


def test_report_shows_sharpe_reason_and_net_markouts() -> None:
    doc = {"format": "hlmm-result", "format_version": 1, "coin": "X", "start_ts": 0.0,
           "series": {"quotes": [], "fills": [], "mids": [], "pnl": [], "position": [], "resting": []}}  # fmt: skip
    summary = {"coin": "X", "sharpe": None, "sharpe_se": None, "sharpe_interval_s": 60.0, "sharpe_n_intervals": 9,
               "markout_10s": 0.5, "markout_10s_net": -1.0, "fee_bps_per_fill": 1.5}  # fmt: skip
    text = render_html(summary, doc)
    assert "n/a (&lt; 100 intervals of 60 s: 9)" in text
    assert "<b class=\"\">-1</b><span>markout 10 s net of fees (bps)</span>" in text
    assert "<b class=\"\">1.5</b><span>fee per fill (bps)</span>" in text
    assert "<td>markout_10s_net</td><td>-1</td>" in text
    summary |= {"sharpe": 3.0, "sharpe_se": 1.25, "sharpe_n_intervals": 150}
    assert "3.0000 ± 1.2500 (150 intervals of 60 s)" in render_html(summary, doc)


def test_drawdown_ticks_decimate() -> None:
    assert drawdown([0.0, 2.0, 1.0, 3.0, 0.5]) == [0.0, 0.0, 1.0, 0.0, 2.5]
    assert nice_ticks(0.0, 1.0, 5) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(3.0, 3.0) == [3.0]
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 500.0)
    y[777] = 5.0
    dx, dy = decimate(x, y, 200)
    assert len(dx) <= 4 * 200 + 8 and dy.max() == 5.0 and dy.min() == y.min()
    assert dx[0] == 0 and dx[-1] == x[-1]


def test_errors_and_command(result_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ResultDirError, match=r"missing summary\.json"):
        load_result_dir(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{}")
    (bad / "series.json").write_bytes(orjson.dumps({"format": "hlmm-result", "format_version": 9}))
    with pytest.raises(ResultDirError, match="not supported"):
        load_result_dir(bad)
    assert main(["report", str(bad)]) == 2
    out = tmp_path / "r.html"
    assert main(["report", str(result_dir), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and "report written" in capsys.readouterr().out
    with pytest.raises(TypeError):
        write_result_dir(object(), {}, tmp_path / "x")
