"""Requote policy: when to run a quote cycle. Pure: time and prices come in with the calls.

A cycle runs
- at once (ignoring ``min_interval_s``) when the latest book would make one of our orders cross
  (the BBO guard applies to resting orders too) or after a post-only rejection (a one-sided book must
  not wait);
- otherwise no more often than ``min_interval_s``, when: a venue event (fill/reject/cancel) arrived
  since the last cycle, the fair price moved more than ``price_move_bps`` since the last cycle, no
  cycle has run yet, or ``max_interval_s`` elapsed.
"""

from __future__ import annotations

from hlmm.config import RequoteParams


class RequotePolicy:
    """Decides whether a quote cycle is due. ``decide`` returns the trigger name, or None."""

    __slots__ = ("_dirty", "_hi", "_lo", "_urgent", "last_fair", "last_ts", "max_interval_s", "min_interval_s")

    def __init__(self, params: RequoteParams) -> None:
        self.min_interval_s = params.min_interval_s
        self.max_interval_s = params.max_interval_s
        move = params.price_move_bps / 1e4
        self._hi = 1.0 + move
        self._lo = 1.0 - move
        self.last_ts: float | None = None
        self.last_fair: float | None = None
        self._dirty: str | None = None
        self._urgent: str | None = None

    def note_event(self, kind: str) -> None:
        """A fill/reject/cancel arrived: requote at the next allowed moment."""
        if self._dirty is None:
            self._dirty = kind

    def note_urgent(self, kind: str) -> None:
        """Requote at the very next opportunity, ignoring the minimum interval."""
        self._urgent = kind

    @property
    def pending(self) -> str | None:
        return self._urgent or self._dirty

    def decide(self, ts: float, fair: float | None, crosses: bool = False) -> str | None:
        """Trigger name if a cycle is due now, else None. Cheap: called on every market event."""
        if crosses:
            return "crosses_book"
        if self._urgent is not None:
            return self._urgent
        last = self.last_ts
        if last is None:
            return "first"
        dt = ts - last
        if dt < self.min_interval_s:
            return None
        if self._dirty is not None:
            return self._dirty
        lf = self.last_fair
        if fair is not None:
            if lf is None:
                return "first_fair"
            r = fair / lf
            if r > self._hi or r < self._lo:
                return "price_move"
        if dt >= self.max_interval_s:
            return "timer"
        return None

    def mark_quoted(self, ts: float, fair: float | None) -> None:
        """A cycle ran at ``ts`` with this fair price: clear triggers."""
        self.last_ts = ts
        if fair is not None:
            self.last_fair = fair
        self._dirty = None
        self._urgent = None
