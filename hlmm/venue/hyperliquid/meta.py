"""Resolve coins (``BTC``, ``hyna:HYPE``) to instruments from the exchange's own metadata.

``perpDexs`` lists the perp dexes; the list position is the dex index and ``null`` is the first dex. Each dex's
``meta`` gives its universe; the asset id is ``index`` on the first dex and ``100000 + dex_index*10000 + index``
on HIP-3 dexes. HIP-3 positive fees are scaled by the deployer's fee scale ``s`` (x(1+s) if s < 1 else x2s);
rebates (negative fees) are not scaled. The scale is not in ``perpDexs``, so it is configurable per dex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hlmm.market.instrument import (
    DEFAULT_MAKER_FEE,
    DEFAULT_TAKER_FEE,
    Instrument,
    InstrumentError,
    InstrumentRegistry,
    UnknownCoinError,
    asset_id,
    parse_coin,
)


class MetaError(ValueError):
    """Metadata that cannot resolve the requested coins (unknown dex, unknown coin, malformed reply)."""


def hip3_fee(base_fee: float, scale: float) -> float:
    """Fee on a HIP-3 dex with deployer fee scale ``scale`` in [0, 3]; rebates are unscaled."""
    if not 0.0 <= scale <= 3.0:
        raise MetaError(f"HIP-3 fee scale must be in [0, 3], got {scale}")
    if base_fee <= 0:
        return base_fee
    return base_fee * (1.0 + scale if scale < 1.0 else 2.0 * scale)


def dex_indices(perp_dexs: Any) -> dict[str, int]:
    """``{"": 0, "hyna": 1, ...}`` from a ``perpDexs`` reply."""
    if not isinstance(perp_dexs, list):
        raise MetaError(f"perpDexs reply must be a list, got {type(perp_dexs).__name__}")
    out: dict[str, int] = {}
    for i, d in enumerate(perp_dexs):
        if d is None:
            out.setdefault("", i)
            continue
        name = d.get("name") if isinstance(d, dict) else None
        if not isinstance(name, str) or not name:
            raise MetaError(f"perpDexs[{i}] has no name: {d!r:.200}")
        out[name] = i
    out.setdefault("", 0)
    return out


def instruments_from_meta(
    meta: Any, dex: str, dex_index: int, *, maker_fee: float = DEFAULT_MAKER_FEE,
    taker_fee: float = DEFAULT_TAKER_FEE, fee_scale: float = 1.0,
) -> list[Instrument]:
    """Instruments of one dex's ``meta`` reply (delisted assets keep their index but are skipped)."""
    uni = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(uni, list):
        raise MetaError(f"meta for dex {dex!r} has no universe list")
    if dex:
        maker_fee, taker_fee = hip3_fee(maker_fee, fee_scale), hip3_fee(taker_fee, fee_scale)
    out: list[Instrument] = []
    for i, u in enumerate(uni):
        if not isinstance(u, dict) or "name" not in u or "szDecimals" not in u:
            raise MetaError(f"meta[{dex!r}].universe[{i}] malformed: {u!r:.200}")
        if u.get("isDelisted"):
            continue
        name = str(u["name"])
        if dex and not name.startswith(f"{dex}:"):
            name = f"{dex}:{name}"  # meta with a dex already prefixes names; be tolerant of servers that don't
        try:
            out.append(Instrument(coin=name, asset=asset_id(i, dex_index), sz_decimals=int(u["szDecimals"]),
                                  max_leverage=int(u.get("maxLeverage", 20)), maker_fee=maker_fee,
                                  taker_fee=taker_fee))
        except InstrumentError as e:
            raise MetaError(f"meta[{dex!r}].universe[{i}] {name!r}: {e}") from None
    return out


def build_registry(
    coins: Iterable[str], perp_dexs: Any, metas: Mapping[str, Any], *, maker_fee: float = DEFAULT_MAKER_FEE,
    taker_fee: float = DEFAULT_TAKER_FEE, hip3_fee_scale: float | Mapping[str, float] = 1.0,
) -> InstrumentRegistry:
    """Registry holding every instrument of the dexes of ``coins``; raises MetaError if a coin is missing."""
    idx = dex_indices(perp_dexs)
    reg = InstrumentRegistry()
    wanted = [parse_coin(c) for c in coins]
    for dex in sorted({c.dex for c in wanted}):
        if dex not in idx:
            raise MetaError(f"dex {dex!r} not in perpDexs (known: {sorted(k for k in idx if k)})")
        if dex not in metas:
            raise MetaError(f"no meta fetched for dex {dex!r}")
        scale = hip3_fee_scale.get(dex, 1.0) if isinstance(hip3_fee_scale, Mapping) else hip3_fee_scale
        for inst in instruments_from_meta(metas[dex], dex, idx[dex], maker_fee=maker_fee, taker_fee=taker_fee,
                                          fee_scale=scale):
            reg.add(inst)
    for c in wanted:
        if c.name not in reg:
            raise MetaError(f"coin {c.name!r} not listed on dex {c.dex or '<first>'!r}")
    return reg


async def resolve_registry(
    info: Any, coins: Iterable[str], *, maker_fee: float = DEFAULT_MAKER_FEE, taker_fee: float = DEFAULT_TAKER_FEE,
    hip3_fee_scale: float | Mapping[str, float] = 1.0,
) -> InstrumentRegistry:
    """Fetch ``perpDexs`` and ``meta(dex)`` for each needed dex from an InfoClient and build the registry."""
    coins = list(coins)
    dexes = sorted({parse_coin(c).dex for c in coins})
    perp_dexs = await info.perp_dexs() if any(dexes) else [None]
    metas = {d: await info.meta(d) for d in dexes}
    return build_registry(coins, perp_dexs, metas, maker_fee=maker_fee, taker_fee=taker_fee,
                          hip3_fee_scale=hip3_fee_scale)


__all__ = ["MetaError", "UnknownCoinError", "build_registry", "dex_indices", "hip3_fee", "instruments_from_meta",
           "resolve_registry"]
