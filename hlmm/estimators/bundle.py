"""The estimator facade the engine talks to: mids and trades in, ``EstimatorState`` out.

Readiness never waits for trades (failure 4: 103 s before the first quote on a quiet market). The strategy may
quote when any of these holds, checked in this order for ``reason``:

- ``warm``: combined confidence >= ``ready_confidence`` from live data (volatility *and* intensity);
- ``warm_start``: history supplied by the caller (candles / mids / trades) made volatility confident;
- ``timeout_priors_blend``: ``warmup_timeout_s`` elapsed since ``start_ts``; each estimate is its prior blended
  with whatever was observed, by that estimator's own confidence;
- otherwise ``warming 0.23`` (combined confidence), ``ready`` False.

Combined confidence (``warmup``) is ``min(volatility, intensity)``: warm means both halves rest on data.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence

from hlmm.estimators.intensity import IntensityEstimator
from hlmm.estimators.params import EstimatorParams
from hlmm.estimators.state import EstimatorState
from hlmm.estimators.volatility import VolatilityEstimator
from hlmm.market.events import Bbo, BookSnapshot, Trade


class WarmStartError(ValueError):
    """Warm-start history is malformed (bad candle fields, non-positive prices, ...)."""


class Estimators:
    """Volatility + intensity with bounded warm-up. ``on_book``/``on_bbo`` are the hot path (one log, one pow,
    no allocation); the intensity fit runs lazily in ``state()`` and is cached for ``intensity_refit_s``."""

    def __init__(self, params: EstimatorParams, start_ts: float) -> None:
        if not math.isfinite(start_ts):
            raise ValueError(f"start_ts must be finite, got {start_ts!r}")
        self.params = params
        self.start_ts = start_ts
        self.vol = VolatilityEstimator(params)
        self.intensity = IntensityEstimator(params, start_ts=start_ts)
        self._last_mid: float | None = None
        self._warm_started = False
        self._n_trades_no_mid = 0
        self._n_live_mids = 0

    # ---- live events -------------------------------------------------------------------------------------
    def on_book(self, book: BookSnapshot) -> None:
        """Feed the mid of an L2 snapshot (one-sided books carry no mid and are skipped)."""
        bids = book.bids
        asks = book.asks
        if bids and asks:
            mid = 0.5 * (bids[0].px + asks[0].px)
            self.vol.on_mid(book.ts, mid)
            self._last_mid = mid
            self._n_live_mids += 1

    def on_bbo(self, bbo: Bbo) -> None:
        """Feed the mid of a best bid/offer update (one-sided updates are skipped)."""
        bid = bbo.bid_px
        ask = bbo.ask_px
        if bid is not None and ask is not None:
            mid = 0.5 * (bid + ask)
            self.vol.on_mid(bbo.ts, mid)
            self._last_mid = mid
            self._n_live_mids += 1

    def on_mid(self, ts: float, mid: float) -> None:
        """Feed a mid directly (e.g. a mid derived elsewhere)."""
        self.vol.on_mid(ts, mid)
        self._last_mid = mid
        self._n_live_mids += 1

    def on_trade(self, trade: Trade, mid: float | None = None) -> None:
        """Feed a public trade. ``mid`` is the mid just before the trade; None uses the last mid fed here.
        Without any mid the trade cannot be placed on the distance grid and is only counted as skipped."""
        m = mid if mid is not None else self._last_mid
        if m is None:
            self.intensity.on_time(trade.ts)
            self._n_trades_no_mid += 1
            return
        self.intensity.on_trade(trade.ts, trade.px, trade.sz, trade.side, m, ts_exchange=trade.ts_exchange)

    @property
    def last_mid(self) -> float | None:
        return self._last_mid

    @property
    def n_trades_without_mid(self) -> int:
        return self._n_trades_no_mid

    # ---- warm start --------------------------------------------------------------------------------------
    def warm_start(
        self,
        mids: list[tuple[float, float]] | None = None,
        trades: list[Trade] | None = None,
        candles: list[dict] | None = None,
    ) -> bool:
        """Seed the estimators with history supplied by the caller, before or after live data started.

        - ``mids``: ``(ts, mid)`` pairs; their returns are pooled into the volatility estimate.
        - ``trades``: public trades; placed on the distance grid against the last mid in ``mids`` at or before
          each trade (trades without such a mid are skipped), kept if inside the intensity window.
        - ``candles``: Hyperliquid ``candleSnapshot`` dicts ``{"t": open_ms, "T": close_ms, "o", "h", "l", "c",
          ...}``; sigma is the mean of the close-to-close and the Parkinson high-low variance per second.

        Returns True, and marks the estimators warm-started, when volatility confidence reaches
        ``ready_confidence``. Raises WarmStartError for malformed history.
        """
        if candles:
            var_s, covered_s, n = _candle_variance(candles)
            if n > 0:
                self.vol.seed(var_s, covered_s, n)
        sorted_mids: list[tuple[float, float]] = []
        if mids:
            sorted_mids = sorted(mids)
            tmp = VolatilityEstimator(self.params)
            try:
                for ts, mid in sorted_mids:
                    tmp.on_mid(ts, mid)
            except ValueError as e:
                raise WarmStartError(f"bad warm-start mid: {e}") from e
            self.vol.merge_from(tmp)
        if trades and sorted_mids:
            self._warm_trades(trades, sorted_mids)
        if self.vol.confidence >= self.params.ready_confidence:
            self._warm_started = True
        return self._warm_started

    def _warm_trades(self, trades: list[Trade], sorted_mids: list[tuple[float, float]]) -> None:
        mid_ts = [t for t, _ in sorted_mids]
        horizon = max(self.intensity.now, trades[-1].ts if trades else -math.inf)
        cutoff = horizon - self.params.intensity_window_s
        entries: list[tuple[float, float]] = []
        for tr in sorted(trades, key=lambda t: t.ts):
            if tr.ts < cutoff:
                continue
            if not (math.isfinite(tr.px) and tr.px > 0.0):
                raise WarmStartError(f"bad warm-start trade px {tr.px!r} (tid {tr.tid})")
            i = bisect.bisect_right(mid_ts, tr.ts) - 1
            if i < 0:
                continue
            mid = sorted_mids[i][1]
            entries.append((tr.ts, abs(tr.px - mid) / mid))
        if entries:
            start = max(cutoff, min(sorted_mids[0][0], entries[0][0]))
            self.intensity.add_history(entries, start_ts=min(start, self.start_ts))

    @property
    def warm_started(self) -> bool:
        return self._warm_started

    # ---- output ------------------------------------------------------------------------------------------
    def state(self, ts: float) -> EstimatorState:
        """Blended estimates and readiness at engine time ``ts``."""
        inten = self.intensity
        inten.on_time(ts)
        vol = self.vol
        i_conf, i_a, i_kappa = inten.estimates()
        v_conf = vol.confidence
        conf = v_conf if v_conf < i_conf else i_conf
        p = self.params
        if conf >= p.ready_confidence:
            ready, reason = True, "warm"
        elif self._warm_started:
            ready, reason = True, "warm_start"
        elif ts - self.start_ts >= p.warmup_timeout_s:
            ready, reason = True, "timeout_priors_blend"
        else:
            ready, reason = False, f"warming {conf:.2f}"
        return EstimatorState(
            ts=ts,
            sigma=vol.sigma,
            intensity_a=i_a,
            kappa=i_kappa,
            warmup=conf,
            ready=ready,
            reason=reason,
        )


def _field(c: Mapping[str, object], key: str) -> float:
    try:
        v = float(c[key])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as e:
        raise WarmStartError(f"candle field {key!r} missing or not a number in {dict(c)!r}") from e
    if not math.isfinite(v):
        raise WarmStartError(f"candle field {key!r} is not finite in {dict(c)!r}")
    return v


def _candle_variance(candles: Sequence[Mapping[str, object]]) -> tuple[float, float, int]:
    """(variance of log price per second, seconds covered, number of samples) from OHLC candles.

    Close-to-close: ``sum r^2 / sum dt`` over consecutive closes (dt from the open times, so missing candles
    just lengthen dt). Parkinson: ``ln(h/l)^2 / (4 ln 2)`` per candle over its interval. The two are averaged
    when both exist: Parkinson is more efficient but reads 0 on candles without trades (quiet HIP-3 books),
    close-to-close still sees moves between trades.
    """
    rows = []
    for c in candles:
        t, t_close = _field(c, "t"), _field(c, "T")
        o, h, lo, cl = _field(c, "o"), _field(c, "h"), _field(c, "l"), _field(c, "c")
        if min(o, h, lo, cl) <= 0.0 or h < lo or not (lo <= cl <= h) or not (lo <= o <= h):
            raise WarmStartError(f"inconsistent candle prices in {dict(c)!r}")
        if t_close <= t:
            raise WarmStartError(f"candle close time <= open time in {dict(c)!r}")
        rows.append((t, t_close, h, lo, cl))
    rows.sort()
    if not rows:
        return 0.0, 0.0, 0
    # Interval: Hyperliquid sets T = t + interval - 1 ms; round to whole seconds.
    interval_s = max(1.0, round((rows[0][1] - rows[0][0]) / 1000.0))
    sum_r2 = 0.0
    sum_dt = 0.0
    n_cc = 0
    for prev, cur in itertools.pairwise(rows):
        dt = (cur[0] - prev[0]) / 1000.0
        if dt <= 0.0:
            raise WarmStartError(f"duplicate candle open time {cur[0]!r}")
        r = math.log(cur[4] / prev[4])
        sum_r2 += r * r
        sum_dt += dt
        n_cc += 1
    park = sum(math.log(h / lo) ** 2 for _, _, h, lo, _ in rows) / (4.0 * math.log(2.0)) / (len(rows) * interval_s)
    span_s = (rows[-1][0] - rows[0][0]) / 1000.0 + interval_s
    var = 0.5 * (sum_r2 / sum_dt + park) if n_cc > 0 else park
    return var, span_s, len(rows)
