"""Instrument rules: the only place where prices and sizes are rounded or formatted for the wire.

Hyperliquid perp rules: a price has at most 5 significant figures and at most
``6 - szDecimals`` decimals; integer prices are always valid. Sizes have at most
``szDecimals`` decimals. Orders need a notional of at least 10 USD.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict, Unpack

MAX_DECIMALS_PERP = 6
MAX_SIG_FIGS = 5
MIN_ORDER_VALUE_USD = 10.0
HIP3_ASSET_BASE = 100_000
HIP3_DEX_STRIDE = 10_000
DEFAULT_MAKER_FEE = 0.00015
DEFAULT_TAKER_FEE = 0.00045

_COIN_RE = re.compile(r"^(?:(?P<dex>[a-z0-9]{1,16}):)?(?P<base>[A-Za-z0-9][A-Za-z0-9_.\-]{0,31})$")


class InstrumentError(ValueError):
    """Base class for bad instrument input."""


class InvalidCoinError(InstrumentError):
    """A coin name that is not ``COIN`` or ``dex:COIN``."""


class UnknownCoinError(InstrumentError, KeyError):
    """A well-formed coin name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown coin"


class InvalidPriceError(InstrumentError):
    """Price is not positive/finite or violates tick rules."""


class InvalidSizeError(InstrumentError):
    """Size is not positive/finite or violates szDecimals."""


@dataclass(frozen=True, slots=True)
class CoinName:
    """Parsed coin: ``dex`` is '' for the first (default) perp dex."""

    dex: str
    base: str

    @property
    def name(self) -> str:
        return f"{self.dex}:{self.base}" if self.dex else self.base


def parse_coin(coin: str) -> CoinName:
    """Parse ``BTC`` or ``hyna:HYPE``. Raises InvalidCoinError on anything else."""
    if not isinstance(coin, str):
        raise InvalidCoinError(f"coin must be a string, got {type(coin).__name__}")
    m = _COIN_RE.match(coin.strip())
    if m is None:
        raise InvalidCoinError(f"invalid coin name {coin!r}: expected 'COIN' or 'dex:COIN' (e.g. 'BTC', 'hyna:HYPE')")
    return CoinName(dex=m.group("dex") or "", base=m.group("base"))


def asset_id(index: int, dex_index: int = 0) -> int:
    """Asset id: the perp index on the first dex; 100000 + dex_index*10000 + index on HIP-3 dexes."""
    if index < 0 or dex_index < 0:
        raise InstrumentError(f"asset index and dex index must be >= 0, got index={index} dex_index={dex_index}")
    if dex_index == 0:
        return index
    if index >= HIP3_DEX_STRIDE:
        raise InstrumentError(f"HIP-3 asset index {index} out of range (< {HIP3_DEX_STRIDE})")
    return HIP3_ASSET_BASE + dex_index * HIP3_DEX_STRIDE + index


def _check_positive_finite(x: float, what: str, exc: type[InstrumentError]) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        raise exc(f"{what} must be a number, got {type(x).__name__}")
    xf = float(x)
    if math.isnan(xf) or math.isinf(xf):
        raise exc(f"{what} must be finite, got {x}")
    if xf <= 0:
        raise exc(f"{what} must be > 0, got {x}")


