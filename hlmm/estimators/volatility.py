"""Volatility of the log mid, per sqrt(second), as a time-decayed EWMA.

Each mid update after the previous one gives a log return ``r`` over ``dt`` seconds. The estimator keeps two
exponentially decayed sums, ``num = sum(w * r^2)`` and ``den = sum(w * dt)``, where the weight of a sample decays
by ``0.5 ** (age / vol_halflife_s)`` in *time*, not in event count. ``var_obs = num / den`` is then the
dt-weighted EWMA of the per-second variance ``r^2 / dt``: weighting by dt keeps a burst of sub-millisecond
updates from dominating the estimate.

Gaps: a gap longer than ``vol_max_gap_s`` (a reconnect, a silent HIP-3 book) does not produce a return; the
reference point is reset to the new mid. One return over a long gap would be a single noisy sample with a huge
weight, i.e. a one-off spike or collapse. Zero or negative dt (duplicate or out-of-order timestamps) is
ignored and the reference point is kept, so the next in-order return still covers the whole move.

Sampling: a return is taken only once ``vol_min_dt_s`` has passed since the reference point (updates in between
just wait; the next return covers their move). Tick-level mid returns on a large-tick book are autocorrelated:
on the real BTC recording (2025-09-01 session) every-update returns give 1.7e-5/sqrt(s), 1 s sampling 2.5e-5,
60 s sampling 4.5e-5. Waiting also makes the hot path a single comparison for most book events.
"""

from __future__ import annotations

import math

from hlmm.estimators.params import EstimatorParams

_LN2 = math.log(2.0)


class VolatilityEstimator:
    """Time-decayed EWMA of squared log returns, blended with ``sigma_prior`` by confidence."""

    __slots__ = (
        "_den",
        "_full_den",
        "_hl",
        "_last_mid",
        "_last_ts",
        "_log_last",
        "_max_gap",
        "_min_dt",
        "_min_samples",
        "_n",
        "_n_gaps",
        "_n_ignored",
        "_num",
        "_prior_var",
    )

    def __init__(self, params: EstimatorParams) -> None:
        self._hl = params.vol_halflife_s
        self._max_gap = params.vol_max_gap_s
        self._min_dt = params.vol_min_dt_s
        self._min_samples = params.warmup_min_samples
        self._prior_var = params.sigma_prior * params.sigma_prior
        # den of a fully covered window: integral of 0.5**(t/hl) dt over [0, inf) = hl / ln2.
        self._full_den = self._hl / _LN2
        self._num = 0.0
        self._den = 0.0
        self._n = 0
        self._n_gaps = 0
        self._n_ignored = 0
        self._last_ts: float | None = None
        self._last_mid = 0.0
        self._log_last = 0.0

    def on_mid(self, ts: float, mid: float) -> None:
        """Feed a mid observed at engine time ``ts`` (seconds). Raises ValueError for a non-finite or
        non-positive mid or a non-finite ts."""
        # `not (mid > 0.0)` also catches NaN; `mid == inf` is caught explicitly.
        if not (mid > 0.0) or mid == math.inf:
            raise ValueError(f"mid must be finite and > 0, got {mid!r}")
        if not math.isfinite(ts):
            raise ValueError(f"ts must be finite, got {ts!r}")
        last_ts = self._last_ts
        if last_ts is None:
            self._set_reference(ts, mid)
            return
        dt = ts - last_ts
        if dt < self._min_dt or dt <= 0.0:
            if dt <= 0.0:
                self._n_ignored += 1
            return
        if dt > self._max_gap:
            self._n_gaps += 1
            self._set_reference(ts, mid)
            return
        if mid == self._last_mid:
            r2 = 0.0
        else:
            log_mid = math.log(mid)
            r = log_mid - self._log_last
            r2 = r * r
            self._log_last = log_mid
            self._last_mid = mid
        decay = 0.5 ** (dt / self._hl)
        self._num = self._num * decay + r2
        self._den = self._den * decay + dt
        self._last_ts = ts
        self._n += 1

    def _set_reference(self, ts: float, mid: float) -> None:
        self._last_ts = ts
        self._last_mid = mid
        self._log_last = math.log(mid)

    def seed(self, var_per_s: float, covered_s: float, n_samples: int) -> None:
        """Pool history measured elsewhere (e.g. candles) into the estimate: ``var_per_s`` observed over
        ``covered_s`` seconds from ``n_samples`` returns. The seed decays like any other data as live returns
        arrive. The reference point is not touched (history ends before live data starts)."""
        if not (math.isfinite(var_per_s) and var_per_s >= 0.0):
            raise ValueError(f"seed variance must be finite and >= 0, got {var_per_s!r}")
        if not (math.isfinite(covered_s) and covered_s > 0.0):
            raise ValueError(f"seed coverage must be finite and > 0, got {covered_s!r}")
        if n_samples < 1:
            raise ValueError(f"seed needs at least one sample, got {n_samples}")
        num = self._num + var_per_s * covered_s
        den = self._den + covered_s
        if den > self._full_den:
            # History older than the EWMA window would have decayed away: keep the mix, cap the weight.
            scale = self._full_den / den
            num *= scale
            den = self._full_den
        self._num = num
        self._den = den
        self._n += n_samples

    def merge_from(self, other: VolatilityEstimator) -> None:
        """Pool another estimator's decayed sums (used for warm start from a mid history)."""
        if other._den > 0.0:
            self.seed(other._num / other._den, other._den, max(other._n, 1))

    @property
    def var_observed(self) -> float:
        """Observed variance of log mid per second (0 before any return)."""
        return self._num / self._den if self._den > 0.0 else 0.0

    @property
    def sigma_observed(self) -> float:
        """Observed volatility per sqrt(second), unblended (0 before any return)."""
        return math.sqrt(self.var_observed)

    @property
    def n_samples(self) -> int:
        """Returns used so far (live plus seeded)."""
        return self._n

    @property
    def n_gaps(self) -> int:
        return self._n_gaps

    @property
    def n_ignored(self) -> int:
        """Updates ignored for zero or negative dt."""
        return self._n_ignored

    @property
    def coverage(self) -> float:
        """How much of the EWMA window holds data, in [0, 1]."""
        return min(1.0, self._den / self._full_den)

    @property
    def confidence(self) -> float:
        """Confidence in [0, 1]: sample count (vs ``warmup_min_samples``) times window coverage."""
        return min(1.0, self._n / self._min_samples) * self.coverage

    @property
    def sigma(self) -> float:
        """``sqrt(w * var_obs + (1 - w) * sigma_prior^2)`` with ``w = confidence``."""
        w = self.confidence
        return math.sqrt(w * self.var_observed + (1.0 - w) * self._prior_var)
