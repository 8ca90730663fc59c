"""Avellaneda–Stoikov (2008) closed-form quotes: reservation price and optimal spread.

Reference: M. Avellaneda, S. Stoikov, "High-frequency trading in a limit order book",
Quantitative Finance 8(3), 217–224 (2008), equations (29)–(30) (preprint: (3.17)–(3.18)).

Model units (the caller keeps them consistent; nothing here rounds to ticks — rounding belongs to
`hlmm.market.instrument`):

- the mid price ``s`` follows an arithmetic Brownian motion ``ds = sigma dW``: ``sigma`` is in price units
  per sqrt(time unit);
- ``tau = T - t`` is the time left to the horizon, in the same time unit;
- ``q`` is the inventory in units of the traded quantity (signed, long > 0);
- ``gamma`` is the CARA risk aversion, in 1/(price * quantity);
- market orders reach a quote at distance ``delta`` from the mid with Poisson intensity ``A exp(-k delta)``:
  ``A`` in 1/time unit, ``k`` in 1/price.

Results:

- reservation (indifference) price ``r = s - q gamma sigma^2 tau``;
- total spread ``delta_a + delta_b = gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)``, quoted symmetrically
  around ``r``: ``bid = r - spread/2``, ``ask = r + spread/2``.

All functions are pure. ``mid`` and ``q`` may be numpy arrays (vectorised simulations); model parameters are
scalars and are validated, raising :class:`AvellanedaStoikovError` on bad input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "AvellanedaStoikovError",
    "AvellanedaStoikovQuotes",
    "arrival_intensity",
    "inventory_spread",
    "liquidity_spread",
    "optimal_quotes",
    "optimal_spread",
    "reservation_price",
]


class AvellanedaStoikovError(ValueError):
    """A model parameter or state is outside the model's domain (non-finite, negative, zero where forbidden)."""


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise AvellanedaStoikovError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _non_negative(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise AvellanedaStoikovError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def _finite(name: str, value: float | FloatArray) -> float | FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise AvellanedaStoikovError(f"{name} must be finite, got {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def inventory_spread(*, gamma: float, sigma: float, tau: float) -> float:
    """Inventory-risk part of the spread, ``gamma sigma^2 tau`` (vanishes at the horizon)."""
    return _positive("gamma", gamma) * _non_negative("sigma", sigma) ** 2 * _non_negative("tau", tau)


def liquidity_spread(*, gamma: float, k: float) -> float:
    """Order-flow part of the spread, ``(2/gamma) ln(1 + gamma/k)``; tends to ``2/k`` as gamma -> 0.

    This is the "Spread" column of the paper's tables (1.33, 1.29, 1.15 for gamma = 0.01, 0.1, 0.5 at k = 1.5).
    """
    g = _positive("gamma", gamma)
    kk = _positive("k", k)
    # log1p keeps full precision for gamma << k (risk-neutral limit).
    return 2.0 / g * math.log1p(g / kk)


def optimal_spread(*, gamma: float, sigma: float, tau: float, k: float) -> float:
    """Total optimal spread ``delta_a + delta_b = gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)``."""
    return inventory_spread(gamma=gamma, sigma=sigma, tau=tau) + liquidity_spread(gamma=gamma, k=k)


def reservation_price(
    mid: float | FloatArray, q: float | FloatArray, *, gamma: float, sigma: float, tau: float
) -> float | FloatArray:
    """Indifference price ``r = s - q gamma sigma^2 tau``: below the mid when long, above when short."""
    m = _finite("mid", mid)
    qq = _finite("q", q)
    skew = inventory_spread(gamma=gamma, sigma=sigma, tau=tau)
    return m - qq * skew


@dataclass(frozen=True, slots=True)
class AvellanedaStoikovQuotes:
    """Closed-form quotes (floats, or arrays when ``mid``/``q`` were arrays); unrounded model prices."""

    reservation: float | FloatArray
    spread: float
    bid: float | FloatArray
    ask: float | FloatArray

    @property
    def half_spread(self) -> float:
        """Distance from the reservation price to each quote."""
        return self.spread / 2.0


def optimal_quotes(
    mid: float | FloatArray, q: float | FloatArray, *, gamma: float, sigma: float, tau: float, k: float
) -> AvellanedaStoikovQuotes:
    """Bid and ask at ``r -/+ spread/2``, with ``r`` the reservation price and the optimal total spread.

    The distances to the mid are ``delta_b = mid - bid`` and ``delta_a = ask - mid``; one of them can be negative
    for a large inventory (the model then quotes through the mid to unload); callers that must not cross a book
    apply their own guard.
    """
    r = reservation_price(mid, q, gamma=gamma, sigma=sigma, tau=tau)
    spread = optimal_spread(gamma=gamma, sigma=sigma, tau=tau, k=k)
    half = spread / 2.0
    return AvellanedaStoikovQuotes(reservation=r, spread=spread, bid=r - half, ask=r + half)


def arrival_intensity(delta: float | FloatArray, *, A: float, k: float) -> float | FloatArray:
    """Poisson rate ``A exp(-k delta)`` at which market orders reach a quote ``delta`` away from the mid."""
    a = _positive("A", A)
    kk = _positive("k", k)
    d = _finite("delta", delta)
    out = a * np.exp(-kk * np.asarray(d, dtype=np.float64))
    return float(out) if out.ndim == 0 else out
