"""Reference-feed (e.g. Binance) lead-lag signal: a bounded, decaying adjustment of our fair price.

Model, all in log prices and driven only by event times (``ts``, the local receive time):

* ``x = log(our_mid) - log(ref_mid)`` is the current basis; ``b`` is its EWMA with half-life
  ``ref_halflife_s`` (piecewise-constant input between events, so it is exact in continuous time);
* the signal is ``b(ts) - x``: the reference's recent move not yet reflected in our mid, basis-adjusted.
  If the reference jumps up 10 bp and our mid has not followed, the signal is +10 bp; it decays with
  half-life ``ref_halflife_s`` (our mid catches up, or the EWMA absorbs the move as a basis change).
  Equivalently it is (ref move - our move) relative to the EWMAs of both, so a move of our mid that the
  reference does not confirm is damped symmetrically.
* the result is in bps, clamped to +-``ref_max_adjust_bps``; it is 0.0 when the signal is disabled
  (``ref_weight`` or ``ref_max_adjust_bps`` is 0), when either price is unknown, or when the latest
  reference quote is older than ``stale_s`` at ``ts``. After a stale gap the basis is re-seeded from the
  next pair of prices (a resumed feed carries no lead information).

The caller applies ``ref_weight`` (see :func:`hlmm.strategy.fair.fair_price`).
"""

from __future__ import annotations

import math

from hlmm.market.events import RefQuote
from hlmm.strategy.errors import ReferenceInputError
from hlmm.strategy.params import StrategyParams

_LN2 = math.log(2.0)


def _positive_finite(name: str, x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ReferenceInputError(f"{name} must be a number, got {type(x).__name__}")
    xf = float(x)
    if not math.isfinite(xf) or xf <= 0:
        raise ReferenceInputError(f"{name} must be finite and > 0, got {x}")
    return xf


def _finite(name: str, x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        raise ReferenceInputError(f"{name} must be a finite number, got {x!r}")
    return float(x)


class ReferenceSignal:
    """Bounded, decaying lead-lag adjustment of fair price from the reference mid (pure; no clock reads)."""

    def __init__(self, params: StrategyParams, stale_s: float) -> None:
        self._stale_s = _positive_finite("stale_s", stale_s)
        self._halflife = params.ref_halflife_s
        self._max_bps = params.ref_max_adjust_bps
        self.enabled = params.ref_weight > 0 and params.ref_max_adjust_bps > 0
        self._ref_log: float | None = None
        self._ref_ts: float | None = None
        self._mid_log: float | None = None
        self._basis: float | None = None  # EWMA of x
        self._basis_ts = 0.0
        self.n_ignored = 0  # crossed or out-of-order reference quotes (contribute nothing)

    # ---- state -------------------------------------------------------------------------------------
    def _x(self) -> float | None:
        if self._ref_log is None or self._mid_log is None:
            return None
        return self._mid_log - self._ref_log

    def _decay(self, dt: float) -> float:
        return math.exp(-dt * _LN2 / self._halflife) if dt > 0 else 1.0

    def _advance(self, ts: float) -> None:
        """Bring the basis EWMA to ``ts`` with the input held at the current x since the last update."""
        x = self._x()
        if self._basis is None or x is None:
            return
        if ts > self._basis_ts:
            self._basis = x + (self._basis - x) * self._decay(ts - self._basis_ts)
            self._basis_ts = ts

    def _seed(self, ts: float) -> None:
        x = self._x()
        if x is not None:
            self._basis, self._basis_ts = x, ts

    # ---- inputs ------------------------------------------------------------------------------------
    def on_ref(self, ev: RefQuote) -> None:
        """A reference top of book. Raises ReferenceInputError on non-positive/non-finite prices."""
        ts = _finite("ref ts", ev.ts)
        bid = _positive_finite("ref bid_px", ev.bid_px)
        ask = _positive_finite("ref ask_px", ev.ask_px)
        if bid > ask or (self._ref_ts is not None and ts < self._ref_ts):
            self.n_ignored += 1  # a crossed or late quote is noise: the previous one stays in force
            return
        gap = self._ref_ts is None or ts - self._ref_ts > self._stale_s
        self._advance(ts)
        self._ref_log = math.log(0.5 * (bid + ask))
        self._ref_ts = ts
        if gap or self._basis is None:
            self._seed(ts)

    def on_mid(self, ts: float, mid: float) -> None:
        """Our venue's mid at ``ts`` (for the basis)."""
        ts = _finite("mid ts", ts)
        mid = _positive_finite("mid", mid)
        self._advance(ts)
        self._mid_log = math.log(mid)
        if self._basis is None:
            self._seed(ts)

    # ---- output ------------------------------------------------------------------------------------
    def adjust_bps(self, ts: float) -> float:
        """Adjustment in bps at ``ts``: 0.0 when disabled/stale/unknown; |result| <= ref_max_adjust_bps."""
        ts = _finite("ts", ts)
        x = self._x()
        if not self.enabled or x is None or self._basis is None or self._ref_ts is None:
            return 0.0
        if ts - self._ref_ts > self._stale_s:
            return 0.0
        gap = (self._basis - x) * self._decay(ts - self._basis_ts) * 1e4
        return max(-self._max_bps, min(self._max_bps, gap))

    def describe(self, ts: float) -> str:
        """One line for logs: why the adjustment is what it is."""
        if not self.enabled:
            return "ref: disabled"
        if self._ref_ts is None or self._mid_log is None:
            return "ref: no reference or no mid yet"
        age = ts - self._ref_ts
        if age > self._stale_s:
            return f"ref: stale ({age:.2f}s > {self._stale_s:g}s)"
        return f"ref: adj={self.adjust_bps(ts):+.3f}bp age={age:.2f}s"