def float_to_wire(x: float) -> str:
    """Format a price or size as the SDK does: <= 8 decimals, no trailing zeros, no exponent."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise InstrumentError(f"wire value must be a number, got {type(x).__name__}")
    xf = float(x)
    if math.isnan(xf) or math.isinf(xf):
        raise InstrumentError(f"wire value must be finite, got {x}")
    rounded = f"{xf:.8f}"
    if abs(float(rounded) - xf) >= 1e-12:
        raise InstrumentError(f"float_to_wire causes rounding: {x}")
    if rounded.startswith("-") and float(rounded) == 0.0:
        rounded = rounded[1:]  # never send negative zero: it changes the signed hash
    normalized = Decimal(rounded).normalize()
    return f"{normalized:f}"


class FeeOverrides(TypedDict, total=False):
    """The fee fields ``InstrumentRegistry.from_meta`` may override on every instrument it builds."""

    maker_fee: float
    taker_fee: float


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable perp: identity, precision, fees. All rounding goes through here."""

    coin: str
    asset: int
    sz_decimals: int
    max_decimals: int = MAX_DECIMALS_PERP
    min_order_value: float = MIN_ORDER_VALUE_USD
    maker_fee: float = DEFAULT_MAKER_FEE
    taker_fee: float = DEFAULT_TAKER_FEE
    max_leverage: int = 20

    def __post_init__(self) -> None:
        parse_coin(self.coin)
        if not 0 <= self.sz_decimals <= self.max_decimals:
            raise InstrumentError(f"szDecimals {self.sz_decimals} out of range 0..{self.max_decimals}")
        if self.asset < 0:
            raise InstrumentError(f"asset id must be >= 0, got {self.asset}")

    @property
    def dex(self) -> str:
        return parse_coin(self.coin).dex

    @property
    def price_decimals(self) -> int:
        return self.max_decimals - self.sz_decimals

    @property
    def lot(self) -> float:
        return 10.0**-self.sz_decimals

    # ---- prices -------------------------------------------------------
    # Float fast path, exact by construction: a grid value n / 10**d (both exact doubles) is computed by one
    # correctly rounded division, i.e. it is the double nearest the decimal price, the same double that
    # float("32.977") gives. Every candidate is then checked against ``px`` with exact float comparisons.
    def _decimals_at(self, px: float) -> int:
        """Allowed decimals at ``px``: min(6 - szDecimals, 5 sig figs), never negative (integers always valid)."""
        e = math.floor(math.log10(px))
        if 10.0**e > px:  # log10 can be off by one right at a power of ten
            e -= 1
        elif 10.0 ** (e + 1) <= px:
            e += 1
        return max(min(self.price_decimals, MAX_SIG_FIGS - 1 - e), 0)

    def tick_size(self, px: float) -> float:
        """Price increment at ``px`` (varies with magnitude because of the 5 significant figures rule)."""
        _check_positive_finite(px, "price", InvalidPriceError)
        return 10.0 ** -self._decimals_at(float(px))

    def is_valid_price(self, px: float) -> bool:
        try:
            _check_positive_finite(px, "price", InvalidPriceError)
        except InvalidPriceError:
            return False
        pxf = float(px)
        if pxf == int(pxf):
            return True
        scale = 10.0 ** self._decimals_at(pxf)
        return round(pxf * scale) / scale == pxf

    def _round_px(self, px: float, up: bool) -> float:
        _check_positive_finite(px, "price", InvalidPriceError)
        pxf = float(px)
        scale = 10.0 ** self._decimals_at(pxf)
        n = round(pxf * scale)
        out = n / scale
        if out != pxf:  # not on the grid: step to the correct side; the product above may be off by an ulp
            if up:
                while out < pxf:
                    n += 1
                    out = n / scale
                while n > 1 and (n - 1) / scale >= pxf:
                    n -= 1
                    out = n / scale
            else:
                while out > pxf:
                    n -= 1
                    out = n / scale
                while (n + 1) / scale <= pxf:
                    n += 1
                    out = n / scale
        if out <= 0:
            raise InvalidPriceError(f"price {px} rounds to zero")
        # Rounding up can land on a power of ten (9.99995 -> 10.0), which is valid on the coarser grid too.
        return out

    def round_bid(self, px: float) -> float:
        """Largest valid price <= px (a bid is never rounded towards the ask)."""
        return self._round_px(px, up=False)

    def round_ask(self, px: float) -> float:
        """Smallest valid price >= px (an ask is never rounded towards the bid)."""
        return self._round_px(px, up=True)

    def round_px(self, px: float, is_buy: bool) -> float:
        return self._round_px(px, up=not is_buy)

    def round_px_nearest(self, px: float) -> float:
        lo, hi = self.round_bid(px), self.round_ask(px)
        return lo if (px - lo) <= (hi - px) else hi

    def next_passive_px(self, px: float, is_buy: bool) -> float:
        """The next valid price strictly more passive than ``px`` (below for a bid, above for an ask)."""
        p = self.round_px(px, is_buy)
        if is_buy:
            nxt = math.nextafter(p, 0.0)
            if nxt <= 0:
                raise InvalidPriceError(f"no valid price below {p}")
            out = self.round_bid(nxt)
        else:
            out = self.round_ask(math.nextafter(p, math.inf))
        return out

    # ---- sizes --------------------------------------------------------
    def floor_size(self, sz: float) -> float:
        """Size floored to szDecimals (never rounds a size up). May return 0.0."""
        if isinstance(sz, bool) or not isinstance(sz, (int, float, Decimal)):
            raise InvalidSizeError(f"size must be a number, got {type(sz).__name__}")
        szf = float(sz)
        if math.isnan(szf) or math.isinf(szf) or szf < 0:
            raise InvalidSizeError(f"size must be finite and >= 0, got {sz}")
        scale = 10.0**self.sz_decimals
        if szf * scale >= 2.0**52:
            raise InvalidSizeError(f"size {sz} cannot be represented")
        n = math.floor(szf * scale)
        while n > 0 and n / scale > szf:
            n -= 1
        while (n + 1) / scale <= szf:
            n += 1
        return n / scale

    def is_valid_size(self, sz: float) -> bool:
        try:
            _check_positive_finite(sz, "size", InvalidSizeError)
        except InvalidSizeError:
            return False
        szf = float(sz)
        scale = 10.0**self.sz_decimals
        return round(szf * scale) / scale == szf

    # ---- notional, fees, wire ----------------------------------------
    def meets_min_value(self, px: float, sz: float) -> bool:
        # A tiny epsilon so that 10.000000000001 computed in float doesn't flip the answer.
        return px * sz >= self.min_order_value - 1e-9

    def min_size_at(self, px: float) -> float:
        """Smallest valid size whose notional at ``px`` meets the minimum order value."""
        _check_positive_finite(px, "price", InvalidPriceError)
        pxf = float(px)
        scale = 10.0**self.sz_decimals
        # Strict (no epsilon): we never generate an order whose notional is borderline.
        n = max(1, math.ceil(self.min_order_value / pxf * scale))
        while pxf * (n / scale) < self.min_order_value:
            n += 1
        while n > 1 and pxf * ((n - 1) / scale) >= self.min_order_value:
            n -= 1
        return n / scale

    def fee(self, notional: float, is_maker: bool) -> float:
        """Fee paid in USD (negative = rebate)."""
        return abs(notional) * (self.maker_fee if is_maker else self.taker_fee)

    def px_to_wire(self, px: float) -> str:
        if not self.is_valid_price(px):
            raise InvalidPriceError(
                f"{self.coin}: price {px} is not valid (max {MAX_SIG_FIGS} sig figs, {self.price_decimals} decimals)"
            )
        return float_to_wire(px)

    def sz_to_wire(self, sz: float) -> str:
        if not self.is_valid_size(sz):
            raise InvalidSizeError(f"{self.coin}: size {sz} is not valid (szDecimals={self.sz_decimals})")
        return float_to_wire(sz)

    def check_order(self, px: float, sz: float) -> str | None:
        """Exchange-side validation. Returns Hyperliquid's error text, or None when valid."""
        if not self.is_valid_price(px):
            return "Price must be divisible by tick size."
        if not self.is_valid_size(sz):
            return "Order has invalid size."
        if not self.meets_min_value(px, sz):
            return "Order must have minimum value of $10."
        return None


