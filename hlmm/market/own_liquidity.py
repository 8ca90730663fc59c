"""Our own resting orders in the venue's book. Pure.

Hyperliquid's l2Book (and bbo) include our own orders; the simulator and the local exchange publish them the
same way. Treating them as market liquidity makes the engine quote against itself: its "best" bid or ask is its
own order, so fair price, microprice, the BBO guard and markouts all lean on our own quotes. The engine therefore
takes them out (``without_own``) before anything reads the book, in every mode, by price and size from its own
order tracker; the simulator puts them in (``with_own``) as the exchange does.

Prices are compared exactly: both sides are rounded to the instrument's tick by the one rounding place, so an order
and its book level carry the same float. A level keeps what is left after our size; a level that was only ours
disappears. Only the touch is known in best-bid/offer data: when the touch is entirely ours, the price stays with
size 0 (what is behind it is unknown), which the microprice treats as no weight.
"""

from __future__ import annotations

from collections.abc import Mapping

from hlmm.market.events import Bbo, BookLevel, BookSnapshot

_EPS = 1e-12  # relative size left over from float subtraction: the level is gone


def _minus(levels: tuple[BookLevel, ...], own: Mapping[float, float]) -> tuple[tuple[BookLevel, ...], int]:
    out: list[BookLevel] = []
    removed = 0
    for lv in levels:
        mine = own.get(lv.px)
        if mine is None:
            out.append(lv)
            continue
        left = lv.sz - mine
        if left > _EPS * max(1.0, lv.sz):
            out.append(BookLevel(lv.px, left, max(1, lv.n - 1)))  # one order (at least) was ours
        else:
            removed += 1
    return tuple(out), removed


def without_own(book: BookSnapshot, own_bids: Mapping[float, float],
                own_asks: Mapping[float, float]) -> tuple[BookSnapshot, int]:
    """``book`` minus our resting size per price; returns the market's book and how many levels were only ours."""
    if not own_bids and not own_asks:
        return book, 0
    bids, rb = _minus(book.bids, own_bids) if own_bids else (book.bids, 0)
    asks, ra = _minus(book.asks, own_asks) if own_asks else (book.asks, 0)
    return BookSnapshot(book.coin, book.ts, book.ts_exchange, bids, asks), rb + ra


def bbo_without_own(bbo: Bbo, own_bids: Mapping[float, float], own_asks: Mapping[float, float]) -> Bbo:
    """The touch minus our size at it (price kept: what is behind a touch that is only ours is unknown)."""
    bsz, asz = bbo.bid_sz, bbo.ask_sz
    if bbo.bid_px is not None and bbo.bid_px in own_bids:
        bsz = max(0.0, bsz - own_bids[bbo.bid_px])
    if bbo.ask_px is not None and bbo.ask_px in own_asks:
        asz = max(0.0, asz - own_asks[bbo.ask_px])
    if bsz == bbo.bid_sz and asz == bbo.ask_sz:
        return bbo
    return Bbo(bbo.coin, bbo.ts, bbo.ts_exchange, bbo.bid_px, bsz, bbo.ask_px, asz)


def _plus(levels: tuple[BookLevel, ...], own: Mapping[float, float], is_bid: bool) -> tuple[BookLevel, ...]:
    merged = {lv.px: (lv.sz, lv.n) for lv in levels}
    for px, sz in own.items():
        s0, n0 = merged.get(px, (0.0, 0))
        merged[px] = (s0 + sz, n0 + 1)
    return tuple(BookLevel(px, sz, n) for px, (sz, n) in sorted(merged.items(), reverse=is_bid))


def with_own(book: BookSnapshot, own_bids: Mapping[float, float], own_asks: Mapping[float, float]) -> BookSnapshot:
    """``book`` as the exchange publishes it: our resting orders added at their prices."""
    if not own_bids and not own_asks:
        return book
    return BookSnapshot(book.coin, book.ts, book.ts_exchange,
                        _plus(book.bids, own_bids, True) if own_bids else book.bids,
                        _plus(book.asks, own_asks, False) if own_asks else book.asks)


def bbo_with_own(bbo: Bbo, own_bids: Mapping[float, float], own_asks: Mapping[float, float]) -> Bbo:
    """The touch as published: our best order improves it or adds to its size."""
    bpx, bsz, apx, asz = bbo.bid_px, bbo.bid_sz, bbo.ask_px, bbo.ask_sz
    if own_bids:
        p = max(own_bids)
        if bpx is None or p > bpx:
            bpx, bsz = p, own_bids[p]
        elif p == bpx:
            bsz += own_bids[p]
    if own_asks:
        p = min(own_asks)
        if apx is None or p < apx:
            apx, asz = p, own_asks[p]
        elif p == apx:
            asz += own_asks[p]
    return Bbo(bbo.coin, bbo.ts, bbo.ts_exchange, bpx, bsz, apx, asz)
