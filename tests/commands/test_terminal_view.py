"""The live terminal view renders our quotes, limits, PnL, estimator and kill state."""

from __future__ import annotations

from rich.console import Console

from hlmm.report.terminal import View, render


def _text(v: View) -> str:
    c = Console(record=True, width=140, color_system=None)
    c.print(render(v))
    return c.export_text()


def test_render_marks_our_quotes_and_state() -> None:
    v = View(
        coin="hyna:HYPE", elapsed_s=12.0, duration_s=60.0, note="demo: livelier synthetic market",
        mid=32.9845, book_bids=[(32.977, 10.0), (32.97, 5.0)], book_asks=[(32.992, 8.0), (33.0, 3.0)],
        book_age_s=0.4, our_bids={32.96: 0.38}, our_asks={32.992: 0.38}, position=0.38, max_position=1.51,
        max_position_usd=50.0, pnl_total=0.0123, n_fills=2,
        recent_fills=[(5.0, True, 32.96, 0.38, True)],
        est={"sigma": 4e-4, "A": 0.5, "kappa": 2000.0, "warmup": 0.6, "ready": True, "reason": "warm_start"},
        rejections={"post_only_cross": 1},
    )
    out = _text(v)
    assert "► 0.38" in out and "0.38 ◄" in out
    assert "32.96" in out  # our bid below the shown market levels still appears
    assert "max 50 USD" in out
    assert "warm_start" in out and "armed" in out
    assert "post_only_cross=1" in out
    assert "demo: livelier" in out


def test_render_kill_and_empty_book() -> None:
    out = _text(View(coin="BTC", elapsed_s=0.0, kill="drawdown 5.1 from peak 6.0"))
    assert "KILLED: drawdown" in out
    assert "no state yet" in out
