"""Issue 9 item 13: a cloid's case. The SDK signs a cloid's text exactly as given (``Cloid.to_raw`` keeps the case
and msgpack packs the string), so ``0xAB..`` and ``0xab..`` hash differently. We never lower-case silently (that
would sign something the SDK would not); every builder refuses a cloid that is not lower-case, with a clear
``ValueError``, and for every cloid we accept our action bytes and signature equal the SDK's."""

from __future__ import annotations

import eth_account
import msgpack
import pytest
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid

from hlmm.market.instrument import default_registry
from hlmm.venue.base import PlaceOrder
from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.signing import sign_l1_action
from hlmm.venue.hyperliquid.wallet import Wallet

BTC = default_registry().get("BTC")
KEY = "0x" + "5a" * 31 + "01"
LOWER = "0x" + "ab" * 16
UPPER = "0x" + "AB" * 16
MIXED = "0x" + "aB" * 16


def _sdk_cancel_by_cloid(c: str) -> dict:
    return {"type": "cancelByCloid", "cancels": [{"asset": BTC.asset, "cloid": Cloid(c).to_raw()}]}


def test_sdk_keeps_cloid_case() -> None:
    """The premise: the SDK signs the text as given, so upper and lower case are different signed bytes."""
    assert Cloid(UPPER).to_raw() == UPPER
    assert msgpack.packb(_sdk_cancel_by_cloid(UPPER)) != msgpack.packb(_sdk_cancel_by_cloid(LOWER))


@pytest.mark.parametrize("c", [UPPER, MIXED])
def test_non_lowercase_cloid_is_refused_everywhere(c: str) -> None:
    o = PlaceOrder("BTC", c, True, 64000.0, 0.001)
    good = wire.order_to_wire(BTC, PlaceOrder("BTC", LOWER, True, 64000.0, 0.001))
    for call in (
        lambda: wire.normalize_cloid(c),
        lambda: wire.order_to_wire(BTC, o),
        lambda: wire.cancel_by_cloid_action([(BTC.asset, c)]),
        lambda: wire.batch_modify_action([(c, good)]),
    ):
        with pytest.raises(ValueError, match="lower-case"):
            call()


def test_lowercase_cloid_signs_as_the_sdk() -> None:
    wallet = Wallet.from_key(KEY)
    acct = eth_account.Account.from_key(KEY)
    ours = wire.cancel_by_cloid_action([(BTC.asset, LOWER)])
    theirs = _sdk_cancel_by_cloid(LOWER)
    assert msgpack.packb(ours) == msgpack.packb(theirs)
    nonce = 1_700_000_000_000
    assert sign_l1_action(wallet, ours, nonce, None, None, True) == sdk.sign_l1_action(
        acct, theirs, None, nonce, None, True)
    o = PlaceOrder("BTC", LOWER, True, 64000.0, 0.001)
    sdk_wire = sdk.order_request_to_order_wire(
        {"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": 64000.0, "order_type": {"limit": {"tif": "Alo"}},
         "reduce_only": False, "cloid": Cloid(LOWER)}, BTC.asset)
    assert msgpack.packb(wire.order_to_wire(BTC, o)) == msgpack.packb(sdk_wire)


async def test_adapter_refuses_upper_case_cloids_locally_and_sends_nothing() -> None:
    """Through the venue: a place, modify or cancel with an upper-case cloid is refused with a clear message
    (OrderRejected / CancelRejected), nothing is signed or sent, and the flusher keeps working."""
    from hlmm.venue.base import CancelOrder, CancelRejected, ModifyOrder, OrderAccepted, OrderRejected
    from tests.venue.hyperliquid.test_hl_adapter import close_rig, make_rig

    rig = await make_rig()
    try:
        n0 = len(rig.fake.actions)
        await rig.venue.submit([PlaceOrder("BTC", UPPER, True, 99990.0, 0.001)])
        await rig.venue.submit([ModifyOrder(MIXED, PlaceOrder("BTC", MIXED, True, 99980.0, 0.001))])
        await rig.venue.submit([CancelOrder("BTC", UPPER)])
        assert len(rig.fake.actions) == n0  # nothing signed or sent
        rej = rig.of(OrderRejected)
        assert [e.cloid for e in rej] == [UPPER, MIXED] and all("lower-case" in e.message for e in rej)
        crej = rig.of(CancelRejected)
        assert [e.cloid for e in crej] == [UPPER] and "lower-case" in crej[0].message
        await rig.venue.submit([PlaceOrder("BTC", LOWER, True, 99990.0, 0.001)])  # still works
        assert [e.cloid for e in rig.of(OrderAccepted)] == [LOWER]
        assert rig.fake.actions[-1]["orders"][0]["c"] == LOWER
    finally:
        await close_rig(rig)
