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
- Informed flow: with probability ``toxicity`` a sweep is informed and its side is the sign of the latent mid's
  move over the next ``informed_horizon_s`` (it trades ahead of the move); otherwise the side is a coin flip.
  ``toxicity = 0`` draws exactly the same numbers as a market without informed flow.
- Impact: every print moves the mid permanently by ``impact_bp`` bp times ``size / trade_size`` in the
  aggressor's direction, from the next snapshot on (the latent path carries no memory of it otherwise).
- Clustering: a two-state (calm / burst) Markov chain on the book steps; bursts start at ``burst_rate`` per s,
  last Exp(``burst_mean_s``) and multiply the sweep intensity by ``burst_mult``. Intensities are normalised so
  the long-run sweep rate stays ``trade_rate_at_touch``.
- Funding (``ctx_interval_s > 0``): an AssetCtx every ``ctx_interval_s`` with mark = oracle = the latent mid
  (with impact) and the hourly funding rate of Hyperliquid's formula on an Ornstein-Uhlenbeck premium P (per 8 h:
  mean ``premium_mean``, stationary std ``premium_std``, reversion time ``premium_reversion_s``):
  ``F8 = P + clamp(0.01% - P, -0.05%, 0.05%)``, hourly rate ``clip(F8 / 8, -4%, 4%)``. The simulated exchange
  pays it on the hour at the latest rate (as ``activeAssetCtx`` does in a recording).
- Feed latency: every event's local ``ts`` is ``ts_exchange + md_latency_s`` (constant, keeps ts order).

Speed: numbers are drawn in numpy chunks; per event Python only builds the immutable event objects, and
unchanged book levels are reused between snapshots (BookLevel construction dominates the cost).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from itertools import chain
from typing import Any

import numpy as np

from hlmm.market.events import AssetCtx, BookLevel, BookSnapshot, MarketEvent, Trade
from hlmm.market.instrument import Instrument, InstrumentRegistry, default_registry

_CHUNK = 2048  # book steps per numpy draw
_POOL = 8192  # random numbers per pool refill
_ASK_HEADROOM = 1.02  # asks never go above mid*1.02, so one tick is valid for the whole ask side
_MAX_HORIZON_S = 60.0  # informed look-ahead (path chunks are drawn ahead until they cover it)
_INTEREST_8H = 1e-4  # Hyperliquid's fixed interest component: 0.01% per 8 h
_CLAMP_8H = 5e-4  # clamp(interest - premium, -0.05%, 0.05%)
_FUNDING_CAP_1H = 0.04  # 4% per hour


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
    toxicity: float = 0.0  # probability a sweep is informed (trades ahead of the mid), 0..1
    informed_horizon_s: float = 10.0  # how far ahead an informed sweep sees the latent mid
    impact_bp: float = 0.0  # permanent mid impact per print of median size, bp (linear in size)
    burst_rate: float = 0.0  # flow bursts per s (0: constant intensity)
    burst_mean_s: float = 10.0  # mean burst duration
    burst_mult: float = 1.0  # sweep intensity in a burst / intensity when calm
    ctx_interval_s: float = 0.0  # AssetCtx (mark, oracle, funding) cadence; 0: no AssetCtx, no funding
    premium_mean: float = 0.0  # funding premium, per 8 h
    premium_std: float = 0.0  # stationary std of the premium, per 8 h
    premium_reversion_s: float = 8 * 3600.0
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
                        "trade_rate_at_touch", "trade_size_sigma", "md_latency_s", "stale_rate", "impact_bp",
                        "burst_rate", "ctx_interval_s", "premium_std")  # fmt: skip
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
        if not 0.0 <= self.toxicity <= 1.0:
            raise bad("toxicity", "must be in [0, 1]")
        if not 0.0 < self.informed_horizon_s <= _MAX_HORIZON_S:
            raise bad("informed_horizon_s", f"must be in (0, {_MAX_HORIZON_S:g}]")
        if self.impact_bp > 100.0:
            raise bad("impact_bp", "must be <= 100 (a print moving the mid by more than 1% is not a market)")
        if self.burst_mean_s <= 0:
            raise bad("burst_mean_s", "must be > 0")
        if self.burst_mult < 1.0:
            raise bad("burst_mult", "must be >= 1 (a burst is busier than calm)")
        if 0 < self.ctx_interval_s < 0.001 or self.ctx_interval_s > 3600.0:
            raise bad("ctx_interval_s", "must be 0 (off) or in [0.001, 3600]: funding is paid hourly")
        if abs(self.premium_mean) > 0.05:
            raise bad("premium_mean", "must be within +-5% per 8 h")
        if self.premium_std > 0.05:
            raise bad("premium_std", "must be <= 5% per 8 h")
        if self.premium_reversion_s <= 0:
            raise bad("premium_reversion_s", "must be > 0")


