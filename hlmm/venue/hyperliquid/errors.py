"""Typed Hyperliquid errors and the parsing of /exchange replies into per-order / per-cancel results.

Reply shapes (see ``../shared/reference/hyperliquid-api.md`` §3)::

    {"status":"ok","response":{"type":"order","data":{"statuses":[S, ...]}}}
    S = {"resting":{"oid":..,"cloid"?}} | {"filled":{"totalSz","avgPx","oid","cloid"?}} | {"error":"<text>"}
        | "waitingForFill" | "waitingForTrigger"
    {"status":"ok","response":{"type":"cancel","data":{"statuses":["success" | {"error":"..."}]}}}
    {"status":"err","response":"<text>"}          # the whole action failed

Error texts are matched by prefix (live strings often append `` asset=<id>``). A statuses list shorter than the
batch is legal (deterministic payload errors are reported once for the whole batch): the missing entries take the
last error, or an explicit "no status" error if there is none - never a silent success.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from hlmm.venue.base import RejectReason


# ---- exceptions ---------------------------------------------------------------------------------------------
class HyperliquidError(Exception):
    """Base class of every error raised by the Hyperliquid REST/WS clients."""


class TransportError(HyperliquidError):
    """Connection failed, timed out or was closed before a reply: the request MAY have reached the exchange."""


class RequestTimeout(TransportError):
    """No reply within the timeout."""


class RateLimitError(HyperliquidError):
    """HTTP 429 (IP weight) or the address request budget ("Too many cumulative requests")."""


class ServerError(HyperliquidError):
    """HTTP 5xx."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"server error HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class ClientError(HyperliquidError):
    """HTTP 4xx other than 429 (malformed request)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"client error HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class ActionError(HyperliquidError):
    """``{"status":"err","response":"<text>"}``: the whole action was refused. ``reason`` classifies the text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = classify_error(message)


class ResponseFormatError(HyperliquidError):
    """A reply that does not have Hyperliquid's shape."""


# ---- error text -> RejectReason ---------------------------------------------------------------------------
# Ordered prefix / substring table. Prefixes are the documented texts; substrings catch variants.
_PREFIXES: tuple[tuple[str, RejectReason], ...] = (
    ("post only order would have immediately matched", RejectReason.POST_ONLY_CROSS),
    ("price must be divisible by tick size", RejectReason.TICK),
    ("order must have minimum value", RejectReason.MIN_VALUE),
    ("order has invalid size", RejectReason.SIZE),
    ("order has zero size", RejectReason.SIZE),
    ("insufficient margin", RejectReason.MARGIN),
    ("order would cause position to exceed margin tier limit", RejectReason.MARGIN),
    ("reduce only order would increase position", RejectReason.REDUCE_ONLY),
    ("order could not immediately match", RejectReason.IOC_NO_MATCH),
    ("order price too far from oracle", RejectReason.PRICE_BAND),
    ("order price cannot be more than", RejectReason.PRICE_BAND),
    ("order would increase open interest while open interest is capped", RejectReason.OPEN_INTEREST_CAP),
    ("too many cumulative requests", RejectReason.RATE_LIMIT),
    ("invalid nonce", RejectReason.NONCE),
    ("order was never placed, already canceled, or filled", RejectReason.UNKNOWN_ORDER),
    ("cannot modify canceled or filled order", RejectReason.UNKNOWN_ORDER),
)
_SUBSTRINGS: tuple[tuple[str, RejectReason], ...] = (
    ("rate limit", RejectReason.RATE_LIMIT),
    ("open interest", RejectReason.OPEN_INTEREST_CAP),
    ("nonce", RejectReason.NONCE),
    ("margin", RejectReason.MARGIN),
    ("tick size", RejectReason.TICK),
    ("away from the reference price", RejectReason.PRICE_BAND),
)
_BBO_RE = re.compile(r"bbo was\s+(?P<bid>[0-9.]+|None|null)?\s*@\s*(?P<ask>[0-9.]+|None|null)?")


def classify_error(text: str) -> RejectReason:
    """Map a Hyperliquid error text to a RejectReason (prefix first, then known substrings, else UNKNOWN)."""
    t = text.strip().lower() if isinstance(text, str) else ""
    for p, r in _PREFIXES:
        if t.startswith(p):
            return r
    for s, r in _SUBSTRINGS:
        if s in t:
            return r
    return RejectReason.UNKNOWN


def parse_post_only_bbo(text: str) -> tuple[float | None, float | None] | None:
    """The ``bestBid@bestAsk`` carried by a post-only rejection (``... bbo was 64143@64144. asset=0``), or None."""
    m = _BBO_RE.search(text or "")
    if m is None:
        return None

    def f(x: str | None) -> float | None:
        if x is None or x in ("None", "null"):
            return None
        try:
            return float(x.rstrip("."))
        except ValueError:
            return None

    bid, ask = f(m.group("bid")), f(m.group("ask"))
    if bid is None and ask is None:
        return None
    return bid, ask


# ---- typed results ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderResult:
    """Outcome of one order (or modify) in a batch."""

    kind: Literal["resting", "filled", "error", "waiting"]
    oid: int | None = None
    cloid: str | None = None
    total_sz: float = 0.0
    avg_px: float = 0.0
    error: str | None = None
    reason: RejectReason | None = None
    bbo: tuple[float | None, float | None] | None = None  # for post-only rejections

    @property
    def ok(self) -> bool:
        return self.kind != "error"


