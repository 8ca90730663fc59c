"""EngineCore: one coin's functional core. Market and venue events in, venue actions out.

Flow: event -> MarketState + estimators (cheap, every event) -> requote policy -> on a quote cycle:
risk check (KillSwitch) -> ``strategy.quote(ctx)`` (the configured QuoteStrategy, GLFT by default; reduce-only
from the risk decision) -> ``OrderGuard.apply`` (rounding, per-order / per-level caps, side room, reduce-only, BBO
guard: no strategy can skip it) -> ``reconcile`` (tolerances, budget, exposure invariant) -> tracker records
intent -> actions.

No I/O, no clock: time comes with the events (``ts`` = engine clock). The only side channel is the
injected structlog-like logger, used on decisions only (quote / cancel / reject / fill / kill), never
per market event.

Safety properties this class is responsible for:
- nothing is quoted before the estimators are ready (bounded by their warm-up timeout) or while the
  kill switch is latched — including after a restart from a killed ``KillState``;
- when killed, every live order is cancelled and anything that shows up resting later is cancelled too;
- placements on a side never exceed the room (max position - position) minus the exposure of every order
  that can still fill (pending cancels/modifies included): |position| <= max position (+ lot rounding);
- a resting/pending order that the latest book would cross triggers an immediate cycle that cancels it;
- a post-only rejection triggers an immediate requote against the fresh book (no one-sided book waiting
  for the next timer).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

from hlmm.config import CoinConfig
from hlmm.engine.portfolio import Portfolio
from hlmm.engine.recent import LIVE_FILL_KEYS
from hlmm.engine.reconcile import ReconcilePlan, book_crossings, own_crossings, reconcile
from hlmm.engine.recorder import LIVE_SERIES_MAX, EngineRecorder
from hlmm.engine.requote import RequotePolicy
from hlmm.engine.tracker import LIVE_KEEP_TERMINAL, OrderTracker, TrackedOrder, TrackerError
from hlmm.estimators.bundle import Estimators
from hlmm.estimators.state import EstimatorState
from hlmm.market.events import AssetCtx, Bbo, BookSnapshot, MarketEvent, RefQuote, Timer, Trade
from hlmm.market.instrument import Instrument, InstrumentError
from hlmm.market.own_liquidity import bbo_without_own, without_own
from hlmm.market.reference_symbols import resolve_binance_symbol
from hlmm.market.state import MarketState
from hlmm.risk.guard import OrderGuard, min_order_note
from hlmm.risk.kill_switch import KillState, KillSwitch, RiskAction, RiskDecision
from hlmm.strategy.base import QuoteContext
from hlmm.strategy.strategies import make_strategy
from hlmm.strategy.types import DesiredLadder
from hlmm.venue.base import (
    AccountSnapshot,
    CancelFailed,
    CancelOrder,
    CancelRejected,
    Fill,
    Funding,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Tif,
    VenueAction,
    VenueEvent,
    VenueStatus,
)

FLATTEN_SLIPPAGE = 0.01  # IOC flatten limit price: 1% through the touch (a reduce-only IOC never adds risk)
FLATTEN_RETRY_S = 5.0  # retry a flatten that did not (fully) fill
PENDING_NEW_GRACE_S = 5.0  # on sync, an unacked order younger than this may still be in flight
CANCEL_RETRY_S = 10.0  # a cancel unanswered this long is sent again
CANCEL_BACKOFF_S = 0.5  # first retry after a cancel refused without a verdict (429, budget, transport) ...
CANCEL_BACKOFF_MAX_S = 4.0  # ... doubling per failure in a row, up to this
RATE_LIMIT_PAUSE_S = 2.0  # placements paused this long after a rate-limit refusal (doubling while it repeats)
RATE_LIMIT_PAUSE_MAX_S = 8.0
PERSIST_THROTTLE_S = 60.0  # peak/day-start updates are persisted at most this often; kills at once
_INF = math.inf


class EngineError(ValueError):
    """Bad input to the engine (wrong coin, malformed snapshot, ...)."""


class _NullLog:
    """Logger used when none is injected (structlog BoundLogger subset)."""

    def _noop(self, event: str, **kw: Any) -> None:
        return None

    debug = info = warning = error = _noop

    def bind(self, **kw: Any) -> _NullLog:
        return self


class EngineCore:
    """One coin. Functional core: consumes events, returns venue actions. No I/O except the injected logger."""

    def __init__(
        self,
        coin: str,
        inst: Instrument,
        cfg: CoinConfig,
        start_ts: float,
        kill_state: KillState | None = None,
        log: Any | None = None,
        foreign_orders: Literal["cancel", "adopt", "refuse"] = "cancel",
        ref_symbol: str | None = None,
        strategy: Any | None = None,
    ) -> None:
        """``ref_symbol``: the resolved reference (Binance) symbol; overrides ``cfg.reference.binance_symbol`` in
        deciding whether reference quotes feed the fair price (None = use the config, "off" = disabled).
        ``strategy``: a QuoteStrategy instance (default: built from ``cfg.strategy.kind``); its ladders always pass
        through this engine's OrderGuard."""
        if inst.coin != coin:
            raise EngineError(f"instrument {inst.coin!r} does not match engine coin {coin!r}")
        if not math.isfinite(start_ts):
            raise EngineError(f"start_ts must be finite, got {start_ts!r}")
        if foreign_orders not in ("cancel", "adopt", "refuse"):
            raise EngineError(f"foreign_orders must be cancel/adopt/refuse, got {foreign_orders!r}")
        self.coin = coin
        self.inst = inst
        self.cfg = cfg
        self.start_ts = start_ts
        self.foreign_orders = foreign_orders
        self.log = log if log is not None else _NullLog()
        self.market = MarketState(coin, through_after_s=cfg.strategy.trade_through_after_s)
        self.estimators = Estimators(cfg.estimators, start_ts)
        self.kill_switch = KillSwitch(cfg.risk, kill_state)
        self.tracker = OrderTracker()
        self.portfolio = Portfolio()
        self.requote = RequotePolicy(cfg.requote)
        self.recorder = EngineRecorder(start_ts)
        self.strategy = strategy if strategy is not None else make_strategy(cfg.strategy, inst)
        # Stale book (older than stale_book_s by exchange time, or traded through): checked on every timer tick
        # and trade too, not only when the next book arrives - a frozen book sends no next book.
        self._stale_s = cfg.strategy.stale_book_s
        self.book_stale = False
        self.n_own_levels_removed = 0  # book levels that were only our own orders (taken out of the market view)
        self.n_stale_episodes = 0
        self.guard = OrderGuard(inst, cfg.strategy.max_order_fraction, cfg.risk.allow_min_order_over_cap,
                                stale_s=cfg.strategy.stale_book_s, stale_policy=cfg.strategy.stale_policy)
        self.last_raw_ladder: DesiredLadder | None = None  # the strategy's ladder before the guard
        note = min_order_note(inst, cfg.risk.max_position_usd, cfg.strategy.max_order_fraction,
                              cfg.risk.allow_min_order_over_cap)
        if note is not None:
            self.log.warning("min_order_over_cap", coin=coin, detail=note)
        self.last_ladder: DesiredLadder | None = None
        self.estimator_state: EstimatorState | None = None
        self.last_risk: RiskDecision | None = None
        self.last_plan: ReconcilePlan | None = None
        self.n_foreign_events = 0
        self.n_foreign_by_oid = 0  # foreign orders without a cloid, cancelled by oid
        self._by_oid: set[str] = set()  # placeholder cloids of orders the venue only knows by oid
        self.n_cycle_errors = 0
        self.ref_signal: Any = None
        # Issue 10 item 4: one resolution for every mode (backtest, paper, live): an explicit symbol, the mapping
        # table of real equivalents, or off. ``ref_symbol`` (a runner's own resolution) only overrides it.
        ref = ref_symbol if ref_symbol is not None else (resolve_binance_symbol(coin, cfg)[0] or "off")
        self.ref_symbol = None if ref is None or ref == "off" else ref
        if cfg.strategy.ref_weight > 0 and ref is not None and ref != "off":
            from hlmm.strategy.reference import ReferenceSignal  # only needed when the lead-lag signal is on

            self.ref_signal = ReferenceSignal(cfg.strategy, cfg.reference.stale_s)
        self._max_usd = cfg.risk.max_position_usd
        # cloid = 0x + 16 hex prefix + 16 hex counter. The prefix mixes the run's start (ms) with the coin, so a
        # restart or another coin's engine in the same account never reuses a cloid.
        self._cloid_prefix = ((int(start_ts * 1000) << 20) ^ (zlib.crc32(coin.encode()) & 0xFFFFF)) & (2**64 - 1)
        self._cloid_n = 0
        self._bid_hi = -_INF  # highest price of our live non-cancelling bids (cross check on every book)
        self._ask_lo = _INF
        self._healthy = True
        self._shutting_down = False
        self._next_flatten_ts = -_INF
        # Rate limits (429 / the local request budget): placements pause until this time; cancels never do.
        self.rate_limited_until = -_INF
        self._rate_limit_pause = RATE_LIMIT_PAUSE_S
        self.n_rate_limited = 0
        self._last_mid: float | None = None
        self._persist_needed = False
        self._persisted_key: tuple[Any, ...] = self._persist_key()
        self._persisted_ts = start_ts
        self._now = start_ts
        self._dispatch_market: dict[type, Callable[[Any], list[VenueAction]]] = {
            BookSnapshot: self._on_book,
            Bbo: self._on_bbo,
            Trade: self._on_trade,
            RefQuote: self._on_ref,
            AssetCtx: self._on_ctx,
            Timer: self._on_timer_ev,
        }
        self._dispatch_venue: dict[type, Callable[[Any], list[VenueAction]]] = {
            OrderAccepted: self._on_accepted,
            OrderRejected: self._on_rejected,
            OrderCancelled: self._on_cancelled,
            CancelRejected: self._on_cancel_rejected,
            CancelFailed: self._on_cancel_failed,
            Fill: self._on_fill,
            Funding: self._on_funding,
            AccountSnapshot: self.sync,
            VenueStatus: self._on_status,
        }
        if self.kill_switch.killed:
            reason = self.kill_switch.state.reason or "killed"
            self.recorder.on_kill(start_ts, reason)
            self.log.warning("kill", coin=coin, reason=reason, latched=True, detail="restarted with a latched kill")

    @property
    def _quiet(self) -> bool:
        """No logger injected: decision-log kwargs (f-strings, counts) are not built at all; in a backtest without
        logs they cost more than the decisions. Checked per use, so a logger assigned later is honoured."""
        return type(self.log) is _NullLog

    # ---- read-only views ----------------------------------------------------------------------------------
    @property
    def persist_needed(self) -> bool:
        """Kill state changed since the last ``mark_persisted()`` (kills/resets/day changes at once; peak and
        day-start PnL updates at most every PERSIST_THROTTLE_S of engine time)."""
        return self._persist_needed

    @property
    def market_mid(self) -> float | None:
        """The market's mid (our own orders taken out of the venue's book), for result series and markouts."""
        return self.market.mid

    def crossings_at_send(self, actions: Sequence[VenueAction]) -> tuple[int, int]:
        """ALO placements / modify legs of ``actions`` that cross the book as the engine sees it, and those that
        cross one of our own orders (the tracker already holds this batch). The runners count both: they must stay
        0 (the OrderGuard and reconcile rule 5 make them so)."""
        if not any(isinstance(a, PlaceOrder | ModifyOrder) for a in actions):
            return 0, 0
        return (book_crossings(actions, self.market.best_bid, self.market.best_ask),
                own_crossings(actions, self.tracker.live(self.coin)))

    def mark_persisted(self) -> None:
        self.kill_switch.mark_saved()
        self._persisted_key = self._persist_key()
        self._persisted_ts = self._now
        self._persist_needed = False

    @property
    def position(self) -> float:
        return self.portfolio.position

    # ---- warm start -------------------------------------------------------------------------------------
    def use_live_bounds(self) -> None:
        """Bound the engine's memory for a days-long live/paper session (issue 9 item 10): the recorder's series
        become rings of :data:`LIVE_SERIES_MAX` points, the tracker keeps :data:`LIVE_KEEP_TERMINAL` finished
        orders, and the tracker's and portfolio's fill de-duplication keep the :data:`LIVE_FILL_KEYS` most recent
        (tid, oid) keys (why that is safe: :mod:`hlmm.engine.recent`). Backtests keep everything."""
        self.recorder.max_points = LIVE_SERIES_MAX
        self.recorder.trim()
        self.tracker.set_bounds(LIVE_KEEP_TERMINAL, LIVE_FILL_KEYS)
        self.portfolio.set_fill_key_window(LIVE_FILL_KEYS)

    def warm_start(
        self,
        mids: list[tuple[float, float]] | None = None,
        trades: list[Trade] | None = None,
        candles: list[dict] | None = None,
    ) -> None:
        ok = self.estimators.warm_start(mids=mids, trades=trades, candles=candles)
        self.log.info(
            "warm_start", coin=self.coin, warm=bool(ok), n_mids=len(mids or ()), n_trades=len(trades or ()),
            n_candles=len(candles or ()),
        )

    def restore_day(self, position0: float, anchor_px: float | None, fills: list[Fill]) -> int:
        """Live restart: rebuild today's accounting so ``pnl_total`` is the PnL of the day window that
        ``risk.kill_switch.resume_state`` rebased the kill state onto: the position held when the window began
        (``position0``) valued at ``anchor_px``, then today's fills (deduplicated by (tid, oid)). Call once, before
        ``sync``; returns how many fills were applied. Backtest and paper never call it (they start flat at 0)."""
        if self.portfolio.n_fills or self.portfolio.position:
            raise EngineError("restore_day must be called on a fresh engine")
        if position0 != 0.0:
            if anchor_px is None:
                raise EngineError(f"a position of {position0} at the day's start needs an anchor price")
            self.portfolio.adopt(position0, anchor_px)
        n = 0
        for f in sorted(fills, key=lambda x: x.ts):
            if f.coin == self.coin:
                n += self.portfolio.on_fill(f)
        self.recorder.on_position(self._now, self.portfolio.position)
        self.log.info("day_restored", coin=self.coin, position0=position0, anchor_px=anchor_px, fills=n,
                      position=self.portfolio.position, realized=self.portfolio.realized, fees=self.portfolio.fees)
        return n

    # ---- market events (hot path) ---------------------------------------------------------------------------
    def on_market(self, ev: MarketEvent) -> list[VenueAction]:
        h = self._dispatch_market.get(type(ev))
        if h is None:
            raise EngineError(f"unsupported market event {type(ev).__name__}")
        return h(ev)

    def _after_book(self, ts: float) -> list[VenueAction]:
        m = self.market
        bb, ba = m.best_bid, m.best_ask
        mid = None
        if bb is not None and ba is not None:
            mid = 0.5 * (bb + ba)
            self._last_mid = mid
            if self.ref_signal is not None:
                self.ref_signal.on_mid(ts, mid)
        if ts > self._now:
            self._now = ts
        rec = self.recorder
        rec.n_market_events += 1
        if ts >= rec._next_sample:
            rec.sample(ts, mid, self.portfolio.pnl_total(mid) if mid is not None else None)
        crosses = (ba is not None and ba <= self._bid_hi) or (bb is not None and bb >= self._ask_lo)
        if self.book_stale:
            self._check_stale(ts)
        why = self.requote.decide(ts, mid, crosses)
        if why is None:
            return []
        return self._cycle(ts, why)

    def _check_stale(self, ts: float) -> None:
        """Book freshness changed: requote at once (pull or widen on stale, per the policy; back on fresh)."""
        stale = self.market.is_stale(ts, self._stale_s)
        if stale == self.book_stale:
            return
        self.book_stale = stale
        m = self.market
        if stale:
            self.n_stale_episodes += 1
            self.log.warning("book_stale", coin=self.coin, age_s=round(m.book_age(ts), 3),
                             trade_through=m.through_px, policy=self.guard.stale_policy)
        else:
            self.log.info("book_fresh", coin=self.coin)
        self.requote.note_urgent("stale_book" if stale else "book_fresh")

    def _own_resting(self) -> tuple[dict[float, float], dict[float, float]]:
        """Our live size per price (bids, asks): what the venue's book may show of ours. Not only acknowledged
        orders: the book can show an order before its ack reaches us (and after its cancel was sent). Taking out a
        level of ours that is not (yet) there only makes the market look thinner at our own price, the safe error;
        leaving one in makes the engine quote against itself."""
        bids: dict[float, float] = {}
        asks: dict[float, float] = {}
        for o in self.tracker.live(self.coin):
            if o.remaining > 0:
                side = bids if o.is_buy else asks
                side[o.px] = side.get(o.px, 0.0) + o.remaining
        return bids, asks

    def _on_book(self, ev: BookSnapshot) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        own_b, own_a = self._own_resting()
        if own_b or own_a:
            # The venue's book includes our own orders: the market is what is left (fair price, microprice,
            # BBO guard and markouts must not lean on our own quotes).
            ev, gone = without_own(ev, own_b, own_a)
            self.n_own_levels_removed += gone
        self.market.on_book(ev)
        self.estimators.on_book(ev)
        return self._after_book(ev.ts)

    def _on_bbo(self, ev: Bbo) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        own_b, own_a = self._own_resting()
        if own_b or own_a:
            ev = bbo_without_own(ev, own_b, own_a)
        self.market.on_bbo(ev)
        self.estimators.on_bbo(ev)
        return self._after_book(ev.ts)

    def _on_trade(self, ev: Trade) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        self.estimators.on_trade(ev, self.market.mid)  # the mid just before the trade
        self.market.on_trade(ev)
        self.recorder.n_market_events += 1
        ts = ev.ts
        if ts > self._now:
            self._now = ts
        if self.market.through_px is not None and not self.book_stale:
            self._check_stale(ts)  # printed through the book: stale now, fair price moves to the trade
        why = self.requote.decide(ts, self._last_mid, False)
        if why is None:
            return []
        return self._cycle(ts, why)

    def _on_ref(self, ev: RefQuote) -> list[VenueAction]:
        self.market.on_ref(ev)
        if self.ref_signal is not None:
            self.ref_signal.on_ref(ev)
        self.recorder.n_market_events += 1
        return []

    def _on_ctx(self, ev: AssetCtx) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        self.market.on_ctx(ev)
        return []

    def _on_timer_ev(self, ev: Timer) -> list[VenueAction]:
        return self.on_timer(ev.ts)

    def on_timer(self, ts: float) -> list[VenueAction]:
        """Periodic: sample series, risk (staleness/limits/day roll), kill enforcement, requote timers."""
        if ts > self._now:
            self._now = ts
        mid = self.market.mid
        rec = self.recorder
        if ts >= rec._next_sample:
            rec.sample(ts, mid, self.portfolio.pnl_total(mid) if mid is not None else None)
        self._risk(ts)
        self._check_stale(ts)
        retry = self._retry_cancels(ts)
        if self.kill_switch.killed:
            return retry + self._kill_actions(ts)
        if self._shutting_down:
            return retry
        bb, ba = self.market.best_bid, self.market.best_ask
        crosses = (ba is not None and ba <= self._bid_hi) or (bb is not None and bb >= self._ask_lo)
        why = self.requote.decide(ts, mid, crosses)
        if why is None:
            return retry
        return retry + self._cycle(ts, why, risk_done=True)

    def _retry_cancels(self, ts: float) -> list[VenueAction]:
        """Re-send cancels that got no verdict: unanswered for CANCEL_RETRY_S (a lost request must not leave an
        order resting), or refused without a verdict on the order (429, budget, transport) - those after a backoff
        that doubles per failure in a row. Cancels are never held back by the placement pause."""
        acts: list[VenueAction] = []
        for o in self.tracker.live(self.coin):
            if o.cancel_failures > 0 and o.cancel_failed_ts >= o.cancel_sent_ts:
                due = ts - o.cancel_failed_ts >= min(CANCEL_BACKOFF_MAX_S,
                                                     CANCEL_BACKOFF_S * 2 ** (o.cancel_failures - 1))
            else:
                due = ts - o.updated_ts >= CANCEL_RETRY_S
            if (o.cancel_pending or (o.needs_cancel and o.cancel_failures > 0)) and due:
                why = o.cancel_reason or "unknown state"
                if not why.startswith("cancel retry"):
                    why = f"cancel retry ({why})"
                acts.append(self._send_cancel(o, ts, why))
        return acts

    def _note_rate_limited(self, ts: float, what: str, message: str) -> None:
        """A request was refused by a rate limit (never reached the book): pause placements with a growing backoff;
        a health state of its own, never a rejection for the kill switch."""
        self.n_rate_limited += 1
        if ts < self.rate_limited_until:
            self._rate_limit_pause = min(RATE_LIMIT_PAUSE_MAX_S, self._rate_limit_pause * 2)
        elif ts - self.rate_limited_until > RATE_LIMIT_PAUSE_MAX_S:
            self._rate_limit_pause = RATE_LIMIT_PAUSE_S
        was = ts < self.rate_limited_until
        self.rate_limited_until = max(self.rate_limited_until, ts + self._rate_limit_pause)
        if not was:
            self.log.warning("rate_limited", coin=self.coin, what=what, message=message,
                             pause_s=self._rate_limit_pause)

    @property
    def rate_limited(self) -> bool:
        return self._now < self.rate_limited_until

    # ---- venue events ---------------------------------------------------------------------------------
    def on_venue(self, ev: VenueEvent) -> list[VenueAction]:
        h = self._dispatch_venue.get(type(ev))
        if h is None:
            raise EngineError(f"unsupported venue event {type(ev).__name__}")
        ts = getattr(ev, "ts", None)
        if ts is not None and ts > self._now:
            self._now = ts
        return h(ev)

    def _on_accepted(self, ev: OrderAccepted) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        o = self.tracker.on_accepted(ev)
        self._resting_changed(ev.ts)
        if o is None:
            # Not ours (or long forgotten): never leave an unknown order resting.
            self.log.warning("cancel", coin=self.coin, cloid=ev.cloid, oid=ev.oid, reason="foreign order acked")
            self.recorder.on_cancel("foreign")
            return [CancelOrder(coin=self.coin, cloid=ev.cloid, reason="foreign order acked")]
        acts: list[VenueAction] = []
        if o.is_live and not o.cancel_pending and (self.kill_switch.killed or self._shutting_down or o.needs_cancel):
            why = "kill" if self.kill_switch.killed else ("shutdown" if self._shutting_down else "unknown state")
            acts.append(self._send_cancel(o, ev.ts, why))
        self._update_extremes()
        return acts

    def _on_rejected(self, ev: OrderRejected) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        before = self.tracker.get(ev.cloid)
        px = None if before is None else before.target_px  # what was rejected (read before the tracker moves on)
        sz = None if before is None else before.target_sz
        o = self.tracker.on_rejected(ev)
        self._update_extremes()
        self._resting_changed(ev.ts)
        self.recorder.on_rejection(str(ev.reason))
        if not self._quiet:
            self.log.info(
                "reject", coin=self.coin, cloid=ev.cloid, reason=str(ev.reason), message=ev.message, px=px, sz=sz,
                book=f"{self.market.best_bid}@{self.market.best_ask}",
            )
        if ev.reason == RejectReason.RATE_LIMIT:
            # A refused request (429 / local budget), not the exchange's verdict on our order: back off, not a kill.
            self._note_rate_limited(ev.ts, "place", ev.message)
        else:
            d = self.kill_switch.record_rejection(ev.ts)
            if d is not None:
                self._on_killed(ev.ts, d)
        if self.kill_switch.killed:
            return self._kill_actions(ev.ts)
        if ev.reason == RejectReason.POST_ONLY_CROSS or (o is not None and o.needs_cancel):
            # A missing quote must not wait: requote now against the freshest book we have.
            self.requote.note_urgent("post_only_reject" if ev.reason == RejectReason.POST_ONLY_CROSS else "reject")
        else:
            self.requote.note_event("reject")
        return self._maybe_cycle(ev.ts)

    def _on_cancelled(self, ev: OrderCancelled) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        o = self.tracker.on_cancelled(ev)
        self._update_extremes()
        self._resting_changed(ev.ts)
        if ev.reason != "requested" and not self._quiet:
            self.log.info("cancelled_by_venue", coin=self.coin, cloid=ev.cloid, oid=ev.oid, reason=ev.reason)
        if o is not None and o.terminal is None and ev.oid in o.old_oids:
            # The old leg of our own cancel-replace left the book (or a late copy of that event): expected, and the
            # replacement is still pending (its reject, if any, triggers a cycle). Nothing to requote for: only the
            # usual triggers (price move, timer, crossing) apply. This was ~30% of all quote cycles in a backtest.
            return self._maybe_cycle(ev.ts)
        self.requote.note_event("cancel")
        return self._maybe_cycle(ev.ts)

    def _on_cancel_rejected(self, ev: CancelRejected) -> list[VenueAction]:
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        self.tracker.on_cancel_rejected(ev)
        self._update_extremes()
        self._resting_changed(ev.ts)
        self.log.info("cancel_rejected", coin=self.coin, cloid=ev.cloid, message=ev.message)
        self.requote.note_event("cancel_rejected")
        return self._maybe_cycle(ev.ts)

    def _on_cancel_failed(self, ev: CancelFailed) -> list[VenueAction]:
        """No verdict on the order (429, budget, transport, whole-action refusal): it may still rest. It stays live
        and cancel-pending; on_timer retries with backoff."""
        if ev.coin != self.coin:
            self.n_foreign_events += 1
            return []
        o = self.tracker.on_cancel_failed(ev)
        if ev.rate_limited:
            self._note_rate_limited(ev.ts, "cancel", ev.message)
        if not self._quiet:
            self.log.info("cancel_failed", coin=self.coin, cloid=ev.cloid, message=ev.message,
                          rate_limited=ev.rate_limited, failures=None if o is None else o.cancel_failures)
        return []

    def _on_fill(self, f: Fill) -> list[VenueAction]:
        if f.coin != self.coin:
            self.n_foreign_events += 1
            return []
        new = self.portfolio.on_fill(f)
        self.tracker.on_fill(f)
        if not new:
            self.log.info("duplicate_fill", coin=self.coin, tid=f.tid, oid=f.oid)
            return []
        self._update_extremes()
        self._resting_changed(f.ts)
        pos = self.portfolio.position
        mid = self.market.mid
        mid_f = mid if mid is not None else math.nan
        self.recorder.on_fill(f.ts, f.is_buy, f.px, f.sz, f.fee, f.is_maker, mid_f)
        self.recorder.on_position(f.ts, pos)
        if not self._quiet:
            self.log.info(
                "fill", coin=self.coin, cloid=f.cloid, oid=f.oid, tid=f.tid, side="B" if f.is_buy else "A", px=f.px,
                sz=f.sz, fee=f.fee, maker=f.is_maker, remaining=f.remaining, position=pos,
                pnl=None if mid is None else round(self.portfolio.pnl_total(mid), 6),
            )
        if self.kill_switch.killed:
            return self._kill_actions(f.ts)
        self.requote.note_event("fill")
        return self._maybe_cycle(f.ts)

    def _on_funding(self, f: Funding) -> list[VenueAction]:
        if f.coin != self.coin:
            self.n_foreign_events += 1
            return []
        self.portfolio.on_funding(f)
        self.log.info("funding", coin=self.coin, usdc=f.usdc, rate=f.rate, szi=f.szi)
        return []

    def _on_status(self, ev: VenueStatus) -> list[VenueAction]:
        if ev.healthy == self._healthy:
            return []
        self._healthy = ev.healthy
        if not ev.healthy:
            # Our view of orders can no longer be trusted: stop quoting until the venue is healthy again (the
            # runner then calls sync() with a fresh snapshot).
            self.log.warning("venue_unhealthy", coin=self.coin, detail=ev.detail)
            d = self.kill_switch.record_error(ev.ts)
            if d is not None:
                self._on_killed(ev.ts, d)
            return []
        self.log.info("venue_healthy", coin=self.coin, detail=ev.detail)
        self.requote.note_urgent("venue_healthy")
        return self._maybe_cycle(ev.ts)

    # ---- sync / kill / shutdown ---------------------------------------------------------------------------
    def sync(self, snap: AccountSnapshot) -> list[VenueAction]:
        """Adopt venue truth (start-up/reconnect): position, resting orders; foreign orders by policy."""
        if snap.coin != self.coin:
            raise EngineError(f"snapshot for {snap.coin!r} given to the {self.coin!r} engine")
        ts = snap.ts
        if ts > self._now:
            self._now = ts
        p = self.portfolio
        if abs(snap.position - p.position) > 0.5 * self.inst.lot:
            self.log.warning(
                "position_adopted", coin=self.coin, ours=p.position, venue=snap.position, entry_px=snap.entry_px
            )
            p.adopt(snap.position, snap.entry_px)
            self.recorder.on_position(ts, p.position)
        acts: list[VenueAction] = []
        seen: set[str] = set()
        tr = self.tracker
        refuse = False
        for oo in snap.open_orders:
            if oo.coin != self.coin:
                continue
            known = oo.cloid is not None and oo.cloid in tr
            if known:
                assert oo.cloid is not None
                o = tr.adopt(self.coin, oo.cloid, oo.oid, oo.is_buy, oo.px, oo.sz, ts)
                seen.add(oo.cloid)
                if self.kill_switch.killed and not o.cancel_pending:
                    acts.append(self._send_cancel(o, ts, "kill"))
                continue
            if oo.cloid is None:
                # No cloid: tracked under a placeholder (exposure counted until the venue confirms) and cancelled
                # by oid under every policy: an order we cannot address by cloid cannot be adopted and modified.
                ph = self._placeholder_cloid(oo.oid)
                o = tr.adopt(self.coin, ph, oo.oid, oo.is_buy, oo.px, oo.sz, ts)
                seen.add(ph)
                if ph not in self._by_oid:
                    self._by_oid.add(ph)
                    self.n_foreign_by_oid += 1
                    self.log.warning("foreign_order_without_cloid", coin=self.coin, oid=oo.oid, px=oo.px, sz=oo.sz,
                                     is_buy=oo.is_buy, placeholder=ph)
                if self.foreign_orders == "refuse":
                    refuse = True
                if not o.cancel_pending:
                    acts.append(self._send_cancel(o, ts, "foreign order"))
                continue
            o = tr.adopt(self.coin, oo.cloid, oo.oid, oo.is_buy, oo.px, oo.sz, ts)  # exposure counted either way
            seen.add(oo.cloid)
            if self.foreign_orders == "refuse":
                refuse = True
            if self.foreign_orders == "cancel" or self.kill_switch.killed or refuse:
                acts.append(self._send_cancel(o, ts, "foreign"))
            else:
                self.log.info("foreign_order_adopted", coin=self.coin, cloid=oo.cloid, oid=oo.oid, px=oo.px, sz=oo.sz)
        for o in tr.live(self.coin):
            if o.cloid in seen or o.tif != Tif.ALO:
                continue
            if o.acked or ts - o.created_ts > PENDING_NEW_GRACE_S:
                tr.presume_gone(o.cloid, ts)
                self.log.info("order_presumed_gone", coin=self.coin, cloid=o.cloid, oid=o.oid, state=str(o.state))
        if refuse:
            acts.extend(self.kill(ts, "foreign orders present at sync (policy refuse)"))
        self._update_extremes()
        self._resting_changed(ts)
        self.requote.note_urgent("sync")
        if self.kill_switch.killed:
            acts.extend(self._kill_actions(ts))
            return acts
        acts.extend(self._maybe_cycle(ts))
        return acts

    def kill(self, ts: float, reason: str) -> list[VenueAction]:
        """Manual kill: latch, cancel all (and flatten with reduce-only IOC if configured)."""
        if ts > self._now:
            self._now = ts
        d = self.kill_switch.manual_kill(ts, reason)
        self._on_killed(ts, d)
        return self._kill_actions(ts)

    def shutdown(self, ts: float) -> list[VenueAction]:
        """Cancel everything resting or pending; quote no more."""
        if ts > self._now:
            self._now = ts
        self._shutting_down = True
        if self.kill_switch.changed:
            # A clean exit saves the latest peak / day start (the persist throttle is for the hot path): the next
            # process measures its drawdown from this peak.
            self._persist_needed = True
        acts: list[VenueAction] = []
        for o in self.tracker.live(self.coin):
            if not o.cancel_pending and o.tif == Tif.ALO:
                acts.append(self._send_cancel(o, ts, "shutdown"))
        self._update_extremes()
        self.log.info("shutdown", coin=self.coin, cancels=len(acts), position=self.portfolio.position)
        return acts

    # ---- internals: the quote cycle ----------------------------------------------------------------------
    def _maybe_cycle(self, ts: float) -> list[VenueAction]:
        if self._shutting_down:
            return []
        bb, ba = self.market.best_bid, self.market.best_ask
        crosses = (ba is not None and ba <= self._bid_hi) or (bb is not None and bb >= self._ask_lo)
        why = self.requote.decide(ts, self._last_mid, crosses)
        if why is None:
            return []
        return self._cycle(ts, why)

    def _risk(self, ts: float) -> RiskDecision:
        mid = self.market.mid
        mark = mid if mid is not None else (self._last_mid if self._last_mid is not None else self.portfolio.avg_entry)
        pnl = self.portfolio.pnl_total(mark)
        pos_value = abs(self.portfolio.position) * mark
        # No book yet: the feed has been silent since we started.
        no_book = self.market.book_ts_exchange is None
        age = max(0.0, ts - self.start_ts) if no_book else self.market.book_age(ts)
        was_killed = self.kill_switch.killed
        d = self.kill_switch.check(ts, pnl, pos_value, age, mark_px=mark if mark > 0 else None)
        self.last_risk = d
        if d.action is RiskAction.KILL and not was_killed:
            self._on_killed(ts, d)
        self._update_persist(ts)
        return d

    def _cycle(self, ts: float, why: str, risk_done: bool = False) -> list[VenueAction]:
        rec = self.recorder
        rec.n_quote_cycles += 1
        d = self.last_risk if risk_done and self.last_risk is not None else self._risk(ts)
        if self.kill_switch.killed:
            self.requote.mark_quoted(ts, self._last_mid)
            return self._kill_actions(ts)
        if self._shutting_down:
            return []
        try:
            return self._quote(ts, why, d)
        except (EngineError, TrackerError, AssertionError):
            raise  # our own invariants: never swallowed
        except Exception as e:  # fail safe: a broken cycle must not leave stale orders resting
            return self._cycle_failed(ts, why, e)

    def _cycle_failed(self, ts: float, why: str, e: Exception) -> list[VenueAction]:
        """A quote cycle raised (estimator/strategy bug, bad data): pull every quote, count an error (the kill
        switch latches after ``max_errors_per_min``), and try again on the next trigger."""
        self.n_cycle_errors += 1
        self.requote.mark_quoted(ts, None)
        self.requote.note_event("cycle_error")
        self.log.error("cycle_error", coin=self.coin, trigger=why, error=f"{type(e).__name__}: {e}",
                       n_errors=self.n_cycle_errors)
        d = self.kill_switch.record_error(ts)
        if d is not None:
            self._on_killed(ts, d)
        if self.kill_switch.killed:
            return self._kill_actions(ts)
        acts: list[VenueAction] = []
        for o in self.tracker.live(self.coin):
            if not o.cancel_pending and o.tif == Tif.ALO:
                acts.append(self._send_cancel(o, ts, "cycle error"))
        self._update_extremes()
        return acts

    def _quote(self, ts: float, why: str, d: RiskDecision) -> list[VenueAction]:
        rec = self.recorder
        est = self.estimators.state(ts)
        self.estimator_state = est
        mid = self.market.mid
        if not est.ready or not self._healthy:
            # Re-check soon (min interval), not on every event: the warm-up timeout is time-based.
            self.requote.mark_quoted(ts, None)
            self.requote.note_event("warmup" if not est.ready else "unhealthy")
            return []
        if rec.first_ready_ts is None:
            rec.first_ready_ts = ts
            self.log.info("ready", coin=self.coin, reason=est.reason, warmup=round(est.warmup, 3),
                          after_s=round(ts - self.start_ts, 3))
        reduce_only = d.action is RiskAction.REDUCE_ONLY
        pos = self.portfolio.position
        ref_adj = self.ref_signal.adjust_bps(ts) if self.ref_signal is not None else 0.0
        ctx = QuoteContext(self.inst, self.market, est, pos, self._max_usd, ts, reduce_only, ref_adj, d)
        raw = self.strategy.quote(ctx)
        self.last_raw_ladder = raw
        ladder = self.guard.apply(raw, ctx)
        self.last_ladder = ladder
        ref_px = self.guard.ref_px  # never below the best bid: a strategy's low fair cannot inflate the room
        fair = ref_px if ref_px is not None and ref_px > 0 else (mid or 0.0)
        if fair > 0:
            try:
                eff = self.inst.floor_size(self._max_usd / fair)
            except InstrumentError:
                eff = 0.0
        else:
            eff = 0.0
        if reduce_only:
            room_bid, room_ask = max(0.0, -pos), max(0.0, pos)
        else:
            room_bid, room_ask = max(0.0, eff - pos), max(0.0, eff + pos)
        plan = reconcile(
            ladder, self.tracker.live(self.coin), self.inst, self.cfg.requote, room_bid, room_ask,
            best_bid=self.market.best_bid, best_ask=self.market.best_ask, reduce_only=reduce_only, position=pos,
            cloid_factory=self._new_cloid,
        )
        if ts < self.rate_limited_until:
            # Rate-limited: keep the plan's cancels (they reduce risk), hold placements and modifies.
            plan = ReconcilePlan(
                actions=[a for a in plan.actions if isinstance(a, CancelOrder)],
                reasons=[r for a, r in zip(plan.actions, plan.reasons, strict=False) if isinstance(a, CancelOrder)],
                deferred=[*plan.deferred, "rate limited"], kept=plan.kept,
            )
        self.last_plan = plan
        acts = self._commit(plan, ts)
        self.requote.mark_quoted(ts, mid)
        b0 = ladder.bids[0].px if ladder.bids else math.nan
        a0 = ladder.asks[0].px if ladder.asks else math.nan
        rec.quotes.append((ts, b0, a0, len(ladder.bids), len(ladder.asks)))
        rec.deferred += len(plan.deferred)
        if (acts or plan.deferred) and not self._quiet:
            self.log.info(
                "quote", coin=self.coin, ts=ts, trigger=why, fair=ladder.fair, bid=b0, ask=a0,
                n_bids=len(ladder.bids), n_asks=len(ladder.asks), place=plan.n_place, modify=plan.n_modify,
                cancel=plan.n_cancel, kept=plan.kept, deferred=plan.deferred[:4], position=pos,
                room_bid=room_bid, room_ask=room_ask, risk=d.action.value, ladder=ladder.reason,
                dropped=list(ladder.dropped[:4]),
            )
        return acts

    def _commit(self, plan: ReconcilePlan, ts: float) -> list[VenueAction]:
        """Record every action's intent in the tracker before it leaves the engine."""
        tr, rec, log = self.tracker, self.recorder, self.log
        by_oid = self._by_oid
        acts = plan.actions
        for k, a in enumerate(acts):
            if isinstance(a, PlaceOrder):
                tr.on_place(a, ts)
                rec.on_send("place", a.sz, ts)
            elif isinstance(a, ModifyOrder):
                # Orders known by oid only are cancelled at sync and never become reconcile candidates.
                assert a.cloid not in by_oid, f"modify of an order without cloid ({a.cloid})"
                tr.on_modify_sent(a, ts)
                rec.on_send("modify", a.new.sz, ts)
            else:
                o = tr.on_cancel_sent(a.cloid, ts, a.reason)
                if by_oid and a.cloid in by_oid and a.oid is None:
                    acts[k] = CancelOrder(coin=a.coin, cloid=a.cloid, reason=a.reason, oid=o.oid)
                rec.on_cancel(a.reason)
                if not self._quiet:
                    log.info("cancel", coin=self.coin, cloid=a.cloid, oid=o.oid, px=o.target_px, sz=o.target_sz,
                             is_buy=o.is_buy, reason=a.reason, book=f"{self.market.best_bid}@{self.market.best_ask}")
        self._update_extremes()
        return acts

    def _send_cancel(self, o: TrackedOrder, ts: float, reason: str) -> CancelOrder:
        self.tracker.on_cancel_sent(o.cloid, ts, reason)
        self.recorder.on_cancel(reason)
        if not self._quiet:
            self.log.info("cancel", coin=self.coin, cloid=o.cloid, oid=o.oid, px=o.target_px, sz=o.target_sz,
                          is_buy=o.is_buy, reason=reason)
        # An order known by oid only (foreign, no cloid) is addressed by its oid; cloid is our placeholder.
        oid = o.oid if o.cloid in self._by_oid else None
        return CancelOrder(coin=self.coin, cloid=o.cloid, reason=reason, oid=oid)

    def _kill_actions(self, ts: float) -> list[VenueAction]:
        """While killed: cancel whatever is live and not already being cancelled; flatten if configured."""
        acts: list[VenueAction] = []
        for o in self.tracker.live(self.coin):
            if not o.cancel_pending and o.tif == Tif.ALO:
                acts.append(self._send_cancel(o, ts, "kill"))
        if self.cfg.risk.flatten_on_kill and not self._shutting_down:
            fl = self._flatten(ts)
            if fl is not None:
                acts.append(fl)
        if acts:
            self._update_extremes()
        return acts

    def _flatten(self, ts: float) -> PlaceOrder | None:
        pos = self.portfolio.position
        if pos == 0.0 or ts < self._next_flatten_ts:
            return None
        if any(o.tif == Tif.IOC for o in self.tracker.live(self.coin)):
            return None  # one flatten at a time
        is_buy = pos < 0
        sz = self.inst.floor_size(abs(pos))
        touch = self.market.best_ask if is_buy else self.market.best_bid
        if sz <= 0 or touch is None:
            return None
        px = (self.inst.round_ask(touch * (1 + FLATTEN_SLIPPAGE)) if is_buy
              else self.inst.round_bid(touch * (1 - FLATTEN_SLIPPAGE)))
        self._next_flatten_ts = ts + FLATTEN_RETRY_S
        why = f"kill flatten: position {pos:g}, touch {touch}, limit {px} ({FLATTEN_SLIPPAGE:.0%} through)"
        req = PlaceOrder(coin=self.coin, cloid=self._new_cloid(), is_buy=is_buy, px=px, sz=sz, tif=Tif.IOC,
                         reduce_only=True, reason=why)
        self.tracker.on_place(req, ts)
        self.recorder.on_send("flatten", sz, ts)
        self.log.warning("flatten", coin=self.coin, cloid=req.cloid, is_buy=is_buy, px=px, sz=sz, position=pos)
        return req

    def _on_killed(self, ts: float, d: RiskDecision) -> None:
        reason = self.kill_switch.state.reason or d.reason
        if self.recorder.kill_reason is None:
            self.recorder.on_kill(ts, reason)
            self.log.warning(
                "kill", coin=self.coin, reason=reason, position=self.portfolio.position,
                live_orders=len(self.tracker.live(self.coin)), **{k: v for k, v in d.figures.items()},
            )
        self._update_persist(ts)

    # ---- small helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _placeholder_cloid(oid: int) -> str:
        """Deterministic cloid for a venue order without one (the same oid maps to the same placeholder across
        syncs). The all-zero high half never occurs in our own cloids (their prefix mixes the start time in)."""
        return "0x" + f"{0:016x}{oid & (2**64 - 1):016x}"

    def _new_cloid(self) -> str:
        self._cloid_n += 1
        return "0x" + f"{self._cloid_prefix:016x}{self._cloid_n:016x}"

    def _update_extremes(self) -> None:
        hi, lo = -_INF, _INF
        alo = Tif.ALO
        for o in self.tracker.live(self.coin):
            if o.cancel_pending or o.tif != alo:
                continue
            px = o.target_px
            if o.is_buy:
                if px > hi:
                    hi = px
            elif px < lo:
                lo = px
        self._bid_hi, self._ask_lo = hi, lo

    def _resting_changed(self, ts: float) -> None:
        nb, na = self.tracker.resting_counts()
        self.recorder.on_resting(ts, nb, na)

    def _persist_key(self) -> tuple[Any, ...]:
        s = self.kill_switch.state
        return (s.killed, s.reason, s.day, s.last_reset_at)

    def _update_persist(self, ts: float) -> None:
        ks = self.kill_switch
        if not ks.changed or self._persist_needed:
            return
        if self._persist_key() != self._persisted_key or ts - self._persisted_ts >= PERSIST_THROTTLE_S:
            self._persist_needed = True
