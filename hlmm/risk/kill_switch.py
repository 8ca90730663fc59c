"""Kill switch: a pure, latching risk check. Time comes in with every call; nothing here reads a clock.

Checks, in the order they are reported (the first that fires is the reason):

1. invalid input (non-finite PnL, position or data age) -> KILL: broken accounting must not trade on;
2. stale market data (``data_age_s > max_data_stale_s``) -> KILL;
3. rejections / errors in the last 60 s above ``max_rejections_per_min`` / ``max_errors_per_min`` -> KILL;
4. daily loss: ``pnl_total - day_start_pnl <= -daily_loss_limit_usd`` -> KILL;
5. drawdown: ``peak_pnl - pnl_total >= max_drawdown_usd`` -> KILL, armed only once today's peak PnL
   (``peak_pnl - day_start_pnl``) reaches ``max(drawdown_min_peak_usd, 0.02 * max_position_usd)`` (failure 2:
   a drawdown measured against a $0.02 peak fired on any tick);
6. ``|position_value_usd| > max_position_usd * position_limit_slack`` -> KILL;
7. ``|position_value_usd| > max_position_usd`` -> REDUCE_ONLY;
otherwise ALLOW.

Day window and peak: ``pnl_total`` is the caller's cumulative PnL (any origin). The day is the UTC date of
``ts``; at the first check and at each UTC midnight rollover ``day_start_pnl`` and ``peak_pnl`` are set to the
PnL at that moment, so both the daily loss and the drawdown peak are measured *since the start of the UTC day*
(drawdown protects today's gains; daily loss protects capital). Time going backwards never rolls the day back.

Restarts (live): the PnL origin of a new process is not the old one's, so absolute levels cannot be carried
over as they are. :func:`resume_state` rebases a persisted state onto a PnL whose origin is the start of the day
window (``day_start_pnl`` 0, ``peak_pnl`` relative to it) and keeps ``day_anchor_px``: the mark at which the
position held at the window's start is valued. The live runner rebuilds exactly that quantity from the exchange's
own fills of the UTC day plus that position at that mark (``EngineCore.restore_day``), so a restart neither resets
nor double-counts a loss, and the drawdown peak survives it. At a rollover inside a running process the anchor is
the ``mark_px`` given to that check.

Latch: any KILL sets ``state.killed`` with its reason and figures, and every later ``check`` returns KILL with
the original reason until ``reset(ts, operator)``. A reset does not rebase the day: if the daily loss is still
beyond the limit, the next check kills again. Day tracking continues while killed. ``version`` increments on
every change worth persisting (kill, reset, rollover, new peak); ``changed`` says the state differs from the
last ``mark_saved()``. Rejection/error timestamps are not persisted (a 60 s window; a restart starts empty).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from hlmm.risk.params import RiskParams

RATE_WINDOW_S = 60.0
DRAWDOWN_MIN_PEAK_FRACTION = 0.02


class KillStateError(ValueError):
    """A persisted kill state is malformed."""


@dataclass(slots=True)
class KillState:
    """Persisted kill-switch state (see module docstring). ``day`` is the ISO UTC date of the PnL window;
    ``day_start_pnl`` and ``peak_pnl`` are in the caller's cumulative ``pnl_total`` units (USD).
    ``day_anchor_px``: the mark at which the position held when the day window began is valued (see
    :func:`resume_state`); None when unknown (older files, no mark given)."""

    killed: bool = False
    reason: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    killed_at: float | None = None
    day: str = ""
    day_start_pnl: float = 0.0
    peak_pnl: float = 0.0
    last_reset_by: str | None = None
    last_reset_at: float | None = None
    day_anchor_px: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> KillState:
        """Strictly typed parse; raises KillStateError rather than guessing."""
        if not isinstance(data, dict):
            raise KillStateError(f"kill state must be an object, got {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise KillStateError(f"unknown kill state fields: {sorted(unknown)}")
        for req in ("killed", "reason", "day", "day_start_pnl", "peak_pnl"):
            if req not in data:
                raise KillStateError(f"kill state is missing {req!r}")
        killed = data["killed"]
        if not isinstance(killed, bool):
            raise KillStateError(f"'killed' must be a bool, got {killed!r}")
        reason = _opt_str(data, "reason")
        if killed and not reason:
            raise KillStateError("a killed state must carry its reason")
        figures = data.get("figures", {})
        if not isinstance(figures, dict) or not all(isinstance(k, str) and _is_num(v) for k, v in figures.items()):
            raise KillStateError(f"'figures' must map str to numbers, got {figures!r}")
        day = data["day"]
        if not isinstance(day, str):
            raise KillStateError(f"'day' must be a string, got {day!r}")
        if day:
            try:
                datetime.strptime(day, "%Y-%m-%d")
            except ValueError as e:
                raise KillStateError(f"'day' must be YYYY-MM-DD, got {day!r}") from e
        return cls(
            killed=killed,
            reason=reason,
            figures={k: float(v) for k, v in figures.items()},
            killed_at=_opt_num(data, "killed_at"),
            day=day,
            day_start_pnl=_num(data, "day_start_pnl"),
            peak_pnl=_num(data, "peak_pnl"),
            last_reset_by=_opt_str(data, "last_reset_by"),
            last_reset_at=_opt_num(data, "last_reset_at"),
            day_anchor_px=_opt_pos(data, "day_anchor_px"),
        )


def _is_num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(data: dict[str, Any], key: str) -> float:
    v = data.get(key)
    if not _is_num(v) or not math.isfinite(v):
        raise KillStateError(f"{key!r} must be a finite number, got {v!r}")
    return float(v)


def _opt_num(data: dict[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _num(data, key)


def _opt_pos(data: dict[str, Any], key: str) -> float | None:
    v = _opt_num(data, key)
    if v is not None and v <= 0:
        raise KillStateError(f"{key!r} must be > 0 or null, got {v!r}")
    return v


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    v = data.get(key)
    if v is not None and not isinstance(v, str):
        raise KillStateError(f"{key!r} must be a string or null, got {v!r}")
    return v


class RiskAction(enum.Enum):
    ALLOW = "allow"
    REDUCE_ONLY = "reduce_only"
    KILL = "kill"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    action: RiskAction
    reason: str
    figures: dict[str, float]


def utc_day(ts: float) -> str:
    """ISO UTC date of an epoch time in seconds."""
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def _day_bounds(ts: float) -> tuple[float, float]:
    d = datetime.fromtimestamp(ts, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return d.timestamp(), (d + timedelta(days=1)).timestamp()


class KillSwitch:
    """Latching risk check (see module docstring). Plain object; persist ``state`` via KillStateStore."""

    def __init__(self, params: RiskParams, state: KillState | None = None) -> None:
        self.params = params
        self._state = state if state is not None else KillState()
        self._rejections: deque[float] = deque()
        self._errors: deque[float] = deque()
        self._day_lo = math.inf  # [lo, hi) bounds of state.day in epoch seconds, cached
        self._day_hi = -math.inf
        self._version = 0
        self._saved_version = 0

    # ---- introspection -----------------------------------------------------------------------------------
    @property
    def state(self) -> KillState:
        return self._state

    @property
    def killed(self) -> bool:
        return self._state.killed

    @property
    def version(self) -> int:
        """Increments on every change worth persisting."""
        return self._version

    @property
    def changed(self) -> bool:
        """True when the state changed since the last ``mark_saved()``."""
        return self._version != self._saved_version

    def mark_saved(self) -> None:
        self._saved_version = self._version

    @property
    def drawdown_arm_threshold(self) -> float:
        """Today's peak PnL needed before the drawdown check arms."""
        p = self.params
        return max(p.drawdown_min_peak_usd, DRAWDOWN_MIN_PEAK_FRACTION * p.max_position_usd)

    # ---- inputs ------------------------------------------------------------------------------------------
    def record_rejection(self, ts: float) -> RiskDecision | None:
        """Count an order rejection at ``ts``; latches a KILL (and returns it) when the 60 s count exceeds
        ``max_rejections_per_min``."""
        return self._record(self._rejections, ts, self.params.max_rejections_per_min, "rejections")

    def record_error(self, ts: float) -> RiskDecision | None:
        """Count a venue/engine error at ``ts``; latches a KILL (and returns it) when the 60 s count exceeds
        ``max_errors_per_min``."""
        return self._record(self._errors, ts, self.params.max_errors_per_min, "errors")

    def _record(self, q: deque[float], ts: float, limit: int, what: str) -> RiskDecision | None:
        if not math.isfinite(ts):
            raise ValueError(f"ts must be finite, got {ts!r}")
        q.append(ts)
        n = self._count(q, ts)
        if n > limit and not self._state.killed:
            figs = {f"{what}_60s": float(n), f"max_{what}_per_min": float(limit)}
            return self._kill(ts, f"too many {what}: {n} in 60s > {limit}", figs)
        return None

    @staticmethod
    def _count(q: deque[float], ts: float) -> int:
        cutoff = ts - RATE_WINDOW_S
        while q and q[0] <= cutoff:
            q.popleft()
        return sum(1 for t in q if t <= ts)

    def manual_kill(self, ts: float, reason: str) -> RiskDecision:
        """Operator kill. Latches like any other; an existing kill keeps its original reason."""
        if self._state.killed:
            return self._latched()
        return self._kill(ts, f"manual: {reason}" if reason else "manual", {})

    def reset(self, ts: float, operator: str) -> None:
        """Explicitly clear a kill. ``operator`` (who) is required and recorded."""
        if not operator or not operator.strip():
            raise ValueError("reset requires a non-empty operator name")
        s = self._state
        s.killed = False
        s.reason = None
        s.figures = {}
        s.killed_at = None
        s.last_reset_by = operator.strip()
        s.last_reset_at = ts
        self._rejections.clear()
        self._errors.clear()
        self._version += 1

    # ---- the check ---------------------------------------------------------------------------------------
    def check(self, ts: float, pnl_total: float, position_value_usd: float, data_age_s: float,
              mark_px: float | None = None) -> RiskDecision:
        """Evaluate all limits at engine time ``ts`` (epoch seconds). ``mark_px``: the mark behind ``pnl_total``;
        recorded as the day's anchor when this check starts a new day window."""
        p = self.params
        if not math.isfinite(ts):
            raise ValueError(f"ts must be finite, got {ts!r}")
        bad = [
            name
            for name, v in (
                ("pnl_total", pnl_total),
                ("position_value_usd", position_value_usd),
                ("data_age_s", data_age_s),
            )
            if not math.isfinite(v)
        ]
        if bad:
            if self._state.killed:
                return self._latched()
            figs = {"pnl_total": pnl_total, "position_value_usd": position_value_usd, "data_age_s": data_age_s}
            return self._kill(ts, f"invalid input: {', '.join(bad)} not finite", figs)

        self._track_day(ts, pnl_total, mark_px)
        if self._state.killed:
            return self._latched()

        s = self._state
        pos = abs(position_value_usd)
        day_pnl = pnl_total - s.day_start_pnl
        peak_day = s.peak_pnl - s.day_start_pnl
        drawdown = s.peak_pnl - pnl_total
        armed = peak_day >= self.drawdown_arm_threshold
        n_rej = self._count(self._rejections, ts)
        n_err = self._count(self._errors, ts)
        figs = {
            "pnl_total": pnl_total,
            "day_pnl": day_pnl,
            "peak_day_pnl": peak_day,
            "drawdown": drawdown,
            "drawdown_armed": 1.0 if armed else 0.0,
            "position_value_usd": pos,
            "data_age_s": data_age_s,
            "rejections_60s": float(n_rej),
            "errors_60s": float(n_err),
        }
        if data_age_s > p.max_data_stale_s:
            return self._kill(ts, f"stale data: {data_age_s:.1f}s > {p.max_data_stale_s:g}s", figs)
        if n_rej > p.max_rejections_per_min:
            return self._kill(ts, f"too many rejections: {n_rej} in 60s > {p.max_rejections_per_min}", figs)
        if n_err > p.max_errors_per_min:
            return self._kill(ts, f"too many errors: {n_err} in 60s > {p.max_errors_per_min}", figs)
        if day_pnl <= -p.daily_loss_limit_usd:
            return self._kill(ts, f"daily loss: {day_pnl:.4f} <= -{p.daily_loss_limit_usd:g}", figs)
        if armed and drawdown >= p.max_drawdown_usd:
            return self._kill(ts, f"drawdown: {drawdown:.4f} from peak {peak_day:.4f} >= {p.max_drawdown_usd:g}", figs)
        hard = p.max_position_usd * p.position_limit_slack
        if pos > hard:
            return self._kill(ts, f"position: {pos:.2f} USD > {hard:g} (max * slack)", figs)
        if pos > p.max_position_usd:
            return RiskDecision(RiskAction.REDUCE_ONLY, f"position: {pos:.2f} USD > {p.max_position_usd:g}", figs)
        return RiskDecision(RiskAction.ALLOW, "ok", figs)

    def _track_day(self, ts: float, pnl: float, mark_px: float | None = None) -> None:
        s = self._state
        if not (self._day_lo <= ts < self._day_hi):
            day = utc_day(ts)
            if not s.day or day > s.day:
                # First check or UTC midnight rollover: the new day's window starts at the current PnL.
                s.day = day
                s.day_start_pnl = pnl
                s.peak_pnl = pnl
                s.day_anchor_px = mark_px if mark_px is not None and math.isfinite(mark_px) and mark_px > 0 else None
                self._version += 1
                self._day_lo, self._day_hi = _day_bounds(ts)
            elif day == s.day:
                self._day_lo, self._day_hi = _day_bounds(ts)
            # day < s.day: the clock went backwards; keep the later day, do not cache bounds.
        if pnl > s.peak_pnl:
            s.peak_pnl = pnl
            self._version += 1

    def _kill(self, ts: float, reason: str, figures: dict[str, float]) -> RiskDecision:
        s = self._state
        s.killed = True
        s.reason = reason
        s.figures = dict(figures)
        s.killed_at = ts
        self._version += 1
        return RiskDecision(RiskAction.KILL, reason, dict(figures))

    def _latched(self) -> RiskDecision:
        s = self._state
        return RiskDecision(RiskAction.KILL, s.reason or "killed", dict(s.figures))


