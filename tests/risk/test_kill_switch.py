"""KillSwitch: every kill reason, the min-peak rule (the $0.02 incident), latch + reset, daily rollover."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.risk import KillState, KillSwitch, RiskAction, RiskParams, utc_day

# 2025-09-04 12:00:00 UTC
NOON = datetime(2025, 9, 4, 12, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2025, 9, 5, tzinfo=UTC).timestamp()


def params(**kw: float) -> RiskParams:
    base: dict = {"max_position_usd": 50.0, "daily_loss_limit_usd": 10.0, "max_drawdown_usd": 5.0}
    base.update(kw)
    return RiskParams(**base)


def ok(ks: KillSwitch, ts: float, pnl: float = 0.0, pos: float = 0.0, age: float = 0.1) -> RiskAction:
    return ks.check(ts, pnl, pos, age).action


def test_allow_when_all_within_limits() -> None:
    ks = KillSwitch(params())
    d = ks.check(NOON, 0.0, 10.0, 0.5)
    assert d.action is RiskAction.ALLOW
    assert d.figures["position_value_usd"] == 10.0
    assert not ks.killed


def test_incident_tiny_peak_does_not_arm_drawdown() -> None:
    """Failure 2: max position 50, PnL peak 0.02 then -0.0168 must not kill, not even arm the drawdown."""
    # Even with the tightest possible configured drawdown and no configured min peak, the 2% rule holds.
    ks = KillSwitch(params(max_drawdown_usd=0.01, drawdown_min_peak_usd=0.0))
    assert ks.drawdown_arm_threshold == pytest.approx(1.0)
    assert ok(ks, NOON, 0.0) is RiskAction.ALLOW
    assert ok(ks, NOON + 1, 0.02) is RiskAction.ALLOW
    d = ks.check(NOON + 2, -0.0168, 5.0, 0.1)
    assert d.action is RiskAction.ALLOW
    assert d.figures["drawdown_armed"] == 0.0
    assert d.figures["peak_day_pnl"] == pytest.approx(0.02)
    # And with the shipped defaults (min peak 1.0, drawdown 5.0).
    ks2 = KillSwitch(params())
    for i, pnl in enumerate([0.0, 0.02, -0.0168]):
        assert ok(ks2, NOON + i, pnl) is RiskAction.ALLOW


def test_min_peak_rule_uses_the_larger_threshold() -> None:
    assert KillSwitch(params(drawdown_min_peak_usd=3.0)).drawdown_arm_threshold == 3.0
    assert KillSwitch(params(max_position_usd=1000.0, drawdown_min_peak_usd=3.0)).drawdown_arm_threshold == 20.0
    # Peak just below the threshold: a large drop is left to the daily loss limit.
    ks = KillSwitch(params(drawdown_min_peak_usd=3.0, max_drawdown_usd=1.0, daily_loss_limit_usd=100.0))
    ok(ks, NOON, 0.0)
    ok(ks, NOON + 1, 2.99)
    assert ok(ks, NOON + 2, -5.0) is RiskAction.ALLOW
    # Once the peak reaches the threshold, the drawdown arms.
    ok(ks, NOON + 3, 3.0)
    d = ks.check(NOON + 4, 2.0, 0.0, 0.1)
    assert d.action is RiskAction.KILL
    assert d.reason.startswith("drawdown")
    assert d.figures["drawdown_armed"] == 1.0


def test_drawdown_measured_from_day_start_not_absolute_pnl() -> None:
    """pnl_total is cumulative with any origin; peak and daily loss are relative to the day's start."""
    ks = KillSwitch(params(max_drawdown_usd=2.0))
    ok(ks, NOON, 1000.0)  # lifetime PnL already 1000: not a "peak" today
    assert ok(ks, NOON + 1, 999.0) is RiskAction.ALLOW
    ok(ks, NOON + 2, 1003.0)  # +3 today: armed (threshold 1.0)
    assert ok(ks, NOON + 3, 1001.5) is RiskAction.ALLOW  # drawdown 1.5 < 2
    d = ks.check(NOON + 4, 1001.0, 0.0, 0.1)
    assert d.action is RiskAction.KILL and d.reason.startswith("drawdown")


