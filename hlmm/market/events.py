"""Market data events: small immutable records. Times are float seconds since the epoch.

``ts`` is the local receive time (the engine's clock, simulated in backtests);
``ts_exchange`` is the exchange's own timestamp. Freshness is judged by ``ts_exchange``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BookLevel:
    px: float
    sz: float
    n: int = 1


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Full L2 snapshot (best first on each side, up to 20 levels)."""

    coin: str
    ts: float
    ts_exchange: float
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].px if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].px if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return 0.5 * (self.bids[0].px + self.asks[0].px)


@dataclass(frozen=True, slots=True)
class Bbo:
    coin: str
    ts: float
    ts_exchange: float
    bid_px: float | None
    bid_sz: float
    ask_px: float | None
    ask_sz: float


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade. ``side`` is the aggressor: 'B' = buyer lifted the ask, 'A' = seller hit the bid."""

    coin: str
    ts: float
    ts_exchange: float
    px: float
    sz: float
    side: str
    tid: int

    @property
    def is_buy_aggressor(self) -> bool:
        return self.side == "B"


@dataclass(frozen=True, slots=True)
class RefQuote:
    """Cross-venue reference top of book (e.g. Binance USD-M bookTicker)."""

    symbol: str
    ts: float
    ts_exchange: float
    bid_px: float
    ask_px: float
    bid_sz: float = 0.0
    ask_sz: float = 0.0

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid_px + self.ask_px)


@dataclass(frozen=True, slots=True)
class AssetCtx:
    coin: str
    ts: float
    mark_px: float
    oracle_px: float
    funding: float
    open_interest: float = 0.0


@dataclass(frozen=True, slots=True)
class Timer:
    """A clock tick with no market content (lets time-based checks run on a quiet market)."""

    ts: float


MarketEvent = BookSnapshot | Bbo | Trade | RefQuote | AssetCtx | Timer
