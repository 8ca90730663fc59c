"""The summary's PnL check with a position inherited at start (issue 9 item 6): the independent ledger opens
with what the engine held after the start-up sync, so it balances instead of printing MISMATCH."""

from __future__ import annotations

import pytest

from hlmm.engine.portfolio import Portfolio
from hlmm.engine.summary import RunStats, build_summary, format_summary
from hlmm.venue.base import Fill, PlaceOrder

T0 = 1_700_000_000.0


def session(opening: bool) -> dict:
    pf = Portfolio()
    pf.adopt(2.0, 100.0)  # inherited at start (sync with the venue's position)
    stats = RunStats("BTC", T0)
    if opening:
        stats.set_opening(pf)
    stats.on_actions([PlaceOrder(coin="BTC", cloid="0x1", is_buy=False, px=105.0, sz=0.5)], T0 + 1)
    stats.on_mid(T0, 100.0)
    f = Fill(ts=T0 + 2, coin="BTC", cloid="0x1", oid=1, tid=1, is_buy=False, px=105.0, sz=0.5, fee=0.02,
             is_maker=True, remaining=0.0)
    stats.on_venue(f)
    pf.on_fill(f)
    stats.on_mid(T0 + 3, 104.0)
    return build_summary(stats, end_ts=T0 + 4, max_position_usd=1000.0, portfolio=pf, mode="live",
                         venue_position=1.5)


def test_pnl_check_balances_with_a_position_inherited_at_start() -> None:
    s = session(opening=True)
    chk = s["pnl_check"]
    assert chk["balanced"], chk
    assert chk["diff"] == pytest.approx(0.0, abs=1e-9)
    assert chk["position"] == pytest.approx(1.5) and chk["opening_position"] == 2.0
    assert s["pnl_total"] == pytest.approx(1.5 * 4.0 + 0.5 * 5.0 - 0.02)
    assert s["max_abs_position"] == pytest.approx(2.0)
    assert "balanced" in format_summary(s) and "MISMATCH" not in format_summary(s)


def test_without_the_opening_the_check_still_flags_a_real_mismatch() -> None:
    """The ledger is independent: an inherited position it was not told about is still a mismatch."""
    assert not session(opening=False)["pnl_check"]["balanced"]
