"""Wire formats: SDK parity of order wires (property test) and strict input checks."""

from __future__ import annotations

import msgpack
import pytest
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.instrument import Instrument, InvalidPriceError, InvalidSizeError, asset_id, default_registry
from hlmm.venue.base import PlaceOrder, Tif
from hlmm.venue.hyperliquid import wire
from hlmm.venue.hyperliquid.wire import WireError

BTC = default_registry().get("BTC")
HYNA = default_registry().get("hyna:HYPE")


def _sdk_wire(inst: Instrument, o: PlaceOrder) -> dict:
    req = {
        "coin": inst.coin, "is_buy": o.is_buy, "sz": o.sz, "limit_px": o.px,
        "order_type": {"limit": {"tif": o.tif.value}}, "reduce_only": o.reduce_only,
        "cloid": Cloid(o.cloid) if o.cloid else None,
    }  # fmt: skip
    return sdk.order_request_to_order_wire(req, inst.asset)


@st.composite
def orders(draw: st.DrawFn) -> tuple[Instrument, PlaceOrder]:
    szd = draw(st.integers(0, 5))
    hip3 = draw(st.booleans())
    idx = draw(st.integers(0, 9_999 if hip3 else 500))
    dex = draw(st.integers(1, 50)) if hip3 else 0
    coin = f"d{dex}:C{idx}" if hip3 else f"C{idx}"
    inst = Instrument(coin, asset_id(idx, dex), szd)
    is_buy = draw(st.booleans())
    raw_px = draw(st.floats(min_value=10.0 ** (1 - inst.price_decimals), max_value=2e6, allow_nan=False))
    raw_sz = draw(st.floats(min_value=inst.lot, max_value=1e6, allow_nan=False))
    cloid = draw(st.one_of(st.just(""), st.integers(0, 2**128 - 1).map(wire.cloid_from_int)))
    return inst, PlaceOrder(
        coin, cloid, is_buy, inst.round_px(raw_px, is_buy), inst.floor_size(raw_sz),
        tif=draw(st.sampled_from(list(Tif))), reduce_only=draw(st.booleans()),
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(orders(), min_size=1, max_size=6), st.sampled_from(["na", "normalTpsl", "positionTpsl"]))
def test_order_wire_and_action_match_sdk(pairs: list[tuple[Instrument, PlaceOrder]], grouping: str) -> None:
    ours = [wire.order_to_wire(i, o) for i, o in pairs]
    theirs = [_sdk_wire(i, o) for i, o in pairs]
    assert ours == theirs
    a, b = wire.order_action(ours, grouping), sdk.order_wires_to_order_action(theirs, None, grouping)
    assert msgpack.packb(a) == msgpack.packb(b)


def test_order_wire_examples() -> None:
    o = PlaceOrder("BTC", "0x0000000000000000000000000000000a", True, 64000.0, 0.001)
    with pytest.raises(WireError, match="lower-case"):  # the SDK would sign the upper case: refused (issue 9)
        wire.order_to_wire(BTC, PlaceOrder("BTC", "0x0000000000000000000000000000000A", True, 64000.0, 0.001))
    assert wire.order_to_wire(BTC, o) == {
        "a": 0, "b": True, "p": "64000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Alo"}},
        "c": "0x0000000000000000000000000000000a",
    }  # fmt: skip
    h = PlaceOrder("hyna:HYPE", "", False, 32.977, 1.5, tif=Tif.IOC, reduce_only=True)
    w = wire.order_to_wire(HYNA, h)
    assert w == {"a": 110000, "b": False, "p": "32.977", "s": "1.5", "r": True, "t": {"limit": {"tif": "Ioc"}}}
    assert list(w) == ["a", "b", "p", "s", "r", "t"]
    assert type(w["t"]["limit"]["tif"]) is str  # a StrEnum must not reach msgpack


def test_order_wire_rejects_invalid_price_and_size() -> None:
    with pytest.raises(InvalidPriceError):
        wire.order_to_wire(BTC, PlaceOrder("BTC", "", True, 64000.5, 0.001))  # 6 sig figs
    with pytest.raises(InvalidSizeError):
        wire.order_to_wire(BTC, PlaceOrder("BTC", "", True, 64000.0, 0.0000001))
    with pytest.raises(InvalidSizeError):
        wire.order_to_wire(BTC, PlaceOrder("BTC", "", True, 64000.0, 0.0))
    with pytest.raises(InvalidPriceError):
        wire.order_to_wire(BTC, PlaceOrder("BTC", "", True, float("nan"), 0.001))


