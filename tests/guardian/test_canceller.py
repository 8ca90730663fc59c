"""The guardian's cancel loop (hlmm.guardian.canceller): against fakes with an injected clock (pure logic), and
once end to end against the in-process local exchange with the guardian's own signing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hlmm.guardian.canceller import BACKOFF_MAX_S, CHUNK, cancel_everything, dex_of, ours
from hlmm.venue.hyperliquid.errors import CancelResult

COINS = {"BTC": 0, "ETH": 1, "hyna:HYPE": 110000}
ASSET_COIN = {a: c for c, a in COINS.items()}


class Clock:
    """Fake monotonic time: ``sleep`` advances it (no real waiting)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


class FakeExchange:
    """Resting orders by (asset, oid) per account; ``cancel`` removes them. Faults: ``raise_n`` calls raise,
    ``refuse_n`` calls answer an error for every item (the order stays), ``late`` lands after the first answer."""

    def __init__(self, resting: set[tuple[int, int]], clock: Clock) -> None:
        self.resting = set(resting)
        self.clock = clock
        self.raise_n = 0
        self.refuse_n = 0
        self.info_raise_n = 0
        self.info_answer: Any = None  # if set: returned instead of the rows (malformed answers)
        self.late: set[tuple[int, int]] = set()
        self.foreign = [{"coin": "SOL", "oid": 7777}]  # another coin of the account: never touched
        self.cancel_calls: list[list[tuple[int, int]]] = []
        self.info_calls: list[tuple[str, str]] = []
        self.call_cost_s = 0.0  # each request advances the clock by this

    async def cancel(self, items: list[tuple[int, int]]) -> list[CancelResult]:
        self.clock.t += self.call_cost_s
        self.cancel_calls.append(list(items))
        assert len(items) <= CHUNK
        if self.raise_n:
            self.raise_n -= 1
            raise ConnectionError("429 Too Many Requests")
        if self.refuse_n:
            self.refuse_n -= 1
            return [CancelResult(False, "rate limited") for _ in items]
        out = []
        for k in items:
            if k in self.resting:
                self.resting.discard(k)
                out.append(CancelResult(True))
            else:
                out.append(CancelResult(False, "Order was never placed, already canceled, or filled."))
        return out

    async def open_orders(self, account: str, dex: str = "") -> Any:
        self.clock.t += self.call_cost_s
        self.info_calls.append((account, dex))
        if self.info_raise_n:
            self.info_raise_n -= 1
            raise TimeoutError("info timeout")
        if self.info_answer is not None:
            return self.info_answer
        rows = [{"coin": ASSET_COIN[a], "oid": o} for a, o in sorted(self.resting) if dex_of(ASSET_COIN[a]) == dex]
        if self.late:  # an in-flight placement lands after this answer
            self.resting |= self.late
            self.late = set()
        return rows + (self.foreign if dex == "" else [])


def _run(ex: FakeExchange, clock: Clock, known: list[tuple[int, int]], bound_s: float = 30.0):
    logs: list[tuple[str, dict]] = []
    rep = asyncio.run(cancel_everything(ex, ex, "0xacc", COINS, known, bound_s,
                                        lambda ev, **kw: logs.append((ev, kw)), clock=clock, sleep=clock.sleep))
    return rep, logs


def test_ours_keeps_traded_coins_and_counts_malformed_rows() -> None:
    rows = [{"coin": "BTC", "oid": 5}, {"coin": "SOL", "oid": 6}, {"coin": "ETH", "oid": True}, "x",
            {"coin": "hyna:HYPE", "oid": 9}, {"coin": "ETH", "oid": -1}]
    assert ours(rows, COINS) == ([(0, 5), (110000, 9)], 3)
    assert ours({"error": "x"}, COINS) == ([], 1)
    assert dex_of("hyna:HYPE") == "hyna" and dex_of("BTC") == ""


def test_cancels_every_order_of_the_traded_coins_and_verifies_twice() -> None:
    clock = Clock()
    resting = {(0, i) for i in range(1, 121)} | {(1, 500), (110000, 900)}
    ex = FakeExchange(resting, clock)
    rep, _ = _run(ex, clock, known=[(0, i) for i in range(1, 121)])  # the trader's last beat
    assert rep.verified and ex.resting == set()
    assert rep.first_resting == 2 and rep.last_resting == 0  # the known ones went in round 1, before any info
    assert ex.cancel_calls[0] == [(0, i) for i in range(1, 51)] and len(ex.cancel_calls[0]) == CHUNK
    assert rep.cancels_ok == 122
    assert {d for _, d in ex.info_calls} == {"", "hyna"}  # openOrders per dex, for the account
    assert all(a == "0xacc" for a, _ in ex.info_calls)
    assert not any(k[1] == 7777 for c in ex.cancel_calls for k in c)  # the foreign coin is left alone


def test_unknown_orders_are_found_with_open_orders() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 11), (110000, 12)}, clock)
    rep, _ = _run(ex, clock, known=[])  # a trader that died before its first beat
    assert rep.verified and ex.resting == set() and rep.first_resting == 2


def test_known_orders_of_other_assets_are_ignored() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 11)}, clock)
    rep, _ = _run(ex, clock, known=[(0, 11), (5, 99)])  # asset 5 is not traded: never cancelled
    assert rep.verified and all(k[0] in COINS.values() for c in ex.cancel_calls for k in c)


