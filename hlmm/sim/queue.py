"""Queue-position models: how much visible size is ahead of our resting order at its price.

Our orders are not in the recorded book (no market impact), so for each resting order we track ``ahead``: the
visible size at our price that has priority over us. It starts at the visible size when the order arrives (we join
**behind** everyone; 0 when our price makes a new level, unknown when our price is outside the visible depth).

- Trades at our price consume ``ahead`` first (handled by the exchange, identical for every model).
- A *decrease* of the level's visible size that trades do not explain is a cancellation somewhere in the queue:
  the model decides how much of it was ahead of us (``on_decrease``).
- An *increase* is new size joining behind us: ``ahead`` does not change.
- ``ahead`` can never exceed the level's visible size (``depth_update`` clamps; that is a certainty, not a guess).

Models:
- ``RiskAverseQueue`` ("risk_averse"): cancellations never advance us. The most conservative bound.
- ``ProbQueue`` ("prob", "prob_log", "prob_power3", ...): hftbacktest-style. A decrease of ``d`` is attributed to the
  orders ahead with probability ``f(front) / (f(front) + f(back))`` with ``f(x) = x**n`` (power) or ``log(1 + x)``
  (log); the expected value is applied. If more is attributed to the back than exists there, the excess comes from
  the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


class QueueModelError(ValueError):
    """Unknown queue model name or bad parameters."""


@runtime_checkable
class QueueModel(Protocol):
    """Attribution of a level's non-trade size decrease to the part of the queue ahead of us."""

    @property
    def name(self) -> str:
        """The model's name (read-only: the models are frozen dataclasses)."""
        ...

    def on_decrease(self, ahead: float, behind: float, decrease: float) -> float:
        """New size ahead of us after the level lost ``decrease`` (> 0) to cancellations.

        ``ahead`` + ``behind`` is the level's visible size before the decrease."""
        ...


@dataclass(frozen=True, slots=True)
class RiskAverseQueue:
    """Only trades at our price move us forward (cancellations are all assumed to be behind us)."""

    name: str = "risk_averse"

    def on_decrease(self, ahead: float, behind: float, decrease: float) -> float:
        return ahead


@dataclass(frozen=True, slots=True)
class ProbQueue:
    """Probabilistic attribution of cancellations (expected value, so deterministic)."""

    kind: Literal["power", "log"] = "power"
    n: float = 2.0
    name: str = "prob"

    def __post_init__(self) -> None:
        if self.kind not in ("power", "log"):
            raise QueueModelError(f"ProbQueue.kind must be 'power' or 'log', got {self.kind!r}")
        if not math.isfinite(self.n) or self.n <= 0:
            raise QueueModelError(f"ProbQueue.n must be finite and > 0, got {self.n!r}")

    def _f(self, x: float) -> float:
        return x**self.n if self.kind == "power" else math.log1p(x)

    def prob_front(self, front: float, back: float) -> float:
        """Probability that a cancellation came from ahead of us."""
        ff, fb = self._f(max(front, 0.0)), self._f(max(back, 0.0))
        tot = ff + fb
        # Both empty: whatever left must have been ahead (there is nothing behind).
        return 1.0 if tot <= 0 else ff / tot

    def on_decrease(self, ahead: float, behind: float, decrease: float) -> float:
        p = self.prob_front(ahead, behind)
        from_back = (1.0 - p) * decrease
        overflow = min(behind - from_back, 0.0)  # more than 'behind' attributed to the back: the rest was ahead
        return max(ahead - p * decrease + overflow, 0.0)


def make_queue_model(spec: str | QueueModel) -> QueueModel:
    """``"risk_averse"``, ``"prob"`` (power n=2), ``"prob_log"``, ``"prob_power<n>"`` (e.g. ``"prob_power3"``),
    or a QueueModel instance."""
    if not isinstance(spec, str):
        if isinstance(spec, QueueModel):
            return spec
        raise QueueModelError(f"queue model must be a name or a QueueModel, got {type(spec).__name__}")
    s = spec.strip().lower()
    if s in ("risk_averse", "riskaverse", "conservative"):
        return RiskAverseQueue()
    if s == "prob":
        return ProbQueue()
    if s == "prob_log":
        return ProbQueue(kind="log", name="prob_log")
    if s.startswith("prob_power"):
        try:
            n = float(s.removeprefix("prob_power"))
        except ValueError:
            n = float("nan")
        if math.isfinite(n) and n > 0:
            return ProbQueue(kind="power", n=n, name=s)
    raise QueueModelError(f"unknown queue model {spec!r}: use 'risk_averse', 'prob', 'prob_log' or 'prob_power<n>'")


def depth_update(
    model: QueueModel, ahead: float | None, prev_qty: float | None, traded: float, new_qty: float
) -> float:
    """Size ahead of us after the level at our price changed from ``prev_qty`` to ``new_qty``.

    ``traded`` is the volume traded at our price since ``prev_qty`` was seen; it already moved ``ahead`` and is
    removed from the change so the same volume is never counted twice. An unknown ``ahead`` (we joined where the
    book was not visible) becomes the whole visible size: we assume everybody we can now see is ahead of us.
    """
    if ahead is None or prev_qty is None:
        return max(new_qty, 0.0)
    decrease = prev_qty - new_qty - traded
    if decrease > 1e-12:
        behind = max(prev_qty - traded - ahead, 0.0)
        ahead = model.on_decrease(ahead, behind, decrease)
    return max(min(ahead, new_qty), 0.0)
