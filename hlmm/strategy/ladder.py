"""Quote ladder: GLFT spreads around the fair price, size caps, concentration fallback, BBO guard.

Pipeline of :func:`compute_ladder` (pure: no I/O, no clock; time comes in as ``ts``):

1. inputs: two-sided, uncrossed book; estimators ready; fair price (see :mod:`hlmm.strategy.fair`).
2. caps (:func:`size_caps`): eff_max = floor_size(max_position_usd / fair); per order
   <= max(min_size_at(px), f * eff_max) with f = min(max_order_fraction, 0.25); per level
   <= 0.33 * eff_max / active_levels; per side total <= room (bids: eff_max - position, asks:
   eff_max + position; reduce_only: only the reducing side, total <= |position|).
3. prices: depth of level i = half_spread +- skew + i * level_spacing_bps (bids: + skew, asks: - skew,
   skew = q * GLFT skew, q = position / eff_max); bids rounded down, asks up, by the Instrument; levels
   that round to the same price are merged (the deeper one is dropped before sizing).
4. sizes: profile weight x min(per-order, per-level cap), floored to lots, raised to the min notional size
   when the caps allow it. Concentration fallback: when the per-level cap of n levels is below the min
   size, the side quotes the n' < n innermost levels whose per-level cap (0.33 * eff_max / n') meets it.
   Room is filled from the inside out; a level left below min notional by the room is dropped.
5. BBO guard (last step): no bid >= best ask, no ask <= best bid; an offending quote moves to the nearest
   passive valid price (and stays strictly behind the previous level), its size is re-capped at the new
   price, and it is dropped if it no longer meets min notional.
6. final check: every quote has a valid price and size and meets min notional, or it is dropped.

Sizes are handled internally as integer numbers of lots (exact); every price and size that leaves this
module comes from the Instrument's rounding methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hlmm.estimators.state import EstimatorState
from hlmm.market.instrument import Instrument, InvalidPriceError
from hlmm.market.state import MarketState
from hlmm.strategy.errors import StrategyInputError
from hlmm.strategy.fair import fair_price
from hlmm.strategy.glft import GlftQuote, glft_bps
from hlmm.strategy.params import StrategyParams
from hlmm.strategy.types import DesiredLadder, Quote

MAX_ORDER_FRACTION = 0.25  # hard cap: one order never exceeds 25% of max position (unless that is below min size)
LEVEL_BUDGET_FRACTION = 0.33  # all levels of a side together rest at most 33% of max position (before room)
_LEVEL_NUM, _LEVEL_DEN = 33, 100  # LEVEL_BUDGET_FRACTION as an exact ratio for integer lot arithmetic


@dataclass(frozen=True, slots=True)
class SizeCaps:
    """Size limits (in contracts) at a price. ``min_size`` is the smallest size meeting min notional there."""

    eff_max_position: float
    per_order_cap: float
    per_level_cap: float
    min_size: float


def _check_finite(name: str, x: float, positive: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise StrategyInputError(f"{name} must be a number, got {type(x).__name__}")
    xf = float(x)
    if not math.isfinite(xf) or (positive and xf <= 0):
        raise StrategyInputError(f"{name} must be finite{' and > 0' if positive else ''}, got {x}")
    return xf


# Memo of pure Instrument functions of a price or size (min size, validity, lots -> size). Ladders reuse the
# same prices cycle after cycle. One table set per instrument *rules* (every Instrument field the functions
# depend on), so two instruments with the same rules share entries safely; each table keys on the float alone.
class _Memo:
    __slots__ = ("min_lots", "scale", "size", "sz_decimals", "valid_px", "valid_sz")

    def __init__(self, sz_decimals: int) -> None:
        self.sz_decimals = sz_decimals
        self.scale = 10**sz_decimals  # int: lots / scale is one correctly rounded division
        self.min_lots: dict[float, int] = {}
        self.valid_px: dict[float, bool] = {}
        self.valid_sz: dict[float, bool] = {}
        self.size: dict[int, float] = {}


_MEMO_MAX = 50_000  # entries per table; a table is cleared when full (a miss only costs the Instrument call)


def _memo(inst: Instrument) -> _Memo:
    """A fresh memo (no module-level state: callers that want reuse own a :class:`LadderCache`)."""
    return _Memo(inst.sz_decimals)


class LadderCache:
    """Per-instrument caches of one ladder owner (a strategy instance): memo tables of pure Instrument functions,
    the last GLFT inputs -> output, the last priced side, profile weights. Never shared between instruments."""

    __slots__ = ("glft_last", "inst", "memo", "side_last", "weights")

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.memo = _Memo(inst.sz_decimals)
        self.glft_last: list[object] = [None, None]
        self.side_last: dict[bool, tuple[object, ...]] = {}
        self.weights: dict[tuple[str, float, int], tuple[float, ...]] = {}


def _min_lots(inst: Instrument, px: float, memo: _Memo | None = None) -> int:
    """inst.min_size_at(px) as an integer number of lots."""
    t = (memo or _memo(inst)).min_lots
    v = t.get(px)
    if v is None:
        if len(t) >= _MEMO_MAX:
            t.clear()
        v = t[px] = _lots(inst, inst.min_size_at(px))
    return v


def _valid_px(inst: Instrument, px: float, memo: _Memo | None = None) -> bool:
    t = (memo or _memo(inst)).valid_px
    v = t.get(px)
    if v is None:
        if len(t) >= _MEMO_MAX:
            t.clear()
        v = t[px] = inst.is_valid_price(px)
    return v


def _valid_sz(inst: Instrument, sz: float, memo: _Memo | None = None) -> bool:
    t = (memo or _memo(inst)).valid_sz
    v = t.get(sz)
    if v is None:
        if len(t) >= _MEMO_MAX:
            t.clear()
        v = t[sz] = inst.is_valid_size(sz)
    return v


def _fmt(inst: Instrument, lots: int) -> str:
    """Display a lot count as a size (for reasons only; never sent to the wire)."""
    return f"{lots / 10**inst.sz_decimals:.{inst.sz_decimals}f}"


def _lots(inst: Instrument, sz: float) -> int:
    """A valid size as an exact integer number of lots."""
    return round(sz * 10**inst.sz_decimals)


def _size(inst: Instrument, lots: int, memo: _Memo | None = None) -> float:
    # int / int is correctly rounded, and floor_size keeps the Instrument the only source of sizes.
    m = memo or _memo(inst)
    t = m.size
    v = t.get(lots)
    if v is None:
        if len(t) >= _MEMO_MAX:
            t.clear()
        v = t[lots] = inst.floor_size(lots / m.scale)
    return v


def _order_fraction(order_fraction: float) -> float:
    f = _check_finite("order_fraction", order_fraction, positive=True)
    return min(f, MAX_ORDER_FRACTION)  # may lower the 25% cap, never raise it


def size_caps(
    inst: Instrument,
    fair: float,
    max_position_usd: float,
    active_levels: int,
    order_fraction: float = MAX_ORDER_FRACTION,
) -> SizeCaps:
    """Caps at ``fair`` for a side with ``active_levels`` levels (``order_fraction`` is clamped to <= 0.25)."""
    fair = _check_finite("fair", fair, positive=True)
    max_position_usd = _check_finite("max_position_usd", max_position_usd, positive=True)
    if isinstance(active_levels, bool) or not isinstance(active_levels, int) or active_levels < 1:
        raise StrategyInputError(f"active_levels must be an int >= 1, got {active_levels!r}")
    frac = _order_fraction(order_fraction)
    eff = inst.floor_size(max_position_usd / fair)
    eff_lots = _lots(inst, eff)
    min_size = inst.min_size_at(fair)
    per_order = max(min_size, _size(inst, math.floor(frac * eff_lots)))
    per_level = _size(inst, (_LEVEL_NUM * eff_lots) // (_LEVEL_DEN * active_levels))
    return SizeCaps(eff_max_position=eff, per_order_cap=per_order, per_level_cap=per_level, min_size=min_size)


# ---------------------------------------------------------------------------------------------------------
# BBO guard
# ---------------------------------------------------------------------------------------------------------
def passive_bound(inst: Instrument, is_buy: bool, best_bid: float, best_ask: float) -> float:
    """Most aggressive valid price that cannot cross: bids strictly below best ask, asks strictly above best bid."""
    if is_buy:
        px = inst.round_bid(best_ask)
        return inst.next_passive_px(px, True) if px >= best_ask else px
    px = inst.round_ask(best_bid)
    return inst.next_passive_px(px, False) if px <= best_bid else px


def apply_bbo_guard(
    inst: Instrument,
    quotes: Sequence[Quote],
    is_buy: bool,
    best_bid: float,
    best_ask: float,
    order_cap_base: float | None,
    memo: _Memo | None = None,
) -> tuple[list[Quote], list[str]]:
    """Keep one side's quotes (inner first) passive: move offenders to the nearest passive valid price.

    A moved quote also stays strictly behind the previous kept quote of its side (distinct prices). When
    ``order_cap_base`` (= f * eff_max) is given, a moved quote's size is re-capped to
    max(min_size_at(new px), order_cap_base). A quote that no longer meets min notional, or has no valid
    price left, is dropped. Returns (kept quotes, dropped reasons)."""
    side = "bid" if is_buy else "ask"
    if not quotes:
        return [], []
    memo = memo or _memo(inst)
    bound: float | None = None  # computed only when needed: a valid bid < best ask is already <= the bound
    kept: list[Quote] = []
    dropped: list[str] = []
    for q in quotes:
        prev = kept[-1].px if kept else None
        valid = _valid_px(inst, q.px, memo)
        if is_buy:
            ok = valid and q.px < best_ask and (prev is None or q.px < prev)
        else:
            ok = valid and q.px > best_bid and (prev is None or q.px > prev)
        if ok:
            kept.append(q)
            continue
        if bound is None:
            bound = passive_bound(inst, is_buy, best_bid, best_ask)
        target = bound
        if not valid:  # an off-grid quote (only possible from outside callers): snap it passively first
            try:
                snapped = inst.round_px(q.px, is_buy)
            except InvalidPriceError:
                dropped.append(f"{side} L{q.level} @{q.px}: invalid price with no valid passive neighbour")
                continue
            target = min(target, snapped) if is_buy else max(target, snapped)
        if prev is not None:
            try:
                behind = inst.next_passive_px(prev, is_buy)
            except InvalidPriceError:
                dropped.append(f"{side} L{q.level} @{q.px}: guard found no valid price behind {prev}")
                continue
            target = min(target, behind) if is_buy else max(target, behind)
        touch = best_ask if is_buy else best_bid
        why = f"; guard: moved {q.px}->{target} ({'best ask' if is_buy else 'best bid'} {touch})"
        sz = q.sz
        if order_cap_base is not None:
            cap = max(inst.min_size_at(target), order_cap_base)
            if sz > cap:
                why += f", size re-capped {sz}->{cap} (per-order cap at new price)"
                sz = inst.floor_size(cap)
        if not inst.meets_min_value(target, sz):
            dropped.append(f"{side} L{q.level} @{q.px}: guard moved it to {target} where {sz} is below min notional")
            continue
        kept.append(replace(q, px=target, sz=sz, reason=q.reason + why))
    return kept, dropped


# ---------------------------------------------------------------------------------------------------------
# ladder
# ---------------------------------------------------------------------------------------------------------
# A priced level: (level index, px, raw price, depth bp, min size in lots). Plain tuples: built ~10x a cycle.
_Level = tuple[int, float, float, float, int]

_Weights = dict[tuple[str, float, int], tuple[float, ...]]


def _profile_weights(params: StrategyParams, n: int, cache: _Weights | None = None) -> tuple[float, ...]:
    """Size-profile weight of each of ``n`` levels (memoized in ``cache``: the same few shapes every cycle)."""
    _WEIGHTS = cache if cache is not None else {}
    key = (params.size_profile, params.size_decay, n)
    w = _WEIGHTS.get(key)
    if w is None:
        if params.size_profile == "flat":
            w = (1.0,) * n
        elif params.size_profile == "linear":
            w = tuple((n - i) / n for i in range(n))
        else:
            w = tuple(params.size_decay**i for i in range(n))
        if len(_WEIGHTS) > 1000:
            _WEIGHTS.clear()
        _WEIGHTS[key] = w
    return w


def _side_prices(
    inst: Instrument,
    is_buy: bool,
    fair: float,
    depth0: float,
    params: StrategyParams,
    eff_lots: int,
    dropped: list[str],
    memo: _Memo | None = None,
) -> tuple[list[_Level], bool]:
    """Distinct rounded prices, inner first, and whether deeper levels were left unpriced because the
    per-level cap cannot cover them anyway (n levels need 0.33*eff/n >= the inner level's min size)."""
    m = memo or _memo(inst)
    out: list[_Level] = []
    rnd = inst.round_bid if is_buy else inst.round_ask
    sign = -1.0 if is_buy else 1.0
    n_levels = params.levels
    spacing = params.level_spacing_bps
    limit = n_levels
    last_px = 0.0
    min_tab = m.min_lots
    for i in range(n_levels):
        if len(out) >= limit:
            dropped.append(
                f"{'bid' if is_buy else 'ask'} L{i}..L{n_levels - 1}: not priced, concentration allows <= {limit} "
                f"level(s)"
            )
            return out, True
        depth = depth0 + i * spacing
        raw = fair * (1.0 + sign * depth / 1e4)
        if not raw > 0:
            dropped.append(
                f"{'bid' if is_buy else 'ask'} L{i}: raw price {raw:.6g} <= 0 at depth {depth:.2f}bp; deeper levels "
                f"dropped"
            )
            break
        try:
            px = rnd(raw)
        except InvalidPriceError as e:
            dropped.append(f"{'bid' if is_buy else 'ask'} L{i}: {e}; deeper levels dropped")
            break
        if out and px == last_px:
            dropped.append(f"{'bid' if is_buy else 'ask'} L{i}: rounds to {px} like L{out[-1][0]}: merged into it")
            continue
        ml = min_tab.get(px)
        if ml is None:
            ml = _min_lots(inst, px, m)
        out.append((i, px, raw, depth, ml))
        last_px = px
        if len(out) == 1:  # an upper bound on the number of levels the caps can fund (min size >= 1 lot)
            limit = max(1, min(limit, (_LEVEL_NUM * eff_lots) // (_LEVEL_DEN * ml)))
    return out, False


def _side_quotes(
    inst: Instrument,
    is_buy: bool,
    levels: list[_Level],
    params: StrategyParams,
    eff_lots: int,
    frac_lots: int,
    room_lots: int,
    price_why: str,
    dropped: list[str],
    truncated: bool = False,
    memo: _Memo | None = None,
    weights_cache: dict[tuple[str, float, int], tuple[float, ...]] | None = None,
) -> list[Quote]:
    """Size one side: caps, profile, concentration fallback, room. ``levels`` are distinct prices, inner first."""
    if not levels:
        return []
    m = memo or _memo(inst)
    side = "bid" if is_buy else "ask"
    # Concentration: the largest n whose per-level cap covers the min size of each of its n inner levels.
    prefix_max: list[int] = []
    mx = 0
    for lv in levels:
        if lv[4] > mx:
            mx = lv[4]
        prefix_max.append(mx)
    n = len(levels)
    budget = _LEVEL_NUM * eff_lots
    while n >= 1 and budget // (_LEVEL_DEN * n) < prefix_max[n - 1]:
        n -= 1
    if n == 0:
        pl1 = budget // _LEVEL_DEN
        dropped.append(
            f"{side}: no level possible: per-level cap {_fmt(inst, pl1)} (33% of eff max "
            f"{_fmt(inst, eff_lots)}) < min size {_fmt(inst, levels[0][4])} at {levels[0][1]}"
        )
        return []
    concentrated = ""
    if n < len(levels) or truncated:
        concentrated = f" [concentrated {params.levels}->{n} levels: per-level cap below min notional]"
    if n < len(levels):
        gone = levels[n:]
        dropped.append(
            f"{side} L{gone[0][0]}..L{gone[-1][0]} ({len(gone)} levels, {gone[0][1]}..{gone[-1][1]}): "
            f"merged by concentration into {n} level(s)"
        )
    pl_lots = budget // (_LEVEL_DEN * n)
    weights = _profile_weights(params, n, weights_cache)
    profile = params.size_profile
    rnd_name = "round_down" if is_buy else "round_up"
    szd = m.sz_decimals
    scale = m.scale
    size_tab = m.size
    quotes: list[Quote] = []
    px_head = f"px: {price_why} lvl "
    sz_parts: dict[tuple[float, int, str], str] = {}  # (weight, cap, binding cap) -> why: same on most levels
    cum = 0
    for i in range(n):
        level, px, raw, depth, min_lots = levels[i]
        po_lots = min_lots if min_lots > frac_lots else frac_lots
        if po_lots <= pl_lots:
            cap, bind = po_lots, "per_order"
        else:
            cap, bind = pl_lots, "per_level"
        w = weights[i]
        lots = cap if w >= 1.0 else math.floor(cap * w + 1e-9)
        extra = ""
        if lots < min_lots:
            lots = min_lots  # allowed: min_lots <= per-order cap, and <= per-level cap by concentration
            extra = f" -> raised to min notional size {lots / scale:.{szd}f}"
        if cum + lots > room_lots:
            left = room_lots - cum
            if left < min_lots:
                rest = levels[i:n]
                dropped.append(
                    f"{side} L{rest[0][0]}..L{rest[-1][0]} ({len(rest)} levels from {rest[0][1]}): no room "
                    f"(side room {_fmt(inst, max(room_lots, 0))}, used {_fmt(inst, cum)}, "
                    f"min size {_fmt(inst, min_lots)})"
                )
                break
            lots = left
            extra += f" -> room cap {lots / scale:.{szd}f} (side room {room_lots / scale:.{szd}f})"
        cum += lots
        sz = size_tab.get(lots)
        if sz is None:
            sz = _size(inst, lots, m)
        sz_why = sz_parts.get((w, cap, bind))
        if sz_why is None:
            sz_why = sz_parts[(w, cap, bind)] = f"{profile} w={w:.3g} x {bind} cap {cap / scale:.{szd}f}"
        # Why this price (fair, spread, skew, depth, raw, rounding) and this size (profile, binding cap, raises).
        reason = f"{px_head}{level} depth={depth:.3f}bp raw={raw:.8g} {rnd_name}; sz: {sz_why}{extra}{concentrated}"
        quotes.append(Quote(is_buy, px, sz, level, reason))
    return quotes


def _final_check(inst: Instrument, quotes: list[Quote], dropped: list[str], memo: _Memo | None = None
                 ) -> tuple[Quote, ...]:
    m = memo or _memo(inst)
    vpx, vsz = m.valid_px, m.valid_sz
    meets = inst.meets_min_value
    ok = True
    for q in quotes:
        px, sz = q.px, q.sz
        if not (vpx.get(px) or _valid_px(inst, px, m)) or not (vsz.get(sz) or _valid_sz(inst, sz, m)) or (
            not meets(px, sz)
        ):
            ok = False
            break
    if ok:
        return tuple(quotes)
    out: list[Quote] = []
    for q in quotes:
        err = None
        if not _valid_px(inst, q.px, m):
            err = "Price must be divisible by tick size."
        elif not _valid_sz(inst, q.sz, m):
            err = "Order has invalid size."
        elif not inst.meets_min_value(q.px, q.sz):
            err = f"Order must have minimum value of ${inst.min_order_value:g}."
        if err is not None:  # never expected: the steps above construct valid quotes; kept as the last net
            dropped.append(f"{'bid' if q.is_buy else 'ask'} L{q.level} @{q.px} x {q.sz}: {err}")
            continue
        out.append(q)
    return tuple(out)


def _empty(inst: Instrument, ts: float, fair: float, reason: str, dropped: Sequence[str] = ()) -> DesiredLadder:
    return DesiredLadder(coin=inst.coin, ts=ts, fair=fair, bids=(), asks=(), reason=reason, dropped=tuple(dropped))


def _position_lots(inst: Instrument, position: float) -> tuple[int, int]:
    """(floor, ceil) of the position in lots; equal when it is a whole number of lots up to float noise."""
    scaled = position * 10**inst.sz_decimals
    near = round(scaled)
    if abs(scaled - near) <= 1e-6 * max(1.0, abs(scaled)):
        return near, near
    return math.floor(scaled), math.ceil(scaled)


def _finite(name: str, x: float, positive: bool = False) -> float:
    """_check_finite with a fast path for the usual plain finite float (x - x is NaN for inf and NaN)."""
    if type(x) is float and x - x == 0.0 and (x > 0.0 or not positive):
        return x
    return _check_finite(name, x, positive)


# Last GLFT inputs -> output (LadderCache.glft_last): sigma/A/kappa change about once a second while cycles run
# several times a second.
def side_room_lots(eff_lots: int, pos_floor: int, pos_ceil: int, reduce_only: bool) -> tuple[int, int]:
    """(bid room, ask room) in lots: max position minus the position; in reduce-only mode only the reducing side,
    and no more than the position. Shared by the GLFT ladder and the OrderGuard so both cut the same way."""
    room_bid, room_ask = eff_lots - pos_ceil, eff_lots + pos_floor
    if reduce_only:
        if pos_floor > 0:
            return 0, min(room_ask, pos_floor)
        if pos_ceil < 0:
            return min(room_bid, -pos_ceil), 0
        return 0, 0
    return room_bid, room_ask


def _glft(gamma: float, delta: float, sigma: float, a: float, kappa: float, _GLFT_LAST: list[object]) -> GlftQuote:
    key = (gamma, delta, sigma, a, kappa)
    if _GLFT_LAST[0] == key:
        return _GLFT_LAST[1]  # type: ignore[return-value]
    g = glft_bps(gamma, delta, sigma, a, kappa)
    _GLFT_LAST[0], _GLFT_LAST[1] = key, g
    return g


# The last priced and sized side, per side: a cycle triggered by an order event (cancel, reject) often sees the
# same fair price, estimates and position as the one before, hence the same quotes. Keyed by every input of
# _side_prices/_side_quotes (instrument and params by identity: they are immutable). Kept in LadderCache.side_last.


def _side(
    inst: Instrument,
    params: StrategyParams,
    is_buy: bool,
    fair: float,
    hs: float,
    skew: float,
    eff_lots: int,
    frac_lots: int,
    room_lots: int,
    dropped: list[str],
    memo: _Memo,
    cache: LadderCache,
) -> list[Quote]:
    """One side's quotes (prices, then sizes) for the given spread and skew, reusing the last identical side."""
    # copysign: -0.0 == 0.0 but the reason prints the sign of the skew
    key = (inst, params, fair, hs, skew, math.copysign(1.0, skew), eff_lots, frac_lots, room_lots)
    _SIDE_LAST = cache.side_last
    last = _SIDE_LAST.get(is_buy)
    if last is not None and last[0] is inst and last[1] is params and last[2:9] == key[2:]:
        dropped.extend(last[10])  # type: ignore[arg-type]
        return last[9]  # type: ignore[return-value]
    n0 = len(dropped)
    if is_buy:
        lv, cut = _side_prices(inst, True, fair, hs + skew, params, eff_lots, dropped, memo)
        why = f"fair={fair:.8g} hs={hs:.3f}bp skew={skew:+.3f}bp"
    else:
        lv, cut = _side_prices(inst, False, fair, hs - skew, params, eff_lots, dropped, memo)
        why = f"fair={fair:.8g} hs={hs:.3f}bp skew={-skew:+.3f}bp"
    quotes = _side_quotes(inst, is_buy, lv, params, eff_lots, frac_lots, room_lots, why, dropped, cut, memo,
                          cache.weights)
    _SIDE_LAST[is_buy] = (*key, quotes, tuple(dropped[n0:]))
    return quotes


def compute_ladder(
    inst: Instrument,
    params: StrategyParams,
    max_position_usd: float,
    market: MarketState,
    est: EstimatorState,
    position: float,
    ts: float,
    ref_adjust_bps: float = 0.0,
    reduce_only: bool = False,
    cache: LadderCache | None = None,
) -> DesiredLadder:
    """The desired ladder for one coin (see the module docstring for every step).

    ``cache``: the caller's per-instrument caches (a fresh one per call when None: no state is shared).

    An empty ladder (``fair`` = 0.0 when it could not be computed) carries the reason in ``reason``."""
    max_position_usd = _finite("max_position_usd", max_position_usd, positive=True)
    position = _finite("position", position)
    ts = _finite("ts", ts)
    ref_adjust_bps = _finite("ref_adjust_bps", ref_adjust_bps)
    if market.coin != inst.coin:
        raise StrategyInputError(f"market state is for {market.coin!r} but the instrument is {inst.coin!r}")

    bb, ba = market.best_bid, market.best_ask
    if bb is None or ba is None:
        return _empty(inst, ts, 0.0, f"no quotes: no two-sided book (best bid {bb}, best ask {ba})")
    if bb >= ba:
        return _empty(inst, ts, 0.0, f"no quotes: crossed/locked book (best bid {bb} >= best ask {ba})")
    fp = fair_price(market, params, ref_adjust_bps)
    if fp is None:
        return _empty(inst, ts, 0.0, "no quotes: no fair price from the book")
    fair = fp.fair
    if not est.ready:
        return _empty(inst, ts, fair, f"no quotes: estimators not ready ({est.reason}); {fp.describe()}")
    if cache is None or cache.inst is not inst:
        cache = LadderCache(inst)
    frac = min(params.max_order_fraction, MAX_ORDER_FRACTION)
    try:
        g = _glft(params.gamma, frac, est.sigma, est.intensity_a, est.kappa, cache.glft_last)
    except ValueError as e:
        return _empty(inst, ts, fair, f"no quotes: invalid estimates ({e}); {fp.describe()}")

    memo = cache.memo
    eff = inst.floor_size(max_position_usd / fair)
    eff_lots = round(eff * memo.scale)  # _lots(inst, eff)
    frac_lots = math.floor(frac * eff_lots)
    pos_floor, pos_ceil = _position_lots(inst, position)
    q = position / eff if eff_lots > 0 else 0.0

    # Spreads: GLFT, clamped; stale book widening comes on top of the clamp so that it always widens.
    hs = min(max(g.half_spread_bps, params.min_half_spread_bps), params.max_half_spread_bps)
    age = market.book_age(ts)
    stale = market.through_px is not None or age > params.stale_book_s
    if stale:
        hs += params.stale_widen_bps
    # The skew is bounded so that a position far beyond the limit cannot produce absurd prices.
    skew = max(-params.max_half_spread_bps, min(params.max_half_spread_bps, q * g.skew_bps_per_q))

    summary = (
        f"fair={fair:.8g} ({fp.source}={fp.base:.8g} ref_adj={fp.adjust_bps:+.3f}bp) sigma={est.sigma:.3g} "
        f"A={est.intensity_a:.3g} kappa={est.kappa:.4g} "
        f"q={q:+.3f} (pos {position:g} / eff_max {eff:g}) glft_hs={g.half_spread_bps:.3f}bp hs={hs:.3f}bp "
        f"skew={skew:+.3f}bp stale={stale} (book age {age:.2f}s, limit {params.stale_book_s:g}s"
        f"{f', +{params.stale_widen_bps:g}bp' if stale else ''}) reduce_only={reduce_only} book={bb}/{ba}"
    )
    if eff_lots <= 0:
        return _empty(inst, ts, fair, f"no quotes: max position {max_position_usd:g} USD is below one lot; {summary}")

    room_bid, room_ask = side_room_lots(eff_lots, pos_floor, pos_ceil, reduce_only)
    side_note = []
    if reduce_only:
        side_note.append("reduce_only: only the reducing side, total <= |position|")
    if room_bid <= 0 and not reduce_only:
        side_note.append("at max long: bids off")
    if room_ask <= 0 and not reduce_only:
        side_note.append("at max short: asks off")

    dropped: list[str] = []
    bids: list[Quote] = []
    asks: list[Quote] = []
    if room_bid > 0:
        bids = _side(inst, params, True, fair, hs, skew, eff_lots, frac_lots, room_bid, dropped, memo, cache)
    if room_ask > 0:
        asks = _side(inst, params, False, fair, hs, skew, eff_lots, frac_lots, room_ask, dropped, memo, cache)

    cap_base = _size(inst, frac_lots, memo)
    bids, d = apply_bbo_guard(inst, bids, True, bb, ba, cap_base, memo)
    dropped.extend(d)
    asks, d = apply_bbo_guard(inst, asks, False, bb, ba, cap_base, memo)
    dropped.extend(d)

    reason = summary + (f"; {'; '.join(side_note)}" if side_note else "")
    return DesiredLadder(
        coin=inst.coin,
        ts=ts,
        fair=fair,
        bids=_final_check(inst, bids, dropped, memo),
        asks=_final_check(inst, asks, dropped, memo),
        reason=reason,
        dropped=tuple(dropped),
    )
