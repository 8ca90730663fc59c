"""The guardian's decision and the trader -> guardian line protocol. Pure: no I/O, time comes in as arguments.

Protocol on the guardian's stdin (a pipe only the trader holds; its EOF is immediate when the trader dies):

1. the signing key, 64 hex digits, alone on the first line (never logged, never on a command line or in env);
2. one JSON object: the :class:`GuardianConfig`;
3. then one JSON object per line: ``{"t": "beat", "nonce": N, "orders": [[asset, oid], ...]}`` every beat
   (``nonce``: the last nonce the trader signed with; ``orders``: the oids its tracker knows, so the first cancel
   needs no info request), ``{"t": "done", "nonce": N}`` after a clean shutdown (nothing resting: the guardian
   exits 0 without sending anything) or ``{"t": "handover", ...}`` (the trader could not confirm that nothing
   rests: the guardian cancels everything now).

The guardian fires when the pipe hits EOF without "done" (the trader died), when its parent is gone, on a
handover, or when no message arrived for ``timeout_s`` (the trader is alive but frozen, e.g. SIGSTOP, or its event
loop is blocked).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20  # a longer line is garbage, not a message: dropped and counted
MAX_ORDERS = 5000  # the exchange's open-order cap per address

_KEY_RE = re.compile(rb"^[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-f]{40}$")


class ProtocolError(ValueError):
    """A malformed key or config line. Messages never contain the offending text (it may hold the key)."""


@dataclass(frozen=True, slots=True)
class GuardianConfig:
    trader_pid: int
    url: str  # REST base URL of the exchange (the trader's --network)
    mainnet: bool
    account: str  # the account whose orders are cancelled (master, sub-account or vault)
    signer: str  # the address of the key on line 1 (checked: a mismatched key is refused)
    vault: str | None
    coins: dict[str, int]  # traded coin -> asset index (from the trader's resolved exchange meta)
    timeout_s: float  # fire after this long without a message
    cancel_bound_s: float  # give up cancelling after this long (exit code 4)
    log_path: str | None  # JSON-lines log file (None: stderr line only)

    def to_json(self) -> bytes:
        return orjson.dumps({"v": PROTOCOL_VERSION, "trader_pid": self.trader_pid, "url": self.url,
                             "mainnet": self.mainnet, "account": self.account, "signer": self.signer,
                             "vault": self.vault, "coins": self.coins, "timeout_s": self.timeout_s,
                             "cancel_bound_s": self.cancel_bound_s, "log_path": self.log_path})


def _pos_finite(d: dict, k: str) -> float:
    v = d.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ProtocolError(f"config.{k} must be a finite number > 0")
    return float(v)


def _addr(d: dict, k: str, optional: bool = False) -> str | None:
    v = d.get(k)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not _ADDR_RE.match(v.lower()):
        raise ProtocolError(f"config.{k} must be a 0x-prefixed 20-byte hex address")
    return v.lower()


def parse_key_line(line: bytes) -> str:
    """The hex key of line 1 (without ``0x``). ProtocolError never echoes the line."""
    s = line.strip()
    if s[:2] in (b"0x", b"0X"):
        s = s[2:]
    if not _KEY_RE.match(s):
        raise ProtocolError(f"line 1 must be the 64-hex-digit signing key ({len(s)} bytes received)")
    return s.decode()


def parse_config_line(line: bytes) -> GuardianConfig:
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError("line 2 is not a JSON config object") from None
    if not isinstance(d, dict):
        raise ProtocolError("line 2 is not a JSON config object")
    if d.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"config.v must be {PROTOCOL_VERSION}")
    pid = d.get("trader_pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise ProtocolError("config.trader_pid must be a process id > 1")
    url = d.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ProtocolError("config.url must start with http:// or https://")
    if not isinstance(d.get("mainnet"), bool):
        raise ProtocolError("config.mainnet must be a boolean")
    coins = d.get("coins")
    if not isinstance(coins, dict) or not coins:
        raise ProtocolError("config.coins must be a non-empty {coin: asset} object")
    for c, a in coins.items():
        if not c or isinstance(a, bool) or not isinstance(a, int) or a < 0:
            raise ProtocolError("config.coins must map coin names to asset indices >= 0")
    log_path = d.get("log_path")
    if log_path is not None and not isinstance(log_path, str):
        raise ProtocolError("config.log_path must be a string or null")
    return GuardianConfig(
        trader_pid=pid, url=url.rstrip("/"), mainnet=d["mainnet"], account=_addr(d, "account") or "",
        signer=_addr(d, "signer") or "", vault=_addr(d, "vault", optional=True), coins=dict(coins),
        timeout_s=_pos_finite(d, "timeout_s"), cancel_bound_s=_pos_finite(d, "cancel_bound_s"), log_path=log_path)


MessageKind = Literal["beat", "done", "handover"]


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    nonce: int
    orders: tuple[tuple[int, int], ...] = ()


def encode_message(kind: MessageKind, nonce: int, orders: list[tuple[int, int]] | None = None) -> bytes:
    d: dict[str, Any] = {"t": kind, "nonce": nonce}
    if orders is not None:
        d["orders"] = [list(x) for x in orders]
    return orjson.dumps(d) + b"\n"


def _is_uint(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**64


def parse_message(line: bytes) -> Message | str:
    """A message, or the kind of defect (a short string for counting) when the line is bad."""
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not_json"
    if not isinstance(d, dict):
        return "not_object"
    kind = d.get("t")
    if kind not in ("beat", "done", "handover"):
        return "unknown_type"
    nonce = d.get("nonce", 0)
    if not _is_uint(nonce):
        return "bad_nonce"
    raw = d.get("orders", [])
    if not isinstance(raw, list) or len(raw) > MAX_ORDERS:
        return "bad_orders"
    orders: list[tuple[int, int]] = []
    for x in raw:
        if not (isinstance(x, list) and len(x) == 2 and _is_uint(x[0]) and _is_uint(x[1]) and x[1] > 0):
            return "bad_orders"
        orders.append((x[0], x[1]))
    return Message(kind, nonce, tuple(orders))


@dataclass(slots=True)
class LineBuffer:
    """Splits a byte stream into lines; an over-long line is dropped (counted in ``overlong``), never kept."""

    _buf: bytearray = field(default_factory=bytearray)
    _skipping: bool = False
    overlong: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self._buf += data
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_LINE_BYTES:
                    self._buf.clear()
                    if not self._skipping:
                        self.overlong += 1
                    self._skipping = True
                return out
            line = bytes(self._buf[:i])
            del self._buf[: i + 1]
            if self._skipping:
                self._skipping = False  # the tail of an over-long line
                continue
            if len(line) > MAX_LINE_BYTES:  # over-long, its newline in the same chunk: dropped all the same
                self.overlong += 1
                continue
            out.append(line)


@dataclass(slots=True)
class WatchState:
    """What the guardian knows about its trader. ``last_msg``: the guardian's monotonic time of the last valid
    message (arrival time: the trader's own clock is never compared with ours)."""

    last_msg: float
    last_nonce: int = 0
    orders: tuple[tuple[int, int], ...] = ()
    eof: bool = False
    done: bool = False
    handover: bool = False
    bad: dict[str, int] = field(default_factory=dict)

    def on_line(self, line: bytes, now: float) -> Message | str:
        m = parse_message(line)
        if isinstance(m, str):
            self.bad[m] = self.bad.get(m, 0) + 1
            return m
        self.last_msg = now
        self.last_nonce = max(self.last_nonce, m.nonce)
        if m.kind == "beat":
            self.orders = m.orders
        elif m.kind == "done":
            self.done = True
        else:
            self.handover = True
            if m.orders:
                self.orders = m.orders
        return m


VerdictKind = Literal["wait", "exit_clean", "fire"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    reason: str
    silent_s: float = 0.0


def decide(state: WatchState, now: float, timeout_s: float, parent_alive: bool) -> Verdict:
    """Wait, exit cleanly (the trader said "done") or fire (cancel everything). "done" wins over a later EOF: the
    trader exits right after saying it."""
    silent = max(0.0, now - state.last_msg)
    if state.done:
        return Verdict("exit_clean", "trader shut down cleanly", silent)
    if state.handover:
        return Verdict("fire", "trader handed over (could not confirm nothing rests)", silent)
    if state.eof:
        return Verdict("fire", "trader gone (heartbeat pipe closed)", silent)
    if not parent_alive:
        return Verdict("fire", "trader gone (parent process exited)", silent)
    if silent >= timeout_s:
        return Verdict("fire", f"no heartbeat for {silent:.1f} s (trader frozen or blocked)", silent)
    return Verdict("wait", "", silent)


def next_wait_s(state: WatchState, now: float, timeout_s: float, poll_s: float = 0.2) -> float:
    """How long to block for input before deciding again (never past the timeout)."""
    return max(0.0, min(poll_s, state.last_msg + timeout_s - now))
