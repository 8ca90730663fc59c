"""The venue interface: order requests, venue events, and the async Venue protocol.

The live Hyperliquid adapter and the simulated venue implement the same protocol; the engine
cannot tell them apart. Modify is cancel-replace on Hyperliquid: the new order gets a new oid and
keeps the cloid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Tif(StrEnum):
    ALO = "Alo"
    IOC = "Ioc"
    GTC = "Gtc"


class RejectReason(StrEnum):
    POST_ONLY_CROSS = "post_only_cross"
    TICK = "tick"
    SIZE = "size"
    MIN_VALUE = "min_value"
    MARGIN = "margin"
    REDUCE_ONLY = "reduce_only"
    IOC_NO_MATCH = "ioc_no_match"
    RATE_LIMIT = "rate_limit"
    NONCE = "nonce"
    UNKNOWN_ORDER = "unknown_order"
    PRICE_BAND = "price_band"
    OPEN_INTEREST_CAP = "open_interest_cap"
    UNKNOWN = "unknown"


# ---- requests (engine -> venue) ------------------------------------------
@dataclass(frozen=True, slots=True)
class PlaceOrder:
    coin: str
    cloid: str  # "0x" + 32 lowercase hex
    is_buy: bool
    px: float  # already a valid price (Instrument.round_*)
    sz: float  # already a valid size (Instrument.floor_size)
    tif: Tif = Tif.ALO
    reduce_only: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel by cloid; ``oid`` is set for orders that have no cloid (e.g. foreign orders found at start-up),
    in which case the venue cancels by oid and ``cloid`` is a placeholder the engine tracks them under."""

    coin: str
    cloid: str
    reason: str = ""
    oid: int | None = None


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """Replace resting order ``cloid`` with ``new`` (same cloid, new oid on Hyperliquid)."""

    cloid: str
    new: PlaceOrder
    reason: str = ""


VenueAction = PlaceOrder | CancelOrder | ModifyOrder


# ---- events (venue -> engine) --------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The order rests on the book."""

    ts: float
    coin: str
    cloid: str
    oid: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    ts: float
    coin: str
    cloid: str
    reason: RejectReason
    message: str


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """Order left the book without (further) fills. ``reason`` e.g. 'requested', 'ioc', 'self_trade',
    'scheduled_cancel', 'margin'."""

    ts: float
    coin: str
    cloid: str
    oid: int | None  # None when the order never reached the venue
    reason: str = "requested"


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """The exchange's verdict on the order itself: it is not live ("Order was never placed, already canceled, or
    filled.", or orderStatus does not know it). Only this (or a cancel/fill) ends an order."""

    ts: float
    coin: str
    cloid: str
    message: str


@dataclass(frozen=True, slots=True)
class CancelFailed:
    """A cancel got no verdict on the order: the request was refused as a whole (HTTP 429, the address budget, an
    action error), lost (transport), or answered with an error that says nothing about the order. The order's state
    is unknown - it may still rest: the engine keeps it live and cancel-pending and retries with backoff.
    ``rate_limited``: the refusal was a rate limit (429 / request budget)."""

    ts: float
    coin: str
    cloid: str
    message: str
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders; unique by (tid, oid)."""

    ts: float
    coin: str
    cloid: str
    oid: int
    tid: int
    is_buy: bool
    px: float
    sz: float
    fee: float  # USD paid; negative is a rebate
    is_maker: bool
    remaining: float  # order size left after this fill


@dataclass(frozen=True, slots=True)
class Funding:
    ts: float
    coin: str
    usdc: float  # received (+) or paid (-)
    rate: float
    szi: float


@dataclass(frozen=True, slots=True)
class OpenOrder:
    coin: str
    cloid: str | None
    oid: int
    is_buy: bool
    px: float
    sz: float


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Venue truth for reconciliation (after start-up and any reconnect)."""

    ts: float
    coin: str
    position: float
    entry_px: float
    open_orders: tuple[OpenOrder, ...] = field(default_factory=tuple)
    account_value: float = 0.0


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """Connectivity change: ``healthy`` False means the engine must not trust its view of orders."""

    ts: float
    healthy: bool
    detail: str = ""


VenueEvent = (
    OrderAccepted | OrderRejected | OrderCancelled | CancelRejected | CancelFailed | Fill | Funding | AccountSnapshot
    | VenueStatus
)
EventSink = Callable[[VenueEvent], None]


@runtime_checkable
class Venue(Protocol):
    """Async order venue. Results of ``submit`` arrive later as events through the sink."""

    def set_event_sink(self, sink: EventSink) -> None: ...

    async def start(self) -> None: ...

    async def submit(self, actions: Sequence[VenueAction]) -> None: ...

    async def cancel_all(self, coin: str) -> None: ...

    async def snapshot(self, coin: str) -> AccountSnapshot: ...

    async def close(self) -> None: ...

    def heartbeat(self, ts: float) -> None:
        """The runner's loop is alive at ``ts`` (a live venue's watchdog detects a stalled engine by it)."""
        ...

    @property
    def budget_left(self) -> int | None:
        """Requests left in the exchange's request budget (None: the venue has no such budget)."""
        ...

    def diagnostics(self) -> dict[str, Any]:
        """Counters and health for the run summary's ``venue_stats`` (empty when the venue keeps none)."""
        ...


@runtime_checkable
class MarketFedVenue(Venue, Protocol):
    """A simulated venue that must see every market event (paper): the session feeds it before the engine."""

    def feed_market(self, ev: Any) -> None: ...


class UserStreamVenue(Venue, Protocol):
    """A live venue that takes the user channels of the runner's one websocket (orderUpdates, userFills,
    userEvents) and its connection status (a reconnect means: reconcile over REST before quoting)."""

    def on_ws_message(self, ts: float, channel: str, data: Any) -> None: ...

    def on_ws_status(self, ts: float, connected: bool, detail: str) -> None: ...