@pytest.mark.parametrize(
    "o",
    [
        PlaceOrder("ETH", "", True, 3000.0, 0.01),  # wrong instrument
        PlaceOrder("BTC", "0x1234", True, 64000.0, 0.001),  # short cloid
        PlaceOrder("BTC", "0x" + "g" * 32, True, 64000.0, 0.001),
        PlaceOrder("BTC", "", 1, 64000.0, 0.001),  # type: ignore[arg-type]
        PlaceOrder("BTC", "", True, 64000.0, 0.001, reduce_only=0),  # type: ignore[arg-type]
        PlaceOrder("BTC", "", True, 64000.0, 0.001, tif="Fok"),  # type: ignore[arg-type]
    ],
)
def test_order_wire_rejects_bad_fields(o: PlaceOrder) -> None:
    with pytest.raises(WireError):
        wire.order_to_wire(BTC, o)


def test_order_action_checks() -> None:
    w = wire.order_to_wire(BTC, PlaceOrder("BTC", "", True, 64000.0, 0.001))
    with pytest.raises(WireError):
        wire.order_action([])
    with pytest.raises(WireError):
        wire.order_action([w], grouping="bogus")
    with pytest.raises(WireError):
        wire.order_action([{"b": True, "a": 0}])
    with pytest.raises(WireError):
        wire.order_action([w], builder={"b": "0x12", "f": 1})
    assert wire.order_action([w], grouping={"p": 5})["grouping"] == {"p": 5}
    b = wire.order_action([w], builder={"b": "0x" + "AB" * 20, "f": 10})["builder"]
    assert b == {"b": "0x" + "ab" * 20, "f": 10}
    assert "builder" not in wire.order_action([w], builder=None)


def test_action_builders() -> None:
    assert wire.cancel_action([(0, 5), (110001, 7)]) == {
        "type": "cancel", "cancels": [{"a": 0, "o": 5}, {"a": 110001, "o": 7}]
    }  # fmt: skip
    c = "0x" + "ab" * 16
    assert wire.cancel_by_cloid_action([(3, c)]) == {
        "type": "cancelByCloid", "cancels": [{"asset": 3, "cloid": c}]
    }  # fmt: skip
    w = wire.order_to_wire(BTC, PlaceOrder("BTC", c, False, 64010.0, 0.002))
    assert wire.batch_modify_action([(99, w), (c, w)]) == {
        "type": "batchModify", "modifies": [{"oid": 99, "order": w}, {"oid": c, "order": w}]
    }  # fmt: skip
    assert wire.schedule_cancel_action(None) == {"type": "scheduleCancel"}
    assert wire.schedule_cancel_action(1_700_000_005_000) == {"type": "scheduleCancel", "time": 1_700_000_005_000}
    assert wire.update_leverage_action(159, False, 5) == {
        "type": "updateLeverage", "asset": 159, "isCross": False, "leverage": 5
    }  # fmt: skip
    assert wire.noop_action() == {"type": "noop"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: wire.cancel_action([]),
        lambda: wire.cancel_action([(True, 1)]),
        lambda: wire.cancel_action([(0, -1)]),
        lambda: wire.cancel_action([(0, 1.0)]),
        lambda: wire.cancel_by_cloid_action([]),
        lambda: wire.cancel_by_cloid_action([(0, "0x12")]),
        lambda: wire.batch_modify_action([]),
        lambda: wire.batch_modify_action([(1, {"a": 0})]),
        lambda: wire.batch_modify_action([("nope", {"a": 0})]),
        lambda: wire.schedule_cancel_action(-5),
        lambda: wire.schedule_cancel_action(1.5),
        lambda: wire.update_leverage_action(0, 1, 5),
        lambda: wire.update_leverage_action(0, True, 0),
        lambda: wire.update_leverage_action(-1, True, 5),
        lambda: wire.cloid_from_int(-1),
        lambda: wire.cloid_from_int(2**128),
    ],
)
def test_builders_reject_bad_input(call: object) -> None:
    with pytest.raises(WireError):
        call()  # type: ignore[operator]


def test_cloids() -> None:
    c = wire.new_cloid()
    assert c.startswith("0x") and len(c) == 34 and c == c.lower()
    assert wire.new_cloid() != c
    for n in (0, 1, 255, 2**128 - 1):
        assert wire.cloid_from_int(n) == Cloid.from_int(n).to_raw()
    assert wire.normalize_cloid("0x" + "f" * 32) == "0x" + "f" * 32
    with pytest.raises(WireError, match="lower-case"):  # never silently re-cased: the SDK signs the case as given
        wire.normalize_cloid("0x" + "F" * 32)