def test_daily_loss_kill() -> None:
    ks = KillSwitch(params(daily_loss_limit_usd=10.0))
    ok(ks, NOON, 5.0)
    assert ok(ks, NOON + 1, -4.99) is RiskAction.ALLOW
    d = ks.check(NOON + 2, -5.0, 0.0, 0.1)
    assert d.action is RiskAction.KILL
    assert d.reason.startswith("daily loss")
    assert d.figures["day_pnl"] == pytest.approx(-10.0)


def test_position_reduce_only_then_kill() -> None:
    ks = KillSwitch(params(max_position_usd=50.0, position_limit_slack=1.5))
    assert ok(ks, NOON, pos=50.0) is RiskAction.ALLOW
    d = ks.check(NOON + 1, 0.0, -60.0, 0.1)  # short positions count by magnitude
    assert d.action is RiskAction.REDUCE_ONLY and d.reason.startswith("position")
    assert not ks.killed  # reduce-only does not latch
    assert ok(ks, NOON + 2, pos=75.0) is RiskAction.REDUCE_ONLY
    d = ks.check(NOON + 3, 0.0, 75.01, 0.1)
    assert d.action is RiskAction.KILL and d.reason.startswith("position")
    assert ks.killed


def test_stale_data_kill() -> None:
    ks = KillSwitch(params(max_data_stale_s=60.0))
    assert ok(ks, NOON, age=60.0) is RiskAction.ALLOW
    d = ks.check(NOON + 1, 0.0, 0.0, 60.5)
    assert d.action is RiskAction.KILL and d.reason.startswith("stale data")


@pytest.mark.parametrize("what", ["rejection", "error"])
def test_rate_kills(what: str) -> None:
    ks = KillSwitch(params(max_rejections_per_min=5, max_errors_per_min=5))
    record = ks.record_rejection if what == "rejection" else ks.record_error
    # 5 per minute, spread out: fine (old ones leave the 60 s window).
    for i in range(20):
        assert record(NOON + 13.0 * i) is None
    assert ok(ks, NOON + 13.0 * 19) is RiskAction.ALLOW
    # A burst of 6 within a minute kills at the recording itself.
    t = NOON + 1000.0
    results = [record(t + i) for i in range(6)]
    assert results[:5] == [None] * 5
    assert results[5] is not None and results[5].action is RiskAction.KILL
    assert ks.killed and ks.state.reason is not None and f"too many {what}s" in ks.state.reason
    d = ks.check(t + 10, 0.0, 0.0, 0.1)
    assert d.action is RiskAction.KILL and f"too many {what}s" in d.reason


def test_manual_kill_and_invalid_input() -> None:
    ks = KillSwitch(params())
    d = ks.manual_kill(NOON, "operator pressed the button")
    assert d.action is RiskAction.KILL and d.reason == "manual: operator pressed the button"
    assert ks.state.killed_at == NOON
    ks2 = KillSwitch(params())
    d = ks2.check(NOON, float("nan"), 0.0, 0.1)
    assert d.action is RiskAction.KILL and d.reason.startswith("invalid input") and "pnl_total" in d.reason
    ks3 = KillSwitch(params())
    assert ks3.check(NOON, 0.0, 0.0, float("inf")).action is RiskAction.KILL


def test_latch_until_explicit_reset() -> None:
    ks = KillSwitch(params())
    ok(ks, NOON, 0.0)
    first = ks.check(NOON + 1, 0.0, 0.0, 999.0)
    assert first.action is RiskAction.KILL
    # Everything is fine again, but the kill holds with its original reason and figures.
    for i in range(5):
        d = ks.check(NOON + 2 + i, 0.0, 0.0, 0.1)
        assert d.action is RiskAction.KILL
        assert d.reason == first.reason
        assert d.figures["data_age_s"] == 999.0
    # A second kill reason does not overwrite the first.
    ks.manual_kill(NOON + 10, "again")
    assert ks.state.reason == first.reason
    with pytest.raises(ValueError):
        ks.reset(NOON + 11, "  ")
    assert ks.killed
    ks.reset(NOON + 12, "alice")
    assert not ks.killed and ks.state.reason is None
    assert ks.state.last_reset_by == "alice" and ks.state.last_reset_at == NOON + 12
    assert ok(ks, NOON + 13) is RiskAction.ALLOW


