"""OrderGuard: every ladder, from any strategy, passes through here in ``EngineCore`` before reconcile.

Rules, per side, in this order (each cut is recorded: on the quote's reason when it is changed, in ``dropped``
when it is removed):

1. side: reduce-only keeps only the reducing side (total <= |position|); at max long no bids, at max short no asks;
   a quote on the wrong side, or with a non-finite / non-positive price or size, is dropped;
2. rounding: a price off the instrument's grid is rounded passively (bids down, asks up); sizes are floored to lots;
   quotes are sorted inner first;
3. BBO guard vs the market book (:func:`hlmm.strategy.ladder.apply_bbo_guard`): no bid >= best ask, no ask <= best
   bid, distinct prices; a crossing quote moves to the nearest passive price;
4. per-order cap: size <= floor(f * eff_max) lots, f = min(max_order_fraction, 0.25), eff_max = floor_size(max
   position USD / p) with p = max(ladder fair, best bid) (a low fair cannot inflate the limit). Where the exchange
   minimum order at a price is larger than that cap the quote is dropped, and the coin does not quote, unless
   ``risk.allow_min_order_over_cap`` (then the minimum size is the cap);
5. per-level cap: size <= 0.33 * eff_max / n for the n quotes of the side (deeper quotes are dropped while that cap
   is below a kept quote's minimum size: concentration);
6. side room, inside out: bids <= eff_max - position, asks <= eff_max + position (lots); a quote left below the
   minimum size is dropped with everything deeper;
7. final net: valid price and size, meets the minimum order value.

Own resting/pending orders on the other side are checked by reconcile (rule 5 there), with the exposure of every
order that can still fill; this guard works on the desired ladder only. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hlmm.market.instrument import Instrument, InvalidPriceError
from hlmm.strategy.base import QuoteContext
from hlmm.strategy.ladder import (
    _LEVEL_DEN,
    _LEVEL_NUM,
    MAX_ORDER_FRACTION,
    _Memo,
    _min_lots,
    _position_lots,
    _size,
    _valid_px,
    _valid_sz,
    apply_bbo_guard,
    side_room_lots,
)
from hlmm.strategy.types import DesiredLadder, Quote


def resolve_stale_policy(policy: str, inst: Instrument) -> str:
    """``auto``: pull on HIP-3 coins (builder dexes whose books go silent while the websocket stays up), widen on
    the others; ``widen`` / ``pull`` as given."""
    if policy == "auto":
        return "pull" if inst.coin.partition(":")[1] else "widen"
    if policy not in ("widen", "pull"):
        raise ValueError(f"stale policy must be auto, widen or pull, got {policy!r}")
    return policy


class GuardError(TypeError):
    """The strategy returned something that is not a DesiredLadder for this coin."""


class OrderGuard:
    """One coin's guard (owns its per-instrument memo). ``apply(ladder, ctx)`` returns the safe ladder."""

    def __init__(self, inst: Instrument, max_order_fraction: float = MAX_ORDER_FRACTION,
                 allow_min_order_over_cap: bool = False, stale_s: float = math.inf,
                 stale_policy: str = "widen") -> None:
        if not (math.isfinite(max_order_fraction) and max_order_fraction > 0):
            raise ValueError(f"max_order_fraction must be finite and > 0, got {max_order_fraction}")
        self.inst = inst
        self.frac = min(float(max_order_fraction), MAX_ORDER_FRACTION)
        self.allow_min_over_cap = bool(allow_min_order_over_cap)
        if not stale_s > 0:
            raise ValueError(f"stale_s must be > 0, got {stale_s}")
        self.stale_s = float(stale_s)
        self.stale_policy = resolve_stale_policy(stale_policy, inst)
        self.n_stale_pulls = 0  # calls that pulled every quote because the book was stale
        self.memo = _Memo(inst.sz_decimals)
        self.ref_px: float | None = None  # price the last limits were computed at
        self.eff_max: float = 0.0  # effective max position (contracts) of the last call
        self.n_cuts = 0  # quotes changed or dropped so far (all calls)

    # ---------------------------------------------------------------------------------------------------
    def apply(self, lad: DesiredLadder, ctx: QuoteContext) -> DesiredLadder:
        inst, m = self.inst, self.memo
        if not isinstance(lad, DesiredLadder):
            raise GuardError(f"strategy returned {type(lad).__name__}, not a DesiredLadder")
        if lad.coin != inst.coin:
            raise GuardError(f"strategy returned a ladder for {lad.coin!r}, the engine trades {inst.coin!r}")
        bb, ba = ctx.market.best_bid, ctx.market.best_ask
        fair = lad.fair
        two_sided = bb is not None and ba is not None and bb < ba
        if two_sided:
            assert bb is not None
            self.ref_px = fair if (isinstance(fair, float | int) and math.isfinite(fair) and fair >= bb) else bb
        else:
            self.ref_px = fair if isinstance(fair, float | int) and math.isfinite(fair) and fair > 0 else None
        if not lad.bids and not lad.asks:
            self.eff_max = self._eff(ctx) if self.ref_px else 0.0
            return lad
        if self.stale_policy == "pull" and ctx.market.is_stale(ctx.ts, self.stale_s):
            # Stale-book policy "pull": no strategy quotes against a book it cannot trust (reconcile cancels ours).
            self.eff_max = self._eff(ctx) if self.ref_px else 0.0
            self.n_stale_pulls += 1
            self.n_cuts += len(lad.bids) + len(lad.asks)
            m_ = ctx.market
            why = (f"trade at {m_.through_px:.8g} printed through the book" if m_.through_px is not None
                   else f"book age {m_.book_age(ctx.ts):.2f}s > {self.stale_s:g}s")
            return replace(lad, bids=(), asks=(), reason=f"{lad.reason}; guard: stale book, quotes pulled ({why})")
        if not two_sided:
            self.n_cuts += len(lad.bids) + len(lad.asks)
            return replace(lad, bids=(), asks=(), reason=f"{lad.reason}; guard: no quotes without a two-sided, "
                                                         f"uncrossed book (best bid {bb}, best ask {ba})")
        assert bb is not None and ba is not None
        eff = self._eff(ctx)
        self.eff_max = eff
        eff_lots = round(eff * m.scale)
        frac_lots = math.floor(self.frac * eff_lots)
        pos_floor, pos_ceil = _position_lots(inst, ctx.position)
        room_bid, room_ask = side_room_lots(eff_lots, pos_floor, pos_ceil, ctx.reduce_only)
        dropped: list[str] = []
        notes: list[str] = []
        bids = self._side(True, lad.bids, room_bid, eff_lots, frac_lots, bb, ba, ctx.reduce_only, dropped, notes)
        asks = self._side(False, lad.asks, room_ask, eff_lots, frac_lots, bb, ba, ctx.reduce_only, dropped, notes)
        if bids is lad.bids and asks is lad.asks and not dropped:
            return lad  # nothing cut: the strategy's ladder, unchanged
        self.n_cuts += len(dropped)
        reason = lad.reason + ("; guard: " + "; ".join(dict.fromkeys(notes)) if notes else "")
        return replace(lad, bids=bids, asks=asks, reason=reason, dropped=(*lad.dropped, *dropped))

    def _eff(self, ctx: QuoteContext) -> float:
        px = self.ref_px
        if px is None or not px > 0 or not (math.isfinite(ctx.max_position_usd) and ctx.max_position_usd > 0):
            return 0.0
        return self.inst.floor_size(ctx.max_position_usd / px)

    # ---------------------------------------------------------------------------------------------------
    def _side(self, is_buy: bool, quotes: tuple[Quote, ...], room: int, eff_lots: int, frac_lots: int, bb: float,
              ba: float, reduce_only: bool, dropped: list[str], notes: list[str]) -> tuple[Quote, ...]:
        inst, m = self.inst, self.memo
        side = "bid" if is_buy else "ask"
        if not quotes:
            return quotes
        if room <= 0:
            why = ("reduce-only: not the reducing side" if reduce_only
                   else f"at max {'long' if is_buy else 'short'}: no room")
            dropped.append(f"{side}: {len(quotes)} quote(s) dropped by guard ({why})")
            notes.append(f"{side}s off ({why})")
            return ()
        changed = False
        # 1-2. side, finiteness, rounding
        qs: list[Quote] = []
        for q in quotes:
            if not isinstance(q, Quote):
                raise GuardError(f"ladder {side}s hold a {type(q).__name__}, not a Quote")
            px, sz = q.px, q.sz
            if q.is_buy is not is_buy and q.is_buy != is_buy:
                dropped.append(f"{side} L{q.level}: quote is on the other side: dropped")
                changed = True
                continue
            if not (isinstance(px, float | int) and isinstance(sz, float | int) and math.isfinite(px)
                    and math.isfinite(sz) and px > 0 and sz > 0):
                dropped.append(f"{side} L{q.level} @{px} x {sz}: non-finite or non-positive price/size: dropped")
                changed = True
                continue
            why = ""
            if not _valid_px(inst, px, m):
                try:
                    npx = inst.round_px(px, is_buy)
                except InvalidPriceError:
                    dropped.append(f"{side} L{q.level} @{px}: no valid passive price: dropped")
                    changed = True
                    continue
                why += f"; guard: px {px}->{npx} (rounded {'down' if is_buy else 'up'})"
                px = npx
            if not _valid_sz(inst, sz, m):
                nsz = inst.floor_size(sz)
                why += f"; guard: sz {sz}->{nsz} (floored to lots)"
                sz = nsz
            if why:
                changed = True
                q = replace(q, px=px, sz=sz, reason=q.reason + why)
            qs.append(q)
        order = sorted(qs, key=lambda x: -x.px if is_buy else x.px)  # stable: inner first
        if any(a is not b for a, b in zip(order, qs, strict=True)):
            changed = True
        # 3. BBO guard vs the market book (sizes are capped below at the final prices)
        kept, d = apply_bbo_guard(inst, order, is_buy, bb, ba, None, m)
        if d or any(a is not b for a, b in zip(kept, order, strict=False)):
            changed = True
            dropped.extend(d)
        # 4. per-order cap
        scale = m.scale
        sized: list[tuple[Quote, int, int]] = []  # (quote, lots, min lots)
        for q in kept:
            lots = round(q.sz * scale)
            ml = _min_lots(inst, q.px, m)
            cap = frac_lots
            if ml > frac_lots:
                if not self.allow_min_over_cap:
                    dropped.append(
                        f"{side} L{q.level} @{q.px}: exchange minimum order {inst.min_order_value:g} USD "
                        f"({_size(inst, ml, m)}) > per-order cap {_size(inst, frac_lots, m)} "
                        f"({self.frac:g} x max position {_size(inst, eff_lots, m)}): not quoted"
                    )
                    notes.append(
                        f"not quoting: the exchange minimum order ({inst.min_order_value:g} USD) is larger than the "
                        f"per-order cap ({self.frac:g} x max position); raise risk.max_position_usd or set "
                        f"risk.allow_min_order_over_cap = true"
                    )
                    changed = True
                    continue
                cap = ml
            if lots > cap:
                changed = True
                q = replace(q, sz=_size(inst, cap, m),
                            reason=q.reason + f"; guard: per-order cap {q.sz}->{_size(inst, cap, m)}")
                lots = cap
            if lots < ml:
                dropped.append(f"{side} L{q.level} @{q.px} x {q.sz}: below the minimum order value: dropped")
                changed = True
                continue
            sized.append((q, lots, ml))
        # 5. per-level cap, with concentration
        n = len(sized)
        budget = _LEVEL_NUM * eff_lots
        mx = [0] * n
        cur = 0
        for i, (_, _, ml) in enumerate(sized):
            cur = max(cur, ml)
            mx[i] = cur
        while n >= 1 and budget // (_LEVEL_DEN * n) < mx[n - 1]:
            n -= 1
        if n < len(sized):
            gone = sized[n:]
            dropped.append(f"{side} L{gone[0][0].level}..L{gone[-1][0].level}: dropped by guard (per-level cap "
                           f"33% of max position / levels is below the minimum size)")
            changed = True
            sized = sized[:n]
        pl = budget // (_LEVEL_DEN * n) if n else 0
        out: list[Quote] = []
        cum = 0
        for i, (q, lots, ml) in enumerate(sized):
            if lots > pl:
                changed = True
                q = replace(q, sz=_size(inst, pl, m),
                            reason=q.reason + f"; guard: per-level cap {q.sz}->{_size(inst, pl, m)}")
                lots = pl
            # 6. side room, inside out
            if cum + lots > room:
                left = room - cum
                if left < ml:
                    rest = sized[i:]
                    dropped.append(f"{side} L{rest[0][0].level}..L{rest[-1][0].level}: no room (guard: side room "
                                   f"{_size(inst, max(room, 0), m)}, used {_size(inst, cum, m)})")
                    changed = True
                    break
                changed = True
                q = replace(q, sz=_size(inst, left, m),
                            reason=q.reason + f"; guard: room cap {q.sz}->{_size(inst, left, m)}")
                lots = left
            cum += lots
            out.append(q)
        # 7. final net
        final: list[Quote] = []
        for q in out:
            if _valid_px(inst, q.px, m) and _valid_sz(inst, q.sz, m) and inst.meets_min_value(q.px, q.sz):
                final.append(q)
            else:
                changed = True
                dropped.append(f"{side} L{q.level} @{q.px} x {q.sz}: invalid price/size or below the minimum "
                               f"order value: dropped")
        if not changed and len(final) == len(quotes):
            return quotes
        return tuple(final)


def min_order_note(inst: Instrument, max_position_usd: float, max_order_fraction: float,
                   allow_min_order_over_cap: bool) -> str | None:
    """Preflight: a sentence when the exchange minimum order is above the per-order cap (the coin then does not
    quote, or quotes the minimum when allowed); None when the cap is large enough."""
    frac = min(max_order_fraction, MAX_ORDER_FRACTION)
    cap_usd = frac * max_position_usd
    if inst.min_order_value <= cap_usd:
        return None
    head = (f"{inst.coin}: the exchange minimum order ({inst.min_order_value:g} USD) is above the per-order cap "
            f"({frac:g} x max position {max_position_usd:g} USD = {cap_usd:g} USD)")
    if allow_min_order_over_cap:
        return f"{head}: quoting the minimum anyway (risk.allow_min_order_over_cap = true)"
    return (f"{head}: {inst.coin} will not quote; raise risk.max_position_usd to >= "
            f"{inst.min_order_value / frac:g} USD or set risk.allow_min_order_over_cap = true")
