"""KillStateStore: a kill survives a restart; a damaged file raises instead of silently un-killing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hlmm.risk import KillState, KillStateCorruptError, KillStateStore, KillSwitch, RiskAction, RiskParams

NOON = datetime(2025, 9, 4, 12, tzinfo=UTC).timestamp()
P = RiskParams(max_position_usd=50.0, daily_loss_limit_usd=10.0, max_drawdown_usd=5.0)


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert KillStateStore(tmp_path / "kill.json").load() is None


def test_kill_survives_restart(tmp_path: Path) -> None:
    store = KillStateStore(tmp_path / "state" / "kill.json")
    ks = KillSwitch(P)
    ks.check(NOON, 2.0, 0.0, 0.1)
    d = ks.check(NOON + 1, -8.0, 0.0, 0.1)
    assert d.action is RiskAction.KILL
    store.save(ks.state)
    ks.mark_saved()
    # "Restart": a fresh switch from the loaded state.
    loaded = store.load()
    assert loaded == ks.state
    ks2 = KillSwitch(P, loaded)
    assert ks2.killed
    d2 = ks2.check(NOON + 2, 5.0, 0.0, 0.1)
    assert d2.action is RiskAction.KILL
    assert d2.reason == d.reason
    assert d2.figures == d.figures
    # The daily window also survives: resetting does not forget today's loss start.
    assert ks2.state.day_start_pnl == 2.0
    # No temp files left behind.
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["kill.json"]


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "kill.json"
    store = KillStateStore(path)
    store.save(KillState(True, "manual: a", {}, NOON, "2025-09-04", 0.0, 0.0))
    store.save(KillState(False, None, {}, None, "2025-09-04", 0.0, 1.0, "alice", NOON + 5))
    s = store.load()
    assert s is not None and not s.killed and s.last_reset_by == "alice"
    assert [p.name for p in tmp_path.iterdir()] == ["kill.json"]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[]",
        '{"format": 99, "state": {}}',
        '{"format": 1}',
        '{"format": 1, "state": {"killed": "yes", "reason": "x", "day": "", "day_start_pnl": 0, "peak_pnl": 0}}',
        '{"format": 1, "state": {"killed": true, "reason": null, "day": "", "day_start_pnl": 0, "peak_pnl": 0}}',
        '{"format": 1, "state": {"killed": false, "reason": null, "day": "yesterday", "day_start_pnl": 0,'
        ' "peak_pnl": 0}}',
        '{"format": 1, "state": {"killed": false, "reason": null, "day": "", "peak_pnl": 0}}',
        '{"format": 1, "state": {"killed": false, "reason": null, "day": "", "day_start_pnl": 0, "peak_pnl": 0,'
        ' "surprise": 1}}',
    ],
)
def test_corrupt_file_raises(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kill.json"
    path.write_text(content)
    with pytest.raises(KillStateCorruptError):
        KillStateStore(path).load()
    # The evidence is left in place.
    assert path.read_text() == content


def test_binary_garbage_raises(tmp_path: Path) -> None:
    path = tmp_path / "kill.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(KillStateCorruptError):
        KillStateStore(path).load()


def test_file_layout_is_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "kill.json"
    KillStateStore(path).save(KillState(True, "stale data: 61.0s > 60s", {"data_age_s": 61.0}, NOON, "2025-09-04"))
    doc = json.loads(path.read_text())
    assert doc["format"] == 1
    assert doc["state"]["killed"] is True and doc["state"]["reason"].startswith("stale data")
