"""Sending: the batcher (cancels, modifies, ALO, then IOC/GTC), the local request budget, the exchange's
per-order verdicts, and the resolution of orders whose reply was lost."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from hlmm.market.instrument import InstrumentError
from hlmm.venue.base import (
    CancelFailed,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    PlaceOrder,
    RejectReason,
    Tif,
    VenueAction,
)
from hlmm.venue.hyperliquid import validate, wire
from hlmm.venue.hyperliquid.errors import (
    ActionError,
    HyperliquidError,
    OrderResult,
    RateLimitError,
)
from hlmm.venue.hyperliquid.state import AdapterState, VenueError, _Order
from hlmm.venue.hyperliquid.translate import _wire_reason
from hlmm.venue.hyperliquid.validate import BadMessage


class OrderSender(AdapterState):
    async def submit(self, actions: Sequence[VenueAction]) -> None:
        ts = self._clock()
        for a in actions:
            if isinstance(a, PlaceOrder):
                self._orders[a.cloid] = _Order(a.coin, a.cloid, a.is_buy, a.px, a.sz, remaining=a.sz, changed_ts=ts,
                                               tif=str(a.tif))
                self._q_place.append(a)
            elif isinstance(a, CancelOrder):
                queued = next((p for p in self._q_place if p.cloid == a.cloid), None)
                if queued is not None:
                    # Never sent: drop it here; a cancel racing its own placement could leave it resting.
                    self._q_place.remove(queued)
                    self._emit_cancelled(a.coin, a.cloid, None, "requested")
                    continue
                self._q_modify = [m for m in self._q_modify if m.cloid != a.cloid]
                self._q_cancel.append(a)
            elif isinstance(a, ModifyOrder):
                o = self._orders.get(a.cloid)
                if o is not None:
                    o.gen += 1
                self._q_modify.append(a)
            else:
                raise VenueError(f"unsupported action {type(a).__name__}")
        if not actions:
            return
        if len(self._orders) + len(self._oid_cloid) > self._prune_at:
            self.prune()
        if self.batch_interval_s <= 0 or not self._started:
            await self.flush()
        else:
            self._flush_wakeup.set()

    async def flush(self) -> None:
        """Send everything queued now (cancels, modifies, ALO, then IOC/GTC)."""
        async with self._flush_lock:
            self._last_flush = time.monotonic()
            cancels, self._q_cancel = self._q_cancel, []
            modifies, self._q_modify = self._q_modify, []
            places, self._q_place = self._q_place, []
            if cancels:
                await self._send_cancels(cancels)
            if modifies:
                await self._send_modifies(modifies)
            alo = [p for p in places if p.tif == Tif.ALO]
            other = [p for p in places if p.tif != Tif.ALO]
            if alo:
                await self._send_places(alo)
            if other:
                await self._send_places(other)

    async def _flusher(self) -> None:
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            wait = self.batch_interval_s - (time.monotonic() - self._last_flush)
            if wait > 0 and not self._q_cancel:
                await asyncio.sleep(wait)  # collect a batch; cancels never wait
            try:
                await self.flush()
            except Exception as e:  # never let the flusher die: orders would silently stop going out
                self.log.error("flush_failed", error=repr(e))
            self._task_ok("flusher")

    async def refresh_budget(self) -> None:
        try:
            cap, used = self._checked(validate.rate_limit, await self.info.user_rate_limit(self.account))
            self.budget.refresh(cap, used, self._clock())
            self._rest_ok()
        except HyperliquidError as e:
            self._rest_failed("userRateLimit", e)

    async def _budget_loop(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(min(self.budget_refresh_s, 1.0))
            # After a rate-limit refusal (budget believed exhausted) ask again soon, so quoting resumes when it ends.
            short = not self.budget.allows_quotes(1) and self._clock() - last >= 2.0
            if short or self._clock() - last >= self.budget_refresh_s:
                last = self._clock()
                await self.refresh_budget()
                self._task_ok("budget")

    def _local_reject(self, p: PlaceOrder, reason: RejectReason, message: str) -> None:
        self.stats["rejected_local"] += 1
        if reason == RejectReason.RATE_LIMIT:
            self._note_rate_limited(self._clock())
        self._emit_rejected(p.coin, p.cloid, reason, message)

    async def _send_places(self, places: list[PlaceOrder]) -> None:
        if not self.budget.allows_quotes(len(places)):
            for p in places:
                self._local_reject(p, RejectReason.RATE_LIMIT,
                                   f"local request budget: {self.budget.remaining} left, reserve {self.budget.reserve}")
            return
        wires, sent = [], []
        for p in places:
            try:
                wires.append(wire.order_to_wire(self.registry.get(p.coin), p))
                sent.append(p)
            except (InstrumentError, wire.WireError) as e:
                self._local_reject(p, _wire_reason(e), str(e))
        if not sent:
            return
        self.budget.spend(len(sent))
        self.stats["actions"] += 1
        self.stats["orders_sent"] += len(sent)
        try:
            results = await self.exchange.order(wires)
        except HyperliquidError as e:
            self._batch_failed([p.cloid for p in sent], [p.coin for p in sent], e, is_cancel=False)
            return
        self._rest_ok()
        for p, r in zip(sent, results, strict=True):
            self._apply_order_result(p, r)

    async def _send_modifies(self, modifies: list[ModifyOrder]) -> None:
        if not self.budget.allows_quotes(len(modifies)):
            for m in modifies:
                self._local_reject(m.new, RejectReason.RATE_LIMIT,
                                   f"local request budget: {self.budget.remaining} left, reserve {self.budget.reserve}")
            return
        items, sent = [], []
        for m in modifies:
            try:
                items.append((wire.normalize_cloid(m.cloid),
                              wire.order_to_wire(self.registry.get(m.new.coin), m.new)))
                sent.append(m)
            except (InstrumentError, wire.WireError) as e:
                self._local_reject(m.new, _wire_reason(e), str(e))
        if not sent:
            return
        ts = self._clock()
        for m in sent:
            o = self._orders.get(m.cloid)
            if o is not None:
                o.px, o.sz, o.remaining, o.changed_ts = m.new.px, m.new.sz, m.new.sz, ts
        self.budget.spend(len(sent))
        self.stats["actions"] += 1
        self.stats["modifies_sent"] += len(sent)
        try:
            results = await self.exchange.batch_modify(items)
        except HyperliquidError as e:
            self._batch_failed([m.cloid for m in sent], [m.new.coin for m in sent], e, is_cancel=False)
            return
        self._rest_ok()
        for m, r in zip(sent, results, strict=True):
            self._apply_order_result(m.new, r)

    async def _send_cancels(self, cancels: list[CancelOrder]) -> None:
        by_oid = [c for c in cancels if c.oid is not None]
        by_cloid = [c for c in cancels if c.oid is None]
        if by_cloid:
            await self._send_cancel_action(by_cloid, by_oid=False)
        if by_oid:
            await self._send_cancel_action(by_oid, by_oid=True)

    async def _send_cancel_action(self, cancels: list[CancelOrder], *, by_oid: bool) -> None:
        """One ``cancelByCloid`` or ``cancel`` ({a, o}) action. Cancels are never throttled locally: they reduce
        risk."""
        if by_oid:
            oid_items: list[tuple[int, int]] = []
            for c in cancels:
                if c.oid is None:
                    raise VenueError(f"cancel by oid without an oid: {c!r}")
                self._oid_cloid.setdefault(c.oid, c.cloid)  # user-stream updates of a cloid-less order map back
                self._status_ref[c.cloid] = c.oid  # a lost reply is resolved with orderStatus by this oid
                oid_items.append((self.registry.get(c.coin).asset, c.oid))
            n = len(oid_items)
        else:
            ok = []
            for c in cancels:
                try:
                    wire.normalize_cloid(c.cloid)
                    ok.append(c)
                except wire.WireError as e:
                    # Refused locally, nothing sent: such an order was never placed (a place is refused alike).
                    self._emit(CancelRejected(self._clock(), c.coin, c.cloid, str(e)))
            cancels = ok
            if not cancels:
                return
            cloid_items = [(self.registry.get(c.coin).asset, c.cloid) for c in cancels]
            n = len(cloid_items)
        self.budget.spend(n)
        self.stats["actions"] += 1
        self.stats["cancels_sent"] += n
        try:
            results = (await self.exchange.cancel(oid_items) if by_oid
                       else await self.exchange.cancel_by_cloid(cloid_items))
        except HyperliquidError as e:
            self._batch_failed([c.cloid for c in cancels], [c.coin for c in cancels], e, is_cancel=True)
            return
        self._rest_ok()
        for c, r in zip(cancels, results, strict=True):
            if r.ok:
                self._emit_cancelled(c.coin, c.cloid, c.oid, "requested")
            elif r.reason == RejectReason.UNKNOWN_ORDER:
                # The exchange's verdict on the order itself: never placed, already canceled, or filled.
                self._cancel_unsettled.discard(c.cloid)
                self._emit(CancelRejected(self._clock(), c.coin, c.cloid, r.error or "cancel failed"))
            else:
                # Any other per-cancel error (rate limit, padding, unknown text) says nothing about the order.
                self._cancel_failed(c.coin, c.cloid, r.error or "cancel failed",
                                    rate_limited=r.reason == RejectReason.RATE_LIMIT)

    def _batch_failed(self, cloids: list[str], coins: list[str], e: HyperliquidError, *, is_cancel: bool) -> None:
        """A whole action failed. Refusals are final; lost replies make the orders uncertain (resolved later)."""
        ts = self._clock()
        if isinstance(e, RateLimitError):
            self.budget.exhausted()
        if isinstance(e, ActionError | RateLimitError):
            msg = getattr(e, "message", str(e))
            reason = e.reason if isinstance(e, ActionError) else RejectReason.RATE_LIMIT
            self.log.warning("action_refused", n=len(cloids), cancel=is_cancel, reason=str(reason), message=msg)
            if isinstance(e, RateLimitError):
                self._note_rate_limited(ts)
            for cloid, coin in zip(cloids, coins, strict=True):
                if is_cancel:
                    # A refused request says nothing about the order: it may still rest (retried by the engine).
                    self._cancel_failed(coin, cloid, msg, rate_limited=isinstance(e, RateLimitError))
                else:
                    self._emit_rejected(coin, cloid, reason, msg)
            return
        # Transport/server error: the action may or may not have executed.
        self._rest_failed("exchange", e)
        self.stats["uncertain"] += len(cloids)
        self.log.warning("action_uncertain", n=len(cloids), cancel=is_cancel, error=str(e))
        self._spawn(functools.partial(self._resolve_later, list(zip(cloids, coins, strict=True)), is_cancel),
                    name="resolve")

    def _cancel_failed(self, coin: str, cloid: str, message: str, *, rate_limited: bool) -> None:
        self.stats["cancel_failed"] += 1
        if rate_limited:
            self._note_rate_limited(self._clock())
        self._cancel_unsettled.add(cloid)
        self._emit(CancelFailed(self._clock(), coin, cloid, message, rate_limited=rate_limited))

    def _note_rate_limited(self, ts: float) -> None:
        self.stats["rate_limited"] += 1
        self.rate_limited_until = max(self.rate_limited_until, ts + 5.0)

    @property
    def rate_limited(self) -> bool:
        """Refused by a rate limit (429 / request budget) in the last few seconds: its own health state."""
        return self._clock() < self.rate_limited_until

    def _apply_order_result(self, p: PlaceOrder, r: OrderResult) -> None:
        o = self._orders.get(p.cloid)
        if r.kind == "resting" and r.oid is not None:
            self._register_oid(p.cloid, r.oid)
            self._emit_accepted(p.coin, p.cloid, r.oid)
        elif r.kind == "filled" and r.oid is not None:
            self._register_oid(p.cloid, r.oid)
            if p.tif == Tif.IOC and r.total_sz < p.sz - 1e-12:
                # The IOC remainder was killed; the fills themselves arrive on the user stream.
                self._emit_cancelled(p.coin, p.cloid, r.oid, "ioc")
            elif o is not None:
                o.remaining = max(0.0, p.sz - r.total_sz)
        elif r.kind == "error":
            if p.tif == Tif.IOC and r.reason == RejectReason.IOC_NO_MATCH:
                self._emit_rejected(p.coin, p.cloid, r.reason, r.error or "")
            else:
                self._emit_rejected(p.coin, p.cloid, r.reason or RejectReason.UNKNOWN, r.error or "")
            if r.reason == RejectReason.RATE_LIMIT:
                self.budget.exhausted()

    async def _resolve_later(self, items: list[tuple[str, str]], is_cancel: bool) -> None:
        await asyncio.sleep(self.uncertain_delay_s)
        for cloid, coin in items:
            await self._resolve(cloid, coin, is_cancel)

    async def _resolve(self, cloid: str, coin: str, is_cancel: bool) -> None:
        """Learn the truth about ``cloid`` from orderStatus and emit what the engine has not heard yet."""
        try:
            st = await self.info.order_status(self.account, self._status_ref.get(cloid, cloid))
        except HyperliquidError as e:
            self._rest_failed("orderStatus", e)
            self.log.error("uncertain_unresolved", cloid=cloid, error=str(e))
            return  # the periodic reconciliation / next resync will settle it
        try:
            ost = self._checked(validate.order_status, st)
        except BadMessage as e:
            self.log.error("uncertain_unresolved", cloid=cloid, error=str(e))
            return  # a garbled reply says nothing about the order: reconciliation / the next resync settles it
        self._rest_ok()
        if ost is None:
            if is_cancel:
                self._emit(CancelRejected(self._clock(), coin, cloid, "order unknown to the exchange"))
            else:
                self._emit_rejected(coin, cloid, RejectReason.UNKNOWN, "order not found after a lost reply")
            return
        self._register_oid(cloid, ost.oid)
        self._apply_status(coin, cloid, ost.oid, ost.status, ost.sz)
