"""Hyperliquid action dicts, built exactly as the SDK builds them.

Key order and value types are part of the signed msgpack bytes: ``{"a":..,"b":..}`` and ``{"b":..,"a":..}`` hash
differently, as do ``1`` and ``1.0`` or ``True`` and ``1``. Every builder therefore checks types strictly and emits
keys in the SDK's order. Prices and sizes are formatted only by ``Instrument.px_to_wire``/``sz_to_wire``.
"""

from __future__ import annotations

import re
import secrets

from hlmm.market.instrument import Instrument
from hlmm.venue.base import PlaceOrder, Tif

__all__ = [
    "WireError",
    "batch_modify_action",
    "cancel_action",
    "cancel_by_cloid_action",
    "cloid_from_int",
    "new_cloid",
    "noop_action",
    "normalize_cloid",
    "order_action",
    "order_to_wire",
    "schedule_cancel_action",
    "update_leverage_action",
]

_CLOID_RE = re.compile(r"^0x[0-9a-f]{32}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_U64 = 1 << 64
_GROUPINGS = frozenset({"na", "normalTpsl", "positionTpsl"})
_TIFS = frozenset(t.value for t in Tif)


class WireError(ValueError):
    """Input that would produce a malformed or mis-hashed action."""


def _int(x: object, what: str, lo: int = 0, hi: int = _U64) -> int:
    # bool is an int subclass and numpy ints are not ints: both would change or break the msgpack bytes.
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x < hi:
        raise WireError(f"{what} must be an int in [{lo}, {hi}), got {x!r}")
    return x


def _bool(x: object, what: str) -> bool:
    if not isinstance(x, bool):
        raise WireError(f"{what} must be a bool, got {x!r}")
    return x


def normalize_cloid(cloid: object) -> str:
    """A cloid as it is signed: ``0x`` + 32 lower-case hex digits, returned unchanged.

    The SDK signs a cloid's text as given (``Cloid.to_raw`` keeps its case; msgpack packs the string), so
    ``0xAB..`` and ``0xab..`` hash differently. Lower-casing here would sign bytes the SDK would not, and keeping
    the case would sign an order the exchange (which reads the cloid as 16 bytes) may hash differently. So any
    other case is refused: every cloid we create is lower-case, and the ones the exchange reports are lower-cased
    on the way in (``validate.cloid``).
    """
    if not isinstance(cloid, str) or not _CLOID_RE.match(cloid):
        if isinstance(cloid, str) and _CLOID_RE.match(cloid.lower()):
            raise WireError(f"cloid must be lower-case hex (the SDK signs its case as given), got {cloid!r}: "
                            "use cloid.lower()")
        raise WireError(f"cloid must be '0x' followed by 32 lower-case hex digits, got {cloid!r}")
    return cloid


def new_cloid() -> str:
    """A random client order id."""
    return "0x" + secrets.token_hex(16)


def cloid_from_int(n: int) -> str:
    """Client order id for integer ``n`` (same text as the SDK's ``Cloid.from_int``)."""
    return f"0x{_int(n, 'cloid int', 0, 1 << 128):032x}"


# ---- orders ------------------------------------------------------------------
def order_to_wire(inst: Instrument, o: PlaceOrder) -> dict:
    """Order wire ``{"a","b","p","s","r","t"[,"c"]}`` for a limit order; price/size validated by ``inst``."""
    if o.coin != inst.coin:
        raise WireError(f"order for {o.coin!r} passed with instrument {inst.coin!r}")
    tif = o.tif.value if isinstance(o.tif, Tif) else o.tif
    if tif not in _TIFS:
        raise WireError(f"tif must be one of {sorted(_TIFS)}, got {o.tif!r}")
    wire = {
        "a": _int(inst.asset, "asset"),
        "b": _bool(o.is_buy, "is_buy"),
        "p": inst.px_to_wire(o.px),
        "s": inst.sz_to_wire(o.sz),
        "r": _bool(o.reduce_only, "reduce_only"),
        "t": {"limit": {"tif": str(tif)}},
    }
    if o.cloid:
        wire["c"] = normalize_cloid(o.cloid)
    return wire


def _check_order_wire(w: object, what: str) -> dict:
    if not isinstance(w, dict) or list(w)[:6] != ["a", "b", "p", "s", "r", "t"] or not set(w) <= {*"abpsrt", "c"}:
        raise WireError(f"{what} is not an order wire (keys a,b,p,s,r,t[,c] in that order): {w!r}")
    return w


def order_action(wires: list[dict], grouping: str | dict = "na", builder: dict | None = None) -> dict:
    """``{"type":"order","orders":[...],"grouping":..[,"builder":{"b","f"}]}``."""
    if not wires:
        raise WireError("an order action needs at least one order (the exchange rejects empty batches)")
    orders = [_check_order_wire(w, f"orders[{i}]") for i, w in enumerate(wires)]
    if isinstance(grouping, dict):
        if list(grouping) != ["p"]:
            raise WireError(f"priority grouping must be {{'p': int}}, got {grouping!r}")
        grouping = {"p": _int(grouping["p"], "grouping priority")}
    elif grouping not in _GROUPINGS:
        raise WireError(f"grouping must be one of {sorted(_GROUPINGS)} or {{'p': int}}, got {grouping!r}")
    action: dict = {"type": "order", "orders": orders, "grouping": grouping}
    if builder:
        b = builder.get("b")
        if not isinstance(b, str) or not _ADDR_RE.match(b) or set(builder) != {"b", "f"}:
            raise WireError(f"builder must be {{'b': '0x<40 hex>', 'f': int}}, got {builder!r}")
        action["builder"] = {"b": b.lower(), "f": _int(builder["f"], "builder fee")}
    return action


# ---- cancels and modifies ----------------------------------------------------------
def cancel_action(items: list[tuple[int, int]]) -> dict:
    """``{"type":"cancel","cancels":[{"a":asset,"o":oid}]}``."""
    if not items:
        raise WireError("a cancel action needs at least one (asset, oid)")
    return {
        "type": "cancel",
        "cancels": [{"a": _int(a, "asset"), "o": _int(o, "oid")} for a, o in items],
    }


def cancel_by_cloid_action(items: list[tuple[int, str]]) -> dict:
    """``{"type":"cancelByCloid","cancels":[{"asset":asset,"cloid":"0x.."}]}``."""
    if not items:
        raise WireError("a cancelByCloid action needs at least one (asset, cloid)")
    return {
        "type": "cancelByCloid",
        "cancels": [{"asset": _int(a, "asset"), "cloid": normalize_cloid(c)} for a, c in items],
    }


def batch_modify_action(items: list[tuple[int | str, dict]]) -> dict:
    """``{"type":"batchModify","modifies":[{"oid": oid | "0xcloid", "order": wire}]}``."""
    if not items:
        raise WireError("a batchModify action needs at least one (oid or cloid, order wire)")
    modifies = []
    for i, (ref, wire) in enumerate(items):
        oid: int | str = normalize_cloid(ref) if isinstance(ref, str) else _int(ref, f"modifies[{i}].oid")
        modifies.append({"oid": oid, "order": _check_order_wire(wire, f"modifies[{i}].order")})
    return {"type": "batchModify", "modifies": modifies}


# ---- account actions ---------------------------------------------------------------
def schedule_cancel_action(time_ms: int | None) -> dict:
    """Dead man's switch at ``time_ms`` (exchange requires >= now + 5 s); None clears it."""
    action: dict = {"type": "scheduleCancel"}
    if time_ms is not None:
        action["time"] = _int(time_ms, "scheduleCancel time")
    return action


def update_leverage_action(asset: int, is_cross: bool, leverage: int) -> dict:
    """``{"type":"updateLeverage","asset","isCross","leverage"}``."""
    return {
        "type": "updateLeverage",
        "asset": _int(asset, "asset"),
        "isCross": _bool(is_cross, "is_cross"),
        "leverage": _int(leverage, "leverage", 1, 1001),
    }


def noop_action() -> dict:
    """Burns a nonce (invalidates an in-flight action signed with it)."""
    return {"type": "noop"}
