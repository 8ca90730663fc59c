"""Property tests for the instrument rules: the only place prices and sizes are rounded."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hyperliquid.utils.signing import float_to_wire as sdk_float_to_wire
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.instrument import (
    HIP3_ASSET_BASE,
    Instrument,
    InstrumentError,
    InvalidCoinError,
    InvalidPriceError,
    InvalidSizeError,
    UnknownCoinError,
    asset_id,
    default_registry,
    float_to_wire,
    parse_coin,
)


# ---- an independent oracle for the price grid (not using the Instrument's own helpers) ----------------
def _quantum(x: Decimal, sz_decimals: int) -> Decimal:
    """Price step for prices in the decade of ``x``: 5 significant figures, <= 6 - szDecimals decimals,
    and integers always valid (so never coarser than 1)."""
    exp = math.floor(math.log10(x)) if x > 0 else 0
    # math.log10 can be off by one right at powers of ten; fix it exactly.
    while Decimal(10) ** exp > x:
        exp -= 1
    while Decimal(10) ** (exp + 1) <= x:
        exp += 1
    decimals = min(6 - sz_decimals, 4 - exp)
    return Decimal(1).scaleb(-max(decimals, 0))


def _next_up(r: Decimal, szd: int) -> Decimal:
    return r + _quantum(r, szd)


def _next_down(r: Decimal, szd: int) -> Decimal:
    # Just below a power of ten the grid is finer: use the step of the decade below r.
    q = _quantum(r, szd)
    cand = r - q
    q_below = _quantum(cand, szd) if cand > 0 else q
    return r - q_below if q_below < q and r - q_below > cand else cand


def _valid_oracle(p: Decimal, szd: int) -> bool:
    if p <= 0:
        return False
    if p == p.to_integral_value():
        return True
    t = p.normalize().as_tuple()
    return -t.exponent <= 6 - szd and len(t.digits) <= 5


def _price(draw: st.DrawFn, szd: int) -> float:
    # Log-uniform over many magnitudes, from a few ticks of the smallest price step to 1e9.
    lo = math.log10(10.0 ** -(6 - szd)) + 0.5
    e = draw(st.floats(min_value=lo, max_value=9.0, allow_nan=False))
    mant = draw(st.floats(min_value=1.0, max_value=10.0, exclude_max=True))
    return float(f"{mant * 10**e:.12g}") if draw(st.booleans()) else mant * 10**e


@st.composite
def inst_and_price(draw: st.DrawFn) -> tuple[Instrument, float]:
    szd = draw(st.integers(0, 5))
    return Instrument("TST", 1, szd), _price(draw, szd)


@settings(max_examples=1000, deadline=None)
@given(inst_and_price())
def test_round_bid_ask_are_adjacent_valid_prices(ip: tuple[Instrument, float]) -> None:
    inst, p = ip
    szd = inst.sz_decimals
    dp = Decimal(repr(p))
    bid = inst.round_bid(p)
    ask = inst.round_ask(p)
    db, da = Decimal(repr(bid)), Decimal(repr(ask))
    assert bid <= p <= ask
    assert inst.is_valid_price(bid) and inst.is_valid_price(ask)
    assert _valid_oracle(db, szd) and _valid_oracle(da, szd)
    # Adjacent: no valid price strictly between p and the rounded price.
    assert _next_up(db, szd) > dp, (p, bid)
    assert _next_down(da, szd) < dp, (p, ask)
    if inst.is_valid_price(p):
        assert bid == ask == p
    # Rounding is idempotent and monotone in the side's direction.
    assert inst.round_bid(bid) == bid and inst.round_ask(ask) == ask
    assert inst.tick_size(p) > 0


@settings(max_examples=500, deadline=None)
@given(inst_and_price())
def test_next_passive_is_strictly_more_passive_and_valid(ip: tuple[Instrument, float]) -> None:
    inst, p = ip
    bid = inst.round_bid(p)
    if bid > inst.tick_size(bid):
        lower = inst.next_passive_px(bid, True)
        assert lower < bid and inst.is_valid_price(lower)
    upper = inst.next_passive_px(inst.round_ask(p), False)
    assert upper > inst.round_ask(p) and inst.is_valid_price(upper)


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 5), st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_floor_size_never_rounds_up(szd: int, sz: float) -> None:
    inst = Instrument("TST", 1, szd)
    f = inst.floor_size(sz)
    lot = Decimal(1).scaleb(-szd)
    assert f <= sz
    assert Decimal(repr(sz)) - Decimal(repr(f)) < lot
    assert f == 0.0 or inst.is_valid_size(f)
    assert inst.floor_size(f) == f


@settings(max_examples=500, deadline=None)
@given(inst_and_price())
def test_min_size_at_is_the_smallest_meeting_min_notional(ip: tuple[Instrument, float]) -> None:
    inst, p = ip
    px = inst.round_bid(p)
    m = inst.min_size_at(px)
    assert inst.is_valid_size(m)
    assert Decimal(repr(m)) * Decimal(repr(px)) >= Decimal(10)
    smaller = Decimal(repr(m)) - Decimal(1).scaleb(-inst.sz_decimals)
    assert smaller * Decimal(repr(px)) < Decimal(10)


@settings(max_examples=500, deadline=None)
@given(inst_and_price())
def test_wire_format_matches_sdk(ip: tuple[Instrument, float]) -> None:
    inst, p = ip
    px = inst.round_bid(p)
    if abs(round(px, 8) - px) < 1e-12:  # the SDK refuses values needing more than 8 decimals
        assert inst.px_to_wire(px) == sdk_float_to_wire(px)
    sz = inst.min_size_at(px)
    assert inst.sz_to_wire(sz) == sdk_float_to_wire(sz)


def test_float_to_wire_examples() -> None:
    assert float_to_wire(100) == "100"
    assert float_to_wire(100.0) == "100"
    assert float_to_wire(1670.1) == "1670.1"
    assert float_to_wire(0.00000001) == "0.00000001"
    assert float_to_wire(-0.0) == "0"
    assert float_to_wire(32.977) == sdk_float_to_wire(32.977) == "32.977"
    with pytest.raises(InstrumentError):
        float_to_wire(0.123456789)  # would need rounding to 8 decimals
    for bad in (math.nan, math.inf, "1", None, True):
        with pytest.raises(InstrumentError):
            float_to_wire(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1.0, 0.0, 0, -0.0, math.nan, math.inf, -math.inf, "32.9", None, True, [1]])
def test_bad_prices_raise_typed_errors(bad: object) -> None:
    inst = default_registry().get("HYPE")
    for fn in (inst.round_bid, inst.round_ask, inst.tick_size, inst.min_size_at):
        with pytest.raises(InvalidPriceError):
            fn(bad)  # type: ignore[arg-type]
    assert inst.is_valid_price(bad) is False  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceError):
        inst.px_to_wire(bad)  # type: ignore[arg-type]


def test_price_below_smallest_step_raises() -> None:
    inst = Instrument("TST", 1, 5)  # 1 decimal
    with pytest.raises(InvalidPriceError):
        inst.round_bid(0.04)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "1", None, True])
def test_bad_sizes_raise_typed_errors(bad: object) -> None:
    inst = default_registry().get("HYPE")
    with pytest.raises(InvalidSizeError):
        inst.floor_size(bad)  # type: ignore[arg-type]
    assert inst.is_valid_size(bad) is False  # type: ignore[arg-type]
    with pytest.raises(InvalidSizeError):
        inst.sz_to_wire(bad)  # type: ignore[arg-type]


def test_invalid_grid_values_rejected_on_the_wire() -> None:
    inst = default_registry().get("HYPE")  # szDecimals 2: 4 price decimals, 5 significant figures
    assert inst.is_valid_price(32.977) and not inst.is_valid_price(32.9771)
    assert inst.is_valid_price(123456.0)  # integers are always valid
    with pytest.raises(InvalidPriceError):
        inst.px_to_wire(32.9771)
    with pytest.raises(InvalidSizeError):
        inst.sz_to_wire(0.001)
    assert inst.check_order(32.977, 0.31) is None
    assert inst.check_order(32.977, 0.30) == "Order must have minimum value of $10."


def test_coin_names_and_registry_errors() -> None:
    reg = default_registry()
    assert parse_coin("hyna:HYPE").dex == "hyna" and parse_coin("BTC").dex == ""
    with pytest.raises(UnknownCoinError):
        reg.get("DOGE")
    with pytest.raises(UnknownCoinError):
        reg.get("xyz:HYPE")
    with pytest.raises(KeyError):  # UnknownCoinError is also a KeyError for dict-like callers
        reg.get("DOGE")
    for bad in ("", "bad coin", "a:b:c", ":HYPE", "HY PE", "Hyna:HYPE"):
        with pytest.raises(InvalidCoinError):
            reg.get(bad)
    for bad in (123, None, b"BTC"):
        with pytest.raises(InvalidCoinError):
            parse_coin(bad)  # type: ignore[arg-type]
    with pytest.raises(UnknownCoinError):
        reg.by_asset(999_999)
    with pytest.raises(InstrumentError):
        Instrument("TST", 1, 7)
    with pytest.raises(InstrumentError):
        Instrument("bad coin", 1, 2)


def test_hip3_asset_ids() -> None:
    assert asset_id(0) == 0 and asset_id(159) == 159
    assert asset_id(0, 1) == HIP3_ASSET_BASE + 10_000 == 110_000
    assert asset_id(5, 3) == 130_005
    assert asset_id(9_999, 2) == 129_999
    reg = default_registry()
    assert reg.get("hyna:HYPE").asset == 110_000
    assert reg.get("hyna:BTC").asset == 110_001
    assert reg.by_asset(110_000).coin == "hyna:HYPE"
    for bad in ((10_000, 1), (-1, 0), (0, -1)):
        with pytest.raises(InstrumentError):
            asset_id(*bad)
    meta = {
        "universe": [
            {"name": "A", "szDecimals": 1},
            {"name": "B", "szDecimals": 3, "isDelisted": True},
            {"name": "C", "szDecimals": 0},
        ]
    }
    reg2 = type(reg).from_meta(meta, dex_index=4)
    assert reg2.get("A").asset == 140_000
    assert "B" not in reg2
    assert reg2.get("C").asset == 140_002


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 9_999), st.integers(1, 9))
def test_hip3_asset_id_formula(index: int, dex: int) -> None:
    a = asset_id(index, dex)
    assert a == 100_000 + dex * 10_000 + index
    assert divmod(a - 100_000, 10_000) == (dex, index)
