"""What the estimators hand to the strategy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EstimatorState:
    """Blended estimates. ``sigma`` is the volatility of log mid per sqrt(second); the fill intensity
    at relative distance ``d = |px - mid| / mid`` is ``A * exp(-kappa * d)`` per second.

    ``warmup`` is the confidence in [0, 1] of the observed part; ``ready`` says the strategy may quote
    (enough data, a warm start, or ``warmup_timeout_s`` elapsed) and ``reason`` says which.
    """

    ts: float
    sigma: float
    intensity_a: float
    kappa: float
    warmup: float
    ready: bool
    reason: str
