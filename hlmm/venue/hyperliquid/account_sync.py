"""Account sync: the user stream (orderUpdates, userFills, userEvents), snapshots, resync after any gap,
periodic reconciliation with openOrders, and cancel-all by oid."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from hlmm.market.instrument import parse_coin
from hlmm.venue.base import (
    AccountSnapshot,
    CancelRejected,
    Fill,
    Funding,
    OpenOrder,
    RejectReason,
    VenueStatus,
)
from hlmm.venue.hyperliquid import validate
from hlmm.venue.hyperliquid.errors import HyperliquidError
from hlmm.venue.hyperliquid.state import _SEEN_FILLS_MAX, CANCEL_CHECK_S, RESYNC_BACKOFF, AdapterState, _Order
from hlmm.venue.hyperliquid.translate import _CANCEL_REASONS, _REJECT_REASONS, _row_oids
from hlmm.venue.hyperliquid.validate import BadMessage


class AccountSync(AdapterState):
    def user_subscriptions(self) -> list[dict]:
        a = self.account
        return [{"type": "orderUpdates", "user": a}, {"type": "userFills", "user": a},
                {"type": "userEvents", "user": a}]

    async def cancel_all(self, coin: str) -> None:
        """Backstop: cancel every open order on ``coin`` by oid (so cloid-less orders go too). First every order this
        adapter knows to be (possibly) live - no /info request needed, so it works while openOrders fails - then
        whatever a fresh openOrders shows that we did not know. Raises HyperliquidError if a cancel action failed."""
        inst = self.registry.get(coin)
        for p in [p for p in self._q_place if p.coin == coin]:
            self._q_place.remove(p)
            self._emit_cancelled(coin, p.cloid, None, "requested")
        self._q_modify = [m for m in self._q_modify if m.new.coin != coin]
        known = sorted({o.oid for o in self._orders.values()
                        if o.coin == coin and o.oid is not None and (o.cloid, o.oid) not in self._ended})
        failure: HyperliquidError | None = None
        if known:
            try:
                await self._cancel_oids(coin, inst.asset, known)
            except HyperliquidError as e:
                failure = e
        try:
            rows = await self.info.open_orders(self.account, parse_coin(coin).dex)
        except HyperliquidError as e:
            self.stats["cancel_all_info_failed"] += 1
            self.log.warning("cancel_all_open_orders_failed", coin=coin, known=len(known), error=str(e))
            rows = []
        extra = sorted(_row_oids(rows, coin) - set(known))
        if extra:
            try:
                await self._cancel_oids(coin, inst.asset, extra)
            except HyperliquidError as e:
                failure = e
        if failure is not None:
            raise failure

    async def _cancel_oids(self, coin: str, asset: int, oids: list[int]) -> None:
        items = [(asset, oid) for oid in oids]
        self.budget.spend(len(items))
        self.stats["actions"] += 1
        self.stats["cancels_sent"] += len(items)
        results = await self.exchange.cancel(items)
        for (_, oid), r in zip(items, results, strict=True):
            cloid = self._oid_cloid.get(oid)
            if cloid is None:
                continue
            if r.ok:
                self._emit_cancelled(coin, cloid, oid, "requested")
            elif r.reason == RejectReason.UNKNOWN_ORDER:
                self._cancel_unsettled.discard(cloid)
                self._emit(CancelRejected(self._clock(), coin, cloid, r.error or "cancel failed"))

    async def snapshot(self, coin: str) -> AccountSnapshot:
        """Position and open orders of ``coin`` from clearinghouseState + openOrders (account address)."""
        self.registry.get(coin)
        dex = parse_coin(coin).dex
        ch, rows = await asyncio.gather(self.info.clearinghouse_state(self.account, dex),
                                        self.info.open_orders(self.account, dex))
        ts = self._clock()
        # A bad reply raises BadMessage (a HyperliquidError): the snapshot fails as if the request had failed.
        chs = self._checked(validate.clearinghouse, ch, coin)
        pos, entry, account_value = chs.position, chs.entry_px, chs.account_value
        opens: list[OpenOrder] = []
        for r in self._checked(validate.open_orders, rows):
            if r.coin != coin:
                continue
            oid = r.oid
            cloid = r.cloid or self._oid_cloid.get(oid)
            if cloid is None:
                cloid = await self._lookup_cloid(oid)
            if cloid is not None:
                cloid = cloid.lower()
                self._oid_cloid[oid] = cloid
                o = self._orders.get(cloid)
                if o is None:
                    self._orders[cloid] = _Order(coin, cloid, r.is_buy, r.px, r.sz, oid=oid, remaining=r.sz,
                                                 changed_ts=ts)
                else:
                    o.oid, o.remaining = oid, r.sz
            opens.append(OpenOrder(coin=coin, cloid=cloid, oid=oid, is_buy=r.is_buy, px=r.px, sz=r.sz))
        return AccountSnapshot(ts=ts, coin=coin, position=pos, entry_px=entry, open_orders=tuple(opens),
                               account_value=account_value)

    async def _lookup_cloid(self, oid: int) -> str | None:
        """openOrders rows carry no cloid: ask orderStatus (its order has one) for an oid we did not place."""
        try:
            st = self._checked(validate.order_status, await self.info.order_status(self.account, oid))
        except HyperliquidError as e:
            self.log.warning("cloid_lookup_failed", oid=oid, error=str(e))
            return None
        return st.cloid if st is not None else None

    def on_ws_message(self, ts: float, channel: str, data: Any) -> None:
        """Route a user-channel message (orderUpdates, userFills, user)."""
        if channel == "orderUpdates":
            if not isinstance(data, list):
                self._bad("order_updates", f"data must be a list, got {type(data).__name__}", data)
                return
            for u in data:
                self._on_order_update(u)
        elif channel == "userFills":
            if not isinstance(data, dict) or not isinstance(data.get("fills", []), list):
                self._bad("user_fills", "data must be an object with a list of fills", data)
                return
            if data.get("isSnapshot"):
                return  # history: already in the start-up snapshot / REST backfill
            for f in data.get("fills", []):
                self._on_fill(f, ts)
        elif channel == "user":
            self._on_user_event(data, ts)

    def _on_order_update(self, raw: Any) -> None:
        try:
            u = validate.order_update(raw)
        except BadMessage as e:
            self._bad(e.kind, e.problem, raw)
            return
        oid = u.oid
        cloid = u.cloid or self._oid_cloid.get(oid)
        if cloid is None:
            self.log.warning("order_update_without_cloid", oid=oid, coin=u.coin, status=u.status)
            return
        self._register_oid(cloid, oid)
        self._apply_status(u.coin, cloid, oid, u.status, u.sz)

    def _apply_status(self, coin: str, cloid: str, oid: int, status: str, sz: float) -> None:
        o = self._orders.get(cloid)
        if status == "open":
            if o is not None and o.oid == oid:
                o.remaining = sz
            self._emit_accepted(coin, cloid, oid)
        elif status in ("filled", "triggered"):
            if o is not None and o.oid == oid:
                o.remaining = 0.0
        elif status in _REJECT_REASONS:
            if (cloid, oid) not in self._acked:
                self._emit_rejected(coin, cloid, _REJECT_REASONS[status], status)
        elif status in _CANCEL_REASONS or status.endswith("Canceled"):
            self._emit_cancelled(coin, cloid, oid, _CANCEL_REASONS.get(status, status))
        elif status.endswith("Rejected"):
            if (cloid, oid) not in self._acked:
                self._emit_rejected(coin, cloid, RejectReason.UNKNOWN, status)
        else:
            self.log.info("order_status_ignored", cloid=cloid, oid=oid, status=status)

    def _on_user_event(self, data: Any, ts: float) -> None:
        if not isinstance(data, dict):
            self._bad("user_event", f"data must be an object, got {type(data).__name__}", data)
            return
        if "fills" in data:
            if not isinstance(data["fills"], list):
                self._bad("user_event", "fills must be a list", data)
            else:
                for f in data["fills"]:
                    self._on_fill(f, ts)
        if "funding" in data:
            try:
                fu = validate.funding(data["funding"])
            except BadMessage as e:
                self._bad(e.kind, e.problem, data["funding"])
            else:
                self._emit(Funding(ts, fu.coin, fu.usdc, fu.rate, fu.szi))
        if "nonUserCancel" in data:
            items = data["nonUserCancel"]
            if not isinstance(items, list):
                self._bad("non_user_cancel", "nonUserCancel must be a list", items)
                items = []
            for c in items:
                try:
                    coin, oid = validate.non_user_cancel(c)
                except BadMessage as e:
                    self._bad(e.kind, e.problem, c)
                    continue
                cloid = self._oid_cloid.get(oid)
                if cloid is not None:
                    self._emit_cancelled(coin, cloid, oid, "venue")
        if "liquidation" in data:
            self.log.error("liquidation", data=str(data["liquidation"])[:500])
            self._request_resync("liquidation")

    def _on_fill(self, f: Any, ts: float) -> bool:
        """One fill dict (userFills / userEvents / REST userFills) -> Fill event, once per (tid, oid). A malformed
        fill (NaN price, size <= 0, NaN fee, ...) is counted and dropped: it never reaches the engine."""
        try:
            m = f if isinstance(f, validate.FillMsg) else validate.fill(f)
        except BadMessage as e:
            self._bad(e.kind, e.problem, f)
            return False
        tid, oid, coin, sz, px, is_buy, fee, is_maker = m.tid, m.oid, m.coin, m.sz, m.px, m.is_buy, m.fee, m.is_maker
        key = (tid, oid)
        if key in self._seen_fills:
            self.stats["duplicate_fills"] += 1
            return False
        self._seen_fills.add(key)
        self._seen_fills_q.append(key)
        if len(self._seen_fills_q) > _SEEN_FILLS_MAX:
            self._seen_fills.discard(self._seen_fills_q.popleft())
        cloid = (m.cloid or self._oid_cloid.get(oid) or "").lower()
        o = self._orders.get(cloid)
        remaining = 0.0
        if o is not None:
            o.remaining = max(0.0, o.remaining - sz)
            remaining = o.remaining
        self.stats["fills"] += 1
        self._emit(Fill(ts=ts, coin=coin, cloid=cloid, oid=oid, tid=tid, is_buy=is_buy, px=px, sz=sz, fee=fee,
                        is_maker=is_maker, remaining=remaining))
        return True

    def _request_resync(self, why: str) -> None:
        """Resync now, retried with backoff until it succeeds (one such chain at a time; supervised)."""
        if self._resync_wanted or self._closing:
            return
        self._resync_wanted = True
        self._spawn(functools.partial(self._resync_until_done, why), name="resync")

    async def _resync_until_done(self, why: str) -> None:
        # An unexpected exception leaves _resync_wanted set: the supervisor restarts this chain (no second one).
        try:
            while not self._closing:
                if await self.resync(why):
                    self._resync_failures = 0
                    break
                self._resync_failures += 1
                await asyncio.sleep(RESYNC_BACKOFF.delay(self._resync_failures))
        except asyncio.CancelledError:
            self._resync_wanted = False
            raise
        self._resync_wanted = False

    async def resync(self, why: str) -> bool:
        """Missed fills (REST), then a fresh AccountSnapshot per coin, then VenueStatus(healthy). Returns whether
        it succeeded (a REST failure or a malformed reply: False, nothing emitted, health unchanged)."""
        if self._resyncing:
            return False
        self._resyncing = True
        self.stats["resyncs"] += 1
        try:
            try:
                raw = validate.array(await self.info.user_fills(self.account), "user_fills", "reply")
                ts = self._clock()
                fills: list[validate.FillMsg] = []
                for f in raw:
                    try:
                        fills.append(validate.fill(f))
                    except BadMessage as e:
                        self._bad(e.kind, e.problem, f)  # dropped: never reaches the engine
                for m in sorted(fills, key=lambda x: x.time_ms):
                    if m.time_ms >= self._t0_ms and m.coin in self.coins:
                        self._on_fill(m, ts)
                snaps = [await self.snapshot(c) for c in self.coins]
            except HyperliquidError as e:
                if isinstance(e, BadMessage) and e.kind == "user_fills":
                    self._bad(e.kind, e.problem)
                self._resyncing = False
                self._rest_failed("resync", e)
                return False
            self._rest_failures = 0
            for s in snaps:
                self._emit(s)
        finally:
            self._resyncing = False
        if self._compute_health():
            was = self._healthy
            self._healthy = True
            self._unhealthy_since = None
            self.log.info("venue_healthy", detail=why, resynced=True)
            self._emit(VenueStatus(self._clock(), True, f"resynced after {why}" if not was else f"resynced: {why}"))
        return True

    async def _reconcile_loop(self) -> None:
        last = self._clock()
        while True:
            # While a cancel has no verdict (refused / rate-limited), check openOrders on a short timer.
            await asyncio.sleep(min(self.reconcile_interval_s, CANCEL_CHECK_S))
            due = self._clock() - last >= self.reconcile_interval_s or (
                self._cancel_unsettled and self._clock() - last >= CANCEL_CHECK_S)
            st = self.task_states.get("reconcile")
            # While this task is failing it also runs when unhealthy: it is its own recovery probe.
            if due and (self._healthy or (st is not None and st.failing)) and not self._resyncing:
                last = self._clock()
                await self.reconcile_once()
                self._task_ok("reconcile")

    async def reconcile_once(self) -> bool:
        """Compare exchange open orders with our view; emit a snapshot (engine re-sync) if they disagree for orders
        untouched in the last few seconds. Returns True when a mismatch was found."""
        now = self._clock()
        mismatch = False
        for c in self.coins:
            try:
                snap = await self.snapshot(c)
            except HyperliquidError as e:  # incl. a malformed reply (BadMessage): this round is skipped
                self._rest_failed("reconcile", e)
                return False
            self.stats["reconciles"] += 1
            venue = {oo.cloid for oo in snap.open_orders}
            # Gone from the exchange: settled (a late CancelRejected / the snapshot below tells the engine).
            self._cancel_unsettled -= {cl for cl in self._cancel_unsettled
                                       if (o := self._orders.get(cl)) is not None and o.coin == c and cl not in venue}
            ours = {o.cloid for o in self._orders.values()
                    if o.coin == c and o.oid is not None and (o.cloid, o.oid) in self._acked
                    and (o.cloid, o.oid) not in self._ended and o.remaining > 0}
            settled = {cl for cl in venue ^ ours
                       if (o := self._orders.get(cl or "")) is None or now - o.changed_ts > 5.0}
            if settled or any(oo.cloid is None for oo in snap.open_orders):
                mismatch = True
                self.stats["reconcile_mismatch"] += 1
                self.log.warning("reconcile_mismatch", coin=c, venue_only=sorted(str(x) for x in venue - ours),
                                 ours_only=sorted(ours - venue))
                self._emit(snap)
        return mismatch