@dataclass(frozen=True, slots=True)
class CancelResult:
    ok: bool
    error: str | None = None
    reason: RejectReason | None = None


def error_result(text: str) -> OrderResult:
    reason = classify_error(text)
    bbo = parse_post_only_bbo(text) if reason == RejectReason.POST_ONLY_CROSS else None
    return OrderResult("error", error=text, reason=reason, bbo=bbo)


def _response_data(resp: Any, expected_type: str | tuple[str, ...]) -> Any:
    """Check the envelope; raise ActionError on ``status:"err"``; return ``response.data``."""
    if not isinstance(resp, dict):
        raise ResponseFormatError(f"reply must be an object, got {type(resp).__name__}: {resp!r:.200}")
    status = resp.get("status")
    if status == "err":
        msg = resp.get("response")
        text = msg if isinstance(msg, str) else repr(msg)
        if classify_error(text) == RejectReason.RATE_LIMIT:
            raise RateLimitError(text)
        raise ActionError(text)
    if status != "ok":
        raise ResponseFormatError(f"unknown reply status {status!r}: {resp!r:.200}")
    r = resp.get("response")
    types = (expected_type,) if isinstance(expected_type, str) else expected_type
    if not isinstance(r, dict) or r.get("type") not in types:
        raise ResponseFormatError(f"expected a {'/'.join(types)} response, got {r!r:.200}")
    return r.get("data")


def _statuses(data: Any) -> list[Any]:
    st = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(st, list):
        raise ResponseFormatError(f"response data has no statuses list: {data!r:.200}")
    return st


def _order_status(s: Any) -> OrderResult:
    if isinstance(s, str):
        if s in ("waitingForFill", "waitingForTrigger"):
            return OrderResult("waiting")
        if s == "success":  # some batchModify replies (UNCONFIRMED shape) report plain success
            return OrderResult("waiting")
        return error_result(s)
    if not isinstance(s, dict) or len(s) != 1:
        raise ResponseFormatError(f"bad order status {s!r:.200}")
    (k, v), = s.items()
    if k == "error":
        return error_result(str(v))
    if k in ("resting", "filled"):
        if not isinstance(v, dict) or isinstance(v.get("oid"), bool) or not isinstance(v.get("oid"), int):
            raise ResponseFormatError(f"bad {k} status {s!r:.200}")
        cloid = v.get("cloid")
        if k == "resting":
            return OrderResult("resting", oid=v["oid"], cloid=cloid)
        try:
            return OrderResult("filled", oid=v["oid"], cloid=cloid, total_sz=float(v["totalSz"]),
                               avg_px=float(v["avgPx"]))
        except (KeyError, TypeError, ValueError):
            raise ResponseFormatError(f"bad filled status {s!r:.200}") from None
    raise ResponseFormatError(f"unknown order status {s!r:.200}")


def _pad(results: list[Any], n: int, filler: Any) -> list[Any]:
    return results + [filler] * (n - len(results))


def parse_order_response(resp: Any, n: int) -> list[OrderResult]:
    """Per-order results of an ``order`` or ``batchModify`` action of ``n`` orders (always ``n`` results).

    ``status:"err"`` raises ActionError (RateLimitError for the address budget). A short statuses list is padded
    with its last error (the batch-level error) or a synthetic "no status" error."""
    data = _response_data(resp, ("order", "batchModify", "modify", "default"))
    if data is None:  # e.g. {"type":"default"} for a modify: no per-order information
        return [OrderResult("waiting")] * n
    st = [_order_status(s) for s in _statuses(data)]
    if len(st) > n:
        raise ResponseFormatError(f"{len(st)} statuses for a batch of {n}")
    if len(st) < n:
        errs = [r for r in st if r.kind == "error"]
        filler = errs[-1] if errs else error_result(f"no status returned for this order ({len(st)} of {n})")
        st = _pad(st, n, filler)
    return st


def parse_cancel_response(resp: Any, n: int) -> list[CancelResult]:
    """Per-cancel results (``"success"`` | ``{"error": text}``), padded like orders."""
    data = _response_data(resp, "cancel")
    out: list[CancelResult] = []
    for s in _statuses(data):
        if s == "success":
            out.append(CancelResult(True))
        elif isinstance(s, dict) and "error" in s:
            out.append(CancelResult(False, str(s["error"]), classify_error(str(s["error"]))))
        else:
            raise ResponseFormatError(f"bad cancel status {s!r:.200}")
    if len(out) > n:
        raise ResponseFormatError(f"{len(out)} cancel statuses for a batch of {n}")
    if len(out) < n:
        errs = [r for r in out if not r.ok]
        filler = errs[-1] if errs else CancelResult(False, f"no status returned ({len(out)} of {n})",
                                                    RejectReason.UNKNOWN)
        out = _pad(out, n, filler)
    return out


def parse_default_response(resp: Any) -> None:
    """Actions answered with ``{"status":"ok","response":{"type":"default"}}`` (scheduleCancel, updateLeverage,
    noop). Raises ActionError / RateLimitError otherwise."""
    _response_data(resp, "default")