_PRESETS: dict[str, SynthParams] = {
    # Busy BTC-like perp, tick 1 near 70k: ~3 sweeps/s printing ~4-5 trades/s, one-tick spread. Informed flow
    # calibrated on the real BTC CSV sessions (benchmarks/post_trade_move.py, per sweep, 7 sessions of 2-17 min,
    # Sept 2025): mid move after a sweep, signed by its side, +0.06..+0.15 bp at 1 s (pooled ~+0.12) and
    # +0.01..+0.41 bp at 10 s (pooled ~+0.18); this preset gives ~+0.11 and ~+0.21. Bursty flow; funding at
    # Hyperliquid's formula with a premium mostly inside the clamp band (so usually 0.00125 %/h, as BTC pays).
    "btc": SynthParams(
        toxicity=0.15,
        informed_horizon_s=2.0,
        impact_bp=0.007,
        burst_rate=1 / 60,
        burst_mean_s=10.0,
        burst_mult=5.0,
        ctx_interval_s=5.0,
        premium_std=3e-4,
    ),
    # The same market without informed flow, impact, bursts or funding (the btc preset before issue 11): for
    # tests about mechanics that must not depend on flow toxicity.
    "btc_noflow": SynthParams(),
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
        self.imp = 1.0  # cumulative permanent impact, a factor on the latent mid
        self.imp_per_sz = p.impact_bp * 1e-4 / p.trade_size
        self.h_ms = round(p.informed_horizon_s * 1000)
        self.ctx_ms = round(p.ctx_interval_s * 1000)
        self.next_ctx = -1  # exchange ms of the next AssetCtx
        self.ctx_t = -1  # exchange ms of the last one
        self.premium = 0.0
        # Own stream, spawned after the others, so that funding on/off leaves the book and trades unchanged.
        fund_rng = np.random.default_rng(seed_seq.spawn(1)[0])
        self.fund_z = _stream(lambda n: fund_rng.standard_normal(n))

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
        n0 = len(out)
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
        if self.imp_per_sz:
            sz = 0.0
            for tr in out[n0:]:
                sz += tr.sz  # type: ignore[union-attr]
            self.imp *= 1.0 + (self.imp_per_sz if is_buy else -self.imp_per_sz) * sz

    def asset_ctx(self, out: list[MarketEvent], t_ms: int, mid: float) -> None:
        """An AssetCtx at ``t_ms``: mark = oracle = ``mid``, funding from the OU premium (Hyperliquid's formula)."""
        p = self.p
        z = next(self.fund_z)
        if self.ctx_t < 0:  # start in the stationary distribution
            self.premium = p.premium_mean + p.premium_std * z
        else:
            a = math.exp(-(t_ms - self.ctx_t) / 1000.0 / p.premium_reversion_s)
            noise = p.premium_std * math.sqrt(1.0 - a * a) * z
            self.premium = p.premium_mean + (self.premium - p.premium_mean) * a + noise
        self.ctx_t = t_ms
        self.next_ctx = t_ms + self.ctx_ms
        prem = self.premium
        f8 = prem + min(max(_INTEREST_8H - prem, -_CLAMP_8H), _CLAMP_8H)
        # 12 decimals, as the exchange prints a rate: a recording of this stream reads back the same number.
        rate = round(min(max(f8 / 8.0, -_FUNDING_CAP_1H), _FUNDING_CAP_1H), 12)
        out.append(AssetCtx(self.coin, (t_ms * 1_000_000 + self.lat_ns) / 1e9, mid, mid, rate))

    def run(
        self, t_ms: list[int], dt_ms: list[int], mids: list[float], stale: list[bool], counts: list[int],
        end_ms: int, out: list[MarketEvent], fut_t: list[int], fut_mid: list[float],
    ) -> None:  # fmt: skip
        """Emit the snapshot at each step (unless stale) and the sweeps before the next step.

        ``mids`` is the latent path (no impact); ``fut_t``/``fut_mid`` continue it from ``t_ms[0]`` far enough
        ahead for informed sweeps to see ``informed_horizon_s`` past the last step."""
        coin, lat = self.coin, self.lat_ns
        tu = self.trade_u.__next__
        tox, h_ms, ctx_ms = self.p.toxicity, self.h_ms, self.ctx_ms
        for i in range(len(t_ms)):
            t = t_ms[i]
            if t >= end_ms:
                return
            mid = mids[i] * self.imp
            if ctx_ms and t >= self.next_ctx and self.bl:
                # Before the step's book (same ts), after the first book: recorders' parquet copies order ts ties
                # asset_ctx first, so a recording reads back in this order. The oracle moves on in stale episodes.
                self.asset_ctx(out, t, mid)
            if not stale[i] or not self.bl:
                self.update_book(mid)
                out.append(BookSnapshot(coin, (t * 1_000_000 + lat) / 1e9, t / 1000.0, tuple(self.bl), tuple(self.al)))
            c = counts[i]
            if c:
                span = dt_ms[i] - 1
                offs = sorted(1 + int(tu() * span) for _ in range(c))
                for off in offs:
                    if t + off >= end_ms:
                        break
                    u = tu()
                    if u < tox:  # informed: the side of the latent mid's move over the horizon
                        d = fut_mid[bisect_right(fut_t, t + off + h_ms) - 1] - mids[i]
                        is_buy = d > 0.0 if d else u < 0.5 * tox
                    else:  # noise: (u - tox) / (1 - tox) is uniform; with tox = 0 this is the old u < 0.5
                        is_buy = u - tox < 0.5 * (1.0 - tox)
                    self.sweep(out, t + off, is_buy)


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
        # path, stale, generator, history, flow bursts (spawn(5)[:4] == spawn(4): old streams unchanged)
        return np.random.SeedSequence(self.params.seed).spawn(5)

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

    def _intensity(self, rng: np.random.Generator, dt_s: np.ndarray, burst: list[bool]) -> np.ndarray:
        """Sweep rate per step: constant, or the calm/burst chain (state carried in ``burst[0]``)."""
        p = self.params
        if p.burst_rate <= 0 or p.burst_mult == 1.0:
            return p.trade_rate_at_touch * dt_s
        frac = p.burst_rate * p.burst_mean_s / (1.0 + p.burst_rate * p.burst_mean_s)  # stationary burst share
        calm = p.trade_rate_at_touch / (1.0 - frac + frac * p.burst_mult)  # keeps the long-run mean rate
        u = rng.random(len(dt_s)).tolist()
        enter = (1.0 - np.exp(-p.burst_rate * dt_s)).tolist()
        leave = (1.0 - np.exp(-dt_s / p.burst_mean_s)).tolist()
        mult = [1.0] * len(u)
        b = burst[0]
        for i in range(len(u)):
            b = u[i] >= leave[i] if b else u[i] < enter[i]
            if b:
                mult[i] = p.burst_mult
        burst[0] = b
        return calm * dt_s * np.asarray(mult)

    def _chunks(self, end_ms: int) -> Iterator[tuple[list[int], list[int], list[float], list[bool], list[int]]]:
        """The latent path in chunks of book steps: (t, dt, mid, stale, sweep counts), endless."""
        p = self.params
        path_ss, stale_ss, _, _, flow_ss = self._seeds()
        path_rng, stale_rng, flow_rng = (np.random.default_rng(s) for s in (path_ss, stale_ss, flow_ss))
        t0, log_mid = self.start_ms, math.log(p.start_px)
        stale_start = stale_end = None
        if p.stale_rate > 0:
            stale_start = t0 + 1 + int(stale_rng.exponential(1000.0 / p.stale_rate))
        first = True
        burst = [False]
        while True:
            dt = self._dt(path_rng, _CHUNK)
            dt_s = dt / 1000.0
            steps = self._log_steps(path_rng, dt_s)
            if first:
                steps[0] = 0.0  # the first snapshot is at start_px
            logm = log_mid + np.cumsum(steps)
            t = t0 + np.concatenate(([0], np.cumsum(dt[:-1])))
            counts = path_rng.poisson(self._intensity(flow_rng, dt_s, burst))
            stale = np.zeros(_CHUNK, dtype=bool)
            if stale_start is not None and t[0] < end_ms:  # look-ahead chunks past the end need no episodes
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
            yield t.tolist(), dt.tolist(), np.exp(logm).tolist(), stale.tolist(), counts.tolist()
            log_mid = float(logm[-1])
            t0 = int(t[-1] + dt[-1])

    def events(self, duration_s: float) -> Iterator[MarketEvent]:
        """BookSnapshot and Trade events (and AssetCtx when ``ctx_interval_s`` > 0) in ts order over
        [start_ts, start_ts + duration_s)."""
        if not math.isfinite(duration_s) or duration_s < 0:
            raise SynthParamsError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        p = self.params
        gen = _Generator(p, self.instrument, self._seeds()[2])
        end_ms = self.start_ms + round(duration_s * 1000)
        chunks = self._chunks(end_ms)
        ahead = [next(chunks)]
        look_ms = gen.h_ms if p.toxicity > 0 else 0
        while ahead[0][0][0] < end_ms:
            t, dt, mids, stale, counts = ahead[0]
            while ahead[-1][0][-1] < t[-1] + look_ms:  # informed sweeps see past the chunk's end
                ahead.append(next(chunks))
            fut_t, fut_mid = t, mids
            if len(ahead) > 1:
                fut_t = [x for a in ahead for x in a[0]]
                fut_mid = [x for a in ahead for x in a[2]]
            out: list[MarketEvent] = []
            gen.run(t, dt, mids, stale, counts, end_ms, out, fut_t, fut_mid)
            yield from out
            ahead.pop(0)
            if not ahead:
                ahead.append(next(chunks))

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
        flow_rng = np.random.default_rng(hist_ss.spawn(1)[0])  # spawned after path/gen: those stay unchanged
        counts = rng.poisson(self._intensity(flow_rng, dts / 1000.0, [False]))
        gen = _Generator(p, self.instrument, gen_ss)
        out: list[MarketEvent] = []
        tl, ml = t.tolist(), mids.tolist()  # informed sweeps near the end see the path up to start_ts only
        gen.run(tl, dts.tolist(), ml, [False] * len(t), counts.tolist(), self.start_ms, out, tl, ml)
        mid_pts: list[tuple[float, float]] = []
        trades: list[Trade] = []
        for ev in out:
            if ev.ts >= self.start_ts:
                continue
            if isinstance(ev, BookSnapshot):
                mid_pts.append((ev.ts, 0.5 * (ev.bids[0].px + ev.asks[0].px)))
            elif isinstance(ev, Trade):
                trades.append(ev)
        return mid_pts, trades  # AssetCtx of the history is dropped: warm starts take mids and trades
