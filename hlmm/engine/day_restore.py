"""Live restart: what the loss limits need to know about the UTC day before this process started.

The quantity the kill switch watches in live mode is this coin's PnL over the day window (realised + unrealised
- fees): the position held when the window began valued at the window's anchor mark, plus every fill of the day.
It is rebuilt at start-up from the exchange's own record (``userFillsByTime`` from the UTC day's start) united
with our fill journal (deduplicated by (tid, oid)), so it is the same figure before and after a restart and the
persisted day-start / peak values stay meaningful (``risk.kill_switch.resume_state``).

Why this and not account equity (``clearinghouseState.accountValue``): equity mixes every coin of the account,
deposits, withdrawals and transfers into one number, so a deposit would read as profit and a withdrawal as a loss
that kills; the day's fills of this coin are exactly what this engine is responsible for and the exchange keeps
them (latest 10,000), so they can be rebuilt after any restart. Funding is not rebuilt (the local exchange serves
no funding history): a restart forgets the day's earlier funding, a few basis points of the position at most.

I/O lives here, called by the live runner; the pure parts (parsing, position at the window's start) are plain
functions tested on their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hlmm.venue.base import Fill

PAGE_MAX = 2000  # userFillsByTime returns at most this many fills per reply
MAX_PAGES = 6  # the exchange keeps the latest 10,000 fills: 5 pages, plus one for overlap
POSITION_TRIES = 3  # position read before and after the fills must agree (no fill in between)


class DayRestoreError(RuntimeError):
    """The day's accounting cannot be rebuilt (no answer, inconsistent answers): refuse to start."""


@dataclass(slots=True)
class DayRestore:
    day_start_ts: float
    position_now: float
    position0: float  # position when the day window began (position now minus today's fills)
    fills: list[Fill]  # today's fills of the coin, deduplicated, exchange time order
    n_exchange: int  # how many came from the exchange
    n_journal_only: int  # how many only the journal had
    n_bad: int  # exchange rows that failed validation (logged, skipped)


def parse_exchange_fill(d: Any, coin: str) -> Fill | None:
    """One ``userFills``/``userFillsByTime`` row -> Fill (``ts`` = the exchange's fill time), None when it is not a
    valid fill of ``coin``. Validated here: a malformed row never reaches the accounting."""
    if not isinstance(d, dict) or d.get("coin") != coin:
        return None
    try:
        tid, oid, t_ms = int(d["tid"]), int(d["oid"]), int(d["time"])
        px, sz = float(d["px"]), float(d["sz"])
        fee = float(d.get("fee", 0.0)) + float(d.get("builderFee", 0.0) or 0.0)
        side = d["side"]
    except (KeyError, TypeError, ValueError):
        return None
    if side not in ("B", "A") or not (math.isfinite(px) and px > 0 and math.isfinite(sz) and sz > 0
                                      and math.isfinite(fee)):
        return None
    cloid = d.get("cloid")
    return Fill(ts=t_ms / 1000.0, coin=coin, cloid=cloid.lower() if isinstance(cloid, str) else "", oid=oid,
                tid=tid, is_buy=side == "B", px=px, sz=sz, fee=fee, is_maker=not bool(d.get("crossed", False)),
                remaining=0.0)


def is_valid_fill(f: Fill) -> bool:
    return (math.isfinite(f.px) and f.px > 0 and math.isfinite(f.sz) and f.sz > 0 and math.isfinite(f.fee)
            and math.isfinite(f.ts))


def merge_fills(exchange: list[Fill], journal: list[Fill], since_ts: float) -> tuple[list[Fill], int]:
    """Union by (tid, oid) of the exchange's and the journal's fills at or after ``since_ts`` (the exchange's copy
    wins); returns (fills in time order, how many only the journal had)."""
    by_key: dict[tuple[int, int], Fill] = {}
    for f in exchange:
        by_key.setdefault((f.tid, f.oid), f)
    only_journal = 0
    for f in journal:
        if f.ts >= since_ts and (f.tid, f.oid) not in by_key and is_valid_fill(f):
            by_key[(f.tid, f.oid)] = f
            only_journal += 1
    return sorted(by_key.values(), key=lambda f: (f.ts, f.tid)), only_journal


