"""Seeded synthetic Hyperliquid-like market: L2 book snapshots and trades, deterministic for a seed.

Model (all times whole milliseconds, like Hyperliquid's):
- Mid: jump-diffusion on the book grid, ``dlog m = sigma dW - sigma^2/2 dt + J`` with Poisson(jump_rate)
  jumps of relative size N(0, jump_std).
- Book: a snapshot every ``book_interval_s`` (+ uniform jitter up to ``book_jitter_s``). Levels rest at
  absolute prices on the instrument's tick grid and persist between snapshots (as real resting orders do):
  levels the new spread crosses are removed, new levels fill from the new touch, a few levels are resized
  per snapshot and the tail is topped up to ``levels``. Best bid < best ask always; every price is valid.
- Trades: market orders ("sweeps") arrive as a Poisson process, ``trade_rate_at_touch`` per s over both
  sides. A sweep's excursion from mid is the touch distance plus Exp(kappa) (relative units), so sweeps
  reaching relative distance d arrive at rate A*exp(-kappa*d). A sweep prints one trade per level it
  reaches (same exchange time, consecutive tids) at that level's price, size min(random size, level size),
  against the book of the latest snapshot at or before its exchange time.
- Stale episodes (Poisson ``stale_rate``, duration uniform in [stale_min_s, stale_max_s]): the book stops
  updating, so no l2Book messages are sent; trades continue against the frozen book while the latent mid
  keeps moving, and the first snapshot after the episode jumps to it (like a silent HIP-3 book).
- Feed latency: every event's local ``ts`` is ``ts_exchange + md_latency_s`` (constant, keeps ts order).

Speed: numbers are drawn in numpy chunks; per event Python only builds the immutable event objects, and
unchanged book levels are reused between snapshots (BookLevel construction dominates the cost).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from itertools import chain
from typing import Any

import numpy as np

from hlmm.market.events import BookLevel, BookSnapshot, MarketEvent, Trade
from hlmm.market.instrument import Instrument, InstrumentRegistry, default_registry

_CHUNK = 2048  # book steps per numpy draw
_POOL = 8192  # random numbers per pool refill
_ASK_HEADROOM = 1.02  # asks never go above mid*1.02, so one tick is valid for the whole ask side


class SynthParamsError(ValueError):
    """Synthetic market parameters that make no sense; the message names the field."""


@dataclass(frozen=True)
class SynthParams:
    """Parameters of a synthetic market. Sizes are in coin units, rates per second, relative = fraction of mid."""

    coin: str = "BTC"
    start_px: float = 70_000.0
    sigma: float = 8e-5  # per sqrt(s): ~45% annualised
    jump_rate: float = 1 / 600  # per s
    jump_std: float = 1e-3  # relative jump size
    levels: int = 20  # per side
    spread_ticks: int = 1  # touch spread in ticks
    level_gap_ticks: float = 1.5  # mean gap between adjacent levels in ticks (>= 1, geometric)
    level_size: float = 0.5  # median resting size per level (lognormal)
    level_size_sigma: float = 1.0
    level_orders: float = 3.0  # mean orders per level (the 'n' field)
    level_updates: float = 3.0  # mean number of levels resized per snapshot
    book_interval_s: float = 0.5
    book_jitter_s: float = 0.1
    trade_rate_at_touch: float = 3.0  # sweeps per s, both sides together
    kappa: float = 5e4  # decay of sweep intensity with relative distance from mid
    trade_size: float = 0.01  # median print size (lognormal)
    trade_size_sigma: float = 1.5
    md_latency_s: float = 0.1
    stale_rate: float = 0.0  # stale episodes per s
    stale_min_s: float = 5.0
    stale_max_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> SynthParamsError:
            return SynthParamsError(f"SynthParams.{name}={getattr(self, name)!r}: {why}")

        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise bad(f.name, "must be finite")
        positive = ("start_px", "level_size", "trade_size", "book_interval_s", "kappa")
        for name in positive:
            if getattr(self, name) <= 0:
                raise bad(name, "must be > 0")
        non_negative = ("sigma", "jump_rate", "jump_std", "level_size_sigma", "level_updates", "book_jitter_s",
                        "trade_rate_at_touch", "trade_size_sigma", "md_latency_s", "stale_rate")  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if not 1 <= self.levels <= 100:
            raise bad("levels", "must be in 1..100")
        if self.spread_ticks < 1:
            raise bad("spread_ticks", "must be >= 1")
        if self.level_gap_ticks < 1:
            raise bad("level_gap_ticks", "must be >= 1")
        if self.level_orders < 1:
            raise bad("level_orders", "must be >= 1")
        if round(self.book_interval_s * 1000) < 2:
            raise bad("book_interval_s", "must be >= 0.002 (trades need room between snapshots)")
        if not 0 < self.stale_min_s <= self.stale_max_s:
            raise bad("stale_min_s", "need 0 < stale_min_s <= stale_max_s")
        if self.md_latency_s != round(self.md_latency_s * 1e9) / 1e9:
            raise bad("md_latency_s", "must be a whole number of ns")


_PRESETS: dict[str, SynthParams] = {
    # Busy BTC-like perp, tick 1 near 70k: ~3 sweeps/s printing ~4-5 trades/s, one-tick spread.
    "btc": SynthParams(),
    # Quiet HIP-3 HYPE: ~33, szDecimals 2 (tick 0.001), wide sparse book, a sweep every ~12 s, stale books.
    "hype_quiet": SynthParams(
        coin="hyna:HYPE",
        start_px=33.0,
        sigma=1.4e-4,
        jump_rate=1 / 900,
        jump_std=2e-3,
        levels=20,
        spread_ticks=8,
        level_gap_ticks=3.0,
        level_size=20.0,
        level_size_sigma=1.0,
        level_orders=1.5,
        level_updates=1.0,
        trade_rate_at_touch=1 / 12,
        kappa=2e4,
        trade_size=5.0,
        trade_size_sigma=1.0,
        stale_rate=1 / 600,
        stale_min_s=5.0,
        stale_max_s=40.0,
    ),
}


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def preset(name: str, **overrides: Any) -> SynthParams:
    """A named parameter set ('btc', 'hype_quiet') with field overrides, e.g. ``preset('btc', seed=3)``."""
    try:
        base = _PRESETS[name]
    except KeyError:
        raise SynthParamsError(f"unknown preset {name!r}; known: {preset_names()}") from None
    known = {f.name for f in fields(SynthParams)}
    unknown = set(overrides) - known
    if unknown:
        raise SynthParamsError(f"unknown SynthParams fields {sorted(unknown)}; known: {sorted(known)}")
    return replace(base, **overrides)


def params_dict(p: SynthParams) -> dict[str, Any]:
    return asdict(p)


def _stream(draw: Callable[[int], np.ndarray]) -> Iterator[Any]:
    """Endless iterator over pre-drawn random values: numpy speed, and ``next()`` costs ~50 ns."""
    return chain.from_iterable(iter(lambda: draw(_POOL).tolist(), None))


class _Generator:
    """Book and trade state of one run. ``step`` consumes a chunk of the mid path."""

    def __init__(self, p: SynthParams, inst: Instrument, seed_seq: np.random.SeedSequence) -> None:
        self.p = p
        self.inst = inst
        self.coin = p.coin
        book_rng, trade_rng = (np.random.default_rng(s) for s in seed_seq.spawn(2))
        lot_scale = 10.0**inst.sz_decimals
        mu_l, mu_t = math.log(p.level_size), math.log(p.trade_size)
        # Sizes are whole lots by construction: draw, floor to a count of lots (>= 1), divide exactly.
        self.level_sz = _stream(lambda n: np.maximum(1.0, np.floor(book_rng.lognormal(mu_l, p.level_size_sigma, n)
                                                                  * lot_scale)) / lot_scale)  # fmt: skip
        self.level_n = _stream(lambda n: 1 + book_rng.poisson(p.level_orders - 1.0, n))
        self.gap = _stream(lambda n: book_rng.geometric(1.0 / p.level_gap_ticks, n))
        self.n_updates = _stream(lambda n: book_rng.poisson(p.level_updates, n))
        self.unif = _stream(lambda n: book_rng.random(n))
        self.trade_sz = _stream(lambda n: np.maximum(1.0, np.floor(trade_rng.lognormal(mu_t, p.trade_size_sigma, n)
                                                                  * lot_scale)) / lot_scale)  # fmt: skip
        self.trade_u = _stream(lambda n: trade_rng.random(n))
        self.excess = _stream(lambda n: trade_rng.exponential(1.0 / p.kappa, n))
        self.trade_rng = trade_rng
        self.q = 10**inst.price_decimals
        self.tick = 0.0
        self.tick_lo = self.tick_hi = 0.0  # decade of mid*headroom for which self.tick holds
        self.tick_q = 0
        self.bk: list[int] = []  # bid keys = -units (ascending outwards)
        self.bl: list[BookLevel] = []
        self.ak: list[int] = []  # ask keys = units
        self.al: list[BookLevel] = []
        self.tid = 10**14 + int(np.random.default_rng(seed_seq.spawn(1)[0]).integers(0, 10**13))
        self.lat_ns = round(p.md_latency_s * 1e9)

    # ---- book -----------------------------------------------------------------------------------
    def _update_side(self, keys: list[int], lvls: list[BookLevel], touch: int, sgn: int, max_key: int) -> None:
        n_lv = self.p.levels
        tq, q = self.tick_q, self.q
        nsz, nn, gap = self.level_sz.__next__, self.level_n.__next__, self.gap.__next__
        # Prices use integer arithmetic and one exact division: the nearest double to the decimal price.
        i = bisect_left(keys, touch)
        if i:  # levels the new spread crosses are gone
            del keys[:i]
            del lvls[:i]
        if not keys or keys[0] > touch:
            limit = keys[0] if keys else max_key + 1
            nk: list[int] = []
            k = touch
            while k < limit and k <= max_key and len(nk) < n_lv:
                nk.append(k)
                k += gap()
            keys[:0] = nk
            lvls[:0] = [BookLevel(sgn * k * tq / q, nsz(), nn()) for k in nk]
        if len(keys) > n_lv:
            del keys[n_lv:]
            del lvls[n_lv:]
        nu = next(self.n_updates)
        if nu:
            unif = self.unif.__next__
            for _ in range(nu):
                j = int(unif() * len(keys))
                lvls[j] = BookLevel(sgn * keys[j] * tq / q, nsz(), nn())
        while len(keys) < n_lv:
            k = keys[-1] + gap()
            if k > max_key:
                break
            keys.append(k)
            lvls.append(BookLevel(sgn * k * tq / q, nsz(), nn()))

    def update_book(self, mid: float) -> None:
        top = mid * _ASK_HEADROOM
        if not self.tick_lo <= top < self.tick_hi:  # a new decade: the tick may change
            tick = self.inst.tick_size(top)
            e = math.floor(math.log10(top))
            self.tick_lo, self.tick_hi = 10.0**e, 10.0 ** (e + 1)
            if tick != self.tick:  # rebuild on the new grid
                self.tick, self.tick_q = tick, round(tick * self.q)
                self.bk, self.bl, self.ak, self.al = [], [], [], []
        tick = self.tick
        s = self.p.spread_ticks
        bid_u = max(1, math.floor(mid / tick - (s - 1) / 2))
        ask_u = bid_u + s
        self._update_side(self.bk, self.bl, -bid_u, -1, -1)
        self._update_side(self.ak, self.al, ask_u, 1, max(ask_u, math.floor(top / tick)))

    # ---- trades ---------------------------------------------------------------------------------
    def sweep(self, out: list[MarketEvent], t_ms: int, is_buy: bool) -> None:
        bl, al = self.bl, self.al
        mid = 0.5 * (bl[0].px + al[0].px)
        reach = next(self.excess) * mid  # excursion beyond the touch, in price
        ts = (t_ms * 1_000_000 + self.lat_ns) / 1e9
        tx = t_ms / 1000.0
        tsz = self.trade_sz.__next__
        coin = self.coin
        if is_buy:
            limit = al[0].px + reach
            for lv in al:
                if lv.px > limit:
                    break
                self.tid += 1
                out.append(Trade(coin, ts, tx, lv.px, min(tsz(), lv.sz), "B", self.tid))
        else:
            limit = bl[0].px - reach
            for lv in bl:
                if lv.px < limit:
                    break
                self.tid += 1
                out.append(Trade(coin, ts, tx, lv.px, min(tsz(), lv.sz), "A", self.tid))

    def run(
        self, t_ms: list[int], dt_ms: list[int], mids: list[float], stale: list[bool], counts: list[int],
        end_ms: int, out: list[MarketEvent],
    ) -> None:  # fmt: skip
        """Emit the snapshot at each step (unless stale) and the sweeps before the next step."""
        coin, lat = self.coin, self.lat_ns
        tu = self.trade_u.__next__
        for i in range(len(t_ms)):
            t = t_ms[i]
            if t >= end_ms:
                return
            if not stale[i] or not self.bl:
                self.update_book(mids[i])
                out.append(BookSnapshot(coin, (t * 1_000_000 + lat) / 1e9, t / 1000.0, tuple(self.bl), tuple(self.al)))
            c = counts[i]
            if c:
                span = dt_ms[i] - 1
                offs = sorted(1 + int(tu() * span) for _ in range(c))
                for off in offs:
                    if t + off >= end_ms:
                        break
                    self.sweep(out, t + off, tu() < 0.5)


class SyntheticMarket:
    """Deterministic synthetic market for one coin. ``events`` and ``warm_history`` restart from the seed on
    every call, so the same call always returns the same events."""

    def __init__(
        self, params: SynthParams, registry: InstrumentRegistry | None = None, start_ts: float = 1_750_000_000.0
    ) -> None:
        self.params = params
        self.instrument = (registry or default_registry()).get(params.coin)
        if not math.isfinite(start_ts) or start_ts <= 0:
            raise SynthParamsError(f"start_ts must be a positive epoch time in s, got {start_ts!r}")
        self.start_ms = round(start_ts * 1000)  # Hyperliquid times are whole ms
        self.start_ts = self.start_ms / 1000.0

    def _seeds(self) -> list[np.random.SeedSequence]:
        return np.random.SeedSequence(self.params.seed).spawn(4)  # path, stale, generator, history

    def _dt(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p = self.params
        base = round(p.book_interval_s * 1000)
        jit = round(p.book_jitter_s * 1000)
        return base + (rng.integers(0, jit + 1, n) if jit else np.zeros(n, dtype=np.int64))

    def _log_steps(self, rng: np.random.Generator, dt_s: np.ndarray) -> np.ndarray:
        p = self.params
        steps = p.sigma * np.sqrt(dt_s) * rng.standard_normal(len(dt_s)) - 0.5 * p.sigma**2 * dt_s
        if p.jump_rate > 0 and p.jump_std > 0:
            nj = rng.poisson(p.jump_rate * dt_s)
            steps += np.where(nj > 0, rng.standard_normal(len(dt_s)) * p.jump_std * np.sqrt(nj), 0.0)
        return steps

    def events(self, duration_s: float) -> Iterator[MarketEvent]:
        """BookSnapshot and Trade events in ts order over [start_ts, start_ts + duration_s)."""
        if not math.isfinite(duration_s) or duration_s < 0:
            raise SynthParamsError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        p = self.params
        path_ss, stale_ss, gen_ss, _ = self._seeds()
        path_rng, stale_rng = np.random.default_rng(path_ss), np.random.default_rng(stale_ss)
        gen = _Generator(p, self.instrument, gen_ss)
        end_ms = self.start_ms + round(duration_s * 1000)
        t0, log_mid = self.start_ms, math.log(p.start_px)
        stale_start = stale_end = None
        if p.stale_rate > 0:
            stale_start = t0 + 1 + int(stale_rng.exponential(1000.0 / p.stale_rate))
        first = True
        while t0 < end_ms:
            dt = self._dt(path_rng, _CHUNK)
            dt_s = dt / 1000.0
            steps = self._log_steps(path_rng, dt_s)
            if first:
                steps[0] = 0.0  # the first snapshot is at start_px
            logm = log_mid + np.cumsum(steps)
            t = t0 + np.concatenate(([0], np.cumsum(dt[:-1])))
            counts = path_rng.poisson(p.trade_rate_at_touch * dt_s)
            stale = np.zeros(_CHUNK, dtype=bool)
            if stale_start is not None:
                for i, ti in enumerate(t.tolist()):
                    while stale_start is not None and ti >= stale_start:
                        if stale_end is None:
                            stale_end = stale_start + round(1000 * stale_rng.uniform(p.stale_min_s, p.stale_max_s))
                        if ti < stale_end:
                            stale[i] = True
                            break
                        stale_start = stale_end + 1 + int(stale_rng.exponential(1000.0 / p.stale_rate))
                        stale_end = None
            if first:
                stale[0] = False
                first = False
            out: list[MarketEvent] = []
            gen.run(t.tolist(), dt.tolist(), np.exp(logm).tolist(), stale.tolist(), counts.tolist(), end_ms, out)
            yield from out
            log_mid = float(logm[-1])
            t0 = int(t[-1] + dt[-1])

    def warm_history(self, seconds: float) -> tuple[list[tuple[float, float]], list[Trade]]:
        """(mids, trades) of the ``seconds`` before start_ts, ending at start_px, for warm starts.

        The mid path is drawn backwards from start_px (a driftless log random walk is time-reversible), then
        books and trades are generated forwards over it. ``mids`` are (local ts, book mid) per snapshot; only
        items with local ts < start_ts are returned. Independent of ``events`` (own seed stream)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise SynthParamsError(f"seconds must be finite and >= 0, got {seconds!r}")
        p = self.params
        hist_ss = self._seeds()[3]
        path_ss, gen_ss = hist_ss.spawn(2)
        rng = np.random.default_rng(path_ss)
        begin_ms = self.start_ms - round(seconds * 1000)
        n = max(1, math.ceil(seconds / p.book_interval_s) + 1)
        dt = self._dt(rng, n)
        back = np.cumsum(dt)  # ms before start of each snapshot, nearest first
        back = back[back <= self.start_ms - begin_ms]
        if len(back) == 0:
            return [], []
        steps = self._log_steps(rng, dt[: len(back)] / 1000.0)
        logm = math.log(p.start_px) - np.cumsum(steps)  # log mid at start_ms - back[k]
        t = (self.start_ms - back)[::-1]
        mids = np.exp(logm)[::-1]
        dts = np.diff(np.concatenate((t, [self.start_ms])))
        counts = rng.poisson(p.trade_rate_at_touch * dts / 1000.0)
        gen = _Generator(p, self.instrument, gen_ss)
        out: list[MarketEvent] = []
        gen.run(t.tolist(), dts.tolist(), mids.tolist(), [False] * len(t), counts.tolist(), self.start_ms, out)
        mid_pts: list[tuple[float, float]] = []
        trades: list[Trade] = []
        for ev in out:
            if ev.ts >= self.start_ts:
                continue
            if isinstance(ev, BookSnapshot):
                mid_pts.append((ev.ts, 0.5 * (ev.bids[0].px + ev.asks[0].px)))
            elif isinstance(ev, Trade):
                trades.append(ev)
        return mid_pts, trades
