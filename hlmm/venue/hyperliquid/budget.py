"""The address request budget (``userRateLimit``), tracked locally between refreshes."""

from __future__ import annotations

from dataclasses import dataclass


# ---- request budget ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class RequestBudget:
    """Address request budget: ``cap - used`` from userRateLimit, decremented locally per action item."""

    cap: int = 10_000
    used: int = 0
    reserve: int = 200  # kept for cancels: placements stop before the exchange starts refusing
    refreshed_ts: float = 0.0
    spent_locally: int = 0

    @property
    def remaining(self) -> int:
        return self.cap - self.used

    def refresh(self, cap: int, used: int, ts: float) -> None:
        self.cap, self.used, self.refreshed_ts = int(cap), int(used), ts
        self.spent_locally = 0

    def spend(self, n: int) -> None:
        self.used += n
        self.spent_locally += n

    def allows_quotes(self, n: int) -> bool:
        """Whether ``n`` more placements/modifies leave the reserve intact."""
        return self.remaining - n >= self.reserve

    def exhausted(self) -> None:
        """The exchange said the budget is gone: believe it until the next refresh."""
        self.used = max(self.used, self.cap)