def position_at_start(position_now: float, fills: list[Fill]) -> float:
    """The position before ``fills``: now minus their signed sizes (dust below 1e-9 is flat)."""
    p = position_now - sum(f.sz if f.is_buy else -f.sz for f in fills)
    return 0.0 if abs(p) < 1e-9 else p


def parse_position(ch: Any, coin: str) -> float:
    """``szi`` of ``coin`` in a clearinghouseState reply (0 when absent); DayRestoreError when malformed."""
    if not isinstance(ch, dict) or not isinstance(ch.get("assetPositions", []), list):
        raise DayRestoreError(f"clearinghouseState is malformed: {str(ch)[:200]}")
    for ap in ch.get("assetPositions", []):
        p = ap.get("position") if isinstance(ap, dict) else None
        if isinstance(p, dict) and p.get("coin") == coin:
            try:
                v = float(p.get("szi", 0.0))
            except (TypeError, ValueError):
                raise DayRestoreError(f"clearinghouseState szi is malformed: {p!r}") from None
            if not math.isfinite(v):
                raise DayRestoreError(f"clearinghouseState szi is not finite: {p!r}")
            return v
    return 0.0


def parse_book_mid(book: Any) -> float | None:
    """Mid of an ``l2Book`` reply, None when either side is empty or malformed."""
    try:
        levels = book["levels"]
        bid, ask = float(levels[0][0]["px"]), float(levels[1][0]["px"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    mid = 0.5 * (bid + ask)
    return mid if math.isfinite(mid) and mid > 0 and bid < ask else None


async def fetch_day_fills(info: Any, account: str, coin: str, start_ms: int, log: Any) -> tuple[list[Fill], int]:
    """The account's fills of ``coin`` from ``start_ms`` (``userFillsByTime``, paged), validated; (fills, n_bad)."""
    out: dict[tuple[int, int], Fill] = {}
    n_bad = 0
    t = start_ms
    for _ in range(MAX_PAGES):
        rows = await info.post({"type": "userFillsByTime", "user": account, "startTime": t})
        if not isinstance(rows, list):
            raise DayRestoreError(f"userFillsByTime answered {str(rows)[:200]}")
        last = t
        for r in rows:
            if isinstance(r, dict) and isinstance(r.get("time"), int):
                last = max(last, r["time"])
            if isinstance(r, dict) and r.get("coin") != coin:
                continue
            f = parse_exchange_fill(r, coin)
            if f is None:
                n_bad += 1
                continue
            out.setdefault((f.tid, f.oid), f)
        if len(rows) < PAGE_MAX:
            break
        t = last if last > t else t + 1  # same-ms fills may straddle pages: overlap, deduplicated above
    if n_bad:
        log.warning("bad_exchange_fills", coin=coin, count=n_bad)
    return list(out.values()), n_bad


async def restore_day(info: Any, account: str, coin: str, dex: str, day_start_ts: float, journal: list[Fill],
                      log: Any) -> DayRestore:
    """Today's fills (exchange united with the journal) and the position when the day began. The position is read
    before and after the fills; they must agree (else a fill landed in between: try again)."""
    for _ in range(POSITION_TRIES):
        before = parse_position(await info.clearinghouse_state(account, dex), coin)
        ex, n_bad = await fetch_day_fills(info, account, coin, int(day_start_ts * 1000), log)
        after = parse_position(await info.clearinghouse_state(account, dex), coin)
        if abs(before - after) < 1e-9:
            fills, only_j = merge_fills(ex, journal, day_start_ts)
            return DayRestore(day_start_ts, after, position_at_start(after, fills), fills, len(ex), only_j, n_bad)
    raise DayRestoreError(f"position of {coin} kept changing while the day's fills were read")
