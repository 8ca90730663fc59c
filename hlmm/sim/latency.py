"""Latency model for the simulated exchange.

Two legs: ``order_s`` from our engine to the matching engine (an action is matched against the book as of its
arrival), and ``response_s`` from the matching engine back to us (acks, rejects, fills, cancels). ``jitter_s`` adds a
seeded, non-negative exponential extra with that mean to each draw, so a jittered delay is never faster than the
configured base. Defaults follow Hyperliquid's published numbers for non-co-located clients (end-to-end ~0.2 s median,
replies only after commit).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace


class LatencyError(ValueError):
    """A latency parameter that is negative, NaN or infinite."""


@dataclass(frozen=True)
class LatencyModel:
    """Order and response delays in seconds; deterministic for a seed.

    Each ``SimExchange`` works on its own copy (``fresh()``), so a shared default instance never couples the
    random streams of two simulations.
    """

    order_s: float = 0.15
    response_s: float = 0.10
    jitter_s: float = 0.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("order_s", "response_s", "jitter_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise LatencyError(f"LatencyModel.{name} must be a finite number >= 0, got {v!r}")
        object.__setattr__(self, "_rng", random.Random(self.seed))

    def _extra(self) -> float:
        # Exponential: non-negative with a long right tail, like real network delays.
        return self._rng.expovariate(1.0 / self.jitter_s) if self.jitter_s > 0 else 0.0

    def order_delay(self) -> float:
        """Seconds from our submit to the exchange's matching engine."""
        return self.order_s + self._extra()

    def response_delay(self) -> float:
        """Seconds from the matching engine to our engine receiving the result."""
        return self.response_s + self._extra()

    def fresh(self, seed: int | None = None) -> LatencyModel:
        """A copy with a new random stream (same parameters; ``seed`` overrides the seed)."""
        return replace(self) if seed is None else replace(self, seed=seed)
