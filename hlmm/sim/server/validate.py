"""Boundary checks of the local exchange: every /exchange and /info body is checked here before it touches state.

Two kinds of bad input, answered the way Hyperliquid answers them:

- **Shape** (wrong JSON type, missing field, unknown TIF, malformed cloid/address, integer out of range): the body
  cannot be deserialized, so the whole request is refused with HTTP 422 ``Failed to deserialize the JSON body into
  the target type`` *before anything happens* (no nonce used, no budget charged, no order of the batch placed).
- **Value** inside a well-typed field (a price/size string that is not a positive finite decimal: ``"abc"``,
  ``""``, ``"nan"``, ``"1e400"``, ``"-1"``, ``"0"``): the action is processed and that order alone gets a
  per-order ``{"error": ...}`` status (``price_error`` / ``size_error`` below), the rest of the batch is unaffected.

Schemas cover the request types the core serves; a type not listed here is left to the core's own handler checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

MSG_DESERIALIZE = "Failed to deserialize the JSON body into the target type"
MSG_INVALID_PRICE = "Order has invalid price."
MSG_INVALID_SIZE = "Order has invalid size."

_U32 = 2**32 - 1
_U64 = 2**64 - 1
_TIFS = frozenset({"Alo", "Ioc", "Gtc"})
_GROUPINGS = frozenset({"na", "normalTpsl", "positionTpsl"})
_HEX_ADDR = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_CLOID = re.compile(r"0x[0-9a-fA-F]{32}")
_HEX = re.compile(r"(0x)?[0-9a-fA-F]{1,64}")
_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?")  # what float_to_wire emits: no sign, exponent or blanks


class ShapeError(ValueError):
    """The body does not deserialize into the request type (HTTP 422)."""


def _fail(where: str, what: str) -> None:
    raise ShapeError(f"{MSG_DESERIALIZE}: {where}: {what}")


def is_int(v: Any, hi: int = _U64) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= hi


def is_address(v: Any) -> bool:
    return isinstance(v, str) and _HEX_ADDR.fullmatch(v) is not None


def is_cloid(v: Any) -> bool:
    return isinstance(v, str) and _HEX_CLOID.fullmatch(v) is not None


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        _fail(where, f"expected an object, got {type(v).__name__}")
    return v


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        _fail(where, f"expected a list, got {type(v).__name__}")
    return v


def _req(d: dict, key: str, ok: Callable[[Any], bool], where: str, what: str) -> Any:
    if key not in d:
        _fail(where, f"missing field `{key}`")
    if not ok(d[key]):
        _fail(where, f"`{key}` must be {what}, got {d[key]!r:.60}")
    return d[key]


def _opt(d: dict, key: str, ok: Callable[[Any], bool], where: str, what: str) -> Any:
    v = d.get(key)
    if v is not None and not ok(v):
        _fail(where, f"`{key}` must be {what} or null, got {v!r:.60}")
    return v


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


# ---------------------------------------------------------------------------------------------------- /exchange
def order_wire(w: Any, where: str) -> None:
    """Shape of one order wire ``{a, b, p, s, r, t, c?}`` (values of ``p``/``s`` are checked per order later)."""
    w = _obj(w, where)
    _req(w, "a", lambda v: is_int(v, _U32), where, "an asset id (u32)")
    _req(w, "b", _is_bool, where, "a bool")
    _req(w, "p", _is_str, where, "a string")
    _req(w, "s", _is_str, where, "a string")
    _req(w, "r", _is_bool, where, "a bool")
    t = _obj(_req(w, "t", lambda v: isinstance(v, dict), where, "an object"), f"{where}.t")
    if len(t) != 1 or next(iter(t)) not in ("limit", "trigger"):
        _fail(f"{where}.t", "must be exactly one of `limit` or `trigger`")
    if "limit" in t:
        lim = _obj(t["limit"], f"{where}.t.limit")
        _req(lim, "tif", lambda v: v in _TIFS, f"{where}.t.limit", f"one of {sorted(_TIFS)}")
    else:
        trig = _obj(t["trigger"], f"{where}.t.trigger")
        _req(trig, "isMarket", _is_bool, f"{where}.t.trigger", "a bool")
        _req(trig, "triggerPx", _is_str, f"{where}.t.trigger", "a string")
        _req(trig, "tpsl", lambda v: v in ("tp", "sl"), f"{where}.t.trigger", "tp or sl")
    _opt(w, "c", is_cloid, where, "a cloid (0x + 32 hex)")


def _order_ref(v: Any) -> bool:
    return is_int(v) or is_cloid(v)


def _check_order(a: dict) -> None:
    for i, w in enumerate(_req(a, "orders", lambda v: isinstance(v, list), "order", "a list")):
        order_wire(w, f"orders[{i}]")
    g = a.get("grouping")
    if g is not None and not (g in _GROUPINGS or (isinstance(g, dict) and set(g) == {"p"} and is_int(g["p"]))):
        _fail("order", f"`grouping` must be one of {sorted(_GROUPINGS)} or {{p: int}}, got {g!r:.60}")
    b = a.get("builder")
    if b is not None:
        b = _obj(b, "order.builder")
        _req(b, "b", is_address, "order.builder", "an address")
        _req(b, "f", is_int, "order.builder", "an int")


def _check_cancel(a: dict) -> None:
    for i, c in enumerate(_req(a, "cancels", lambda v: isinstance(v, list), "cancel", "a list")):
        c = _obj(c, f"cancels[{i}]")
        _req(c, "a", lambda v: is_int(v, _U32), f"cancels[{i}]", "an asset id (u32)")
        _req(c, "o", is_int, f"cancels[{i}]", "an oid (u64)")


def _check_cancel_by_cloid(a: dict) -> None:
    for i, c in enumerate(_req(a, "cancels", lambda v: isinstance(v, list), "cancelByCloid", "a list")):
        c = _obj(c, f"cancels[{i}]")
        _req(c, "asset", lambda v: is_int(v, _U32), f"cancels[{i}]", "an asset id (u32)")
        _req(c, "cloid", is_cloid, f"cancels[{i}]", "a cloid (0x + 32 hex)")


def _check_modify(a: dict) -> None:
    _req(a, "oid", _order_ref, "modify", "an oid or a cloid")
    order_wire(a.get("order"), "modify.order")


def _check_batch_modify(a: dict) -> None:
    for i, m in enumerate(_req(a, "modifies", lambda v: isinstance(v, list), "batchModify", "a list")):
        m = _obj(m, f"modifies[{i}]")
        _req(m, "oid", _order_ref, f"modifies[{i}]", "an oid or a cloid")
        order_wire(m.get("order"), f"modifies[{i}].order")


def _check_schedule_cancel(a: dict) -> None:
    _opt(a, "time", is_int, "scheduleCancel", "a time in ms")


def _check_update_leverage(a: dict) -> None:
    _req(a, "asset", lambda v: is_int(v, _U32), "updateLeverage", "an asset id (u32)")
    _req(a, "isCross", _is_bool, "updateLeverage", "a bool")
    _req(a, "leverage", lambda v: is_int(v, _U32), "updateLeverage", "an int")


def _check_approve_agent(a: dict) -> None:
    _req(a, "agentAddress", is_address, "approveAgent", "an address")
    _opt(a, "agentName", _is_str, "approveAgent", "a string")
    _req(a, "hyperliquidChain", _is_str, "approveAgent", "a string")
    _req(a, "signatureChainId", _is_str, "approveAgent", "a string")
    _req(a, "nonce", is_int, "approveAgent", "an int")


_ACTIONS: dict[str, Callable[[dict], None]] = {
    "order": _check_order,
    "cancel": _check_cancel,
    "cancelByCloid": _check_cancel_by_cloid,
    "modify": _check_modify,
    "batchModify": _check_batch_modify,
    "scheduleCancel": _check_schedule_cancel,
    "updateLeverage": _check_update_leverage,
    "noop": lambda a: None,
    "approveAgent": _check_approve_agent,
}


def exchange_body(body: Any) -> None:
    """Raise ShapeError unless ``body`` is a well-formed signed action of a type the exchange knows the shape of
    (an unknown ``type`` passes: the core answers it with its own error)."""
    body = _obj(body, "body")
    action = _obj(_req(body, "action", lambda v: isinstance(v, dict), "body", "an object"), "action")
    _req(body, "nonce", is_int, "body", "a nonce (u64)")
    sig = _obj(_req(body, "signature", lambda v: isinstance(v, dict), "body", "an object"), "signature")
    for k in ("r", "s"):
        _req(sig, k, lambda v: isinstance(v, str) and _HEX.fullmatch(v) is not None, "signature", "a hex string")
    _req(sig, "v", lambda v: is_int(v, 255), "signature", "an int")
    _opt(body, "vaultAddress", is_address, "body", "an address")
    _opt(body, "expiresAfter", is_int, "body", "a time in ms")
    atype = _req(action, "type", _is_str, "action", "a string")
    check = _ACTIONS.get(atype)
    if check is not None:
        check(action)


def _decimal(text: str) -> float | None:
    """A positive finite number from a decimal string, else None."""
    if _DECIMAL.fullmatch(text) is None:
        return None
    try:
        x = float(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def price_error(p: str) -> tuple[float | None, str | None]:
    """(price, None) or (None, per-order error text)."""
    x = _decimal(p)
    return (x, None) if x is not None else (None, MSG_INVALID_PRICE)


def size_error(s: str) -> tuple[float | None, str | None]:
    """(size, None) or (None, per-order error text)."""
    x = _decimal(s)
    return (x, None) if x is not None else (None, MSG_INVALID_SIZE)


# ---------------------------------------------------------------------------------------------------- /info
def _user(b: dict, t: str) -> None:
    _req(b, "user", is_address, t, "an address (0x + 40 hex)")


def _dex(b: dict, t: str) -> None:
    _opt(b, "dex", _is_str, t, "a string")


def _coin(b: dict, t: str) -> None:
    _req(b, "coin", _is_str, t, "a string")


def _check_l2book(b: dict) -> None:
    _coin(b, "l2Book")
    nsf = _opt(b, "nSigFigs", lambda v: is_int(v) and v in (2, 3, 4, 5), "l2Book", "2, 3, 4 or 5")
    m = _opt(b, "mantissa", lambda v: is_int(v) and v in (1, 2, 5), "l2Book", "1, 2 or 5")
    if m is not None and nsf != 5:
        _fail("l2Book", "`mantissa` is only allowed with nSigFigs 5")


def _check_candles(b: dict) -> None:
    from hlmm.sim.server.core import _INTERVALS_MS  # the intervals the core serves

    req = _obj(_req(b, "req", lambda v: isinstance(v, dict), "candleSnapshot", "an object"), "candleSnapshot.req")
    _coin(req, "candleSnapshot.req")
    _req(req, "interval", lambda v: v in _INTERVALS_MS, "candleSnapshot.req", f"one of {sorted(_INTERVALS_MS)}")
    _req(req, "startTime", is_int, "candleSnapshot.req", "a time in ms")
    _opt(req, "endTime", is_int, "candleSnapshot.req", "a time in ms")


def _check_fills_by_time(b: dict) -> None:
    _user(b, "userFillsByTime")
    _req(b, "startTime", is_int, "userFillsByTime", "a time in ms")
    _opt(b, "endTime", is_int, "userFillsByTime", "a time in ms")
    _opt(b, "aggregateByTime", _is_bool, "userFillsByTime", "a bool")


def _user_dex(t: str) -> Callable[[dict], None]:
    def check(b: dict) -> None:
        _user(b, t)
        _dex(b, t)

    return check


def _check_user_fills(b: dict) -> None:
    _user(b, "userFills")
    _opt(b, "aggregateByTime", _is_bool, "userFills", "a bool")


def _check_order_status(b: dict) -> None:
    _user(b, "orderStatus")
    _req(b, "oid", _order_ref, "orderStatus", "an oid or a cloid")


def _check_active_asset_data(b: dict) -> None:
    _user(b, "activeAssetData")
    _coin(b, "activeAssetData")


_INFO: dict[str, Callable[[dict], None]] = {
    "meta": lambda b: _dex(b, "meta"),
    "metaAndAssetCtxs": lambda b: _dex(b, "metaAndAssetCtxs"),
    "allMids": lambda b: _dex(b, "allMids"),
    "perpDexs": lambda b: None,
    "spotMeta": lambda b: None,
    "exchangeStatus": lambda b: None,
    "l2Book": _check_l2book,
    "clearinghouseState": _user_dex("clearinghouseState"),
    "openOrders": _user_dex("openOrders"),
    "frontendOpenOrders": _user_dex("frontendOpenOrders"),
    "userFills": _check_user_fills,
    "userFillsByTime": _check_fills_by_time,
    "userRateLimit": lambda b: _user(b, "userRateLimit"),
    "userFees": lambda b: _user(b, "userFees"),
    "orderStatus": _check_order_status,
    "candleSnapshot": _check_candles,
    "activeAssetData": _check_active_asset_data,
    "recentTrades": lambda b: _coin(b, "recentTrades"),
}


def info_body(body: Any) -> None:
    """Raise ShapeError unless ``body`` is a well-formed info request (types without a schema pass)."""
    body = _obj(body, "body")
    t = _req(body, "type", _is_str, "body", "a string")
    check = _INFO.get(t)
    if check is not None:
        check(body)
