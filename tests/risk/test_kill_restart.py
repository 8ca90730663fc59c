"""Loss limits across restarts (issue 9 item 6): the daily loss and the drawdown are measured against persisted
day-start / peak values of the quantity a new process rebuilds (the day's fills + the position held when the day
window began, valued at the window's anchor), so a restart neither resets nor double-counts a loss.

Each ``Process`` does what the live runner does at start-up: load the kill state, ``resume_state`` it, rebuild the
day from the account's fills (the exchange's record), then check on every fill and persist like the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hlmm.engine.day_restore import position_at_start
from hlmm.engine.portfolio import Portfolio
from hlmm.risk import KillSwitch, RiskAction, RiskParams
from hlmm.risk.kill_switch import KillState, _day_bounds, resume_state
from hlmm.risk.store import KillStateStore
from hlmm.venue.base import Fill

DAY = datetime(2025, 9, 4, tzinfo=UTC).timestamp()
H = 3600.0
P = RiskParams(max_position_usd=1000.0, daily_loss_limit_usd=50.0, max_drawdown_usd=60.0)


class Account:
    """The exchange's record: every fill of the account, and the position they add up to (flat before them)."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self._tid = 0

    def trade(self, ts: float, is_buy: bool, px: float, sz: float = 1.0, fee: float = 0.0) -> Fill:
        self._tid += 1
        f = Fill(ts=ts, coin="BTC", cloid="", oid=1000 + self._tid, tid=self._tid, is_buy=is_buy, px=px, sz=sz,
                 fee=fee, is_maker=True, remaining=0.0)
        self.fills.append(f)
        return f

    @property
    def position(self) -> float:
        return sum(f.sz if f.is_buy else -f.sz for f in self.fills)


class Process:
    def __init__(self, store: KillStateStore, acct: Account, ts: float, mark: float) -> None:
        self.store, self.acct = store, acct
        day_start, _ = _day_bounds(ts)
        today = [f for f in acct.fills if f.ts >= day_start]
        state = resume_state(store.load(), ts, mark)
        store.save(state)
        self.ks = KillSwitch(P, state)
        self.pf = Portfolio()
        p0 = position_at_start(acct.position, today)
        if p0:
            assert state.day_anchor_px is not None
            self.pf.adopt(p0, state.day_anchor_px)
        for f in today:
            self.pf.on_fill(f)

    def trade(self, ts: float, is_buy: bool, px: float, sz: float = 1.0) -> None:
        self.pf.on_fill(self.acct.trade(ts, is_buy, px, sz))

    def check(self, ts: float, mark: float):
        d = self.ks.check(ts, self.pf.pnl_total(mark), abs(self.pf.position) * mark, 0.1, mark_px=mark)
        self.store.save(self.ks.state)
        return d


@pytest.fixture
def store(tmp_path) -> KillStateStore:
    return KillStateStore(tmp_path / "kill_BTC.json")


def test_profit_then_flat_then_restart_does_not_kill(store) -> None:
    """Made +100, went flat, restarted: the old code killed at once ("drawdown 100 >= 60")."""
    acct = Account()
    p1 = Process(store, acct, DAY + 9 * H, 100.0)
    p1.trade(DAY + 10 * H, True, 100.0)
    assert p1.check(DAY + 10 * H, 150.0).action is RiskAction.ALLOW
    p1.trade(DAY + 11 * H, False, 200.0)  # +100, flat
    d = p1.check(DAY + 11 * H, 200.0)
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(100.0)
    assert store.load().peak_pnl - store.load().day_start_pnl == pytest.approx(100.0)

    p2 = Process(store, acct, DAY + 12 * H, 180.0)
    d = p2.check(DAY + 12 * H, 180.0)
    assert d.action is RiskAction.ALLOW, d.reason
    assert d.figures["day_pnl"] == pytest.approx(100.0)
    assert d.figures["drawdown"] == pytest.approx(0.0)
    assert d.figures["peak_day_pnl"] == pytest.approx(100.0)  # the peak survived the restart


def test_peak_survives_restart_and_drawdown_fires_at_the_real_drawdown(store) -> None:
    acct = Account()
    p1 = Process(store, acct, DAY + 9 * H, 100.0)
    p1.trade(DAY + 10 * H, True, 100.0)
    p1.trade(DAY + 10 * H + 1, False, 200.0)  # +100 flat: peak 100
    p1.check(DAY + 10 * H + 1, 200.0)
    p2 = Process(store, acct, DAY + 11 * H, 200.0)
    p2.trade(DAY + 11 * H + 1, True, 200.0)
    assert p2.check(DAY + 11 * H + 2, 150.0).action is RiskAction.ALLOW  # day +50, drawdown 50 < 60
    d = p2.check(DAY + 11 * H + 3, 139.0)  # day +39, drawdown 61 from the peak made before the restart
    assert d.action is RiskAction.KILL and d.reason.startswith("drawdown")
    assert d.figures["drawdown"] == pytest.approx(61.0)


