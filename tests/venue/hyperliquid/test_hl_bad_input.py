"""HyperliquidVenue: malformed venue messages are dropped at the boundary (counted, never emitted) and its background
tasks are supervised (a failing task degrades health, goes unhealthy past its bound, recovers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hlmm.venue.base import AccountSnapshot, Fill, Funding, OrderAccepted, OrderCancelled, PlaceOrder, VenueStatus
from hlmm.venue.hyperliquid.wire import cloid_from_int
from tests.venue.hyperliquid.test_hl_adapter import Rig, _until, make_rig


@pytest.fixture
async def rig():
    r = await make_rig()
    yield r
    await r.venue.close()
    await r.ws.close()
    await r.venue.exchange.close()
    await r.venue.info.close()
    await r.fake.stop()


async def _place(rig: Rig, n: int = 1) -> int:
    await rig.venue.submit([PlaceOrder("BTC", cloid_from_int(n), True, 99000.0, 0.001)])
    await _until(lambda: len(rig.of(OrderAccepted)) >= n)
    return rig.of(OrderAccepted)[-1].oid


def _fill(oid: int, tid: Any, **kw: Any) -> dict:
    return {"coin": "BTC", "px": "99000", "sz": "0.001", "side": "B", "time": 10**13, "oid": oid, "tid": tid,
            "crossed": False, "fee": "0.01", **kw}


async def test_malformed_user_stream_messages_are_counted_never_emitted(rig: Rig) -> None:
    oid = await _place(rig)
    n0 = len(rig.events)
    v = rig.venue
    bad = [_fill(oid, 501, px="NaN"), _fill(oid, 502, sz="0"), _fill(oid, 503, sz="-1"), _fill(oid, 504, fee="NaN"),
           _fill(oid, "x"), "garbage"]
    v.on_ws_message(1.0, "userFills", {"isSnapshot": False, "fills": bad})
    v.on_ws_message(1.0, "user", {"fills": [_fill(oid, 506, px="inf")]})
    v.on_ws_message(1.0, "user", {"funding": {"coin": "BTC", "usdc": "NaN", "fundingRate": "0.0001", "szi": "1"}})
    v.on_ws_message(1.0, "user", {"nonUserCancel": [{"coin": "BTC", "oid": "x"}]})
    v.on_ws_message(1.0, "orderUpdates", [{"order": {"coin": "BTC", "oid": oid, "sz": "NaN"}, "status": "canceled"}])
    v.on_ws_message(1.0, "orderUpdates", {"not": "a list"})
    v.on_ws_message(1.0, "userFills", "not an object")
    assert rig.events[n0:] == [], "a malformed message reached the engine"
    assert v.bad_input.counts == {"fill": 7, "funding": 1, "non_user_cancel": 1, "order_update": 1,
                                  "order_updates": 1, "user_fills": 1}
    assert v.stats["bad_fill"] == 7 and v.stats["bad_input"] == 12
    assert v.health == "degraded" and v.healthy  # degraded: reported, but quoting goes on
    # good messages still flow
    v.on_ws_message(1.0, "userFills", {"isSnapshot": False, "fills": [_fill(oid, 507)]})
    v.on_ws_message(1.0, "user", {"funding": {"coin": "BTC", "usdc": "-0.2", "fundingRate": "0.0001", "szi": "1"}})
    assert [type(e) for e in rig.events[n0:]] == [Fill, Funding]


async def test_a_bad_open_orders_row_fails_one_reconcile_only(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await _place(rig)
    orig = rig.fake.info
    bad = [True]

    def info(body: dict) -> Any:
        out = orig(body)
        if body.get("type") == "openOrders" and bad[0]:
            return [{"coin": "BTC", "side": "B", "limitPx": "NaN", "sz": "1", "oid": "x"}, *out]
        return out

    monkeypatch.setattr(rig.fake, "info", info)
    n0 = len(rig.events)
    assert await rig.venue.reconcile_once() is False  # no exception: the round is skipped
    assert rig.venue.stats["bad_open_orders"] == 1 and rig.events[n0:] == []
    bad[0] = False
    assert await rig.venue.reconcile_once() is False  # consistent again: no mismatch
    assert rig.venue.stats["reconciles"] >= 1


async def test_resync_drops_a_bad_rest_fill_and_keeps_the_good_ones(rig: Rig) -> None:
    oid = await _place(rig)
    rig.fake.fills.extend([_fill(oid, 601, px="NaN"), _fill(oid, 602)])
    assert await rig.venue.resync("test") is True
    fills = rig.of(Fill)
    assert [f.tid for f in fills] == [602]
    assert rig.venue.stats["bad_fill"] == 1
    assert isinstance(rig.events[-1], VenueStatus) and rig.events[-1].healthy


async def test_a_bad_clearinghouse_state_fails_the_resync_which_is_retried(rig: Rig,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    orig = rig.fake.info
    bad = [3]

    def info(body: dict) -> Any:
        out = orig(body)
        if body.get("type") == "clearinghouseState" and bad[0] > 0:
            bad[0] -= 1
            return {"assetPositions": [{"position": {"coin": "BTC", "szi": "abc"}}]}
        return out

    monkeypatch.setattr(rig.fake, "info", info)
    assert await rig.venue.resync("direct") is False
    n0 = len(rig.events)
    rig.venue._request_resync("test")  # the retrying chain the adapter uses on reconnect / recovery
    await _until(lambda: any(isinstance(e, AccountSnapshot) for e in rig.events[n0:]), timeout=10.0)
    assert bad[0] == 0 and rig.venue.stats["bad_clearinghouse"] == 3
    assert not rig.venue._resync_wanted


async def test_a_failing_background_task_is_restarted_goes_unhealthy_past_its_bound_then_recovers() -> None:
    r = await make_rig(reconcile_interval_s=0.02, task_fail_bound_s=0.3)
    try:
        v = r.venue
        fail = [True]
        calls = [0]

        async def reconcile_once() -> bool:
            calls[0] += 1
            if fail[0]:
                raise RuntimeError("reconcile bug")
            return False

        v.reconcile_once = reconcile_once  # type: ignore[method-assign]
        await _until(lambda: calls[0] >= 3, timeout=10.0)
        st = v.task_states["reconcile"]
        assert st.failing and v.stats["task_failures"] >= 2 and v.health in ("degraded", "unhealthy")
        await _until(lambda: any(isinstance(e, VenueStatus) and not e.healthy for e in r.events), timeout=10.0)
        assert not v.healthy
        fail[0] = False
        await _until(lambda: v.healthy and not st.failing, timeout=15.0)
        assert isinstance(r.events[-1], VenueStatus) and r.events[-1].healthy
    finally:
        await r.venue.close()
        await r.ws.close()
        await r.venue.exchange.close()
        await r.venue.info.close()
        await r.fake.stop()


async def test_order_status_garbage_is_not_taken_as_order_unknown(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    orig = rig.fake.info

    def info(body: dict) -> Any:
        return ["garbage"] if body.get("type") == "orderStatus" else orig(body)

    monkeypatch.setattr(rig.fake, "info", info)
    n0 = len(rig.events)
    await rig.venue._resolve(cloid_from_int(77), "BTC", True)
    assert rig.events[n0:] == [] and rig.venue.stats["bad_order_status"] == 1
    assert not any(isinstance(e, OrderCancelled) for e in rig.events)
    await asyncio.sleep(0)


async def test_the_ws_client_loop_is_restarted_when_it_raises(rig: Rig) -> None:
    ws = rig.ws
    orig = ws._backoff
    raised: list[int] = []

    def backoff(attempt: int) -> float:
        if not raised:
            raised.append(attempt)
            raise RuntimeError("bug in the reconnect loop")
        return orig(attempt)

    ws._backoff = backoff  # type: ignore[method-assign]
    n0 = ws.n_connects
    await rig.fake.drop_ws()
    await _until(lambda: ws.n_connects > n0 and ws.connected, timeout=10.0)
    assert raised and ws.n_loop_failures == 1
