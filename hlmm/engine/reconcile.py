"""Reconcile: turn a desired ladder and the live orders into venue actions. Pure function.

Rules, in priority order:
1. Dangerous cancels first: orders that cross the latest book ("crosses book"), everything when killed
   ("kill"), the position-increasing side in reduce-only mode ("reduce-only"), orders whose venue state
   is unknown ("unknown state"), and orders beyond the side's room ("over room").
2. Keep an order when a target is within ``tolerance_bps`` in price and ``size_tolerance`` (fraction of
   the target) in size; modify (cancel-replace, same cloid) an order towards an unmatched target;
   cancel orders no longer wanted ("stale px" when inside the ladder, "not in ladder" otherwise);
   place missing targets.
3. At most ``max_actions_per_cycle`` actions, in this order: dangerous cancels; the innermost ladder work
   of each side that keeps no order (both sides together, so a truncated budget never leaves a one-sided
   book by our own choice); cancels of stale orders inside the new ladder; the remaining ladder work
   grouped by level (bid and ask of a level together, from the touch outwards, a group taken whole or not
   at all); cancels of orders outside the ladder.
4. Exposure invariant: a placement (or the new leg of a modify) on a side is emitted only if the side's
   exposure — remaining size of every live order incl. pending new/cancel/modify, which can all still
   fill — plus the new size fits ``room``. Otherwise it is deferred (a modify becomes a cancel).
5. Own-order guard (issue 9 item 8): a placement or the new leg of a modify never crosses one of our own
   orders of the other side that may still rest when it arrives: every non-terminal order (pending, acked,
   cancel-pending — a cancel is not a verdict until the exchange gives it), at its current price *and* at the
   price of a pending modify (cancel-replace: either leg may be on the book), and every placement or modify
   leg emitted earlier in this plan. An offender is deferred (the resting order it would replace stays); on a
   fast move the far side moves first and the near side follows once that is acknowledged, so a batch can
   never cross itself on the exchange ("Post only order would have immediately matched" against ourselves).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hlmm.config import RequoteParams
from hlmm.engine.tracker import TrackedOrder
from hlmm.market.instrument import Instrument
from hlmm.strategy.types import DesiredLadder, Quote
from hlmm.venue.base import CancelOrder, ModifyOrder, PlaceOrder, Tif, VenueAction

_EPS = 1e-9

R_CROSS = "crosses book"
R_KILL = "kill"
R_REDUCE = "reduce-only"
R_UNKNOWN = "unknown state"
R_ROOM = "over room"
R_STALE = "stale px"
R_NOT_IN_LADDER = "not in ladder"

_DANGER_RANK = {R_CROSS: 0, R_KILL: 1, R_REDUCE: 2, R_ROOM: 3, R_UNKNOWN: 4}


@dataclass(slots=True)
class ReconcilePlan:
    """Actions to send (each carries its reason), plus what was kept and deferred and why."""

    actions: list[VenueAction] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # one per action, same order
    deferred: list[str] = field(default_factory=list)
    kept: int = 0

    @property
    def n_place(self) -> int:
        return sum(isinstance(a, PlaceOrder) for a in self.actions)

    @property
    def n_cancel(self) -> int:
        return sum(isinstance(a, CancelOrder) for a in self.actions)

    @property
    def n_modify(self) -> int:
        return sum(isinstance(a, ModifyOrder) for a in self.actions)


_fallback_counter = itertools.count(1)


def _fallback_cloid() -> str:
    return "0x" + f"{0xFFFF:016x}{next(_fallback_counter):016x}"


@dataclass(slots=True)
class _Work:
    kind: str  # "place" | "modify" | "cancel"
    is_buy: bool
    reason: str
    quote: Quote | None = None
    order: TrackedOrder | None = None


def _interleave(a: list[_Work], b: list[_Work]) -> list[_Work]:
    """a[0], b[0], a[1], b[1], ... then the rest of the longer list (both are usually empty)."""
    if not b:
        return a
    if not a:
        return b
    out: list[_Work] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


def _cancel(o: TrackedOrder, reason: str) -> _Work:
    return _Work("cancel", o.is_buy, reason, order=o)


def _match_side(
    targets: Sequence[Quote], cands: list[TrackedOrder], params: RequoteParams, is_buy: bool
) -> tuple[list[_Work | None], list[_Work], list[_Work], int]:
    """Per level: the work for that target (None when kept); stray cancels inside / outside the ladder."""
    tol, stol = params.tolerance_bps, params.size_tolerance
    # (order, target px, target sz), read once: the properties would otherwise be re-read per target.
    free = [(o, o.target_px, o.target_sz) for o in cands]
    per_level: list[_Work | None] = []
    unmatched: list[int] = []
    kept = 0
    for i, q in enumerate(targets):
        qpx, qsz = q.px, q.sz
        # Keep when |price diff| <= tolerance_bps of the target and |size diff| <= size_tolerance of it.
        px_tol = qpx * tol * 1e-4 + _EPS
        sz_tol = stol * qsz + _EPS
        best_j, best_d = -1, 0.0
        for j, (_, tpx, tsz) in enumerate(free):
            d = abs(tpx - qpx)
            if d <= px_tol and abs(tsz - qsz) <= sz_tol and (best_j < 0 or d < best_d):
                best_j, best_d = j, d
        if best_j >= 0:
            del free[best_j]
            per_level.append(None)
            kept += 1
        else:
            per_level.append(_Work("place", is_buy, "", quote=q))
            unmatched.append(i)
    # Re-use resting orders (cancel-replace) for unmatched targets, closest price first.
    for i in unmatched:
        q = targets[i]
        qpx = q.px
        best_j, best_d = -1, 0.0
        for j, (o, _, _) in enumerate(free):
            if o.acked and o.modify is None and not o.cancel_pending and o.tif == Tif.ALO:
                d = abs(o.px - qpx)
                if best_j < 0 or d < best_d:
                    best_j, best_d = j, d
        if best_j < 0:
            continue
        o = free.pop(best_j)[0]
        moved_bps = abs(o.px - qpx) / qpx * 1e4
        why = R_STALE if moved_bps > tol else "size"
        per_level[i] = _Work("modify", is_buy, f"{why} ({o.px}->{qpx}, {o.target_sz}->{q.sz})", quote=q, order=o)
    inside: list[_Work] = []
    outside: list[_Work] = []
    best_px = targets[0].px if targets else None
    for o, tpx, _ in free:
        is_inside = best_px is not None and (tpx > best_px if is_buy else tpx < best_px)
        if is_inside:
            inside.append(_cancel(o, R_STALE))
        else:
            outside.append(_cancel(o, R_NOT_IN_LADDER))
    return per_level, inside, outside, kept


def reconcile(
    desired: DesiredLadder,
    live: Sequence[TrackedOrder],
    inst: Instrument,
    params: RequoteParams,
    room_bid: float,
    room_ask: float,
    *,
    best_bid: float | None = None,
    best_ask: float | None = None,
    kill: bool = False,
    reduce_only: bool = False,
    position: float = 0.0,
    cloid_factory: Callable[[], str] | None = None,
) -> ReconcilePlan:
    """Plan the actions that move ``live`` towards ``desired`` within the action budget and the room.

    ``room_bid``/``room_ask`` are the sizes (contracts) each side may still add to the position
    (e.g. max position minus position); exposure of live orders is subtracted here."""
    new_cloid = cloid_factory or _fallback_cloid
    coin = desired.coin
    plan = ReconcilePlan()
    exposure = {True: 0.0, False: 0.0}
    room = {True: max(0.0, room_bid), False: max(0.0, room_ask)}
    cands: dict[bool, list[TrackedOrder]] = {True: [], False: []}
    danger: list[_Work] = []
    # Which side increases |position| in reduce-only mode (flat: both do).
    increasing = {True: position >= 0, False: position <= 0}

    for o in live:
        if o.terminal is not None or o.coin != coin:
            continue
        exposure[o.is_buy] += o.exposure
        if o.cancel_pending:
            continue  # already on its way out; still counted above because it can fill
        if o.tif != Tif.ALO:
            continue  # IOC flatten orders die by themselves
        px = o.target_px
        if kill:
            danger.append(_cancel(o, R_KILL))
        elif (o.is_buy and best_ask is not None and px >= best_ask) or (
            not o.is_buy and best_bid is not None and px <= best_bid
        ):
            danger.append(_cancel(o, R_CROSS))
        elif reduce_only and increasing[o.is_buy]:
            danger.append(_cancel(o, R_REDUCE))
        elif o.needs_cancel:
            danger.append(_cancel(o, R_UNKNOWN))
        else:
            cands[o.is_buy].append(o)

    # Orders beyond the room (e.g. the room shrank with the price): cancel the outermost first.
    for side in (True, False):
        excess = exposure[side] - room[side]
        if excess > _EPS and cands[side]:
            ordered = sorted(cands[side], key=lambda x: x.target_px, reverse=not side)  # outermost first
            for o in ordered:
                if excess <= _EPS:
                    break
                danger.append(_cancel(o, R_ROOM))
                cands[side].remove(o)
                excess -= o.exposure

    danger.sort(key=lambda w: _DANGER_RANK.get(w.reason, 9))
    budget = params.max_actions_per_cycle

    # Rule 5: the most aggressive price of our own orders per side that may be on the book when a new order
    # arrives (see the module docstring); updated as placements and modify legs are emitted below.
    own_best: dict[bool, float | None] = {True: None, False: None}

    def own_note(is_buy: bool, px: float) -> None:
        cur = own_best[is_buy]
        if cur is None or (px > cur if is_buy else px < cur):
            own_best[is_buy] = px

    for o in live:
        if o.terminal is not None or o.coin != coin:
            continue
        own_note(o.is_buy, o.px)
        if o.modify is not None:
            own_note(o.is_buy, o.target_px)

    def crosses_own(is_buy: bool, px: float) -> float | None:
        other = own_best[not is_buy]
        if other is None:
            return None
        return other if (px >= other if is_buy else px <= other) else None

    def emit(w: _Work) -> None:
        o, q = w.order, w.quote
        if w.kind == "cancel":
            assert o is not None
            plan.actions.append(CancelOrder(coin=coin, cloid=o.cloid, reason=w.reason))
            plan.reasons.append(w.reason)
            return
        assert q is not None
        hit = crosses_own(w.is_buy, q.px)
        if hit is not None:
            side, other = ("bid", "ask") if w.is_buy else ("ask", "bid")
            plan.deferred.append(f"{side} {q.sz}@{q.px}: would cross our own {other} @{hit}")
            return
        if exposure[w.is_buy] + q.sz > room[w.is_buy] + _EPS:
            side = "bid" if w.is_buy else "ask"
            plan.deferred.append(
                f"{side} {q.sz}@{q.px}: room {room[w.is_buy]:.6g} < exposure {exposure[w.is_buy]:.6g} + {q.sz}"
            )
            if w.kind == "modify" and o is not None:
                why = f"{R_STALE}; replacement deferred: room"
                plan.actions.append(CancelOrder(coin=coin, cloid=o.cloid, reason=why))
                plan.reasons.append(why)
            return
        exposure[w.is_buy] += q.sz
        own_note(w.is_buy, q.px)
        ro = reduce_only and not increasing[w.is_buy]
        if w.kind == "modify":
            assert o is not None
            why = f"modify {w.reason}: {q.reason}"
            new = PlaceOrder(coin=coin, cloid=o.cloid, is_buy=q.is_buy, px=q.px, sz=q.sz, tif=Tif.ALO,
                             reduce_only=ro, reason=why)
            plan.actions.append(ModifyOrder(cloid=o.cloid, new=new, reason=why))
        else:
            why = f"place lvl {q.level}: {q.reason}"
            plan.actions.append(PlaceOrder(coin=coin, cloid=new_cloid(), is_buy=q.is_buy, px=q.px, sz=q.sz,
                                           tif=Tif.ALO, reduce_only=ro, reason=why))
        plan.reasons.append(why)

    for w in danger:
        if budget <= 0:
            break
        emit(w)
        budget -= 1

    bid_levels, bid_in, bid_out, kb = _match_side(desired.bids, cands[True], params, True)
    ask_levels, ask_in, ask_out, ka = _match_side(desired.asks, cands[False], params, False)
    plan.kept = kb + ka

    # A side with nothing kept gets its innermost ladder work first, both sides together: whatever the budget
    # truncates below, the book is not left one-sided by our own choice.
    establish: list[_Work] = []
    n_ladder_work = 0
    for levels, kept_side in ((bid_levels, kb), (ask_levels, ka)):
        if kept_side == 0:
            for i, lw in enumerate(levels):
                if lw is not None:
                    establish.append(lw)
                    levels[i] = None
                    break
    for w in establish:
        if budget <= 0:
            if w.quote is not None:
                plan.deferred.append(f"lvl {w.quote.level} {'bid' if w.is_buy else 'ask'}: action budget")
            continue
        emit(w)
        budget -= 1
        n_ladder_work += 1

    # Stale orders inside the new ladder are at more risk than anything else left: cancel them next.
    for w in _interleave(bid_in, ask_in):
        if budget <= 0:
            break
        emit(w)
        budget -= 1

    groups: list[list[_Work]] = []
    for i in range(max(len(bid_levels), len(ask_levels))):
        g = [w for w in (bid_levels[i] if i < len(bid_levels) else None,
                         ask_levels[i] if i < len(ask_levels) else None) if w is not None]
        if g:
            groups.append(g)
    taken_any = n_ladder_work > 0
    for g in groups:
        if len(g) > budget:
            if taken_any or budget <= 0:
                for w in g:
                    if w.quote is not None:
                        plan.deferred.append(f"lvl {w.quote.level} {'bid' if w.is_buy else 'ask'}: action budget")
                break
            g = g[:budget]  # a budget of 1: progress beats a deadlock
        for w in g:
            emit(w)
            budget -= 1
        taken_any = True
    # Note: groups not taken above are deferred to the next cycle (the requote policy re-runs soon).

    for w in _interleave(bid_out, ask_out):
        if budget <= 0:
            break
        emit(w)
        budget -= 1
    return plan


def own_crossings(actions: Sequence[VenueAction], live: Sequence[TrackedOrder]) -> int:
    """How many ALO placements or modify legs in ``actions`` cross one of our own other-side orders in ``live``
    (the tracker after the batch was recorded: the batch's own orders included), either leg of a pending modify
    counted. Rule 5 makes this 0; the runners report it next to book crossings as ``crossing_at_send``."""
    best: dict[bool, float | None] = {True: None, False: None}
    for o in live:
        if o.terminal is not None:
            continue
        for px in (o.px, o.target_px):
            cur = best[o.is_buy]
            if cur is None or (px > cur if o.is_buy else px < cur):
                best[o.is_buy] = px
    n = 0
    for a in actions:
        p = a.new if isinstance(a, ModifyOrder) else a
        if not isinstance(p, PlaceOrder) or p.tif != Tif.ALO:
            continue
        other = best[not p.is_buy]
        if other is not None and (p.px >= other if p.is_buy else p.px <= other):
            n += 1
    return n


def book_crossings(actions: Sequence[VenueAction], best_bid: float | None, best_ask: float | None) -> int:
    """How many ALO placements or modify legs in ``actions`` cross the book as the engine saw it when sending
    (failure #5: our bug, not a latency race)."""
    n = 0
    for a in actions:
        p = a.new if isinstance(a, ModifyOrder) else a
        if isinstance(p, PlaceOrder) and p.tif == Tif.ALO and (
            (p.is_buy and best_ask is not None and p.px >= best_ask)
            or (not p.is_buy and best_bid is not None and p.px <= best_bid)
        ):
            n += 1
    return n
