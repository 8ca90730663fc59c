"""Strategies used by the tests as ``module:Class`` plug-ins: a small user strategy and a hostile one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hlmm.market.instrument import Instrument
from hlmm.strategy.base import QuoteContext, make_ladder, no_quotes
from hlmm.strategy.types import DesiredLadder, Quote


class OneLevel:
    """One quote each side, ``offset_bps`` from the mid, ``size_usd`` each."""

    name = "one_level"
    n_calls = 0  # class-level counter: the tests check that the engine called this class

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        offset_bps: float = Field(3.0, gt=0)
        size_usd: float = Field(12.0, gt=0)

    def __init__(self, params: Params, inst: Instrument) -> None:
        self.p = params

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        type(self).n_calls += 1
        mid = ctx.mid
        if mid is None:
            return no_quotes(ctx, "no mid")
        sz, off = self.p.size_usd / mid, self.p.offset_bps / 1e4
        return make_ladder(ctx, mid, [(mid * (1 - off), sz, "user bid")], [(mid * (1 + off), sz, "user ask")],
                           reason="one_level")


class Hostile:
    """Asks for 10x max position per order, on both sides, at prices through the book, with a fair price that
    would inflate the limit, off-grid prices and sizes, unsorted and duplicated levels, ignoring reduce-only."""

    name = "hostile"

    def __init__(self, params: dict, inst: Instrument) -> None:
        self.inst = inst
        self.mult = float(params.get("mult", 10.0))

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        bb, ba = ctx.market.best_bid, ctx.market.best_ask
        if bb is None or ba is None:
            return no_quotes(ctx, "hostile: no book")
        big = self.mult * ctx.max_position_usd / bb
        bids = tuple(Quote(True, ba * k, big * (1.0 + 1e-7), i, "hostile bid") for i, k in
                     enumerate((1.01, 1.0, 1.0, 0.9999, 1.05)))
        asks = tuple(Quote(False, bb * k, big * (1.0 + 1e-7), i, "hostile ask") for i, k in
                     enumerate((0.99, 1.0, 1.0, 1.0001, 0.95)))
        return DesiredLadder(coin=ctx.inst.coin, ts=ctx.ts, fair=bb * 1e-6, bids=bids, asks=asks,
                             reason="hostile")