def resume_state(state: KillState | None, ts: float, mark_px: float | None) -> KillState:
    """The kill state for a live (re)start at ``ts`` whose PnL is measured from the start of the day window (0 there):
    today's persisted window is rebased (``peak_pnl - day_start_pnl``, ``day_start_pnl`` 0), keeping its anchor; a
    missing or older day opens today's window at 0 anchored at ``mark_px``. The latch, its reason and the reset
    record are kept as they are. Pure: the caller rebuilds the PnL (see the module docstring)."""
    if not math.isfinite(ts):
        raise ValueError(f"ts must be finite, got {ts!r}")
    mark = mark_px if mark_px is not None and math.isfinite(mark_px) and mark_px > 0 else None
    s = KillState.from_dict(state.to_dict()) if state is not None else KillState()
    day = utc_day(ts)
    if s.day and s.day >= day:
        # Today's window (or a later one: the clock went backwards; keep the later day, as check() does).
        s.peak_pnl = max(0.0, s.peak_pnl - s.day_start_pnl)
        s.day_start_pnl = 0.0
        if s.day_anchor_px is None:
            s.day_anchor_px = mark
    else:
        s.day, s.day_start_pnl, s.peak_pnl, s.day_anchor_px = day, 0.0, 0.0, mark
    return s
