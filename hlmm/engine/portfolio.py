"""Position and PnL accounting for one coin, fills deduplicated by (tid, oid).

Identity kept by construction (cash starts at 0, USD):
    cash + position * mark == realized + unrealized(mark) - fees + funding == pnl_total(mark)
where ``cash`` is the signed cash flow of trading (-qty*px), minus fees, plus funding, and
``unrealized(mark) = position * (mark - avg_entry)``.
"""

from __future__ import annotations

import math

from hlmm.engine.recent import RecentKeys
from hlmm.venue.base import Fill, Funding

# Position sums of lot-sized floats can leave dust such as 1e-17: treat as flat.
_FLAT_EPS = 1e-9


class PortfolioError(ValueError):
    """Bad input to the portfolio (non-finite or non-positive fill price/size)."""


class Portfolio:
    """Position/PnL accounting; fills deduplicated by (tid, oid).

    ``max_fill_keys`` (live: :data:`hlmm.engine.recent.LIVE_FILL_KEYS`) bounds the de-duplication to the most
    recent keys; None (default, backtests) keeps every key."""

    __slots__ = ("_keys", "avg_entry", "cash", "fees", "funding", "n_fills", "position", "realized", "volume_usd")

    def __init__(self, max_fill_keys: int | None = None) -> None:
        self.position = 0.0
        self.avg_entry = 0.0
        self.cash = 0.0
        self.realized = 0.0
        self.fees = 0.0
        self.funding = 0.0
        self.n_fills = 0
        self.volume_usd = 0.0
        self._keys = RecentKeys(max_fill_keys)

    def set_fill_key_window(self, max_fill_keys: int | None) -> None:
        """Bound (or unbound) the de-duplication window; keys already held stay until newer ones push them out."""
        self._keys.resize(max_fill_keys)

    def has_fill(self, tid: int, oid: int) -> bool:
        return (tid, oid) in self._keys

    def fill_keys(self) -> frozenset[tuple[int, int]]:
        """Every (tid, oid) applied so far (the most recent ones only, when the window is bounded)."""
        return frozenset(self._keys)  # type: ignore[arg-type]

    def on_fill(self, f: Fill) -> bool:
        """Apply a fill; False (and no change) if (tid, oid) was seen before."""
        key = (f.tid, f.oid)
        if key in self._keys:
            return False
        if not (math.isfinite(f.px) and f.px > 0 and math.isfinite(f.sz) and f.sz > 0 and math.isfinite(f.fee)):
            raise PortfolioError(f"bad fill tid={f.tid} oid={f.oid}: px={f.px} sz={f.sz} fee={f.fee}")
        self._keys.add(key)
        q = f.sz if f.is_buy else -f.sz
        self.cash -= q * f.px + f.fee
        self.fees += f.fee
        self.n_fills += 1
        self.volume_usd += f.sz * f.px
        pos = self.position
        if pos == 0.0 or (pos > 0) == (q > 0):
            # Opening or adding: weighted average entry.
            new = pos + q
            self.avg_entry = (self.avg_entry * abs(pos) + f.px * abs(q)) / abs(new)
            self.position = new
        else:
            closed = min(abs(q), abs(pos))
            self.realized += closed * (f.px - self.avg_entry) * (1.0 if pos > 0 else -1.0)
            new = pos + q
            if abs(new) < _FLAT_EPS:
                self.position, self.avg_entry = 0.0, 0.0
            elif (new > 0) != (pos > 0):
                self.position, self.avg_entry = new, f.px  # flipped: the rest opens at the fill price
            else:
                self.position = new
        return True

    def on_funding(self, f: Funding) -> None:
        if not math.isfinite(f.usdc):
            raise PortfolioError(f"bad funding amount {f.usdc}")
        self.funding += f.usdc
        self.cash += f.usdc

    def adopt(self, position: float, entry_px: float) -> None:
        """Take the venue's position as truth (start-up/reconnect). The difference to our view is booked
        at ``entry_px`` as a cash adjustment (not realized PnL), so the PnL identity keeps holding."""
        if not math.isfinite(position) or (position != 0 and not (math.isfinite(entry_px) and entry_px > 0)):
            raise PortfolioError(f"bad venue position {position} @ {entry_px}")
        # cash = realized - position*avg_entry - fees + funding must hold after the change.
        self.cash += self.position * self.avg_entry - position * entry_px
        self.position = 0.0 if abs(position) < _FLAT_EPS else position
        self.avg_entry = entry_px if self.position != 0.0 else 0.0

    def unrealized(self, mark: float) -> float:
        return self.position * (mark - self.avg_entry) if self.position != 0.0 else 0.0

    def pnl_total(self, mark: float) -> float:
        """realized + unrealized - fees + funding (== cash + position*mark)."""
        return self.realized + self.unrealized(mark) - self.fees + self.funding

    def balance_error(self, mark: float) -> float:
        """|cash + position*mark - pnl_total(mark)|: should be float noise only."""
        return abs(self.cash + self.position * mark - self.pnl_total(mark))
