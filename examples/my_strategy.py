"""A user strategy: quote one level each side at a fixed distance from the mid, leaning against the position.

Run it (from the repository root) in a backtest, or in paper / live unchanged:

    hlmm backtest --preset btc --duration 300 --set 'coins.BTC.strategy.kind="examples/my_strategy.py:MyStrategy"'
    hlmm backtest --preset btc --set 'coins.BTC.strategy.kind="examples/my_strategy.py:MyStrategy"' \
        --set coins.BTC.strategy.custom.offset_bps=3

Its parameters come from ``[coins.<coin>.strategy.custom]`` and are validated by ``Params`` (a typo is a config
error). The engine's OrderGuard rounds, caps (per order, per level, side room, reduce-only) and keeps the quotes
off the touch, so this class only says what it would like to quote.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hlmm.market.instrument import Instrument
from hlmm.strategy.base import QuoteContext, make_ladder, no_quotes
from hlmm.strategy.types import DesiredLadder


class MyStrategy:
    name = "my_strategy"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        offset_bps: float = Field(2.0, gt=0, description="distance of each quote from the mid")
        size_fraction: float = Field(0.1, gt=0, le=1, description="order size as a fraction of max position")
        lean_bps: float = Field(2.0, ge=0, description="price shift against the position at the full limit")

    def __init__(self, params: Params, inst: Instrument) -> None:
        self.p = params

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        mid = ctx.mid
        if mid is None or not ctx.est.ready:
            return no_quotes(ctx, "no quotes: no mid or estimators not ready")
        max_size = ctx.max_position_usd / mid
        q = ctx.position / max_size  # -1 .. +1 at the limit
        center = mid * (1 - q * self.p.lean_bps / 1e4)  # long: quote lower to sell more, buy less
        sz = self.p.size_fraction * max_size
        off = self.p.offset_bps / 1e4
        why = f"px: mid {mid:.8g} lean {q:+.2f}; sz: {self.p.size_fraction:g} x max"
        return make_ladder(ctx, mid, bids=[(center * (1 - off), sz, why)], asks=[(center * (1 + off), sz, why)],
                           reason=f"my_strategy q={q:+.3f}")
