"""A set of keys that can forget its oldest entries: the fill de-duplication window of long live sessions.

``RecentKeys(None)`` is a plain set (backtests: every key kept). ``RecentKeys(n)`` keeps the ``n`` most recently
added keys (insertion order, O(1) per add): membership answers for those only. Live sessions use it for the
(tid, oid) keys of fills, whose duplicates only ever come from the venue replaying its *recent* fills (see
:data:`LIVE_FILL_KEYS`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator

# Why a window of the most recent fill keys is a safe de-duplication bound in live sessions: within a process a
# fill reaches the engine again only through a venue replay - the userFills WS snapshot after a reconnect, or a
# REST userFills resync - and both carry at most the account's 2000 most recent fills (Hyperliquid's limit, see
# the API reference). A fill in such a replay therefore has at most 2000 later fills of the account, so it is
# among the most recent 2000 keys this process has seen; 20000 keeps ten times that margin. Across restarts
# the durable fill journal of the UTC day (hlmm.engine.journal.DailyFillJournal) is the guard, not memory.
LIVE_FILL_KEYS = 20_000


class RecentKeys:
    """Set of the ``max_keys`` most recently added keys (None: unbounded)."""

    __slots__ = ("_order", "_set", "max_keys")

    def __init__(self, max_keys: int | None = None) -> None:
        if max_keys is not None and max_keys < 1:
            raise ValueError(f"max_keys must be >= 1 or None, got {max_keys}")
        self.max_keys = max_keys
        self._set: set[Hashable] = set()
        self._order: deque[Hashable] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._set)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._set)

    def add(self, key: Hashable) -> bool:
        """Add ``key``; False when it is already held (nothing changes)."""
        if key in self._set:
            return False
        self._set.add(key)
        if self.max_keys is not None:
            self._order.append(key)
            self._trim()
        return True

    def resize(self, max_keys: int | None) -> None:
        """Change the bound; entering bounded mode keeps every key held so far until newer ones push it out (the
        order among them is arbitrary then - they were all added before the bound existed)."""
        if max_keys is not None and max_keys < 1:
            raise ValueError(f"max_keys must be >= 1 or None, got {max_keys}")
        if self.max_keys is None and max_keys is not None:
            self._order = deque(self._set)
        elif max_keys is None:
            self._order = deque()
        self.max_keys = max_keys
        self._trim()

    def _trim(self) -> None:
        n = self.max_keys
        if n is None:
            return
        order, s = self._order, self._set
        while len(order) > n:
            s.discard(order.popleft())
