"""The local exchange's state machine: accounts, agents, nonces, budgets, public books and the protocol handlers.

``ExchangeCore`` is a plain object of its inputs (every call takes the exchange time ``now`` in seconds); the aiohttp
shell in ``app.py`` does all I/O. Matching is ``hlmm.sim.exchange.SimExchange`` — one instance per account (each
sees the same market, accounts never trade with each other). This layer adds what the protocol needs on top:
global oids/tids, oid <-> cloid mapping (orders without a cloid get a hidden internal one), the wire shapes of
info replies, exchange responses and WS messages (collected in ``outbox`` for the shell to broadcast).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, Trade
from hlmm.market.instrument import (
    HIP3_ASSET_BASE,
    HIP3_DEX_STRIDE,
    Instrument,
    InstrumentRegistry,
    UnknownCoinError,
)
from hlmm.sim.exchange import ActionResult, SimExchange, SimOrder
from hlmm.sim.latency import LatencyModel
from hlmm.sim.server import validate
from hlmm.sim.server.limits import NonceError, NonceSet, check_nonce_window, open_order_limit
from hlmm.venue.base import (
    CancelOrder,
    Fill,
    Funding,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    Tif,
    VenueEvent,
)
from hlmm.venue.hyperliquid.signing import (
    APPROVE_AGENT_PRIMARY_TYPE,
    APPROVE_AGENT_TYPES,
    SigningError,
    recover_l1_signer,
    recover_user_signed,
)

MSG_CANCEL_UNKNOWN = "Order was never placed, already canceled, or filled."
MSG_MODIFY_UNKNOWN = "Cannot modify canceled or filled order"
MSG_TOO_MANY_REQUESTS = (
    "Too many cumulative requests sent ({used} > {cap}) for cumulative volume traded ${vlm}. "
    "Place taker orders to free up 1 request per USDC traded."
)
MSG_NO_USER = "User or API Wallet {addr} does not exist."
MSG_SCHED_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."
MSG_SCHED_VOLUME = "Cannot set scheduled cancel time until enough volume traded. Required: ${req}. Traded: ${vlm}."
MSG_SCHED_TOO_MANY = "Too many scheduled cancel triggers today."  # UNCONFIRMED text
MSG_EXPIRED = "Action already expired"  # UNCONFIRMED text
MSG_BAD_LEVERAGE = "Invalid leverage value"
MSG_TRIGGER_UNSUPPORTED = "Trigger orders are not supported by the local exchange."
MSG_FAULT_REJECT = "Order rejected (injected fault)."
MSG_WRONG_CHAIN = "Invalid hyperliquidChain: this is {want}, the action says {got}."  # UNCONFIRMED text
MSG_TOO_MANY_OPEN = "Too many open orders."  # UNCONFIRMED text (the limit itself is documented, reference §6)
MSG_TOO_MANY_OPEN_REDUCE_ONLY = "Reduce only order rejected: too many open orders."  # UNCONFIRMED text

_DAY_MS = 86_400_000
_INTERNAL_CLOID_PREFIX = "0xfeedfeed"  # hidden cloids for orders sent without one
_FILLS_KEPT = 10_000
_TRADES_KEPT = 100
_CANDLE_MINUTES_KEPT = 3 * 24 * 60
_INTERVALS_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                 "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}
_USER_SIGNED = {"approveAgent": (APPROVE_AGENT_TYPES, APPROVE_AGENT_PRIMARY_TYPE)}
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class RequestError(ValueError):
    """A request the exchange cannot deserialize (HTTP 422, like Hyperliquid's body parser)."""


def num(x: float, nd: int = 8) -> str:
    """Decimal string without exponent or trailing zeros, at most ``nd`` decimals (for display values)."""
    if x is None or not math.isfinite(x):
        return "0"
    d = Decimal(repr(round(float(x), nd))).normalize()
    s = f"{d:f}"
    return "0" if s in ("-0", "") else s


def ms(t: float) -> int:
    return round(t * 1000)


@dataclass
class ServerConfig:
    """Exchange rules and knobs of the local server (all plain values, picklable)."""

    starting_usdc: float = 10_000.0
    is_mainnet: bool = False  # signature source of this server's network: True mainnet "a", False testnet "b"
    auto_accounts: bool = True  # any signer becomes an account with starting_usdc
    accounts: dict[str, float] = field(default_factory=dict)  # pre-created accounts -> USDC
    agents: dict[str, str] = field(default_factory=dict)  # pre-approved agent -> master
    address_budget_base: int = 10_000  # per-address action budget = base + cumulative USDC volume
    open_order_base: int = 1000  # open orders per account: base + 1 per $5M volume, at most 5 * base
    schedule_cancel_min_volume: float = 0.0  # Hyperliquid mainnet: 1_000_000
    schedule_cancel_max_per_day: int = 10
    funding_rate_per_hour: float = 0.0000125
    order_latency_s: float = 0.0  # matching happens on receipt; replies are immediate
    seed: int = 0


@dataclass
class Account:
    """One trading account: its matching engine plus what the protocol layer tracks."""

    address: str
    ex: SimExchange
    n_requests: int = 0
    throttled_at_ms: int = -(10**15)
    fills: deque[dict] = field(default_factory=lambda: deque(maxlen=_FILLS_KEPT))
    leverage: dict[int, tuple[bool, int]] = field(default_factory=dict)
    schedule_cancel_ms: int | None = None
    schedule_cancel_day: tuple[int, int] = (0, 0)  # (utc day, scheduled cancels fired that day)
    last_realized: dict[str, float] = field(default_factory=dict)

    def volume(self) -> float:
        return sum(self.ex.position(c).volume for c in self.ex.registry.coins())


@dataclass
class PublicBook:
    """What the exchange publishes for one coin (source book; our resting orders are merged in on read)."""

    coin: str
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    time_ms: int = 0
    true_mid: float | None = None  # latest source mid even while the published book is frozen
    true_bids: tuple[BookLevel, ...] = ()  # latest source book (what the matching engines see)
    true_asks: tuple[BookLevel, ...] = ()
    last_trade_px: float | None = None
    prev_day_px: float | None = None
    day_ntl_vlm: float = 0.0
    day_base_vlm: float = 0.0
    trades: deque[dict] = field(default_factory=lambda: deque(maxlen=_TRADES_KEPT))
    candles: dict[int, list[float]] = field(default_factory=dict)  # minute ms -> [o, h, l, c, v, n]
    frozen_until: float = -math.inf
    last_bbo: tuple | None = None


Outbox = list[tuple[str, str, Any]]  # (channel, routing key, data)


class ExchangeCore:
    """Accounts, orders and market state of the local exchange; handlers return Hyperliquid's JSON shapes."""

    def __init__(self, registry: InstrumentRegistry, config: ServerConfig | None = None) -> None:
        self.registry = registry
        self.config = config or ServerConfig()
        self.dexes = self._build_dexes(registry)
        self.accounts: dict[str, Account] = {}
        self.agents: dict[str, str] = {k.lower(): v.lower() for k, v in self.config.agents.items()}
        self.nonces: dict[str, NonceSet] = {}
        self.books: dict[str, PublicBook] = {c: PublicBook(c) for c in registry.coins()}
        self.outbox: Outbox = []
        self._g2l: dict[int, tuple[str, int]] = {}
        self._l2g: dict[tuple[str, int], int] = {}
        self._next_oid = 1_000_000
        self._next_tid = 1
        self._internal_cloids = 0
        self._status_override: str | None = None
        self._dirty_books: set[str] = set()
        self.reject_fraction = 0.0  # fault injection: share of orders rejected with MSG_FAULT_REJECT
        self.forced_rate_limit = False  # fault injection: every action gets the address-budget error
        self._rng = random.Random(self.config.seed)
        self.stats: dict[str, int] = {}
        self.seen_users: set[str] = set()  # addresses queried via /info (preferred signer when the source is ambiguous)
        self.now = 0.0
        for addr, usdc in self.config.accounts.items():
            self._new_account(addr.lower(), usdc)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _build_dexes(registry: InstrumentRegistry) -> list[tuple[str, list[Instrument | None]]]:
        """[(dex name, universe by index)] with index 0 = first dex; gaps are delisted placeholders (None)."""
        by_dex: dict[int, tuple[str, dict[int, Instrument]]] = {0: ("", {})}
        for coin in registry.coins():
            inst = registry.get(coin)
            if inst.asset >= HIP3_ASSET_BASE:
                di, idx = divmod(inst.asset - HIP3_ASSET_BASE, HIP3_DEX_STRIDE)
            else:
                di, idx = 0, inst.asset
            name = inst.dex
            if di in by_dex and by_dex[di][0] != name:
                raise ValueError(f"dex index {di} used by both {by_dex[di][0]!r} and {name!r}")
            by_dex.setdefault(di, (name, {}))[1][idx] = inst
        if sorted(by_dex) != list(range(len(by_dex))):
            raise ValueError(f"dex indices must be contiguous from 0, got {sorted(by_dex)}")
        out = []
        for di in range(len(by_dex)):
            name, items = by_dex[di]
            n = max(items) + 1 if items else 0
            out.append((name, [items.get(i) for i in range(n)]))
        return out

    def dex_index(self, dex: str) -> int:
        for i, (name, _) in enumerate(self.dexes):
            if name == dex:
                return i
        raise RequestError(f"unknown dex {dex!r}")

    def _new_account(self, addr: str, usdc: float | None = None) -> Account:
        cfg = self.config
        ex = SimExchange(
            self.registry,
            latency=LatencyModel(order_s=cfg.order_latency_s, response_s=0.0),
            starting_usdc=cfg.starting_usdc if usdc is None else usdc,
            seed=cfg.seed + len(self.accounts),
        )
        acct = Account(addr, ex)
        ex.add_listener(partial(self._on_sim_event, addr))
        # Late joiners see the current market (their matching engine needs the book).
        for b in self.books.values():
            if b.true_bids or b.true_asks:
                ex.on_market(BookSnapshot(b.coin, self.now, self.now, b.true_bids, b.true_asks), at=self.now)
        self.accounts[addr] = acct
        return acct

    def account(self, addr: str, create: bool = False) -> Account | None:
        a = self.accounts.get(addr.lower())
        if a is None and create:
            a = self._new_account(addr.lower())
        return a

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    # ------------------------------------------------------------------ oids
    def _gid(self, addr: str, local: int) -> int:
        g = self._l2g.get((addr, local))
        if g is None:
            g = self._next_oid
            self._next_oid += 1
            self._l2g[(addr, local)] = g
            self._g2l[g] = (addr, local)
        return g

    def _order_of(self, addr: str, gid: int) -> SimOrder | None:
        loc = self._g2l.get(gid)
        if loc is None or loc[0] != addr:
            return None
        return self.accounts[addr].ex.order(loc[1])

    def _public_cloid(self, cloid: str | None) -> str | None:
        return None if cloid is None or cloid.startswith(_INTERNAL_CLOID_PREFIX) else cloid

    def _new_internal_cloid(self) -> str:
        self._internal_cloids += 1
        return _INTERNAL_CLOID_PREFIX + f"{self._internal_cloids:024x}"

    # ------------------------------------------------------------------ market in
    def on_market(self, ev: MarketEvent, now: float) -> None:
        """Apply one source event at exchange time ``now`` (already retimed by the market clock)."""
        self.now = max(self.now, now)
        coin = getattr(ev, "coin", None)
        book = self.books.get(coin) if coin is not None else None
        for acct in self.accounts.values():
            acct.ex.on_market(ev, at=now)
            acct.ex.pop_events(math.inf)  # delivered through listeners; keep the queue empty
        if book is None or coin is None:  # (no coin, no book)
            return
        frozen = now < book.frozen_until
        t_ms = ms(now)
        if isinstance(ev, BookSnapshot):
            if ev.bids and ev.asks:
                book.true_mid = 0.5 * (ev.bids[0].px + ev.asks[0].px)
            book.true_bids, book.true_asks = ev.bids, ev.asks
            if not frozen:
                book.bids, book.asks, book.time_ms = ev.bids, ev.asks, t_ms
                self._dirty_books.add(coin)
        elif isinstance(ev, Bbo):
            if ev.bid_px is not None and ev.ask_px is not None:
                book.true_mid = 0.5 * (ev.bid_px + ev.ask_px)
            book.true_bids = _top(ev.bid_px, ev.bid_sz, book.true_bids, True)
            book.true_asks = _top(ev.ask_px, ev.ask_sz, book.true_asks, False)
            if not frozen:
                book.bids, book.asks, book.time_ms = book.true_bids, book.true_asks, t_ms
                self._dirty_books.add(coin)
        elif isinstance(ev, Trade):
            self._record_trade(book, ev.px, ev.sz, ev.side, t_ms, publish=not frozen)

    def _record_trade(self, book: PublicBook, px: float, sz: float, side: str, t_ms: int, publish: bool) -> None:
        book.last_trade_px = px
        book.day_ntl_vlm += px * sz
        book.day_base_vlm += sz
        minute = t_ms - t_ms % 60_000
        c = book.candles.get(minute)
        if c is None:
            if len(book.candles) >= _CANDLE_MINUTES_KEPT:
                del book.candles[min(book.candles)]
            book.candles[minute] = [px, px, px, px, sz, 1]
        else:
            c[1], c[2], c[3], c[4], c[5] = max(c[1], px), min(c[2], px), px, c[4] + sz, c[5] + 1
        tid = self._next_tid
        self._next_tid += 1
        tr = {"coin": book.coin, "side": side, "px": num(px), "sz": num(sz), "time": t_ms,
              "hash": "0x" + f"{tid:064x}", "tid": tid, "users": [ZERO_ADDRESS, ZERO_ADDRESS]}
        book.trades.append(tr)
        if publish:
            self.outbox.append(("trades", book.coin, [tr]))

    def seed_history(self, coin: str, mids: list[tuple[float, float]], trades: list[Trade]) -> int:
        """Market history from before the server started (times already on the server clock): recent trades and
        1-minute candles, as an exchange that has been running for a while serves them (warm starts read
        ``candleSnapshot``). Nothing is published. Returns the number of trades recorded."""
        book = self.books.get(coin)
        if book is None:
            raise RequestError(f"no market for {coin!r}")
        if mids and book.prev_day_px is None:
            book.prev_day_px = mids[0][1]
        n = 0
        for tr in sorted(trades, key=lambda t: t.ts):
            if tr.coin == coin:
                self._record_trade(book, tr.px, tr.sz, tr.side, ms(tr.ts), publish=False)
                n += 1
        return n

    def asset_ctx_events(self, now: float) -> list[AssetCtx]:
        """Periodic mark/oracle/funding context per coin with a market (drives funding in the matching engines)."""
        out = []
        for b in self.books.values():
            if b.true_mid is not None:
                out.append(AssetCtx(b.coin, now, b.true_mid, b.true_mid, self.config.funding_rate_per_hour))
        return out

    def freeze(self, coin: str | None, until: float) -> None:
        """Stop publishing (and updating the public view of) ``coin`` (all coins if None) until ``until``."""
        for b in self.books.values():
            if coin is None or b.coin == coin:
                b.frozen_until = until

    # ------------------------------------------------------------------ periodic work
    def tick(self, now: float) -> None:
        """Scheduled cancels, asset contexts (funding), book publication of changes since the last tick."""
        self.now = max(self.now, now)
        now_ms = ms(now)
        for acct in self.accounts.values():
            if acct.schedule_cancel_ms is not None and now_ms >= acct.schedule_cancel_ms:
                acct.schedule_cancel_ms = None
                day = now_ms // _DAY_MS
                d, n = acct.schedule_cancel_day
                acct.schedule_cancel_day = (day, (n if d == day else 0) + 1)
                self.count("scheduled_cancels_fired")
                self.cancel_all(acct, now, status="scheduledCancel")
        for b in self.books.values():
            if b.prev_day_px is None and b.true_mid is not None:
                b.prev_day_px = b.true_mid
        self.flush_books(now)

    def publish_ctx(self, now: float) -> None:
        for ev in self.asset_ctx_events(now):
            for acct in self.accounts.values():
                acct.ex.on_market(ev, at=now)
                acct.ex.pop_events(math.inf)
            b = self.books[ev.coin]
            if now >= b.frozen_until and self._mid(b.coin) is not None:
                self.outbox.append(("activeAssetCtx", ev.coin, {"coin": ev.coin, "ctx": self._ctx(b)}))
        for name, _ in self.dexes:
            self.outbox.append(("allMids", name, {"mids": self.all_mids(name)}))

    def flush_books(self, now: float) -> None:
        for coin in sorted(self._dirty_books):
            b = self.books[coin]
            if now < b.frozen_until:
                continue
            data = self.l2_book(coin)
            self.outbox.append(("l2Book", coin, data))
            bids, asks = data["levels"]
            bbo = (bids[0] if bids else None, asks[0] if asks else None)
            key = tuple((lv["px"], lv["sz"]) if lv else None for lv in bbo)
            if key != b.last_bbo:
                b.last_bbo = key
                self.outbox.append(("bbo", coin, {"coin": coin, "time": data["time"], "bbo": list(bbo)}))
        self._dirty_books.clear()

    def cancel_all(self, acct: Account, now: float, status: str = "canceled") -> int:
        """Cancel every open order of ``acct`` now; the orderUpdates carry ``status``."""
        n = 0
        self._status_override = status if status != "canceled" else None
        try:
            for coin in self.registry.coins():
                for oo in acct.ex.open_orders(coin):
                    o = acct.ex.order(oo.oid)
                    if o is not None and o.is_open and o.cloid is not None:
                        acct.ex.execute([CancelOrder(coin, o.cloid, reason=status)], now)
                        n += 1
        finally:
            self._status_override = None
            acct.ex.pop_events(math.inf)
        if n:
            self._dirty_books.update(self.registry.coins())
        return n

    # ------------------------------------------------------------------ matching-engine events -> WS messages
    def _order_wire(self, addr: str, o: SimOrder, frontend: bool = False) -> dict:
        w: dict[str, Any] = {
            "coin": o.coin, "side": o.side, "limitPx": num(o.px), "sz": num(o.sz), "oid": self._gid(addr, o.oid),
            "timestamp": ms(o.arrival_ts), "origSz": num(o.orig_sz),
        }
        cl = self._public_cloid(o.cloid)
        if frontend:
            w.update({"triggerCondition": "N/A", "isTrigger": False, "triggerPx": "0.0", "children": [],
                      "isPositionTpsl": False, "reduceOnly": o.reduce_only, "orderType": "Limit",
                      "tif": o.tif.value})
        if cl is not None:
            w["cloid"] = cl
        return w

    def _on_sim_event(self, addr: str, ev: VenueEvent, order: SimOrder | None, t: float) -> None:
        acct = self.accounts[addr]
        t_ms = ms(t)
        if isinstance(ev, Fill):
            self._on_fill(acct, ev, order, t_ms)
            return
        if isinstance(ev, Funding):
            self.outbox.append(("user", addr, {"funding": {
                "time": t_ms, "coin": ev.coin, "usdc": num(ev.usdc, 6), "szi": num(ev.szi),
                "fundingRate": num(ev.rate, 10)}}))
            return
        if order is None:
            return
        if isinstance(ev, OrderAccepted):
            status = "open"
            self._dirty_books.add(order.coin)
        elif isinstance(ev, OrderCancelled):
            status = self._status_override or order.status
            if status != order.status:
                order.status = status
            self._dirty_books.add(order.coin)
            if status in ("scheduledCancel", "selfTradeCanceled", "reduceOnlyCanceled", "marginCanceled"):
                self.outbox.append(("user", addr, {"nonUserCancel": [
                    {"coin": order.coin, "oid": self._gid(addr, order.oid)}]}))
        elif isinstance(ev, OrderRejected):
            status = order.status
        else:
            return
        self.outbox.append(("orderUpdates", addr, [
            {"order": self._order_wire(addr, order), "status": status, "statusTimestamp": t_ms}]))

    def _on_fill(self, acct: Account, ev: Fill, order: SimOrder | None, t_ms: int) -> None:
        pos = acct.ex.position(ev.coin)
        signed = ev.sz if ev.is_buy else -ev.sz
        start = float(Decimal(repr(pos.position)) - Decimal(repr(signed)))
        prev_real = acct.last_realized.get(ev.coin, 0.0)
        acct.last_realized[ev.coin] = pos.realized_pnl
        if start == 0 or (start > 0) == ev.is_buy:
            direction = "Open Long" if ev.is_buy else "Open Short"
        elif abs(signed) > abs(start):
            direction = "Short > Long" if ev.is_buy else "Long > Short"
        else:
            direction = "Close Short" if ev.is_buy else "Close Long"
        tid = self._next_tid
        self._next_tid += 1
        gid = self._gid(acct.address, ev.oid)
        fill: dict[str, Any] = {
            "coin": ev.coin, "px": num(ev.px), "sz": num(ev.sz), "side": "B" if ev.is_buy else "A", "time": t_ms,
            "startPosition": num(start), "dir": direction, "closedPnl": num(pos.realized_pnl - prev_real, 6),
            "hash": "0x" + f"{tid:064x}", "oid": gid, "crossed": not ev.is_maker, "fee": num(ev.fee, 6),
            "tid": tid, "feeToken": "USDC",
        }
        cl = self._public_cloid(ev.cloid or None)
        if cl is not None:
            fill["cloid"] = cl
        acct.fills.append(fill)
        self.count("fills")
        self.outbox.append(("userFills", acct.address, {"isSnapshot": False, "user": acct.address, "fills": [fill]}))
        self.outbox.append(("user", acct.address, {"fills": [fill]}))
        if order is not None and ev.remaining <= 0:
            self.outbox.append(("orderUpdates", acct.address, [
                {"order": self._order_wire(acct.address, order), "status": "filled", "statusTimestamp": t_ms}]))
        self._dirty_books.add(ev.coin)

    # ------------------------------------------------------------------ /exchange
    def _is_known(self, addr: str) -> bool:
        return addr in self.agents or addr in self.accounts

    def _resolve_signer(self, candidates: list[str]) -> tuple[str, Account | None]:
        """(signer, account) for recovered candidate signers (one per accepted signature source)."""
        for s in candidates:
            if s in self.agents:
                return s, self.accounts.get(self.agents[s]) or self._new_account(self.agents[s])
            if s in self.accounts:
                return s, self.accounts[s]
        s = next((c for c in candidates if c in self.seen_users), candidates[0])
        if self.config.auto_accounts:
            return s, self._new_account(s)
        return s, None

    def handle_exchange(self, body: Any, now: float) -> dict | str:
        """One /exchange POST body -> Hyperliquid's JSON reply. Raises RequestError for undeserializable bodies."""
        self.now = max(self.now, now)
        try:
            validate.exchange_body(body)  # shape errors refuse the whole body before anything changes
        except validate.ShapeError as e:
            raise RequestError(str(e)) from None
        if not isinstance(body, dict):
            raise RequestError("Failed to deserialize the JSON body into the target type")
        action, nonce, sig = body.get("action"), body.get("nonce"), body.get("signature")
        vault, expires = body.get("vaultAddress"), body.get("expiresAfter")
        if (not isinstance(action, dict) or not isinstance(action.get("type"), str) or isinstance(nonce, bool)
                or not isinstance(nonce, int) or not isinstance(sig, dict)
                or (expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)))
                or (vault is not None and not isinstance(vault, str))):
            raise RequestError("Failed to deserialize the JSON body into the target type")
        now_ms = ms(now)
        atype = action["type"]
        try:
            check_nonce_window(nonce, now_ms)
        except NonceError as e:
            return _err(str(e))
        try:
            if atype in _USER_SIGNED:
                types, primary = _USER_SIGNED[atype]
                signed = dict(action)
                signed.setdefault("agentName", "")  # an unnamed agent is signed with "" and posted without the key
                candidates = [recover_user_signed(signed, types, primary, sig)]
                chain = "Mainnet" if self.config.is_mainnet else "Testnet"
                if action.get("hyperliquidChain") != chain:
                    self.count("wrong_network_signatures")
                    return _err(MSG_WRONG_CHAIN.format(want=chain, got=action.get("hyperliquidChain")))
            else:
                # One network per server (source "a" mainnet / "b" testnet), as on Hyperliquid: a signature made
                # for the other network recovers some other address, which has no account.
                mainnet = bool(self.config.is_mainnet)
                candidates = [recover_l1_signer(action, nonce, vault, expires, sig, mainnet)]
                if not self._is_known(candidates[0]):
                    other = recover_l1_signer(action, nonce, vault, expires, sig, not mainnet)
                    if self._is_known(other) or other in self.seen_users:
                        # Signed for the other network by a known user: refuse instead of auto-creating an account
                        # for the stray address (with --no-auto-accounts it is refused anyway).
                        self.count("wrong_network_signatures")
                        return _err(MSG_NO_USER.format(addr=candidates[0]))
        except SigningError as e:
            raise RequestError(f"Failed to deserialize the JSON body into the target type: {e}") from None
        signer, acct = self._resolve_signer(candidates)
        if acct is None:
            return _err(MSG_NO_USER.format(addr=signer))
        if vault is not None and vault.lower() != acct.address:
            return _err(MSG_NO_USER.format(addr=signer))
        ns = self.nonces.setdefault(signer, NonceSet())
        try:
            ns.use(nonce)
        except NonceError as e:
            return _err(str(e))
        n_items = _batch_len(action)
        if expires is not None and expires < now_ms:
            acct.n_requests += 5 * n_items
            return _err(MSG_EXPIRED)
        refusal = self._charge_budget(acct, atype, n_items, now_ms)
        if refusal is not None:
            return _err(refusal)
        self.count(f"action_{atype}")
        handler = _HANDLERS.get(atype)
        if handler is None:
            return _err(f"Unsupported action type {atype!r} on the local exchange.")
        try:
            return handler(self, acct, action, now, signer)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
            if isinstance(e, UnknownCoinError):
                return _err(str(e))
            raise RequestError(f"Failed to deserialize the JSON body into the target type: {e}") from None

    def _charge_budget(self, acct: Account, atype: str, n: int, now_ms: int) -> str | None:
        vlm = acct.volume()
        cap = self.config.address_budget_base + math.floor(vlm)
        used = acct.n_requests + n
        msg = MSG_TOO_MANY_REQUESTS.format(used=used, cap=cap, vlm=f"{vlm:.0f}")
        if self.forced_rate_limit:
            self.count("address_rate_limited")
            return MSG_TOO_MANY_REQUESTS.format(used=max(used, cap + 1), cap=cap, vlm=f"{vlm:.0f}")
        if used > cap:
            cancel_cap = min(cap + 100_000, 2 * cap)
            is_cancel = atype in ("cancel", "cancelByCloid", "scheduleCancel")
            if not (is_cancel and used <= cancel_cap):
                if now_ms - acct.throttled_at_ms < 10_000:
                    self.count("address_rate_limited")
                    return msg
                acct.throttled_at_ms = now_ms  # exhausted budget: one request per 10 s
        acct.n_requests = used
        return None

    # ---- actions
    def _parse_order(self, w: Any) -> tuple[Instrument | None, PlaceOrder | str]:
        """(instrument, PlaceOrder) or (instrument, error text) for one order wire (shape already validated; a bad
        value — unknown asset, a price/size string that is not a positive number — is this order's error)."""
        if not isinstance(w, dict):
            raise TypeError("order must be an object")
        a, b, p, s, r, t = w["a"], w["b"], w["p"], w["s"], w["r"], w["t"]
        if isinstance(a, bool) or not isinstance(a, int) or not isinstance(b, bool) or not isinstance(r, bool):
            raise TypeError("bad order field types")
        if not isinstance(p, str) or not isinstance(s, str) or not isinstance(t, dict):
            raise TypeError("price and size must be strings")
        try:
            inst = self.registry.by_asset(a)
        except UnknownCoinError as e:
            return None, str(e)
        if "trigger" in t:
            return inst, MSG_TRIGGER_UNSUPPORTED
        tif = Tif(t["limit"]["tif"])
        px, err = validate.price_error(p)
        if err is not None:
            return inst, err
        sz, err = validate.size_error(s)
        if err is not None:
            return inst, err
        assert px is not None and sz is not None
        c = w.get("c")
        if c is not None:
            if not isinstance(c, str) or len(c) != 34 or not c.startswith("0x"):
                raise ValueError(f"bad cloid {c!r}")
            int(c[2:], 16)
            c = c.lower()
        if not math.isfinite(px) or not math.isfinite(sz) or px <= 0 or sz <= 0:
            return inst, "Order has invalid size." if sz <= 0 else "Price must be divisible by tick size."
        return inst, PlaceOrder(inst.coin, c or self._new_internal_cloid(), b, px, sz, tif, r)

    def _status(self, acct: Account, res: ActionResult, cloid: str | None) -> dict | str:
        cl = self._public_cloid(cloid)
        if res.status == "resting":
            d: dict[str, Any] = {"oid": self._gid(acct.address, res.oid)}  # type: ignore[arg-type]
            if cl is not None:
                d["cloid"] = cl
            return {"resting": d}
        if res.status == "filled":
            d = {"totalSz": num(res.total_sz), "avgPx": num(res.avg_px),
                 "oid": self._gid(acct.address, res.oid)}  # type: ignore[arg-type]
            if cl is not None:
                d["cloid"] = cl
            return {"filled": d}
        if res.status == "success":
            return "success"
        return {"error": res.error or "Order rejected."}

    def _place_one(self, acct: Account, w: Any, now: float) -> dict | str:
        _, p = self._parse_order(w)
        if isinstance(p, str):
            return {"error": p}
        self.count("orders")
        refusal = self._open_order_refusal(acct, p)
        if refusal is not None:
            self.count("open_order_cap_rejects")
            return {"error": refusal}
        if self.reject_fraction > 0 and self._rng.random() < self.reject_fraction:
            self.count("fault_rejects")
            return {"error": MSG_FAULT_REJECT}
        self_x = p.tif == Tif.ALO and acct.ex.crosses_own(p.coin, p.is_buy, p.px)
        res = acct.ex.execute([p], now)[0]
        acct.ex.pop_events(math.inf)
        if self_x and res.status not in ("resting", "filled"):
            self.count("post_only_self_cross")  # rejected because it crossed the account's own order
        return self._status(acct, res, p.cloid)

    def act_order(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        orders = action["orders"]
        if not isinstance(orders, list):
            raise TypeError("orders must be a list")
        statuses = [self._place_one(acct, w, now) for w in orders]
        return _ok("order", {"statuses": statuses})

    def _open_order_refusal(self, acct: Account, p: PlaceOrder) -> str | None:
        """Reference §6: at most ``1000 + 1 per $5M volume`` (max 5000) open orders; with >= 1000 open, a new
        reduce-only order is rejected too. None when the order may go on."""
        n_open = self.resting_count(acct.address)
        base = self.config.open_order_base
        if n_open >= open_order_limit(acct.volume(), base):
            return MSG_TOO_MANY_OPEN
        if p.reduce_only and n_open >= base:
            return MSG_TOO_MANY_OPEN_REDUCE_ONLY
        return None

    def _cancel_open(self, acct: Account, o: SimOrder | None, asset: int, now: float, by_oid: bool = False
                     ) -> str | dict:
        try:
            coin = self.registry.by_asset(asset).coin
        except UnknownCoinError as e:
            return {"error": str(e)}
        if o is None or not o.is_open or o.cloid is None or coin != o.coin:
            return {"error": MSG_CANCEL_UNKNOWN}
        # ``cancel`` addresses the order by oid, ``cancelByCloid`` by cloid: the matching engine does the same.
        res = acct.ex.execute([CancelOrder(o.coin, o.cloid, oid=o.oid if by_oid else None)], now)[0]
        acct.ex.pop_events(math.inf)
        self.count("cancels")
        return self._status(acct, res, o.cloid)

    def act_cancel(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        out = []
        for c in action["cancels"]:
            a, oid = c["a"], c["o"]
            if isinstance(oid, bool) or not isinstance(oid, int) or isinstance(a, bool) or not isinstance(a, int):
                raise TypeError("cancel needs int a and o")
            out.append(self._cancel_open(acct, self._order_of(acct.address, oid), a, now, by_oid=True))
        return _ok("cancel", {"statuses": out})

    def act_cancel_by_cloid(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        out = []
        for c in action["cancels"]:
            a, cloid = c["asset"], c["cloid"]
            if isinstance(a, bool) or not isinstance(a, int) or not isinstance(cloid, str):
                raise TypeError("cancelByCloid needs int asset and str cloid")
            out.append(self._cancel_open(acct, acct.ex.order_by_cloid(cloid.lower()), a, now))
        return _ok("cancel", {"statuses": out})

    def _find(self, acct: Account, ref: Any) -> SimOrder | None:
        if isinstance(ref, str):
            return acct.ex.order_by_cloid(ref.lower())
        if isinstance(ref, bool) or not isinstance(ref, int):
            raise TypeError("oid must be an int or a cloid string")
        return self._order_of(acct.address, ref)

    def _modify_one(self, acct: Account, ref: Any, w: Any, now: float) -> dict | str:
        old = self._find(acct, ref)
        inst, p = self._parse_order(w)
        if isinstance(p, str):
            return {"error": p}
        assert inst is not None  # an order that parsed has its instrument
        if old is None or not old.is_open or old.cloid is None or old.coin != inst.coin:
            return {"error": MSG_MODIFY_UNKNOWN}
        if w.get("c") is None:
            p = replace(p, cloid=old.cloid)  # no new cloid: the replacement keeps the old one
        self.count("modifies")
        if self.reject_fraction > 0 and self._rng.random() < self.reject_fraction:
            self.count("fault_rejects")
            return {"error": MSG_FAULT_REJECT}
        self_x = p.tif == Tif.ALO and acct.ex.crosses_own(p.coin, p.is_buy, p.px)
        res = acct.ex.execute([ModifyOrder(old.cloid, p)], now)[0]
        acct.ex.pop_events(math.inf)
        if self_x and res.status not in ("resting", "filled", "success"):
            self.count("post_only_self_cross")
        return self._status(acct, res, p.cloid)

    def act_batch_modify(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        statuses = [self._modify_one(acct, m["oid"], m["order"], now) for m in action["modifies"]]
        return _ok("order", {"statuses": statuses})

    def act_modify(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        st = self._modify_one(acct, action["oid"], action["order"], now)
        if isinstance(st, dict) and "error" in st:
            return _err(st["error"])
        return _ok_default()

    def act_schedule_cancel(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        vlm = acct.volume()
        req = self.config.schedule_cancel_min_volume
        if vlm < req:
            return _err(MSG_SCHED_VOLUME.format(req=num(req, 2), vlm=num(vlm, 5)))
        t = action.get("time")
        if t is None:
            acct.schedule_cancel_ms = None
            return _ok_default()
        if isinstance(t, bool) or not isinstance(t, int):
            raise TypeError("time must be an int")
        now_ms = ms(now)
        if t < now_ms + 5000:
            return _err(MSG_SCHED_EARLY)
        # The daily limit counts triggers (scheduled cancels that fired), not refreshes of the deadline.
        d, n = acct.schedule_cancel_day
        if d == now_ms // _DAY_MS and n >= self.config.schedule_cancel_max_per_day:
            return _err(MSG_SCHED_TOO_MANY)
        acct.schedule_cancel_ms = t
        return _ok_default()

    def act_update_leverage(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        asset, cross, lev = action["asset"], action["isCross"], action["leverage"]
        if not isinstance(cross, bool) or isinstance(lev, bool) or not isinstance(lev, int):
            raise TypeError("isCross must be bool and leverage int")
        inst = self.registry.by_asset(asset)
        if not 1 <= lev <= inst.max_leverage:
            return _err(MSG_BAD_LEVERAGE)
        acct.leverage[asset] = (cross, lev)
        return _ok_default()

    def act_noop(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        return _ok_default()

    def act_approve_agent(self, acct: Account, action: dict, now: float, signer: str) -> dict:
        agent = action["agentAddress"]
        if not isinstance(agent, str) or len(agent) != 42:
            raise ValueError("agentAddress must be an address")
        if signer in self.agents:
            return _err("Agent cannot approve another agent.")  # UNCONFIRMED text
        self.agents[agent.lower()] = acct.address
        return _ok_default()

    # ------------------------------------------------------------------ /info
    def handle_info(self, body: Any, now: float) -> Any:
        """One /info POST body -> reply. Raises RequestError on unknown types or bad arguments."""
        self.now = max(self.now, now)
        try:
            validate.info_body(body)
        except validate.ShapeError as e:
            raise RequestError(str(e)) from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise RequestError("Failed to deserialize the JSON body into the target type")
        fn = _INFO.get(body["type"])
        if fn is None:
            raise RequestError(f"Failed to deserialize the JSON body into the target type: unknown type "
                               f"{body['type']!r}")
        try:
            return fn(self, body)
        except RequestError:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise RequestError(f"Failed to deserialize the JSON body into the target type: {e}") from None

    def _user(self, body: dict) -> Account | None:
        u = body["user"]
        if not isinstance(u, str) or len(u) != 42 or not u.startswith("0x"):
            raise ValueError(f"bad user {u!r}")
        self.seen_users.add(u.lower())
        return self.accounts.get(u.lower())

    def _dex(self, body: dict) -> tuple[int, str]:
        d = body.get("dex") or ""
        if not isinstance(d, str):
            raise TypeError("dex must be a string")
        return self.dex_index(d), d

    def meta(self, dex: str = "") -> dict:
        universe: list[dict[str, Any]] = []
        for i, inst in enumerate(self.dexes[self.dex_index(dex)][1]):
            if inst is None:
                universe.append({"name": f"{dex + ':' if dex else ''}DELISTED{i}", "szDecimals": 0,
                                 "maxLeverage": 3, "marginTableId": 3, "isDelisted": True})
            else:
                universe.append({"name": inst.coin, "szDecimals": inst.sz_decimals,
                                 "maxLeverage": inst.max_leverage, "marginTableId": inst.max_leverage})
        tables = sorted({u["marginTableId"] for u in universe})
        return {"universe": universe,
                "marginTables": [[t, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": t}]}]
                                 for t in tables],
                "collateralToken": 0}

    def _mid(self, coin: str) -> float | None:
        b = self.books[coin]
        if b.bids and b.asks:
            return 0.5 * (b.bids[0].px + b.asks[0].px)
        return b.last_trade_px

    def _ctx(self, b: PublicBook) -> dict:
        mid = self._mid(b.coin)
        mark = mid if mid is not None else 0.0
        impact = [num(b.bids[0].px), num(b.asks[0].px)] if b.bids and b.asks else None
        return {"funding": num(self.config.funding_rate_per_hour, 10), "openInterest": "0.0",
                "prevDayPx": num(b.prev_day_px or mark), "dayNtlVlm": num(b.day_ntl_vlm, 2), "premium": "0.0",
                "oraclePx": num(mark), "markPx": num(mark), "midPx": num(mid) if mid is not None else None,
                "impactPxs": impact, "dayBaseVlm": num(b.day_base_vlm, 6)}

    def all_mids(self, dex: str = "") -> dict:
        out = {}
        for inst in self.dexes[self.dex_index(dex)][1]:
            if inst is not None:
                m = self._mid(inst.coin)
                if m is not None:
                    out[inst.coin] = num(m, 8)
        return out

    def own_levels(self, coin: str) -> tuple[dict[float, list[float]], dict[float, list[float]]]:
        """Resting orders of all accounts by price: {px: [size, count]} for bids and asks."""
        bids: dict[float, list[float]] = {}
        asks: dict[float, list[float]] = {}
        for acct in self.accounts.values():
            for oo in acct.ex.open_orders(coin):
                side = bids if oo.is_buy else asks
                e = side.setdefault(oo.px, [0.0, 0])
                e[0] += oo.sz
                e[1] += 1
        return bids, asks

    def l2_book(self, coin: str, n_sig_figs: int | None = None, levels: int = 20) -> dict:
        """Published book with every account's resting orders merged in (as on the real exchange)."""
        b = self.books[coin]
        own_b, own_a = self.own_levels(coin)
        out = []
        for lvls, own, is_bid in ((b.bids, own_b, True), (b.asks, own_a, False)):
            agg: dict[float, list[float]] = {}
            for lv in lvls:
                agg[lv.px] = [lv.sz, lv.n]
            for px, (sz, n) in own.items():
                e = agg.setdefault(px, [0.0, 0])
                e[0] += sz
                e[1] += n
            if n_sig_figs is not None:
                agg = _bucket(agg, n_sig_figs, is_bid)
            pxs = sorted(agg, reverse=is_bid)[:levels]
            out.append([{"px": num(px), "sz": num(agg[px][0]), "n": int(agg[px][1])} for px in pxs])
        return {"coin": coin, "time": b.time_ms, "levels": out}

    def info_l2book(self, body: dict) -> dict:
        coin = body["coin"]
        self.registry.get(coin)
        nsf = body.get("nSigFigs")
        if nsf is not None and nsf not in (2, 3, 4, 5):
            raise ValueError("nSigFigs must be 2..5")
        return self.l2_book(coin, nsf)

    def info_meta(self, body: dict) -> dict:
        return self.meta(self._dex(body)[1])

    def info_meta_ctxs(self, body: dict) -> list:
        _, dex = self._dex(body)
        ctxs = []
        for inst in self.dexes[self.dex_index(dex)][1]:
            if inst is None:
                ctxs.append({"funding": "0.0", "openInterest": "0.0", "prevDayPx": "0.0", "dayNtlVlm": "0.0",
                             "premium": None, "oraclePx": "0.0", "markPx": "0.0", "midPx": None,
                             "impactPxs": None, "dayBaseVlm": "0.0"})
            else:
                ctxs.append(self._ctx(self.books[inst.coin]))
        return [self.meta(dex), ctxs]

    def info_perp_dexs(self, body: dict) -> list:
        out: list[Any] = [None]
        for name, _ in self.dexes[1:]:
            out.append({"name": name, "fullName": f"{name} (local)", "deployer": ZERO_ADDRESS,
                        "oracleUpdater": None, "feeRecipient": None, "assetToStreamingOiCap": [],
                        "assetToFundingMultiplier": []})
        return out

    def info_all_mids(self, body: dict) -> dict:
        return self.all_mids(self._dex(body)[1])

    def info_spot_meta(self, body: dict) -> dict:
        return {"tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                            "tokenId": "0x" + "0" * 32, "isCanonical": True, "evmContract": None,
                            "fullName": None}], "universe": []}

    def clearinghouse_state(self, acct: Account | None, dex: str) -> dict:
        positions = []
        ntl = margin = 0.0
        value = acct.ex.account_value() if acct else 0.0
        if acct is not None:
            for inst in self.dexes[self.dex_index(dex)][1]:
                if inst is None:
                    continue
                p = acct.ex.position(inst.coin)
                if not p.position:
                    continue
                mark = acct.ex.mark(inst.coin) or p.entry_px
                cross, lev = acct.leverage.get(inst.asset, (True, inst.max_leverage))
                pv = abs(p.position) * mark
                mu = pv / lev
                upnl = p.position * (mark - p.entry_px)
                ntl += pv
                margin += mu
                positions.append({"type": "oneWay", "position": {
                    "coin": inst.coin, "szi": num(p.position), "entryPx": num(p.entry_px),
                    "leverage": {"type": "cross" if cross else "isolated", "value": lev},
                    "liquidationPx": None, "marginUsed": num(mu, 6), "positionValue": num(pv, 6),
                    "unrealizedPnl": num(upnl, 6), "returnOnEquity": num(upnl / mu if mu else 0.0, 6),
                    "maxLeverage": inst.max_leverage,
                    "cumFunding": {"allTime": num(-p.funding, 6), "sinceOpen": num(-p.funding, 6),
                                   "sinceChange": num(-p.funding, 6)}}})
        summary = {"accountValue": num(value, 6), "totalNtlPos": num(ntl, 6), "totalRawUsd": num(value, 6),
                   "totalMarginUsed": num(margin, 6)}
        return {"marginSummary": summary, "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": num(margin / 2, 6), "withdrawable": num(max(value - margin, 0.0), 6),
                "assetPositions": positions, "time": ms(self.now)}

    def info_clearinghouse(self, body: dict) -> dict:
        return self.clearinghouse_state(self._user(body), self._dex(body)[1])

    def _open_orders(self, body: dict, frontend: bool) -> list:
        acct = self._user(body)
        _, dex = self._dex(body)
        if acct is None:
            return []
        out = []
        for inst in self.dexes[self.dex_index(dex)][1]:
            if inst is None:
                continue
            for oo in acct.ex.open_orders(inst.coin):
                o = acct.ex.order(oo.oid)
                if o is not None:
                    out.append(self._order_wire(acct.address, o, frontend))
        out.sort(key=lambda w: -w["oid"])  # newest first
        return out

    def info_open_orders(self, body: dict) -> list:
        return self._open_orders(body, False)

    def info_frontend_open_orders(self, body: dict) -> list:
        return self._open_orders(body, True)

    def info_user_fills(self, body: dict) -> list:
        acct = self._user(body)
        return [] if acct is None else list(reversed(acct.fills))[:2000]

    def info_user_fills_by_time(self, body: dict) -> list:
        acct = self._user(body)
        start, end = body["startTime"], body.get("endTime") or 2**62
        if acct is None:
            return []
        return [f for f in acct.fills if start <= f["time"] <= end][:2000]

    def info_user_rate_limit(self, body: dict) -> dict:
        acct = self._user(body)
        vlm = acct.volume() if acct else 0.0
        return {"cumVlm": num(vlm, 2), "nRequestsUsed": acct.n_requests if acct else 0,
                "nRequestsCap": self.config.address_budget_base + math.floor(vlm), "nRequestsSurplus": 0}

    def info_order_status(self, body: dict) -> dict:
        acct = self._user(body)
        if acct is None:
            return {"status": "unknownOid"}
        o = self._find(acct, body["oid"])
        if o is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": {"order": self._order_wire(acct.address, o, True), "status": o.status,
                                             "statusTimestamp": ms(o.status_ts)}}

    def info_candles(self, body: dict) -> list:
        req = body["req"]
        coin, interval = req["coin"], req["interval"]
        self.registry.get(coin)
        step = _INTERVALS_MS[interval]
        start, end = int(req["startTime"]), int(req.get("endTime") or 2**62)
        bars: dict[int, list[float]] = {}
        for minute in sorted(self.books[coin].candles):
            o, h, lo, c, v, n = self.books[coin].candles[minute]
            k = minute - minute % step
            if not start <= k <= end:
                continue
            bar = bars.get(k)
            if bar is None:
                bars[k] = [o, h, lo, c, v, n]
            else:
                bar[1], bar[2], bar[3], bar[4], bar[5] = max(bar[1], h), min(bar[2], lo), c, bar[4] + v, bar[5] + n
        return [{"t": k, "T": k + step - 1, "s": coin, "i": interval, "o": num(b[0]), "c": num(b[3]),
                 "h": num(b[1]), "l": num(b[2]), "v": num(b[4], 6), "n": int(b[5])} for k, b in sorted(bars.items())]

    def info_user_fees(self, body: dict) -> dict:
        inst = self.registry.get(self.registry.coins()[0])
        return {"userCrossRate": num(inst.taker_fee, 6), "userAddRate": num(inst.maker_fee, 6),
                "activeReferralDiscount": "0.0", "dailyUserVlm": [], "feeSchedule": {}}

    def info_exchange_status(self, body: dict) -> dict:
        return {"time": ms(self.now), "specialStatuses": None}

    def info_active_asset_data(self, body: dict) -> dict:
        acct = self._user(body)
        inst = self.registry.get(body["coin"])
        cross, lev = (acct.leverage.get(inst.asset, (True, inst.max_leverage)) if acct else (True, inst.max_leverage))
        avail = acct.ex.account_value() if acct else 0.0
        return {"user": body["user"].lower(), "coin": inst.coin,
                "leverage": {"type": "cross" if cross else "isolated", "value": lev},
                "maxTradeSzs": ["0", "0"], "availableToTrade": [num(avail, 2), num(avail, 2)]}

    def info_recent_trades(self, body: dict) -> list:
        coin = body["coin"]
        self.registry.get(coin)
        return list(reversed(self.books[coin].trades))

    # ------------------------------------------------------------------ WS subscription snapshots
    def subscription_snapshot(self, sub: dict) -> list[tuple[str, Any]]:
        """Messages sent right after a subscribe ack (current state), as (channel, data)."""
        t = sub["type"]
        if t == "l2Book":
            b = self.books[sub["coin"]]
            if b.bids or b.asks:
                return [("l2Book", self.l2_book(sub["coin"], sub.get("nSigFigs")))]
        elif t == "bbo":
            b = self.books[sub["coin"]]
            if b.bids or b.asks:
                d = self.l2_book(sub["coin"], levels=1)
                bids, asks = d["levels"]
                return [("bbo", {"coin": sub["coin"], "time": d["time"],
                                 "bbo": [bids[0] if bids else None, asks[0] if asks else None]})]
        elif t == "trades":
            tr = list(self.books[sub["coin"]].trades)[-50:]
            if tr:
                return [("trades", tr)]
        elif t == "activeAssetCtx":
            b = self.books[sub["coin"]]
            if self._mid(b.coin) is not None:  # no market, no context (a markPx of 0 is not a price)
                return [("activeAssetCtx", {"coin": b.coin, "ctx": self._ctx(b)})]
        elif t == "allMids":
            return [("allMids", {"mids": self.all_mids(sub.get("dex") or "")})]
        elif t == "userFills":
            acct = self.accounts.get(sub["user"].lower())
            fills = list(acct.fills)[-2000:] if acct else []
            return [("userFills", {"isSnapshot": True, "user": sub["user"].lower(), "fills": fills})]
        return []

    # ------------------------------------------------------------------ reports
    def order_counts(self, addr: str | None = None) -> dict[str, int]:
        """Counts over all orders the server has seen (optionally one account): by final status, plus fills."""
        out: dict[str, int] = {}
        for a, acct in self.accounts.items():
            if addr is not None and a != addr.lower():
                continue
            for o in acct.ex.orders():
                out[o.status] = out.get(o.status, 0) + 1
            out["fills"] = out.get("fills", 0) + len(acct.fills)
        return out

    def resting_count(self, addr: str | None = None) -> int:
        n = 0
        for a, acct in self.accounts.items():
            if addr is None or a == addr.lower():
                n += sum(len(acct.ex.open_orders(c)) for c in self.registry.coins())
        return n

    def drain(self) -> Outbox:
        out, self.outbox = self.outbox, []
        return out


def _top(px: float | None, sz: float, levels: tuple[BookLevel, ...], is_bid: bool) -> tuple[BookLevel, ...]:
    """Replace the top of ``levels`` with a BBO level (deeper levels from the last snapshot are kept)."""
    if px is None:
        return ()
    rest = (lv for lv in levels if (lv.px < px if is_bid else lv.px > px))
    return (BookLevel(px, sz), *rest)


def _bucket(agg: dict[float, list[float]], nsf: int, is_bid: bool) -> dict[float, list[float]]:
    out: dict[float, list[float]] = {}
    for px, (sz, n) in agg.items():
        if px <= 0:
            continue
        step = 10 ** (math.floor(math.log10(px)) - nsf + 1)
        k = (math.floor(px / step) if is_bid else math.ceil(px / step)) * step
        k = float(Decimal(repr(k)).quantize(Decimal(repr(step)))) if step < 1 else float(round(k))
        e = out.setdefault(k, [0.0, 0])
        e[0] += sz
        e[1] += n
    return out


def _batch_len(action: dict) -> int:
    for key in ("orders", "cancels", "modifies"):
        v = action.get(key)
        if isinstance(v, list):
            return max(len(v), 1)
    return 1


def _ok(kind: str, data: Any) -> dict:
    return {"status": "ok", "response": {"type": kind, "data": data}}


def _ok_default() -> dict:
    return {"status": "ok", "response": {"type": "default"}}


def _err(msg: str) -> dict:
    return {"status": "err", "response": msg}


_Handler = Callable[[ExchangeCore, Account, dict, float, str], dict]
_HANDLERS: dict[str, _Handler] = {
    "order": ExchangeCore.act_order,
    "cancel": ExchangeCore.act_cancel,
    "cancelByCloid": ExchangeCore.act_cancel_by_cloid,
    "batchModify": ExchangeCore.act_batch_modify,
    "modify": ExchangeCore.act_modify,
    "scheduleCancel": ExchangeCore.act_schedule_cancel,
    "updateLeverage": ExchangeCore.act_update_leverage,
    "noop": ExchangeCore.act_noop,
    "approveAgent": ExchangeCore.act_approve_agent,
}
_INFO: dict[str, Callable[[ExchangeCore, dict], Any]] = {
    "meta": ExchangeCore.info_meta,
    "metaAndAssetCtxs": ExchangeCore.info_meta_ctxs,
    "perpDexs": ExchangeCore.info_perp_dexs,
    "allMids": ExchangeCore.info_all_mids,
    "l2Book": ExchangeCore.info_l2book,
    "spotMeta": ExchangeCore.info_spot_meta,
    "clearinghouseState": ExchangeCore.info_clearinghouse,
    "openOrders": ExchangeCore.info_open_orders,
    "frontendOpenOrders": ExchangeCore.info_frontend_open_orders,
    "userFills": ExchangeCore.info_user_fills,
    "userFillsByTime": ExchangeCore.info_user_fills_by_time,
    "userRateLimit": ExchangeCore.info_user_rate_limit,
    "orderStatus": ExchangeCore.info_order_status,
    "candleSnapshot": ExchangeCore.info_candles,
    "userFees": ExchangeCore.info_user_fees,
    "exchangeStatus": ExchangeCore.info_exchange_status,
    "activeAssetData": ExchangeCore.info_active_asset_data,
    "recentTrades": ExchangeCore.info_recent_trades,
}

VALID_SUBSCRIPTIONS = {
    "l2Book": ("coin",), "trades": ("coin",), "bbo": ("coin",), "activeAssetCtx": ("coin",), "allMids": (),
    "orderUpdates": ("user",), "userFills": ("user",), "userEvents": ("user",),
}
SUB_CHANNEL = {"l2Book": "l2Book", "trades": "trades", "bbo": "bbo", "activeAssetCtx": "activeAssetCtx",
               "allMids": "allMids", "orderUpdates": "orderUpdates", "userFills": "userFills", "userEvents": "user"}
