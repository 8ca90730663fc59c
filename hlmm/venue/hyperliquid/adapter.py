"""The live Hyperliquid venue: implements the ``Venue`` protocol of ``hlmm/venue/base.py``.

Orders go out in batches (every ``batch_interval_s``): cancels first (``cancelByCloid``; ``cancel`` by oid for a
``CancelOrder`` that carries one, e.g. a foreign order without a cloid), then modifies
(``batchModify``), then ALO placements, then IOC/GTC placements in their own action (the exchange prefers ALO and
cancels in a block; mixing them would slow both). Replies become venue events at once; the user stream
(``orderUpdates``, ``userFills``, ``userEvents``) confirms and completes them. Every event is de-duplicated:
acks by (cloid, oid), terminal events by (cloid, oid), fills by (tid, oid) - the same fact may arrive from the
REST reply, ``orderUpdates``, ``userFills`` and ``userEvents``.

Safety:
- dead man's switch: ``scheduleCancel(now + max(dead_man_s, 5 s + 1.5 s))`` refreshed while healthy. The exchange
  refuses times under 5 s from *its* now ("Scheduled cancel time too early"), and the request takes time to arrive:
  ``DEAD_MAN_MARGIN_S`` keeps a 5 s setting valid. Any refusal (low-volume accounts: "Cannot set scheduled cancel
  time until enough volume traded", too early, too many triggers) or a lost reply means *not armed*: the internal
  watchdog then cancels all orders (REST, by oid) as soon as health has been lost for ``watchdog_grace_s``.
- health = websocket connected, REST working, and (if the runner calls :meth:`heartbeat`) the engine loop alive.
  Losing it emits ``VenueStatus(False)``; regaining it re-syncs (missed fills from REST, then an AccountSnapshot)
  before ``VenueStatus(True)`` - Hyperliquid does not replay order updates on resubscribe.
- a lost reply (timeout, disconnect) leaves orders *uncertain*: they are resolved with ``orderStatus`` by cloid.
- request budget: ``userRateLimit`` (nRequestsCap - nRequestsUsed) tracked locally per action (a batch of n
  counts n). Below ``budget_reserve`` new placements and modifies are refused locally (RATE_LIMIT) while cancels
  still go out - quotes throttle before the exchange refuses.
"""


from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hlmm.venue.hyperliquid.account_sync import AccountSync
from hlmm.venue.hyperliquid.budget import RequestBudget
from hlmm.venue.hyperliquid.errors import HyperliquidError
from hlmm.venue.hyperliquid.sender import OrderSender
from hlmm.venue.hyperliquid.state import (
    _SEEN_FILLS_MAX,
    DEAD_MAN_MARGIN_S,
    KEEP_FINISHED,
    SCHEDULE_CANCEL_MIN_S,
    AdapterState,
    VenueError,
    _Order,
)
from hlmm.venue.hyperliquid.supervision import Supervision
from hlmm.venue.hyperliquid.translate import _row_oids, _wire_reason

__all__ = [
    "DEAD_MAN_MARGIN_S",
    "KEEP_FINISHED",
    "SCHEDULE_CANCEL_MIN_S",
    "_SEEN_FILLS_MAX",
    "AdapterState",
    "HyperliquidVenue",
    "RequestBudget",
    "VenueError",
    "_Order",
    "_row_oids",
    "_wire_reason",
]


class HyperliquidVenue(OrderSender, AccountSync, Supervision):
    """Live venue. ``info``/``exchange`` are the REST clients, ``ws`` a WsClient whose user channels are routed to
    :meth:`on_ws_message` / :meth:`on_ws_status` by the owner (one connection serves market and user data).

    The constructor and the shared tables are in ``state.py``; sending in ``sender.py``; the user stream, snapshots,
    resync and reconciliation in ``account_sync.py``; health, dead man's switch and watchdog in ``supervision.py``."""

    async def start(self) -> None:
        """Budget, user-stream subscriptions, WS post transport, background tasks. Snapshot/sync is the runner's."""
        if self._started:
            return
        self._started = True
        self._t0_ms = int(self._clock() * 1000)
        await self.refresh_budget()
        if self.ws is not None:
            for sub in self.user_subscriptions():
                await self.ws.subscribe(sub)
            self.exchange.attach_ws(self.ws.post)
            self._ws_up = self.ws.connected
        await self.refresh_dead_man()
        for fn, name in (
            (self._flusher, "flusher"), (self._watchdog, "watchdog"), (self._dead_man_loop, "dead_man"),
            (self._reconcile_loop, "reconcile"), (self._budget_loop, "budget"),
        ):
            # Supervised: a loop that raises is logged, degrades health and is restarted with backoff.
            self._tasks.append(asyncio.create_task(self._supervise(name, fn), name=f"hl {name}"))

    async def close(self) -> None:
        """Stop background tasks; clear the dead man's switch if we set one (nothing of ours should rest now)."""
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._dead_man_sent:  # also after a lost reply: the exchange may hold a schedule we never heard about
            with contextlib.suppress(HyperliquidError, Exception):
                await self.exchange.schedule_cancel(None)
            self.dead_man_until_ms = None
            self._dead_man_sent = False

    @property
    def budget_left(self) -> int | None:
        return self.budget.remaining

    def diagnostics(self) -> dict[str, Any]:
        return {**self.stats, "health": self.health}
