"""Risk: latching kill switch, limits, persisted state."""

from hlmm.risk.kill_switch import KillState, KillStateError, KillSwitch, RiskAction, RiskDecision, utc_day
from hlmm.risk.params import RiskParams
from hlmm.risk.store import KillStateCorruptError, KillStateStore

__all__ = [
    "KillState",
    "KillStateCorruptError",
    "KillStateError",
    "KillStateStore",
    "KillSwitch",
    "RiskAction",
    "RiskDecision",
    "RiskParams",
    "utc_day",
]
