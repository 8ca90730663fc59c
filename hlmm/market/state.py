"""Latest market view for one coin: book, freshness, last trade, reference quote."""

from __future__ import annotations

from dataclasses import dataclass, field

from hlmm.market.events import AssetCtx, Bbo, BookSnapshot, RefQuote, Trade


@dataclass(slots=True)
class MarketState:
    """Mutable latest-state holder updated by the engine. Freshness uses exchange timestamps."""

    coin: str
    book: BookSnapshot | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    bid_sz: float = 0.0
    ask_sz: float = 0.0
    book_ts_exchange: float | None = None  # exchange time of the latest book/bbo
    last_trade: Trade | None = None
    ref: RefQuote | None = None
    ctx: AssetCtx | None = None
    n_updates: int = 0
    # A trade printed beyond the touch of the latest book (above the ask / below the bid), stamped after it: the
    # book is stale whatever its age says (a frozen HIP-3 book while trades go on). Cleared by the next book.
    # Sweeps print through a live book for a moment before its next update shows them: only a trade printed this
    # long after the book marks it stale (the engine sets it from strategy.trade_through_after_s).
    through_after_s: float = 1.0
    through_px: float | None = None
    through_ts_exchange: float | None = None
    n_trade_through: int = 0
    _last_seen_ts: float = field(default=0.0, repr=False)

    def on_book(self, ev: BookSnapshot) -> None:
        self.book = ev
        self.best_bid = ev.bids[0].px if ev.bids else None
        self.bid_sz = ev.bids[0].sz if ev.bids else 0.0
        self.best_ask = ev.asks[0].px if ev.asks else None
        self.ask_sz = ev.asks[0].sz if ev.asks else 0.0
        self._touch(ev.ts_exchange, ev.ts)

    def on_bbo(self, ev: Bbo) -> None:
        self.best_bid, self.bid_sz = ev.bid_px, ev.bid_sz
        self.best_ask, self.ask_sz = ev.ask_px, ev.ask_sz
        self._touch(ev.ts_exchange, ev.ts)

    def on_trade(self, ev: Trade) -> None:
        self.last_trade = ev
        bb, ba, bts = self.best_bid, self.best_ask, self.book_ts_exchange
        if bts is None or ev.ts_exchange - bts < self.through_after_s:
            return  # printed before the book we hold, or a sweep the next book will show
        if (ba is not None and ev.px > ba) or (bb is not None and ev.px < bb):
            if self.through_px is None:
                self.n_trade_through += 1
            self.through_px, self.through_ts_exchange = ev.px, ev.ts_exchange

    def on_ref(self, ev: RefQuote) -> None:
        self.ref = ev

    def on_ctx(self, ev: AssetCtx) -> None:
        self.ctx = ev

    def _touch(self, ts_exchange: float, ts: float) -> None:
        if self.book_ts_exchange is None or ts_exchange >= self.book_ts_exchange:
            self.book_ts_exchange = ts_exchange
            if self.through_ts_exchange is not None and ts_exchange >= self.through_ts_exchange:
                self.through_px = self.through_ts_exchange = None  # a book newer than the trade-through
        self._last_seen_ts = ts
        self.n_updates += 1

    @property
    def mid(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return 0.5 * (self.best_bid + self.best_ask)

    @property
    def microprice(self) -> float | None:
        """Size-weighted mid: leans towards the side with less size (where the price is likely to go)."""
        if self.best_bid is None or self.best_ask is None:
            return None
        tot = self.bid_sz + self.ask_sz
        if tot <= 0:
            return self.mid
        return (self.best_bid * self.ask_sz + self.best_ask * self.bid_sz) / tot

    def is_stale(self, now: float, stale_s: float) -> bool:
        """The book is older than ``stale_s`` (exchange time) or a later trade printed through it."""
        if self.book_ts_exchange is None:
            return False  # no book yet: nothing to quote against anyway, and nothing stale
        return self.through_px is not None or self.book_age(now) > stale_s

    def book_age(self, now: float) -> float:
        """Seconds since the exchange stamped the latest book; inf when no book yet.

        ``now`` is the engine's clock; exchange and local clocks are assumed roughly in sync."""
        if self.book_ts_exchange is None:
            return float("inf")
        return max(0.0, now - self.book_ts_exchange)
