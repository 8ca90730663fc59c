"""Unique, strictly increasing millisecond nonces for signed actions.

Hyperliquid keeps the 100 highest nonces per signer and rejects duplicates and nonces outside
(now - 2 days, now + 1 day). A burst of more than one action per millisecond therefore has to run ahead of
the clock by one per action; a nonce far ahead of the clock means something is wrong, so it is an error
rather than a silent drift into rejections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The exchange accepts up to now + 1 day; refuse long before that so a runaway loop is loud.
DEFAULT_MAX_AHEAD_MS = 3_600_000


class NonceError(RuntimeError):
    """The nonce sequence cannot continue safely (clock broken or runaway burst)."""


def wall_clock_ms() -> int:
    """Milliseconds since the epoch from the system clock."""
    return time.time_ns() // 1_000_000


class NonceManager:
    """Hands out nonces ``max(clock_ms(), last + 1)``: unique, strictly increasing, never below the clock.

    ``next`` is synchronous, so concurrent asyncio tasks cannot interleave inside it; a lock also makes it safe
    from threads. ``clock_ms`` is injectable for tests and simulations.
    """

    __slots__ = ("_clock", "_last", "_lock", "max_ahead_ms")

    def __init__(self, clock_ms: Callable[[], int] | None = None, max_ahead_ms: int = DEFAULT_MAX_AHEAD_MS) -> None:
        if max_ahead_ms <= 0:
            raise ValueError(f"max_ahead_ms must be > 0, got {max_ahead_ms}")
        self._clock: Callable[[], int] = clock_ms or wall_clock_ms
        self._last = 0
        self._lock = threading.Lock()
        self.max_ahead_ms = max_ahead_ms

    @property
    def last(self) -> int:
        """The last nonce handed out (0 before the first)."""
        return self._last

    def next(self) -> int:
        """A fresh nonce."""
        now = self._clock()
        if isinstance(now, bool) or not isinstance(now, int) or now <= 0:
            raise NonceError(f"clock_ms must return a positive int of milliseconds, got {now!r}")
        with self._lock:
            n = now if now > self._last else self._last + 1
            if n - now > self.max_ahead_ms:
                raise NonceError(
                    f"nonce {n} would run {n - now} ms ahead of the clock (limit {self.max_ahead_ms} ms); "
                    "too many actions per millisecond or a clock jump backwards"
                )
            self._last = n
            return n

    def observe(self, nonce: int) -> None:
        """Record a nonce used elsewhere (e.g. restored after restart) so later nonces stay above it."""
        with self._lock:
            if nonce > self._last:
                self._last = nonce
