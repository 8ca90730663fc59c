"""HyperliquidVenue against the loopback fake exchange (signatures verified there with recover_l1_signer)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hlmm.venue.base import (
    AccountSnapshot,
    CancelOrder,
    CancelRejected,
    Fill,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Venue,
    VenueStatus,
)
from hlmm.venue.hyperliquid.adapter import HyperliquidVenue
from hlmm.venue.hyperliquid.meta import resolve_registry
from hlmm.venue.hyperliquid.nonce import NonceManager
from hlmm.venue.hyperliquid.rest import ExchangeClient, InfoClient
from hlmm.venue.hyperliquid.wallet import Wallet
from hlmm.venue.hyperliquid.wire import cloid_from_int
from hlmm.venue.hyperliquid.ws import WsClient
from tests.venue.hyperliquid.fake_hl import FakeHL

AGENT_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
MASTER = "0x" + "ab" * 20


class Rig:
    def __init__(self, fake: FakeHL, venue: HyperliquidVenue, ws: WsClient, events: list) -> None:
        self.fake, self.venue, self.ws, self.events = fake, venue, ws, events

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


async def _until(cond, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def make_rig(refuse_schedule: bool = False, cap: int = 10_500, **kw) -> Rig:
    wallet = Wallet.from_key(AGENT_KEY, account_address=MASTER)  # agent signs, master is queried
    fake = await FakeHL(wallet.address, account=MASTER).start()
    fake.refuse_schedule = refuse_schedule
    fake.cap = cap
    info = InfoClient(fake.url)
    reg = await resolve_registry(info, ["BTC", "hyna:HYPE"])
    ex = ExchangeClient(fake.url, wallet, NonceManager(), is_mainnet=False)
    events: list = []
    venue: HyperliquidVenue

    def on_msg(ts: float, ch: str, d: object) -> None:
        venue.on_ws_message(ts, ch, d)

    ws = WsClient(fake.ws_url, on_msg, lambda ts, up, d: venue.on_ws_status(ts, up, d), backoff_base_s=0.05,
                  backoff_max_s=0.1)
    params = {"batch_interval_s": 0.0, "dead_man_s": 30.0, "watchdog_grace_s": 0.2, "uncertain_delay_s": 0.05}
    params.update(kw)
    venue = HyperliquidVenue(info, ex, reg, account=wallet.account_address, coins=["BTC", "hyna:HYPE"], ws=ws,
                             **params)
    venue.set_event_sink(events.append)
    await ws.start()
    assert await ws.wait_connected(5)
    await venue.start()
    await _until(lambda: len(fake.ws_clients) == 1 and len(fake.ws_clients[0][1]) == 3)
    return Rig(fake, venue, ws, events)


async def close_rig(r: Rig) -> None:
    await r.venue.close()
    await r.ws.close()
    await r.venue.exchange.close()
    await r.venue.info.close()
    await r.fake.stop()


@pytest.fixture
async def rig():
    r = await make_rig()
    yield r
    await close_rig(r)


def po(n: int, is_buy: bool, px: float, sz: float, coin: str = "BTC") -> PlaceOrder:
    return PlaceOrder(coin=coin, cloid=cloid_from_int(n), is_buy=is_buy, px=px, sz=sz)


async def test_protocol_and_user_subscriptions_use_account(rig: Rig) -> None:
    assert isinstance(rig.venue, Venue)
    subs = rig.fake.ws_clients[0][1]
    assert {s["type"] for s in subs} == {"orderUpdates", "userFills", "userEvents"}
    assert all(s["user"] == MASTER for s in subs)  # the account, never the agent


async def test_order_flow_accept_reject_cancel_dedup(rig: Rig) -> None:
    await rig.venue.submit([po(1, True, 99990.0, 0.001), po(2, True, 100001.0, 0.001), po(3, False, 100010.0, 0.001),
                            po(4, True, 30.0, 0.3, "hyna:HYPE")])
    orders = [a for a in rig.fake.actions if a["type"] == "order"]
    assert len(orders) == 1 and len(orders[0]["orders"]) == 4  # one signed batch
    assert orders[0]["orders"][3]["a"] == 110000
    await asyncio.sleep(0.2)  # orderUpdates echo the acks: must not duplicate them
    acc = rig.of(OrderAccepted)
    assert sorted(e.cloid for e in acc) == [cloid_from_int(1), cloid_from_int(3)]
    rej = rig.of(OrderRejected)
    assert {(e.cloid, e.reason) for e in rej} == {(cloid_from_int(2), RejectReason.POST_ONLY_CROSS),
                                                   (cloid_from_int(4), RejectReason.MIN_VALUE)}
    assert "bbo was 100000@100001" in next(e for e in rej if e.reason == RejectReason.POST_ONLY_CROSS).message
    await rig.venue.submit([CancelOrder("BTC", cloid_from_int(1)), CancelOrder("BTC", cloid_from_int(9))])
    await asyncio.sleep(0.2)
    can = rig.of(OrderCancelled)
    assert [(e.cloid, e.oid) for e in can] == [(cloid_from_int(1), acc[0].oid)]
    assert [e.cloid for e in rig.of(CancelRejected)] == [cloid_from_int(9)]
    assert rig.fake.actions[-1]["type"] == "cancelByCloid"


async def test_modify_new_oid_same_cloid(rig: Rig) -> None:
    await rig.venue.submit([po(1, True, 99990.0, 0.001)])
    old = rig.of(OrderAccepted)[0].oid
    await rig.venue.submit([ModifyOrder(cloid_from_int(1), po(1, True, 99980.0, 0.002))])
    await asyncio.sleep(0.2)
    acc = rig.of(OrderAccepted)
    assert [e.cloid for e in acc] == [cloid_from_int(1)] * 2 and acc[1].oid != old
    assert rig.fake.actions[-1]["type"] == "batchModify"
    # the old leg's cancel (from orderUpdates) is reported with the old oid
    assert [(e.oid, e.reason) for e in rig.of(OrderCancelled)] == [(old, "requested")]


async def test_fills_dedup_snapshot_skip_and_remaining(rig: Rig) -> None:
    await rig.venue.submit([po(1, True, 99990.0, 0.003)])
    oid = rig.of(OrderAccepted)[0].oid
    f = await rig.fake.fill(oid, 0.001, tid=77)
    await rig.fake.push("user", {"fills": [f]})  # the same fill again on userEvents
    await rig.fake.push("userFills", {"isSnapshot": True, "user": MASTER, "fills": [dict(f, tid=1)]})
    await rig.fake.fill(oid, 0.002, tid=78, via="user")
    await _until(lambda: len(rig.of(Fill)) >= 2)
    await asyncio.sleep(0.1)
    fills = rig.of(Fill)
    assert [(x.tid, x.sz, x.is_maker) for x in fills] == [(77, 0.001, True), (78, 0.002, True)]
    assert fills[0].cloid == cloid_from_int(1) and fills[0].remaining == pytest.approx(0.002)
    assert fills[1].remaining == pytest.approx(0.0) and fills[0].fee == pytest.approx(-0.0001)
    assert rig.venue.stats["duplicate_fills"] == 1


async def test_snapshot_uses_account_and_finds_cloids(rig: Rig) -> None:
    await rig.venue.submit([po(1, False, 100100.0, 0.001)])
    rig.fake.position["BTC"] = (0.01, 99000.0)
    snap = await rig.venue.snapshot("BTC")
    assert snap.position == 0.01 and snap.entry_px == 99000.0 and snap.account_value == 1000.0
    assert [(o.cloid, o.is_buy, o.px) for o in snap.open_orders] == [(cloid_from_int(1), False, 100100.0)]
    assert all(r.get("user", MASTER) == MASTER for r in rig.fake.info_requests)
    # a foreign order (placed elsewhere): its cloid comes from orderStatus
    rig.fake.orders[5] = {"coin": "BTC", "oid": 5, "cloid": "0x" + "cd" * 16, "is_buy": True, "px": "90000",
                          "sz": "0.001", "orig_sz": "0.001"}
    snap = await rig.venue.snapshot("BTC")
    assert {o.cloid for o in snap.open_orders} == {cloid_from_int(1), "0x" + "cd" * 16}


async def test_budget_throttles_quotes_not_cancels() -> None:
    r = await make_rig(cap=100 + 1 + 200 + 2, budget_reserve=200)  # fake used=100, +1 for start's scheduleCancel
    try:
        b = r.venue.budget
        assert b.remaining == 202
        await r.venue.submit([po(1, True, 99990.0, 0.001), po(2, True, 99980.0, 0.001)])
        assert b.remaining == 200  # a batch of n counts n
        await r.venue.submit([po(3, True, 99970.0, 0.001), po(4, True, 99960.0, 0.001)])
        rej = r.of(OrderRejected)
        assert {e.cloid for e in rej} == {cloid_from_int(3), cloid_from_int(4)}
        assert all(e.reason == RejectReason.RATE_LIMIT for e in rej)
        assert len(r.fake.actions) == 2  # scheduleCancel + first batch; the throttled batch never left
        await r.venue.submit([CancelOrder("BTC", cloid_from_int(1))])
        assert r.fake.actions[-1]["type"] == "cancelByCloid"
        await r.venue.refresh_budget()
        assert b.remaining == r.fake.cap - r.fake.used
    finally:
        await close_rig(r)


async def test_schedule_cancel_refreshed_while_healthy(rig: Rig) -> None:
    t0 = time.time()
    assert rig.venue.dead_man_supported and rig.venue.dead_man_armed
    first = rig.fake.schedule_times[0]
    assert first is not None and abs(first / 1000 - (t0 + 30.0)) < 2.0
    await rig.venue.refresh_dead_man()
    assert len(rig.fake.schedule_times) == 2 and rig.fake.schedule_times[1] >= first
    await rig.venue.close()
    assert rig.fake.schedule_times[-1] is None  # cleared on a clean close


async def test_watchdog_cancels_all_when_schedule_cancel_refused() -> None:
    r = await make_rig(refuse_schedule=True)
    try:
        assert r.venue.dead_man_supported is False and not r.venue.dead_man_armed
        await r.venue.submit([po(1, True, 99990.0, 0.001), po(2, False, 100100.0, 0.001)])
        assert len(r.fake.orders) == 2
        await r.ws.close()  # health lost (websocket gone for good)
        await _until(lambda: any(isinstance(e, VenueStatus) and not e.healthy for e in r.events))
        await asyncio.sleep(0.3)  # past the grace period
        await r.venue.watchdog_check()  # (the background watchdog may already have fired: once only)
        await _until(lambda: r.fake.orders == {})
        assert r.venue.stats["watchdog_cancel_all"] == 1
        assert r.fake.actions[-1]["type"] == "cancel"  # by oid: catches cloid-less orders too
    finally:
        await close_rig(r)


async def test_drop_resyncs_missed_fills_then_snapshot_then_healthy(rig: Rig) -> None:
    await rig.venue.submit([po(1, True, 99990.0, 0.002)])
    oid = rig.of(OrderAccepted)[0].oid
    n0 = len(rig.events)
    clients = list(rig.fake.ws_clients)
    rig.fake.ws_clients.clear()
    await rig.fake.fill(oid, 0.001, tid=500)  # nobody hears this push: only REST will tell
    for c, _ in clients:
        await c.close()
    await _until(lambda: any(isinstance(e, VenueStatus) and not e.healthy for e in rig.events[n0:]))
    await _until(lambda: isinstance(rig.events[-1], VenueStatus) and rig.events[-1].healthy)
    tail = rig.events[n0:]
    kinds = [type(e).__name__ for e in tail]
    i_fill, i_snap, i_ok = kinds.index("Fill"), kinds.index("AccountSnapshot"), len(kinds) - 1
    assert kinds[0] == "VenueStatus" and i_fill < i_snap < i_ok
    snap = tail[i_snap]
    assert isinstance(snap, AccountSnapshot) and snap.position == pytest.approx(0.001)
    assert tail[i_fill].tid == 500
    assert rig.fake.ws_clients and len(rig.fake.ws_clients[0][1]) == 3  # user channels resubscribed


async def test_five_second_dead_man_is_armed_with_margin() -> None:
    """Regression: scheduleCancel(now + 5 s) reached the exchange under its 5 s minimum ("too early") and was never
    armed. The adapter sends now + 5 s + DEAD_MAN_MARGIN_S."""
    from hlmm.venue.hyperliquid.adapter import DEAD_MAN_MARGIN_S, SCHEDULE_CANCEL_MIN_S

    r = await make_rig(dead_man_s=5.0)
    try:
        assert r.venue.dead_man_supported is True and r.venue.dead_man_armed, r.venue.dead_man_detail
        t = r.fake.schedule_times[0]
        assert t is not None and t >= (time.time() + SCHEDULE_CANCEL_MIN_S) * 1000
        assert r.venue.dead_man_target_ms(100.0) == int((100.0 + SCHEDULE_CANCEL_MIN_S + DEAD_MAN_MARGIN_S) * 1000)
        assert r.venue.dead_man_target_ms(100.0) == r.venue.dead_man_target_ms(100.0)  # pure in `now`
    finally:
        await close_rig(r)
    assert r.fake.schedule_times[-1] is None


async def test_any_schedule_cancel_refusal_means_not_armed_and_watchdog_covers(rig: Rig) -> None:
    assert rig.venue.dead_man_armed
    rig.fake.schedule_error = "Too many scheduled cancel triggers today."
    await rig.venue.refresh_dead_man()
    assert not rig.venue.dead_man_armed and rig.venue.dead_man_until_ms is None
    assert "Too many" in rig.venue.dead_man_detail
    assert rig.venue.dead_man_supported is not False  # not the permanent volume refusal: retried next refresh
    await rig.venue.submit([po(1, True, 99990.0, 0.001)])
    assert len(rig.fake.orders) == 1
    await rig.ws.close()  # health lost
    await _until(lambda: any(isinstance(e, VenueStatus) and not e.healthy for e in rig.events))
    await asyncio.sleep(0.3)  # past the grace period
    await rig.venue.watchdog_check()
    await _until(lambda: rig.fake.orders == {})  # the watchdog did what the refused schedule would have done
    assert rig.venue.stats["watchdog_cancel_all"] == 1
    rig.fake.schedule_error = None


async def test_cancel_by_oid_for_an_order_without_cloid(rig: Rig) -> None:
    """CancelOrder.oid set (foreign order without a cloid) -> the ``cancel`` action {a, o}, events under the
    engine's placeholder cloid; a cloid cancel in the same batch still uses cancelByCloid."""
    oid = rig.fake.next_oid
    rig.fake.next_oid += 1
    rig.fake.orders[oid] = {"coin": "BTC", "oid": oid, "cloid": None, "is_buy": True, "px": "99000", "sz": "0.001",
                            "orig_sz": "0.001"}
    await rig.venue.submit([po(1, True, 99990.0, 0.001)])
    placeholder = "0x" + "e" * 32
    await rig.venue.submit([CancelOrder("BTC", cloid_from_int(1)), CancelOrder("BTC", placeholder, oid=oid)])
    await _until(lambda: rig.fake.orders == {})
    kinds = [a["type"] for a in rig.fake.actions]
    assert kinds[-2:] == ["cancelByCloid", "cancel"]
    assert rig.fake.actions[-1]["cancels"] == [{"a": 0, "o": oid}]
    await asyncio.sleep(0.2)  # the orderUpdates echo (no cloid) must map to the placeholder, once
    cancelled = [e for e in rig.of(OrderCancelled) if e.cloid == placeholder]
    assert len(cancelled) == 1 and cancelled[0].oid == oid
    # already gone: the exchange refuses -> CancelRejected under the placeholder
    await rig.venue.submit([CancelOrder("BTC", placeholder, oid=oid)])
    await _until(lambda: any(isinstance(e, CancelRejected) and e.cloid == placeholder for e in rig.events))


async def test_cancel_of_a_never_sent_order_has_no_oid() -> None:
    r = await make_rig(batch_interval_s=5.0)  # the placement stays queued
    try:
        await r.venue.submit([po(1, True, 99990.0, 0.001)])
        await r.venue.submit([CancelOrder("BTC", cloid_from_int(1))])
        (ev,) = [e for e in r.events if isinstance(e, OrderCancelled)]
        assert ev.cloid == cloid_from_int(1) and ev.oid is None  # "no oid": None, never 0
        assert not [a for a in r.fake.actions if a["type"] == "order"]
    finally:
        await close_rig(r)
