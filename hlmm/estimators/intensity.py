"""Fill intensity ``lambda(d) = A * exp(-kappa * d)`` from public trades (GLFT).

Units:
- ``d = |px - mid| / mid`` is the *relative* distance of a trade from the mid just before it (1 bp = 1e-4);
- ``lambda(d)`` is the rate, per second, of market orders that reach at least distance ``d`` from the mid,
  i.e. that would fill a quote resting at ``d``;
- ``A`` (per second) is that rate extrapolated to the mid, ``kappa`` is per unit relative distance
  (``1 / kappa`` is the distance over which the rate falls by e; kappa 2000 -> 5 bp).

Method (Guéant-Lehalle-Fernandez-Tapia; as in hftbacktest's GLFT example, which measures arrival rates of
trades at a distance from the mid): keep the trades of the last ``intensity_window_s`` seconds, count for a
grid of distances ``d_k`` (from the smallest to the largest observed distance) how many trades reached at
least ``d_k``, divide by the observed time, and fit ``ln lambda = ln A - kappa d`` by least squares weighted by
the counts (a Poisson count ``N`` has ``var(ln N) ~ 1/N``). Empty buckets are ignored; at least two
non-empty buckets with different counts are needed, otherwise there is no observed fit (confidence 0).

Consecutive trades with the same side and the same exchange time are one aggressive order sweeping several
makers or levels: they count once, at their deepest distance, so A is an arrival rate of orders, not fills.

The observed values are clamped to ``[intensity_*_min, intensity_*_max]`` and blended with the priors
geometrically (``exp(w ln obs + (1 - w) ln prior)``, ``w = confidence``) because both are scale parameters that
span orders of magnitude between markets.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from hlmm.estimators.params import EstimatorParams

_SIDES = ("B", "A")
_INF = math.inf


def _np_sum(a: list[float]) -> float:
    """Sum in numpy's pairwise order (8 accumulators from 8 elements on), so results match the numpy fit this
    replaced bit for bit."""
    n = len(a)
    if n > 128:  # numpy's block size: halves (a multiple of 8 on the left), summed recursively
        h = n // 2
        h -= h % 8
        return _np_sum(a[:h]) + _np_sum(a[h:])
    if n < 8:
        r = 0.0
        for v in a:
            r += v
        return r
    r0, r1, r2, r3, r4, r5, r6, r7 = a[:8]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


class IntensityEstimator:
    """Rolling-window trade-arrival estimator. Plain object: time comes in with ``on_trade``/``on_time``."""

    def __init__(self, params: EstimatorParams, start_ts: float | None = None) -> None:
        self._p = params
        self._window = params.intensity_window_s
        self._ts: deque[float] = deque()
        self._d: deque[float] = deque()
        # The same distances kept sorted (insort/remove per trade): a fit is then a few bisections instead of a
        # sort of the whole window.
        self._sorted: list[float] = []
        self._last_key: tuple[float, str] | None = None
        self._obs_start = start_ts
        self._now = start_ts if start_ts is not None else -math.inf
        self._n_total = 0
        self._n_merged = 0
        # Fit cache.
        self._fit_ts = -math.inf
        self._dirty = True
        self._a_obs: float | None = None
        self._kappa_obs: float | None = None
        self._n_buckets_used = 0

    # ---- input -------------------------------------------------------------------------------------------
    def on_trade(
        self, ts: float, px: float, sz: float, side: str, mid: float, ts_exchange: float | None = None
    ) -> None:
        """A public trade at engine time ``ts``; ``mid`` is the mid just before it. ``ts_exchange`` (optional)
        groups the fills of one aggressive order. Raises ValueError for bad input."""
        # Chained comparisons: NaN and +-inf fail them (same checks as math.isfinite, without the calls).
        if not -_INF < ts < _INF:
            raise ValueError(f"ts must be finite, got {ts!r}")
        if not 0.0 < px < _INF:
            raise ValueError(f"trade px must be finite and > 0, got {px!r}")
        if not 0.0 < sz < _INF:
            raise ValueError(f"trade sz must be finite and > 0, got {sz!r}")
        if not 0.0 < mid < _INF:
            raise ValueError(f"mid must be finite and > 0, got {mid!r}")
        if side not in _SIDES:
            raise ValueError(f"trade side must be 'B' or 'A', got {side!r}")
        if ts > self._now:
            self.on_time(ts)
        if self._obs_start is None:
            self._obs_start = ts
        d = abs(px - mid) / mid
        key = (ts_exchange, side) if ts_exchange is not None else None
        if key is not None and key == self._last_key and self._ts:
            old = self._d[-1]
            if d > old:
                self._d[-1] = d
                srt = self._sorted
                del srt[bisect.bisect_left(srt, old)]
                bisect.insort(srt, d)
            self._n_merged += 1
        else:
            self._ts.append(ts)
            self._d.append(d)
            bisect.insort(self._sorted, d)
            self._n_total += 1
        self._last_key = key
        self._dirty = True

    def on_time(self, ts: float) -> None:
        """Advance the clock and drop trades older than the window. Earlier times are ignored."""
        if ts <= self._now:
            return
        self._now = ts
        if self._obs_start is None:
            self._obs_start = ts
        cutoff = ts - self._window
        tsq = self._ts
        if tsq and tsq[0] < cutoff:
            dq, srt = self._d, self._sorted
            while tsq and tsq[0] < cutoff:
                tsq.popleft()
                del srt[bisect.bisect_left(srt, dq.popleft())]
            self._dirty = True

    def add_history(self, entries: list[tuple[float, float]], start_ts: float) -> None:
        """Warm start: merge (ts, relative distance) pairs observed before the live data, and move the start
        of observation back to ``start_ts``."""
        merged = sorted([*zip(self._ts, self._d, strict=True), *entries])
        self._ts = deque(t for t, _ in merged)
        self._d = deque(d for _, d in merged)
        self._sorted = sorted(self._d)
        self._n_total += len(entries)
        if self._obs_start is None or start_ts < self._obs_start:
            self._obs_start = start_ts
        if merged and merged[-1][0] > self._now:
            self._now = merged[-1][0]
        self._dirty = True
        self._fit_ts = -math.inf

    # ---- fit ---------------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Latest time seen (-inf before any)."""
        return self._now

    @property
    def observed_s(self) -> float:
        """Seconds of observation inside the window."""
        if self._obs_start is None or self._now == -math.inf:
            return 0.0
        return max(0.0, min(self._window, self._now - self._obs_start))

    def _maybe_fit(self) -> None:
        now = self._now
        if now < self._fit_ts + self._p.intensity_refit_s and not (self._dirty and self._a_obs is None):
            return
        self._fit_ts = now
        self._dirty = False
        self._a_obs, self._kappa_obs, self._n_buckets_used = None, None, 0
        srt = self._sorted
        n = len(srt)
        t_obs = self.observed_s
        if n < 2 or t_obs <= 0.0:
            return
        lo, hi = srt[0], srt[-1]
        if not hi > lo:
            return
        # Plain Python on ~10 buckets (numpy's per-call overhead dominated). Bit-for-bit the former numpy fit:
        # grid as np.linspace(lo, hi, nb, endpoint=False) = k * step + lo, sums in numpy's pairwise order.
        nb = self._p.intensity_buckets
        step = (hi - lo) / nb
        bl = bisect.bisect_left
        x: list[float] = []
        c: list[float] = []
        for k in range(nb):
            g = k * step + lo
            cnt = n - bl(srt, g)  # trades with distance >= g (non-increasing in k)
            if cnt > 0:
                x.append(g)
                c.append(float(cnt))
        m = len(c)
        if m < 2 or max(c) == min(c):
            return
        y = [math.log(ci / t_obs) for ci in c]
        sw = _np_sum(c)
        xm = _np_sum([ci * xi for ci, xi in zip(c, x, strict=True)]) / sw
        ym = _np_sum([ci * yi for ci, yi in zip(c, y, strict=True)]) / sw
        dx = [xi - xm for xi in x]
        sxx = _np_sum([ci * (e * e) for ci, e in zip(c, dx, strict=True)])
        if sxx <= 0.0:
            return
        slope = _np_sum([ci * e * (yi - ym) for ci, e, yi in zip(c, dx, y, strict=True)]) / sxx
        intercept = ym - slope * xm
        p = self._p
        self._kappa_obs = min(max(-slope, p.intensity_kappa_min), p.intensity_kappa_max)
        # Clamp in log space: two trades far from the mid give a huge intercept and exp() would overflow.
        log_a = min(max(intercept, math.log(p.intensity_a_min)), math.log(p.intensity_a_max))
        self._a_obs = min(max(math.exp(log_a), p.intensity_a_min), p.intensity_a_max)
        self._n_buckets_used = m

    # ---- output ------------------------------------------------------------------------------------------
    @property
    def n_trades(self) -> int:
        """Aggressive orders (merged trades) currently in the window."""
        return len(self._d)

    @property
    def a_observed(self) -> float | None:
        """Clamped observed A per second, or None without a valid fit."""
        self._maybe_fit()
        return self._a_obs

    @property
    def kappa_observed(self) -> float | None:
        """Clamped observed kappa per unit relative distance, or None without a valid fit."""
        self._maybe_fit()
        return self._kappa_obs

    @property
    def confidence(self) -> float:
        """``min(1, n_trades / intensity_min_trades)`` with a valid fit, else 0."""
        self._maybe_fit()
        if self._kappa_obs is None:
            return 0.0
        return min(1.0, len(self._d) / self._p.intensity_min_trades)

    def _blend(self, obs: float | None, prior: float) -> float:
        w = self.confidence
        if obs is None or w <= 0.0:
            return prior
        return math.exp(w * math.log(obs) + (1.0 - w) * math.log(prior))

    def estimates(self) -> tuple[float, float, float]:
        """(confidence, blended A, blended kappa) with one cache check: the quote cycle's single call."""
        self._maybe_fit()
        kappa_obs = self._kappa_obs
        p = self._p
        if kappa_obs is None:
            return 0.0, p.intensity_a_prior, p.intensity_kappa_prior
        w = min(1.0, len(self._d) / p.intensity_min_trades)
        a_obs = self._a_obs
        if w <= 0.0:
            return w, p.intensity_a_prior, p.intensity_kappa_prior
        a = p.intensity_a_prior if a_obs is None else math.exp(
            w * math.log(a_obs) + (1.0 - w) * math.log(p.intensity_a_prior))
        k = math.exp(w * math.log(kappa_obs) + (1.0 - w) * math.log(p.intensity_kappa_prior))
        return w, a, k

    @property
    def intensity_a(self) -> float:
        """Blended A, trades per second reaching the mid."""
        return self._blend(self.a_observed, self._p.intensity_a_prior)

    @property
    def kappa(self) -> float:
        """Blended kappa, per unit relative distance."""
        return self._blend(self.kappa_observed, self._p.intensity_kappa_prior)
