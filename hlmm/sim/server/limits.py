"""Nonce sets and rate limits of the local exchange, with Hyperliquid's rules and error texts.

- Nonces (per signer): the 100 highest are kept; a new nonce must be unused, beat the smallest kept one once the
  set is full, and lie in ``(T - 2 days, T + 1 day)`` with ``T`` the exchange time in ms.
- Per-IP weight: 1200 per rolling minute; over it the HTTP status is 429.
- Per-address action budget: handled by the exchange core (it depends on traded volume).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

NONCE_SET_SIZE = 100
NONCE_MIN_AGE_MS = 2 * 86_400_000
NONCE_MAX_AHEAD_MS = 86_400_000
IP_WEIGHT_PER_MIN = 1200

# Info request weights (reference §6); everything not listed weighs 20.
_INFO_WEIGHT_2 = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
                            "exchangeStatus"})
_INFO_WEIGHT_60 = frozenset({"userRole"})
_ITEM_WEIGHTED_20 = frozenset({"userFills", "userFillsByTime", "historicalOrders", "recentTrades", "fundingHistory",
                               "userFunding", "userNonFundingLedgerUpdates"})


class NonceError(ValueError):
    """A nonce the exchange refuses; ``str()`` is Hyperliquid's text."""


def check_nonce_window(nonce: int, now_ms: int) -> None:
    """Raise NonceError unless ``now - 2 days < nonce < now + 1 day``."""
    oldest = now_ms - NONCE_MIN_AGE_MS
    newest = now_ms + NONCE_MAX_AHEAD_MS
    if nonce <= oldest:
        raise NonceError(f"Invalid nonce: nonce too low {nonce} < {oldest}")
    if nonce >= newest:
        raise NonceError(f"Invalid nonce: nonce too high {nonce} > {newest}")


class NonceSet:
    """The highest ``size`` nonces used by one signer (a min-heap plus a membership set)."""

    def __init__(self, size: int = NONCE_SET_SIZE) -> None:
        if size < 1:
            raise ValueError(f"nonce set size must be >= 1, got {size}")
        self.size = size
        self._heap: list[int] = []
        self._members: set[int] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def smallest(self) -> int | None:
        return self._heap[0] if self._heap else None

    def check(self, nonce: int) -> None:
        """Raise NonceError if ``nonce`` cannot be used now (does not record it)."""
        if nonce in self._members:
            raise NonceError(f"Invalid nonce: duplicate nonce {nonce}")
        if len(self._heap) >= self.size and nonce <= self._heap[0]:
            raise NonceError(f"Invalid nonce: nonce too low {nonce} < {self._heap[0]}")

    def use(self, nonce: int) -> None:
        """Check and record ``nonce``; the smallest kept nonce drops out when the set is full."""
        self.check(nonce)
        self._members.add(nonce)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, nonce)
        else:
            self._members.discard(heapq.heapreplace(self._heap, nonce))


OPEN_ORDER_BASE = 1000
OPEN_ORDER_VOLUME_STEP = 5_000_000.0


def open_order_limit(volume_usd: float, base: int = OPEN_ORDER_BASE) -> int:
    """Open orders an address may have: ``base`` + 1 per $5M cumulative volume, capped at 5 x base (1000 -> 5000)."""
    return min(base + int(max(volume_usd, 0.0) // OPEN_ORDER_VOLUME_STEP), 5 * base)


def info_weight(req_type: str, n_items: int = 0) -> int:
    """IP weight of one info request returning ``n_items`` items."""
    if req_type in _INFO_WEIGHT_2:
        return 2
    if req_type in _INFO_WEIGHT_60:
        return 60
    w = 20
    if req_type in _ITEM_WEIGHTED_20:
        w += n_items // 20
    elif req_type == "candleSnapshot":
        w += n_items // 60
    return w


def action_weight(n_batch: int) -> int:
    """IP weight of one exchange action carrying ``n_batch`` orders/cancels: ``1 + floor(n / 40)``."""
    return 1 + max(n_batch, 0) // 40


class IpWeightLimiter:
    """Rolling one-minute weight per IP. ``charge`` returns False (-> HTTP 429) when the IP is over its limit."""

    def __init__(self, per_minute: int = IP_WEIGHT_PER_MIN, window_s: float = 60.0) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.per_minute = per_minute
        self.window_s = window_s
        self._hist: dict[str, deque[tuple[float, int]]] = {}
        self._sum: dict[str, int] = {}

    def used(self, ip: str, now: float) -> int:
        self._expire(ip, now)
        return self._sum.get(ip, 0)

    def _expire(self, ip: str, now: float) -> None:
        h = self._hist.get(ip)
        if not h:
            return
        cutoff = now - self.window_s
        while h and h[0][0] <= cutoff:
            self._sum[ip] -= h.popleft()[1]

    def charge(self, ip: str, weight: int, now: float) -> bool:
        """Record ``weight`` for ``ip`` at ``now`` if it fits in the window; False when it does not."""
        self._expire(ip, now)
        total = self._sum.get(ip, 0)
        if total + weight > self.per_minute:
            return False
        self._hist.setdefault(ip, deque()).append((now, weight))
        self._sum[ip] = total + weight
        return True


@dataclass(frozen=True)
class WsLimits:
    """Per-IP websocket limits of the reference (§6). Texts are Hyperliquid's where observed, else best guesses."""

    max_connections: int = 10
    new_connections_per_min: int = 30
    max_subscriptions: int = 1000
    max_users: int = 10  # distinct users across user-specific subscriptions
    messages_per_min: int = 2000  # messages sent to the exchange
    max_inflight_posts: int = 100

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"WsLimits.{k} must be an int >= 1, got {v!r}")


MSG_WS_TOO_MANY_CONNECTIONS = "Too many websocket connections from this IP (max {n})."  # UNCONFIRMED text
MSG_WS_TOO_MANY_NEW = "Too many new websocket connections from this IP (max {n} per minute)."  # UNCONFIRMED text
MSG_WS_TOO_MANY_SUBS = "Cannot subscribe: too many subscriptions (max {n})."  # UNCONFIRMED text
MSG_WS_TOO_MANY_USERS = "Cannot track more than {n} total users."  # [OBS] error frame seen live
MSG_WS_TOO_MANY_MESSAGES = "Too many messages sent (max {n} per minute); message ignored."  # UNCONFIRMED text
MSG_WS_TOO_MANY_POSTS = "Too many in-flight post requests (max {n})."  # UNCONFIRMED text


class RollingCount:
    """Events per key in a rolling window (connections opened, messages received)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._hist: dict[str, deque[float]] = {}

    def count(self, key: str, now: float) -> int:
        h = self._hist.get(key)
        if not h:
            return 0
        cutoff = now - self.window_s
        while h and h[0] <= cutoff:
            h.popleft()
        return len(h)

    def add(self, key: str, now: float) -> None:
        self._hist.setdefault(key, deque()).append(now)
