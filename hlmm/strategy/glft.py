"""GLFT (Guéant–Lehalle–Fernandez-Tapia) half spread and inventory skew, in relative units.

Closed-form approximation (GLFT 2013, with xi = gamma), for an order of size ``delta``:

    c1 = 1/(gamma*delta) * ln(1 + gamma*delta/k)
    c2 = sqrt( gamma / (2*A*delta*k) * (1 + gamma*delta/k)^(k/(gamma*delta) + 1) )
    half_spread = c1 + delta/2 * sigma * c2
    skew        = sigma * c2                      (per unit of inventory q)
    bid depth   = half_spread + skew * q,  ask depth = half_spread - skew * q

Units used here (documented choice, so that ``gamma`` means the same thing on BTC and on HYPE):

* distances are in **basis points of the fair price**: ``sigma_bp = sigma * 1e4`` (EstimatorState's
  sigma is per sqrt(second) of log price), ``k_bp = kappa / 1e4`` (kappa is per unit of relative
  distance), ``A`` stays per second;
* inventory ``q`` is measured in **units of the effective max position** (q = position / eff_max, so
  q = +-1 at the limit) and ``delta`` is the per-order fraction of max position (0.25 by default).

So ``gamma`` is the risk aversion per (bp x max position). With the defaults (gamma=0.1, delta=0.25)
and BTC-like estimates (sigma=0.0004/sqrt(s), A=1/s, kappa=2000) this gives a half spread of ~5.6 bp and a
skew of ~6.8 bp at the full position; HYPE-like (sigma=0.0008, A=0.5, kappa=1000) ~12 bp and ~28 bp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GlftQuote:
    """GLFT output in bps of fair: ``half_spread_bps`` (unclamped) and ``skew_bps_per_q`` (per max position)."""

    half_spread_bps: float
    skew_bps_per_q: float
    c1_bps: float
    c2: float


def glft_bps(gamma: float, delta: float, sigma: float, intensity_a: float, kappa: float) -> GlftQuote:
    """GLFT coefficients in bps. Inputs must be finite; gamma, delta, A, kappa > 0 and sigma >= 0."""
    for name, v in (("gamma", gamma), ("delta", delta), ("intensity_a", intensity_a), ("kappa", kappa)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"GLFT {name} must be finite and > 0, got {v}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"GLFT sigma must be finite and >= 0, got {sigma}")
    k_bp = kappa / 1e4
    sigma_bp = sigma * 1e4
    x = gamma * delta / k_bp  # dimensionless: risk aversion of one order vs. the book's liquidity decay
    c1 = math.log1p(x) / (gamma * delta)
    # (1+x)^(1/x + 1) computed in logs: it tends to e for small x and stays finite for large x.
    growth = math.exp((1.0 / x + 1.0) * math.log1p(x))
    c2 = math.sqrt(gamma / (2.0 * intensity_a * delta * k_bp) * growth)
    skew = sigma_bp * c2
    return GlftQuote(half_spread_bps=c1 + 0.5 * delta * skew, skew_bps_per_q=skew, c1_bps=c1, c2=c2)