def test_loss_before_restart_counts_after_it(store) -> None:
    """Lost -40, restarted, lost -20: the old code saw -20 against the -50 limit and never killed."""
    acct = Account()
    p1 = Process(store, acct, DAY + 9 * H, 100.0)
    p1.trade(DAY + 10 * H, True, 100.0)
    p1.trade(DAY + 10 * H + 5, False, 60.0)  # -40, flat
    d = p1.check(DAY + 10 * H + 5, 60.0)
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(-40.0)

    p2 = Process(store, acct, DAY + 11 * H, 60.0)
    d = p2.check(DAY + 11 * H, 60.0)
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(-40.0)  # not reset
    p2.trade(DAY + 11 * H + 1, True, 60.0)
    assert p2.check(DAY + 11 * H + 2, 51.0).action is RiskAction.ALLOW  # -49: just inside the -50 limit
    d = p2.check(DAY + 11 * H + 3, 40.0)  # -20 more: -60 <= -50
    assert d.action is RiskAction.KILL and d.reason.startswith("daily loss")
    assert d.figures["day_pnl"] == pytest.approx(-60.0)


def test_restart_with_a_position_held_across_it_is_not_double_counted(store) -> None:
    acct = Account()
    p1 = Process(store, acct, DAY + 9 * H, 100.0)
    p1.trade(DAY + 10 * H, True, 100.0, sz=2.0)
    assert p1.check(DAY + 10 * H + 1, 85.0).figures["day_pnl"] == pytest.approx(-30.0)
    for _ in range(3):  # restarted three times at the same mark: the same figure each time, never -60, -90
        p = Process(store, acct, DAY + 11 * H, 85.0)
        assert p.check(DAY + 11 * H, 85.0).figures["day_pnl"] == pytest.approx(-30.0)
    d = p.check(DAY + 11 * H + 1, 74.0)  # 2 x -26 = -52
    assert d.action is RiskAction.KILL and d.figures["day_pnl"] == pytest.approx(-52.0)


def test_utc_rollover_in_process_then_restart_next_day(store) -> None:
    """Yesterday's loss does not count today; a position carried over midnight is valued from the rollover's mark,
    and a restart after midnight rebuilds the same day figure from today's fills alone."""
    acct = Account()
    p1 = Process(store, acct, DAY + 20 * H, 100.0)
    p1.trade(DAY + 21 * H, True, 100.0, sz=1.0)
    assert p1.check(DAY + 23 * H, 55.0).figures["day_pnl"] == pytest.approx(-45.0)  # day 1: -45
    d = p1.check(DAY + 24 * H + 1, 55.0)  # rollover: day 2 opens at 0, anchored at 55
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(0.0)
    st = store.load()
    assert st.day == "2025-09-05" and st.day_anchor_px == 55.0
    p1.trade(DAY + 24 * H + 60, True, 55.0)  # day 2 fill: long 2
    assert p1.check(DAY + 24 * H + 61, 45.0).figures["day_pnl"] == pytest.approx(-20.0)

    p2 = Process(store, acct, DAY + 25 * H, 45.0)  # restart on day 2
    d = p2.check(DAY + 25 * H, 45.0)
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(-20.0)
    d = p2.check(DAY + 25 * H + 1, 29.0)  # 2 x -16 - 20 = -52 today (yesterday's -45 not included)
    assert d.action is RiskAction.KILL and d.figures["day_pnl"] == pytest.approx(-52.0)


def test_first_start_of_a_new_day_opens_at_zero_and_counts_todays_earlier_fills(store) -> None:
    acct = Account()
    p1 = Process(store, acct, DAY + 22 * H, 100.0)
    p1.trade(DAY + 22 * H + 1, True, 100.0)
    p1.trade(DAY + 22 * H + 2, False, 60.0)  # -40 on day 1
    p1.check(DAY + 22 * H + 3, 60.0)
    acct.trade(DAY + 30 * H, True, 60.0)  # day 2, another process with no state: -30 on a round trip
    acct.trade(DAY + 30 * H + 1, False, 30.0)
    p2 = Process(store, acct, DAY + 31 * H, 30.0)  # state is from day 1: a new window, today's fills count
    st = p2.ks.state
    assert st.day == "2025-09-05" and st.day_start_pnl == 0.0 and st.peak_pnl == 0.0 and st.day_anchor_px == 30.0
    d = p2.check(DAY + 31 * H, 30.0)
    assert d.action is RiskAction.ALLOW and d.figures["day_pnl"] == pytest.approx(-30.0)


def test_resume_state_is_idempotent_and_keeps_the_latch() -> None:
    s = KillState(killed=True, reason="daily loss: -60 <= -50", day="2025-09-04", day_start_pnl=7.0, peak_pnl=20.0,
                  day_anchor_px=101.0)
    r = resume_state(s, DAY + 12 * H, 99.0)
    assert (r.killed, r.reason, r.day_start_pnl, r.peak_pnl, r.day_anchor_px) == (
        True, "daily loss: -60 <= -50", 0.0, 13.0, 101.0)
    assert resume_state(r, DAY + 13 * H, 98.0).to_dict() == r.to_dict()
    assert s.day_start_pnl == 7.0  # the input is not mutated
    assert KillState.from_dict(r.to_dict()) == r
    fresh = resume_state(None, DAY + 12 * H, None)
    assert fresh.day == "2025-09-04" and fresh.day_anchor_px is None and not fresh.killed
