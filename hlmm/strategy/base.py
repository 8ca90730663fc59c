"""The strategy plug-in API: :class:`QuoteContext` in, :class:`DesiredLadder` out.

A strategy is pure: ``quote(ctx)`` reads only ``ctx`` (and its own parameters / caches), does no I/O and reads no
clock (time is ``ctx.ts``). Whatever it returns passes through :class:`hlmm.risk.guard.OrderGuard` in
``EngineCore`` before reconcile: rounding, per-order / per-level caps, side room, reduce-only and the BBO guard
are enforced there, so a strategy may propose anything and still cannot send an unsafe order. A strategy need not
round its prices or sizes (the guard rounds passively and floors sizes), but every cut is recorded as a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hlmm.estimators.state import EstimatorState
from hlmm.market.instrument import Instrument
from hlmm.market.state import MarketState
from hlmm.strategy.types import DesiredLadder, Quote


@dataclass(frozen=True, slots=True)
class QuoteContext:
    """Everything a strategy may look at for one quote cycle of one coin (read-only)."""

    inst: Instrument
    market: MarketState  # book (best bid/ask, sizes, age), last trades, asset context
    est: EstimatorState  # sigma, A, kappa, ready
    position: float  # signed, in contracts
    max_position_usd: float
    ts: float  # engine time (exchange time in backtest)
    reduce_only: bool = False  # risk decision: only the reducing side may quote
    ref_adjust_bps: float = 0.0  # reference-feed lead-lag signal (0 when off)
    risk: Any = None  # the full RiskDecision (action, reason, figures), for strategies that want it

    @property
    def mid(self) -> float | None:
        return self.market.mid


@runtime_checkable
class QuoteStrategy(Protocol):
    """A quote strategy. Constructed once per coin as ``cls(params, inst)`` (``params``: its validated parameter
    model, or the ``custom`` dict when the class has no ``Params`` model)."""

    name: str

    def quote(self, ctx: QuoteContext) -> DesiredLadder: ...


def make_ladder(
    ctx: QuoteContext,
    fair: float,
    bids: Iterable[tuple[float, float, str]] = (),
    asks: Iterable[tuple[float, float, str]] = (),
    reason: str = "",
) -> DesiredLadder:
    """Build a ladder from ``(px, sz, reason)`` triples, inner level first (prices/sizes need not be rounded)."""
    b = tuple(Quote(True, float(px), float(sz), i, why) for i, (px, sz, why) in enumerate(bids))
    a = tuple(Quote(False, float(px), float(sz), i, why) for i, (px, sz, why) in enumerate(asks))
    return DesiredLadder(coin=ctx.inst.coin, ts=ctx.ts, fair=fair, bids=b, asks=a, reason=reason)


def no_quotes(ctx: QuoteContext, reason: str, fair: float = 0.0) -> DesiredLadder:
    return DesiredLadder(coin=ctx.inst.coin, ts=ctx.ts, fair=fair, bids=(), asks=(), reason=reason)
