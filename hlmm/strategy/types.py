"""Strategy output: desired quotes, each carrying the reason for its price and size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quote:
    is_buy: bool
    px: float  # valid price (rounded by the instrument, bids down, asks up)
    sz: float  # valid size (floored to szDecimals), within every cap
    level: int
    reason: str  # why this price and size, e.g. "fair=32.95 hs=0.012 skew=-0.003 lvl=1 cap=per_order"


@dataclass(frozen=True, slots=True)
class DesiredLadder:
    coin: str
    ts: float
    fair: float
    bids: tuple[Quote, ...]
    asks: tuple[Quote, ...]
    reason: str  # summary: fair price inputs, half spread, skew, stale widening, reduce-only
    dropped: tuple[str, ...] = ()  # quotes removed by guards/caps, with why
