"""In-memory time series the engine keeps for the summary and the report (lists of tuples: cheap to
append, turned into arrays by the consumer). Times are engine time (``ts``, seconds).

Backtests keep every point (``max_points`` None). Live and paper sessions run for days, so their runners set
``max_points`` (:data:`LIVE_SERIES_MAX`): each series is then a ring of its most recent ``max_points`` entries
(trimmed at every sample); counts and totals (fills by side, fill volume) are kept as running counters."""

from __future__ import annotations

from dataclasses import dataclass, field

# Points kept per series in live/paper: the most recent ones (~33 min of 1 s samples, minutes of quote cycles).
# Nothing in a live session reads these series (the summary comes from RunStats); they are a recent window for
# diagnostics, kept small so the ring is full within minutes and the memory flat after that.
LIVE_SERIES_MAX = 2_000


@dataclass(slots=True)
class EngineRecorder:
    """What happened, for the summary/report. Appended only on decisions and venue events, plus a mid/PnL
    sample at most every ``sample_s`` (taken on timers and book events)."""

    start_ts: float
    sample_s: float = 1.0
    # (ts, best desired bid px or nan, best desired ask px or nan, n_bids, n_asks) per quote cycle
    quotes: list[tuple[float, float, float, int, int]] = field(default_factory=list)
    # (ts, n_bids, n_asks) acknowledged resting orders, appended when the counts change
    resting: list[tuple[float, int, int]] = field(default_factory=list)
    # (ts, is_buy, px, sz, fee, is_maker, mid_at_fill or nan)
    fills: list[tuple[float, bool, float, float, float, bool, float]] = field(default_factory=list)
    mids: list[tuple[float, float]] = field(default_factory=list)  # sampled (ts, mid)
    pnl: list[tuple[float, float]] = field(default_factory=list)  # sampled (ts, pnl_total at mid)
    position: list[tuple[float, float]] = field(default_factory=list)  # (ts, position) after each fill/sync
    rejections: dict[str, int] = field(default_factory=dict)  # by RejectReason value
    cancels: dict[str, int] = field(default_factory=dict)  # cancels we sent, by reason
    actions: dict[str, int] = field(default_factory=lambda: {"place": 0, "cancel": 0, "modify": 0, "flatten": 0})
    first_quote_ts: float | None = None  # first placement sent
    first_ready_ts: float | None = None  # estimators first ready
    kill_reason: str | None = None
    kill_ts: float | None = None
    max_order_size: float = 0.0  # largest size we ever sent
    max_abs_position: float = 0.0
    n_market_events: int = 0
    n_quote_cycles: int = 0
    deferred: int = 0  # placements deferred by the exposure invariant or the action budget
    max_points: int | None = None  # None: unbounded (backtest); else each series keeps its last max_points
    n_fills_buy: int = 0
    n_fills_sell: int = 0
    fill_volume_usd: float = 0.0
    _next_sample: float = 0.0

    def __post_init__(self) -> None:
        self._next_sample = self.start_ts

    @property
    def time_to_first_quote_s(self) -> float | None:
        return None if self.first_quote_ts is None else self.first_quote_ts - self.start_ts

    def sample_due(self, ts: float) -> bool:
        return ts >= self._next_sample

    def sample(self, ts: float, mid: float | None, pnl: float | None) -> None:
        self._next_sample = ts + self.sample_s
        if mid is not None:
            self.mids.append((ts, mid))
        if pnl is not None:
            self.pnl.append((ts, pnl))
        if self.max_points is not None:
            self.trim()

    def trim(self) -> None:
        """Keep the most recent ``max_points`` entries of every series (no-op when unbounded)."""
        n = self.max_points
        if n is None:
            return
        for series in (self.quotes, self.resting, self.fills, self.mids, self.pnl, self.position):
            if len(series) > n:
                del series[: len(series) - n]

    def on_fill(self, ts: float, is_buy: bool, px: float, sz: float, fee: float, is_maker: bool,
                mid: float) -> None:
        self.fills.append((ts, is_buy, px, sz, fee, is_maker, mid))
        if is_buy:
            self.n_fills_buy += 1
        else:
            self.n_fills_sell += 1
        self.fill_volume_usd += px * sz

    def on_resting(self, ts: float, nb: int, na: int) -> None:
        if not self.resting or self.resting[-1][1] != nb or self.resting[-1][2] != na:
            self.resting.append((ts, nb, na))

    def on_position(self, ts: float, position: float) -> None:
        self.position.append((ts, position))
        if abs(position) > self.max_abs_position:
            self.max_abs_position = abs(position)

    def on_rejection(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def on_cancel(self, reason: str) -> None:
        self.cancels[reason] = self.cancels.get(reason, 0) + 1
        self.actions["cancel"] += 1

    def on_send(self, kind: str, sz: float, ts: float) -> None:
        self.actions[kind] = self.actions.get(kind, 0) + 1
        if sz > self.max_order_size:
            self.max_order_size = sz
        if kind == "place" and self.first_quote_ts is None:
            self.first_quote_ts = ts

    def on_kill(self, ts: float, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason, self.kill_ts = reason, ts
