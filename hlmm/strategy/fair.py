"""Fair price: our venue's mid (or microprice), nudged by the bounded reference-feed signal.

    base = market.microprice if params.use_microprice else market.mid
    adj  = clamp(ref_adjust_bps, -ref_max_adjust_bps, +ref_max_adjust_bps)      (bps)
    fair = base * (1 + params.ref_weight * adj / 1e4)

``ref_weight`` = 0 (the default) ignores the reference entirely. A trade printed through the latest book (beyond
its touch, stamped after it) replaces the base until the next book: the book is stale and the market is there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hlmm.market.state import MarketState
from hlmm.strategy.errors import StrategyInputError
from hlmm.strategy.params import StrategyParams


@dataclass(frozen=True, slots=True)
class FairPrice:
    fair: float
    base: float  # the mid or microprice before the reference adjustment
    source: str  # "mid" or "microprice"
    adjust_bps: float  # applied adjustment: ref_weight * clamped ref_adjust_bps

    def describe(self) -> str:
        return f"fair={self.fair:.8g} ({self.source}={self.base:.8g} ref_adj={self.adjust_bps:+.3f}bp)"


def fair_price(market: MarketState, params: StrategyParams, ref_adjust_bps: float = 0.0) -> FairPrice | None:
    """Fair price from the book, or None when there is no two-sided book."""
    if not math.isfinite(ref_adjust_bps):
        raise StrategyInputError(f"ref_adjust_bps must be finite, got {ref_adjust_bps}")
    source = "microprice" if params.use_microprice else "mid"
    base = market.microprice if params.use_microprice else market.mid
    if market.through_px is not None and base is not None:
        # A trade printed beyond the touch after the latest book: the book is stale and the market is at least
        # there. Quoting around the stale mid is what let a frozen book's quotes be picked off.
        source, base = "trade_through", market.through_px
    if base is None or not math.isfinite(base) or base <= 0:
        return None
    bound = params.ref_max_adjust_bps
    adj = params.ref_weight * max(-bound, min(bound, ref_adjust_bps))
    return FairPrice(fair=base * (1.0 + adj / 1e4), base=base, source=source, adjust_bps=adj)