def test_an_order_landing_after_the_first_empty_answer_is_still_cancelled() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 1)}, clock)
    ex.late = {(0, 2)}  # placement in flight when the trader died
    rep, _ = _run(ex, clock, known=[(0, 1)])
    assert rep.verified and ex.resting == set()
    assert any((0, 2) in c for c in ex.cancel_calls)


def test_failing_cancels_are_retried_with_backoff_until_none_rest() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 1), (1, 2)}, clock)
    ex.raise_n = 4  # 429s
    ex.refuse_n = 2  # then refusals (the orders stay)
    rep, logs = _run(ex, clock, known=[(0, 1), (1, 2)])
    assert rep.verified and ex.resting == set()
    assert rep.errors >= 4 and rep.cancels_ok == 2
    assert sum(1 for ev, _ in logs if ev == "guardian_cancel_failed") == 4
    backoffs = [s for s in clock.sleeps if s > 0.3]
    assert backoffs and max(clock.sleeps) <= BACKOFF_MAX_S
    assert backoffs == sorted(backoffs)  # exponential, capped


def test_a_refused_cancel_never_counts_as_gone() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 1)}, clock)
    ex.refuse_n = 10**9  # every cancel refused: the order stays
    rep, _ = _run(ex, clock, known=[(0, 1)], bound_s=10.0)
    assert not rep.verified and ex.resting == {(0, 1)} and rep.last_resting == 1
    assert clock.t - 1000.0 <= 10.0 + BACKOFF_MAX_S  # bounded


def test_info_failures_keep_cancelling_what_was_known_and_stay_bounded() -> None:
    clock = Clock()
    ex = FakeExchange({(0, 1)}, clock)
    ex.info_raise_n = 10**9
    rep, _ = _run(ex, clock, known=[(0, 1)], bound_s=5.0)
    assert not rep.verified and rep.first_resting is None and ex.resting == set()
    assert clock.t - 1000.0 <= 5.0 + BACKOFF_MAX_S


@pytest.mark.parametrize("answer", [{"error": "bad"}, "nope", [{"coin": "BTC", "oid": "x"}], ["row"]])
def test_a_malformed_open_orders_answer_never_verifies(answer: Any) -> None:
    """An answer that is not a list of rows (or has rows we cannot read) says nothing about what rests."""
    clock = Clock()
    ex = FakeExchange({(0, 1)}, clock)
    ex.refuse_n = 10**9  # the order stays
    ex.info_answer = answer
    rep, _ = _run(ex, clock, known=[(0, 1)], bound_s=5.0)
    assert not rep.verified and ex.resting == {(0, 1)}


def test_slow_requests_do_not_stretch_the_bound_by_a_whole_round() -> None:
    """With many orders and slow (timing-out) cancels, the loop stops sending at the bound instead of finishing
    a round of 100 chunks."""
    clock = Clock()
    resting = {(0, i) for i in range(1, 5001)}
    ex = FakeExchange(resting, clock)
    ex.raise_n = 10**9
    ex.call_cost_s = 5.0  # every request times out after 5 s
    rep, _ = _run(ex, clock, known=sorted(resting), bound_s=20.0)
    assert not rep.verified
    # at most one chunk and one openOrders per dex past the bound (was: the rest of a 100-chunk round)
    assert clock.t - 1000.0 <= 20.0 + (1 + 2) * ex.call_cost_s + BACKOFF_MAX_S
    assert len(ex.cancel_calls) < 100


async def test_against_the_local_exchange_with_the_guardians_own_signing() -> None:
    """Real REST clients, signing and nonces (as ``python -m hlmm.guardian`` builds them) against the in-process
    local exchange: orders the guardian knows and orders it does not are all gone, and the exchange says so."""
    from hlmm.market.instrument import default_registry
    from hlmm.venue.base import PlaceOrder
    from hlmm.venue.hyperliquid import wire
    from hlmm.venue.hyperliquid.nonce import NonceManager
    from hlmm.venue.hyperliquid.rest import ExchangeClient, InfoClient
    from hlmm.venue.hyperliquid.wallet import Wallet
    from tests.e2e.harness import KEY, make_server

    btc = default_registry().get("BTC")
    wallet = Wallet.from_key(KEY)
    with make_server() as st:
        info = InfoClient(st.url, timeout_s=5.0)
        trader = ExchangeClient(st.url, wallet, NonceManager(), False, None, timeout_s=5.0)
        guardian_nonces = NonceManager()
        guardian = ExchangeClient(st.url, wallet, guardian_nonces, False, None, timeout_s=5.0)
        try:
            book = await info.l2_book("BTC")
            bid = float(book["levels"][0][0]["px"])
            wires = [wire.order_to_wire(btc, PlaceOrder("BTC", wire.cloid_from_int(i + 1), True,
                                                        btc.round_px(bid * (0.9 - 0.01 * i), True), 0.001))
                     for i in range(6)]
            res = await trader.order(wires)
            oids = [r.oid for r in res]
            assert all(r.kind == "resting" for r in res), res
            guardian_nonces.observe(trader.nonces.last)  # as the guardian does from the last beat
            logs: list[str] = []
            rep = await cancel_everything(info, guardian, wallet.address, {"BTC": btc.asset},
                                          [(btc.asset, o) for o in oids[:3]], 20.0,
                                          lambda ev, **kw: logs.append(ev))
            assert rep.verified and rep.cancels_ok == 6 and rep.first_resting == 3
            assert await info.open_orders(wallet.address) == []
            assert st.sync(lambda: st.server.core.resting_count(wallet.address)) == 0  # type: ignore[union-attr]
        finally:
            await guardian.close()
            await trader.close()
            await info.close()