def test_reset_does_not_rebase_daily_loss() -> None:
    ks = KillSwitch(params(daily_loss_limit_usd=10.0))
    ok(ks, NOON, 0.0)
    assert ok(ks, NOON + 1, -10.0) is RiskAction.KILL
    ks.reset(NOON + 2, "bob")
    # Still 10 down today: the loss is real, so the next check kills again.
    assert ok(ks, NOON + 3, -10.0) is RiskAction.KILL


def test_daily_rollover() -> None:
    ks = KillSwitch(params(daily_loss_limit_usd=10.0))
    ok(ks, MIDNIGHT - 3600, 0.0)
    assert ks.state.day == "2025-09-04"
    assert ok(ks, MIDNIGHT - 1, -9.0) is RiskAction.ALLOW
    # New UTC day: the window restarts at the PnL at rollover (-9), so -15 is only -6 today.
    assert ok(ks, MIDNIGHT + 1, -9.5) is RiskAction.ALLOW
    assert ks.state.day == "2025-09-05"
    assert ks.state.day_start_pnl == -9.5
    assert ks.state.peak_pnl == -9.5
    assert ok(ks, MIDNIGHT + 100, -15.0) is RiskAction.ALLOW
    d = ks.check(MIDNIGHT + 200, -19.5, 0.0, 0.1)
    assert d.action is RiskAction.KILL and d.reason.startswith("daily loss")


def test_rollover_does_not_unlatch_and_clock_never_rolls_back() -> None:
    ks = KillSwitch(params())
    ok(ks, MIDNIGHT - 10, 0.0)
    ks.manual_kill(MIDNIGHT - 5, "x")
    assert ok(ks, MIDNIGHT + 5, 0.0) is RiskAction.KILL
    assert ks.state.day == "2025-09-05"
    ok(ks, MIDNIGHT - 20, 0.0)  # clock jumps back: the day stays
    assert ks.state.day == "2025-09-05"
    assert utc_day(MIDNIGHT - 1) == "2025-09-04"


def test_version_and_changed() -> None:
    ks = KillSwitch(params())
    assert not ks.changed
    ok(ks, NOON, 0.0)  # the day is initialised
    assert ks.changed
    ks.mark_saved()
    v = ks.version
    ok(ks, NOON + 1, -1.0)  # nothing to persist
    assert not ks.changed and ks.version == v
    ok(ks, NOON + 2, 1.0)  # new peak
    assert ks.changed
    ks.mark_saved()
    ks.manual_kill(NOON + 3, "m")
    assert ks.changed and ks.version > v


def test_state_json_round_trip() -> None:
    s = KillState(True, "daily loss: x", {"day_pnl": -10.5}, 12.0, "2025-09-04", 3.0, 4.5, "alice", 1.0)
    assert KillState.from_dict(s.to_dict()) == s


PNL = st.floats(min_value=-0.999, max_value=0.999, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(path=st.lists(PNL, min_size=1, max_size=60))
def test_property_no_drawdown_kill_below_arm_threshold(path: list[float]) -> None:
    """With max position 50 the drawdown arms at 1.0; a day whose PnL never gains +1 over its start never
    drawdown-kills, however tight max_drawdown_usd is."""
    ks = KillSwitch(params(max_drawdown_usd=0.001, drawdown_min_peak_usd=0.0))
    for i, pnl in enumerate([0.0, *path]):
        d = ks.check(NOON + i, pnl, 0.0, 0.1)
        assert d.action is RiskAction.ALLOW


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=-30, max_value=30, allow_nan=False),
            st.floats(min_value=-100, max_value=100, allow_nan=False),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_property_kill_latches(steps: list[tuple[float, float, float]]) -> None:
    ks = KillSwitch(params())
    reason = None
    for i, (pnl, pos, age) in enumerate(steps):
        d = ks.check(NOON + 3600.0 * i, pnl, pos, age)  # crosses midnight too
        if reason is not None:
            assert d.action is RiskAction.KILL and d.reason == reason
        elif d.action is RiskAction.KILL:
            reason = d.reason
        assert ks.killed == (reason is not None)
