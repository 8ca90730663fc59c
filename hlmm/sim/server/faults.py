"""Fault scenarios for the local exchange: a list of ``{at_s, fault, params}`` from TOML/JSON or CLI flags.

TOML::

    [[faults]]
    at_s = 10
    fault = "drop_ws"

    [[faults]]
    at_s = 20
    fault = "freeze_book"
    params = { duration_s = 15 }

JSON: the same objects as a list, or ``{"faults": [...]}``. CLI: ``--fault freeze_book@20:duration_s=15,coin=BTC``.
``at_s`` counts from server start (wall seconds).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class FaultError(ValueError):
    """A scenario entry that is malformed; the message names the entry and field."""


# kind -> {param: (type, default)}; a default of None means optional with no value.
FAULTS: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "drop_ws": {"target": (str, "all")},  # all | hl | binance
    "delay_ws": {"delay_ms": ((int, float), 500), "duration_s": ((int, float), 10.0)},
    "reorder_ws": {"window_ms": ((int, float), 200), "duration_s": ((int, float), 10.0)},
    "freeze_book": {"coin": (str, None), "duration_s": ((int, float), 15.0)},
    "reject_orders": {"fraction": ((int, float), 0.5), "duration_s": ((int, float), 10.0)},
    "rate_limit": {"kind": (str, "address"), "duration_s": ((int, float), 10.0)},  # address | ip
    "pause": {"duration_s": ((int, float), 5.0)},
    "restart": {"down_s": ((int, float), 2.0)},
    # A gap in the market: every later price of ``coin`` (all coins when unset) is scaled by 1 + bps/1e4.
    "jump": {"coin": (str, None), "bps": ((int, float), 20.0)},
}
_CHOICES = {("drop_ws", "target"): ("all", "hl", "binance"), ("rate_limit", "kind"): ("address", "ip")}


@dataclass(frozen=True)
class FaultStep:
    at_s: float
    fault: str
    params: dict[str, Any] = field(default_factory=dict)


def make_step(at_s: Any, fault: Any, params: Any = None, where: str = "fault") -> FaultStep:
    """Validate one entry and fill parameter defaults."""
    if fault not in FAULTS:
        raise FaultError(f"{where}: unknown fault {fault!r}; known: {sorted(FAULTS)}")
    if isinstance(at_s, bool) or not isinstance(at_s, (int, float)) or not math.isfinite(at_s) or at_s < 0:
        raise FaultError(f"{where}: at_s must be a number >= 0, got {at_s!r}")
    params = dict(params or {})
    spec = FAULTS[fault]
    unknown = set(params) - set(spec)
    if unknown:
        raise FaultError(f"{where}: unknown params {sorted(unknown)} for {fault}; known: {sorted(spec)}")
    out: dict[str, Any] = {}
    for name, (typ, default) in spec.items():
        v = params.get(name, default)
        if v is None:
            out[name] = None
            continue
        if isinstance(v, bool) or not isinstance(v, typ):
            raise FaultError(f"{where}: {fault}.{name} must be {typ}, got {v!r}")
        if isinstance(v, (int, float)) and (not math.isfinite(v) or v < 0):
            raise FaultError(f"{where}: {fault}.{name} must be finite and >= 0, got {v!r}")
        choices = _CHOICES.get((fault, name))
        if choices and v not in choices:
            raise FaultError(f"{where}: {fault}.{name} must be one of {choices}, got {v!r}")
        out[name] = v
    if fault == "reject_orders" and not 0 <= out["fraction"] <= 1:
        raise FaultError(f"{where}: reject_orders.fraction must be in [0, 1], got {out['fraction']!r}")
    return FaultStep(float(at_s), fault, out)


def parse_scenario(obj: Any) -> list[FaultStep]:
    """Steps sorted by ``at_s`` from a list of dicts or ``{"faults": [...]}``."""
    if isinstance(obj, dict):
        obj = obj.get("faults", [])
    if not isinstance(obj, list):
        raise FaultError("scenario must be a list of {at_s, fault, params} or {faults = [...]}")
    steps = []
    for i, e in enumerate(obj):
        if not isinstance(e, dict):
            raise FaultError(f"faults[{i}] must be an object, got {e!r}")
        extra = set(e) - {"at_s", "fault", "params"}
        if extra:
            raise FaultError(f"faults[{i}]: unknown keys {sorted(extra)}")
        steps.append(make_step(e.get("at_s"), e.get("fault"), e.get("params"), f"faults[{i}]"))
    return sorted(steps, key=lambda s: s.at_s)


def load_scenario(path: str | Path) -> list[FaultStep]:
    """Read a TOML (``.toml``) or JSON scenario file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise FaultError(f"cannot read fault scenario {p}: {e}") from None
    try:
        obj = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise FaultError(f"{p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {e}") from None
    return parse_scenario(obj)


def parse_flag(text: str) -> FaultStep:
    """``kind@at_s[:k=v,k=v]`` (values parsed as numbers when they look like numbers)."""
    head, _, tail = text.partition(":")
    kind, sep, at = head.partition("@")
    if not sep:
        raise FaultError(f"--fault {text!r}: expected KIND@AT_S[:k=v,...]")
    try:
        at_s = float(at)
    except ValueError:
        raise FaultError(f"--fault {text!r}: at_s {at!r} is not a number") from None
    params: dict[str, Any] = {}
    for kv in filter(None, tail.split(",")):
        k, eq, v = kv.partition("=")
        if not eq:
            raise FaultError(f"--fault {text!r}: parameter {kv!r} is not k=v")
        try:
            params[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else float(v)
        except ValueError:
            params[k.strip()] = v.strip()
    return make_step(at_s, kind.strip(), params, f"--fault {text!r}")
