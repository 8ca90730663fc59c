"""Results of a run: a runner-side observer (:class:`RunStats`) and the summary metrics.

The runner sees every action the engine sends and every event the venue returns, so the summary is
computed from that boundary traffic, independently of the engine's own bookkeeping; the engine's
:class:`Portfolio` is then cross-checked against this independent ledger (``pnl_check``). Every field is
documented in ``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hlmm.venue.base import (
    CancelOrder,
    CancelRejected,
    Fill,
    Funding,
    ModifyOrder,
    OrderRejected,
    PlaceOrder,
    VenueAction,
)

SHARPE_INTERVAL_S = 60.0
# Below ~100 return intervals the sample Sharpe is noise (its standard error is >= 0.1 per interval, i.e. >= 72
# annualised at 60 s), so it is reported as null rather than as a figure. The interval stays fixed and stated: a
# shorter one for short runs would only trade the sample size for autocorrelated, microstructure-dominated returns.
SHARPE_MIN_INTERVALS = 100
SECONDS_PER_YEAR = 365.0 * 86400.0  # crypto trades every day
MARKOUT_HORIZONS_S = (1.0, 10.0, 60.0)
BALANCE_TOLERANCE_USD = 0.005  # "to the cent"
# Live/paper: at most this many mid points (thinned evenly over the whole run) and this many recent fills and
# funding events are kept; the ledger, counts and extremes are running values, so the summary stays exact for
# PnL/position/volumes and approximate (thinned mids, recent fills) only for drawdown, Sharpe and markouts.
# 4000 mids thinned over a day are one per ~22 s (Sharpe is taken over 60 s intervals); the bound is reached within
# minutes (mids change many times a second), so the memory is flat after that (~0.5 MB for the mids).
LIVE_STATS_MAX = 4_000


class SummaryError(ValueError):
    """Inconsistent inputs to the summary (e.g. no market data at all)."""


@dataclass(slots=True)
class Ledger:
    """Independent position/cash ledger built from fills and funding (average-entry accounting)."""

    position: float = 0.0
    avg_entry: float = 0.0
    cash: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0

    def on_fill(self, is_buy: bool, px: float, sz: float, fee: float) -> None:
        signed = sz if is_buy else -sz
        self.cash -= signed * px + fee
        self.fees += fee
        pos = self.position
        if pos == 0.0 or (pos > 0) == (signed > 0):
            new = pos + signed
            self.avg_entry = (self.avg_entry * abs(pos) + px * sz) / abs(new)
            self.position = new
            return
        closed = min(abs(pos), sz)
        self.realized += closed * (px - self.avg_entry) * (1.0 if pos > 0 else -1.0)
        new = pos + signed
        if abs(new) < 1e-12:
            self.position, self.avg_entry = 0.0, 0.0
        elif (new > 0) != (pos > 0):  # flipped: the remainder opens at this price
            self.position, self.avg_entry = new, px
        else:
            self.position = new

    def on_funding(self, usdc: float) -> None:
        self.cash += usdc
        self.funding += usdc

    def unrealized(self, mark: float) -> float:
        return self.position * (mark - self.avg_entry) if self.position else 0.0

    def pnl_total(self, mark: float) -> float:
        return self.cash + self.position * mark


@dataclass(slots=True)
class RunStats:
    """Observer fed by the runner: market mids, engine actions, venue events, resting-order samples."""

    coin: str
    start_ts: float
    mid_ts: list[float] = field(default_factory=list)
    mid_px: list[float] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    funding: list[Funding] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    cancel_rejects: int = 0
    first_quote_ts: float | None = None
    max_order_size: float = 0.0
    max_order_usd: float = 0.0
    n_place: int = 0
    n_cancel: int = 0
    n_modify: int = 0
    n_events: int = 0
    last_ts: float = 0.0
    mid_last_seen: float = -math.inf
    _fill_keys: set[tuple[int, int]] = field(default_factory=set)
    _dup_fills: int = 0
    # quote uptime (time-weighted between samples, from the first quote on)
    _up_prev_ts: float | None = None
    _up_prev_both: bool = False
    up_total_s: float = 0.0
    up_both_s: float = 0.0
    n_uptime_samples: int = 0
    # bounded mode (live/paper): None keeps everything (backtest: results unchanged)
    max_points: int | None = None
    mid_pnl: list[float] = field(default_factory=list)  # bounded mode: PnL at each kept mid (running ledger)
    _mid_stride: float = 0.0  # bounded mode: minimum spacing between kept mids (doubles as the run grows)
    _led: Ledger = field(default_factory=Ledger)  # running ledger in arrival order (bounded mode's ledger)
    n_fills: int = 0
    max_abs_position: float = 0.0
    maker_usd: float = 0.0
    taker_usd: float = 0.0
    opening: Ledger | None = None  # the ledger at the session's start (None: flat, PnL 0 - backtest, paper)

    def set_opening(self, portfolio: Any) -> None:
        """Start the independent ledger from what the engine holds when the session starts (a live restart's
        restored day, a position inherited at start), instead of flat: the PnL check then balances."""
        self.opening = Ledger(position=float(portfolio.position), avg_entry=float(portfolio.avg_entry),
                              cash=float(portfolio.cash), realized=float(portfolio.realized),
                              fees=float(portfolio.fees), funding=float(portfolio.funding))
        if self.max_points is not None:
            # Bounded mode keeps a running ledger instead of every fill: it opens from the same balance, plus
            # anything recorded before the opening was known (normally nothing: the opening is set at sync).
            o, r = self.opening, self._led
            self._led = Ledger(o.position + r.position, o.avg_entry if r.position == 0 else r.avg_entry,
                               o.cash + r.cash, o.realized + r.realized, o.fees + r.fees, o.funding + r.funding)

    def on_mid(self, ts: float, mid: float) -> None:
        """Record the mid when it changes (engine clock)."""
        self.mid_last_seen = ts
        px = self.mid_px
        if self.max_points is not None:
            self._on_mid_bounded(ts, mid)
            return
        if not px or px[-1] != mid:
            self.mid_ts.append(ts)
            px.append(mid)

    def _on_mid_bounded(self, ts: float, mid: float) -> None:
        """Thinned series: a point closer than the stride to the one before replaces the last (so the last mid
        is always the current one); past ``max_points`` every other point goes and the stride doubles."""
        mts, px, pnl = self.mid_ts, self.mid_px, self.mid_pnl
        if px and px[-1] == mid:
            return
        v = self._led.pnl_total(mid)
        if len(mts) >= 2 and ts - mts[-2] < self._mid_stride:
            mts[-1], px[-1], pnl[-1] = ts, mid, v
            return
        mts.append(ts)
        px.append(mid)
        pnl.append(v)
        n = len(mts)
        if self.max_points is not None and n > self.max_points:
            keep = [*range(0, n - 1, 2), n - 1]
            mts[:] = [mts[i] for i in keep]
            px[:] = [px[i] for i in keep]
            pnl[:] = [pnl[i] for i in keep]
            self._mid_stride = (mts[-1] - mts[0]) / max(1, len(mts) - 1)

    def on_actions(self, actions: Sequence[VenueAction], ts: float) -> None:
        for a in actions:
            if isinstance(a, PlaceOrder):
                self.n_place += 1
                self._order(a, ts)
            elif isinstance(a, ModifyOrder):
                self.n_modify += 1
                self._order(a.new, ts)
            elif isinstance(a, CancelOrder):
                self.n_cancel += 1

    def _order(self, p: PlaceOrder, ts: float) -> None:
        if p.reduce_only:
            return  # a flatten order is not a quote and is bounded by the position, not the per-order cap
        if self.first_quote_ts is None:
            self.first_quote_ts = ts
        if p.sz > self.max_order_size:
            self.max_order_size = p.sz
        usd = p.sz * p.px
        if usd > self.max_order_usd:
            self.max_order_usd = usd

    def on_venue(self, ev: Any) -> None:
        if isinstance(ev, Fill):
            key = (ev.tid, ev.oid)
            if key in self._fill_keys:
                self._dup_fills += 1
                return
            self._fill_keys.add(key)
            self.fills.append(ev)
            self.n_fills += 1
            led = self._led
            led.on_fill(ev.is_buy, ev.px, ev.sz, ev.fee)
            self.max_abs_position = max(self.max_abs_position, abs(led.position))
            if ev.is_maker:
                self.maker_usd += ev.px * ev.sz
            else:
                self.taker_usd += ev.px * ev.sz
            if self.max_points is not None and len(self.fills) > self.max_points:
                for old in self.fills[: len(self.fills) - self.max_points]:
                    self._fill_keys.discard((old.tid, old.oid))  # the venue adapter de-duplicates further back
                del self.fills[: len(self.fills) - self.max_points]
        elif isinstance(ev, OrderRejected):
            r = str(ev.reason)
            self.rejections[r] = self.rejections.get(r, 0) + 1
        elif isinstance(ev, CancelRejected):
            self.cancel_rejects += 1
        elif isinstance(ev, Funding):
            self.funding.append(ev)
            self._led.on_funding(ev.usdc)
            if self.max_points is not None and len(self.funding) > self.max_points:
                del self.funding[: len(self.funding) - self.max_points]

    def on_resting(self, ts: float, n_bids: int, n_asks: int) -> None:
        """Sample of what rests at the venue now; time before the first quote is not counted."""
        if self.first_quote_ts is None or ts < self.first_quote_ts:
            return
        self.n_uptime_samples += 1
        prev = self._up_prev_ts
        if prev is None:
            prev, both = self.first_quote_ts, False  # from the first quote until the first sample: not yet resting
        else:
            both = self._up_prev_both
        dt = ts - prev
        if dt > 0:
            self.up_total_s += dt
            if both:
                self.up_both_s += dt
        self._up_prev_ts = ts
        self._up_prev_both = n_bids > 0 and n_asks > 0

    def ledger(self) -> Ledger:
        if self.max_points is not None:  # bounded: the running ledger already starts from the opening
            r = self._led
            return Ledger(r.position, r.avg_entry, r.cash, r.realized, r.fees, r.funding)
        o = self.opening
        led = Ledger() if o is None else Ledger(o.position, o.avg_entry, o.cash, o.realized, o.fees, o.funding)
        items: list[tuple[float, int, Any]] = [(f.ts, 0, f) for f in self.fills]
        items += [(f.ts, 1, f) for f in self.funding]
        items.sort(key=lambda x: (x[0], x[1]))
        for _, kind, ev in items:
            if kind == 0:
                led.on_fill(ev.is_buy, ev.px, ev.sz, ev.fee)
            else:
                led.on_funding(ev.usdc)
        return led


def _pnl_series(stats: RunStats) -> tuple[np.ndarray, np.ndarray]:
    """PnL (cash + position*mid) at every recorded mid change, from the fill/funding ledger."""
    if stats.max_points is not None:  # bounded: recorded with each kept mid from the running ledger
        return np.asarray(stats.mid_ts, dtype=np.float64), np.asarray(stats.mid_pnl, dtype=np.float64)
    mts = np.asarray(stats.mid_ts, dtype=np.float64)
    mpx = np.asarray(stats.mid_px, dtype=np.float64)
    fills = sorted(stats.fills, key=lambda f: f.ts)
    if fills:
        fts = np.fromiter((f.ts for f in fills), np.float64, len(fills))
        signed = np.fromiter((f.sz if f.is_buy else -f.sz for f in fills), np.float64, len(fills))
        px = np.fromiter((f.px for f in fills), np.float64, len(fills))
        fee = np.fromiter((f.fee for f in fills), np.float64, len(fills))
        cum_pos = np.concatenate(([0.0], np.cumsum(signed)))
        cum_cash = np.concatenate(([0.0], np.cumsum(-signed * px - fee)))
        idx = np.searchsorted(fts, mts, side="right")
        pos, cash = cum_pos[idx], cum_cash[idx]
    else:
        pos = np.zeros_like(mts)
        cash = np.zeros_like(mts)
    o = stats.opening
    if o is not None:
        pos, cash = pos + o.position, cash + o.cash
    if stats.funding:
        funding = sorted(stats.funding, key=lambda f: f.ts)
        gts = np.fromiter((f.ts for f in funding), np.float64, len(funding))
        cum_f = np.concatenate(([0.0], np.cumsum([f.usdc for f in funding])))
        cash = cash + cum_f[np.searchsorted(gts, mts, side="right")]
    return mts, cash + pos * mpx


def _max_drawdown(pnl: np.ndarray, start: float | None = 0.0) -> float:
    """Largest fall from a running peak; the peak starts at ``start`` (PnL 0 for a flat start; None: the first
    value, for a session that opened with a restored day or an inherited position)."""
    if pnl.size == 0:
        return 0.0
    first = pnl[0] if start is None else start
    peak = np.maximum.accumulate(np.concatenate(([first], pnl)))[1:]
    return float(max(0.0, np.max(peak - pnl)))


def _sharpe(
    mts: np.ndarray, pnl: np.ndarray, start: float, end: float, interval: float
) -> tuple[float | None, float | None, int]:
    """(annualised Sharpe, its standard error, number of return intervals) of PnL changes over fixed intervals.

    SR = mean/std (ddof 1) of the per-interval PnL changes; SE(SR) = sqrt((1 + SR^2 / 2) / n) (Lo 2002, Mertens
    2002, iid returns: the delta-method variance of the sample Sharpe). Both are annualised by the same factor
    sqrt(seconds per year / interval). (None, None, n) with fewer than SHARPE_MIN_INTERVALS intervals or no
    variance (e.g. no fills: the PnL never moves)."""
    n = int((end - start) // interval)
    if n < SHARPE_MIN_INTERVALS or mts.size == 0:
        return None, None, max(n, 0)
    grid = start + interval * np.arange(n + 1)
    idx = np.searchsorted(mts, grid, side="right") - 1
    vals = np.where(idx >= 0, pnl[np.clip(idx, 0, None)], 0.0)
    d = np.diff(vals)
    sd = float(np.std(d, ddof=1))
    if not math.isfinite(sd) or sd <= 1e-12:
        return None, None, n
    sr = float(np.mean(d)) / sd
    se = math.sqrt((1.0 + 0.5 * sr * sr) / n)
    ann = math.sqrt(SECONDS_PER_YEAR / interval)
    return sr * ann, se * ann, n


def _markouts(stats: RunStats, horizons: Iterable[float]) -> dict[str, float | None]:
    """Average signed markout per fill in bps of the fill price, before fees (``markout_<h>s``: buy
    (mid(t+h) - p)/p, sell (p - mid(t+h))/p) and after fees (``markout_<h>s_net``: the same per fill minus that
    fill's fee in bps of its notional, fee/(p*sz); a maker rebate is a negative fee and raises it), and
    ``fee_bps_per_fill``, the plain average of fee/(p*sz) over the fills (signed, bps).

    Plain (not size-weighted) averages over fills, like the fee figure beside them, so gross - fee_bps = net
    when every fill qualifies. Fills whose horizon runs past the last market observation are left out."""
    out: dict[str, float | None] = {}
    mts = np.asarray(stats.mid_ts, dtype=np.float64)
    mpx = np.asarray(stats.mid_px, dtype=np.float64)
    fills = stats.fills
    n = len(fills)
    fts0 = np.fromiter((f.ts for f in fills), np.float64, n)
    px_all = np.fromiter((f.px for f in fills), np.float64, n)
    sign_all = np.fromiter((1.0 if f.is_buy else -1.0 for f in fills), np.float64, n)
    fee_bps_all = np.fromiter((f.fee / (f.px * f.sz) * 1e4 if f.px * f.sz > 0 else 0.0 for f in fills),
                              np.float64, n)  # fmt: skip
    net: dict[str, float | None] = {}
    for h in horizons:
        key = f"markout_{int(h)}s"
        out[key] = net[f"{key}_net"] = None
        if not fills or mts.size == 0:
            continue
        fts = fts0 + h
        ok = fts <= stats.mid_last_seen
        if not ok.any():
            continue
        idx = np.searchsorted(mts, fts[ok], side="right") - 1
        valid = idx >= 0
        if not valid.any():
            continue
        px = px_all[ok][valid]
        gross = sign_all[ok][valid] * (mpx[idx[valid]] - px) / px * 1e4
        out[key] = float(np.mean(gross))
        net[f"{key}_net"] = float(np.mean(gross - fee_bps_all[ok][valid]))
    out.update(net)
    out["fee_bps_per_fill"] = float(np.mean(fee_bps_all)) if n else None
    return out


def build_summary(
    stats: RunStats,
    *,
    end_ts: float,
    max_position_usd: float,
    portfolio: Any | None = None,
    kill: str | None = None,
    wall_s: float | None = None,
    mode: str = "backtest",
    venue_position: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the results dict (JSON-serialisable). ``portfolio`` is the engine's Portfolio (cross-checked)."""
    if not stats.mid_px:
        raise SummaryError(f"{stats.coin}: no market data was seen, nothing to summarise")
    mark = stats.mid_px[-1]
    led = stats.ledger()
    ledger_total = led.pnl_total(mark)
    if portfolio is not None:
        pnl_total = float(portfolio.pnl_total(mark))
        realized = float(portfolio.realized)
        unrealized = float(portfolio.unrealized(mark))
        fees = float(portfolio.fees)
        funding = float(portfolio.funding)
        position = float(portfolio.position)
    else:
        pnl_total, realized, unrealized = ledger_total, led.realized, led.unrealized(mark)
        fees, funding, position = led.fees, led.funding, led.position
    diff = pnl_total - ledger_total
    balanced = abs(diff) <= BALANCE_TOLERANCE_USD and abs(position - led.position) < 1e-9
    if venue_position is not None and abs(venue_position - led.position) > 1e-9:
        balanced = False

    mts, pnl = _pnl_series(stats)
    duration = max(0.0, end_ts - stats.start_ts)
    sharpe, sharpe_se, n_int = _sharpe(mts, pnl, stats.start_ts, end_ts, SHARPE_INTERVAL_S)

    pos = stats.opening.position if stats.opening is not None else 0.0
    max_abs = abs(pos)
    maker_usd = taker_usd = 0.0
    if stats.max_points is not None:  # bounded: running values (the fills list holds only recent ones)
        max_abs, maker_usd, taker_usd = stats.max_abs_position, stats.maker_usd, stats.taker_usd
    else:
        for f in sorted(stats.fills, key=lambda f: f.ts):
            pos += f.sz if f.is_buy else -f.sz
            max_abs = max(max_abs, abs(pos))
            if f.is_maker:
                maker_usd += f.px * f.sz
            else:
                taker_usd += f.px * f.sz

    uptime = stats.up_both_s / stats.up_total_s if stats.up_total_s > 0 else None
    out: dict[str, Any] = {
        "mode": mode,
        "coin": stats.coin,
        "pnl_total": pnl_total,
        "pnl_realized": realized,
        "pnl_unrealized": unrealized,
        "fees": fees,
        "funding": funding,
        "position": position,
        "mark": mark,
        "n_fills": stats.n_fills if stats.max_points is not None else len(stats.fills),
        "maker_volume_usd": maker_usd,
        "taker_volume_usd": taker_usd,
        "max_abs_position": max_abs,
        "max_abs_position_usd": max_abs * mark,
        "max_order_size": stats.max_order_size,
        "max_order_usd": stats.max_order_usd,
        "max_position_limit": max_position_usd,
        "max_drawdown": _max_drawdown(pnl, None if stats.opening is not None else 0.0),
        "sharpe": sharpe,
        "sharpe_se": sharpe_se,
        "sharpe_interval_s": SHARPE_INTERVAL_S,
        "sharpe_n_intervals": n_int,
        **_markouts(stats, MARKOUT_HORIZONS_S),
        "markout_unit": "bps",
        "time_to_first_quote_s": (stats.first_quote_ts - stats.start_ts) if stats.first_quote_ts is not None else None,
        "quote_uptime_both_sides": uptime,
        "rejections": dict(sorted(stats.rejections.items())),
        "cancel_rejections": stats.cancel_rejects,
        "n_orders_placed": stats.n_place,
        "n_orders_modified": stats.n_modify,
        "n_orders_cancelled": stats.n_cancel,
        "kill": kill,
        "duration_s": duration,
        "n_events": stats.n_events,
        "wall_s": wall_s,
        "events_per_s": (stats.n_events / wall_s) if wall_s else None,
        "pnl_check": {
            "cash": led.cash,
            "position": led.position,
            "mark": mark,
            "cash_plus_position_x_mark": ledger_total,
            "diff": diff,
            "balanced": balanced,
            "opening_position": stats.opening.position if stats.opening is not None else 0.0,
            "opening_cash": stats.opening.cash if stats.opening is not None else 0.0,
        },
    }
    if extra:
        out.update(extra)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v == 0:
            return "0"
        a = abs(v)
        return f"{v:,.2f}" if a >= 100 else f"{v:.4f}" if a >= 0.01 else f"{v:.3g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) or "none"
    return str(v)


SUMMARY_ROWS = (
    ("PnL total (USD)", "pnl_total"),
    ("  realized", "pnl_realized"),
    ("  unrealized", "pnl_unrealized"),
    ("  fees paid", "fees"),
    ("  funding", "funding"),
    ("position", "position"),
    ("fills", "n_fills"),
    ("maker volume (USD)", "maker_volume_usd"),
    ("taker volume (USD)", "taker_volume_usd"),
    ("max |position|", "max_abs_position"),
    ("max |position| (USD)", "max_abs_position_usd"),
    ("max order size", "max_order_size"),
    ("max order (USD)", "max_order_usd"),
    ("max position limit (USD)", "max_position_limit"),
    ("max drawdown (USD)", "max_drawdown"),
    ("Sharpe (annualised) ± SE", "sharpe"),  # rendered by sharpe_text
    ("markout 1 s gross (bps)", "markout_1s"),
    ("markout 1 s net (bps)", "markout_1s_net"),
    ("markout 10 s gross (bps)", "markout_10s"),
    ("markout 10 s net (bps)", "markout_10s_net"),
    ("markout 60 s gross (bps)", "markout_60s"),
    ("markout 60 s net (bps)", "markout_60s_net"),
    ("fee per fill (bps, signed)", "fee_bps_per_fill"),
    ("time to first quote (s)", "time_to_first_quote_s"),
    ("quote uptime, both sides", "quote_uptime_both_sides"),
    ("rejections", "rejections"),
    ("kill", "kill"),
    ("simulated duration (s)", "duration_s"),
    ("events", "n_events"),
    ("events/s (wall)", "events_per_s"),
)


def sharpe_text(s: dict[str, Any]) -> str:
    """The Sharpe with its standard error and what it was taken over, or why there is none."""
    v, se, n, iv = s.get("sharpe"), s.get("sharpe_se"), s.get("sharpe_n_intervals"), s.get("sharpe_interval_s")
    over = f"{n} intervals of {iv:g} s" if n is not None and iv is not None else "?"
    if v is not None:
        return f"{_fmt(v)} ± {_fmt(se)} ({over})"
    if n is None or iv is None:
        return "-"
    if n < SHARPE_MIN_INTERVALS:
        return f"n/a (< {SHARPE_MIN_INTERVALS} intervals of {iv:g} s: {n})"
    return f"n/a (PnL flat over {over})"


def format_summary(s: dict[str, Any]) -> str:
    """Plain-text table of the summary (for terminals and logs)."""
    lines = [f"== {s.get('mode', 'run')} summary: {s.get('coin', '')} =="]
    for label, key in SUMMARY_ROWS:
        lines.append(f"{label:<28} {sharpe_text(s) if key == 'sharpe' else _fmt(s.get(key))}")
    chk = s.get("pnl_check", {})
    lines.append(
        f"{'PnL check':<28} cash {_fmt(chk.get('cash'))} + position x mark -> "
        f"{_fmt(chk.get('cash_plus_position_x_mark'))} ({'balanced' if chk.get('balanced') else 'MISMATCH'})"
    )
    return "\n".join(lines)