class InstrumentRegistry:
    """Known instruments by coin name, built from exchange meta or from defaults."""

    def __init__(self, instruments: list[Instrument] | None = None) -> None:
        self._by_coin: dict[str, Instrument] = {}
        self._by_asset: dict[int, Instrument] = {}
        for inst in instruments or []:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        self._by_coin[inst.coin] = inst
        self._by_asset[inst.asset] = inst

    def get(self, coin: str) -> Instrument:
        inst = self._by_coin.get(coin) if isinstance(coin, str) else None
        if inst is not None:  # hot path: called per order in the simulator
            return inst
        parse_coin(coin)  # a malformed name gets InvalidCoinError, a well-formed unknown one UnknownCoinError
        raise UnknownCoinError(f"unknown coin {coin!r}; known: {sorted(self._by_coin)}")

    def by_asset(self, asset: int) -> Instrument:
        try:
            return self._by_asset[asset]
        except KeyError:
            raise UnknownCoinError(f"unknown asset id {asset}") from None

    def __contains__(self, coin: object) -> bool:
        return coin in self._by_coin

    def coins(self) -> list[str]:
        return list(self._by_coin)

    @classmethod
    def from_meta(cls, meta: dict, dex_index: int = 0, **fees: Unpack[FeeOverrides]) -> InstrumentRegistry:
        """Build from an ``info`` meta reply (``{"universe":[{"name","szDecimals","maxLeverage"}]}``)."""
        reg = cls()
        reg.extend_from_meta(meta, dex_index, **fees)
        return reg

    def extend_from_meta(self, meta: dict, dex_index: int = 0, **fees: Unpack[FeeOverrides]) -> None:
        for i, u in enumerate(meta.get("universe", [])):
            if u.get("isDelisted"):
                continue
            self.add(
                Instrument(
                    coin=u["name"],
                    asset=asset_id(i, dex_index),
                    sz_decimals=int(u["szDecimals"]),
                    max_leverage=int(u.get("maxLeverage", 20)),
                    **fees,
                )
            )


def default_registry() -> InstrumentRegistry:
    """Embedded instruments for simulated markets (mainnet-like precision; HIP-3 dex 'hyna' at index 1)."""
    return InstrumentRegistry(
        [
            Instrument("BTC", 0, 5, max_leverage=40),
            Instrument("ETH", 1, 4, max_leverage=25),
            Instrument("HYPE", 159, 2, max_leverage=10),
            Instrument("hyna:HYPE", asset_id(0, 1), 2, max_leverage=10),
            Instrument("hyna:BTC", asset_id(1, 1), 5, max_leverage=20),
        ]
    )
