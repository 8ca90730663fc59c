"""Strategy: fair price, GLFT spreads, capped ladder, BBO/staleness guard, reference-feed signal (pure code)."""

from hlmm.strategy.errors import ReferenceInputError, StrategyInputError
from hlmm.strategy.fair import FairPrice, fair_price
from hlmm.strategy.glft import GlftQuote, glft_bps
from hlmm.strategy.ladder import SizeCaps, apply_bbo_guard, compute_ladder, passive_bound, size_caps
from hlmm.strategy.reference import ReferenceSignal

__all__ = [
    "FairPrice",
    "GlftQuote",
    "ReferenceInputError",
    "ReferenceSignal",
    "SizeCaps",
    "StrategyInputError",
    "apply_bbo_guard",
    "compute_ladder",
    "fair_price",
    "glft_bps",
    "passive_bound",
    "size_caps",
]
