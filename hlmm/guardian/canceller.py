"""The guardian's cancel loop: cancel every order of the traded coins until the exchange shows none, bounded.

Round 1 cancels the oids the trader last reported (no info request needed); every round then asks ``openOrders``
(the account address, per dex) for what is still resting on the traded coins and cancels that by oid. Failures
(429, timeouts, a refused cancel) back off exponentially (0.2 s doubling to 2 s); a cancel refusal never counts as
"gone": only an ``openOrders`` answer without any of ours does, twice in a row a short gap apart (an order whose
placement was in flight when the trader died may land after the first empty answer). An answer that is not a list,
or has rows that cannot be read, never counts as empty. Past the bound no further chunk is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

CHUNK = 50  # cancels per signed action
BACKOFF0_S = 0.2
BACKOFF_MAX_S = 2.0
CONFIRM_GAP_S = 0.3

LogFn = Callable[..., None]


@dataclass(slots=True)
class CancelReport:
    verified: bool  # the exchange showed none of ours (twice)
    rounds: int = 0
    cancels_sent: int = 0  # (asset, oid) items sent
    cancels_ok: int = 0  # answered "success"
    first_resting: int | None = None  # ours resting at the first openOrders answer
    last_resting: int | None = None  # ours resting at the last openOrders answer
    errors: int = 0  # failed requests (info or exchange)
    elapsed_s: float = 0.0


def dex_of(coin: str) -> str:
    """``hyna:HYPE`` -> ``hyna``; ``BTC`` -> ``""`` (openOrders is asked per dex)."""
    return coin.split(":", 1)[0] if ":" in coin else ""


def ours(rows: Any, coins: dict[str, int]) -> tuple[list[tuple[int, int]], int]:
    """(asset, oid) of the rows on the traded coins, plus the number of malformed rows skipped."""
    out: list[tuple[int, int]] = []
    bad = 0
    if not isinstance(rows, list):
        return out, 1
    for r in rows:
        if not isinstance(r, dict):
            bad += 1
            continue
        coin, oid = r.get("coin"), r.get("oid")
        if coin not in coins:
            continue
        if isinstance(oid, bool) or not isinstance(oid, int) or oid <= 0:
            bad += 1
            continue
        out.append((coins[coin], oid))
    return out, bad


def _chunks(items: list[tuple[int, int]], n: int = CHUNK) -> Iterable[list[tuple[int, int]]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


async def cancel_everything(
    info: Any,
    exchange: Any,
    account: str,
    coins: dict[str, int],
    known: Iterable[tuple[int, int]],
    bound_s: float,
    log: LogFn,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> CancelReport:
    """Cancel every order of ``coins`` on ``account`` until openOrders shows none (see the module doc)."""
    t0 = clock()
    deadline = t0 + bound_s
    rep = CancelReport(verified=False)
    valid_assets = set(coins.values())
    pending = sorted({k for k in known if k[0] in valid_assets})
    dexes = sorted({dex_of(c) for c in coins})
    empty_streak = 0
    backoff = BACKOFF0_S
    while True:
        rep.rounds += 1
        failed = False
        for i, chunk in enumerate(_chunks(pending)):
            if i and clock() >= deadline:  # slow requests: stop at the bound, not after the whole round
                log("guardian_cancel_bound_reached", skipped=len(pending) - i * CHUNK)
                break
            rep.cancels_sent += len(chunk)
            try:
                results = await exchange.cancel(chunk)
            except Exception as e:  # 429, budget, timeout, transport: says nothing about the orders
                rep.errors += 1
                failed = True
                log("guardian_cancel_failed", n=len(chunk), error=f"{type(e).__name__}: {e}"[:300])
                continue
            ok = sum(1 for r in results if r.ok)
            rep.cancels_ok += ok
            log("guardian_cancel_sent", n=len(chunk), ok=ok,
                refused=[r.error for r in results if not r.ok][:5])
        resting: list[tuple[int, int]] | None = []
        unreadable = False  # rows we could not read may be ours: such an answer never shows "none"
        for dex in dexes:
            try:
                rows = await info.open_orders(account, dex)
                if not isinstance(rows, list):
                    raise TypeError(f"openOrders answered {type(rows).__name__}, not a list")
            except Exception as e:
                rep.errors += 1
                failed = True
                resting = None
                log("guardian_open_orders_failed", dex=dex, error=f"{type(e).__name__}: {e}"[:300])
                break
            mine, bad = ours(rows, coins)
            if bad:
                unreadable = True
                log("guardian_bad_open_orders_rows", dex=dex, n=bad)
            resting += mine  # type: ignore[operator]
        if resting is not None and unreadable and not resting:
            rep.errors += 1
            failed = True
            empty_streak = 0
            pending = []
        elif resting is not None:
            if rep.first_resting is None:
                rep.first_resting = len(resting)
            rep.last_resting = len(resting)
            log("guardian_open_orders", resting=len(resting))
            if resting:
                empty_streak = 0
                pending = sorted(set(resting))
            else:
                empty_streak += 1
                pending = []
                if empty_streak >= 2:
                    rep.verified = True
                    break
        # Without an answer, ``pending`` keeps what was last known: those are cancelled again next round.
        now = clock()
        if now >= deadline:
            break
        if failed:
            wait = backoff
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        else:
            wait = CONFIRM_GAP_S if not pending else 0.05
            backoff = BACKOFF0_S
        await sleep(min(wait, max(0.0, deadline - now)))
    rep.elapsed_s = clock() - t0
    return rep
