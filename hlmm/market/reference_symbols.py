"""Which Binance USD-M symbol is the same asset as a Hyperliquid coin: the one place every mode (backtest, paper,
live, record) resolves the cross-venue reference. Pure: no I/O.

There is never a default symbol (failure #3 was a feed hard-wired to ``btcusdt`` while trading HYPE):

1. ``reference.binance_symbol`` set explicitly wins if it is the coin's own asset (see :func:`reference_mismatch`);
   any other symbol is refused unless ``reference.allow_mismatch = true``; ``"off"`` disables the feed.
2. Otherwise a coin on the first dex maps through :data:`BINANCE_SYMBOLS`, assets with a real Binance USD-M
   equivalent of the *same* underlying and the same unit (``kPEPE`` is 1000 PEPE: not mapped).
3. A HIP-3 coin (``dex:COIN``) maps only through :data:`HIP3_SAME_UNDERLYING`, an explicit list of HIP-3 markets
   known to track the same asset (any deployer may list a "BTC" with its own oracle, so the name proves nothing).
4. Anything else: the feed is off, and the reason says how to turn it on.
"""

from __future__ import annotations

from typing import Any

from hlmm.market.instrument import parse_coin


class BinanceFeedError(ValueError):
    """Bad feed set-up (empty symbol, bad URL)."""


# First-dex Hyperliquid coin -> Binance USD-M perpetual of the same asset (same unit). Deliberately short.
BINANCE_SYMBOLS: dict[str, str] = {
    "BTC": "btcusdt",
    "ETH": "ethusdt",
    "SOL": "solusdt",
    "XRP": "xrpusdt",
    "DOGE": "dogeusdt",
    "BNB": "bnbusdt",
    "AVAX": "avaxusdt",
    "LINK": "linkusdt",
    "LTC": "ltcusdt",
    "ADA": "adausdt",
    "SUI": "suiusdt",
}

# HIP-3 markets whose underlying is the same asset as the Binance symbol. Add entries only after checking the
# deployer's oracle tracks that asset. HYPE is not here: no Binance symbol is assumed for it.
HIP3_SAME_UNDERLYING: dict[str, str] = {
    "hyna:BTC": "btcusdt",
    "hyna:ETH": "ethusdt",
    "hyna:SOL": "solusdt",
}


def known_equivalent(coin: str) -> str | None:
    """The Binance symbol known to quote the same asset in the same unit as ``coin``, or None."""
    c = parse_coin(coin)
    return HIP3_SAME_UNDERLYING.get(c.name) if c.dex else BINANCE_SYMBOLS.get(c.base)


def reference_mismatch(coin: str, symbol: str) -> str | None:
    """Why an explicit reference ``symbol`` is not ``coin``'s own asset, or None when it is.

    Accepted without ``reference.allow_mismatch``: the mapping tables' symbol; for a first-dex coin the tables do
    not list, its same-name USD-M perpetual (``<coin>usdt``/``<coin>usdc``, e.g. HYPE -> hypeusdt). A HIP-3 coin
    off the table has no accepted symbol: its deployer's oracle decides what it tracks, its name proves nothing.
    """
    symbol = symbol.strip().lower()
    if symbol == "off":
        return None
    c = parse_coin(coin)
    known = known_equivalent(coin)
    if known is not None:
        if symbol == known:
            return None
        return f"{coin} is known to track Binance {known!r}, not {symbol!r}"
    if not c.dex and symbol in (c.base.lower() + "usdt", c.base.lower() + "usdc"):
        return None
    if c.dex:
        return f"{coin} is a HIP-3 market not known to track Binance {symbol!r} (its name proves nothing)"
    return f"{symbol!r} is not {coin}'s same-name Binance perpetual"


def resolve_binance_symbol(coin: str, cfg: Any = None) -> tuple[str | None, str]:
    """(symbol or None, why). ``cfg`` is a CoinConfig, a ReferenceParams, or None (auto).

    An explicit symbol that is not the coin's own asset raises :class:`BinanceFeedError` unless
    ``reference.allow_mismatch`` is true (failure #3: HYPE quoted off ``btcusdt``)."""
    ref = getattr(cfg, "reference", cfg)
    explicit = getattr(ref, "binance_symbol", None) if ref is not None else None
    c = parse_coin(coin)
    if explicit is not None:
        explicit = explicit.strip().lower()
        if explicit == "off":
            return None, f"{coin}: reference feed disabled by config (reference.binance_symbol = 'off')"
        why_not = reference_mismatch(coin, explicit)
        if why_not is not None:
            if not getattr(ref, "allow_mismatch", False):
                raise BinanceFeedError(f"{coin}: reference.binance_symbol = {explicit!r} refused: {why_not}; "
                                       "set reference.allow_mismatch = true if this is deliberate")
            return explicit, f"{coin}: explicit reference.binance_symbol = {explicit!r} (allowed mismatch: {why_not})"
        return explicit, f"{coin}: explicit reference.binance_symbol = {explicit!r}"
    sym = known_equivalent(coin)
    if c.dex:
        if sym is not None:
            return sym, f"{coin}: HIP-3 market with the same underlying as Binance {sym!r} (mapping table)"
        return None, (f"{coin}: HIP-3 market not known to track a Binance asset; feed off "
                      "(set reference.binance_symbol to enable)")
    if sym is not None:
        return sym, f"{coin}: same asset as Binance {sym!r} (mapping table)"
    return None, f"{coin}: no known Binance equivalent; feed off (set reference.binance_symbol to enable)"
